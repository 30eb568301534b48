"""PostgreSQL store: location parsing, schema versioning, durability settings, tamper
detection, failures that must leave nothing behind, reconnects, and two processes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from audit_support import interleaved, make_record, run_two_processes

from gateway.audit import open_audit_store
from gateway.audit.postgres import PostgresAuditStore
from gateway.errors import AuditUnavailableError, ConfigurationError

pytestmark = pytest.mark.services


@pytest.fixture
def store(pg_schema: tuple[str, str]) -> Iterator[PostgresAuditStore]:
    dsn, schema = pg_schema
    s = PostgresAuditStore(dsn, schema=schema)
    try:
        yield s
    finally:
        s.close()


def admin(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """A connection of an outsider (operator, attacker) to the same database."""
    return psycopg.connect(dsn, autocommit=True)


def fill(store: PostgresAuditStore, n: int) -> None:
    for i in range(n):
        store.append(make_record(i))


def count_rows(dsn: str, schema: str) -> int:
    with admin(dsn) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".audit_log').fetchone()
        assert row is not None
        return int(str(row[0]))


class TestLocation:
    def test_schema_query_parameter(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        store = open_audit_store(f"{dsn}?connect_timeout=3&schema={schema}")
        try:
            assert isinstance(store, PostgresAuditStore)
            assert store.append(make_record(0)) == 0
        finally:
            store.close()
        with admin(dsn) as conn:
            tables = {
                str(r[0])
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            }
        assert tables == {"audit_log", "audit_meta", "audit_state"}
        assert count_rows(dsn, schema) == 1

    @pytest.mark.parametrize("schema", ["Audit", "a-b", "x;drop", "1abc", ""])
    def test_bad_schema_name(self, pg_dsn: str, schema: str) -> None:
        with pytest.raises(ConfigurationError):
            PostgresAuditStore(pg_dsn, schema=schema)

    def test_repeated_schema_parameter(self, pg_dsn: str) -> None:
        with pytest.raises(ConfigurationError):
            open_audit_store(f"{pg_dsn}?schema=a&schema=b")

    def test_dead_server_is_unavailable(self) -> None:
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError) as info:
            open_audit_store("postgresql://postgres@127.0.0.1:1/test?schema=t_audit_dead")
        assert time.monotonic() - started < 10
        assert info.value.status == 503
        assert "127.0.0.1" not in info.value.detail  # connection details stay internal
        assert info.value.internal_detail


class TestSettings:
    def test_synchronous_commit_forced_on(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        # Even if the DSN (or the server) turns it off, the store turns it back on.
        location = f"{dsn}?options=-c%20synchronous_commit%3Doff&schema={schema}"
        store = open_audit_store(location)
        assert isinstance(store, PostgresAuditStore)
        try:
            value = store._run("test", lambda c: c.execute("SHOW synchronous_commit").fetchone())
            assert value == ("on",)
        finally:
            store.close()

    def test_meta_rows(self, store: PostgresAuditStore, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with admin(dsn) as conn:
            meta = {
                str(k): str(v)
                for k, v in conn.execute(f'SELECT key, value FROM "{schema}".audit_meta')
            }
        assert meta["schema_version"] == "1"

    def test_unknown_schema_version_is_refused(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        PostgresAuditStore(dsn, schema=schema).close()
        with admin(dsn) as conn:
            conn.execute(
                f"UPDATE \"{schema}\".audit_meta SET value = '2' WHERE key = 'schema_version'"
            )
        with pytest.raises(ConfigurationError, match="schema version '2'"):
            PostgresAuditStore(dsn, schema=schema)

    def test_partial_schema_is_refused(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with admin(dsn) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".audit_log (idx BIGINT PRIMARY KEY)')
        with pytest.raises(ConfigurationError, match="incomplete"):
            PostgresAuditStore(dsn, schema=schema)

    def test_concurrent_first_open_creates_schema_once(self, pg_schema: tuple[str, str]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        dsn, schema = pg_schema
        with ThreadPoolExecutor(4) as pool:
            stores = list(pool.map(lambda _: PostgresAuditStore(dsn, schema=schema), range(4)))
        try:
            assert [s.append(make_record(i)) for i, s in enumerate(stores)] == [0, 1, 2, 3]
        finally:
            for s in stores:
                s.close()


class TestAppendOnly:
    def test_update_delete_truncate_are_refused(
        self, store: PostgresAuditStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 2)
        with admin(dsn) as conn:
            for statement in (
                f"UPDATE \"{schema}\".audit_log SET department = 'x' WHERE idx = 0",
                f'DELETE FROM "{schema}".audit_log WHERE idx = 1',
                f'TRUNCATE "{schema}".audit_log',
            ):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    conn.execute(statement)
        store.check()


class TestCheckDetectsTampering:
    @staticmethod
    def tamper(dsn: str, schema: str, statement: str) -> None:
        with admin(dsn) as conn:
            # An attacker with DBA rights simply disables the guard first.
            conn.execute(f'ALTER TABLE "{schema}".audit_log DISABLE TRIGGER audit_log_no_change')
            conn.execute(statement)

    def test_edited_record_bytes(
        self, store: PostgresAuditStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 5)
        victim = next(r for idx, r in store.search(limit=5) if idx == 2)
        self.tamper(
            dsn,
            schema,
            f'UPDATE "{schema}".audit_log SET record = convert_to(replace('
            f"convert_from(record, 'UTF8'), '\"row_count\":12', '\"row_count\":0'), 'UTF8')"
            " WHERE idx = 2",
        )
        with pytest.raises(AuditUnavailableError, match="row 2: stored leaf hash"):
            store.check()
        with pytest.raises(AuditUnavailableError):
            store.get(victim.audit_id)

    def test_deleted_row_leaves_a_gap(
        self, store: PostgresAuditStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 6)
        self.tamper(dsn, schema, f'DELETE FROM "{schema}".audit_log WHERE idx = 3')
        with pytest.raises(AuditUnavailableError, match="expected index 3, found 4"):
            store.check()

    def test_deleted_tail_is_detected_and_blocks_appends(
        self, store: PostgresAuditStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 4)
        self.tamper(dsn, schema, f'DELETE FROM "{schema}".audit_log WHERE idx = 3')
        with pytest.raises(AuditUnavailableError, match="size is 4 but 3 rows"):
            store.check()
        with pytest.raises(AuditUnavailableError) as info:
            store.append(make_record(9))
        assert "disagrees" in (info.value.internal_detail or "")
        assert count_rows(dsn, schema) == 3
        assert store.size() == 4  # the failed append's increment was rolled back


class TestFailures:
    def test_failure_inside_the_transaction_leaves_no_row_and_no_gap(
        self, store: PostgresAuditStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 3)
        with admin(dsn) as conn:
            # Fault injection: the INSERT fails after audit_state.size was advanced in
            # the same transaction.
            conn.execute(
                f'CREATE FUNCTION "{schema}".fault() RETURNS trigger LANGUAGE plpgsql AS'
                " $$BEGIN IF NEW.idx = 3 THEN RAISE EXCEPTION 'injected fault'; END IF;"
                " RETURN NEW; END$$"
            )
            conn.execute(
                f'CREATE TRIGGER fault BEFORE INSERT ON "{schema}".audit_log'
                f' FOR EACH ROW EXECUTE FUNCTION "{schema}".fault()'
            )
        with pytest.raises(AuditUnavailableError) as info:
            store.append(make_record(3))
        assert "injected fault" in (info.value.internal_detail or "")
        assert "injected fault" not in info.value.detail
        assert store.size() == 3
        assert count_rows(dsn, schema) == 3
        with admin(dsn) as conn:
            conn.execute(f'DROP TRIGGER fault ON "{schema}".audit_log')
        assert store.append(make_record(4)) == 3
        store.check()

    def test_lock_wait_is_bounded(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with PostgresAuditStore(dsn, schema=schema, lock_timeout_ms=200) as store:
            fill(store, 1)
            with admin(dsn) as holder:
                holder.execute("BEGIN")
                holder.execute(f'SELECT size FROM "{schema}".audit_state FOR UPDATE')
                started = time.monotonic()
                with pytest.raises(AuditUnavailableError) as info:
                    store.append(make_record(1))
                assert time.monotonic() - started < 5
                assert "lock" in (info.value.internal_detail or "")
                holder.execute("ROLLBACK")
            assert store.size() == 1
            assert store.append(make_record(2)) == 1
            store.check()

    def test_dead_pooled_connection_is_replaced(
        self, store: PostgresAuditStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, _ = pg_schema
        fill(store, 2)
        pid = store._run("test", lambda c: c.info.backend_pid)
        with admin(dsn) as conn:
            row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
            assert row == (True,)
        # The pooled connection is dead; the append fails before COMMIT, so it is
        # retried on a fresh connection and succeeds.
        assert store.append(make_record(2)) == 2
        assert store._run("test", lambda c: c.info.backend_pid) != pid
        store.check()

    def test_server_gone_after_open(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        store = PostgresAuditStore(dsn, schema=schema)
        try:
            fill(store, 1)
            # Point new connections at a dead port and kill the pooled one: every
            # retry fails, so the caller sees 503 and nothing was written.
            store._conninfo = "postgresql://postgres@127.0.0.1:1/test"
            pid = store._run("test", lambda c: c.info.backend_pid)
            with admin(dsn) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(AuditUnavailableError):
                store.append(make_record(1))
            assert count_rows(dsn, schema) == 1
        finally:
            store.close()


def test_two_processes_append_contiguously(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    location = f"{dsn}?schema={schema}"
    PostgresAuditStore(dsn, schema=schema).close()
    got = run_two_processes(location, 150)
    assert sorted(got["proc-a"] + got["proc-b"]) == list(range(300))
    assert interleaved(got["proc-a"])
    assert interleaved(got["proc-b"])
    with PostgresAuditStore(dsn, schema=schema) as store:
        assert store.size() == 300
        store.check()
