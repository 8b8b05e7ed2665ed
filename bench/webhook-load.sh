#!/usr/bin/env bash
# Admission latency of the webhook server alone: the real operator binary against the local
# control plane, driven at a fixed rate by a load generator on the same machine.
#   RATE=500 SECONDS_=30 bash bench/webhook-load.sh
# Targets (issue 5): p99 <= 5 ms at 500 requests/s, 0 errors, operator RSS <= 50 MiB.
# Every wait (control plane, operator /readyz) fails the script when it times out.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=webhook-load
# shellcheck source=bench/lib.sh
. bench/lib.sh
RATE=${RATE:-500}
DURATION=${SECONDS_:-30}
trap operator_cleanup EXIT

load_before=$(load_check before)
operator_up "$PWD/target/bench-cluster"
rss_idle=$(proc_kib VmRSS)
result=$(target/release/examples/admission_load "https://127.0.0.1:$OP_PORT" "$RATE" "$DURATION")
hwm=$(proc_kib VmHWM)
rss=$(proc_kib VmRSS)
# utime + stime of the operator, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$OP_PID/stat")
load_after=$(load_check after)
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
echo
echo "machine: $(nproc) CPUs; before: $load_before; after: $load_after"
