#!/usr/bin/env bash
# Counts the instructions SecureForm spends per submission, accepted and delivered to the
# Documents store, with valgrind's callgrind (see BENCHMARKS.md, "Delivery to the Documents
# store"). Instruction counts do not depend on what else the machine is doing, so two builds
# compare exactly where timings would drown in noise.
#
#   scripts/count-instructions.sh [SUBMISSIONS] [BINARY]
#
# SUBMISSIONS (default 1000) urlencoded posts of 1 KiB, the body scripts/bench.sh sends, go one
# after the other over one keep-alive connection to `serve` on its embedded default, running
# under callgrind; the server is stopped once every submission is delivered. BINARY defaults to
# the release build (built first). Prints the totals of the parts of the data path; the full
# profile is left in the file named on the last line (read it with callgrind_annotate).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
count="${1:-1000}"
if [ "$#" -ge 2 ]; then
  bin="$(realpath "$2")"
else
  bash "$here/scripts/deps.sh" build
  (cd "$here" && cargo build --release --quiet --bin secureform)
  bin="${CARGO_TARGET_DIR:-$here/target}/release/secureform"
fi
if ! command -v valgrind >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi

work="$(mktemp -d /var/tmp/secureform-count.XXXXXX)"
out="$work/callgrind.out"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd "$work" && exec valgrind --tool=callgrind --callgrind-out-file="$out" \
  "$bin" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1) &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
  sleep 0.2
done

python3 - "$port" "$count" <<'PY'
import http.client, sys, time

port, count = int(sys.argv[1]), int(sys.argv[2])
head = "name=Ada+Lovelace&email=ada%40example.com&topics=billing&topics=support&message="
body = (head + "Lorem+ipsum+dolor+sit+amet%2C+consectetur+" * 30)[:1023] + "."
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    conn.request("POST", "/f/contact", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"})
    answer = conn.getresponse()
    answer.read()
    if answer.status != 303:
        sys.exit(f"a post was answered {answer.status}")
# Wait until every submission is delivered (at most two minutes).
for _ in range(600):
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    delivered = sum(int(float(line.split()[-1])) for line in text.splitlines()
                    if line.startswith('secureform_deliveries_total{sink="docs",outcome="delivered"}'))
    if delivered >= count:
        break
    time.sleep(0.2)
else:
    sys.exit("not every submission was delivered")
PY

kill -INT "$server"
wait "$server" 2>/dev/null || true
trap - EXIT
echo "$count submissions accepted and delivered; instructions (inclusive):"
callgrind_annotate --inclusive=yes --auto=no "$out" 2>/dev/null | grep -v "=>" |
  grep -E 'PROGRAM TOTALS|current_thread::Context::run_task \[|store::writer_loop \[|Spool::load \[|DocumentStore::put \[|urlencoded::parse \[|__memset' |
  sed -E 's/ +\/[^ ]*\/(sysdeps|src)\/[^:]*:/ /' | cut -c1-120
echo "profile: $out"
