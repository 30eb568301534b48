"""``gateway policy`` against a live gateway: export the active files, edit, validate,
import (propose), activate, and see the consumer's answer change."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.demo.sharing import DEMO_PASSWORD
from tests.e2e.test_operations import live_server  # noqa: F401 - the fixture

SWJ_REP = (
    "p, 5, role:swj-registration, swj, legal_person.enterprises.legal_rep_id_number, select, "
    "*, mask:pseudonym, 2099-12-31T00:00:00Z, allow"
)


def test_export_edit_import_activate(live_server: str, tmp_path: Path) -> None:  # noqa: F811
    runner = CliRunner()
    env = {"GATEWAY_URL": live_server, "GATEWAY_PASSWORD": DEMO_PASSWORD}
    rules = tmp_path / "rules"
    out = runner.invoke(
        main, ["policy", "export", "active", str(rules), "--user", "sun.li"], env=env
    )
    assert out.exit_code == 0, out.output
    policy_csv = rules / "policy.csv"
    text = policy_csv.read_text("utf-8")
    assert SWJ_REP in text
    policy_csv.write_text(
        text.replace(SWJ_REP, SWJ_REP.replace("mask:pseudonym", "deny").replace("allow", "deny")),
        "utf-8",
    )

    checked = runner.invoke(
        main,
        ["policy", "import", str(rules), "--user", "sun.li", "--reason", "r", "--validate-only"],
        env=env,
    )
    assert checked.exit_code == 0, checked.output
    assert "legal_rep_id_number" in checked.output and "valid: version" in checked.output

    # A typo is refused with the reason, and nothing is stored.
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in rules.iterdir():
        (broken / f.name).write_text(f.read_text("utf-8"), "utf-8")
    (broken / "policy.csv").write_text(
        text.replace("legal_rep_id_number", "legal_rep_idnum"), "utf-8"
    )
    refused = runner.invoke(
        main, ["policy", "import", str(broken), "--user", "sun.li", "--reason", "typo"], env=env
    )
    assert refused.exit_code != 0 and "legal_rep_idnum" in refused.output

    proposed = runner.invoke(
        main,
        ["policy", "import", str(rules), "--user", "sun.li", "--reason", "stop sharing ids"],
        env=env,
    )
    assert proposed.exit_code == 0, proposed.output
    change = proposed.output.split()[0]
    assert change.startswith("PV") and "proposed" in proposed.output

    shown = runner.invoke(main, ["policy", "show", change, "--user", "sun.li"], env=env)
    assert "-" + SWJ_REP in shown.output

    done = runner.invoke(main, ["policy", "activate", change, "--user", "sun.li"], env=env)
    assert done.exit_code == 0 and "active" in done.output, done.output
    listed = runner.invoke(main, ["policy", "list", "--user", "qian.hui"], env=env)
    assert listed.output.splitlines()[0].startswith(change)

    query = runner.invoke(
        main,
        [
            "query",
            "--system",
            "swj-tax",
            "SELECT legal_rep_id_number FROM legal_person.enterprises LIMIT 1",
        ],
        env={"GATEWAY_URL": live_server},
    )
    assert query.exit_code != 0 and "403" in query.output
