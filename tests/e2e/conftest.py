"""One gateway per backend kind, over the same demo world, catalog and policies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Scratch
from tests.e2e.harness import Gateway, demo_dsn, running_gateway
from tests.e2e.oracle import PgOracle

BACKENDS = ("sqlite", "postgres", "mysql", "duckdb")


@pytest.fixture(scope="session", params=BACKENDS)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    kind: str = request.param
    tmp: Path = tmp_path_factory.mktemp(f"e2e-{kind}")
    pg = request.getfixturevalue("pg_dsn") if kind == "postgres" else None
    my = request.getfixturevalue("mysql_dsn") if kind == "mysql" else None
    scratch: Scratch = request.getfixturevalue("scratch")
    schema = ""
    if pg is not None:
        schema = scratch.pg_schema(pg, "gw_e2e")
    if my is not None:
        schema = scratch.mysql_database(my, "gw_e2e")
    dsn = demo_dsn(kind, tmp, pg, my, schema=schema)
    with running_gateway(kind, dsn, tmp) as gw:
        yield gw


@pytest.fixture(scope="session")
def sqlite_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("e2e-sqlite-only")
    with running_gateway("sqlite", demo_dsn("sqlite", tmp), tmp) as gw:
        yield gw


#: The systems whose views the PostgreSQL oracle materialises (tests/e2e/expected.py).
ORACLE_SYSTEMS = ("rsj-subsidy", "ybj-insurance", "swj-tax", "tjj-stats")


@pytest.fixture(scope="session")
def pg_oracle(pg_dsn: str, scratch: Scratch) -> Iterator[PgOracle]:
    """What each system may see, materialised in a scratch schema of PostgreSQL."""
    oracle = PgOracle(pg_dsn, scratch.pg_schema(pg_dsn, "gw_oracle"), ORACLE_SYSTEMS)
    yield oracle
    oracle.close()
