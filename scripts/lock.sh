#!/usr/bin/env bash
# Regenerate requirements/production.txt: every dependency of the gateway (with the
# compiled sqlglot of the "fast" extra) pinned with its hashes, for any platform.
# Run after changing dependencies in pyproject.toml; tests/unit/test_lock.py fails until
# the lock matches. Needs a package index (PyPI) and installs uv into .venv if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || .venv/bin/python -m pip install --quiet "uv==0.13.*"
.venv/bin/uv pip compile pyproject.toml --extra fast --generate-hashes --universal \
  --python-version 3.11 --custom-compile-command "scripts/lock.sh" \
  -o requirements/production.txt "$@"
