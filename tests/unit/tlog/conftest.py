"""Keys shared by the signed-note, checkpoint and cosignature tests."""

from __future__ import annotations

import pytest

from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.note import Signer
from tests.unit.tlog.support import ORIGIN, new_signer


@pytest.fixture(scope="module")
def log() -> Signer:
    """A log key (Ed25519, 0x01) named like the test origin."""
    return new_signer(ORIGIN)


@pytest.fixture(scope="module")
def witness() -> Signer:
    """A witness key (cosignature/v1, 0x04)."""
    return new_signer("witness.example/w1", ALG_COSIGNATURE_V1)
