"""Fixtures of the auth tests (helpers live in support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.auth.support import AuthEnv, build_env


@pytest.fixture
def env(tmp_path: Path) -> AuthEnv:
    """Fresh keys, registry, key store and TokenService with a fixed clock and an
    in-memory replay cache."""
    return build_env(tmp_path)
