"""Shared data and helpers of the backend tests (imported by conftest and tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateway.backends import Backend, BackendConfig, open_backend
from tests.conftest import run_scoped

KINDS = ("sqlite", "duckdb", "postgres", "mysql")

#: This run's PostgreSQL schema and MariaDB database for the backend tests.
SCHEMA = run_scoped("t_backends")

PEOPLE = (
    (1, "张三", date(1990, 1, 2), "北京市"),
    (2, "李四", date(1985, 12, 31), "上海市"),
    (3, "王五", date(2000, 2, 29), "广州市"),
    (4, "张伟", date(1979, 6, 15), "深圳市"),
    (5, "Zoë O'Brien", date(1969, 7, 20), "100% 成都"),
)


@dataclass(frozen=True)
class Target:
    """A backend under test and how SQL names its ``people`` table."""

    kind: str
    dsn: str
    people: str

    def open(
        self,
        *,
        pool_size: int = 4,
        sqlite_functions: Sequence[tuple[str, int, Callable[..., Any]]] = (),
    ) -> Backend:
        return open_backend(
            BackendConfig(name=f"test_{self.kind}", kind=self.kind, dsn=self.dsn),
            pool_size=pool_size,
            sqlite_functions=sqlite_functions,
        )

    def with_dsn(self, dsn: str) -> Target:
        return Target(self.kind, dsn, self.people)


def dsn_with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))
