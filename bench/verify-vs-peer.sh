#!/usr/bin/env bash
# Verification speed and memory of `model-signing` against the Python peer (model-signing 1.1.1).
#
# Run by `make bench` after it built target/release/model-signing and the peer venv; this script
# builds nothing. It makes three signed models in a scratch directory outside the repository,
# signs each with the peer's CLI (key method, P-256), then times `verify key` of both
# implementations on a warm page cache and prints a Markdown table (medians of RUNS runs).
#
#   1gib   1 GiB of random bytes in 4 files of 256 MiB
#   tiny   2 files (a config and 64 KiB of weights)
#   2000   2000 small random files (1-16 KiB, 16 MiB in all) in 20 directories
#
# Wall time: bash's $EPOCHREALTIME around each run (the run includes GNU time's own fork+exec,
# well under 1 ms). Peak RSS, user and system CPU: GNU time (/usr/bin/time -v; installed with
# apt-get when missing). The machine's single-core SHA-256 limit is measured in the same run
# with `openssl speed -evp sha256 -bytes 16384`, and ours on 1 GiB is reported as a fraction of
# it. Targets (reported, not asserted): 1 GiB <= 0.6x the peer's wall time, tiny <= 0.05x,
# 2000 files <= 0.1x, our peak RSS <= 20 MiB.
#
# Environment: RUNS (default 7), BENCH_DIR (default ${TMPDIR:-/tmp}/mvo-bench.XXXX, removed at
# the end unless BENCH_KEEP=1), OURS (default target/release/model-signing),
# MODEL_SIGNING_PEER_PYTHON (default target/peer-venv/bin/python), BENCH_OUT (also write the
# table to this file).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${RUNS:-7}"
ours="${OURS:-$repo/target/release/model-signing}"
peer_python="${MODEL_SIGNING_PEER_PYTHON:-$repo/target/peer-venv/bin/python}"

die() { echo "verify-vs-peer: $*" >&2; exit 1; }
log() { echo "verify-vs-peer: $*" >&2; }

[ -x "$ours" ] || die "$ours is missing: run \`make bench\` (or \`cargo build --release\`)"
[ -x "$peer_python" ] || die "the peer is missing at $peer_python: run \`make peer-venv\`"
command -v openssl >/dev/null || die "openssl is needed (keys and the SHA-256 limit)"
if ! /usr/bin/time -f '' true 2>/dev/null; then
  log "installing GNU time (Debian package 'time')"
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
  else
    sudo apt-get install -y -qq time >/dev/null
  fi
fi

if [ -n "${BENCH_DIR:-}" ]; then
  scratch="$BENCH_DIR"
  mkdir -p "$scratch"
else
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/mvo-bench.XXXXXX")"
fi
case "$scratch/" in "$repo"/*) die "BENCH_DIR must be outside the repository" ;; esac
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$scratch"; }
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# Models, key, signatures (reused when BENCH_DIR already holds them)

make_models() {
  "$peer_python" - "$scratch" <<'PY'
import os, pathlib, sys
root = pathlib.Path(sys.argv[1])
def put(p, data):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
big = root / "1gib"
if not (big / ".done").exists():
    big.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        with open(big / f"model-{i + 1:05d}-of-00004.safetensors", "wb") as f:
            for _ in range(256):
                f.write(os.urandom(1 << 20))
    (big / ".done").write_bytes(b"")
tiny = root / "tiny"
if not (tiny / ".done").exists():
    put(tiny / "config.json", b'{"architectures": ["TinyModel"], "hidden_size": 64}\n')
    put(tiny / "model.safetensors", os.urandom(64 << 10))
    (tiny / ".done").write_bytes(b"")
many = root / "2000"
if not (many / ".done").exists():
    for i in range(2000):
        put(many / f"dir{i % 20:02d}" / f"file{i:04d}.bin", os.urandom(((i * 37) % 16 + 1) << 10))
    (many / ".done").write_bytes(b"")
PY
  # The marker files are not part of the models.
  rm -f "$scratch"/{1gib,tiny,2000}/.done
}

models=(1gib tiny 2000)
if [ ! -f "$scratch/ready" ]; then
  log "creating models in $scratch"
  make_models
  openssl ecparam -name prime256v1 -genkey -noout -out "$scratch/key.pem" 2>/dev/null
  openssl ec -in "$scratch/key.pem" -pubout -out "$scratch/key.pub" 2>/dev/null
  for m in "${models[@]}"; do
    log "signing $m with the peer"
    (cd "$scratch" && "$peer_python" -m model_signing sign key "$m" \
      --private_key key.pem --signature "$m.sig" >/dev/null)
  done
  touch "$scratch/ready"
fi

# ---------------------------------------------------------------------------------------------
# Measuring

# measure NAME CMD...: one run; appends "wall_s rss_kib user_s sys_s" to $scratch/NAME.runs.
measure() {
  local name="$1"; shift
  local tv="$scratch/time.out" t0 t1
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -v -o "$tv" "$@" >/dev/null 2>"$scratch/stderr.out"; then
    cat "$scratch/stderr.out" >&2
    die "failed: $*"
  fi
  t1=$EPOCHREALTIME
  awk -v t0="$t0" -v t1="$t1" -F': ' '
    /Maximum resident set size/ { rss = $2 }
    /User time \(seconds\)/ { user = $2 }
    /System time \(seconds\)/ { sys = $2 }
    END { printf "%.6f %d %.2f %.2f\n", t1 - t0, rss, user, sys }' "$tv" >>"$scratch/$name.runs"
}

# range FILE: "min-max" of the wall times, in ms
range_ms() {
  sort -g -k1,1 "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END {
    if (hi < 1) printf "%.1f-%.1f ms", lo * 1000, hi * 1000; else printf "%.2f-%.2f s", lo, hi }'
}

# median FILE COLUMN
median() {
  sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "measuring the single-core SHA-256 limit (openssl speed, 2 s)"
sha_limit_kbs="$(openssl speed -evp sha256 -bytes 16384 -seconds 2 2>/dev/null | awk '$1 == "sha256" { sub(/k$/, "", $2); print $2 }')"
[ -n "$sha_limit_kbs" ] || die "cannot parse openssl speed output"

rm -f "$scratch"/*.runs
for m in "${models[@]}"; do
  what=(verify key "$scratch/$m" --signature "$scratch/$m.sig" --public_key "$scratch/key.pub")
  log "$m: warm-up"
  measure warm "$ours" "${what[@]}"
  measure warm "$peer_python" -m model_signing "${what[@]}"
  log "$m: $runs runs each, alternating"
  for ((i = 0; i < runs; i++)); do
    measure "$m.ours" "$ours" "${what[@]}"
    measure "$m.peer" "$peer_python" -m model_signing "${what[@]}"
    if [ "$m" = 1gib ]; then measure "$m.ours-j1" "$ours" --jobs 1 "${what[@]}"; fi
  done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------
# Report

bytes_of() { find "$scratch/$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }'; }
files_of() { find "$scratch/$1" -type f | wc -l; }
target_of() { case "$1" in 1gib) echo 0.6 ;; tiny) echo 0.05 ;; 2000) echo 0.1 ;; esac; }
label_of() { case "$1" in 1gib) echo "1 GiB" ;; tiny) echo "tiny" ;; 2000) echo "2000 small files" ;; esac; }

report() {
  local cpu
  cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "Machine: $cpu, $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)."
  echo
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average (1, 5, 15 min) before $load_before, after $load_after."
  echo
  echo "Ours: $("$ours" --version) ($ours); peer: model-signing $("$peer_python" -c 'import importlib.metadata as m; print(m.version("model-signing"))'), $("$peer_python" --version)."
  echo
  echo "Runs: $runs per implementation and model (alternating), medians; warm page cache;"
  echo "ours peak RSS is the maximum over all runs, CPU is user+sys (median); wall ranges are min-max."
  echo
  echo "| model | files | bytes | ours wall | peer wall | ours / peer | target | ours peak RSS | peer peak RSS | ours CPU | peer CPU | ours wall range | peer wall range |"
  echo "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
  local all_rss_ok=1
  for m in "${models[@]}"; do
    local ow pw orss prss ou os pu ps target ratio verdict
    ow=$(median "$scratch/$m.ours.runs" 1); pw=$(median "$scratch/$m.peer.runs" 1)
    orss=$(sort -n -k2,2 "$scratch/$m.ours.runs" | tail -1 | cut -d' ' -f2)
    prss=$(median "$scratch/$m.peer.runs" 2)
    ou=$(median "$scratch/$m.ours.runs" 3); os=$(median "$scratch/$m.ours.runs" 4)
    pu=$(median "$scratch/$m.peer.runs" 3); ps=$(median "$scratch/$m.peer.runs" 4)
    target=$(target_of "$m")
    ratio=$(awk -v a="$ow" -v b="$pw" 'BEGIN { printf "%.3f", a / b }')
    verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r <= t) ? "pass" : "FAIL" }')
    awk -v r="$orss" 'BEGIN { exit !(r > 20 * 1024) }' && all_rss_ok=0
    printf '| %s | %s | %s | %s | %s | **%s** | ≤ %s: %s | %s | %s | %s | %s | %s | %s |\n' \
      "$(label_of "$m")" "$(files_of "$m")" "$(bytes_of "$m")" \
      "$(awk -v s="$ow" 'BEGIN { printf (s < 1 ? "%.1f ms" : "%.2f s"), (s < 1 ? s * 1000 : s) }')" \
      "$(awk -v s="$pw" 'BEGIN { printf (s < 1 ? "%.0f ms" : "%.2f s"), (s < 1 ? s * 1000 : s) }')" \
      "${ratio}x" "$target" "$verdict" \
      "$(awk -v k="$orss" 'BEGIN { printf "%.1f MiB", k / 1024 }')" \
      "$(awk -v k="$prss" 'BEGIN { printf "%.1f MiB", k / 1024 }')" \
      "$(awk -v u="$ou" -v s="$os" 'BEGIN { printf "%.2f s", u + s }')" \
      "$(awk -v u="$pu" -v s="$ps" 'BEGIN { printf "%.2f s", u + s }')" \
      "$(range_ms "$scratch/$m.ours.runs")" "$(range_ms "$scratch/$m.peer.runs")"
  done
  echo
  local bytes ow ow1 orss1
  bytes=$(bytes_of 1gib); ow=$(median "$scratch/1gib.ours.runs" 1); ow1=$(median "$scratch/1gib.ours-j1.runs" 1)
  orss1=$(sort -n -k2,2 "$scratch/1gib.ours-j1.runs" | tail -1 | cut -d' ' -f2)
  awk -v b="$bytes" -v w="$ow" -v w1="$ow1" -v l="$sha_limit_kbs" -v n="$(nproc)" -v r1="$orss1" 'BEGIN {
    lim = l * 1000
    printf "SHA-256 single-core limit (openssl speed -evp sha256, 16 KiB blocks): **%.0f MB/s**.\n\n", lim / 1e6
    printf "Ours on 1 GiB: %.0f MB/s with the default --jobs %d = **%.2fx** the single-core limit (%.0f%% of %d cores); ", b / w / 1e6, n, b / w / lim, 100 * b / w / lim / n, n
    printf "with --jobs 1: %.0f MB/s = **%.2fx** the single-core limit (%.2f s, peak RSS %.1f MiB).\n\n", b / w1 / 1e6, b / w1 / lim, w1, r1 / 1024
  }'
  if [ "$all_rss_ok" = 1 ]; then
    echo "Peak RSS target (ours ≤ 20 MiB on every model): pass."
  else
    echo "Peak RSS target (ours ≤ 20 MiB on every model): **FAIL**."
  fi
}

report | tee "${BENCH_OUT:-/dev/null}"
