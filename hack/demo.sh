#!/usr/bin/env bash
# make demo: build, start a local control plane, run the operator against it, sign a model,
# show a verified pod and a refused one, then clean everything up.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cluster_dir=$root/target/local-cluster
work=$(mktemp -d "${TMPDIR:-/tmp}/mvo-demo.XXXXXX")
operator_pid=""
cleanup() {
  [ -n "$operator_pid" ] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null || true
  cargo run --quiet --locked -p test-cluster -- down --dir "$cluster_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> building (release)"
cargo build --quiet --release --locked -p model-signing-cli -p model-validation-operator -p test-cluster --bins --examples
echo "==> starting the local control plane (etcd + kube-apiserver + pod runner)"
cargo run --quiet --release --locked -p test-cluster -- up --dir "$cluster_dir"
export KUBECONFIG=$cluster_dir/kubeconfig

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
health=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "==> starting model-validation-operator (webhook https://127.0.0.1:$port, logs $work/operator.log)"
target/release/model-validation-operator --install-crds --log-format text \
  --webhook-addr "127.0.0.1:$port" --health-addr "127.0.0.1:$health" \
  --webhook-url "https://127.0.0.1:$port" >"$work/operator.log" 2>&1 &
operator_pid=$!
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$health/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$operator_pid" 2>/dev/null || { cat "$work/operator.log"; exit 1; }
  sleep 0.1
done

echo "==> a sample model and a signing key in $work"
mkdir -p "$work/data/model/tokenizer" "$work/keys"
head -c 4194304 /dev/urandom >"$work/data/model/weights.bin"
echo '{"architectures": ["DemoForCausalLM"], "hidden_size": 64}' >"$work/data/model/config.json"
echo '{"vocab": ["a", "b", "c"]}' >"$work/data/model/tokenizer/tokenizer.json"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/keys/signer.key" 2>/dev/null
openssl ec -in "$work/keys/signer.key" -pubout -out "$work/keys/signer.pub" 2>/dev/null

target/release/examples/demo "$work/data" "$work/keys" "$root/target/release/model-signing"
echo
echo "demo finished: a signed model ran, a tampered one was stopped before its container started."
