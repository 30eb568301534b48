"""``gateway catalog import`` on the demo database of every backend: the schema is read,
personal identifiers are recognised from sampled values (or names), no value ends up in
the draft, and the draft loads but fails `gateway check` until every column has a rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.catalog.introspect import (
    Reader,
    draft_toml,
    open_reader,
    read_schema,
    sample_kinds,
    suggest,
)
from gateway.cli import main
from gateway.domain import Principal
from gateway.errors import InvalidRequestError
from gateway.policy.roles import Role
from tests.e2e.harness import ROOT, Gateway, demo_dsn

EXPECTED = {
    ("population_people", "id_number"): ("sensitive_personal", "id_number"),
    ("population_people", "phone"): ("personal", "phone"),
    ("population_people", "name"): ("personal", "name"),
    ("population_people", "address"): ("personal", "address"),
    ("civil_subsidies", "bank_card"): ("sensitive_personal", "bank_card"),
    ("market_enterprises", "credit_code"): ("public", None),
    ("market_enterprises", "legal_rep_id_number"): ("sensitive_personal", "id_number"),
}


def test_import_suggests_masks_for_identifiers_on_every_backend(gateway: Gateway) -> None:
    with open_reader(gateway.services.settings.backend_dsns["demo"]) as reader:
        _check(gateway, reader)


def _check(gateway: Gateway, reader: Reader) -> None:
    tables = {t.name.lower(): t for t in read_schema(reader)}
    assert {"population_people", "market_enterprises", "civil_subsidies"} <= set(tables)
    people = {c.name.lower(): c for c in tables["population_people"].columns}
    assert {"person_id", "name", "id_number", "birth_date", "phone", "district"} <= set(people)
    assert people["person_id"].db_type and people["birth_date"].db_type
    seen: dict[tuple[str, str], tuple[str, str | None]] = {}
    drafted = []
    for name in ("population_people", "market_enterprises", "civil_subsidies"):
        table = tables[name]
        columns = []
        for column in table.columns:
            kinds, looked = sample_kinds(reader, table.name, column.name, n=20)
            s = suggest(column, kinds, looked)
            seen[(name, column.name.lower())] = (s.sensitivity, s.mask)
            columns.append((column, s))
        drafted.append((table, columns))
    for key, want in EXPECTED.items():
        assert seen[key] == want, key
    assert seen[("population_people", "person_id")][1] is None

    text = draft_toml("imported", "gaj", "demo", drafted)
    # Suggestions say why, but no sampled value is in the draft.
    assert "of 20 sampled values look like 公民身份号码" in text
    demo_ids = [r[0] for r in reader.run("SELECT id_number FROM population_people", 50)]
    assert not any(v in text for v in demo_ids)
    tomllib.loads(text)  # valid TOML on its own
    # Appended to the active catalog, the draft loads, but a proposal is refused until
    # every imported column has a rule: nothing is shared because it was imported.
    versions = gateway.services.admin.versions
    active = versions.active()
    assert active is not None
    proposal = active.source.with_files(
        {"catalog.toml": active.source.files["catalog.toml"] + "\n" + text}
    )
    officer = Principal(
        system="", department="gaj", officer="li.qiang", roles=frozenset({Role.PROVIDER_OFFICER})
    )
    with pytest.raises(InvalidRequestError) as refused:
        versions.review(proposal, officer)
    problems = refused.value.extra["problems"]
    assert any("imported.population_people.id_number" in p for p in problems)
    covered = {c.name for t, _ in drafted for c in t.columns}
    assert len([p for p in problems if "imported." in p]) >= len(covered)


def test_the_cli_writes_a_draft(tmp_path: Path) -> None:
    dsn = demo_dsn("sqlite", tmp_path)
    out = tmp_path / "draft.toml"
    result = CliRunner().invoke(
        main,
        [
            "catalog",
            "import",
            "--dsn",
            dsn,
            "--backend",
            "demo",
            "--dataset",
            "residents",
            "--owner",
            "mzj",
            "--table",
            "population_people",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    draft = tomllib.loads(out.read_text("utf-8"))
    columns = draft["datasets"]["residents"]["tables"]["population_people"]["columns"]
    by_name = {c["name"]: c for c in columns}
    assert by_name["id_number"]["default_mask"] == "id_number"
    assert by_name["phone"]["sensitivity"] == "personal"
    assert (ROOT / "policies" / "catalog.toml").exists()  # the real catalog is untouched
