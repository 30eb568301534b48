"""PostgreSQL store: location parsing, schema versioning, durability settings, tamper
detection, failures that must leave nothing behind, reconnects, and two processes (the
contract shared with the other stores is in test_audit_stores.py)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import psycopg
import pytest

from gateway.audit import AuditRecord, leaf_hash_of, open_audit_store
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.postgres import PgConnection, PostgresDialect
from gateway.audit.store.protocol import SearchQuery, TreeHead
from gateway.audit.store.sql import SqlAuditStore
from gateway.errors import AuditUnavailableError, ConfigurationError
from gateway.tlog.note import add_signatures
from gateway.tlog.rfc6962 import EMPTY_ROOT, verify_consistency
from tests.unit.audit.support import (
    assert_log_consistent,
    interleaved,
    make_record,
    run_two_processes,
    test_signer,
)

pytestmark = pytest.mark.services

PgStore = SqlAuditStore[PgConnection]


def pg_store(dsn: str, signer: CheckpointSigner, **options: Any) -> PgStore:
    """A store in ``options["schema"]`` with the dialect's other options."""
    return SqlAuditStore(PostgresDialect(dsn, **options), signer)


TABLES = {
    "audit_log",
    "audit_meta",
    "audit_state",
    "audit_checkpoints",
    "audit_keys",
    "audit_cosigned",
    "audit_archives",
}


@pytest.fixture
def store(pg_schema: tuple[str, str]) -> Iterator[PgStore]:
    dsn, schema = pg_schema
    s = pg_store(dsn, test_signer(), schema=schema)
    try:
        yield s
    finally:
        s.close()


def admin(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """A connection of an outsider (operator, attacker) to the same database."""
    return psycopg.connect(dsn, autocommit=True)


def fill(store: PgStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.append(make_record(i))


def count_rows(dsn: str, schema: str, table: str = "audit_log") -> int:
    with admin(dsn) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone()
        assert row is not None
        return int(str(row[0]))


class TestLocation:
    def test_schema_query_parameter(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        store = open_audit_store(f"{dsn}?connect_timeout=3&schema={schema}", test_signer())
        try:
            assert isinstance(store, SqlAuditStore)
            assert isinstance(store.dialect, PostgresDialect)
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
        assert tables == TABLES
        assert count_rows(dsn, schema) == 1

    @pytest.mark.parametrize("schema", ["Audit", "a-b", "x;drop", "1abc", ""])
    def test_bad_schema_name(self, pg_dsn: str, schema: str) -> None:
        with pytest.raises(ConfigurationError):
            pg_store(pg_dsn, test_signer(), schema=schema)

    def test_repeated_schema_parameter(self, pg_dsn: str) -> None:
        with pytest.raises(ConfigurationError):
            open_audit_store(f"{pg_dsn}?schema=a&schema=b", test_signer())

    def test_dead_server_is_unavailable(self) -> None:
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError) as info:
            open_audit_store(
                "postgresql://postgres@127.0.0.1:1/test?schema=t_audit_dead", test_signer()
            )
        assert time.monotonic() - started < 10
        assert info.value.status == 503
        assert "127.0.0.1" not in info.value.detail  # connection details stay internal
        assert info.value.internal_detail


class TestSchema:
    def test_synchronous_commit_forced_on(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        # Even if the DSN (or the server) turns it off, the store turns it back on.
        location = f"{dsn}?options=-c%20synchronous_commit%3Doff&schema={schema}"
        store = open_audit_store(location, test_signer())
        assert isinstance(store, SqlAuditStore)
        assert isinstance(store.dialect, PostgresDialect)
        try:
            value = store._run("test", lambda c: c.execute("SHOW synchronous_commit").fetchone())
            assert value == ("on",)
        finally:
            store.close()

    def test_meta_state_keys_and_first_checkpoint(
        self, store: PgStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        signer = test_signer()
        with admin(dsn) as conn:
            meta = {
                str(k): str(v)
                for k, v in conn.execute(f'SELECT key, value FROM "{schema}".audit_meta')
            }
            state = conn.execute(f'SELECT size, root FROM "{schema}".audit_state').fetchall()
            keys = conn.execute(
                f'SELECT from_size, origin, vkey, handover FROM "{schema}".audit_keys'
            ).fetchall()
            checkpoints = conn.execute(
                f'SELECT size, origin, root, note FROM "{schema}".audit_checkpoints'
            ).fetchall()
        assert meta["schema_version"] == "4"
        assert "RFC 6962" in meta["leaf_hash"]
        assert state == [(0, EMPTY_ROOT)]
        assert keys == [(0, signer.origin, signer.verifier.encode(), None)]
        assert checkpoints == [(0, signer.origin, EMPTY_ROOT, store.head().checkpoint)]

    def test_columns_and_collations(self, store: PgStore, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with admin(dsn) as conn:
            rows = conn.execute(
                "SELECT table_name, column_name, data_type, collation_name"
                " FROM information_schema.columns WHERE table_schema = %s"
                " ORDER BY table_name, ordinal_position",
                (schema,),
            ).fetchall()
        columns = {(str(r[0]), str(r[1])): (str(r[2]), r[3]) for r in rows}
        assert [c for t, c in columns if t == "audit_log"] == [
            "idx",
            "audit_id",
            "time",
            "department",
            "system",
            "purpose",
            "outcome",
            "datasets",
            "sql",
            "record",
            "leaf_hash",
        ]
        for name in ("audit_id", "time", "department", "system", "purpose", "datasets", "sql"):
            assert columns["audit_log", name] == ("text", "C")
        assert columns["audit_log", "record"] == ("bytea", None)
        assert columns["audit_state", "root"] == ("bytea", None)
        assert columns["audit_checkpoints", "origin"] == ("text", "C")
        assert columns["audit_keys", "origin"] == ("text", "C")
        assert [c for t, c in columns if t == "audit_checkpoints"] == [
            "seq",
            "size",
            "origin",
            "root",
            "note",
        ]
        assert [c for t, c in columns if t == "audit_keys"] == [
            "seq",
            "from_size",
            "origin",
            "vkey",
            "handover",
        ]

    def test_unknown_schema_version_is_refused(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        pg_store(dsn, test_signer(), schema=schema).close()
        with admin(dsn) as conn:
            conn.execute(
                f"UPDATE \"{schema}\".audit_meta SET value = '9' WHERE key = 'schema_version'"
            )
        with pytest.raises(ConfigurationError, match="schema version '9'"):
            pg_store(dsn, test_signer(), schema=schema)

    def test_schema_1_log_is_refused_by_its_version(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with admin(dsn) as conn:
            # The layout of the previous milestone.
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".audit_meta (key TEXT PRIMARY KEY, value TEXT)')
            conn.execute(f"INSERT INTO \"{schema}\".audit_meta VALUES ('schema_version', '1')")
            conn.execute(f'CREATE TABLE "{schema}".audit_state (id BOOLEAN, size BIGINT)')
            conn.execute(f'CREATE TABLE "{schema}".audit_log (idx BIGINT PRIMARY KEY)')
        with pytest.raises(ConfigurationError, match="schema version '1'"):
            pg_store(dsn, test_signer(), schema=schema)

    def test_partial_schema_is_refused(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with admin(dsn) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".audit_log (idx BIGINT PRIMARY KEY)')
        with pytest.raises(ConfigurationError, match="incomplete"):
            pg_store(dsn, test_signer(), schema=schema)

    def test_unrelated_tables_are_left_alone(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with admin(dsn) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".other (x INT)')
        with pg_store(dsn, test_signer(), schema=schema) as s:
            assert s.append(make_record(0)) == 0

    def test_concurrent_first_open_creates_schema_once(self, pg_schema: tuple[str, str]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        dsn, schema = pg_schema
        with ThreadPoolExecutor(4) as pool:
            stores = list(pool.map(lambda _: pg_store(dsn, test_signer(), schema=schema), range(4)))
        try:
            assert [s.append(make_record(i)) for i, s in enumerate(stores)] == [0, 1, 2, 3]
            assert len(stores[0].key_history()) == 1
            assert len(stores[0].checkpoints(0)) == 5  # one empty head, one per append
            assert_log_consistent(stores[3])
        finally:
            for s in stores:
                s.close()


class TestAppendOnly:
    @pytest.mark.parametrize("table", ["audit_log", "audit_checkpoints", "audit_keys"])
    def test_update_delete_truncate_are_refused(
        self, store: PgStore, pg_schema: tuple[str, str], table: str
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 2)
        column = {"audit_log": "idx", "audit_checkpoints": "note", "audit_keys": "vkey"}[table]
        with admin(dsn) as conn:
            for statement in (
                f'UPDATE "{schema}".{table} SET {column} = {column}',
                f'DELETE FROM "{schema}".{table}',
                f'TRUNCATE "{schema}".{table}',
            ):
                with pytest.raises(psycopg.errors.RaiseException, match=f"{table} is append-only"):
                    conn.execute(statement)
        store.check()


class TestCheckDetectsTampering:
    @staticmethod
    def tamper(dsn: str, schema: str, *statements: str) -> None:
        with admin(dsn) as conn:
            # An attacker with DBA rights simply disables the guards first.
            conn.execute(f'ALTER TABLE "{schema}".audit_log DISABLE TRIGGER USER')
            for statement in statements:
                conn.execute(statement)

    def test_edited_record_bytes(self, store: PgStore, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        fill(store, 5)
        victim = next(r for idx, r in store.search(SearchQuery(limit=5)) if idx == 2)
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
        with pytest.raises(AuditUnavailableError):
            store.entries(0, 5)

    def test_edited_search_column(self, store: PgStore, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        fill(store, 3)
        self.tamper(
            dsn, schema, f"UPDATE \"{schema}\".audit_log SET purpose = 'other' WHERE idx = 1"
        )
        with pytest.raises(AuditUnavailableError, match="row 1: searchable columns disagree"):
            store.check()

    def test_deleted_row_leaves_a_gap(self, store: PgStore, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        fill(store, 6)
        self.tamper(dsn, schema, f'DELETE FROM "{schema}".audit_log WHERE idx = 3')
        with pytest.raises(AuditUnavailableError, match="expected index 3, found 4"):
            store.check()

    def test_deleted_tail_blocks_appends_of_this_process_too(
        self, store: PgStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 4)
        self.tamper(dsn, schema, f'DELETE FROM "{schema}".audit_log WHERE idx = 3')
        with pytest.raises(AuditUnavailableError, match="size is 4 but 3 rows"):
            store.check()
        # The open store already knows entry 3; its read-back from the last committed
        # entry notices that it is gone.
        with pytest.raises(AuditUnavailableError) as info:
            store.append(make_record(9))
        assert "entry 3 was removed or changed" in (info.value.internal_detail or "")
        assert count_rows(dsn, schema) == 3
        assert store.size() == 4

    def test_rewritten_last_entry_blocks_appends(
        self, store: PgStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 3)
        with admin(dsn) as conn:
            row = conn.execute(f'SELECT record FROM "{schema}".audit_log WHERE idx = 2').fetchone()
        assert row is not None
        forged = bytes(cast(bytes, row[0])).replace(b'"row_count":12', b'"row_count":0')
        AuditRecord.from_canonical(forged)
        with admin(dsn) as conn:
            conn.execute(f'ALTER TABLE "{schema}".audit_log DISABLE TRIGGER USER')
            conn.execute(
                f'UPDATE "{schema}".audit_log SET record = %s, leaf_hash = %s WHERE idx = 2',
                (forged, leaf_hash_of(forged)),
            )
        with pytest.raises(AuditUnavailableError) as info:
            store.append(make_record(3))
        assert "entry 2 was removed or changed" in (info.value.internal_detail or "")

    def test_rollback_detection_does_not_wear_off(
        self, store: PgStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 3)
        root_at_3 = store.head().root
        fill(store, 2, start=3)
        # Roll rows, state and checkpoints back to size 3, consistently.
        with admin(dsn) as conn:
            for table in ("audit_log", "audit_checkpoints"):
                conn.execute(f'ALTER TABLE "{schema}".{table} DISABLE TRIGGER USER')
            conn.execute(f'DELETE FROM "{schema}".audit_log WHERE idx >= 3')
            conn.execute(f'DELETE FROM "{schema}".audit_checkpoints WHERE size > 3')
            conn.execute(f'UPDATE "{schema}".audit_state SET size = 3, root = %s', (root_at_3,))
        for _ in range(3):
            with pytest.raises(AuditUnavailableError) as info:
                store.append(make_record(9))
            assert "rolled back" in (info.value.internal_detail or "")
        assert count_rows(dsn, schema) == 3

    def test_broken_escape_in_a_search_column(
        self, store: PgStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        store.append(make_record(0, sql="a\x00b", purpose="p\uffff"))
        with admin(dsn) as conn:
            stored = conn.execute(f'SELECT sql, purpose FROM "{schema}".audit_log').fetchone()
        assert stored == ("a\uffff0b", "p\uffff\uffff")  # U+0000 cannot be stored as text
        store.check()
        self.tamper(dsn, schema, f"UPDATE \"{schema}\".audit_log SET purpose = 'p\uffff'")
        with pytest.raises(AuditUnavailableError, match="row 0: searchable columns disagree"):
            store.check()


class TestFailures:
    def test_failure_inside_the_transaction_leaves_no_row_and_no_gap(
        self, store: PgStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        fill(store, 3)
        head = store.head()
        with admin(dsn) as conn:
            # Fault injection: the insert fails inside the append's transaction.
            conn.execute(
                f'CREATE FUNCTION "{schema}".fault() RETURNS trigger LANGUAGE plpgsql AS'
                " $$BEGIN IF NEW.idx = 4 THEN RAISE EXCEPTION 'injected fault'; END IF;"
                " RETURN NEW; END$$"
            )
            conn.execute(
                f'CREATE TRIGGER fault BEFORE INSERT ON "{schema}".audit_log'
                f' FOR EACH ROW EXECUTE FUNCTION "{schema}".fault()'
            )
        with pytest.raises(AuditUnavailableError) as info:
            store.append_batch([make_record(3), make_record(4), make_record(5)])
        assert "injected fault" in (info.value.internal_detail or "")
        assert "injected fault" not in info.value.detail
        assert store.size() == 3
        assert store.head() == head
        assert count_rows(dsn, schema) == 3
        assert count_rows(dsn, schema, "audit_checkpoints") == 4
        with admin(dsn) as conn:
            conn.execute(f'DROP TRIGGER fault ON "{schema}".audit_log')
        done = store.append_batch([make_record(6), make_record(7)])
        assert (done.first, done.head.size) == (3, 5)
        verify_consistency(3, 5, head.root, done.head.root, store.consistency_proof(3, 5))
        assert_log_consistent(store)

    def test_commit_is_never_retried(self, store: PgStore, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        fill(store, 2)
        head = store.head()
        with admin(dsn) as conn:
            # At COMMIT (a deferred trigger), count the attempt in a sequence (outside
            # any transaction) and kill the session: the client loses the connection
            # while COMMIT is in flight, on a reused pooled connection.
            conn.execute(f'CREATE SEQUENCE "{schema}".commit_attempts')
            conn.execute(
                f'CREATE FUNCTION "{schema}".die() RETURNS trigger LANGUAGE plpgsql AS'
                f" $$BEGIN PERFORM nextval('\"{schema}\".commit_attempts');"
                " PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5);"
                " RETURN NULL; END$$"
            )
            conn.execute(
                f'CREATE CONSTRAINT TRIGGER die AFTER INSERT ON "{schema}".audit_checkpoints'
                " DEFERRABLE INITIALLY DEFERRED"
                f' FOR EACH ROW EXECUTE FUNCTION "{schema}".die()'
            )
        with pytest.raises(AuditUnavailableError) as info:
            store.append(make_record(2))
        assert "CommitOutcomeUnknown" in (info.value.internal_detail or "")
        with admin(dsn) as conn:
            attempts = conn.execute(
                f'SELECT last_value, is_called FROM "{schema}".commit_attempts'
            ).fetchone()
            assert attempts == (1, True)  # exactly one COMMIT was sent
            conn.execute(f'DROP TRIGGER die ON "{schema}".audit_checkpoints')
        # The session died before committing: nothing was stored, and the tree that
        # had sealed the batch forgot it again.
        assert store.size() == 2
        assert store.head() == head
        assert store.append(make_record(3)) == 2
        assert_log_consistent(store)

    def test_lock_wait_is_bounded(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with pg_store(dsn, test_signer(), schema=schema, lock_timeout_ms=200) as store:
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

    def test_thread_wait_is_bounded(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        with pg_store(dsn, test_signer(), schema=schema, lock_timeout_ms=200) as store:
            store._write_lock.acquire()  # another thread of this process is appending
            try:
                with pytest.raises(AuditUnavailableError) as info:
                    store.append(make_record(0))
                assert "threads" in (info.value.internal_detail or "")
            finally:
                store._write_lock.release()
            assert store.append(make_record(1)) == 0

    def test_dead_pooled_connection_is_replaced(
        self, store: PgStore, pg_schema: tuple[str, str]
    ) -> None:
        dsn, _ = pg_schema
        fill(store, 2)
        pid = store._run("test", lambda c: c.info.backend_pid)
        with admin(dsn) as conn:
            row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
            assert row == (True,)
        # The pooled connection is dead; the append fails before COMMIT, so it is
        # retried on a fresh connection and succeeds.
        done = store.append_batch([make_record(2), make_record(3)])
        assert (done.first, done.head.size) == (2, 4)
        assert store._run("test", lambda c: c.info.backend_pid) != pid
        assert_log_consistent(store)

    def test_server_gone_after_open(self, pg_schema: tuple[str, str]) -> None:
        dsn, schema = pg_schema
        store = pg_store(dsn, test_signer(), schema=schema)
        try:
            fill(store, 1)
            head = store.head()
            # Point new connections at a dead port and kill the pooled one: every
            # retry fails, so the caller sees 503 and nothing was written.
            dialect = store.dialect
            assert isinstance(dialect, PostgresDialect)
            dialect.pool.conninfo = "postgresql://postgres@127.0.0.1:1/test"
            pid = store._run("test", lambda c: c.info.backend_pid)
            with admin(dsn) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(AuditUnavailableError):
                store.append(make_record(1))
            assert count_rows(dsn, schema) == 1
            dialect.pool.conninfo = dsn
            assert store.head() == head
            assert store.append(make_record(2)) == 1
        finally:
            store.close()

    def test_proofs_after_close_are_unavailable(self, store: PgStore) -> None:
        fill(store, 3)
        assert store.inclusion_proof(0, 3)
        store.close()
        with pytest.raises(AuditUnavailableError):
            store.inclusion_proof(0, 3)
        with pytest.raises(AuditUnavailableError):
            store.consistency_proof(1, 3)


class TestCatchUp:
    def test_far_behind_process_catches_up_without_the_row_lock(
        self, pg_schema: tuple[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        dsn, schema = pg_schema
        with (
            pg_store(dsn, test_signer(), schema=schema) as busy,
            pg_store(dsn, test_signer(), schema=schema) as idle,
        ):
            monkeypatch.setattr(idle, "_locked_catch_up_max", 5)
            busy.append_batch([make_record(i) for i in range(20)])
            snapshots: list[int] = []
            original = idle._catch_up_snapshot

            def spy(conn: Any) -> None:
                snapshots.append(idle._sequencer.size)
                original(conn)

            monkeypatch.setattr(idle, "_catch_up_snapshot", spy)
            assert idle.append(make_record(20)) == 20
            assert snapshots == [0]  # caught up once, outside the locked transaction
            # A small lag is caught up inside the transaction.
            busy.append_batch([make_record(i) for i in range(21, 24)])
            assert idle.append(make_record(24)) == 24
            assert snapshots == [0]
            assert_log_consistent(idle)

    def test_rotation_by_another_process_is_seen_after_the_row_lock(
        self, pg_schema: tuple[str, str]
    ) -> None:
        dsn, schema = pg_schema
        old, new = test_signer(), test_signer("audit.test.invalid/2")
        with (
            pg_store(dsn, old, schema=schema, lock_timeout_ms=10_000) as stale,
            pg_store(dsn, old, schema=schema) as rotator,
        ):
            fill(stale, 2)
            # The rotation holds the row lock while the stale store starts to append.
            entered, release = threading.Event(), threading.Event()
            result: list[object] = []

            def handover(final: TreeHead) -> str:
                entered.set()
                release.wait(10)
                return add_signatures(final.checkpoint, [new.note_signer])

            rotating = threading.Thread(target=lambda: result.append(rotator.rotate(new, handover)))
            rotating.start()
            assert entered.wait(10)
            outcome: list[BaseException | int] = []

            def append() -> None:
                try:
                    outcome.append(stale.append(make_record(2)))
                except BaseException as exc:
                    outcome.append(exc)

            appending = threading.Thread(target=append)
            appending.start()
            time.sleep(0.3)  # the append now waits for the row lock
            assert not outcome
            release.set()
            rotating.join(10)
            appending.join(10)
            assert len(result) == 1
            assert len(outcome) == 1
            assert isinstance(outcome[0], AuditUnavailableError)
            assert "not by the configured key" in (outcome[0].internal_detail or "")
            assert rotator.size() == 2


def test_store_inherited_through_fork_refuses_to_write(store: PgStore) -> None:
    fill(store, 1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: report through the exit status only
        code = 3
        try:
            store.append(make_record(1))
        except AuditUnavailableError:
            code = 0
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.size() == 1
    assert store.append(make_record(2)) == 1  # the parent's store is unaffected


def test_two_processes_append_contiguously(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    location = f"{dsn}?schema={schema}"
    pg_store(dsn, test_signer(), schema=schema).close()
    got = run_two_processes(location, 150)
    assert sorted(got["proc-a"] + got["proc-b"]) == list(range(300))
    assert interleaved(got["proc-a"])
    assert interleaved(got["proc-b"])
    with pg_store(dsn, test_signer(), schema=schema) as store:
        assert store.size() == 300
        assert_log_consistent(store)
        assert len(store.checkpoints(0, limit=1000)) == 301


def test_two_processes_append_batches_contiguously(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    pg_store(dsn, test_signer(), schema=schema).close()
    got = run_two_processes(f"{dsn}?schema={schema}", 120, batch=8)
    assert sorted(got["proc-a"] + got["proc-b"]) == list(range(240))
    with pg_store(dsn, test_signer(), schema=schema) as store:
        assert store.size() == 240
        assert_log_consistent(store)


def test_cosigned_checkpoints_are_stored(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    with pg_store(dsn, test_signer(), schema=schema) as store:
        assert store.cosigned() is None
        store.add_cosigned(2, "o", "two")
        store.add_cosigned(7, "o", "seven")
        assert store.cosigned() == "seven"
        assert store.cosigned(6) == "two"
