#!/usr/bin/env bash
# Verification speed and memory of `model-signing` against the Python peer (model-signing 1.1.1).
#
# Run by `make bench` after it built target/release/model-signing and the peer venv; this script
# builds nothing. It makes three signed models in a scratch directory outside the repository,
# signs each with the peer's CLI (key method, P-256), then times `verify key` of both
# implementations and prints Markdown tables.
#
#   1gib   1 GiB of random bytes in 4 files of 256 MiB
#   tiny   2 files (a config and 64 KiB of weights)
#   2000   2000 small random files (1-16 KiB, 16 MiB in all) in 20 directories
#
# How it avoids misleading numbers:
# - Pairs. The two sides run alternately (ours, peer, ours, peer, ...); each pair gives one ratio
#   ours/peer, and the table reports the median of the per-pair ratios with their interquartile
#   range and min-max, so a burst of load hits one pair, not one side. RUNS >= 11 for a result;
#   fewer runs are labelled a smoke run.
# - Start-up as its own baseline. The peer's start-up is timed the same way (warm and cold):
#   `python -c pass` (the interpreter), `python -c 'import model_signing'` and
#   `python -m model_signing --help` (interpreter, imports and CLI: what every verification pays
#   before it reads a byte), against our `--version`; the CLI figure stands beside each ratio.
# - Cold cache. Init containers usually read a model that is not in the page cache, so every
#   model and the start-up also get a cold row: before each timed run of either side, as root,
#   `sync; echo 3 > /proc/sys/vm/drop_caches` (this also slows everyone else on the machine for a
#   moment). Without root, or when that file is not writable, the rows say why they are missing
#   and a warning is printed.
# - Same measurement for both sides. One function runs every command: wall time from bash's
#   $EPOCHREALTIME around the run, peak RSS from GNU time (/usr/bin/time -f %M; installed with
#   apt-get when missing), CPU time (user+sys, 1 ms resolution) from bash's `times` in a subshell
#   whose only child is that run. Both include GNU time's own fork+exec (well under 1 ms). The
#   table gives medians of wall and CPU time and the maximum of peak RSS, for both sides alike.
# - Load. Before and after the measurements the 1-minute load average and a 2 s sample of
#   /proc/stat are checked (warning above LOAD_MAX=0.5 or BUSY_MAX=10 % busy; after the run only
#   the sample counts, since our own runs raise the load average), and the CPU time that other
#   processes used during the measurements is reported. A loaded run is labelled as such.
#
# The machine's single-core SHA-256 limit is measured in the same run with
# `openssl speed -evp sha256 -bytes 16384`, and ours on 1 GiB is reported as a fraction of it.
# Targets (reported, not asserted): 1 GiB <= 0.6x the peer's wall time, tiny <= 0.05x,
# 2000 files <= 0.1x, our peak RSS <= 20 MiB.
#
# Environment: RUNS (default 11; fewer makes a smoke run), MODELS (default "1gib tiny 2000"),
# COLD (default 1; 0 leaves the cold rows out), BENCH_DIR (default ${TMPDIR:-/tmp}/mvo-bench.XXXX,
# removed at the end unless BENCH_KEEP=1), OURS (default target/release/model-signing),
# MODEL_SIGNING_PEER_PYTHON (default target/peer-venv/bin/python), BENCH_OUT (also write the
# tables to this file), LOAD_MAX, BUSY_MAX, PERF_DIR (bench/lib.sh).
#
# The measured values also go to docs/perf/verify-vs-peer.tsv (bench/lib.sh perf_save), charted
# in verify-vs-peer.svg (wall times), verify-vs-peer-ratio.svg (ratios and targets) and
# verify-vs-peer-rss.svg (peak RSS).
set -euo pipefail
# $EPOCHREALTIME, `times` and awk must all use a decimal point.
export LC_ALL=C

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=verify-vs-peer
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

runs="${RUNS:-11}"
record_runs=11
read -ra models <<<"${MODELS:-1gib tiny 2000}"
cold="${COLD:-1}"
ours="${OURS:-$repo/target/release/model-signing}"
peer_python="${MODEL_SIGNING_PEER_PYTHON:-$repo/target/peer-venv/bin/python}"
peer_version_expected=1.1.1

[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$runs'"
[ "${#models[@]}" -gt 0 ] || die "MODELS is empty"
for m in "${models[@]}"; do
  case "$m" in 1gib | tiny | 2000) ;; *) die "unknown model '$m' in MODELS (1gib, tiny, 2000)" ;; esac
done
[ -x "$ours" ] || die "$ours is missing: run \`make bench\` (or \`cargo build --release\`)"
[ -x "$peer_python" ] || die "the peer is missing at $peer_python: run \`make peer-venv\`"
command -v openssl >/dev/null || die "openssl is needed (keys and the SHA-256 limit)"
peer_version="$("$peer_python" -c 'import importlib.metadata as m; print(m.version("model-signing"))')"
[ "$peer_version" = "$peer_version_expected" ] ||
  die "the peer is model-signing $peer_version, not $peer_version_expected: run \`make peer-venv\`"
if ! /usr/bin/time -f '' true 2>/dev/null; then
  log "installing GNU time (Debian package 'time')"
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
  else
    sudo apt-get install -y -qq time >/dev/null
  fi
  /usr/bin/time -f '' true || die "GNU time is still missing at /usr/bin/time"
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

# make_models NAME...: creates the missing models; each is written to NAME.part and renamed
# when complete, so an interrupted run never leaves a half model that looks reusable.
make_models() {
  "$peer_python" - "$scratch" "$@" <<'PY'
import os, pathlib, shutil, sys
root = pathlib.Path(sys.argv[1])
def put(p, data):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
def make_1gib(d):
    d.mkdir(parents=True)
    for i in range(4):
        with open(d / f"model-{i + 1:05d}-of-00004.safetensors", "wb") as f:
            for _ in range(256):
                f.write(os.urandom(1 << 20))
def make_tiny(d):
    put(d / "config.json", b'{"architectures": ["TinyModel"], "hidden_size": 64}\n')
    put(d / "model.safetensors", os.urandom(64 << 10))
def make_2000(d):
    for i in range(2000):
        put(d / f"dir{i % 20:02d}" / f"file{i:04d}.bin", os.urandom(((i * 37) % 16 + 1) << 10))
makers = {"1gib": make_1gib, "tiny": make_tiny, "2000": make_2000}
for name in sys.argv[2:]:
    if (root / name).exists():
        continue
    part = root / (name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    makers[name](part)
    part.rename(root / name)
PY
}

log "models in $scratch: ${models[*]}"
make_models "${models[@]}"
if [ ! -f "$scratch/key.pub" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$scratch/key.pem" 2>/dev/null
  openssl ec -in "$scratch/key.pem" -pubout -out "$scratch/key.pub.part" 2>/dev/null
  mv "$scratch/key.pub.part" "$scratch/key.pub"
fi
for m in "${models[@]}"; do
  if [ ! -f "$scratch/$m.sig" ]; then
    log "signing $m with the peer"
    (cd "$scratch" && "$peer_python" -m model_signing sign key "$m" \
      --private_key key.pem --signature "$m.sig.part" >/dev/null)
    mv "$scratch/$m.sig.part" "$scratch/$m.sig"
  fi
done

# ---------------------------------------------------------------------------------------------
# Cold cache: available only as root with a writable /proc/sys/vm/drop_caches.

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches || die "cannot drop the page cache any more"
}

cold_missing=""
if [ "$cold" != 1 ]; then
  cold_missing="left out (COLD=$cold)"
elif [ "$(id -u)" != 0 ]; then
  cold_missing="skipped: not root (uid $(id -u)); dropping the page cache needs root"
elif ! { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
  cold_missing="skipped: /proc/sys/vm/drop_caches is not writable (read-only /proc/sys?)"
fi
if [ -n "$cold_missing" ]; then
  log "WARNING: no cold-cache rows: $cold_missing"
  states=(warm)
else
  states=(warm cold)
fi

# ---------------------------------------------------------------------------------------------
# Measuring

# measure SERIES STATE CMD...: one run of CMD (stdout and stderr to files; a failure stops the
# script); STATE cold drops the page cache first. Appends "wall_s peak_rss_kib cpu_s" to
# $scratch/SERIES.runs. The subshell's only child is GNU time (and through it CMD), and `times`
# runs in it before anything else is forked, so it gives exactly their CPU time.
measure() {
  local series="$1" state="$2"; shift 2
  if [ "$state" = cold ]; then drop_caches; fi
  (
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$scratch/rss.out" "$@" >/dev/null 2>"$scratch/stderr.out" || exit 1
    t1=$EPOCHREALTIME
    times >"$scratch/times.out"
    echo "$t0 $t1" >"$scratch/wall.out"
  ) || { cat "$scratch/stderr.out" >&2; die "failed: $*"; }
  # The second line of `times` is the children's user and system time, e.g. "0m0.532s 0m0.110s".
  echo "$(cat "$scratch/wall.out") $(tail -n 1 "$scratch/rss.out") $(tail -n 1 "$scratch/times.out")" | awk '{
    printf "%.6f %d %.3f\n", $2 - $1, $3, minutes_seconds($4) + minutes_seconds($5) }
    function minutes_seconds(t,   p) { split(t, p, "m"); sub(/s$/, "", p[2]); return p[1] * 60 + p[2] }' \
    >>"$scratch/$series.runs"
}

# stats FILE COLUMN: "median q1 q3 min max" of a column (quartiles interpolated linearly).
stats() {
  sort -g -k"$2","$2" "$1" | awk -v c="$2" '
    function q(p,   h, lo) { h = (NR - 1) * p + 1; lo = int(h); return v[lo] + (h - lo) * (v[lo + 1] - v[lo]) }
    { v[NR] = $c }
    END { v[NR + 1] = v[NR]; print q(0.5), q(0.25), q(0.75), v[1], v[NR] }'
}
median() { stats "$1" "$2" | cut -d' ' -f1; }
max_of() { stats "$1" "$2" | cut -d' ' -f5; }

# ratios OURS PEER: the per-pair ratios of the wall times (line i of one over line i of the other).
ratios() {
  paste -d' ' "$1" "$2" | awk '{ print $1 / $4 }'
}

# cpu_ticks: CPU time (all CPUs, idle and iowait excluded) the machine has spent since boot, in
# seconds; children_cpu: the CPU time of this script's finished children, in seconds (`times` is
# run without a pipe: in a pipeline it would be a fresh process that has no children).
cpu_ticks() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}
children_cpu() {
  times >"$scratch/times-all.out"
  tail -n 1 "$scratch/times-all.out" | awk '{
    print minutes_seconds($1) + minutes_seconds($2) }
    function minutes_seconds(t,   p) { split(t, p, "m"); sub(/s$/, "", p[2]); return p[1] * 60 + p[2] }'
}

# The start-up commands: ours, the bare interpreter, the library import, the CLI.
startup_names=(ours pass import cli)
startup_cmd() {
  case "$1" in
    ours) echo "model-signing --version" ;;
    pass) echo "python -c pass" ;;
    import) echo "python -c 'import model_signing'" ;;
    cli) echo "python -m model_signing --help" ;;
  esac
}
# run_startup SERIES STATE NAME
run_startup() {
  local series="$1" state="$2"
  case "$3" in
    ours) measure "$series" "$state" "$ours" --version ;;
    pass) measure "$series" "$state" "$peer_python" -c pass ;;
    import) measure "$series" "$state" "$peer_python" -c 'import model_signing' ;;
    cli) measure "$series" "$state" "$peer_python" -m model_signing --help ;;
  esac
}

load_before="$(load_check before)"
log "measuring the single-core SHA-256 limit (openssl speed, 2 s)"
sha_limit_kbs="$(openssl speed -evp sha256 -bytes 16384 -seconds 2 2>/dev/null | awk '$1 == "sha256" { sub(/k$/, "", $2); print $2 }')"
[ -n "$sha_limit_kbs" ] || die "cannot parse openssl speed output"

rm -f "$scratch"/*.runs
t_start=$EPOCHREALTIME
machine_cpu_start=$(cpu_ticks)
children_cpu_start=$(children_cpu)

for state in "${states[@]}"; do
  log "start-up, $state: $runs runs each, alternating"
  if [ "$state" = warm ]; then
    for name in "${startup_names[@]}"; do run_startup warm-up warm "$name"; done
  fi
  for ((i = 0; i < runs; i++)); do
    for name in "${startup_names[@]}"; do run_startup "startup.$state.$name" "$state" "$name"; done
  done
done

for m in "${models[@]}"; do
  what=(verify key "$scratch/$m" --signature "$scratch/$m.sig" --public_key "$scratch/key.pub")
  for state in "${states[@]}"; do
    if [ "$state" = warm ]; then
      log "$m: warm-up"
      measure warm-up warm "$ours" "${what[@]}"
      measure warm-up warm "$peer_python" -m model_signing "${what[@]}"
    fi
    log "$m, $state cache: $runs pairs (ours, peer)"
    for ((i = 0; i < runs; i++)); do
      measure "$m.$state.ours" "$state" "$ours" "${what[@]}"
      measure "$m.$state.peer" "$state" "$peer_python" -m model_signing "${what[@]}"
      if [ "$m" = 1gib ] && [ "$state" = warm ]; then measure "$m.warm.ours-j1" warm "$ours" --jobs 1 "${what[@]}"; fi
    done
  done
done

t_end=$EPOCHREALTIME
machine_cpu=$(awk -v a="$machine_cpu_start" -v b="$(cpu_ticks)" 'BEGIN { print b - a }')
children=$(awk -v a="$children_cpu_start" -v b="$(children_cpu)" 'BEGIN { print b - a }')
load_after="$(load_check after sample-only)"
# CPU time of everything else on the machine while we measured (our own runs subtracted).
foreign=$(awk -v m="$machine_cpu" -v c="$children" -v w0="$t_start" -v w1="$t_end" -v n="$(nproc)" 'BEGIN {
  f = m - c; if (f < 0) f = 0
  printf "%.1f s of CPU time (%.0f%% of %d CPUs over the %.0f s of measurements)", f, 100 * f / ((w1 - w0) * n), n, w1 - w0 }')
foreign_loaded=$(awk -v m="$machine_cpu" -v c="$children" -v w0="$t_start" -v w1="$t_end" -v n="$(nproc)" \
  -v bm="${BUSY_MAX:-10}" 'BEGIN { print (100 * (m - c) / ((w1 - w0) * n) > bm) ? 1 : 0 }')
[ "$foreign_loaded" = 0 ] || log "WARNING: other processes used $foreign: wall times are not representative"

# ---------------------------------------------------------------------------------------------
# Report

bytes_of() { find "$scratch/$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }'; }
files_of() { find "$scratch/$1" -type f | wc -l; }
target_of() { case "$1" in 1gib) echo 0.6 ;; tiny) echo 0.05 ;; 2000) echo 0.1 ;; esac; }
label_of() { case "$1" in 1gib) echo "1 GiB" ;; tiny) echo "tiny" ;; 2000) echo "2000 small files" ;; esac; }
secs() { awk -v s="$1" 'BEGIN { if (s < 1) printf "%.1f ms", s * 1000; else printf "%.2f s", s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

report() {
  local cpu smoke=0 loaded=0
  [ "$runs" -ge "$record_runs" ] || smoke=1
  case "$load_before$load_after" in *LOADED*) loaded=1 ;; esac
  [ "$foreign_loaded" = 0 ] || loaded=1
  if [ "$smoke" = 1 ]; then
    echo "**SMOKE RUN: $runs runs (a result needs at least $record_runs); these numbers are not a result.**"
    echo
  fi
  if [ "$loaded" = 1 ]; then
    echo "**LOADED MACHINE: wall times and ratios are not representative (see the load below).**"
    echo
  fi
  cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "Machine: $cpu, $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)."
  echo
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Before: $load_before. After: $load_after."
  echo "Other processes used $foreign."
  echo
  echo "Ours: $("$ours" --version) ($ours); peer: model-signing $peer_version, $("$peer_python" --version)."
  echo
  echo "Runs: $runs alternating pairs per row. Wall and CPU (user+sys): medians; peak RSS: maximum over"
  echo "the runs; the same for both sides. ours / peer: median of the per-pair ratios, with their"
  echo "interquartile range and min-max. Cold: page cache dropped before every run of either side."
  if [ -n "$cold_missing" ]; then
    echo
    echo "**No cold-cache rows: $cold_missing.**"
  fi
  echo
  echo "Start-up (nothing verified):"
  echo
  echo "| command | cache | wall (median) | wall min-max | peak RSS | CPU |"
  echo "|---|---|---:|---:|---:|---:|"
  local state name f
  for state in "${states[@]}"; do
    for name in "${startup_names[@]}"; do
      f="$scratch/startup.$state.$name.runs"
      read -r _ _ _ lo hi < <(stats "$f" 1)
      # shellcheck disable=SC2016 # the backquotes are Markdown, not shell
      printf '| `%s` | %s | %s | %s-%s | %s | %s |\n' "$(startup_cmd "$name")" "$state" \
        "$(secs "$(median "$f" 1)")" "$(secs "$lo")" "$(secs "$hi")" "$(mib "$(max_of "$f" 2)")" \
        "$(secs "$(median "$f" 3)")"
      perf_row startup "$(startup_cmd "$name") ($state)" "wall (median)" "$(median "$f" 1)" ms 1000
      perf_row startup-rss "$(startup_cmd "$name") ($state)" "peak RSS" "$(max_of "$f" 2)" MiB 0.0009765625
    done
  done
  echo
  echo "Verification (\`verify key\`); \"peer start-up\" is \`python -m model_signing --help\` with the same cache:"
  echo
  echo "| model | cache | files | bytes | ours wall | peer wall | peer start-up | ours / peer | ratio IQR | ratio min-max | target | ours peak RSS | peer peak RSS | ours CPU | peer CPU |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"
  local all_rss_ok=1 m o p r rmed rq1 rq3 rlo rhi target verdict orss
  for m in "${models[@]}"; do
    for state in warm cold; do
      if [ "$state" = cold ] && [ -n "$cold_missing" ]; then
        # No cold row in the results file either: a missing measurement is not a zero.
        printf '| %s | cold | %s | %s | — | — | — | %s | | | | | | | |\n' \
          "$(label_of "$m")" "$(files_of "$m")" "$(bytes_of "$m")" "$cold_missing"
        continue
      fi
      o="$scratch/$m.$state.ours.runs"; p="$scratch/$m.$state.peer.runs"; r="$scratch/$m.$state.ratios"
      ratios "$o" "$p" >"$r"
      read -r rmed rq1 rq3 rlo rhi < <(stats "$r" 1)
      target=$(target_of "$m")
      verdict=$(awk -v r="$rmed" -v t="$target" 'BEGIN { print (r <= t) ? "pass" : "FAIL" }')
      [ "$smoke" = 0 ] || verdict="$verdict (smoke)"
      orss=$(max_of "$o" 2)
      awk -v r="$orss" 'BEGIN { exit !(r > 20 * 1024) }' && all_rss_ok=0
      printf '| %s | %s | %s | %s | %s | %s | %s | **%.3fx** | %.3f-%.3f | %.3f-%.3f | ≤ %s: %s | %s | %s | %s | %s |\n' \
        "$(label_of "$m")" "$state" "$(files_of "$m")" "$(bytes_of "$m")" \
        "$(secs "$(median "$o" 1)")" "$(secs "$(median "$p" 1)")" \
        "$(secs "$(median "$scratch/startup.$state.cli.runs" 1)")" \
        "$rmed" "$rq1" "$rq3" "$rlo" "$rhi" "$target" "$verdict" \
        "$(mib "$orss")" "$(mib "$(max_of "$p" 2)")" \
        "$(secs "$(median "$o" 3)")" "$(secs "$(median "$p" 3)")"
      row="$(label_of "$m") ($state)"
      perf_row wall "$row" ours "$(median "$o" 1)" ms 1000
      perf_row wall "$row" peer "$(median "$p" 1)" ms 1000
      perf_row wall "$row" "peer start-up" "$(median "$scratch/startup.$state.cli.runs" 1)" ms 1000
      perf_row ratio "$row" "ours / peer (median of pairs)" "$rmed" x 1
      perf_row ratio "$row" "ratio q1" "$rq1" x 1
      perf_row ratio "$row" "ratio q3" "$rq3" x 1
      perf_row ratio "$row" "ratio min" "$rlo" x 1
      perf_row ratio "$row" "ratio max" "$rhi" x 1
      perf_row ratio "$row" target "$target" x 1
      perf_row rss "$row" ours "$orss" MiB 0.0009765625
      perf_row rss "$row" peer "$(max_of "$p" 2)" MiB 0.0009765625
      perf_row cpu "$row" ours "$(median "$o" 3)" ms 1000
      perf_row cpu "$row" peer "$(median "$p" 3)" ms 1000
    done
  done
  echo
  echo "SHA-256 single-core limit (openssl speed -evp sha256, 16 KiB blocks): **$(awk -v l="$sha_limit_kbs" 'BEGIN { printf "%.0f", l / 1000 }') MB/s**."
  echo
  if [ -f "$scratch/1gib.warm.ours.runs" ]; then
    local bytes ow ow1 orss1
    bytes=$(bytes_of 1gib); ow=$(median "$scratch/1gib.warm.ours.runs" 1); ow1=$(median "$scratch/1gib.warm.ours-j1.runs" 1)
    orss1=$(max_of "$scratch/1gib.warm.ours-j1.runs" 2)
    awk -v b="$bytes" -v w="$ow" -v w1="$ow1" -v l="$sha_limit_kbs" -v n="$(nproc)" -v r1="$orss1" 'BEGIN {
      lim = l * 1000
      printf "Ours on 1 GiB, warm: %.0f MB/s with the default --jobs %d = **%.2fx** the single-core limit (%.0f%% of %d cores); ", b / w / 1e6, n, b / w / lim, 100 * b / w / lim / n, n
      printf "with --jobs 1: %.0f MB/s = **%.2fx** the single-core limit (%.2f s, peak RSS %.1f MiB).\n\n", b / w1 / 1e6, b / w1 / lim, w1, r1 / 1024
    }'
  fi
  if [ "$all_rss_ok" = 1 ]; then
    echo "Peak RSS target (ours ≤ 20 MiB on every model): pass."
  else
    echo "Peak RSS target (ours ≤ 20 MiB on every model): **FAIL**."
  fi
}

# perf_row TABLE ROW SERIES VALUE UNIT FACTOR: one line of the results file (VALUE x FACTOR).
perf_row() {
  awk -v t="$1" -v r="$2" -v s="$3" -v v="$4" -v u="$5" -v f="$6" \
    'BEGIN { printf "%s\t%s\t%s\t%.6g\t%s\n", t, r, s, v * f, u }' >>"$scratch/perf.tsv"
}
: >"$scratch/perf.tsv"
report | tee "${BENCH_OUT:-/dev/null}"

notes=("$runs alternating pairs per row; wall and CPU: medians, peak RSS: maximum; cold rows: ${cold_missing:-page cache dropped before every run}.")
[ "$runs" -ge "$record_runs" ] || notes+=("SMOKE RUN: $runs pairs, a result needs $record_runs: not a result.")
[ "$foreign_loaded" = 0 ] || notes+=("Other processes used $foreign.")
perf_save verify-vs-peer "$load_before" "$load_after" "${notes[@]}" <"$scratch/perf.tsv"
perf_plot verify-vs-peer "" --kind bar --table wall \
  --title "verify key: ours vs the Python peer model-signing $peer_version (bench/verify-vs-peer.sh)" \
  --xlabel "wall time, median" --ylabel "model (page cache)"
perf_plot verify-vs-peer -ratio --kind bar --table ratio --series "ours / peer (median of pairs),target" \
  --title "verify key: wall time ours / peer, per pair (lower is better; target = the issue's bound)" \
  --xlabel "ratio ours / peer" --ylabel "model (page cache)"
perf_plot verify-vs-peer -rss --kind bar --table rss \
  --title "verify key: peak RSS, ours vs the Python peer (bench/verify-vs-peer.sh)" \
  --xlabel "peak resident memory, maximum over the runs" --ylabel "model (page cache)"
