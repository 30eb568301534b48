#!/usr/bin/env bash
# One command for a newcomer: install into .venv (first run) and serve the embedded demo
# on http://127.0.0.1:8000. Extra arguments go to `gateway demo` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh fast
exec .venv/bin/gateway demo "$@"
