"""Catalog loading: the default row limit is a required, validated policy setting."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.catalog import load_catalog
from gateway.catalog.load import parse_catalog
from gateway.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[3]
RAW: dict[str, Any] = tomllib.loads((ROOT / "policies" / "catalog.toml").read_text("utf-8"))


def test_the_demo_catalog_names_its_default_row_limit() -> None:
    catalog = load_catalog(ROOT / "policies" / "catalog.toml")
    assert catalog.default_max_rows == RAW["default_max_rows"] == 1000
    assert {catalog.default_max_rows_of(name) for name in catalog.datasets} == {1000}


def test_a_dataset_may_set_its_own_default() -> None:
    raw = copy.deepcopy(RAW)
    raw["datasets"]["legal_person"]["default_max_rows"] = 50
    catalog = parse_catalog(raw)
    assert catalog.default_max_rows_of("legal_person") == 50
    assert catalog.default_max_rows_of("population") == 1000
    assert catalog.default_max_rows_of("no_such_dataset") == 1000


def test_a_catalog_without_a_default_row_limit_does_not_load() -> None:
    raw = copy.deepcopy(RAW)
    del raw["default_max_rows"]
    with pytest.raises(ConfigurationError, match="default_max_rows is required"):
        parse_catalog(raw)


@pytest.mark.parametrize("value", [0, -5, True, "1000", 10.5])
def test_a_row_limit_must_be_a_positive_integer(value: object) -> None:
    top = copy.deepcopy(RAW)
    top["default_max_rows"] = value
    with pytest.raises(ConfigurationError, match="must be a positive integer"):
        parse_catalog(top)
    per_dataset = copy.deepcopy(RAW)
    per_dataset["datasets"]["subsidies"]["default_max_rows"] = value
    with pytest.raises(ConfigurationError, match=r"datasets\.subsidies\.default_max_rows"):
        parse_catalog(per_dataset)
