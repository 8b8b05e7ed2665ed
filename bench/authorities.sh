#!/usr/bin/env bash
# What several authorities cost: `verify authorities` with two keys, each with its own signature
# of the same model (co-signing, "required": "all"), against `verify key` with one of them.
# The engine checks both envelopes first and hashes the model once for the two alike signatures,
# so the ratio should be close to 1, not 2.
#
# The model is 1 GiB of random bytes in 4 files (in a scratch directory outside the repository,
# warm in the page cache after the first run). The two sides run alternately in pairs; the
# output is the median of each side's wall time and the median of the per-pair ratios, with
# min-max. The load is checked before and after (bench/lib.sh) and a loaded machine is named.
#
# Environment: RUNS (default 7), SIZE_MIB (default 1024), OURS (default
# target/release/model-signing), LOAD_MAX, BUSY_MAX, PERF_DIR (bench/lib.sh).
# The results also go to docs/perf/authorities.tsv (bench/lib.sh perf_save), charted in
# docs/perf/authorities.svg.
set -euo pipefail
export LC_ALL=C

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=authorities
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
runs="${RUNS:-7}"
size_mib="${SIZE_MIB:-1024}"
ours="${OURS:-$repo/target/release/model-signing}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$runs'"
[[ "$size_mib" =~ ^[1-9][0-9]*$ ]] || die "SIZE_MIB must be a positive integer, not '$size_mib'"
[ -x "$ours" ] || die "$ours is missing: run \`make release\`"
command -v openssl >/dev/null || die "openssl is needed (keys)"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/mvo-authorities-bench.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/model"
for i in 1 2 3 4; do
  head -c "$((size_mib * 1024 * 1024 / 4))" /dev/urandom >"$scratch/model/part-$i.bin"
done
for who in owner release; do
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkcs8 -topk8 -nocrypt -out "$scratch/$who.key"
  openssl ec -in "$scratch/$who.key" -pubout -out "$scratch/$who.pub" 2>/dev/null
  "$ours" sign key "$scratch/model" --private-key "$scratch/$who.key" \
    --signature "$scratch/$who.sig" >/dev/null
done
python3 - "$scratch" <<'EOF'
import json, sys
d = sys.argv[1]
pem = lambda who: open(f"{d}/{who}.pub").read()
json.dump({"required": "all", "authorities": [
    {"name": "owner", "key": {"pem": pem("owner")}},
    {"name": "release", "key": {"pem": pem("release")}, "signature": f"{d}/release.sig"}]},
    open(f"{d}/authorities.json", "w"))
EOF

one=("$ours" verify key "$scratch/model" --public-key "$scratch/owner.pub" --signature "$scratch/owner.sig")
two=("$ours" verify authorities "$scratch/model" --policy "$scratch/authorities.json" --signature "$scratch/owner.sig")
"${one[@]}" >/dev/null || die "verify key failed"
"${two[@]}" >/dev/null || die "verify authorities failed"

wall() { # prints the wall time of "$@" in seconds
  local t0=$EPOCHREALTIME
  "$@" >/dev/null
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", b - a }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

load_before=$(load_check before)
: >"$scratch/one"; : >"$scratch/two"; : >"$scratch/ratio"
for _ in $(seq "$runs"); do
  a=$(wall "${one[@]}")
  b=$(wall "${two[@]}")
  echo "$a" >>"$scratch/one"
  echo "$b" >>"$scratch/two"
  awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f\n", b / a }' >>"$scratch/ratio"
done
load_after=$(load_check after sample-only)

echo "| ${size_mib} MiB, 4 files, warm cache, $runs pairs | median wall |"
echo "|---|---|"
echo "| \`verify key\` (one signature) | $(median <"$scratch/one") s |"
echo "| \`verify authorities\`, 2 keys, 2 signatures, required all | $(median <"$scratch/two") s |"
echo "| ratio authorities / key (per pair) | $(median <"$scratch/ratio") (min $(sort -g "$scratch/ratio" | head -1), max $(sort -g "$scratch/ratio" | tail -1)) |"
echo
echo "Load: before: $load_before; after: $load_after."

{
  printf 'wall\tverify key (one signature)\tmedian\t%s\ts\n' "$(median <"$scratch/one")"
  printf 'wall\tverify authorities (2 keys, required all)\tmedian\t%s\ts\n' "$(median <"$scratch/two")"
  printf 'ratio\tauthorities / key (per pair)\tmedian\t%s\tx\n' "$(median <"$scratch/ratio")"
  printf 'ratio\tauthorities / key (per pair)\tmin\t%s\tx\n' "$(sort -g "$scratch/ratio" | head -1)"
  printf 'ratio\tauthorities / key (per pair)\tmax\t%s\tx\n' "$(sort -g "$scratch/ratio" | tail -1)"
} | perf_save authorities "$load_before" "$load_after" \
  "$size_mib MiB in 4 files, warm page cache, $runs alternating pairs; medians."
perf_plot authorities "" --kind bar --table wall \
  --title "verify authorities (2 keys) against verify key, $size_mib MiB (bench/authorities.sh)" \
  --xlabel "wall time, median of $runs" --ylabel "command"
