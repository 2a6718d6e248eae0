#!/usr/bin/env bash
# Vendors OpenPGP.js for the web console's in-browser decryption (docs/console.md): fetches the
# PINNED version below from the npm registry with `npm pack`, checks the tarball against the
# pinned integrity, and copies its browser build into src/console/vendor/ with its license; then
# records the file's SHA-384 (the `integrity` the console's page uses, and that a unit test of
# src/console/assets.rs holds the embedded file to).
#
#   scripts/vendor-openpgp.sh          vendor (overwrites src/console/vendor/openpgp.*)
#   scripts/vendor-openpgp.sh --check  change nothing: fetch again and fail unless the vendored
#                                      file and its recorded hash are exactly what the pin gives
#
# The file kept is dist/openpgp.min.mjs, the whole library as ONE minified ES module: the
# "lightweight" build (dist/lightweight/) is smaller but loads six more chunks by dynamic
# import(), which the page's Subresource Integrity check on the entry file does not cover. The
# file is kept byte for byte as published (its trailing sourceMappingURL comment included).
#
# To upgrade: change VERSION and TARBALL_INTEGRITY (`npm view openpgp@NEW dist.integrity`), run
# this script, read the upstream changelog, run `cargo test --test api console_pgp`, commit.
set -euo pipefail

VERSION="6.3.2"
TARBALL_INTEGRITY="sha512-wcZTzHz41LV8Y48zH/JlD1JT8YdNmpWOuMAjQ/podvvCwsjBEU37K3znJh4UQcj3hksE5z9TzvhbUbwzsGvlLQ=="
FILE="dist/openpgp.min.mjs"

here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/src/console/vendor"
check=""
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v npm >/dev/null || { echo "vendor-openpgp: npm is missing (Debian package npm)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "vendor-openpgp: openssl is missing (Debian package openssl)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# `npm pack` downloads the published tarball and checks it against the registry's own integrity.
(cd "$work" && npm pack --silent "openpgp@$VERSION" >/dev/null)
tarball="$work/openpgp-$VERSION.tgz"
[ -f "$tarball" ] || { echo "vendor-openpgp: npm pack gave no $tarball" >&2; exit 1; }
# ...and against ours, so a changed registry answer cannot change what is vendored.
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | openssl base64 -A)"
if [ "$got" != "$TARBALL_INTEGRITY" ]; then
  echo "vendor-openpgp: openpgp@$VERSION tarball is $got, pinned $TARBALL_INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" "package/$FILE" package/LICENSE package/package.json
license="$(node -p 'require(process.argv[1]).license' "$work/package/package.json")"
case "$license" in
  LGPL-3.0*) ;;
  *) echo "vendor-openpgp: openpgp@$VERSION is licensed $license, not LGPL-3.0: review README's notice" >&2; exit 1 ;;
esac
head -c 200 "$work/package/$FILE" | grep -q "OpenPGP.js v$VERSION " \
  || { echo "vendor-openpgp: $FILE does not announce v$VERSION" >&2; exit 1; }

integrity="sha384-$(openssl dgst -sha384 -binary "$work/package/$FILE" | openssl base64 -A)"

if [ -n "$check" ]; then
  cmp -s "$work/package/$FILE" "$dest/openpgp.min.mjs" \
    || { echo "vendor-openpgp: src/console/vendor/openpgp.min.mjs differs from openpgp@$VERSION's $FILE" >&2; exit 1; }
  [ "$(cat "$dest/openpgp.min.mjs.sha384")" = "$integrity" ] \
    || { echo "vendor-openpgp: the recorded hash is not $integrity" >&2; exit 1; }
  cmp -s "$work/package/LICENSE" "$dest/openpgp.LICENSE" \
    || { echo "vendor-openpgp: src/console/vendor/openpgp.LICENSE differs" >&2; exit 1; }
  echo "vendor-openpgp: src/console/vendor/ holds openpgp@$VERSION's $FILE ($integrity)"
  exit 0
fi

mkdir -p "$dest"
cp "$work/package/$FILE" "$dest/openpgp.min.mjs"
cp "$work/package/LICENSE" "$dest/openpgp.LICENSE"
printf '%s\n' "$integrity" > "$dest/openpgp.min.mjs.sha384"
printf '%s\n' "$VERSION" > "$dest/openpgp.version"
echo "vendor-openpgp: openpgp@$VERSION $FILE -> src/console/vendor/openpgp.min.mjs ($integrity)"
