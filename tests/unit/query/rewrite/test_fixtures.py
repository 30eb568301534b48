"""Rewriter fixtures: input SQL → rewritten SQL (or the error it must raise)."""

from __future__ import annotations

import pytest
import sqlglot

from gateway import errors
from tests.unit.query.rewrite.fixture_support import Case, load_cases, rewrite

FILES = ("protect_tables.sql", "cap_row_limit.sql", "portable.sql", "refuse.sql")


@pytest.mark.parametrize("case", [c for f in FILES for c in load_cases(f)], ids=str)
def test_fixture(case: Case) -> None:
    if case.error is not None:
        name, _, message = case.error.partition(":")
        error_type = getattr(errors, name.strip())
        with pytest.raises(error_type) as info:
            rewrite(case.sql, dialect=case.dialect)
        assert message.strip() in str(info.value)
        return
    out = rewrite(case.sql, dialect=case.dialect)
    assert out == case.expect
    sqlglot.parse_one(out, read=case.dialect)  # the output re-parses


def test_every_fixture_file_has_cases() -> None:
    for name in FILES:
        assert len(load_cases(name)) >= 5, name


def test_syntax_error_carries_line_and_column() -> None:
    with pytest.raises(errors.SqlSyntaxError) as info:
        rewrite("SELECT name\nFROM population.people WHERE name = = 'x'")
    assert info.value.line == 2
    assert info.value.column is not None
