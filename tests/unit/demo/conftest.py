"""Fixtures of the demo-world tests: the default world, generated once per session."""

from __future__ import annotations

import pytest

from gateway.demo import DemoData, generate_demo_data


@pytest.fixture(scope="session")
def demo_data() -> DemoData:
    """The default world (seed 20261123, 12 000 people); treat it as read-only."""
    return generate_demo_data()
