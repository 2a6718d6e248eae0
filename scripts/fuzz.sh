#!/usr/bin/env bash
# Builds and runs every fuzz target (fuzz/, cargo-fuzz layout; see docs/fuzzing.md).
#
#   scripts/fuzz.sh             CI mode: each target from the committed seeds only, a fixed
#                               -seed and a fixed -runs count (about 5 minutes in all here):
#                               the same inputs on every run
#   scripts/fuzz.sh RUNS        the same, RUNS executions per target
#   scripts/fuzz.sh 10m | 90s   campaign: each target for that long, one after the other, on a
#                               corpus kept between campaigns ($FUZZ_WORK/corpus/TARGET)
#   scripts/fuzz.sh MODE T...   only the targets named
#
# A finding (crash, failed property, timeout, out-of-memory) fails the script and names the
# saved input. Reproduce one with:
#   $FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release/TARGET INPUT
#
# Environment: FUZZ_TARGET_DIR (build, default /var/tmp/secureform-fuzz-target; never the shared
# CI target dir), FUZZ_WORK (corpora, findings, logs; default /var/tmp/secureform-fuzz),
# FUZZ_SKIP_UNAVAILABLE=1 (exit 0 with a message when the nightly toolchain or cargo-fuzz is
# missing and cannot be installed: what .ci/run sets).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TARGET_DIR=${FUZZ_TARGET_DIR:-/var/tmp/secureform-fuzz-target}
WORK=${FUZZ_WORK:-/var/tmp/secureform-fuzz}
MODE=${1:-ci}
shift || true

# Target, dictionary, -max_len, and its runs in CI mode: about 25 s each at the rates measured
# in the first campaign (docs/fuzzing.md).
TARGETS="
multipart      multipart  8192   800000
urlencoded     urlencoded 4096   300000
json_fields    json       4096   1500000
xfdf           xfdf       8192   1200000
fdf            pdf        16384  500000
pdf            pdf        16384  350000
pdf_text       pdf        4096   1400000
seal_open      seal       4096   5000000
seal_roundtrip seal       4096   120000
smime_der      smime      2048   15000
email_mime     email      4096   100000
"

skip() {
    if [ "${FUZZ_SKIP_UNAVAILABLE:-0}" = 1 ]; then
        echo "fuzz: skipped: $1"
        exit 0
    fi
    echo "fuzz: $1" >&2
    exit 2
}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    skip "no nightly toolchain (rustup toolchain install nightly)"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked >/dev/null 2>&1 || skip "cargo-fuzz could not be installed"
fi

# One process, one worker, in process (no -jobs: it would write fuzz-N.log into the current
# directory); the targets run one after the other, as the machine's 2 cores are shared.
# No sanitizer: the code under test is safe Rust (unsafe_code is forbidden), so AddressSanitizer
# would only halve the rate. Panics, failed properties, integer overflows (debug assertions are
# on), timeouts and memory over -rss_limit_mb are what libFuzzer reports.
echo "fuzz: building the targets"
(cd fuzz && CARGO_TARGET_DIR=$TARGET_DIR cargo +nightly fuzz build -s none)
BIN=$TARGET_DIR/x86_64-unknown-linux-gnu/release

case $MODE in
    ci) LIMIT=runs ;;
    *[0-9]s) LIMIT=time; SECS=${MODE%s} ;;
    *[0-9]m) LIMIT=time; SECS=$(( ${MODE%m} * 60 )) ;;
    *[0-9]) LIMIT=runs; RUNS=$MODE ;;
    *) echo "usage: scripts/fuzz.sh [ci | RUNS | Ns | Nm] [TARGET...]" >&2; exit 2 ;;
esac

mkdir -p "$WORK/findings" "$WORK/logs"
SUMMARY=$WORK/summary-$(date -u +%Y%m%dT%H%M%SZ).tsv
printf 'target\texecs\tsecs\tcov\tft\tcorpus\tresult\n' > "$SUMMARY"
failed=0
while read -r target dict max_len ci_runs; do
    [ -n "$target" ] || continue
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$target"; then
        continue
    fi
    if [ "$LIMIT" = runs ]; then
        # Deterministic: a fresh corpus from the committed seeds, a fixed seed.
        corpus=$(mktemp -d "$WORK/ci-corpus.XXXXXX")
        limit=(-seed=1 "-runs=${RUNS:-$ci_runs}" -max_total_time=300)
    else
        corpus=$WORK/corpus/$target
        mkdir -p "$corpus"
        limit=("-max_total_time=$SECS")
    fi
    artifacts=$WORK/findings/$target/
    mkdir -p "$artifacts"
    log=$WORK/logs/$target.log
    echo "fuzz: $target"
    start=$(date +%s)
    status=0
    "$BIN/$target" "${limit[@]}" -max_len="$max_len" -timeout=20 \
        -rss_limit_mb=1024 -malloc_limit_mb=512 -dict="$ROOT/fuzz/dict/$dict.dict" \
        -artifact_prefix="$artifacts" -print_final_stats=1 \
        "$corpus" "$ROOT/fuzz/seeds/$target" >"$log" 2>&1 || status=$?
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n1 || true)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        failed=1
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        result="FINDING ${input:-see $log}"
        echo "fuzz: FINDING in $target: ${input:-no input saved}; log: $log" >&2
        grep -E 'panicked at|ERROR: libFuzzer' "$log" | head -n3 >&2 || true
    fi
    [ "$LIMIT" = runs ] && rm -rf "$corpus"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "${execs:-?}" "$secs" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$result" >> "$SUMMARY"
done <<<"$TARGETS"

column -t -s $'\t' "$SUMMARY"
echo "fuzz: summary in $SUMMARY"
exit "$failed"
