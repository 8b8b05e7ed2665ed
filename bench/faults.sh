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
# The table goes to stdout and to target/faults-table.md.
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
trap 'rm -f "$out"' EXIT
if ! MVO_FAULTS_SCALE="$SCALE" cargo test --quiet --locked -p model-validation-operator \
  --test faults -- --nocapture >"$out" 2>&1; then
  cp "$out" target/faults-failed.log
  die "the fault test failed; its output is in target/faults-failed.log"
fi
load_after=$(load_check after sample-only)
grep -E '^(\||faults under load|status converged)' "$out" | tee target/faults-table.md
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo); before: $load_before; after: $load_after" \
  | tee -a target/faults-table.md
