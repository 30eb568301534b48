#!/usr/bin/env bash
# Offline installation of the gateway.
#
#   scripts/wheelhouse.sh build DIR          on a machine with a package index: download
#                                            every pinned, hashed dependency
#                                            (requirements/production.txt) and build the
#                                            gateway's own wheel into DIR
#   scripts/wheelhouse.sh install DIR VENV   on the isolated machine: create VENV and
#                                            install from DIR only (no index), checking
#                                            every hash
#
# Build on the same platform as the target (OS, CPU, Python 3.11), or set
# WHEELHOUSE_PLATFORM (e.g. manylinux2014_x86_64) to fetch wheels for another one.
# Copy DIR to the isolated machine by any means; SHA256SUMS in it lets the receiver check
# the copy before installing (the install step does).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"

usage() { echo "usage: $0 build DIR | install DIR VENV" >&2; exit 2; }

build() {
  local dir="$1"
  mkdir -p "$dir"
  local platform_args=()
  if [ -n "${WHEELHOUSE_PLATFORM:-}" ]; then
    platform_args=(--only-binary=:all: --platform "$WHEELHOUSE_PLATFORM" --python-version 3.11)
  fi
  "$python" -m pip download --quiet --require-hashes --no-deps \
    "${platform_args[@]}" -r "$here/requirements/production.txt" -d "$dir"
  "$python" -m pip wheel --quiet --no-deps -w "$dir" "$here"
  cp "$here/requirements/production.txt" "$dir/requirements.txt"
  (cd "$dir" && sha256sum -- *.whl *.tar.gz requirements.txt 2>/dev/null > SHA256SUMS) || true
  echo "wheelhouse: $dir ($(ls "$dir" | wc -l) files)"
}

install() {
  local dir="$1" venv="$2"
  (cd "$dir" && sha256sum --quiet -c SHA256SUMS)
  "$python" -m venv "$venv"
  # Hashes of every dependency from the lock; the gateway's own wheel was built with it.
  "$venv/bin/pip" install --quiet --no-index --find-links "$dir" --require-hashes \
    -r "$dir/requirements.txt"
  "$venv/bin/pip" install --quiet --no-index --find-links "$dir" --no-deps "$dir"/gateway-*.whl
  "$venv/bin/gateway" --help > /dev/null
  echo "installed: $venv/bin/gateway"
}

case "${1:-}" in
  build) [ $# -eq 2 ] || usage; build "$2" ;;
  install) [ $# -eq 3 ] || usage; install "$2" "$3" ;;
  *) usage ;;
esac
