#!/usr/bin/env bash
# Runs the whole test suite against real services: installs what is missing (Debian packages,
# PyPI), starts MariaDB when none answers on 127.0.0.1:3306 and PostgreSQL when none answers on
# 127.0.0.1:5432, checks formatting and lints, runs every test of the workspace, runs the HTTP
# suite a second time with every configured server's spool on PostgreSQL, and stops what it
# started.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
bash scripts/deps.sh test

# Python packages from PyPI for the tests (Python's `cryptography` opens MySQL rows; schemathesis
# and an OpenAPI validator check the HTTP contract). When the python3 on PATH lacks them, they go
# into a virtualenv outside the clone (Debian's own python3 refuses system-wide pip installs),
# which then comes first on PATH for the tests.
py_ok() { python3 -c 'import cryptography, schemathesis, openapi_schema_validator, openapi_spec_validator, yaml, requests, standardwebhooks' 2>/dev/null; }
if ! py_ok; then
  venv="${SECUREFORM_VENV:-/var/tmp/secureform-test-venv}"
  if [ ! -x "$venv/bin/python3" ]; then
    echo "test: creating a Python virtualenv in $venv" >&2
    python3 -m venv --system-site-packages "$venv"
  fi
  export PATH="$venv/bin:$PATH"
  if ! py_ok; then
    echo "test: pip install cryptography standardwebhooks -r tests/contract/requirements.txt" >&2
    python3 -m pip install --quiet cryptography standardwebhooks -r tests/contract/requirements.txt
  fi
fi

started_mariadb=""
started_postgres=""
pg_dir="/var/tmp/secureform-test-postgres"
cleanup() {
  if [ -n "$started_mariadb" ]; then
    echo "test: stopping the MariaDB this run started" >&2
    mariadb-admin -uroot --protocol=tcp -h127.0.0.1 shutdown 2>/dev/null || pkill -x mariadbd || true
  fi
  if [ -n "$started_postgres" ]; then
    echo "test: stopping the PostgreSQL this run started" >&2
    su postgres -c "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl -D $pg_dir stop -m fast" \
      >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

mariadb_up() { mariadb-admin -uroot --protocol=tcp -h127.0.0.1 -P3306 ping >/dev/null 2>&1; }
if ! mariadb_up; then
  echo "test: starting MariaDB" >&2
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
    --bind-address=127.0.0.1 --port=3306
  started_mariadb=1
  for _ in $(seq 1 60); do mariadb_up && break; sleep 0.5; done
  mariadb_up || { echo "test: MariaDB did not start" >&2; exit 1; }
  # Root without a password over TCP, and the `test` database, as the tests expect.
  mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test;
    ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;" \
    >/dev/null 2>&1 || true
fi

# PostgreSQL on 127.0.0.1:5432 with trust for local TCP connections and the databases the tests
# expect (`test`, `postgres`); when none answers, a private cluster in /var/tmp is started.
pg_up() { psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; }
if ! pg_up; then
  echo "test: starting PostgreSQL (a cluster of its own in $pg_dir)" >&2
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  if [ ! -f "$pg_dir/PG_VERSION" ]; then
    mkdir -p "$pg_dir" && chown postgres:postgres "$pg_dir"
    su postgres -c "$pg_bin/initdb -D $pg_dir -U postgres --auth=trust" >/dev/null
  fi
  mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
  su postgres -c "$pg_bin/pg_ctl -D $pg_dir -l $pg_dir/server.log -w -o '-c listen_addresses=127.0.0.1 -p 5432' start" >/dev/null
  started_postgres=1
  for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
  pg_up || { echo "test: PostgreSQL did not start" >&2; exit 1; }
  psql -h 127.0.0.1 -U postgres -d postgres -Atc 'CREATE DATABASE test' >/dev/null 2>&1 || true
fi
# The databases a postgres pass made (sft_*): dropped before and after it.
drop_test_databases() {
  psql -h 127.0.0.1 -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'sft\_%'" 2>/dev/null |
    while read -r db; do
      psql -h 127.0.0.1 -U postgres -d postgres -Atc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
}

echo "test: npm ci (tests/browser: playwright-core, which downloads no browser)" >&2
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

echo "test: cargo fmt --check" >&2
cargo fmt --all --check
echo "test: cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
# The dependency policy (deny.toml): licenses, banned crates, sources. The advisories check needs
# the RustSec database from the network: run `cargo deny check advisories` where it is reachable.
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "test: cargo install cargo-deny --locked (checks the dependency policy, deny.toml)" >&2
  cargo install cargo-deny --locked --quiet
fi
echo "test: cargo deny check licenses bans sources" >&2
cargo deny --log-level error check licenses bans sources
echo "test: cargo test" >&2
cargo test --workspace
# The HTTP suite again, every configured server's spool on PostgreSQL (the embedded default,
# started without a file, stays on SQLite; tests about the SQLite file itself say they skip;
# tests/api/postgres.rs, which makes its own databases, ran in the first pass).
echo "test: cargo test --test api, spool on PostgreSQL (SECUREFORM_TEST_STORAGE=postgres)" >&2
drop_test_databases
SECUREFORM_TEST_STORAGE=postgres cargo test --test api -- --skip postgres::
drop_test_databases
