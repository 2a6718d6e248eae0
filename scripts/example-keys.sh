#!/usr/bin/env bash
# Makes the test keys and secrets that examples/secureform.toml names, so that it works as it
# is: `secureform check --config examples/secureform.toml` passes and `serve` starts with it.
# They are examples' keys, made on this machine and never committed (examples/keys/ and
# examples/secureform-data/ are ignored by git): replace them with your own in production.
#
#   scripts/example-keys.sh [FOLDER]    FOLDER holds the configuration (default: examples/)
#
# Writes FOLDER/keys/alice.asc (a PGP certificate; its secret key in alice.sec.asc, to open
# what is encrypted to it), FOLDER/keys/id_ed25519 (an SSH key for the SFTP sink), and
# FOLDER/keys/db.password and db.key (the MySQL sink's password and AES-256 key), and the
# key-encryption key FOLDER/secureform-data/master.key. Existing files are kept. Needs gpg and
# ssh-keygen; runs `secureform keygen` ($SECUREFORM_BIN, else `cargo run --release`).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$here/examples}"
keys="$dir/keys"
umask 077
mkdir -p "$keys"

if [ ! -f "$keys/alice.asc" ]; then
  home="$(mktemp -d)"
  trap 'rm -rf "$home"' EXIT
  g() { gpg --homedir "$home" --batch --quiet --pinentry-mode loopback --passphrase '' "$@"; }
  g --quick-gen-key 'Alice (SecureForm example) <alice@example.com>' ed25519 sign,cert never
  fpr="$(g --list-keys --with-colons | awk -F: '/^fpr:/ {print $10; exit}')"
  g --quick-add-key "$fpr" cv25519 encr never
  g --armor --export "$fpr" > "$keys/alice.asc"
  g --armor --export-secret-keys "$fpr" > "$keys/alice.sec.asc"
  echo "example-keys: wrote $keys/alice.asc and alice.sec.asc (PGP, $fpr)"
fi
if [ ! -f "$keys/id_ed25519" ]; then
  ssh-keygen -q -t ed25519 -N '' -C 'secureform example' -f "$keys/id_ed25519"
  echo "example-keys: wrote $keys/id_ed25519 (SSH)"
fi
if [ ! -f "$keys/db.password" ]; then
  head -c 18 /dev/urandom | base64 > "$keys/db.password"
  echo "example-keys: wrote $keys/db.password"
fi
if [ ! -f "$keys/db.key" ]; then
  head -c 32 /dev/urandom | base64 > "$keys/db.key"
  echo "example-keys: wrote $keys/db.key (AES-256, base64)"
fi
if [ ! -f "$dir/secureform-data/master.key" ]; then
  mkdir -p "$dir/secureform-data"
  if [ -n "${SECUREFORM_BIN:-}" ]; then
    "$SECUREFORM_BIN" keygen --out "$dir/secureform-data/master.key"
  else
    cargo run --quiet --release --manifest-path "$here/Cargo.toml" --bin secureform -- \
      keygen --out "$dir/secureform-data/master.key"
  fi
fi
