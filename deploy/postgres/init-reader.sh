#!/bin/sh
# First start of the compose PostgreSQL: the read-only account the gateway queries the
# demo data with (`gateway doctor` checks that it can only read). The gateway's own
# account owns the audit, admin and replay schemas.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE SCHEMA IF NOT EXISTS demo;
CREATE ROLE gateway_ro LOGIN PASSWORD '${READER_PASSWORD}';
REVOKE CREATE ON DATABASE ${POSTGRES_DB} FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE ${POSTGRES_DB} TO gateway_ro;
GRANT USAGE ON SCHEMA demo TO gateway_ro;
ALTER DEFAULT PRIVILEGES FOR ROLE ${POSTGRES_USER} IN SCHEMA demo GRANT SELECT ON TABLES TO gateway_ro;
SQL
