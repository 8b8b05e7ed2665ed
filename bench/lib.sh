# shellcheck shell=bash
# Helpers shared by the bench scripts; sourced, never run. The sourcing script sets BENCH_NAME
# (the prefix of its messages) and `set -euo pipefail` first.
#
# Why one file: every script must fail the same way when a wait times out, and must warn the
# same way when the machine is busy, so that no script can report numbers of a half-started
# setup or of a loaded machine as if they were a result.

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
log() { echo "$BENCH_NAME: $*" >&2; }

# busy_percent: share of CPU time (all CPUs) spent outside idle and iowait during a 2 s sample
# of /proc/stat, in percent.
busy_percent() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  sleep 2
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    busy = y[1] - x[1]; idle = y[2] - x[2]
    printf "%.0f", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

# load_check WHEN [sample-only]: prints "load average L1 L5 L15, N% busy over 2 s" and, when the
# 1-minute load average is above LOAD_MAX (default 0.5) or the sample is above BUSY_MAX percent
# (default 10), appends " — LOADED" and warns on stderr. With sample-only the load average is
# printed but does not count: right after a benchmark it mostly shows the benchmark itself.
# Returns 0 either way: a loaded machine is reported, not refused, because on a shared machine
# that is sometimes all there is.
load_check() {
  local when="$1" mode="${2:-}" load busy lmax="${LOAD_MAX:-0.5}"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  busy=$(busy_percent)
  [ "$mode" != sample-only ] || lmax=inf
  if awk -v l="${load%% *}" -v b="$busy" -v lm="$lmax" -v bm="${BUSY_MAX:-10}" \
    'BEGIN { exit !((lm != "inf" && l > lm + 0) || b > bm + 0) }'; then
    log "WARNING: the machine is loaded $when the run (load average $load, $busy% busy over 2 s;" \
      "limits $lmax and ${BUSY_MAX:-10}%): wall times are not representative"
    echo "load average $load, $busy% busy over 2 s — LOADED"
  else
    echo "load average $load, $busy% busy over 2 s"
  fi
}

# wait_until WHAT TIMEOUT_S CMD...: runs CMD every 0.1 s until it succeeds. Fails the script,
# naming WHAT, when TIMEOUT_S seconds pass, or at once when the process $WAIT_PID (if set) exits:
# a benchmark must never carry on against something that is not ready.
wait_until() {
  local what="$1" timeout="$2"; shift 2
  local end=$((SECONDS + timeout))
  until "$@"; do
    if [ -n "${WAIT_PID:-}" ] && ! kill -0 "$WAIT_PID" 2>/dev/null; then
      die "$what: the process $WAIT_PID exited while waiting${WAIT_LOG:+; its log ($WAIT_LOG) ends with:
$(tail -n 30 "$WAIT_LOG")}"
    fi
    [ "$SECONDS" -lt "$end" ] || die "$what: not ready after ${timeout} s${WAIT_LOG:+; $WAIT_LOG ends with:
$(tail -n 30 "$WAIT_LOG")}"
    sleep 0.1
  done
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------------------
# The real operator against the local control plane (webhook-load.sh, controller-scale.sh).
# Run from the repository root. Sets OP_PID, OP_PORT (webhook), OP_HEALTH (health and metrics)
# and OP_LOG; operator_cleanup undoes everything and is meant for `trap operator_cleanup EXIT`.

OP_PID=""
OP_WORK=""
OP_CLUSTER_DIR=""

operator_cleanup() {
  if [ -n "$OP_PID" ] && kill "$OP_PID" 2>/dev/null; then
    # The operator was killed by us: its non-zero exit status is expected.
    wait "$OP_PID" 2>/dev/null || true
  fi
  if [ -n "$OP_CLUSTER_DIR" ]; then
    # Teardown of a control plane that may have failed half-way through `up`; a failure here
    # must not replace the script's own exit status, and `down` says itself what it left.
    target/release/test-cluster down --dir "$OP_CLUSTER_DIR" >/dev/null 2>&1 || true
  fi
  [ -z "$OP_WORK" ] || rm -rf "$OP_WORK"
}

# operator_up CLUSTER_DIR [OPERATOR_FLAG...]: builds the release operator, test-cluster and the
# examples, starts the local control plane without the pod runner (`test-cluster up` itself fails
# when the API server is not ready in time), starts the operator (with the extra flags, if any)
# and waits until its /readyz answers.
operator_up() {
  OP_CLUSTER_DIR="$1"
  shift
  OP_WORK=$(mktemp -d)
  OP_LOG="$OP_WORK/operator.log"
  bash hack/testbin/build.sh >/dev/null
  # BENCH_BUILD=0: run the release binaries already in target/release as they are (e.g. while
  # the tree is being edited); the default builds them first.
  if [ "${BENCH_BUILD:-1}" != 0 ]; then
    cargo build --quiet --release --locked -p model-validation-operator -p test-cluster --bins --examples
  fi
  target/release/test-cluster up --dir "$OP_CLUSTER_DIR" --no-pod-runner >/dev/null
  export KUBECONFIG="$OP_CLUSTER_DIR/kubeconfig"
  OP_PORT=$(free_port)
  OP_HEALTH=$(free_port)
  operator_start "$@"
}

# operator_start [OPERATOR_FLAG...]: starts the operator on OP_PORT and OP_HEALTH, appending to
# OP_LOG, and waits until its /readyz answers (operator_up does the rest).
operator_start() {
  target/release/model-validation-operator --install-crds --webhook-addr "127.0.0.1:$OP_PORT" \
    --health-addr "127.0.0.1:$OP_HEALTH" --webhook-url "https://127.0.0.1:$OP_PORT" "$@" >>"$OP_LOG" 2>&1 &
  OP_PID=$!
  WAIT_PID=$OP_PID WAIT_LOG=$OP_LOG wait_until "operator /readyz" 30 \
    curl -fsS -o /dev/null "http://127.0.0.1:$OP_HEALTH/readyz"
}

# operator_restart [OPERATOR_FLAG...]: stops the operator operator_up started and starts it again,
# on the same ports and control plane, with these flags instead (its webhook CA stays in its
# Secret, so clients that trust it go on trusting the new one).
operator_restart() {
  if [ -n "$OP_PID" ] && kill "$OP_PID" 2>/dev/null; then
    wait "$OP_PID" 2>/dev/null || true
  fi
  OP_PID=""
  operator_start "$@"
}

# operator_metrics: the operator's /metrics text; fails the script when it cannot be scraped.
operator_metrics() {
  curl -fsS "http://127.0.0.1:$OP_HEALTH/metrics" || die "cannot scrape the operator's /metrics"
}

# proc_kib FIELD: VmRSS, VmHWM, ... of the operator, in KiB; fails when the operator is gone.
proc_kib() {
  local v
  # A missing /proc entry is turned into the message below instead of a silent exit.
  v=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$OP_PID/status" 2>/dev/null) || true
  [ -n "$v" ] || die "cannot read $1 of the operator (pid $OP_PID): did it exit?"
  echo "$v"
}

# ---------------------------------------------------------------------------------------------
# Machine-readable results and their charts (docs/perf/). Each script, at the end of a run,
# pipes its measured values to perf_save and renders charts with perf_plot, so the SVGs on the
# performance page are drawn from a run's own numbers, never from re-typed ones.

PERF_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# PERF_DIR: where NAME.tsv and the SVGs go (default docs/perf; PERF_DIR=none writes nothing).
PERF_DIR="${PERF_DIR:-$PERF_REPO/docs/perf}"
PERF_STARTED="$(date -u '+%Y-%m-%d %H:%M')"

# perf_save NAME LOAD_BEFORE LOAD_AFTER [NOTE...]: writes $PERF_DIR/NAME.tsv from the rows on
# stdin ("table<TAB>row<TAB>series<TAB>value<TAB>unit", the format bench/plot.sh reads), after
# comments naming the script, the run's start and end (UTC), the commit (and whether the tree
# had uncommitted changes), the two load_check lines and the notes; a run that load_check called
# LOADED gets a note saying what that means for its numbers. Written to NAME.tsv.part and renamed.
perf_save() {
  local name="$1" before="$2" after="$3" commit f
  shift 3
  [ "$PERF_DIR" != none ] || { cat >/dev/null; return 0; }
  mkdir -p "$PERF_DIR"
  f="$PERF_DIR/$name.tsv"
  commit=$(git -C "$PERF_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$PERF_REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit (tree with uncommitted changes)"
  fi
  {
    echo "# script: bench/$name.sh"
    echo "# date: $PERF_STARTED–$(date -u '+%H:%M') UTC"
    echo "# commit: $commit"
    echo "# load: before: $before; after: $after"
    echo "# machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
    if [ "${BENCH_BUILD:-1}" = 0 ]; then
      echo "# note: BENCH_BUILD=0: the release binaries were used as found in target/release."
    fi
    case "$before$after" in
      *LOADED*) echo "# note: LOADED machine: absolute times are not comparable with a quiet machine's; ratios are." ;;
    esac
    local n
    for n in "$@"; do echo "# note: $n"; done
    printf 'table\trow\tseries\tvalue\tunit\n'
    cat
  } >"$f.part"
  mv "$f.part" "$f"
  log "results written to ${f#"$PERF_REPO"/}"
}

# perf_plot NAME SUFFIX PLOT_OPTION...: renders $PERF_DIR/NAME.tsv into $PERF_DIR/NAME$SUFFIX.svg
# with bench/plot.sh; fails the script when the renderer refuses the file.
perf_plot() {
  local name="$1" suffix="$2"
  shift 2
  [ "$PERF_DIR" != none ] || return 0
  bash "$PERF_REPO/bench/plot.sh" "$@" "$PERF_DIR/$name.tsv" "$PERF_DIR/$name$suffix.svg" ||
    die "bench/plot.sh could not render $PERF_DIR/$name$suffix.svg"
  log "chart written to ${PERF_DIR#"$PERF_REPO"/}/$name$suffix.svg"
}
