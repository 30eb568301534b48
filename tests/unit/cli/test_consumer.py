"""`gateway query` says who truncated a result: the policy, the gateway's ceiling or the
caller's own max_rows (not "truncated by policy" for all three)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cli.consumer import _truncation


@pytest.mark.parametrize(
    ("result", "said"),
    [
        ({"truncated": False, "row_limit": 5, "row_limit_by": "policy"}, ""),
        (
            {"truncated": True, "row_limit": 1000, "row_limit_by": "policy"},
            ", capped at 1000 by the provider's policy",
        ),
        (
            {"truncated": True, "row_limit": 3, "row_limit_by": "max_rows"},
            ", truncated at your max_rows (3)",
        ),
        (
            {"truncated": True, "row_limit": 50, "row_limit_by": "gateway"},
            ", capped at 50 by the gateway's ceiling",
        ),
    ],
)
def test_the_summary_line_names_who_truncated(result: dict[str, Any], said: str) -> None:
    assert _truncation(result) == said
