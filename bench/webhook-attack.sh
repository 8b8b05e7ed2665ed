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
trap 'rm -f "$out"' EXIT
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
