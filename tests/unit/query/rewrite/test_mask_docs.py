"""The catalog's words for each mask: every kind described, with its own parameters."""

from __future__ import annotations

import pytest

from gateway.domain import MaskSpec
from gateway.query.rewrite.mask_docs import describe_mask
from gateway.query.rewrite.masks import MASK_KINDS, check_mask_spec

EXAMPLES = {
    "name": ("name", "first 1 and last 0 characters kept, the rest shown as '**'"),
    "partial": ("partial:first=2;char=●", "each other character shown as '●'"),
    "id_number": ("id_number", "a value of at most 3 characters is hidden entirely"),
    "phone": ("phone:fill=length", "first 3 and last 4 characters kept"),
    "bank_card": ("bank_card", "'********' (the length is hidden)"),
    "address": ("address:3", "first 3 and last 0"),
    "email": ("email", "the part before the first '@': first 1"),
    "regex": ("regex:pattern=[0-9]{18};replace=#", "every match of the pattern [0-9]{18}"),
    "month": ("month", "first day of the month"),
    "date_shift": ("date_shift:days=30;key=person_id", "from -30 to 30, the same for every"),
    "nullify": ("nullify", "always null"),
    "constant": ("constant:已脱敏", "'已脱敏' for any value"),
    "year": ("year", "the year only"),
    "bucket": ("bucket:500", "width 500"),
    "city": ("city", "city of the district"),
    "pseudonym": ("pseudonym", "within your department"),
}
TYPE_OF = {"month": "date", "date_shift": "date", "year": "date", "bucket": "integer"}


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == MASK_KINDS


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_describe_mask_says_what_is_left(kind: str) -> None:
    text, fragment = EXAMPLES[kind]
    spec = MaskSpec.parse(text)
    check_mask_spec(spec, TYPE_OF.get(kind, "text"))
    words = describe_mask(spec)
    assert fragment in words["en"]
    assert words["zh"] and words["zh"] != words["en"]
