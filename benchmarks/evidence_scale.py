"""Evidence at the scale of years: export and verify a log of N records (default 1M).

    .venv/bin/python -m benchmarks.evidence_scale [--records 1000000] [--workdir DIR]

Builds a SQLite audit log of N served records (the audit benchmark's record, ~1 KB
each, in batches of 1,000: one checkpoint per batch), then runs, each as its own process
so that its peak memory (max RSS, from ``wait4``) is its own:

* ``gateway audit export --stream``;
* ``gateway audit verify FILE --fast`` (leaf hashes, tree, checkpoints, signatures);
* ``gateway audit verify FILE`` (the same plus every record decoded and checked
  canonical: the full decode rate, reported apart);
* ``python -c "import gateway.cli"`` against ``python -c "import gateway.app"``: the
  command line's start-up without the web application.

Prints records/s (the verifier's own timing of the record pass, and wall time including
start-up and the header) and peak RSS. Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.audit_log import Records
from gateway.audit.signing import new_log_signer, write_log_key
from gateway.audit.store.sqlite import open_sqlite_store

_RATE = re.compile(r"(\d+) records (hashed|hashed and decoded) in ([0-9.]+) s")


def build_log(path: Path, keys: Path, n: int, batch: int = 1_000) -> None:
    signer = new_log_signer("audit.bench.invalid/scale")
    keys.mkdir(parents=True, exist_ok=True)
    write_log_key(keys, signer)
    records = Records()
    store = open_sqlite_store(path, signer)
    try:
        done = 0
        started = time.perf_counter()
        while done < n:
            count = min(batch, n - done)
            store.append_batch(records.pool(count))
            done += count
            if done % 100_000 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  built {done:,} records ({rate:,.0f}/s)", flush=True)
    finally:
        store.close()


def run(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MiB (GNU time's %M: the child's own, and its workers'
    are counted apart, so --jobs rows show the parent's), and output of one process."""
    started = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss-kb=%M", *argv],
        env=env,
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    out = proc.stdout.decode() + proc.stderr.decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{out}")
    found = re.search(r"maxrss-kb=(\d+)", out)
    return seconds, int(found.group(1)) // 1024 if found else 0, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--no-decode", action="store_true", help="skip the (slow) full-decode verifications"
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gw-evidence-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    keys, state = workdir / "keys", workdir / "state"
    state.mkdir(exist_ok=True)
    db = state / "audit.sqlite"
    if not db.exists():
        print(f"building {args.records:,} records in {db}", flush=True)
        build_log(db, keys, args.records)
    env = {**os.environ, "GATEWAY_KEY_DIR": str(keys), "GATEWAY_STATE_DIR": str(state)}
    cli = [sys.executable, "-m", "gateway.cli", "audit"]
    stream = workdir / "log.jsonl"
    rows: list[tuple[str, float, int, str]] = []

    seconds, rss, out = run([*cli, "export", "--stream", "--out", str(stream)], env)
    rows.append(("export --stream", seconds, rss, f"{args.records / seconds:,.0f} records/s"))
    size_mb = stream.stat().st_size / 2**20
    vkey = str(keys / "audit-log.vkey")
    jobs = str(os.cpu_count() or 1)
    for label, extra in (
        ("verify --fast (hash/proof)", ["--fast"]),
        (f"verify --fast --jobs {jobs}", ["--fast", "--jobs", jobs]),
        ("verify (full decode)", []),
        (f"verify --jobs {jobs} (full decode)", ["--jobs", jobs]),
    ):
        if args.no_decode and "--fast" not in extra:
            continue
        seconds, rss, out = run([*cli, "verify", str(stream), "--key", vkey, *extra], env)
        match = _RATE.search(out)
        inner = float(match.group(3)) if match else seconds
        rows.append(
            (
                label,
                seconds,
                rss,
                f"{args.records / inner:,.0f} records/s in the record pass, "
                f"{args.records / seconds:,.0f}/s wall",
            )
        )
    for label, code in (
        ("import gateway.cli", "import gateway.cli"),
        ("import gateway.app", "import gateway.app"),
    ):
        best = min(run([sys.executable, "-c", code], env)[0] for _ in range(3))
        rows.append((label, best, 0, "best of 3 (process start-up included)"))

    print(f"\n{args.records:,} records, stream file {size_mb:,.0f} MiB ({workdir})\n")
    print(f"{'step':32} {'seconds':>9} {'peak MiB':>9}  rate")
    for label, seconds, rss, note in rows:
        print(f"{label:32} {seconds:9.2f} {rss or '':>9}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
