#!/usr/bin/env bash
# One command for the whole test suite: install dev dependencies into .venv (first run),
# then lint (ruff), type-check (mypy --strict) and run pytest. Extra arguments go to pytest.
# PostgreSQL and MariaDB tests read GATEWAY_TEST_PG_DSN / GATEWAY_TEST_MYSQL_DSN (defaults:
# local servers); without them they skip, unless GATEWAY_REQUIRE_SERVICES=1 (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
# sqlglotc must shadow sqlglot's .py files (2-4x faster parsing); a mismatched pair is a bug.
.venv/bin/python -c 'import sqlglot.parser as p, sys; sys.exit(0 if p.__file__.endswith(".so") else "sqlglotc is not active: pin sqlglot and sqlglotc to the same version")'
.venv/bin/ruff check gateway tests benchmarks
.venv/bin/ruff format --check gateway tests benchmarks
.venv/bin/mypy
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
