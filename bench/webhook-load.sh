#!/usr/bin/env bash
# Admission latency of the webhook server alone: the real operator binary against the local
# control plane, driven at a fixed rate by a load generator on the same machine.
#   RATE=500 SECONDS_=30 bash bench/webhook-load.sh
#   RATE=100,250,500 bash bench/webhook-load.sh   (one round per rate, in order, same operator)
# Targets (issue 5): p99 <= 5 ms at 500 requests/s, 0 errors, operator RSS <= 50 MiB.
# The results also go to docs/perf/webhook-load.tsv, charted in webhook-load.svg (latency per
# rate) and, with two rates or more, webhook-load-rate.svg (bench/lib.sh perf_save, perf_plot).
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
IFS=, read -ra rates <<<"$RATE"
[ "${#rates[@]}" -gt 0 ] || die "RATE is empty"
result=""
for r in "${rates[@]}"; do
  [[ "$r" =~ ^[1-9][0-9]*$ ]] || die "RATE must be rates per second separated by commas, not '$RATE'"
  # One JSON line per rate.
  result+="$(target/release/examples/admission_load "https://127.0.0.1:$OP_PORT" "$r" "$DURATION")"$'\n'
done
hwm=$(proc_kib VmHWM)
rss=$(proc_kib VmRSS)
# utime + stime of the operator, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$OP_PID/stat")
load_after=$(load_check after)
perf_rows=$(mktemp)
echo "$result" | python3 -c '
import json, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
idle, hwm, rss, cpu = [float(x) for x in sys.argv[1:5]]
rates = [int(x) for x in sys.argv[5].split(",")]
print("| rate asked | achieved | requests | errors | p50 | p90 | p99 | max | operator RSS idle / after / peak | operator CPU |")
print("|---|---|---|---|---|---|---|---|---|---|")
for rate, r in zip(rates, runs):
    print("| %.0f/s | %.0f/s | %d | %d | %.2f ms | %.2f ms | **%.2f ms** | %.2f ms | %.1f / %.1f / **%.1f MiB** | %.1f s |" % (
        rate, r["achieved_rps"], r["requests"], r["errors"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"], idle / 1024, rss / 1024, hwm / 1024, cpu))
ok = all(r["p99_ms"] <= 5 and r["errors"] == 0 for r in runs) and hwm / 1024 <= 50
print()
print("targets (p99 <= 5 ms, 0 errors, RSS <= 50 MiB%s):" % (" at every rate" if len(runs) > 1 else ""), "met" if ok else "MISSED")
# The same values, machine-readable (bench/lib.sh perf_save); RSS and CPU are of the whole run.
with open(sys.argv[6], "w") as f:
    for rate, r in zip(rates, runs):
        for q in ("p50", "p90", "p99", "max"):
            f.write("latency\t%d/s\t%s\t%.3f\tms\n" % (rate, q, r[q + "_ms"]))
            f.write("rate\t%d\t%s\t%.3f\tms\n" % (rate, q, r[q + "_ms"]))
        f.write("requests\t%d/s\tachieved\t%.1f\trequests/s\n" % (rate, r["achieved_rps"]))
        f.write("requests\t%d/s\tsent\t%d\trequests\n" % (rate, r["requests"]))
        f.write("requests\t%d/s\terrors\t%d\terrors\n" % (rate, r["errors"]))
    for k, v in (("idle", idle), ("after", rss), ("peak", hwm)):
        f.write("rss\toperator\t%s\t%.1f\tMiB\n" % (k, v / 1024))
    f.write("cpu\toperator\tuser+system\t%.2f\ts\n" % cpu)
' "$rss_idle" "$hwm" "$rss" "$cpu" "$RATE" "$perf_rows"
echo
echo "machine: $(nproc) CPUs; before: $load_before; after: $load_after"
perf_save webhook-load "$load_before" "$load_after" \
  "RATE=$RATE SECONDS_=$DURATION: open loop over 16 keep-alive connections; latency from each request's scheduled send time." <"$perf_rows"
rm -f "$perf_rows"
perf_plot webhook-load "" --kind bar --table latency --series p50,p90,p99 \
  --title "Webhook alone: admission latency at a fixed rate (bench/webhook-load.sh)" \
  --xlabel "latency from scheduled send to answer" --ylabel "rate asked"
if [ "${#rates[@]}" -gt 1 ]; then
  perf_plot webhook-load -rate --kind line --table rate --series p50,p90,p99 \
    --title "Webhook alone: latency against the request rate (bench/webhook-load.sh)" \
    --xlabel "requests per second asked" --ylabel "latency"
fi
