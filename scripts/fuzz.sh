#!/usr/bin/env bash
# Fuzzing: every parser of untrusted bytes under libFuzzer, through cargo fuzz (README,
# "Fuzzing"; the targets are fuzz/fuzz_targets/*.rs, each asserting properties, not only "no
# panic").
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# Installs cargo-fuzz if it is missing (from crates.io, --locked), builds every target, then runs
# each (or the ones named) for SECONDS seconds from its committed seed corpus (fuzz/corpus/TARGET,
# read only) plus a working corpus (fuzz/work/TARGET, kept between runs, not committed), with the
# target's dictionary and input size limit. CI runs `scripts/fuzz.sh 20` from scripts/test.sh; a
# long run is `scripts/fuzz.sh 1800`.
#
# Exit 1 if any target fails: a panic, a failed property (assert), a timeout (an input taking
# more than 30 s) or running out of memory (2 GiB). The reproducer is left in
# fuzz/artifacts/TARGET/ and named in the output; replay it with
#   fuzz/target/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-…
# (or `cd fuzz && cargo fuzz run TARGET artifacts/TARGET/crash-…`), then add it to
# fuzz/corpus/TARGET/ once fixed, so that every later run replays it.
#
# Environment:
#   SEALPOST_FUZZ_JOBS        targets run at once (default: the number of CPUs)
#   SEALPOST_FUZZ_TARGET_DIR  cargo's target directory for the fuzz build (default fuzz/target;
#                             CARGO_TARGET_DIR is ignored, the instrumented build is separate)
#   SEALPOST_FUZZ_LOGS        where each target's libFuzzer log goes (default fuzz/logs)
#   SEALPOST_FUZZ_SANITIZER   none (default) or address
#
# Toolchain. CI has only the stable toolchain and cannot download another. cargo fuzz builds with
# stable flags only (`-Cpasses=sancov-module` and `-Cllvm-args=-sanitizer-coverage-*`, which
# libFuzzer needs, plus `--cfg fuzzing` and debug assertions with overflow checks) as long as no
# sanitizer is asked for, which is the default here: sealpost forbids `unsafe` code
# (`unsafe_code = "forbid"`), so what the targets can find is panics, failed properties, overflow,
# runaway time and memory, all of which libFuzzer catches without a sanitizer, at twice the speed.
# AddressSanitizer (SEALPOST_FUZZ_SANITIZER=address, for the dependencies' unsafe code) needs
# `-Zsanitizer=address`, a nightly-only flag: RUSTC_BOOTSTRAP=1 is then set so that the stable
# compiler accepts it (it enables unstable flags on a stable compiler; nothing else changes).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/fuzz.sh SECONDS [TARGET...]"
seconds=${1:?$usage}
shift
[[ $seconds =~ ^[0-9]+$ ]] || { echo "$usage" >&2; exit 2; }
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked --version 0.13.2 --quiet
fi

sanitizer=${SEALPOST_FUZZ_SANITIZER:-none}
case $sanitizer in
    none) ;;
    address) export RUSTC_BOOTSTRAP=1 ;;
    *) echo "fuzz: SEALPOST_FUZZ_SANITIZER must be none or address" >&2; exit 2 ;;
esac
target_dir=$(realpath -m "${SEALPOST_FUZZ_TARGET_DIR:-fuzz/target}")
logs=${SEALPOST_FUZZ_LOGS:-fuzz/logs}
jobs=${SEALPOST_FUZZ_JOBS:-$(nproc)}
triple=$(rustc -vV | sed -n 's/^host: //p')

started=$(date +%s)
(cd fuzz && cargo fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir")
echo "fuzz: built every target in $(( $(date +%s) - started )) s"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

# libFuzzer options per target: the dictionary and the largest input worth trying.
options() {
    case $1 in
        envelope | envelope_payload) echo "-dict=fuzz/dict/envelope.dict -max_len=131072" ;;
        note | checkpoint | proof | witness_request) echo "-dict=fuzz/dict/transparency.dict -max_len=8192" ;;
        log_entry) echo "-dict=fuzz/dict/transparency.dict -max_len=4096" ;;
        tiles) echo "-dict=fuzz/dict/transparency.dict -max_len=16384" ;;
        merkle) echo "-max_len=1024" ;;
        manifest) echo "-dict=fuzz/dict/manifest.dict -max_len=4096" ;;
        bundle) echo "-dict=fuzz/dict/bundle.dict -max_len=16384" ;;
        http_headers) echo "-dict=fuzz/dict/http_headers.dict -max_len=1024" ;;
        *) echo "" ;;
    esac
}

run() {
    local target=$1 bin="$target_dir/$triple/release/$1"
    mkdir -p "fuzz/work/$target" "fuzz/artifacts/$target" "$logs"
    local before
    before=$(find "fuzz/artifacts/$target" -type f | wc -l)
    local status=0
    # shellcheck disable=SC2046 # the options are words
    "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" $(options "$target") \
        "fuzz/work/$target" "fuzz/corpus/$target" >"$logs/$target.log" 2>&1 || status=$?
    local after
    after=$(find "fuzz/artifacts/$target" -type f | wc -l)
    local runs speed cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -n1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$target.log" | tail -n1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$logs/$target.log" | tail -n1)
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        echo "fuzz: $target FAILED (exit $status): $(grep -m1 -E '^==[0-9]+== ERROR|panicked at|^SUMMARY' "$logs/$target.log" || true)"
        grep -E 'Test unit written to' "$logs/$target.log" | sed 's/^/fuzz:   /' || true
        echo "fuzz:   log: $logs/$target.log"
        return 1
    fi
    printf 'fuzz: %-17s ok  %4ss  %10s runs  %7s/s  %s\n' "$target" "$seconds" "${runs:-?}" "${speed:-?}" "${cov:-}"
}

failed=0
running=0
for target in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    run "$target" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done

echo "fuzz: ${#targets[@]} targets, $seconds s each, $jobs at once, in $(( $(date +%s) - started )) s in all"
if [ "$failed" -ne 0 ]; then
    echo "fuzz: error: a target failed; the reproducers are under fuzz/artifacts/" >&2
    exit 1
fi
