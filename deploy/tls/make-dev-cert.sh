#!/usr/bin/env bash
# A self-signed certificate for trying the compose file on localhost (never production:
# use your CA's certificate, e.g. from the department's PKI).
set -euo pipefail
cd "$(dirname "$0")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout server.key -out server.crt
chmod 600 server.key
