#!/usr/bin/env bash
# The status controller at scale: the real operator binary against the local control plane,
# MVS ModelValidations and PODS labelled pods (created through the webhook), each pod's
# verifier outcome written to its status as a kubelet would; measures how long after the last
# write every ModelValidation's status is right, and the operator's peak RSS (VmHWM).
#   MVS=100 PODS=2000 bash bench/controller-scale.sh
# Targets (issue 6): converged within 10 s of the last change, operator RSS < 100 MiB.
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
