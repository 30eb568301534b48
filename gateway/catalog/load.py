"""Load the catalog from ``catalog.toml`` in the policy directory.

Loading validates everything it can (enums, masks, owners, duplicate names) and raises
:class:`ConfigurationError` naming the offending key: a catalog that loads is complete.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from gateway.catalog.model import (
    Catalog,
    Column,
    Dataset,
    Department,
    Grade,
    OpenClass,
    Purpose,
    Sensitivity,
    SharingClass,
    Table,
    Text,
)
from gateway.domain import MaskSpec
from gateway.errors import ConfigurationError

_E = TypeVar("_E", SharingClass, Grade, Sensitivity, OpenClass)

COLUMN_TYPES = frozenset({"text", "integer", "decimal", "date", "timestamp", "boolean"})


def load_catalog(path: Path) -> Catalog:
    """Parse and validate ``path`` (a TOML file). Raises ConfigurationError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read catalog {path}: {exc}") from exc
    return parse_catalog(raw, origin=str(path))


def parse_catalog(raw: Mapping[str, Any], *, origin: str = "catalog") -> Catalog:
    departments = {
        code: Department(code=code, name=_text(v.get("name"), f"departments.{code}.name"))
        for code, v in _table(raw, "departments", origin).items()
    }
    purposes = {
        code: Purpose(
            code=code,
            name=_text(v.get("name"), f"purposes.{code}.name"),
            legal_basis=str(v.get("legal_basis", "")),
        )
        for code, v in _table(raw, "purposes", origin).items()
    }
    regions = {str(k): str(v) for k, v in dict(raw.get("regions", {})).items()}
    datasets = {
        name: _dataset(name, v, departments) for name, v in _table(raw, "datasets", origin).items()
    }
    return Catalog(
        datasets=datasets,
        departments=departments,
        purposes=purposes,
        default_max_rows=_required_max_rows(raw, origin),
        regions=regions,
    )


def _dataset(name: str, raw: Mapping[str, Any], departments: Mapping[str, Department]) -> Dataset:
    where = f"datasets.{name}"
    _check_identifier(name, where)
    owner = _required(raw, "owner", where)
    if owner not in departments:
        raise ConfigurationError(f"{where}.owner: unknown department {owner!r}")
    tables = {
        tname: _table_def(name, tname, traw) for tname, traw in _table(raw, "tables", where).items()
    }
    if not tables:
        raise ConfigurationError(f"{where}: a dataset needs at least one table")
    return Dataset(
        name=name,
        title=_text(raw.get("title"), f"{where}.title"),
        owner=owner,
        backend=_required(raw, "backend", where),
        sharing_class=_enum(SharingClass, raw, "sharing_class", where),
        grade=_enum(Grade, raw, "grade", where),
        update_cycle=_required(raw, "update_cycle", where),
        reply_days=_optional_days(raw, "reply_days", where),
        description=_text(raw.get("description"), f"{where}.description"),
        tables=tables,
        default_max_rows=_max_rows(raw, where),
        resource_code=str(raw.get("resource_code", "")),
        share_condition=(
            _text(raw["share_condition"], f"{where}.share_condition")
            if "share_condition" in raw
            else None
        ),
        open_class=(
            _enum(OpenClass, raw, "open_class", where)
            if "open_class" in raw
            else OpenClass.NOT_OPEN
        ),
        published=_published(raw, where),
        categories=_categories(raw, where),
    )


def _published(raw: Mapping[str, Any], where: str) -> str:
    value = raw.get("published")
    if value is None:
        return ""
    if not isinstance(value, date):
        raise ConfigurationError(f"{where}.published must be a date, e.g. 2026-01-15")
    return value.isoformat()


def _categories(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = raw.get("categories", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f'{where}.categories must be a list of strings, e.g. ["社会保障"]')
    return tuple(value)


def _table_def(dataset: str, name: str, raw: Mapping[str, Any]) -> Table:
    where = f"datasets.{dataset}.tables.{name}"
    _check_identifier(name, where)
    columns: dict[str, Column] = {}
    for i, craw in enumerate(raw.get("columns", [])):
        col = _column(craw, f"{where}.columns[{i}]")
        if col.name in columns:
            raise ConfigurationError(f"{where}: column {col.name!r} is described twice")
        columns[col.name] = col
    if not columns:
        raise ConfigurationError(f"{where}: a table needs at least one described column")
    return Table(
        dataset=dataset,
        name=name,
        source=str(raw.get("source", name)),
        description=_text(raw.get("description"), f"{where}.description"),
        columns=columns,
    )


def _column(raw: Mapping[str, Any], where: str) -> Column:
    name = _required(raw, "name", where)
    _check_identifier(name, where)
    ctype = _required(raw, "type", where)
    if ctype not in COLUMN_TYPES:
        raise ConfigurationError(f"{where}.type: {ctype!r} is not one of {sorted(COLUMN_TYPES)}")
    mask = raw.get("default_mask")
    return Column(
        name=name,
        type=ctype,
        sensitivity=_enum(Sensitivity, raw, "sensitivity", where),
        description=_text(raw.get("description"), f"{where}.description"),
        default_mask=MaskSpec.parse(str(mask)) if mask else None,
        length=_length(raw, where),
    )


def _length(raw: Mapping[str, Any], where: str) -> int | None:
    value = raw.get("length")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{where}.length must be a positive integer")
    return value


def _optional_days(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 60:
        raise ConfigurationError(f"{where}.{key} must be a number of working days (1-60)")
    return value


def _max_rows(raw: Mapping[str, Any], where: str) -> int | None:
    """``default_max_rows`` of ``raw`` if present. A row limit is policy: a positive
    integer (bool is an int in Python; ``default_max_rows = true`` is a mistake, not 1)."""
    value = raw.get("default_max_rows")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"{where}.default_max_rows: {value!r} must be a positive integer")
    return value


def _required_max_rows(raw: Mapping[str, Any], where: str) -> int:
    value = _max_rows(raw, where)
    if value is None:
        raise ConfigurationError(
            f"{where}: default_max_rows is required (the row limit of a table that no p3 "
            "line limits, a positive integer)"
        )
    return value


def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Mapping[str, Any]]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where}: [{key}] must be a table")
    return value


def _required(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where}.{key} is required (a non-empty string)")
    return value


def _enum(enum_type: type[_E], raw: Mapping[str, Any], key: str, where: str) -> _E:
    value = _required(raw, key, where)
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum_type)
        raise ConfigurationError(f"{where}.{key}: {value!r} is not one of {allowed}") from None


def _text(raw: Any, where: str) -> Text:
    if isinstance(raw, str):
        return Text(zh=raw, en=raw)
    if isinstance(raw, dict) and isinstance(raw.get("zh"), str) and isinstance(raw.get("en"), str):
        return Text(zh=raw["zh"], en=raw["en"])
    raise ConfigurationError(f'{where} must be {{ zh = "…", en = "…" }}')


def _check_identifier(name: str, where: str) -> None:
    # Catalog names become SQL identifiers; keep them plain so every dialect agrees on them.
    if not (name.isascii() and name.replace("_", "a").isalnum() and name[0].isalpha()):
        raise ConfigurationError(
            f"{where}: {name!r} must be a lower-case ASCII identifier (letters, digits, _)"
        )
    if name != name.lower():
        raise ConfigurationError(f"{where}: {name!r} must be lower case")
