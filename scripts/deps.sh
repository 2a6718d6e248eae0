#!/usr/bin/env bash
# Installs, from Debian's packages, what SecureForm needs that a fresh Debian machine with only
# Rust lacks. Run by run.sh and test.sh; installs only what is missing, and says what and why
# before it installs anything.
#   deps.sh build   what the build needs (a C toolchain, bindgen's libclang, OpenSSL headers)
#   deps.sh test    the build's needs and the real services and tools the tests use
#   deps.sh check   installs nothing: lists what the build lacks and the command that installs
#                   it (exit 1 when something is missing)
set -euo pipefail

# Each package with the reason it is needed.
declare -A why=(
  [build-essential]="a C compiler: SQLite, libssh2 and ring are built from C sources"
  [libclang-dev]="bindgen, which sequoia-openpgp's OpenSSL backend runs at build time"
  [clang]="bindgen's C front end"
  [pkg-config]="finds the system OpenSSL for the build"
  [libssl-dev]="OpenSSL headers: OpenPGP, S/MIME and SFTP link the system OpenSSL"
  [gnupg]="tests open PGP output with gpg"
  [openssl]="tests open S/MIME output with openssl cms"
  [openssh-server]="tests run a real sshd for the SFTP sink"
  [openssh-client]="ssh-keygen for the SFTP tests' keys"
  [python3]="the SMTP server and the contract checks of the tests"
  [python3-aiosmtpd]="a real SMTP server with STARTTLS for the email tests"
  [python3-cryptography]="tests open MySQL aes_gcm rows with Python's cryptography"
  [python3-venv]="a virtualenv for the tests' PyPI packages"
  [passwd]="useradd, for the SFTP test user"
  [procps]="pkill and ps, used by the test scripts"
  [curl]="the README's examples and the benchmarks"
  [chromium]="the browser tests (headless)"
  [mariadb-server]="the MySQL sink is tested against a real MariaDB"
  [postgresql]="the PostgreSQL storage backend is tested against a real PostgreSQL"
  [nodejs]="drives Chromium in the browser tests"
  [npm]="installs playwright-core for the browser tests"
)

want_build=(build-essential libclang-dev clang pkg-config libssl-dev)
want_test=(gnupg openssl openssh-server openssh-client python3 python3-aiosmtpd
           python3-cryptography python3-venv passwd procps curl chromium)

missing=()
check() {
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
}

mode="${1:-build}"
check "${want_build[@]}"
if [ "$mode" = test ]; then
  check "${want_test[@]}"
  # MariaDB: the tests use one at 127.0.0.1:3306 and start private ones of their own.
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  # PostgreSQL: the server (any version Debian ships) and psql, which the tests run.
  { command -v psql >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; } \
    || missing+=(postgresql)
  # Node.js drives Chromium in the browser tests. Checked by command, not package: a machine
  # may carry another vendor's nodejs that bundles npm and conflicts with Debian's npm.
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

[ "${#missing[@]}" -eq 0 ] && exit 0

echo "deps: these Debian packages are missing:" >&2
for pkg in "${missing[@]}"; do
  echo "  $pkg — ${why[$pkg]:-needed}" >&2
done
command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$mode" = check ]; then
  echo "deps: install them with: $command" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps: not root and no sudo: run as root: $command" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "deps: installing them now with: ${SUDO:+sudo }$command" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
