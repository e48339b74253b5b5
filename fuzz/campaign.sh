#!/usr/bin/env bash
# linkgate fuzz campaign: one command, bounded in time, stops by itself.
#
# Runs every cargo-fuzz target (or the ones named) one after the other for a fixed time each,
# seeded with its stored regression inputs (fuzz/regressions/<target>/, copied into the working
# corpus fuzz/corpus/<target>/, which is not committed), and prints per target: executions,
# executions per second, coverage (libFuzzer's final `cov:` edges and `ft:` features), corpus
# size and crashes. A crash (or timeout, out-of-memory) input is copied into
# fuzz/regressions/<target>/ as crash-<target>-<hash>, the campaign goes on with the next target,
# and the script exits 1 at the end; 0 when every target ran clean.
#
# Usage: fuzz/campaign.sh [-t SECONDS] [target | target=SECONDS ...]
#   -t SECONDS       time per target (default FUZZ_SECONDS, else 60)
#   target=SECONDS   that target for its own time (e.g. chunked=600 multipart=1800)
# Knobs (environment): FUZZ_SECONDS, NICE (niceness, default 19), RSS_MB (default 2048),
# SKIP_BUILD=1 (use the targets already built), FUZZ_ARGS (more libFuzzer flags).
# Only the stable toolchain is needed: RUSTC_BOOTSTRAP=1 unlocks the flags cargo-fuzz uses, and no
# sanitizer is used (`-s none`), as in .ci/run; debug assertions and overflow checks are on.
# A summary table is also written to fuzz/campaign-results/<UTC time>.md (not committed).
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
PER="${FUZZ_SECONDS:-60}"
if [ "${1:-}" = "-t" ]; then
  PER="$2"
  shift 2
fi
NICE="${NICE:-19}"
RSS_MB="${RSS_MB:-2048}"
command -v cargo-fuzz >/dev/null || { echo "missing cargo-fuzz (cargo install --locked cargo-fuzz)"; exit 2; }
[ "${SKIP_BUILD:-0}" = 1 ] || nice -n "$NICE" cargo fuzz build -s none
ALL=$(cargo fuzz list)
PLAN=()
if [ $# -eq 0 ]; then
  for t in $ALL; do PLAN+=("$t=$PER"); done
else
  for arg in "$@"; do
    t="${arg%%=*}"
    grep -qx "$t" <<<"$ALL" || { echo "no fuzz target named $t (cargo fuzz list)"; exit 2; }
    [ "$t" = "$arg" ] && arg="$t=$PER"
    PLAN+=("$arg")
  done
fi

mkdir -p campaign-results
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
REPORT="campaign-results/$STAMP.md"
LOGS=$(mktemp -d /tmp/linkgate-fuzz.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT
FAILED=0
{
  echo "Fuzz campaign $STAMP (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, -s none, one job per target${FUZZ_ARGS:+, $FUZZ_ARGS})"
  echo
  echo "| target | seconds | executions | exec/s | cov | ft | corpus | crashes |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
} | tee "$REPORT"
for item in "${PLAN[@]}"; do
  t="${item%%=*}"
  secs="${item#*=}"
  mkdir -p "corpus/$t" "artifacts/$t"
  cp regressions/"$t"/* "corpus/$t/" 2>/dev/null || true
  before=$(ls "artifacts/$t" | sort)
  log="$LOGS/$t.log"
  start=$(date +%s)
  status=0
  # -max_total_time bounds the run; the outer timeout is a backstop for a hung target.
  timeout --kill-after=30 $((secs + 120)) nice -n "$NICE" cargo fuzz run "$t" -s none -- \
    -max_total_time="$secs" -rss_limit_mb="$RSS_MB" -timeout=10 -print_final_stats=1 \
    ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
  # libFuzzer's own fuzzing time (without the build `cargo fuzz run` may start with).
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  took=${took:-$(( $(date +%s) - start ))}
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep ' cov: ' | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  crashes=0
  for f in $(comm -13 <(echo "$before") <(ls "artifacts/$t" | sort)); do
    crashes=$((crashes + 1))
    cp "artifacts/$t/$f" "regressions/$t/crash-$t-${f#*-}"
    echo "  $t: new crash input kept as fuzz/regressions/$t/crash-$t-${f#*-}" >&2
  done
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    # Failed without leaving an input (build error, killed): a failure all the same.
    crashes="failed (exit $status)"
  fi
  if [ "$crashes" != 0 ]; then
    FAILED=1
    tail -40 "$log" >&2
  fi
  echo "| $t | $took | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |" | tee -a "$REPORT"
done
echo
echo "Written to fuzz/$REPORT"
exit "$FAILED"
