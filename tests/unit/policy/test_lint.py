"""`gateway check`'s first pass: every error in one run, with file:line and a suggestion."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.policy.lint import lint_directory
from gateway.query.rewrite.masks import check_mask_spec

ROOT = Path(__file__).resolve().parents[3]

MISTAKES = """
p, 10, role:rsj-reviewer, rsj, population.peple.name, select, *, mask, never, allow
p, 10, role:rsj-reviewer, rsj, population.people.name, select, employment_subsidy_reveiw, mask, \
never, allow
g, rsj-subsdy, role:rsj-reviewer, rsj
p, 10, role:rsj-reviewr, rsj, population.people.phone, select, *, mask:phnoe, 2027-13-01, allow
p3, role:rsj-reviewer, rsj, population.people, *, 0, never
"""


def _policies(tmp_path: Path, extra: str) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    shutil.copytree(ROOT / "keys", tmp_path / "keys")
    with (target / "policy.csv").open("a", encoding="utf-8") as f:
        f.write(extra)
    return target


def test_demo_directory_has_no_lint_errors() -> None:
    assert lint_directory(ROOT / "policies", check_mask_spec) == []


def test_every_mistake_is_reported_at_once_with_its_line_and_a_suggestion(
    tmp_path: Path,
) -> None:
    policy_dir = _policies(tmp_path, MISTAKES)
    first = len((ROOT / "policies" / "policy.csv").read_text(encoding="utf-8").splitlines()) + 2
    found = [str(f) for f in lint_directory(policy_dir, check_mask_spec)]
    expected = [
        (first, "unknown table 'population.peple'; did you mean 'population.people'?"),
        (first + 1, "did you mean 'employment_subsidy_review'?"),
        (first + 2, "g line names system 'rsj-subsdy'"),
        (first + 2, "did you mean 'rsj-subsidy'?"),
        (first + 3, "did you mean 'role:rsj-reviewer'?"),
        (first + 3, "unknown mask 'phnoe'"),
        (first + 3, "did you mean 'phone'?"),
        (first + 3, "expiry '2027-13-01'"),
        (first + 4, "max rows '0' must be a positive integer"),
    ]
    for line, text in expected:
        assert any(f"policy.csv:{line}:" in f and text in f for f in found), (line, text, found)
    assert all(f.startswith("ERROR") for f in found)


def test_unknown_purpose_of_a_system_names_systems_toml_and_the_close_one(tmp_path: Path) -> None:
    policy_dir = _policies(tmp_path, "")
    systems = policy_dir / "systems.toml"
    text = systems.read_text(encoding="utf-8")
    systems.write_text(
        text.replace('purposes = ["tax_administration"]', 'purposes = ["tax_adminstration"]'),
        encoding="utf-8",
    )
    found = [str(f) for f in lint_directory(policy_dir, check_mask_spec)]
    assert any("systems.toml:" in f and "did you mean 'tax_administration'?" in f for f in found), (
        found
    )


def test_cli_check_prints_all_errors_and_exits_1(tmp_path: Path) -> None:
    policy_dir = _policies(tmp_path, MISTAKES)
    result = CliRunner().invoke(main, ["check", "--policy-dir", str(policy_dir)])
    assert result.exit_code == 1
    assert result.output.count("ERROR") >= 7
    assert "Traceback" not in result.output


def test_never_is_a_permanent_expiry(tmp_path: Path) -> None:
    policy_dir = _policies(
        tmp_path, "p3, role:rsj-reviewer, rsj, population.people, *, 150, never\n"
    )
    assert lint_directory(policy_dir, check_mask_spec) == []
    result = CliRunner().invoke(main, ["check", "--policy-dir", str(policy_dir)])
    assert result.exit_code == 0, result.output


def test_short_p_lines_are_checked_like_full_ones(tmp_path: Path) -> None:
    policy_dir = _policies(
        tmp_path,
        "p, role:rsj-reviewer, rsj, population.people.phone, select, *, deny, never\n"
        "p, role:rsj-reviewer, rsj, population.people.name, select, *, mask:nmae, never\n"
        "p, role:rsj-reviewer, rsj, population.people.name, select, *, allow, never, allow\n",
    )
    found = [str(f) for f in lint_directory(policy_dir, check_mask_spec)]
    assert any("policy.csv:" in f and "nmae" in f for f in found), found
    assert any("(or 7: without priority and effect)" in f for f in found), found
    assert len(found) == 2, found
    result = CliRunner().invoke(main, ["check", "--policy-dir", str(policy_dir)])
    assert result.exit_code == 1
