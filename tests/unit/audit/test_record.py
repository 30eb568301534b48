"""AuditRecord: canonical encoding v2 (golden bytes), round trip, float rejection, the v2
fields (rows_root, grants), RFC 6962 leaf hash, ids and times."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import (
    ENCODING_VERSION,
    AuditRecord,
    Outcome,
    canonical_json,
    format_time,
    leaf_hash_of,
    new_audit_id,
)
from gateway.audit.record import is_audit_time
from tests.unit.audit.support import make_record


def golden_record(**changes: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "audit_id": "0198f0c2-7a40-7000-8000-000000000001",
        "time": "2026-11-23T19:00:00.123456Z",
        "request_id": "req-1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "department": "市公安局",
        "system": "population-portal",
        "officer": "张伟",
        "purpose": "social_assistance",
        "client_ip": "10.0.0.7",
        "sql": "SELECT name FROM population.people WHERE district = '海淀区'",
        "rewritten_sql": None,
        "backend": "demo",
        "policy_version": "sha256:0f1e",
        "tables": ("population.people", "population.households"),
        "decisions": {
            "population.people.name": "mask:name",
            "population.people.id_number": "deny",
            "population.households.id": "allow",
        },
        "rules": {"population.people.name": "p, civil_affairs, population.people.name, mask:name"},
        "row_filters": ("district = '海淀区'",),
        "max_rows": 1000,
        "row_count": 12,
        "truncated": True,
        "response_sha256": "ab" * 32,
        "rows_root": "cd" * 32,
        "grants": ("approval:2026-0042", "rule:conditional/population"),
        "outcome": Outcome.SERVED,
        "status": 200,
        "error_code": None,
        "reason": None,
        "internal_reason": 'line1\nline2\t"quoted"',
        "duration_us": 1834,
        # The golden bytes below are a version 2 record: still read and re-encoded
        # byte for byte; version 3 has its own golden value (TestVersion3).
        "v": 2,
    }
    fields.update(changes)
    return AuditRecord(**fields)


GOLDEN = (
    '{"audit_id":"0198f0c2-7a40-7000-8000-000000000001","backend":"demo",'
    '"client_ip":"10.0.0.7","decisions":{"population.households.id":"allow",'
    '"population.people.id_number":"deny","population.people.name":"mask:name"},'
    '"department":"市公安局","duration_us":1834,"error_code":null,'
    '"grants":["approval:2026-0042","rule:conditional/population"],'
    '"internal_reason":"line1\\nline2\\t\\"quoted\\"","max_rows":1000,"officer":"张伟",'
    '"outcome":"served","policy_version":"sha256:0f1e","purpose":"social_assistance",'
    '"reason":null,"request_id":"req-1","response_sha256":"' + "ab" * 32 + '",'
    '"rewritten_sql":null,"row_count":12,"row_filters":["district = \'海淀区\'"],'
    '"rows_root":"' + "cd" * 32 + '",'
    '"rules":{"population.people.name":"p, civil_affairs, population.people.name, mask:name"},'
    '"sql":"SELECT name FROM population.people WHERE district = \'海淀区\'","status":200,'
    '"system":"population-portal","tables":["population.people","population.households"],'
    '"time":"2026-11-23T19:00:00.123456Z","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",'
    '"truncated":true,"v":2}'
).encode("utf-8")

#: SHA-256(0x00 || GOLDEN), pinned so that any change of the encoding is noticed.
GOLDEN_LEAF_HEX = "67a7c95514f22bfbcea061655ed63666f3791b1d45241a18ce9b9d423c67d4da"


class TestCanonicalBytes:
    def test_golden_value(self) -> None:
        assert golden_record().canonical_bytes() == GOLDEN

    def test_chinese_is_raw_utf8_not_escaped(self) -> None:
        data = golden_record().canonical_bytes()
        assert "市公安局".encode() in data
        assert b"\\u" not in data
        data.decode("utf-8")  # strictly valid UTF-8

    def test_member_order_does_not_depend_on_insertion_order(self) -> None:
        a = golden_record(decisions={"b.t.c": "deny", "a.t.c": "allow"})
        b = golden_record(decisions={"a.t.c": "allow", "b.t.c": "deny"})
        assert a.canonical_bytes() == b.canonical_bytes()
        assert b'"decisions":{"a.t.c":"allow","b.t.c":"deny"}' in a.canonical_bytes()

    def test_tuple_order_is_kept(self) -> None:
        data = golden_record(tables=("z.t", "a.t")).canonical_bytes()
        assert b'"tables":["z.t","a.t"]' in data

    def test_version_member_present(self) -> None:
        assert ENCODING_VERSION == 3
        assert json.loads(golden_record().canonical_bytes())["v"] == 2

    def test_members_are_exactly_the_v2_fields(self) -> None:
        members = list(json.loads(golden_record().canonical_bytes()))
        v2 = sorted(f.name for f in dataclasses.fields(AuditRecord) if f.name != "event")
        assert members == v2
        assert {"rows_root", "grants", "v"} <= set(members)
        assert len(members) == 30

    def test_grants_keep_their_order(self) -> None:
        data = golden_record(grants=("z", "a")).canonical_bytes()
        assert b'"grants":["z","a"]' in data

    def test_lists_are_accepted_and_stored_as_tuples(self) -> None:
        record = golden_record(tables=["a.t"], row_filters=[])
        assert record.tables == ("a.t",)
        assert record.row_filters == ()

    def test_mappings_are_copied_read_only(self) -> None:
        decisions = {"a.t.c": "allow"}
        record = golden_record(decisions=decisions)
        before = record.canonical_bytes()
        decisions["a.t.c"] = "deny"
        assert record.canonical_bytes() == before
        with pytest.raises(TypeError):
            record.decisions["a.t.c"] = "deny"  # type: ignore[index]


class TestCanonicalJson:
    def test_keys_sort_by_utf16_code_units(self) -> None:
        # RFC 8785 §3.2.3: U+1F600 is the surrogate pair D83D DE00, which sorts before
        # U+FFFD in UTF-16 although its code point is larger.
        assert canonical_json({"\ufffd": 1, "\U0001f600": 2}) == (
            '{"\U0001f600":2,"\ufffd":1}'.encode()
        )

    def test_string_escapes_follow_rfc8785(self) -> None:
        assert canonical_json('\x01\b\f\n\r\t"\\/\x7f') == (b'"\\u0001\\b\\f\\n\\r\\t\\"\\\\/\x7f"')

    def test_scalars(self) -> None:
        assert canonical_json([None, True, False, 0, -5, "x"]) == b'[null,true,false,0,-5,"x"]'

    @pytest.mark.parametrize(
        "value", [1.0, 1.5, float("nan"), float("inf"), [1, {"a": 2.5}], {"a": [0.0]}]
    )
    def test_float_rejected_anywhere(self, value: object) -> None:
        with pytest.raises(TypeError, match="float"):
            canonical_json(value)

    @pytest.mark.parametrize("value", [2**53, -(2**53), 10**30])
    def test_unsafe_integers_rejected(self, value: int) -> None:
        with pytest.raises(ValueError, match="2\\*\\*53"):
            canonical_json(value)

    def test_largest_safe_integer_accepted(self) -> None:
        assert canonical_json(2**53 - 1) == b"9007199254740991"

    def test_lone_surrogate_rejected(self) -> None:
        with pytest.raises(ValueError):
            canonical_json("\ud800")

    @pytest.mark.parametrize("value", [{1: "a"}, {b"k": "a"}, b"bytes", {"a"}, object()])
    def test_non_json_types_rejected(self, value: object) -> None:
        with pytest.raises(TypeError):
            canonical_json(value)


class TestFloatsInRecords:
    @pytest.mark.parametrize("name", ["max_rows", "row_count", "duration_us", "status"])
    def test_float_field_rejected_at_construction(self, name: str) -> None:
        with pytest.raises(TypeError):
            golden_record(**{name: 200.0})

    def test_float_smuggled_past_construction_rejected_by_encoding(self) -> None:
        record = golden_record()
        object.__setattr__(record, "max_rows", 1.5)  # bypass validation on purpose
        with pytest.raises(TypeError, match="float"):
            record.canonical_bytes()

    def test_float_in_stored_bytes_rejected_by_decoding(self) -> None:
        data = GOLDEN.replace(b'"max_rows":1000', b'"max_rows":1000.0')
        with pytest.raises(ValueError, match="float"):
            AuditRecord.from_canonical(data)


class TestRoundTrip:
    def test_round_trip(self) -> None:
        record = golden_record()
        back = AuditRecord.from_canonical(record.canonical_bytes())
        assert back == record
        assert back.canonical_bytes() == record.canonical_bytes()
        assert isinstance(back.outcome, Outcome)
        assert back.tables == record.tables

    def test_round_trip_with_nulls_for_unauthenticated_request(self) -> None:
        record = golden_record(
            department=None,
            system=None,
            officer=None,
            purpose=None,
            sql=None,
            backend=None,
            policy_version=None,
            tables=(),
            decisions={},
            rules={},
            row_filters=(),
            max_rows=None,
            row_count=None,
            truncated=False,
            response_sha256=None,
            rows_root=None,
            grants=(),
            outcome=Outcome.REFUSED,
            status=401,
            error_code="unauthenticated",
            reason="The credentials are missing, invalid or expired.",
            internal_reason="unknown key id",
            duration_us=None,
        )
        assert AuditRecord.from_canonical(record.canonical_bytes()) == record

    @settings(max_examples=200)
    @given(
        text=st.text(),
        keys=st.dictionaries(st.text(), st.text(), max_size=5),
        items=st.lists(st.text(), max_size=5),
        count=st.none() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    )
    def test_round_trip_property(
        self, text: str, keys: dict[str, str], items: list[str], count: int | None
    ) -> None:
        record = golden_record(
            reason=text,
            sql=text,
            decisions=keys,
            rules=keys,
            tables=items,
            grants=items,
            row_count=count,
        )
        data = record.canonical_bytes()
        assert AuditRecord.from_canonical(data) == record
        assert json.loads(data) == record.to_json_object()

    @pytest.mark.parametrize(
        ("description", "data"),
        [
            ("whitespace", GOLDEN.replace(b'"v":2', b'"v": 2')),
            ("escaped non-ASCII", GOLDEN.replace("张伟".encode(), b"\\u5f20\\u4f1f")),
            ("key order", b'{"v":2,' + GOLDEN[1 : -len(b',"v":2}')] + b"}"),
            ("duplicate key", GOLDEN[:-1] + b',"v":2}'),
            ("missing member", GOLDEN.replace(b'"backend":"demo",', b"")),
            ("extra member", GOLDEN.replace(b'"v":2}', b'"v":2,"x":null}')),
            ("version 1", GOLDEN.replace(b'"v":2}', b'"v":1}')),
            ("other version", GOLDEN.replace(b'"v":2}', b'"v":3}')),
            ("bool version", GOLDEN.replace(b'"v":2}', b'"v":true}')),
            (
                "v1 member set",
                GOLDEN.replace(
                    b'"grants":["approval:2026-0042","rule:conditional/population"],', b""
                )
                .replace(b'"rows_root":"' + b"cd" * 32 + b'",', b"")
                .replace(b'"v":2}', b'"v":1}'),
            ),
            ("missing grants", GOLDEN.replace(b'"grants":["approval:2026-0042",', b'"x":[')),
            (
                "grants not an array",
                GOLDEN.replace(
                    b'"grants":["approval:2026-0042","rule:conditional/population"]',
                    b'"grants":"approval:2026-0042"',
                ),
            ),
            ("grants holding a number", GOLDEN.replace(b'"approval:2026-0042"', b"42")),
            ("rows_root uppercase", GOLDEN.replace(b"cd" * 32, b"CD" * 32)),
            ("rows_root short", GOLDEN.replace(b"cd" * 32, b"cd" * 31)),
            (
                "wrong member type",
                GOLDEN.replace(b'"tables":[', b'"tables":{"a":[').replace(
                    b'"population.households"],', b'"population.households"]},'
                ),
            ),
            ("unknown outcome", GOLDEN.replace(b'"served"', b'"maybe"')),
            ("invalid UTF-8", GOLDEN.replace("张".encode(), b"\xff\xfe\xfd")),
            ("not an object", b"[1]"),
            ("BOM", b"\xef\xbb\xbf" + GOLDEN),
            ("NaN", GOLDEN.replace(b'"max_rows":1000', b'"max_rows":NaN')),
        ],
    )
    def test_non_canonical_input_rejected(self, description: str, data: bytes) -> None:
        with pytest.raises(ValueError):
            AuditRecord.from_canonical(data)


class TestLeafHash:
    def test_leaf_hash_is_sha256_of_zero_prefix_and_bytes(self) -> None:
        record = golden_record()
        expected = hashlib.sha256(b"\x00" + record.canonical_bytes()).digest()
        assert record.leaf_hash() == expected
        assert leaf_hash_of(record.canonical_bytes()) == expected
        assert len(expected) == 32

    def test_leaf_hash_golden(self) -> None:
        assert golden_record().leaf_hash().hex() == GOLDEN_LEAF_HEX

    def test_leaf_hash_is_domain_separated(self) -> None:
        # RFC 6962 §2.1: a leaf hash is never the plain hash of the entry, nor an
        # interior-node hash (prefix 0x01) of the same bytes.
        data = golden_record().canonical_bytes()
        assert leaf_hash_of(data) != hashlib.sha256(data).digest()
        assert leaf_hash_of(data) != hashlib.sha256(b"\x01" + data).digest()

    def test_any_field_change_changes_leaf_hash(self) -> None:
        base = golden_record()
        assert dataclasses.replace(base, row_count=13).leaf_hash() != base.leaf_hash()


class TestValidation:
    @pytest.mark.parametrize(
        "changes",
        [
            {"time": "2026-11-23T19:00:00Z"},
            {"time": "2026-11-23T19:00:00.123456+00:00"},
            {"time": "2026-13-23T19:00:00.123456Z"},
            {"audit_id": ""},
            {"response_sha256": "AB" * 32},
            {"response_sha256": "ab"},
            {"status": 99},
            {"status": 600},
            {"outcome": "maybe"},
            {"v": 1},
            {"v": 4},
            {"rows_root": "CD" * 32},
            {"rows_root": "cd" * 31},
            {"rows_root": "cd" * 33},
            {"rows_root": "xy" * 32},
            {"rows_root": ""},
            {"rows_root": "cd" * 32 + "\n"},
        ],
    )
    def test_bad_values(self, changes: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            golden_record(**changes)

    @pytest.mark.parametrize(
        "changes",
        [
            {"department": 5},
            {"tables": ("a", 1)},
            {"tables": "population.people"},
            {"decisions": {"a": 1}},
            {"decisions": [("a", "b")]},
            {"truncated": 1},
            {"status": True},
            {"max_rows": True},
            {"request_id": None},
            {"rows_root": 5},
            {"rows_root": b"\xcd" * 32},
            {"grants": "approval:2026-0042"},
            {"grants": ("a", 1)},
            {"grants": None},
            {"grants": {"a": "b"}},
            {"v": True},
        ],
    )
    def test_bad_types(self, changes: dict[str, Any]) -> None:
        with pytest.raises(TypeError):
            golden_record(**changes)

    def test_grants_list_becomes_tuple(self) -> None:
        record = golden_record(grants=["b", "a"])
        assert record.grants == ("b", "a")
        assert AuditRecord.from_canonical(record.canonical_bytes()) == record

    def test_optional_v2_fields(self) -> None:
        record = golden_record(rows_root=None, grants=())
        data = record.canonical_bytes()
        assert b'"rows_root":null' in data
        assert b'"grants":[]' in data
        assert AuditRecord.from_canonical(data) == record

    def test_rows_root_changes_leaf_hash(self) -> None:
        base = golden_record()
        assert dataclasses.replace(base, rows_root="ce" * 32).leaf_hash() != base.leaf_hash()
        assert dataclasses.replace(base, grants=()).leaf_hash() != base.leaf_hash()

    def test_outcome_given_as_text_becomes_enum(self) -> None:
        assert golden_record(outcome="failed").outcome is Outcome.FAILED


class TestIdsAndTimes:
    def test_format_time(self) -> None:
        plus8 = timezone(timedelta(hours=8))
        moment = datetime(2026, 11, 24, 3, 0, 0, 5, tzinfo=plus8)
        assert format_time(moment) == "2026-11-23T19:00:00.000005Z"
        assert is_audit_time(format_time(moment))

    def test_format_time_rejects_naive(self) -> None:
        with pytest.raises(ValueError):
            format_time(datetime(2026, 1, 1))

    def test_audit_id_is_uuid7_with_time_prefix(self) -> None:
        now = datetime(2026, 11, 23, 19, 0, 0, 123456, tzinfo=UTC)
        text = new_audit_id(now, random_bytes=lambda n: b"\xff" * n)
        u = uuid.UUID(text)
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        assert u.int >> 80 == int(now.timestamp() * 1000)
        # Deterministic given the clock and the randomness.
        assert text == new_audit_id(now, random_bytes=lambda n: b"\xff" * n)

    def test_audit_ids_sort_by_time_even_within_a_millisecond(self) -> None:
        start = datetime(2026, 11, 23, 19, 0, 0, tzinfo=UTC)
        times = [start + timedelta(microseconds=us) for us in (0, 250, 500, 999, 1000, 10**6)]

        def high(n: int) -> bytes:
            return b"\xff" * n

        def low(n: int) -> bytes:
            return b"\0" * n

        # Alternate the largest and smallest randomness: the order must come from time.
        ids = [
            new_audit_id(t, random_bytes=high if i % 2 == 0 else low) for i, t in enumerate(times)
        ]
        assert ids == sorted(ids)

    def test_audit_ids_are_unique(self) -> None:
        now = datetime(2026, 11, 23, 19, 0, 0, tzinfo=UTC)
        assert len({new_audit_id(now) for _ in range(1000)}) == 1000

    def test_audit_id_rejects_naive_and_out_of_range(self) -> None:
        with pytest.raises(ValueError):
            new_audit_id(datetime(2026, 1, 1))
        with pytest.raises(ValueError):
            new_audit_id(datetime(1969, 12, 31, tzinfo=UTC))

    def test_make_record_helper_builds_valid_records(self) -> None:
        record = make_record(3)
        assert AuditRecord.from_canonical(record.canonical_bytes()) == record


GOLDEN_V3_EVENT = {
    "type": "application.approved",
    "application": "APP-2026-0042",
    "narrowed": {"dropped": ["population.people.phone"], "row_cap": 100},
    "from": "under_review",
    "to": "approved",
}


class TestVersion3:
    """Version 3 adds ``event`` (what an administrative action changed)."""

    def test_new_records_are_version_3_with_an_event_member(self) -> None:
        record = golden_record(v=3, event=GOLDEN_V3_EVENT)
        data = record.canonical_bytes()
        obj = json.loads(data)
        assert obj["v"] == 3 and len(obj) == 31
        assert list(obj["event"]) == sorted(GOLDEN_V3_EVENT)
        assert AuditRecord.from_canonical(data) == record
        assert AuditRecord.from_canonical(data).canonical_bytes() == data

    def test_a_data_access_has_a_null_event(self) -> None:
        data = golden_record(v=3).canonical_bytes()
        assert b'"event":null' in data
        assert AuditRecord.from_canonical(data).event is None

    def test_version_2_records_have_no_event_and_cannot_carry_one(self) -> None:
        assert b'"event"' not in GOLDEN
        with pytest.raises(ValueError, match="version 3"):
            golden_record(v=2, event={"type": "x"})
        with pytest.raises(ValueError, match="members differ"):
            AuditRecord.from_canonical(
                GOLDEN.replace(b'"error_code"', b'"event":null,"error_code"')
            )

    def test_a_v3_record_without_its_event_member_is_refused(self) -> None:
        data = golden_record(v=3).canonical_bytes().replace(b'"event":null,', b"")
        with pytest.raises(ValueError, match="members differ"):
            AuditRecord.from_canonical(data)

    def test_the_event_is_a_frozen_canonical_copy(self) -> None:
        event: dict[str, object] = {"type": "grant.revoked", "grant": "GR-1"}
        record = golden_record(v=3, event=event)
        event["grant"] = "GR-2"
        assert record.event is not None and record.event["grant"] == "GR-1"
        with pytest.raises(TypeError):
            golden_record(v=3, event={"type": "x", "amount": 1.5})
