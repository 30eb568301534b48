"""What "N cosignatures before data leaves" costs: audit append latency with and without
a witness quorum (GATEWAY_AUDIT_WITNESS_QUORUM).

    .venv/bin/python -m benchmarks.witness_quorum [--appends 300]

One request at a time appends a record through the group committer into a SQLite log
(the commit is durable: fsync), as the request path does. ``quorum 1`` adds, per batch,
the push to one witness: another department's witness logic with its durable SQLite
state (C2SP add-checkpoint: signature check, consistency proof, compare-and-swap,
cosignature), called in-process, so the figures are the witness's own cost without a
network; add one round trip between the two departments' machines for a deployment.
Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.audit_log import Records
from gateway.audit.commit import GroupCommitter
from gateway.audit.signing import new_log_signer
from gateway.audit.store.sqlite import open_sqlite_store
from gateway.audit.witness import SqliteWitnessState, Witness
from gateway.audit.witnessing import HeadPin, Witnessing, WitnessTarget
from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.note import Signer, generate_key


def measure(workdir: Path, appends: int, quorum: int) -> list[float]:
    signer = new_log_signer(f"audit.bench.invalid/quorum-{quorum}")
    store = open_sqlite_store(workdir / f"audit-{quorum}.sqlite", signer)
    key = Signer.parse(generate_key("witness.bench.invalid", alg=ALG_COSIGNATURE_V1)[0])
    witness = Witness(
        key,
        {signer.origin: signer.verifier},
        SqliteWitnessState(workdir / f"witness-{quorum}.sqlite"),
        lambda: int(time.time()),
    )

    def post(url: str, body: bytes) -> tuple[int, str, str]:
        answer = witness.add_checkpoint(body.decode())
        return answer.status, answer.media_type, answer.text

    targets = [WitnessTarget("https://witness.bench.invalid", key.verifier())]
    witnessing = Witnessing(store, targets, HeadPin(workdir / f"pin-{quorum}"), post=post, quorum=1)
    committer = GroupCommitter(store, cosign=witnessing.cosign_batch if quorum else None)
    records = Records()
    latencies: list[float] = []
    try:
        for _ in range(appends):
            record = records.make()
            started = time.perf_counter()
            committer.append(record)
            latencies.append(time.perf_counter() - started)
    finally:
        committer.close()
        store.close()
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gw-quorum-") as tmp:
        print(f"{'configuration':24} {'p50 ms':>8} {'p99 ms':>8}  ({args.appends} appends each)")
        for quorum in (0, 1, 0, 1):  # interleaved: the machine's load drifts
            lat = sorted(measure(Path(tmp), args.appends, quorum))
            p50 = statistics.median(lat) * 1000
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            label = "eventual (quorum 0)" if quorum == 0 else "quorum 1, in-process"
            print(f"{label:24} {p50:8.2f} {p99:8.2f}")
            for path in Path(tmp).iterdir():
                path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
