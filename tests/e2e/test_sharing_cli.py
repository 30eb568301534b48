"""``gateway accounts`` and ``gateway applications`` against a live gateway (the demo's
people and applications): every step of the workflow from the command line, through the
same API and role checks as the console."""

from __future__ import annotations

import csv
import io

from click.testing import CliRunner

from gateway.cli import main
from gateway.demo.sharing import DEMO_PASSWORD
from tests.e2e.test_operations import live_server  # noqa: F401 - the fixture


def _run(runner: CliRunner, env: dict[str, str], *args: str) -> str:
    out = runner.invoke(main, list(args), env=env)
    assert out.exit_code == 0, out.output
    return out.output


def test_help_explains_each_group() -> None:
    runner = CliRunner()
    accounts = runner.invoke(main, ["accounts", "--help"]).output
    assert "administrator" in accounts and "gateway accounts create" in accounts
    apps = runner.invoke(main, ["applications", "--help"]).output
    for word in ("draft", "returned", "refused", "revoked", "working days", "escalated"):
        assert word in apps, word
    approve = runner.invoke(main, ["applications", "approve", "--help"]).output
    assert "narrower" in approve and "--quota" in approve and "--drop" in approve


def test_accounts_from_the_command_line(live_server: str) -> None:  # noqa: F811
    runner = CliRunner()
    env = {
        "GATEWAY_URL": live_server,
        "GATEWAY_PASSWORD": DEMO_PASSWORD,
        "GATEWAY_NEW_PASSWORD": "a new password 2026",
    }
    created = _run(
        runner,
        env,
        "accounts",
        "create",
        "wu.gang",
        "--name",
        "吴刚",
        "--department",
        "swj",
        "--role",
        "applicant",
        "--system",
        "swj-tax",
        "--user",
        "admin",
    )
    assert created.startswith("wu.gang") and "applicant" in created
    listed = _run(runner, env, "accounts", "list", "--department", "swj", "--user", "admin")
    assert {line.split()[0] for line in listed.splitlines()} == {"huang.lei", "wu.gang"}
    assert "disabled" in _run(runner, env, "accounts", "disable", "wu.gang", "--user", "admin")
    login = runner.invoke(
        main,
        ["applications", "list", "--user", "wu.gang"],
        env=env | {"GATEWAY_PASSWORD": "a new password 2026"},
    )
    assert login.exit_code != 0 and "401" in login.output
    assert "active" in _run(runner, env, "accounts", "enable", "wu.gang", "--user", "admin")
    # Not an administrator: refused by the role check.
    refused = runner.invoke(main, ["accounts", "list", "--user", "zhang.wei"], env=env)
    assert refused.exit_code != 0 and "403" in refused.output


def test_the_workflow_from_the_command_line(live_server: str) -> None:  # noqa: F811
    runner = CliRunner()
    env = {"GATEWAY_URL": live_server, "GATEWAY_PASSWORD": DEMO_PASSWORD}
    applied = _run(
        runner,
        env,
        "applications",
        "apply",
        "--user",
        "huang.lei",
        "--dataset",
        "population",
        "--system",
        "swj-tax",
        "--columns",
        "population.people:person_id,name,district",
        "--purpose",
        "tax_administration",
        "--legal-basis",
        "《税收征收管理法》第六条",
        "--scenario",
        "纳税人身份核验",
        "--justification",
        "核对纳税人户籍",
        "--contact",
        "黄磊 0531-88880001",
        "--quota",
        "queries_per_day=100",
        "--submit",
    )
    app_id = applied.split()[0]
    assert app_id.startswith("SQ") and "submitted" in applied and "reply by" in applied
    _run(runner, env, "applications", "review", app_id, "--user", "li.qiang")
    approved = _run(
        runner,
        env,
        "applications",
        "approve",
        app_id,
        "--user",
        "li.qiang",
        "--drop",
        "population.people.name",
        "--quota",
        "queries_per_day=10",
    )
    assert "active" in approved and "'queries_per_day': 10" in approved
    assert '"name"' not in approved.split("grant", 1)[1].splitlines()[0]
    quotas = _run(runner, env, "applications", "quotas", "--user", "huang.lei")
    assert f"GR-{app_id}" in quotas and "0/10 used" in quotas
    revoked = _run(
        runner, env, "applications", "revoke", app_id, "--user", "li.qiang", "--reason", "停用"
    )
    assert "revoked" in revoked and "revoke" in revoked.splitlines()[-1]
    # Only the provider side may revoke.
    other = runner.invoke(
        main,
        ["applications", "revoke", app_id, "--user", "huang.lei", "--reason", "x"],
        env=env,
    )
    assert other.exit_code != 0 and ("403" in other.output or "409" in other.output)

    escalated = _run(
        runner, env, "applications", "list", "--view", "escalated", "--user", "zhao.min"
    )
    assert "ESCALATED" in escalated
    stats = _run(runner, env, "applications", "statistics", "--csv", "--user", "zhao.min")
    rows = list(csv.DictReader(io.StringIO(stats)))
    assert {"department", "dataset", "applications_received", "rows_delivered"} <= set(rows[0])
    assert any(r["dataset"] == "population" for r in rows)
