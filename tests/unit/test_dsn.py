"""gateway.dsn: the one parser of every location the gateway is given (backends, demo
loader, audit store, replay cache). Messages never echo a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.dsn import ALL_KINDS, Dsn, DsnKind, parse_dsn, redact_dsn
from gateway.errors import ConfigurationError

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("memory:", "memory"),
        ("MEMORY:", "memory"),
        ("sqlite:state/demo.sqlite", "sqlite"),
        ("sqlite:/abs/demo.sqlite", "sqlite"),
        ("duckdb:data/x.duckdb", "duckdb"),
        ("postgresql://u@h:5432/db", "postgres"),
        ("postgres://u@h/db", "postgres"),
        ("POSTGRESQL://u@h/db", "postgres"),
        ("postgresql://u@h/db?schema=audit", "postgres"),
        ("mysql://u@h/db", "mysql"),
        ("mariadb://u@h/db", "mysql"),
        ("MariaDB://u@h/db", "mysql"),
        ("  sqlite:x.db  ", "sqlite"),
    ],
)
def test_every_form_names_its_kind(text: str, kind: str) -> None:
    dsn = parse_dsn(text)
    assert dsn.kind == kind
    assert dsn.text == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "its form is not supported"),
        ("demo.sqlite", "its form is not supported"),
        ("memory", "its form is not supported"),
        (f"oracle://scott:{SECRET}@h/db", "scheme 'oracle' is not supported"),
        (f"host=h dbname=x password={SECRET}", "its form is not supported"),
        (f"pass:{SECRET}", "scheme 'pass' is not supported"),
        (f"{SECRET}@host:1/db", "is not supported"),
        ("sqlite:", "'sqlite:<path>'"),
        ("duckdb:", "'duckdb:<path>'"),
        ("sqlite:///tmp/demo.sqlite", "without '//'"),
        ("sqlite://x", "without '//'"),
        ("duckdb://x", "without '//'"),
        ("sqlite::memory:", "in-memory sqlite database keeps nothing"),
        ("duckdb::memory:", "in-memory duckdb database keeps nothing"),
        ("postgresql://", "lacks a host and database"),
        ("mysql://", "lacks a host and database"),
        ("mariadb://  ", "lacks a host and database"),
    ],
)
def test_malformed_locations_are_refused_without_echoing_them(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        parse_dsn(text, what="GATEWAY_X_DSN")
    assert str(caught.value.detail).startswith("GATEWAY_X_DSN: ")
    assert SECRET not in str(caught.value)
    assert SECRET not in (caught.value.internal_detail or "")


def test_unknown_forms_list_what_the_caller_accepts() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_dsn("redis://h", kinds=("memory", "sqlite"), what="replay")
    assert caught.value.detail == (
        "replay: scheme 'redis' is not supported; use memory:, sqlite:<path>"
    )


@pytest.mark.parametrize(
    ("text", "kinds", "kind"),
    [
        ("memory:", ("sqlite", "postgres"), "memory"),
        (f"mysql://u:{SECRET}@h/db", ("sqlite",), "mysql"),
        ("duckdb:x.duckdb", ("sqlite", "postgres", "mysql"), "duckdb"),
    ],
)
def test_a_kind_the_caller_does_not_support_is_refused(
    text: str, kinds: tuple[DsnKind, ...], kind: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"a {kind} location is not supported here"):
        parse_dsn(text, kinds=kinds, what="backend 'x'")


def test_every_kind_is_accepted_by_default() -> None:
    assert {parse_dsn(t).kind for t in ("memory:", "sqlite:a", "duckdb:b")} | {
        parse_dsn(t).kind for t in ("postgresql://h/d", "mysql://h/d")
    } == ALL_KINDS


def test_the_password_stays_out_of_repr() -> None:
    dsn = parse_dsn(f"postgresql://gw:{SECRET}@db/hr")
    assert SECRET not in repr(dsn)
    params = parse_dsn(f"mysql://gw:{SECRET}@db/hr").mysql_params()
    assert params.password == SECRET
    assert SECRET not in repr(params)


# ------------------------------------------------------------------------ files


def test_file_paths_are_absolute_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_dsn("sqlite:state/demo.sqlite").path == tmp_path / "state" / "demo.sqlite"
    assert parse_dsn("duckdb: data/x.duckdb").path == tmp_path / "data" / "x.duckdb"
    assert parse_dsn("sqlite:/srv/a.sqlite").path == Path("/srv/a.sqlite")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_dsn("sqlite:~/a.sqlite").path == tmp_path / "home" / "a.sqlite"


@pytest.mark.parametrize("text", ["memory:", "postgresql://h/db", "mysql://h/db"])
def test_only_file_kinds_name_a_path(text: str) -> None:
    with pytest.raises(ConfigurationError, match="names no file"):
        _ = parse_dsn(text, what="w").path


# ------------------------------------------------------------------------ PostgreSQL


def test_postgres_schema_is_extracted_and_the_rest_passed_on_verbatim() -> None:
    dsn = parse_dsn(
        f"postgresql://gw:{SECRET}@db:5432/hr?sslmode=require&schema=audit"
        "&application_name=a+b&options=-csearch_path%3Dx"
    )
    conninfo, schema = dsn.postgres_conninfo()
    assert schema == "audit"
    assert conninfo == (
        f"postgresql://gw:{SECRET}@db:5432/hr?sslmode=require"
        "&application_name=a+b&options=-csearch_path%3Dx"
    )


@pytest.mark.parametrize(
    ("text", "conninfo"),
    [
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgres://u@h/db?connect_timeout=2", "postgres://u@h/db?connect_timeout=2"),
        ("POSTGRESQL://u@h/db?schema=s", "postgresql://u@h/db"),
    ],
)
def test_postgres_without_schema(text: str, conninfo: str) -> None:
    assert parse_dsn(text).postgres_conninfo()[0] == conninfo


def test_postgres_schema_absent_is_none() -> None:
    assert parse_dsn("postgresql://u@h/db?sslmode=disable").postgres_conninfo() == (
        "postgresql://u@h/db?sslmode=disable",
        None,
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("schema=a&schema=b", "more than one 'schema' parameter"),
        ("schema=Audit", "lowercase identifier"),
        ("schema=", "lowercase identifier"),
        ("schema=a%20b", "lowercase identifier"),
        ("schema=a;drop", "lowercase identifier"),
        ("schema=1abc", "lowercase identifier"),
        ("schema=" + "a" * 64, "lowercase identifier"),
    ],
)
def test_bad_postgres_schemas_are_refused(query: str, message: str) -> None:
    dsn = parse_dsn(f"postgresql://u:{SECRET}@h/db?{query}", what="GATEWAY_AUDIT_DSN")
    with pytest.raises(ConfigurationError, match=message) as caught:
        dsn.postgres_conninfo()
    assert caught.value.detail.startswith("GATEWAY_AUDIT_DSN: ")
    assert SECRET not in str(caught.value)


def test_the_longest_schema_name_postgres_keeps_is_accepted() -> None:
    name = "a" * 63
    assert parse_dsn(f"postgresql://h/db?schema={name}").postgres_conninfo()[1] == name


@pytest.mark.parametrize("text", ["sqlite:x", "mysql://h/db", "memory:"])
def test_postgres_conninfo_of_another_kind_is_an_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="not a PostgreSQL URI"):
        parse_dsn(text).postgres_conninfo()


# ------------------------------------------------------------------------ MariaDB / MySQL


def test_mysql_params() -> None:
    p = parse_dsn(
        "mariadb://gw%40ro:p%40ss%3Aword@db.example.gov.cn:3307/civil"
        "?ssl_ca=/etc/ca.pem&ssl_verify_identity=true&connect_timeout=1.5"
    ).mysql_params()
    assert (p.host, p.port, p.user, p.password, p.database) == (
        "db.example.gov.cn",
        3307,
        "gw@ro",
        "p@ss:word",
        "civil",
    )
    assert p.ssl == {"ca": "/etc/ca.pem", "verify_identity": True}
    assert p.connect_timeout_s == 1.5
    assert "p@ss" not in repr(p)
    default = parse_dsn("mysql://root@localhost/test").mysql_params()
    assert (default.host, default.port, default.password, default.ssl) == (
        "localhost",
        3306,
        "",
        None,
    )
    assert (default.unix_socket, default.connect_timeout_s) == (None, 3.0)


def test_mysql_params_keep_a_plus_and_decode_percent_escapes() -> None:
    p = parse_dsn(
        "mysql://u@h/db?ssl_cert=/etc/a+b.pem&unix_socket=%2Frun%2Fmysqld.sock&ssl_verify_cert=0"
    ).mysql_params()
    assert p.unix_socket == "/run/mysqld.sock"
    assert p.ssl == {"cert": "/etc/a+b.pem", "verify_cert": False}


def test_mariadb_and_mysql_schemes_are_the_same_kind() -> None:
    a = parse_dsn(f"mariadb://u:{SECRET}@h:3306/db").mysql_params()
    b = parse_dsn(f"mysql://u:{SECRET}@h:3306/db").mysql_params()
    assert a == b


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"mysql://u:{SECRET}@h:notaport/db", "port is not a number"),
        (f"mysql://u:{SECRET}@h/", "names one database"),
        (f"mysql://u:{SECRET}@h", "names one database"),
        (f"mysql://u:{SECRET}@h/a/b", "names one database"),
        (f"mysql://u:{SECRET}@h/db?charset=latin1", "unknown option 'charset'"),
        (f"mysql://u:{SECRET}@h/db?ssl_verify_cert=maybe", "ssl_verify_cert must be true or false"),
        (f"mysql://u:{SECRET}@h/db?connect_timeout=soon", "connect_timeout is not a number"),
    ],
)
def test_bad_mysql_dsns_are_refused_without_the_password(text: str, message: str) -> None:
    dsn = parse_dsn(text, what="backend 'civil'")
    with pytest.raises(ConfigurationError, match=message) as caught:
        dsn.mysql_params()
    assert caught.value.detail.startswith("backend 'civil': ")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("text", ["sqlite:x", "postgresql://h/db"])
def test_mysql_params_of_another_kind_is_an_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="not a MariaDB/MySQL DSN"):
        parse_dsn(text).mysql_params()


# ------------------------------------------------------------------------ redaction


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (
            "postgresql://gw:s3cr3t@db:5432/hr?sslmode=require",
            "postgresql://gw:***@db:5432/hr?sslmode=require",
        ),
        ("mysql://root@h/db", "mysql://root@h/db"),
        ("mysql://u:p@[::1]:3306/db", "mysql://u:***@[::1]:3306/db"),
        ("mysql://u:p@h:notaport/db", "mysql://u:***@h:notaport/db"),
        ("mysql://u:p%40ss@h/db", "mysql://u:***@h/db"),
        ("mysql://:p@h/db", "mysql://:***@h/db"),
        ("sqlite:/x/y.sqlite", "sqlite:/x/y.sqlite"),
        ("memory:", "memory:"),
        (
            "postgresql://h/db?password=s3cr3t&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
        (
            "postgresql://u:a@h/db?sslpassword=b&application_name=x",
            "postgresql://u:***@h/db?sslpassword=***&application_name=x",
        ),
    ],
)
def test_redact_dsn(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


def test_dsn_equality_ignores_where_it_came_from() -> None:
    assert parse_dsn("sqlite:a", what="x") == parse_dsn("sqlite:a", what="y")
    assert parse_dsn("sqlite:a") == Dsn("sqlite", "sqlite:a")
