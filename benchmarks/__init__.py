"""Benchmarks of the gateway (not tests): run ``python -m benchmarks.run [--quick]``.

See benchmarks/README.md for what each number means.
"""
