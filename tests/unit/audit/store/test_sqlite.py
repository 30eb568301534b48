"""SQLite store: durability settings, schema versioning, tamper detection, failures that
must leave nothing behind, and two processes appending to one file (the contract shared
with the other stores is in test_audit_stores.py)."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit import open_audit_store
from gateway.audit.store.protocol import SearchQuery
from gateway.audit.store.sql import SqlAuditStore
from gateway.audit.store.sqlite import SqliteDialect, open_sqlite_store
from gateway.errors import AuditUnavailableError, ConfigurationError
from gateway.tlog.rfc6962 import EMPTY_ROOT
from tests.unit.audit.support import (
    assert_log_consistent,
    interleaved,
    make_record,
    run_two_processes,
    test_signer,
)

SqliteStore = SqlAuditStore[sqlite3.Connection]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.sqlite"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    s = open_sqlite_store(db, test_signer())
    try:
        yield s
    finally:
        s.close()


def raw(db: Path) -> sqlite3.Connection:
    """A connection of an outsider (operator, attacker) to the same file."""
    return sqlite3.connect(db, isolation_level=None, timeout=5)


def fill(store: SqliteStore, n: int) -> None:
    for i in range(n):
        store.append(make_record(i))


def count_rows(db: Path) -> int:
    conn = raw(db)
    try:
        return int(conn.execute("SELECT count(*) FROM audit_log").fetchone()[0])
    finally:
        conn.close()


class TestDurabilitySettings:
    def test_file_mode_wal_and_synchronous_full(self, store: SqliteStore, db: Path) -> None:
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        conn = raw(db)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()
        # synchronous is per connection: ask one of the store's own (2 = FULL).
        level = store._run("test", lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert level == 2

    def test_records_survive_reopen(self, db: Path) -> None:
        with open_sqlite_store(db, test_signer()) as first:
            record = make_record(0)
            first.append(record)
        with open_sqlite_store(db, test_signer()) as second:
            assert second.size() == 1
            assert second.get(record.audit_id) == (0, record)
            assert second.append(make_record(1)) == 1

    def test_open_via_location(self, db: Path) -> None:
        store = open_audit_store(f"sqlite:{db}", test_signer())
        try:
            assert isinstance(store, SqlAuditStore)
            assert isinstance(store.dialect, SqliteDialect)
            assert store.append(make_record(0)) == 0
        finally:
            store.close()


class TestSchemaVersion:
    def test_schema_and_meta(self, store: SqliteStore, db: Path) -> None:
        conn = raw(db)
        try:
            meta = dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
            columns = [r[1] for r in conn.execute("PRAGMA table_info(audit_log)")]
        finally:
            conn.close()
        assert meta["schema_version"] == "4"
        assert "RFC 6962" in meta["leaf_hash"]
        assert "v2" in meta["record_encoding"]
        assert columns == [
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

    def test_tables_and_triggers(self, store: SqliteStore, db: Path) -> None:
        conn = raw(db)
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            triggers = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            }
            state = conn.execute("SELECT size, root FROM audit_state").fetchall()
        finally:
            conn.close()
        assert tables == {
            "audit_meta",
            "audit_state",
            "audit_log",
            "audit_checkpoints",
            "audit_keys",
            "audit_cosigned",
            "audit_archives",
        }
        assert triggers == {
            f"{t}_no_{v}"
            for t in (
                "audit_log",
                "audit_checkpoints",
                "audit_keys",
                "audit_cosigned",
                "audit_archives",
            )
            for v in ("update", "delete")
        }
        assert state == [(0, EMPTY_ROOT)]

    def test_unknown_schema_version_is_refused(self, db: Path) -> None:
        open_sqlite_store(db, test_signer()).close()
        conn = raw(db)
        conn.execute("UPDATE audit_meta SET value = '9' WHERE key = 'schema_version'")
        conn.close()
        with pytest.raises(ConfigurationError, match="schema version '9'"):
            open_sqlite_store(db, test_signer())

    @pytest.mark.parametrize("version", ["2", "3"])
    def test_older_store_gains_the_new_tables_and_keeps_its_log(
        self, db: Path, version: str
    ) -> None:
        with open_sqlite_store(db, test_signer()) as s:
            fill(s, 3)
            head = s.head()
        conn = raw(db)
        dropped = ["audit_archives"] + (["audit_cosigned"] if version == "2" else [])
        for table in dropped:
            for verb in ("UPDATE", "DELETE"):
                conn.execute(f"DROP TRIGGER {table}_no_{verb.lower()}")
            conn.execute(f"DROP TABLE {table}")
            conn.execute(f"DELETE FROM audit_meta WHERE key = '{table[6:]}'")
        # The plain append-only UPDATE trigger of versions 2 and 3.
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
        conn.execute(f"UPDATE audit_meta SET value = '{version}' WHERE key = 'schema_version'")
        conn.close()
        with open_sqlite_store(db, test_signer()) as s:
            assert s.head() == head
            s.check()
            s.add_cosigned(3, "o", "note 3")
            assert s.cosigned() == "note 3"
            assert s.archives() == []
        conn = raw(db)
        stored = conn.execute("SELECT value FROM audit_meta WHERE key = 'schema_version'")
        assert stored.fetchone()[0] == "4"
        keys = {r[0] for r in conn.execute("SELECT key FROM audit_meta")}
        assert {"cosigned", "archives"} <= keys
        # Still append-only: no archive covers any row.
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit_log SET record = x'' WHERE idx = 0")
        conn.close()

    def test_cosigned_checkpoints_are_kept_append_only(self, db: Path) -> None:
        with open_sqlite_store(db, test_signer()) as s:
            assert s.cosigned() is None
            s.add_cosigned(5, "o", "five")
            s.add_cosigned(9, "o", "nine")
            s.add_cosigned(9, "o", "nine, more witnesses")
            assert s.cosigned() == "nine, more witnesses"
            assert s.cosigned(8) == "five"
            assert s.cosigned(4) is None
        conn = raw(db)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit_cosigned")
        conn.close()

    def test_schema_1_log_is_refused(self, db: Path) -> None:
        # The layout of the previous milestone: no tree state, checkpoints or keys.
        conn = raw(db)
        conn.execute("CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO audit_meta VALUES ('schema_version', '1')")
        conn.execute("CREATE TABLE audit_state (id INTEGER PRIMARY KEY, size INTEGER)")
        conn.execute("CREATE TABLE audit_log (idx INTEGER PRIMARY KEY, record BLOB)")
        conn.close()
        with pytest.raises(ConfigurationError):
            open_sqlite_store(db, test_signer())

    def test_missing_schema_version_is_refused(self, db: Path) -> None:
        open_sqlite_store(db, test_signer()).close()
        conn = raw(db)
        conn.execute("DELETE FROM audit_meta")
        conn.close()
        with pytest.raises(ConfigurationError):
            open_sqlite_store(db, test_signer())

    def test_partial_schema_is_refused(self, db: Path) -> None:
        conn = raw(db)
        conn.execute("CREATE TABLE audit_log (idx INTEGER PRIMARY KEY, record BLOB)")
        conn.close()
        with pytest.raises(ConfigurationError, match="incomplete"):
            open_sqlite_store(db, test_signer())

    def test_unrelated_tables_are_left_alone(self, db: Path) -> None:
        conn = raw(db)
        conn.execute("CREATE TABLE other (x INTEGER)")
        conn.close()
        with open_sqlite_store(db, test_signer()) as s:
            assert s.append(make_record(0)) == 0


class TestAppendOnly:
    def test_update_and_delete_are_refused_by_the_database(
        self, store: SqliteStore, db: Path
    ) -> None:
        fill(store, 2)
        conn = raw(db)
        try:
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute("UPDATE audit_log SET department = 'x' WHERE idx = 0")
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute("DELETE FROM audit_log WHERE idx = 1")
        finally:
            conn.close()
        store.check()


class TestCheckDetectsTampering:
    @staticmethod
    def tamper(db: Path, *statements: str) -> None:
        conn = raw(db)
        try:
            # An attacker with file access simply drops the guards first.
            conn.execute("DROP TRIGGER audit_log_no_update")
            conn.execute("DROP TRIGGER audit_log_no_delete")
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()

    def test_edited_record_bytes(self, store: SqliteStore, db: Path) -> None:
        fill(store, 5)
        victim = next(r for idx, r in store.search(SearchQuery(limit=5)) if idx == 1)
        self.tamper(
            db,
            "UPDATE audit_log SET record = CAST(replace(CAST(record AS TEXT),"
            " '\"row_count\":12', '\"row_count\":0') AS BLOB) WHERE idx = 1",
        )
        with pytest.raises(AuditUnavailableError, match="row 1: stored leaf hash") as info:
            store.check()
        assert info.value.status == 503
        # Readers refuse the doubtful record rather than return it.
        with pytest.raises(AuditUnavailableError):
            store.get(victim.audit_id)

    def test_edited_bytes_with_recomputed_hash_but_not_canonical(
        self, store: SqliteStore, db: Path
    ) -> None:
        fill(store, 3)
        conn = raw(db)
        data = bytes(conn.execute("SELECT record FROM audit_log WHERE idx = 2").fetchone()[0])
        conn.close()
        pretty = data.replace(b",", b", ")
        conn = raw(db)
        conn.create_function(
            "leaf", 1, lambda b: __import__("hashlib").sha256(b"\x00" + b).digest()
        )
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute(
            "UPDATE audit_log SET record = ?, leaf_hash = leaf(?) WHERE idx = 2", (pretty, pretty)
        )
        conn.close()
        with pytest.raises(AuditUnavailableError, match="row 2: record bytes are not a canonical"):
            store.check()

    def test_edited_search_column(self, store: SqliteStore, db: Path) -> None:
        fill(store, 3)
        self.tamper(db, "UPDATE audit_log SET department = 'someone else' WHERE idx = 0")
        with pytest.raises(AuditUnavailableError, match="row 0: searchable columns disagree"):
            store.check()

    def test_deleted_row_leaves_a_gap(self, store: SqliteStore, db: Path) -> None:
        fill(store, 6)
        self.tamper(db, "DELETE FROM audit_log WHERE idx = 3")
        with pytest.raises(AuditUnavailableError, match="expected index 3, found 4"):
            store.check()

    def test_deleted_tail_is_detected_and_blocks_appends(
        self, store: SqliteStore, db: Path
    ) -> None:
        fill(store, 4)
        self.tamper(db, "DELETE FROM audit_log WHERE idx = 3")
        with pytest.raises(AuditUnavailableError, match="size is 4 but 3 rows"):
            store.check()
        # A process that reads the log (here: a new store) refuses to extend it.
        with open_sqlite_store(db, test_signer()) as fresh:
            with pytest.raises(AuditUnavailableError) as info:
                fresh.append(make_record(9))
            assert "3 entries stored" in (info.value.internal_detail or "")
            # Still refused on the next attempt: the detection does not wear off.
            with pytest.raises(AuditUnavailableError):
                fresh.append(make_record(10))
        assert count_rows(db) == 3

    def test_rolled_back_state_is_refused_by_a_process_that_saw_more(
        self, store: SqliteStore, db: Path
    ) -> None:
        fill(store, 3)
        conn = raw(db)
        root_at_3 = bytes(conn.execute("SELECT root FROM audit_state").fetchone()[0])
        conn.close()
        fill(store, 2)
        # Roll the log back to its first 3 entries, consistently (rows and state).
        self.tamper(
            db,
            "DELETE FROM audit_log WHERE idx >= 3",
        )
        conn = raw(db)
        conn.execute("UPDATE audit_state SET size = 3, root = ?", (root_at_3,))
        conn.close()
        with pytest.raises(AuditUnavailableError) as info:
            store.append(make_record(9))
        assert "rolled back" in (info.value.internal_detail or "")


class TestUnavailable:
    def test_nonexistent_directory(self, tmp_path: Path) -> None:
        missing = tmp_path / "no" / "such" / "dir"
        with pytest.raises(AuditUnavailableError) as info:
            open_audit_store(f"sqlite:{missing / 'audit.sqlite'}", test_signer())
        assert info.value.status == 503
        assert info.value.internal_detail  # the OS reason, for the operator
        assert not missing.exists()

    def test_path_is_a_directory(self, tmp_path: Path) -> None:
        with pytest.raises(AuditUnavailableError):
            open_audit_store(f"sqlite:{tmp_path}", test_signer())

    @pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
    def test_read_only_directory(self, tmp_path: Path) -> None:
        folder = tmp_path / "ro"
        folder.mkdir()
        open_sqlite_store(folder / "audit.sqlite", test_signer()).close()
        (folder / "audit.sqlite").chmod(0o400)
        folder.chmod(0o500)
        try:
            with pytest.raises(AuditUnavailableError):
                s = open_sqlite_store(folder / "audit.sqlite", test_signer())
                try:
                    s.append(make_record(0))
                finally:
                    s.close()
        finally:
            folder.chmod(0o700)
            (folder / "audit.sqlite").chmod(0o600)
        with open_sqlite_store(folder / "audit.sqlite", test_signer()) as s:
            assert s.size() == 0

    def test_files_made_immutable_after_open(self, store: SqliteStore, db: Path) -> None:
        # chattr +i refuses writes even through descriptors opened earlier, and even
        # for root (unlike chmod): the closest thing to a disk turning read-only.
        fill(store, 2)
        targets = [str(db), f"{db}-wal"]
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("chattr not available")

        def run(flag: str) -> subprocess.CompletedProcess[bytes]:
            # Fixed executable and arguments: our own temporary files.
            return subprocess.run([chattr, flag, *targets], capture_output=True, check=False)  # noqa: S603

        probe = run("+i")
        if probe.returncode != 0:
            run("-i")
            pytest.skip(f"chattr +i not supported here: {probe.stderr!r}")
        try:
            with pytest.raises(AuditUnavailableError) as info:
                store.append(make_record(2))
            assert info.value.status == 503
        finally:
            assert run("-i").returncode == 0
        store.close()
        with open_sqlite_store(db, test_signer()) as again:
            assert again.size() == 2
            again.check()
            assert again.append(make_record(3)) == 2

    def test_file_replaced_by_directory_after_open(self, store: SqliteStore, db: Path) -> None:
        fill(store, 3)
        moved = db.with_name("moved.sqlite")
        db.rename(moved)
        db.mkdir()
        with pytest.raises(AuditUnavailableError) as info:
            store.append(make_record(3))
        assert info.value.retry_after == 5
        with pytest.raises(AuditUnavailableError):
            store.size()
        # Put the file back: nothing was written while it was away.
        db.rmdir()
        moved.rename(db)
        with open_sqlite_store(db, test_signer()) as again:
            assert again.size() == 3
            again.check()

    def test_file_deleted_after_open(self, store: SqliteStore, db: Path) -> None:
        fill(store, 2)
        db.unlink()
        with pytest.raises(AuditUnavailableError):
            store.append(make_record(2))
        # No fresh, empty log was created in its place.
        assert not db.exists()

    def test_failure_inside_the_transaction_leaves_no_row_and_no_gap(
        self, store: SqliteStore, db: Path
    ) -> None:
        fill(store, 3)
        head = store.head()
        conn = raw(db)
        # Fault injection: the INSERT fails after the size was advanced in the same
        # transaction (as a full disk or an I/O error would).
        conn.execute(
            "CREATE TRIGGER fault BEFORE INSERT ON audit_log WHEN NEW.idx = 3"
            " BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        )
        conn.close()
        with pytest.raises(AuditUnavailableError) as info:
            store.append(make_record(3))
        assert "injected fault" in (info.value.internal_detail or "")
        assert "injected fault" not in info.value.detail  # database text stays internal
        assert store.size() == 3
        assert store.head() == head
        assert count_rows(db) == 3
        conn = raw(db)
        conn.execute("DROP TRIGGER fault")
        conn.close()
        assert store.append(make_record(4)) == 3
        assert_log_consistent(store)

    def test_locked_database_times_out(self, db: Path) -> None:
        with open_sqlite_store(db, test_signer(), busy_timeout_s=0.2) as store:
            fill(store, 1)
            holder = raw(db)
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                started = time.monotonic()
                with pytest.raises(AuditUnavailableError) as info:
                    store.append(make_record(1))
                assert time.monotonic() - started < 5
                assert "locked" in (info.value.internal_detail or "")
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert store.size() == 1
            assert store.append(make_record(2)) == 1
            store.check()

    def test_other_process_holding_the_writer_lock_times_out(self, db: Path) -> None:
        with open_sqlite_store(db, test_signer(), busy_timeout_s=0.2) as store:
            fill(store, 1)
            # flock locks belong to an open file description: this fd is "another process".
            fd = os.open(f"{db}-gwlock", os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with pytest.raises(AuditUnavailableError) as info:
                    store.append(make_record(1))
                assert "processes" in (info.value.internal_detail or "")
                assert store.size() == 1
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            # The abandoned wait must not keep the lock: the next append gets it.
            assert store.append(make_record(2)) == 1
            fd = os.open(f"{db}-gwlock", os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
            finally:
                os.close(fd)

    def test_writer_waits_for_other_process_then_proceeds(self, db: Path) -> None:
        with open_sqlite_store(db, test_signer(), busy_timeout_s=10) as store:
            fd = os.open(f"{db}-gwlock", os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX)

            def unlock() -> None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

            releaser = threading.Timer(0.3, unlock)
            releaser.start()
            started = time.monotonic()
            assert store.append(make_record(0)) == 0
            assert time.monotonic() - started >= 0.25
            releaser.join()

    def test_reads_do_not_wait_for_the_writer(self, store: SqliteStore) -> None:
        # Reads use a connection of their own, never the writer's: while another thread
        # holds the writer lock (an append under way), they still answer at once.
        fill(store, 3)
        assert store._write_lock.acquire(timeout=5)
        try:
            started = time.monotonic()
            assert store.size() == 3
            assert [i for i, _ in store.search(SearchQuery(limit=2))] == [2, 1]
            assert store.head().size == 3
            assert len(store.entries(0, 3)) == 3
            store.check()
            assert time.monotonic() - started < 2
        finally:
            store._write_lock.release()

    def test_reader_does_not_block_writer(self, store: SqliteStore, db: Path) -> None:
        fill(store, 2)
        reader = raw(db)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM audit_log").fetchone()
        try:
            done = threading.Event()

            def write() -> None:
                store.append(make_record(5))
                done.set()

            t = threading.Thread(target=write)
            t.start()
            t.join(timeout=10)
            assert done.is_set()
        finally:
            reader.execute("ROLLBACK")
            reader.close()


def test_store_inherited_through_fork_refuses_to_write(store: SqliteStore, db: Path) -> None:
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


def test_two_processes_append_contiguously(db: Path) -> None:
    open_sqlite_store(db, test_signer()).close()
    got = run_two_processes(f"sqlite:{db}", 200)
    all_indices = sorted(got["proc-a"] + got["proc-b"])
    assert all_indices == list(range(400))
    # Both processes were really appending at the same time.
    assert interleaved(got["proc-a"])
    assert interleaved(got["proc-b"])
    with open_sqlite_store(db, test_signer()) as store:
        assert store.size() == 400
        assert_log_consistent(store)
        assert len(store.search(SearchQuery(system="proc-a", limit=1000))) == 200
        # One checkpoint per append, each for a distinct size.
        assert len(store.checkpoints(0, limit=1000)) == 401


def test_two_processes_append_batches_contiguously(db: Path) -> None:
    open_sqlite_store(db, test_signer()).close()
    got = run_two_processes(f"sqlite:{db}", 120, batch=8)
    assert sorted(got["proc-a"] + got["proc-b"]) == list(range(240))
    with open_sqlite_store(db, test_signer()) as store:
        assert store.size() == 240
        assert_log_consistent(store)
