#!/usr/bin/env bash
# Makes sure a local PostgreSQL 15 (Debian's package) is installed and running on 127.0.0.1:5432
# with the relay test role and database, so `cargo test -p relay` can run its PostgreSQL half:
#
#   export VITALTRENDS_TEST_POSTGRES_URL="$(scripts/postgres.sh | tail -n 1)"
#
# Idempotent: installs only when missing, starts only when stopped, creates the role and database
# only when absent. Progress goes to stderr; the last line on stdout is the database URL.
set -euo pipefail

PG_VERSION=15
CLUSTER=main
PORT=5432
ROLE=vitaltrends_test
DATABASE=vitaltrends_test
PASSWORD=vitaltrends

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Root is the norm in these containers; elsewhere fall back to sudo.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root or install sudo"
  SUDO=(sudo)
fi

as_postgres() {
  # psql over the Unix socket authenticates by peer, so it has to run as the postgres user; a cwd
  # that user may not read (e.g. /root) only produces noise, hence /tmp.
  if [ "$(id -un)" = postgres ]; then
    (cd /tmp && "$@")
  elif [ "$(id -u)" -eq 0 ]; then
    (cd /tmp && runuser -u postgres -- "$@")
  else
    (cd /tmp && sudo -u postgres -- "$@")
  fi
}

psql_admin() {
  as_postgres psql --no-psqlrc -v ON_ERROR_STOP=1 -qAtX -p "$PORT" "$@"
}

if [ ! -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ] || ! command -v pg_ctlcluster >/dev/null; then
  log "installing PostgreSQL $PG_VERSION"
  "${SUDO[@]}" apt-get update -qq >&2
  if ! DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "postgresql-$PG_VERSION" >&2; then
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq postgresql >&2
  fi
  [ -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ] || die "PostgreSQL $PG_VERSION did not install"
fi

cluster_line() { pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$CLUSTER" '$1 == v && $2 == c'; }

if [ -z "$(cluster_line)" ]; then
  log "creating cluster $PG_VERSION/$CLUSTER on port $PORT"
  "${SUDO[@]}" pg_createcluster --port "$PORT" "$PG_VERSION" "$CLUSTER" >&2
fi

cluster_port="$(cluster_line | awk '{print $3}')"
[ "$cluster_port" = "$PORT" ] || die "cluster $PG_VERSION/$CLUSTER uses port $cluster_port, not $PORT"

if [ "$(cluster_line | awk '{print $4}')" != online ]; then
  log "starting cluster $PG_VERSION/$CLUSTER"
  "${SUDO[@]}" pg_ctlcluster "$PG_VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 1 30); do
  if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    break
  fi
  sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || die "PostgreSQL is not accepting connections on 127.0.0.1:$PORT"

# The password is re-set every run so a role left over from elsewhere still matches the URL.
psql_admin -d postgres <<SQL >&2
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SQL

if [ "$(psql_admin -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]; then
  log "creating database $DATABASE"
  psql_admin -d postgres -c "CREATE DATABASE $DATABASE OWNER $ROLE" >&2
fi
# Tests create one schema each, so the role must own the database (and its public schema).
psql_admin -d postgres -c "ALTER DATABASE $DATABASE OWNER TO $ROLE" >&2
psql_admin -d "$DATABASE" -c "ALTER SCHEMA public OWNER TO $ROLE" >&2

URL="postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
PGPASSWORD="$PASSWORD" psql --no-psqlrc -qAtX -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DATABASE" -c 'SELECT 1' >/dev/null \
  || die "cannot log in as $ROLE over TCP; check pg_hba.conf for 127.0.0.1"
log "ready"
echo "$URL"
