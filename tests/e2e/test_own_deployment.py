"""A department deploys the gateway on its own data, from an empty directory, with
``gateway init`` and the README's steps only — on SQLite, PostgreSQL and MariaDB.

Its tables are ``residents``, ``subsidies`` and ``internal_notes`` (不予共享, inside the
shared dataset); consumers name them unqualified; the generated rules are permanent
(``never``). Legitimate queries get exact answers; attacks on the not-shared table and
the masked columns get refusals or masked values, and no raw value appears anywhere in
any response.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.auth.keys import jwk_thumbprint, load_private_key
from gateway.auth.replay import MemoryReplayCache
from gateway.auth.tokens import ASSERTION_TYPE, make_client_assertion
from gateway.cli import main
from gateway.cli.serve import issuer_for
from gateway.settings import Settings
from gateway.wiring import build_services
from tests.conftest import Scratch, mysql_connect
from tests.unit.admin.support import FAST_HASHER

RESIDENTS = [
    (1, "李琪", "370102199001011234", "13812345678", "历下区"),
    (2, "王琬瑜", "370102198502023456", "13987654321", "市中区"),
    (3, "张三丰", "37010219700303789X", "13700001111", "历下区"),
]
SUBSIDIES = [(1, 1, "housing", 1200), (2, 2, "employment", 800), (3, 1, "employment", 300)]
NOTES = [(1, 1, "内部备注：疑似冒领")]
SECRETS = [
    *(r[1] for r in RESIDENTS),
    *(r[2] for r in RESIDENTS),
    *(r[3] for r in RESIDENTS),
    NOTES[0][2],
]

DDL = [
    "CREATE TABLE residents (resident_id INTEGER PRIMARY KEY, full_name VARCHAR(40), "
    "id_number VARCHAR(18), phone VARCHAR(11), district VARCHAR(20))",
    "CREATE TABLE subsidies (subsidy_id INTEGER PRIMARY KEY, resident_id INTEGER, "
    "program VARCHAR(20), amount INTEGER)",
    "CREATE TABLE internal_notes (note_id INTEGER PRIMARY KEY, resident_id INTEGER, "
    "note VARCHAR(200))",
]


def _fill(execute: Any, placeholder: str) -> None:
    for statement in DDL:
        execute(statement, ())
    for table, rows in (
        ("residents", RESIDENTS),
        ("subsidies", SUBSIDIES),
        ("internal_notes", NOTES),
    ):
        marks = ", ".join([placeholder] * len(rows[0]))
        for row in rows:
            execute(f"INSERT INTO {table} VALUES ({marks})", row)


def _department_database(kind: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    """The department's own database, with its own tables; returns its DSN."""
    scratch: Scratch = request.getfixturevalue("scratch")
    if kind == "sqlite":
        import sqlite3

        path = tmp / "civil.sqlite"
        with sqlite3.connect(path) as lite:
            _fill(lite.execute, "?")
        return f"sqlite:{path}"
    if kind == "postgres":
        pg_dsn: str = request.getfixturevalue("pg_dsn")
        schema = scratch.pg_schema(pg_dsn, "gw_own")
        with psycopg.connect(pg_dsn, autocommit=True) as pg:
            pg.execute(f'CREATE SCHEMA "{schema}"')
            pg.execute(f'SET search_path TO "{schema}"')
            _fill(lambda sql, args: pg.execute(sql, args), "%s")
        sep = "&" if "?" in pg_dsn else "?"
        return f"{pg_dsn}{sep}schema={schema}"
    mysql_dsn: str = request.getfixturevalue("mysql_dsn")
    database = scratch.mysql_database(mysql_dsn, "gw_own")
    my = mysql_connect(mysql_dsn)
    try:
        with my.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{database}`")
            _fill(cur.execute, "%s")
        my.commit()
    finally:
        my.close()
    return mysql_dsn.rsplit("/", 1)[0] + f"/{database}"


@dataclass
class Deployment:
    client: TestClient[Any]
    token: str

    def query(self, sql: str, **extra: Any) -> Any:
        return self.client.post(
            "/v1/query",
            json={"sql": sql, "purpose": "case_review", **extra},
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def rows(self, sql: str) -> list[list[Any]]:
        resp = self.query(sql)
        assert resp.status_code == 200, resp.text
        rows: list[list[Any]] = resp.json()["rows"]
        return rows


@pytest.fixture(scope="module", params=("sqlite", "postgres", "mysql"))
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind: str = request.param
    tmp = tmp_path_factory.mktemp(f"own-{kind}")
    dsn = _department_database(kind, tmp, request)
    conf = tmp / "conf"  # an empty directory: everything below comes from gateway init
    init = CliRunner().invoke(
        main,
        [
            "init",
            str(conf),
            "--backend",
            dsn,
            "--dataset",
            "civil",
            "--department",
            "mzj",
            "--consumer",
            "rsj-app",
            "--consumer-department",
            "rsj",
            "--not-shared",
            "internal_notes",
        ],
    )
    assert init.exit_code == 0, init.output
    env = _env_file(conf / "gateway.env")
    check = CliRunner().invoke(main, ["check"], env=env)
    assert check.exit_code == 0, check.output
    assert "0 error(s), 0 warning(s)" in check.output
    # `gateway serve` on 127.0.0.1:8000 derives its issuer from where it listens.
    settings = issuer_for(Settings.from_env(env), "127.0.0.1", 8000)
    services = build_services(settings, replay=MemoryReplayCache(), password_hasher=FAST_HASHER)
    app = create_app(settings, services=services)
    with TestClient(app=app, base_url=settings.issuer) as client:
        key = load_private_key(conf / "consumer-keys" / "rsj-app.key.pem")
        assertion = make_client_assertion(
            "rsj-app",
            key,
            "EdDSA",
            jwk_thumbprint(key),
            f"{settings.issuer}/v1/token",
            services.clock(),
        )
        resp = client.post(
            "/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            },
        )
        assert resp.status_code == 200, resp.text
        yield Deployment(client, resp.json()["access_token"])


def _env_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )


# ------------------------------------------------------------------- legitimate queries


def test_unqualified_names_with_masks(deployment: Deployment) -> None:
    rows = deployment.rows(
        "SELECT resident_id, id_number, phone, district FROM residents ORDER BY resident_id"
    )
    assert rows == [
        [1, "3***************34", "138****5678", "历下区"],
        [2, "3***************56", "139****4321", "市中区"],
        [3, "3***************9X", "137****1111", "历下区"],
    ]


def test_name_mask_keeps_the_first_character(deployment: Deployment) -> None:
    names = [r[0] for r in deployment.rows("SELECT full_name FROM residents ORDER BY resident_id")]
    assert [n[0] for n in names] == ["李", "王", "张"]
    assert not set(names) & {r[1] for r in RESIDENTS}


def test_join_and_aggregate_over_unqualified_names(deployment: Deployment) -> None:
    rows = deployment.rows(
        "SELECT r.district, COUNT(*) AS n, SUM(s.amount) AS total "
        "FROM subsidies AS s JOIN residents AS r ON r.resident_id = s.resident_id "
        "GROUP BY r.district ORDER BY r.district"
    )
    assert [[d, int(n), int(t)] for d, n, t in rows] == [["历下区", 2, 1500], ["市中区", 1, 800]]


def test_qualified_names_keep_working(deployment: Deployment) -> None:
    rows = deployment.rows(
        "SELECT program, COUNT(*) AS n FROM civil.subsidies GROUP BY program ORDER BY program"
    )
    assert [[p, int(n)] for p, n in rows] == [["employment", 2], ["housing", 1]]


def test_permanent_rules_give_no_expiry_to_the_catalog(deployment: Deployment) -> None:
    resp = deployment.client.get(
        "/v1/catalog", headers={"Authorization": f"Bearer {deployment.token}"}
    )
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["search_path"] == ["civil"]
    tables = {t["name"]: t for ds in doc["datasets"] for t in ds["tables"]}
    assert tables["civil.internal_notes"]["sharing_class"] == "not_shared"
    assert tables["civil.residents"]["sharing_class"] == "unconditional"


# ------------------------------------------------------------------------------ attacks


@pytest.mark.parametrize(
    ("sql", "status"),
    [
        ("SELECT * FROM internal_notes", 403),
        ("SELECT note FROM civil.internal_notes", 403),
        (
            "SELECT r.resident_id FROM residents AS r JOIN internal_notes AS n "
            "ON n.resident_id = r.resident_id",
            403,
        ),
        (
            "SELECT resident_id FROM residents WHERE resident_id IN "
            "(SELECT resident_id FROM internal_notes WHERE note LIKE '%冒领%')",
            403,
        ),
        ("SELECT COUNT(*) AS n FROM internal_notes", 403),
        ("WITH residents AS (SELECT 1 AS resident_id) SELECT resident_id FROM residents", 400),
        ("SELECT name FROM sqlite_master", 404),
        ("SELECT table_name FROM information_schema.tables", 404),
        ("SELECT * FROM people", 404),
    ],
)
def test_refused(deployment: Deployment, sql: str, status: int) -> None:
    resp = deployment.query(sql)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    for secret in SECRETS:
        assert secret not in resp.text
    assert "population" not in resp.text  # hints name this deployment's tables


def test_unknown_table_hint_names_this_deployments_tables(deployment: Deployment) -> None:
    detail = deployment.query("SELECT * FROM people").json()["detail"]
    assert "civil.residents" in detail


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT resident_id FROM residents WHERE id_number = '370102199001011234'",
        "SELECT resident_id FROM residents WHERE phone LIKE '1381%'",
        "SELECT resident_id FROM residents WHERE full_name = '李琪'",
        "SELECT resident_id FROM residents WHERE SUBSTRING(id_number, 7, 8) = '19900101'",
    ],
)
def test_predicates_on_masked_columns_see_masked_values(deployment: Deployment, sql: str) -> None:
    resp = deployment.query(sql)
    assert resp.status_code == 200, resp.text
    assert resp.json()["rows"] == []


def test_no_raw_value_in_a_served_response(deployment: Deployment) -> None:
    resp = deployment.query(
        "SELECT r.*, s.program FROM residents AS r LEFT JOIN subsidies AS s "
        "ON s.resident_id = r.resident_id ORDER BY r.resident_id"
    )
    assert resp.status_code == 200, resp.text
    for secret in SECRETS:
        assert secret not in resp.text
