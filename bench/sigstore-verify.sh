#!/usr/bin/env bash
# Wall time of keyless (Sigstore) verification of a tiny model, offline.
#
# The model is the v1.1.0 Sigstore golden of model-transparency (two files of a few bytes, a real
# production Fulcio certificate, Rekor entry and RFC 3161 timestamp), copied to a scratch
# directory outside the repository. Each run is a fresh process of the release binary doing
# everything `verify sigstore` does: parse the embedded production trusted root, the chain, SCT,
# inclusion proof, checkpoint, SET, TSA timestamp, DSSE signature, identity, then the model files.
# With root (or unprivileged user namespaces) the runs happen inside `unshare -n`, a network
# namespace with no interface at all: the network is unplugged for the verifier.
#
# Uses hyperfine when installed (Debian package `hyperfine`), else a loop timed with
# $EPOCHREALTIME. Target: median <= 30 ms wall on the 2-core test machine. The load is checked
# before and after (see bench/lib.sh) and a loaded machine is named in the output.
#
# Environment: RUNS (default 50), OURS (default target/release/model-signing), FIXTURES (default
# ../shared/fixtures next to the repository), LOAD_MAX, BUSY_MAX, PERF_DIR (bench/lib.sh).
# Every run's wall time also goes to docs/perf/sigstore-verify.tsv (bench/lib.sh perf_save: the
# summary against the 30 ms target, and the wall time at each 10th percentile of the runs),
# charted in docs/perf/sigstore-verify.svg and docs/perf/sigstore-verify-runs.svg.
set -euo pipefail
# $EPOCHREALTIME and awk must use a decimal point.
export LC_ALL=C

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=sigstore-verify
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
runs="${RUNS:-50}"
ours="${OURS:-$repo/target/release/model-signing}"
fixtures="${FIXTURES:-$repo/../shared/fixtures}"
golden="$fixtures/model-transparency/scripts/tests/v1.1.0-sigstore"

[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$runs'"
[ -x "$ours" ] || die "$ours is missing: run \`cargo build --release\`"
[ -f "$golden/model.sig" ] || die "fixture $golden is missing"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/mvo-sigstore-bench.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/model"
cp "$golden/signme-1" "$golden/signme-2" "$scratch/model/"
cp "$golden/model.sig" "$scratch/model.sig"

cmd=("$ours" verify sigstore --signature "$scratch/model.sig"
  --identity stefanb@us.ibm.com --identity-provider https://sigstore.verify.ibm.com/oauth2
  "$scratch/model")

# The probes are expected to fail where namespaces are not allowed: that selects the fallback.
offline=()
if unshare -n true 2>/dev/null; then
  offline=(unshare -n)
elif unshare -rn true 2>/dev/null; then
  offline=(unshare -rn)
else
  log "WARNING: no network namespace available; running with the network present"
fi

# The verification must succeed offline before it is timed.
"${offline[@]}" "${cmd[@]}" >/dev/null || die "verification failed"

load_before=$(load_check before)
if command -v hyperfine >/dev/null; then
  # hyperfine -N splits its command like a shell would: quote every word.
  hyperfine -N --warmup 5 --runs "$runs" --export-json "$scratch/h.json" \
    "$(printf '%q ' "${offline[@]}" "${cmd[@]}")" >&2
  summary=$(python3 - "$scratch/h.json" "$scratch/ms" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
ms = lambda s: f"{s*1000:.1f} ms"
print(f"keyless verify, tiny model: median {ms(r['median'])}, mean {ms(r['mean'])} ± {ms(r['stddev'])}, min {ms(r['min'])}, max {ms(r['max'])} ({len(r['times'])} runs)")
# Every run's wall time in ms, for the results file below.
with open(sys.argv[2], "w") as f:
    for t in r["times"]:
        f.write(f"{t * 1000:.4f}\n")
PY
  )
else
  for _ in $(seq 5); do "${offline[@]}" "${cmd[@]}" >/dev/null; done
  for _ in $(seq "$runs"); do
    t0=$EPOCHREALTIME
    "${offline[@]}" "${cmd[@]}" >/dev/null
    t1=$EPOCHREALTIME
    echo "$t0 $t1"
  done >"$scratch/walls"
  awk '{ printf "%.4f\n", ($2 - $1) * 1000 }' "$scratch/walls" >"$scratch/ms"
  summary=$(sort -g "$scratch/ms" | awk '{ a[NR] = $1 } END {
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "keyless verify, tiny model: median %.1f ms, min %.1f ms, max %.1f ms (%d runs)\n", m, a[1], a[NR], NR }')
fi
load_after=$(load_check after sample-only)

echo "machine: $(nproc) CPUs, $(uname -m); before: $load_before; after: $load_after"
echo "binary:  $ours"
echo "offline: ${offline[*]:-(no namespace)}"
echo "$summary"

# The same runs, machine-readable: the summary (with the target as a bar of its own) and the wall
# time at every 10th percentile (nearest rank), so the chart shows the spread, not only the median.
timer=$(command -v hyperfine >/dev/null && echo "hyperfine -N, 5 warm-up runs" || echo "a loop timed with \$EPOCHREALTIME, 5 warm-up runs")
what="verify sigstore, tiny model${offline[*]:+, ${offline[*]}}"
sort -g "$scratch/ms" | awk -v what="$what" -F'\t' '
  { a[NR] = $1; sum += $1 }
  END {
    med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "wall\t%s\tmin\t%.4f\tms\n", what, a[1]
    printf "wall\t%s\tmedian\t%.4f\tms\n", what, med
    printf "wall\t%s\tmean\t%.4f\tms\n", what, sum / NR
    printf "wall\t%s\tmax\t%.4f\tms\n", what, a[NR]
    printf "wall\t%s\ttarget (median)\t30\tms\n", what
    for (p = 10; p <= 100; p += 10) {
      k = int((p * NR + 99) / 100); if (k < 1) k = 1
      printf "percentile\t%d\twall time\t%.4f\tms\n", p, a[k]
    }
  }' | perf_save sigstore-verify "$load_before" "$load_after" \
  "$runs runs of a fresh process each ($timer), v1.1.0 Sigstore golden; ${offline[*]:-no network namespace}."
perf_plot sigstore-verify "" --kind bar --table wall --series "min,median,mean,max,target (median)" \
  --title "Keyless verification, $runs runs: $what (bench/sigstore-verify.sh)" \
  --xlabel "wall time per run" --ylabel "command"
perf_plot sigstore-verify -runs --kind line --table percentile \
  --title "Keyless verification: wall time at each percentile of the $runs runs (bench/sigstore-verify.sh)" \
  --xlabel "percentile of the runs (%)" --ylabel "wall time"
