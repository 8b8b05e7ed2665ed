#!/usr/bin/env bash
# Admission latency of the webhook server alone: the real operator binary against the local
# control plane, driven at a fixed rate by a load generator on the same machine.
#   RATE=500 SECONDS_=30 bash bench/webhook-load.sh
# Targets (issue 5): p99 <= 5 ms at 500 requests/s, 0 errors, operator RSS <= 50 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-500}
DURATION=${SECONDS_:-30}
dir=$PWD/target/bench-cluster
work=$(mktemp -d)
op=""
cleanup() {
  [ -n "$op" ] && kill "$op" 2>/dev/null && wait "$op" 2>/dev/null || true
  target/release/test-cluster down --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --quiet --release --locked -p model-validation-operator -p test-cluster --bins --examples
target/release/test-cluster up --dir "$dir" --no-pod-runner >/dev/null
export KUBECONFIG=$dir/kubeconfig
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
health=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/model-validation-operator --install-crds --webhook-addr "127.0.0.1:$port" \
  --health-addr "127.0.0.1:$health" --webhook-url "https://127.0.0.1:$port" >"$work/operator.log" 2>&1 &
op=$!
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$health/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$op/status)
result=$(target/release/examples/admission_load "https://127.0.0.1:$port" "$RATE" "$DURATION")
hwm=$(awk '/VmHWM/ {print $2}' /proc/$op/status)
rss=$(awk '/VmRSS/ {print $2}' /proc/$op/status)
cpu=$(awk '{print ($14+$15)/100}' /proc/$op/stat)
echo "$result" | python3 -c '
import json, sys
r = json.load(sys.stdin)
idle, hwm, rss, cpu, rate = [float(x) for x in sys.argv[1:6]]
print("| rate asked | achieved | requests | errors | p50 | p90 | p99 | max | operator RSS idle / after / peak | operator CPU |")
print("|---|---|---|---|---|---|---|---|---|---|")
print("| %.0f/s | %.0f/s | %d | %d | %.2f ms | %.2f ms | **%.2f ms** | %.2f ms | %.1f / %.1f / **%.1f MiB** | %.1f s |" % (
    rate, r["achieved_rps"], r["requests"], r["errors"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"], idle / 1024, rss / 1024, hwm / 1024, cpu))
ok = r["p99_ms"] <= 5 and r["errors"] == 0 and hwm / 1024 <= 50
print()
print("targets (p99 <= 5 ms, 0 errors, RSS <= 50 MiB):", "met" if ok else "MISSED")
' "$rss_idle" "$hwm" "$rss" "$cpu" "$RATE"
