"""The deterministic synthetic demo world and its loader (see ``generate`` and ``load``)."""

from gateway.demo.generate import (
    DEFAULT_PEOPLE,
    DEFAULT_SEED,
    DEMO_TABLES,
    GENERATOR_VERSION,
    DemoData,
    demo_data_key,
    generate_demo_data,
)

__all__ = [
    "DEFAULT_PEOPLE",
    "DEFAULT_SEED",
    "DEMO_TABLES",
    "GENERATOR_VERSION",
    "DemoData",
    "demo_data_key",
    "generate_demo_data",
]
