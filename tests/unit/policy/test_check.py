"""`gateway check` findings."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.policy.check import check_policy
from gateway.settings import Settings
from gateway.wiring import load_policy_bundle

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _copy_policies(tmp_path: Path, extra: str = "", drop: str | None = None) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    policy = (target / "policy.csv").read_text(encoding="utf-8")
    if drop:
        policy = "\n".join(line for line in policy.splitlines() if drop not in line)
    (target / "policy.csv").write_text(policy + "\n" + extra, encoding="utf-8")
    # systems.toml key paths are relative to the policy dir's parent
    shutil.copytree(ROOT / "keys", tmp_path / "keys")
    return target


def _findings(policy_dir: Path) -> list[str]:
    bundle = load_policy_bundle(Settings(policy_dir=policy_dir))
    return [str(f) for f in check_policy(bundle.catalog, bundle.engine, bundle.registry, NOW)]


def test_demo_policy_is_clean() -> None:
    assert _findings(ROOT / "policies") == []


def test_column_without_rule_is_an_error(tmp_path: Path) -> None:
    # remove every rule that could cover legal_person.enterprises.status
    policy_dir = _copy_policies(tmp_path, drop="legal_person.enterprises.*")
    found = _findings(policy_dir)
    assert any(
        f.startswith("ERROR")
        and "legal_person.enterprises.status" in f
        and "no policy rule covers" in f
        for f in found
    )


def test_rule_on_not_shared_dataset_is_an_error(tmp_path: Path) -> None:
    policy_dir = _copy_policies(
        tmp_path,
        "p, 1, role:rsj-reviewer, rsj, case_records.incidents.summary, select, *, allow, "
        "2099-12-31T00:00:00Z, allow\n",
    )
    assert any("not shared" in f and f.startswith("ERROR") for f in _findings(policy_dir))


def test_wildcard_serving_personal_data_is_a_warning(tmp_path: Path) -> None:
    policy_dir = _copy_policies(tmp_path, drop="subsidies.grants.amount, select, employment")
    found = _findings(policy_dir)
    assert any(
        f.startswith("WARNING") and "subsidies.grants.amount" in f and "rsj-subsidy" in f
        for f in found
    )


def test_cli_check_exits_non_zero_on_errors(tmp_path: Path) -> None:
    policy_dir = _copy_policies(tmp_path, drop="legal_person.enterprises.*")
    result = CliRunner().invoke(main, ["check", "--policy-dir", str(policy_dir)])
    assert result.exit_code == 1
    assert "no policy rule covers" in result.output
    clean = CliRunner().invoke(main, ["check", "--policy-dir", str(ROOT / "policies")])
    assert clean.exit_code == 0, clean.output


def test_cli_check_names_the_mask_parameter_that_is_wrong(tmp_path: Path) -> None:
    expiry = "2099-12-31T00:00:00Z"
    cases = {
        f"p, 1, role:x, rsj, population.people.name, select, *, mask:name:fill=lenght, "
        f"{expiry}, allow": "policy.csv:99: p line: population.people.name: "
        "mask 'name:fill=lenght': fill must be 'length'",
        f"p, 1, role:x, rsj, population.people.name, select, *, mask:partial:frist=1, "
        f"{expiry}, allow": "unknown parameter 'frist'; 'partial' takes first, last, char, fill",
        f"p, 1, role:x, rsj, population.people.birth_date, select, *, "
        f"mask:date_shift:days=30;key=nobody, {expiry}, allow": "needs key=nobody to be a "
        "text or integer column of population.people",
        f"p, 1, role:x, rsj, population.people.address, select, *, "
        f"mask:regex:pattern=(\\d+), {expiry}, allow": "groups and alternation are not portable",
    }
    for i, (line, message) in enumerate(cases.items()):
        policy_dir = _copy_policies(tmp_path / str(i), extra=line + "\n")
        result = CliRunner().invoke(main, ["check", "--policy-dir", str(policy_dir)])
        assert result.exit_code == 1
        assert message in result.output
