#!/usr/bin/env bash
# Runs SecureForm on its embedded default (or ./secureform.toml when present):
# data in ./secureform-data, listening on http://127.0.0.1:8080, one demo form `contact`.
# Extra arguments go to `secureform serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/deps.sh" build
exec cargo run --release --manifest-path "$here/Cargo.toml" --bin secureform -- serve "$@"
