#!/usr/bin/env bash
# The webhook under slow and oversized clients, at full scale: tests/slow_clients.rs (release
# build, so the operator binary is the release one) with more connections, longer and at a
# higher admission rate than in `make test`.
#   CONNECTIONS=1000 SECONDS_=60 RATE=500 bash bench/webhook-attack.sh
# The attackers (a third never finish TLS, a third dribble their request head, a third their
# body; plus 16 clients sending bodies declared above the 7 MiB cap and 4 streaming past it) run
# in the test process on the same machine, as does the legitimate client, which sends
# unlabelled-pod AdmissionReviews one after the other over one kept-alive connection.
# Prints what the test prints: the attack's outcomes, legitimate p50/p99/max, operator RSS
# (sampled every 100 ms, and VmHWM) against the deployment's memory limit. The test fails the
# script when a legitimate review fails, RSS reaches the limit, or an attack is not cut off.
# CONNECTIONS stays at or below ~1000: above the server's 1024-connection cap, new connections
# are closed at accept (unit-tested in webhook::listener) and the attack could not hold them.
# A passing run's values (parsed from the test's own `slow_clients:` lines) also go to
# docs/perf/webhook-attack.tsv (bench/lib.sh perf_save), charted in webhook-attack.svg (legitimate
# latency), webhook-attack-rss.svg (operator RSS against the limit) and webhook-attack-rounds.svg
# (how the attack rounds ended). Environment: CONNECTIONS, SECONDS_, RATE, LOAD_MAX, BUSY_MAX,
# PERF_DIR (bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=webhook-attack
# shellcheck source=bench/lib.sh
. bench/lib.sh
CONNECTIONS=${CONNECTIONS:-1000}
DURATION=${SECONDS_:-60}
RATE=${RATE:-500}

load_before=$(load_check before)
bash hack/testbin/build.sh >/dev/null
# Build first, so that compile time is not in the run.
cargo test --quiet --release --locked -p model-validation-operator --test slow_clients --no-run 2>/dev/null
out=$(mktemp)
trap 'rm -f "$out" "$out.perf"' EXIT
status=0
MVO_ATTACK_CONNECTIONS=$CONNECTIONS MVO_ATTACK_SECONDS=$DURATION MVO_ATTACK_RATE=$RATE \
  cargo test --quiet --release --locked -p model-validation-operator --test slow_clients -- --nocapture \
  >"$out" 2>&1 || status=$?
load_after=$(load_check after sample-only)
grep '^slow_clients:' "$out" | sed 's/^slow_clients: //' || true
echo
echo "asked: $CONNECTIONS slow connections + 20 oversized, ${DURATION} s, legitimate reviews every $((1000000 / RATE)) us"
echo "machine: $(nproc) CPUs; before: $load_before; after: $load_after"
if [ "$status" -ne 0 ]; then
  grep -A 12 'panicked' "$out" >&2 || tail -n 40 "$out" >&2
  die "the attack test failed (exit $status): see above"
fi
echo "targets (every legitimate review answered, RSS below the limit, every attack cut off): met"

# The same values, machine-readable, from the test's own lines; a line that does not parse fails
# the script rather than leaving a gap in the chart.
grep '^slow_clients:' "$out" | python3 -c '
import re, sys
lines = sys.stdin.read().splitlines()
def find(pattern):
    for l in lines:
        m = re.search(pattern, l)
        if m:
            return m
    sys.exit(f"webhook-attack: no line matching {pattern!r} in the test output")
num = r"([0-9]+(?:\.[0-9]+)?)"
rows = []
m = find(rf"^slow_clients: {num} attacking connections at most at once")
rows.append(("attack", "connections held at once", "count", m.group(1), "count"))
m = find(rf"legitimate reviews answered {num} \(failed {num}\), p50 {num} ms, p99 {num} ms, max {num} ms")
rows.append(("reviews", "legitimate reviews", "answered", m.group(1), "count"))
rows.append(("reviews", "legitimate reviews", "failed", m.group(2), "count"))
for q, v in zip(("p50", "p99", "max"), m.groups()[2:]):
    rows.append(("latency", "legitimate reviews under attack", q, v, "ms"))
m = find(rf"operator RSS before {num} MiB, peak sampled {num} MiB, VmHWM {num} MiB; limit {num} MiB")
for q, v in zip(("before", "peak sampled", "VmHWM", "limit"), m.groups()):
    rows.append(("rss", "operator", q, v, "MiB"))
names = {"Handshake": "TLS handshake never finished", "Head": "request head dribbled",
         "Body": "body dribbled", "Declared": "body declared over 7 MiB",
         "Streamed": "body streamed past 7 MiB"}
for attack, name in names.items():
    m = find(rf"^slow_clients: {attack} rounds ended \(status or None=closed\): \{{(.*)\}}$")
    for part in filter(None, (p.strip() for p in m.group(1).split(","))):
        k, n = (x.strip() for x in part.split(":"))
        series = "closed" if k == "None" else "answered " + re.fullmatch(r"Some\(([0-9]+)\)", k).group(1)
        rows.append(("rounds", name, series, n, "rounds"))
for r in rows:
    print("\t".join(r))
' >"$out.perf" || die "could not read the results from the test output"
perf_save webhook-attack "$load_before" "$load_after" \
  "CONNECTIONS=$CONNECTIONS SECONDS_=$DURATION RATE=$RATE: release build of tests/slow_clients.rs; attackers, legitimate client and operator share the machine." <"$out.perf"
rm -f "$out.perf"
perf_plot webhook-attack "" --kind bar --table latency \
  --title "Webhook under $CONNECTIONS slow + 20 oversized connections, $DURATION s: legitimate review latency (bench/webhook-attack.sh)" \
  --xlabel "latency, send to full answer" --ylabel "client"
perf_plot webhook-attack -rss --kind bar --table rss \
  --title "Webhook under attack: operator RSS against the deployment's memory limit (bench/webhook-attack.sh)" \
  --xlabel "resident memory" --ylabel "process"
perf_plot webhook-attack -rounds --kind bar --table rounds \
  --title "Webhook under attack: how the attack rounds ended in $DURATION s (bench/webhook-attack.sh)" \
  --xlabel "number" --ylabel "attack"
