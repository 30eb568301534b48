#!/usr/bin/env bash
# The reference set-up of issue 16, on one machine: department B's gateway (医保局, port
# 8001) witnesses department A's demo gateway (port 8000). A pushes its checkpoints to B
# every 2 s and stores B's cosignatures; `gateway audit monitor` and
# `gateway audit verify --witness` then hold A's log to what B cosigned.
#
#   scripts/demo-witnessed.sh            # start both (Ctrl-C stops both)
#
# State goes to state/witnessed-a and state/witnessed-b; B's keys to state/witness-b-keys.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh fast
PY=.venv/bin/python
GW=.venv/bin/gateway
A_STATE=state/witnessed-a
B_STATE=state/witnessed-b
B_KEYS=state/witness-b-keys
mkdir -p "$A_STATE" "$B_STATE"
if [ ! -f "$B_KEYS/witness.key" ]; then
  rm -rf "$B_KEYS"
  cp -r keys/demo "$B_KEYS"
  # B's witness key (a C2SP cosignature/v1 note key) and the log it follows: A's.
  "$PY" - "$B_KEYS" <<'EOF'
import sys
from pathlib import Path
from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.note import generate_key
keys = Path(sys.argv[1])
skey, vkey = generate_key("witness.ybj.demo.invalid", alg=ALG_COSIGNATURE_V1)
(keys / "witness.key").write_text(skey + "\n")
(keys / "witness.vkey").write_text(vkey + "\n")
(keys / "witnessed-logs.vkeys").write_text(Path("keys/demo/audit-log.demo.vkey").read_text())
EOF
fi
WITNESS_VKEY=$(cat "$B_KEYS/witness.vkey")

GATEWAY_KEY_DIR="$B_KEYS" GATEWAY_STATE_DIR="$B_STATE" GATEWAY_ISSUER=http://127.0.0.1:8001 \
  "$GW" demo --port 8001 &
B_PID=$!
trap 'kill "$B_PID" 2>/dev/null || true' EXIT
sleep 3
echo "department B (witness) on http://127.0.0.1:8001, key $WITNESS_VKEY" >&2
echo "then, in another shell:" >&2
echo "  curl -s http://127.0.0.1:8000/v1/audit/cosigned" >&2
echo "  .venv/bin/gateway audit monitor --url http://127.0.0.1:8000 --key keys/demo/audit-log.demo.vkey \\" >&2
echo "      --state state/monitor --witness '$WITNESS_VKEY' --min-witnesses 1 \\" >&2
echo "      --token \"\$(.venv/bin/gateway token --system rsj-subsidy)\"" >&2
GATEWAY_STATE_DIR="$A_STATE" GATEWAY_AUDIT_WITNESSES="http://127.0.0.1:8001 $WITNESS_VKEY" \
  GATEWAY_AUDIT_WITNESS_INTERVAL=2 "$GW" demo --port 8000
