#!/usr/bin/env bash
# The status controller at scale: the real operator binary against the local control plane,
# MVS ModelValidations and PODS labelled pods (created through the webhook), each pod's
# verifier outcome written to its status as a kubelet would; measures how long after the last
# write every ModelValidation's status is right, and the operator's peak RSS (VmHWM).
#   MVS=100 PODS=2000 bash bench/controller-scale.sh
# Targets (issue 6): converged within 10 s of the last change, operator RSS < 100 MiB.
# The measured values also go to docs/perf/controller-scale.tsv (bench/lib.sh perf_save), charted
# in docs/perf/controller-scale.svg (times against the 10 s target) and controller-scale-rss.svg
# (operator RSS against the 100 MiB target). Environment: MVS, PODS, BENCH_BUILD, LOAD_MAX,
# BUSY_MAX, PERF_DIR (bench/lib.sh).
# Every wait (control plane, operator /readyz, leadership) fails the script when it times out,
# and a metric without a sample fails it too instead of reading as 0.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=controller-scale
# shellcheck source=bench/lib.sh
. bench/lib.sh
MVS=${MVS:-100}
PODS=${PODS:-2000}
trap operator_cleanup EXIT

load_before=$(load_check before)
operator_up "$PWD/target/bench-cluster-controller"
# The status controller runs under leader election: before it leads, nothing is reconciled.
WAIT_PID=$OP_PID WAIT_LOG=$OP_LOG wait_until "operator leadership (model_validation_leader 1)" 30 \
  bash -c "curl -fsS 'http://127.0.0.1:$OP_HEALTH/metrics' | grep -q '^model_validation_leader 1'"
rss_idle=$(proc_kib VmRSS)
if ! result=$(target/release/examples/controller_scale "$MVS" "$PODS"); then
  cp "$OP_LOG" target/controller-scale-operator.log
  die "controller_scale failed; the operator's log is in target/controller-scale-operator.log"
fi
rss=$(proc_kib VmRSS)
hwm=$(proc_kib VmHWM)
metrics=$(operator_metrics)
reconciles=$(awk '/^model_validation_reconciles_total\{result="success"\}/ { print $2 }' <<<"$metrics")
errors=$(awk '/^model_validation_reconcile_errors_total / { print $2 }' <<<"$metrics")
[ -n "$reconciles" ] || die "no sample of model_validation_reconciles_total{result=\"success\"}"
[ -n "$errors" ] || die "no sample of model_validation_reconcile_errors_total"
load_after=$(load_check after)
echo "$result"
echo "operator RSS idle ${rss_idle} KiB, after ${rss} KiB, peak (VmHWM) ${hwm} KiB; reconciles ${reconciles}, errors ${errors}"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo); before: $load_before; after: $load_after"

# The same values, machine-readable: the example's JSON and the operator's numbers, as measured.
python3 - "$result" "$rss_idle" "$rss" "$hwm" "$reconciles" "$errors" <<'PY' |
import json, sys
r = json.loads(sys.argv[1])
idle, after, hwm = (int(v) / 1024 for v in sys.argv[2:5])
reconciles, errors = sys.argv[5:7]
mvs, pods = r["modelvalidations"], r["pods"]
rows = [
    ("time", f"create {pods} pods through the webhook", "measured", r["create_pods_s"], "s"),
    ("time", f"write {pods} pod statuses", "measured", r["write_statuses_s"], "s"),
    ("time", f"every status right after the last of {pods} writes", "measured", r["converge_after_bulk_s"], "s"),
    ("time", f"every status right after the last of {pods} writes", "target", 10, "s"),
    ("time", f"every status right after {mvs} more pods", "measured", r["converge_after_change_s"], "s"),
    ("time", f"every status right after {mvs} more pods", "target", 10, "s"),
    ("rss", "operator", "idle", idle, "MiB"),
    ("rss", "operator", f"after {pods + mvs} pods", after, "MiB"),
    ("rss", "operator", "peak (VmHWM)", hwm, "MiB"),
    ("rss", "operator", "target (peak)", 100, "MiB"),
    ("reconciles", "operator", "success", reconciles, "count"),
    ("reconciles", "operator", "errors", errors, "count"),
]
for t, row, series, v, unit in rows:
    print(f"{t}\t{row}\t{series}\t{float(v):.6g}\t{unit}")
PY
  perf_save controller-scale "$load_before" "$load_after" \
    "MVS=$MVS PODS=$PODS: one operator replica, local control plane without the pod runner; times from the completion of the last status write."
perf_plot controller-scale "" --kind bar --table time --series measured,target \
  --title "Status controller at scale: $MVS ModelValidations, $PODS pods (bench/controller-scale.sh)" \
  --xlabel "time" --ylabel "step"
perf_plot controller-scale -rss --kind bar --table rss \
  --title "Status controller at scale: operator RSS, $MVS ModelValidations, $PODS pods (bench/controller-scale.sh)" \
  --xlabel "resident memory" --ylabel "process"
