"""The command lines of README.md and keys/README.md run as written.

Every line of a ``bash``/``sh`` block is either run — in order, one shell per file, in a
sandbox where the documents' example paths (``/etc/gateway``, ``/srv/civil.sqlite``)
point into a temporary directory — or listed in ``OFFLINE`` with the reason it cannot run
here. A new command line in either file fails this test until it is one or the other.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: Lines that cannot run offline in a test, by a regular expression, with the reason.
OFFLINE: dict[str, str] = {
    r"^\./scripts/demo\.sh": "installs into .venv and serves the demo until stopped",
    r"^\./scripts/test\.sh": "runs this whole test suite",
    r"^\.venv/bin/gateway (query|catalog) --system": "needs the demo server of ./scripts/demo.sh",
    r"^TOKEN=\$\(\.venv/bin/gateway token": "needs the demo server of ./scripts/demo.sh",
    r"^curl ": "needs the demo server of ./scripts/demo.sh",
    r"^gateway audit export": "needs a gateway's audit store with records",
    r"^gateway audit verify": "needs an exported log or bundle and a kept response",
    r"^\.venv/bin/gateway demo-data \"postgresql": "needs a PostgreSQL server",
    r"^GATEWAY_BACKEND_DEMO_DSN=.*gateway serve": "serves until stopped (and needs PostgreSQL)",
    r"^gateway policy (export|import|activate) .*--user li\.qiang": (
        "signs in as the demo's officer on the demo server (tests/e2e/test_policy_cli.py "
        "runs these against a real gateway)"
    ),
    r"^\$EDITOR ": "opens the officer's editor",
}


def command_lines(markdown: str) -> list[str]:
    """The command lines of the shell blocks, continuation lines joined, comments and
    blank lines dropped."""
    lines: list[str] = []
    for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", markdown, flags=re.M | re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        pending = ""
        for line in joined.splitlines():
            pending = f"{pending}\n{line}" if pending else line.strip()
            try:
                shlex.split(pending, comments=True)
            except ValueError:
                continue  # a quoted string goes on on the next line
            if pending and not pending.startswith("#"):
                lines.append(pending)
            pending = ""
    return lines


def offline_reason(line: str) -> str | None:
    return next((why for pattern, why in OFFLINE.items() if re.search(pattern, line)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _sample_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE residents (resident_id INTEGER, full_name TEXT, id_number TEXT);"
            "INSERT INTO residents VALUES (1, '李琪', '370102199001011234');"
            "CREATE TABLE subsidies (subsidy_id INTEGER, resident_id INTEGER, amount INTEGER);"
            "CREATE TABLE internal_notes (note_id INTEGER, note TEXT);"
        )


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script, no shell input from outside
        ["/bin/bash", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _sandbox_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(tmp_path)
    return env


@pytest.mark.parametrize("name", ["README.md", "keys/README.md"])
def test_every_command_line_is_run_or_marked_offline(name: str) -> None:
    lines = command_lines((ROOT / name).read_text(encoding="utf-8"))
    assert lines, name
    for line in lines:
        assert _runnable(name, line) or offline_reason(line), f"{name}: unclassified {line!r}"


def _runnable(name: str, line: str) -> bool:
    return offline_reason(line) is None and (
        line.startswith(("gateway ", "set -a", "install ", "export "))
    )


def test_readme_deployment_runs_from_an_empty_directory_to_a_served_query(
    tmp_path: Path,
) -> None:
    port = _free_port()
    etc = tmp_path / "etc-gateway"
    _sample_database(tmp_path / "civil.sqlite")
    script = ["set -euo pipefail"]
    for line in command_lines((ROOT / "README.md").read_text(encoding="utf-8")):
        if offline_reason(line):
            continue
        line = line.replace("/etc/gateway", str(etc))
        line = line.replace("/srv/civil.sqlite", str(tmp_path / "civil.sqlite"))
        line = line.replace("--port 8000", f"--port {port}")
        script.append(line)
        if line.endswith("&"):
            # The server runs in the background: stop it on exit, wait until it listens.
            script.append("SERVER=$!; trap 'kill $SERVER' EXIT")
            script.append(
                f'"{sys.executable}" -c "import socket,time\n'
                "for _ in range(200):\n"
                "    try: socket.create_connection(('127.0.0.1', "
                f"{port}), 0.2).close(); break\n"
                '    except OSError: time.sleep(0.1)"'
            )
    env = _sandbox_env(tmp_path) | {"GATEWAY_URL": f"http://127.0.0.1:{port}"}
    result = _run("\n".join(script), tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    # The query's answer: the resident, its name and ID masked.
    assert "1 | 李** | 3***************34" in result.stdout, result.stdout + result.stderr
    assert "370102199001011234" not in result.stdout


def test_keys_readme_runs_as_written(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    shutil.copytree(ROOT / "keys", tmp_path / "keys")  # the demo's key paths
    script = ["set -euo pipefail"]
    for line in command_lines((ROOT / "keys" / "README.md").read_text(encoding="utf-8")):
        if offline_reason(line):
            continue
        script.append(line.replace("/etc/gateway", str(tmp_path / "etc-gateway")))
    env = _sandbox_env(tmp_path) | {"GATEWAY_POLICY_DIR": str(policies)}
    result = _run("\n".join(script), tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    keys = tmp_path / "etc-gateway" / "keys"
    for made in ("gateway-signing.key.pem", "audit-log.key", "pseudonym-secret.bin"):
        assert (keys / made).exists(), made
    assert "[systems.rsj-newapp]" in (policies / "systems.toml").read_text(encoding="utf-8")
    # keys rotate ran last: the first run prepares the next key.
    assert (keys / "gateway-signing.next.key.pem").exists()
