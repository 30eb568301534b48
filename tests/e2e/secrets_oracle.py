"""The attack oracle: what each consumer system may see of the demo world, and the strings
that must never appear in a response to it.

Everything is computed from :func:`gateway.demo.generate.generate_demo_data` (the exact rows
loaded into every backend), the demo pseudonym secret and the masks' Python reference
(:func:`gateway.query.rewrite.masks.mask_value`). The policy of ``policies/policy.csv`` is
restated here *independently* (:func:`masked_view`), as the specification the gateway is
tested against: if the two disagree, the attack tests say so.

A forbidden string is a raw protected value that no legitimate answer to that system can
contain: ``raw values - values the system legitimately sees``. That subtraction is what
keeps the oracle honest about collisions (a legal representative's name is visible in
clear to swj-tax, so it is not forbidden there; a 历下区 resident's pseudonym is visible to
rsj-subsidy, a 市中区 resident's is not).

Scanning is regex-first: the response is cut into runs of digits, hex digits and CJK
characters, and each fixed-length window of a run is looked up in a set, so one scan costs
O(response length x number of distinct marker lengths), whatever the size of the sets.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.auth.keys import load_pseudonym_secret
from gateway.demo.generate import DemoData, generate_demo_data
from gateway.domain import MaskSpec
from gateway.query.rewrite.masks import MaskContext, derive_pseudonym_key, mask_value

__all__ = [
    "SYSTEMS",
    "DemoWorld",
    "Forbidden",
    "demo_world",
    "find_leaks",
    "forbidden_for",
    "masked_view",
    "names_an_engine",
    "response_text",
]

ROOT = Path(__file__).resolve().parents[2]

#: Consumer systems the oracle knows (mzj-suspended is suspended: it sees nothing).
SYSTEMS = ("rsj-subsidy", "rsj-portal", "ybj-insurance", "swj-tax", "tjj-stats", "mzj-suspended")

Row = Mapping[str, Any]
View = Mapping[str, tuple[Row, ...]]

_NAME_WINDOWS = (2, 3, 4)
_HEX_WINDOW = 32
_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_DIGIT_RUN = re.compile(r"[0-9Xx]{11,}")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
_CJK_RUN = re.compile(f"[{_CJK}]{{2,}}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HAO = re.compile(r"[0-9]{1,3}号")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True, slots=True)
class DemoWorld:
    """The demo data, the pseudonym keys of every department and the catalog."""

    data: DemoData
    master_secret: bytes
    #: department code -> its 32-byte pseudonym key (catalog ``[departments]``).
    keys: Mapping[str, bytes]
    #: district -> city (catalog ``[regions]``).
    regions: Mapping[str, str]
    #: The catalog file's text: public documentation (GET /v1/catalog shows it).
    catalog_text: str

    def pseudonym(self, department: str, value: str) -> str:
        """The ``pseudonym`` mask of ``value`` under ``department``'s key."""
        ctx = MaskContext(pseudonym_key=self.keys[department], regions=self.regions)
        out = mask_value(MaskSpec("pseudonym"), value, column_type="text", ctx=ctx)
        assert isinstance(out, str)
        return out

    def mask(self, spec: str, value: object, column_type: str = "text") -> object:
        """Any other mask, by its policy text (``name``, ``bucket:500``, ``city`` ...)."""
        ctx = MaskContext(pseudonym_key=self.keys["rsj"], regions=self.regions)
        return mask_value(MaskSpec.parse(spec), value, column_type=column_type, ctx=ctx)


def _all_ids(world: DemoWorld) -> frozenset[str]:
    d = world.data
    return frozenset(
        [p[2] for p in d.people]
        + [e[4] for e in d.enterprises]
        + [g[1] for g in d.subsidies]
        + [i[1] for i in d.incidents]
    )


@functools.cache
def demo_world() -> DemoWorld:
    """The world every backend is loaded with (computed once per test session)."""
    catalog_path = ROOT / "policies" / "catalog.toml"
    catalog_text = catalog_path.read_text(encoding="utf-8")
    catalog = tomllib.loads(catalog_text)
    secret = load_pseudonym_secret(ROOT / "keys" / "demo")
    keys = {dept: derive_pseudonym_key(secret, dept) for dept in sorted(catalog["departments"])}
    return DemoWorld(
        data=generate_demo_data(),
        master_secret=secret,
        keys=keys,
        regions=dict(catalog["regions"]),
        catalog_text=catalog_text,
    )


# ------------------------------------------------------------------ the policy, restated


@functools.cache
def masked_view(system: str) -> View:
    """What ``system`` may read, table by table, exactly as the gateway must serve it:
    rows after the row filter, denied columns absent, masks applied. This is the spec
    (policies/policy.csv, restated by hand), not a copy of the gateway's code."""
    w = demo_world()
    d = w.data

    def people(dept: str, district: str | None, id_mask: str, address: bool) -> tuple[Row, ...]:
        rows = []
        for pid, name, idn, born, gender, phone, addr, dist in d.people:
            if district is not None and dist != district:
                continue
            row: dict[str, Any] = {
                "person_id": pid,
                "name": w.mask("name", name),
                "id_number": (
                    w.pseudonym(dept, idn) if id_mask == "pseudonym" else w.mask(id_mask, idn)
                ),
                "birth_date": born.isoformat(),
                "gender": gender,
                "phone": w.mask("phone", phone),
            }
            if address:
                row["address"] = w.mask("address", addr)
            row["district"] = dist  # catalog column order: what SELECT * returns
            rows.append(row)
        return tuple(rows)

    def grants(dept: str, district: str | None) -> tuple[Row, ...]:
        return tuple(
            {
                "grant_id": gid,
                "recipient_id_number": w.pseudonym(dept, rid),
                "program": program,
                "amount": amount,
                "granted_date": day.isoformat(),
                "district": dist,
            }
            for gid, rid, program, amount, _card, day, dist in d.subsidies
            if district is None or dist == district
        )

    def enterprises(dept: str, rep_clear: bool, rep_id: bool) -> tuple[Row, ...]:
        rows = []
        for eid, name, code, rep, rep_idn, capital, status, est, dist in d.enterprises:
            row: dict[str, Any] = {
                "enterprise_id": eid,
                "name": name,
                "credit_code": code,
                "legal_rep": rep if rep_clear else w.mask("name", rep),
                "registered_capital": capital,
                "status": status,
                "established_date": est.isoformat(),
                "district": dist,
            }
            if rep_id:
                row["legal_rep_id_number"] = w.pseudonym(dept, rep_idn)
            rows.append(row)
        return tuple(rows)

    if system in ("rsj-subsidy", "rsj-portal"):
        district = "历下区" if system == "rsj-subsidy" else "天桥区"
        return {
            "population.people": people("rsj", district, "pseudonym", address=True),
            "subsidies.grants": grants("rsj", district),
            "legal_person.enterprises": enterprises("rsj", rep_clear=False, rep_id=True),
        }
    if system == "ybj-insurance":
        return {
            "population.people": people("ybj", "市中区", "id_number", address=False),
            "legal_person.enterprises": enterprises("ybj", rep_clear=False, rep_id=True),
        }
    if system == "swj-tax":
        return {"legal_person.enterprises": enterprises("swj", rep_clear=True, rep_id=True)}
    if system == "tjj-stats":
        tjj_people = tuple(
            {"birth_date": born.year, "gender": gender, "district": dist}
            for _pid, _n, _i, born, gender, _ph, _a, dist in d.people
        )
        tjj_grants = tuple(
            {
                **g,
                "amount": w.mask("bucket:500", g["amount"], "integer"),
                "district": w.regions.get(str(g["district"])),
            }
            for g in grants("tjj", None)
        )
        return {
            "population.people": tjj_people,
            "subsidies.grants": tjj_grants,
            "legal_person.enterprises": enterprises("tjj", rep_clear=False, rep_id=False),
        }
    if system == "mzj-suspended":
        return {}
    raise KeyError(system)


# ------------------------------------------------------------------ forbidden strings


@dataclass(frozen=True, slots=True)
class Forbidden:
    """Strings that must not appear in any response to ``system``."""

    system: str
    #: Raw ID numbers (18, last may be X), phones (11 digits), bank cards (16/19 digits).
    digits: frozenset[str]
    #: Pseudonyms the system may not see (other departments' keys; its own key over rows
    #: outside its row filter) and every window of the pseudonym key material.
    hex32: frozenset[str]
    #: Full person names (2-4 characters) that the system never sees in clear.
    names: frozenset[str]
    #: ISO dates: birth dates the system cannot see (another district's, or only the year).
    dates: frozenset[str]
    #: ``street + number + 号``: the part of an address every mask hides.
    addresses: frozenset[str]
    #: Case summaries (不予共享).
    fragments: tuple[str, ...]
    #: District and city names, per dataset set: see :meth:`places_for`.
    all_places: frozenset[str]
    #: dataset -> place names its rows legitimately show this system.
    visible_places: Mapping[str, frozenset[str]]
    #: The arms of the ``city`` mask's mapping as the rewriter writes them
    #: (``WHEN '历下区' THEN '济南市'``): the catalog's published generalisation table,
    #: which the rewritten SQL in a receipt's record (and /v1/explain) shows the requester.
    #: It names every district whatever the row filter, so it says nothing about rows.
    mask_mapping: tuple[str, ...] = ()

    def places_for(self, sql: str) -> frozenset[str]:
        """Place names that only rows outside the row filter carry, given the datasets the
        query names (an unconditional dataset like legal_person shows every district)."""
        lowered = sql.lower()
        seen: set[str] = set()
        for dataset, places in self.visible_places.items():
            if dataset in lowered:
                seen |= places
        return self.all_places - seen


def _windows(text: str, sizes: Iterable[int]) -> Iterator[str]:
    for size in sizes:
        for i in range(len(text) - size + 1):
            yield text[i : i + size]


def _strings(view: View) -> Iterator[str]:
    for rows in view.values():
        for row in rows:
            for value in row.values():
                if isinstance(value, str):
                    yield value


def _address_marker(address: str, regions: Mapping[str, str]) -> str | None:
    for district, city in regions.items():
        head = city + district
        if address.startswith(head):
            m = re.match(r"(\D+?)([0-9]+)号", address[len(head) :])
            return f"{m.group(1)}{m.group(2)}号" if m else None
    return None


def _key_windows(world: DemoWorld) -> set[str]:
    out: set[str] = set(_windows(world.master_secret.hex(), [_HEX_WINDOW]))
    for key in world.keys.values():
        block = key.ljust(64, b"\x00")
        for material in (key, bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)):
            out.update(_windows(material.hex(), [_HEX_WINDOW]))
    return out


@functools.cache
def _all_pseudonyms() -> Mapping[str, frozenset[str]]:
    """department -> pseudonyms of every ID number of the world under its key."""
    w = demo_world()
    ids = sorted(_all_ids(w))
    out: dict[str, frozenset[str]] = {}
    for dept, key in w.keys.items():
        out[dept] = frozenset(
            hmac.new(key, i.encode("utf-8"), hashlib.sha256).hexdigest()[:_HEX_WINDOW] for i in ids
        )
    return out


@functools.cache
def forbidden_for(system: str) -> Forbidden:
    """The forbidden strings of ``system`` (computed once per system)."""
    w = demo_world()
    d = w.data
    view = masked_view(system)
    visible = set(_strings(view))
    blob = "\n".join(sorted(visible))

    raw_digits = {p[2] for p in d.people} | {p[5] for p in d.people if p[5]}
    raw_digits |= {e[4] for e in d.enterprises} | {g[4] for g in d.subsidies}
    raw_digits |= {i[1] for i in d.incidents}

    hexes = set().union(*_all_pseudonyms().values())
    hexes -= {v for v in visible if len(v) == _HEX_WINDOW}
    hexes |= _key_windows(w)

    visible_subs: set[str] = set()
    for text in (blob, w.catalog_text):
        for run in _CJK_RUN.findall(text):
            visible_subs.update(_windows(run, _NAME_WINDOWS))
    raw_names = {p[1] for p in d.people} | {e[3] for e in d.enterprises}
    names = {n for n in raw_names if len(n) >= 2} - visible_subs

    visible_dates = {v for v in visible if _DATE.fullmatch(v)}
    dates = {p[3].isoformat() for p in d.people} - visible_dates

    addresses = {m for p in d.people if (m := _address_marker(p[6], w.regions))}
    sizes = {len(a) for a in addresses}
    addresses -= {blob[max(0, m.end() - n) : m.end()] for m in _HAO.finditer(blob) for n in sizes}

    all_places = frozenset(w.regions) | frozenset(w.regions.values())
    visible_places: dict[str, frozenset[str]] = {}
    for table, rows in view.items():
        table_blob = "\n".join({v for row in rows for v in row.values() if isinstance(v, str)})
        visible_places[table.split(".")[0]] = frozenset(p for p in all_places if p in table_blob)

    return Forbidden(
        system=system,
        digits=frozenset(raw_digits - visible),
        hex32=frozenset(hexes),
        names=frozenset(names),
        dates=frozenset(dates),
        addresses=frozenset(addresses),
        fragments=tuple(sorted({i[2] for i in d.incidents})),
        all_places=all_places,
        visible_places=visible_places,
        mask_mapping=tuple(f"WHEN '{k}' THEN '{v}'" for k, v in sorted(w.regions.items())),
    )


# ------------------------------------------------------------------ scanning


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_strings(v)


def _base64_texts(strings: Iterable[str]) -> Iterator[str]:
    """UTF-8 texts hidden in base64 cells (the response encodes binary values so)."""
    for s in strings:
        if len(s) >= 8 and len(s) % 4 == 0 and _BASE64.fullmatch(s):
            with contextlib.suppress(ValueError):
                yield base64.b64decode(s, validate=True).decode("utf-8")


def response_text(resp: httpx.Response) -> str:
    """Everything a client receives: status line, headers, body; plus the body's JSON
    strings unescaped (``\\uXXXX`` escapes cannot hide a value) and its base64 cells
    decoded (a binary value is sent as base64)."""
    parts = [f"{resp.status_code} {resp.reason_phrase}"]
    parts.extend(f"{k}: {v}" for k, v in resp.headers.items())
    body = resp.text
    parts.append(body)
    try:
        parsed = json.loads(body)
    except ValueError:
        return "\n".join(parts)
    if "\\" in body:
        parts.append(json.dumps(parsed, ensure_ascii=False))
    parts.extend(_base64_texts(_json_strings(parsed)))
    return "\n".join(parts)


def find_leaks(text: str, forbidden: Forbidden, sql: str) -> list[str]:
    """Every forbidden string found in ``text``, as ``kind: value``. A value the request
    itself contains (``sql``) is not counted: echoing the attacker's own input discloses
    nothing."""
    leaks: set[str] = set()

    def hit(kind: str, value: str) -> None:
        if value not in sql and value.lower() not in sql.lower():
            leaks.add(f"{kind}: {value}")

    digit_sizes = sorted({len(s) for s in forbidden.digits})
    for run in _DIGIT_RUN.findall(text):
        for window in _windows(run.upper(), digit_sizes):
            if window in forbidden.digits:
                hit("raw id/phone/card", window)
    for run in _HEX_RUN.findall(text):
        for window in _windows(run.lower(), [_HEX_WINDOW]):
            if window in forbidden.hex32:
                hit("pseudonym or key material", window)
    for run in _CJK_RUN.findall(text):
        for window in _windows(run, _NAME_WINDOWS):
            if window in forbidden.names:
                hit("name", window)
    for found in _DATE.findall(text):
        if found in forbidden.dates:
            hit("birth date", found)
    street_sizes = sorted({len(a) for a in forbidden.addresses})
    for m in _HAO.finditer(text):
        for size in street_sizes:
            start = m.end() - size
            if start >= 0 and text[start : m.end()] in forbidden.addresses:
                hit("address", text[start : m.end()])
    for fragment in forbidden.fragments:
        if fragment in text:
            hit("case record", fragment)
    # Only the exact arms of the published mapping are set aside: a district name
    # anywhere else (a cell, an error detail, a filter literal) still counts.
    place_text = text
    for arm in forbidden.mask_mapping:
        place_text = place_text.replace(arm, "")
    for place in forbidden.places_for(sql):
        if place in place_text:
            hit("filtered-out district", place)
    return sorted(leaks)


#: What would tell a consumer which engine is behind the gateway: the engines' names and
#: their own error vocabularies (SQLITE_* codes, MariaDB error numbers). The SQLSTATE
#: codes of the SQL standard are not on the list, nor "the PostgreSQL dialect": that is
#: the language every consumer writes, whatever the backend.
_ENGINE_WORDS = re.compile(
    r"sqlite|postgres(?!ql dialect)|psql|\bpg_|maria|mysql|duckdb|\berror \d{4}\b", re.I
)


def names_an_engine(body: Mapping[str, Any] | None, sql: str) -> str | None:
    """The engine word in a problem's ``detail`` (or ``title``), or None. A word the
    request itself contains (``sql``: ``pg_read_file``, ``sqlite_master``) is the
    consumer's own input echoed, not a disclosure. internal_detail is never sent, so it
    may name the engine; a consumer-facing field may not."""
    if body is None:
        return None
    for field in ("detail", "title"):
        value = body.get(field)
        if not isinstance(value, str):
            continue
        for found in _ENGINE_WORDS.finditer(value):
            if found.group(0).lower() not in sql.lower():
                return f"{field}: {found.group(0)!r} in {value!r}"
    return None
