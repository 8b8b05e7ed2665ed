#!/usr/bin/env bash
# Fault injection under admission load, in full: crates/operator/tests/faults.rs at a larger
# scale (MVO_FAULTS_SCALE, default 3: one pod create every 167 ms, labelled and unlabelled
# alternating, and 18 s observation windows per fault). Two operator replicas behind a loopback
# balancer, the pod runner running every pod, and in sequence: the leader killed, the webhook
# replica serving admissions killed and restarted, kube-apiserver restarted, the serving
# certificates rotated, the CA rotated, the ModelValidation's key changed. The test fails when a
# labelled pod is admitted without the verifier, when unlabelled pods stop being admitted, or
# when the ModelValidation status does not converge; it prints the table of docs/reliability.md.
#   MVO_FAULTS_SCALE=3 bash bench/faults.sh
# The table goes to stdout and to target/faults-table.md; a passing run's values (parsed from
# the test's printed table) also go to docs/perf/faults.tsv (bench/lib.sh perf_save), charted in
# docs/perf/faults.svg (load held per fault), faults-failures.svg (failed and unverified
# admissions by cause) and faults-recovery.svg (recovery time per fault). Environment:
# MVO_FAULTS_SCALE, LOAD_MAX, BUSY_MAX, PERF_DIR (bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=faults
# shellcheck source=bench/lib.sh
. bench/lib.sh
SCALE=${MVO_FAULTS_SCALE:-3}

bash hack/testbin/build.sh >/dev/null
# The pod runner runs the release agent; the test checks it is built from the current sources.
cargo build --quiet --release --locked -p model-signing-cli
load_before=$(load_check before)
out=$(mktemp)
trap 'rm -f "$out" "$out.perf"' EXIT
if ! MVO_FAULTS_SCALE="$SCALE" cargo test --quiet --locked -p model-validation-operator \
  --test faults -- --nocapture >"$out" 2>&1; then
  cp "$out" target/faults-failed.log
  die "the fault test failed; its output is in target/faults-failed.log"
fi
load_after=$(load_check after sample-only)
grep -E '^(\||faults under load|status converged)' "$out" | tee target/faults-table.md
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo); before: $load_before; after: $load_after" \
  | tee -a target/faults-table.md

# The same values, machine-readable, from the test's own table; a row that does not parse fails
# the script rather than leaving a gap in the chart.
python3 - "$out" >"$out.perf" <<'PY' || die "could not read the results from the test's table"
import re, sys
text = open(sys.argv[1]).read()
num = r"([0-9]+(?:\.[0-9]+)?)"
rows = []
n = 0
for line in text.splitlines():
    if not line.startswith("| ") or line.startswith("| fault |"):
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 6:
        sys.exit(f"faults: a table row with {len(cells)} cells: {line}")
    fault, held, unverified, failed, recovery, _ = cells
    m = re.fullmatch(r"(\d+)/(\d+); (\d+)/(\d+)", held)
    f = re.fullmatch(r"(\d+) \((\d+) / (\d+) / (\d+)\)", failed)
    if not m or not f or not unverified.isdigit():
        sys.exit(f"faults: cannot read the row: {line}")
    n += 1
    for series, v in zip(("labelled sent", "labelled admitted with the verifier",
                          "unlabelled sent", "unlabelled admitted"),
                         (m.group(2), m.group(1), m.group(4), m.group(3))):
        rows.append(("load", fault, series, v, "pods"))
    rows.append(("failures", fault, "unverified admissions", unverified, "creates"))
    for series, v in zip(("refused by the webhook", "webhook unreachable", "API server down"), f.groups()[1:]):
        rows.append(("failures", fault, series, v, "creates"))
    r = re.fullmatch(rf"no interruption \(next admission {num} s\)", recovery)
    if r:
        rows.append(("recovery", fault, "no interruption (next admission)", r.group(1), "s"))
    elif re.fullmatch(rf"{num} s", recovery):
        rows.append(("recovery", fault, "recovered after failures", recovery[:-2], "s"))
    elif recovery != "n/a":
        # "not recovered in the window": there is no time to draw, so say so instead.
        print(f"faults: {fault}: {recovery}; no recovery time in the chart", file=sys.stderr)
if n == 0:
    sys.exit("faults: no table rows in the test output")
for r in rows:
    print("\t".join(r))
PY
perf_save faults "$load_before" "$load_after" \
  "MVO_FAULTS_SCALE=$SCALE: $(grep -m1 -o 'one create every [0-9]* ms' "$out"), windows of $((6 * SCALE)) s; two replicas, pod runner; debug build of tests/faults.rs." \
  "$(grep -m1 '^status converged' "$out" || echo 'status converged: (line missing)')" <"$out.perf"
perf_plot faults "" --kind bar --table load \
  --title "Faults under admission load, scale $SCALE: pods sent and admitted per fault window (bench/faults.sh)" \
  --xlabel "number" --ylabel "fault"
perf_plot faults -failures --kind bar --table failures \
  --title "Faults under admission load: labelled creates that failed, by cause, and unverified admissions (bench/faults.sh)" \
  --xlabel "number" --ylabel "fault"
perf_plot faults -recovery --kind bar --table recovery \
  --title "Faults under admission load: time from the fault to the first labelled admission after the last failure (bench/faults.sh)" \
  --xlabel "time" --ylabel "fault"
