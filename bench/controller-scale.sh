#!/usr/bin/env bash
# The status controller at scale: the real operator binary against the local control plane,
# MVS ModelValidations and PODS labelled pods (created through the webhook), each pod's
# verifier outcome written to its status as a kubelet would; measures how long after the last
# write every ModelValidation's status is right, and the operator's peak RSS (VmHWM).
#   MVS=100 PODS=2000 bash bench/controller-scale.sh
# Targets (issue 6): converged within 10 s of the last change, operator RSS < 100 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
MVS=${MVS:-100}
PODS=${PODS:-2000}
dir=$PWD/target/bench-cluster-controller
work=$(mktemp -d)
op=""
cleanup() {
  [ -n "$op" ] && kill "$op" 2>/dev/null && wait "$op" 2>/dev/null || true
  target/release/test-cluster down --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bash hack/testbin/build.sh >/dev/null
cargo build --quiet --release --locked -p model-validation-operator -p test-cluster --bins --examples
target/release/test-cluster up --dir "$dir" --no-pod-runner >/dev/null
export KUBECONFIG=$dir/kubeconfig
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
health=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/model-validation-operator --install-crds --webhook-addr "127.0.0.1:$port" \
  --health-addr "127.0.0.1:$health" --webhook-url "https://127.0.0.1:$port" >"$work/operator.log" 2>&1 &
op=$!
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$health/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$health/metrics" 2>/dev/null | grep -q '^model_validation_leader 1' && break; sleep 0.1; done
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$op/status)
result=$(target/release/examples/controller_scale "$MVS" "$PODS") || { cp "$work/operator.log" target/controller-scale-operator.log; exit 1; }
rss=$(awk '/VmRSS/ {print $2}' /proc/$op/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$op/status)
metrics=$(curl -fsS "http://127.0.0.1:$health/metrics")
reconciles=$(awk '/^model_validation_reconciles_total\{result="success"\}/ {print $2}' <<<"$metrics")
errors=$(awk '/^model_validation_reconcile_errors_total/ {print $2}' <<<"$metrics")
echo "$result"
echo "operator RSS idle ${rss_idle} KiB, after ${rss} KiB, peak (VmHWM) ${hwm} KiB; reconciles ${reconciles:-0}, errors ${errors:-0}"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo)"
