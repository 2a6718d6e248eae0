#!/usr/bin/env bash
# Installs, from Debian's packages, what SecureForm needs that a fresh Debian machine
# with only Rust lacks. Run by run.sh and test.sh; installs only what is missing.
#   deps.sh build   what the build needs (a C toolchain, bindgen's libclang, OpenSSL headers)
#   deps.sh test    the build's needs and the real services and tools the tests use
set -euo pipefail

want_build=(build-essential libclang-dev clang pkg-config libssl-dev)
want_test=(gnupg openssl openssh-server openssh-client python3 python3-aiosmtpd
           python3-cryptography python3-venv passwd procps curl chromium)

missing=()
check() {
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
}

check "${want_build[@]}"
if [ "${1:-build}" = test ]; then
  check "${want_test[@]}"
  # MariaDB: the tests use one at 127.0.0.1:3306 and start private ones of their own.
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  # Node.js drives Chromium in the browser tests. Checked by command, not package: a machine
  # may carry another vendor's nodejs that bundles npm and conflicts with Debian's npm.
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
