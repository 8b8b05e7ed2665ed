#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted input (fuzz/, see fuzz/README.md).
#
#   hack/fuzz.sh [TARGET...]          every target (or those named), FUZZ_SECONDS each (default 60)
#   FUZZ_RUNS=N hack/fuzz.sh TARGET   stop after N executions instead of after a time
#
# Runs on stable Rust: cargo-fuzz (libFuzzer) with `--sanitizer none`, release build with
# debug assertions and overflow checks. cargo-fuzz is installed once into the cache
# ($MVO_CACHE_DIR/fuzz/tools); corpora grow in $MVO_CACHE_DIR/fuzz/corpus/<target>, seeded
# from ../shared/fixtures at every run; crashes land in $MVO_CACHE_DIR/fuzz/artifacts/<target>.
# Targets run one after another at nice 19, one fuzz process at a time. Exits non-zero when a
# target crashed; every run is appended to $MVO_CACHE_DIR/fuzz/runs.tsv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MVO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/model-validation-operator}/fuzz"
FIXTURES="${MVO_FIXTURES:-$ROOT/../shared/fixtures}"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
LOG_DIR="${FUZZ_LOG_DIR:-$CACHE/logs}"
CARGO_FUZZ_VERSION=0.13.2
# Stable, whatever the default toolchain: the point is that no nightly is needed.
export RUSTUP_TOOLCHAIN="${FUZZ_TOOLCHAIN:-stable}"
export MVO_FIXTURES="$FIXTURES"
FUZZ_FLAGS=(--sanitizer none --release --debug-assertions)
ALL_TARGETS=(bundle dsse statement pem x509_der admission_review duration names authorities oci_manifest modelcar)

[[ -d "$FIXTURES" ]] || { echo "fuzz: fixtures not found at $FIXTURES (set MVO_FIXTURES)" >&2; exit 2; }
[[ "$SECONDS_EACH" =~ ^[0-9]+$ && "$SECONDS_EACH" -gt 0 ]] || { echo "fuzz: FUZZ_SECONDS must be a positive number of seconds" >&2; exit 2; }
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")

export PATH="$CACHE/tools/bin:$PATH"
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $CACHE/tools (once)"
    nice -n 19 cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$CACHE/tools"
fi

mkdir -p "$CACHE/corpus" "$LOG_DIR"
python3 "$ROOT/fuzz/seeds.py" "$FIXTURES" "$CACHE/corpus"

cd "$ROOT/fuzz"
echo "fuzz: building ${targets[*]} (stable, --sanitizer none)"
for t in "${targets[@]}"; do
    nice -n 19 cargo fuzz build "${FUZZ_FLAGS[@]}" "$t"
done

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$CACHE/corpus/$t" "$CACHE/artifacts/$t"
    log="$LOG_DIR/$t-$(date -u +%Y%m%dT%H%M%SZ).log"
    limit=(-max_total_time="$SECONDS_EACH")
    [[ -z "${FUZZ_RUNS:-}" ]] || limit=(-runs="$FUZZ_RUNS")
    echo "fuzz: $t (${limit[*]}), log $log"
    start=$(date +%s)
    status=0
    nice -n 19 cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$CACHE/corpus/$t" -- \
        "${limit[@]}" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$CACHE/artifacts/$t/" >"$log" 2>&1 || status=$?
    wall=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "${execs:-?}" "$wall" "$status" >>"$CACHE/runs.tsv"
    echo "fuzz: $t: ${execs:-?} executions in ${wall}s, exit $status"
    if [[ $status -ne 0 ]]; then
        failed+=("$t")
        grep -E "panicked at|^SUMMARY|Test unit written" "$log" | head -5 >&2 || true
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in $CACHE/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crash"
