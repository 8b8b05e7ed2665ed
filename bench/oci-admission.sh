#!/usr/bin/env bash
# Models in OCI registries (issue 14): admission of pods whose model is an image volume, and the
# `model-signing oci push|sign` that produce such models, in one run on loopback registries.
#   bash bench/oci-admission.sh
#   COLD_N=200 SIZE_N=50 RATE=200 SECONDS_=20 SIZES_MIB="100 1024 10240" bash bench/oci-admission.sh
# (BENCH_BUILD=0: use the release binaries and examples already built, see bench/lib.sh)
#
# What it starts (all stopped and deleted at exit, also on failure): two registries built by
# hack/testbin/build.sh on plain HTTP, go-containerregistry's `oci-registry` (referrers API, in
# memory) and distribution v3 (`distribution-registry`, no referrers API: the referrers tag
# schema; storage in a scratch directory under TMPDIR, default /tmp, which holds the pushed
# models: about 11.2 GiB with the default sizes); the local control plane and the release
# operator as bench/lib.sh operator_up starts them, with --registry-plain-http.
#
# What it measures (percentiles and ratios; nothing is asserted on time):
#  1. `oci push` of each model (wall time, MB/s) and `oci sign key` (wall time, SIGNS runs per
#     model, median): a 20-file model (17 x 1 MiB random weights and 3 small JSON files) to both
#     registries, and models of SIZES_MIB (4 sparse files of SIZE/4 each with a random 4 KiB head,
#     so no two layers share a digest, plus config.json) to distribution.
#  2. COLD admission: the operator runs with --image-cache-size 0, so every AdmissionReview
#     resolves the tag, lists the referrers, fetches the signature bundle and verifies it;
#     `oci_admission serial` posts COLD_N reviews one after the other (one connection, kept
#     alive) for the 20-file model on each registry: p50/p99 (target p99 <= 100 ms).
#  3. The same, SIZE_N reviews per model size on distribution: p50 per size and the ratio
#     largest/smallest (flat = about 1; the verdict says "met" at <= 1.5x); from the registries'
#     request logs, the requests per admission and the GETs of the model's layer blobs (must be 0).
#  4. CACHED admission: the operator restarted with the default cache; `oci_admission rate` posts
#     RATE reviews/s for SECONDS_ over 16 connections (open loop, as bench/webhook-load.sh) for
#     the 20-file model on distribution, by tag (the cache hit still resolves the tag: the
#     client's `GET /v2/` and the manifest GET) and by digest (no registry call at all): p50/p99
#     (target p99 <= 5 ms at 200/s, 0 errors), with the registry requests per review.
# Every answer must allow the pod and pin its volume to registry/repository@sha256:<digest> the
# push printed, or it counts as an error. Every wait fails the script when it times out.
# The results also go to docs/perf/oci-admission.tsv (bench/lib.sh perf_save), charted in
# oci-admission.svg (cold admission), oci-admission-size.svg (cold admission and `oci sign`
# against the model size) and oci-admission-cached.svg (cached admission).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=oci-admission
# shellcheck source=bench/lib.sh
. bench/lib.sh
COLD_N=${COLD_N:-200}
SIZE_N=${SIZE_N:-50}
SIGNS=${SIGNS:-5}
RATE=${RATE:-200}
DURATION=${SECONDS_:-20}
SIZES_MIB=${SIZES_MIB:-"100 1024 10240"}
NS=oci-bench
MV=models

SCRATCH=""
REG_PIDS=()
cleanup() {
  local status=$?
  for p in "${REG_PIDS[@]}"; do
    # Killed by us: their non-zero exit status is expected.
    if kill "$p" 2>/dev/null; then wait "$p" 2>/dev/null || true; fi
  done
  operator_cleanup
  [ -z "$SCRATCH" ] || rm -rf "$SCRATCH"
  exit "$status"
}
trap cleanup EXIT

started=$SECONDS
load_before=$(load_check before)
bash hack/testbin/build.sh >/dev/null
TESTBIN=$(bash hack/testbin/build.sh --print-dir)
[ "${BENCH_BUILD:-1}" = 0 ] || cargo build --quiet --release --locked -p model-signing-cli --bin model-signing
MS=target/release/model-signing
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/mvo-oci-bench.XXXXXX")

# --- the registries -----------------------------------------------------------------------
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
OCI_PORT=$(free_port)
"$TESTBIN/oci-registry" --address "127.0.0.1:$OCI_PORT" >"$SCRATCH/oci-registry.log" 2>&1 &
REG_PIDS+=($!)
WAIT_PID=$! WAIT_LOG=$SCRATCH/oci-registry.log wait_until "oci-registry listening" 20 listening "$OCI_PORT"
DIST_PORT=$(free_port)
cat >"$SCRATCH/distribution.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: "$SCRATCH/distribution-storage"
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: "127.0.0.1:$DIST_PORT"
  secret: mvo-bench-registry
EOF
"$TESTBIN/distribution-registry" serve "$SCRATCH/distribution.yml" >"$SCRATCH/distribution.log" 2>&1 &
REG_PIDS+=($!)
WAIT_PID=$! WAIT_LOG=$SCRATCH/distribution.log wait_until "distribution-registry listening" 20 listening "$DIST_PORT"
OCI_HOST=127.0.0.1:$OCI_PORT
DIST_HOST=127.0.0.1:$DIST_PORT

# --- the models, pushed and signed --------------------------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$SCRATCH/key.pem" 2>/dev/null
openssl pkey -in "$SCRATCH/key.pem" -pubout -out "$SCRATCH/key.pub" 2>/dev/null

m20="$SCRATCH/models/llm-20"
mkdir -p "$m20"
echo '{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 17}' >"$m20/config.json"
echo '{"max_new_tokens": 256}' >"$m20/generation_config.json"
head -c 65536 /dev/urandom | base64 -w 0 | awk '{ printf "{\"vocab\": \"%s\"}\n", $0 }' >"$m20/tokenizer.json"
for i in $(seq -w 1 17); do
  head -c 1048576 /dev/urandom >"$m20/model-000$i-of-00017.safetensors"
done
for mib in $SIZES_MIB; do
  d="$SCRATCH/models/llm-${mib}m"
  mkdir -p "$d"
  echo "{\"size_mib\": $mib}" >"$d/config.json"
  for i in 0 1 2 3; do
    head -c 4096 /dev/urandom >"$d/shard-$i.bin"
    truncate -s $((mib * 1048576 / 4)) "$d/shard-$i.bin"
  done
done

# model_bytes DIR: the bytes of the files in DIR (what is pushed).
model_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }'; }

# push_and_sign NAME DIR HOST: pushes DIR to HOST/bench/NAME:v1 and signs it once; appends a
# JSON line to $SCRATCH/models.jsonl: reference, pinned, bytes, push and sign seconds.
push_and_sign() {
  local name=$1 dir=$2 host=$3 ref out t0 t1 t2 digest
  ref="$host/bench/$name:v1"
  t0=$EPOCHREALTIME
  out=$("$MS" oci push "$dir" "$ref" --plain-http --registry-timeout 15m) || die "oci push $ref failed"
  t1=$EPOCHREALTIME
  "$MS" oci sign key "$ref" --private-key "$SCRATCH/key.pem" --plain-http >/dev/null || die "oci sign $ref failed"
  t2=$EPOCHREALTIME
  digest=${out##*@}
  [[ $digest == sha256:* ]] || die "oci push printed $out, not REF@sha256:DIGEST"
  printf '{"name": "%s", "registry": "%s", "reference": "%s", "pinned": "%s", "bytes": %s, "files": %s, "push_s": %s, "sign_s": [%s]}\n' \
    "$name" "$( [ "$host" = "$OCI_HOST" ] && echo oci-registry || echo distribution)" "$ref" \
    "$host/bench/$name@$digest" "$(model_bytes "$dir")" "$(find "$dir" -type f | wc -l)" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')" >>"$SCRATCH/models.jsonl"
  log "pushed and signed $ref"
}

# field NAME REGISTRY KEY: KEY of the model NAME on REGISTRY from models.jsonl.
field() {
  python3 -c 'import json, sys
for l in open(sys.argv[1]):
    m = json.loads(l)
    if m["name"] == sys.argv[2] and m["registry"] == sys.argv[3]:
        print(m[sys.argv[4]])' "$SCRATCH/models.jsonl" "$1" "$2" "$3"
}

sync
push_and_sign llm-20 "$m20" "$OCI_HOST"
push_and_sign llm-20 "$m20" "$DIST_HOST"
for mib in $SIZES_MIB; do
  # The models' files are sparse: the push reads holes (zeros) from the page cache, while the
  # registry writes every byte to its storage.
  push_and_sign "llm-${mib}m" "$SCRATCH/models/llm-${mib}m" "$DIST_HOST"
  sync
done
df -h "$SCRATCH" | tail -n 1 >"$SCRATCH/df"

# --- cold admissions ----------------------------------------------------------------------
operator_up "$PWD/target/bench-cluster-oci" --registry-plain-http --image-cache-size 0
URL="https://127.0.0.1:$OP_PORT"
target/release/examples/oci_admission setup "$NS" "$MV" "$SCRATCH/key.pub" \
  "$OCI_HOST/bench/**" "$DIST_HOST/bench/**"

# reg_lines REGISTRY: how many requests the registry (oci-registry or distribution) has logged:
# `2006/01/02 15:04:05 GET /v2/... 200` and distribution's access log `"GET /v2/... HTTP/1.1" 200`.
reg_lines() {
  case $1 in
    oci-registry) grep -cE '^[0-9/]{10} [0-9:]{8} [A-Z]+ /[^ ]* [0-9]{3}$' "$SCRATCH/oci-registry.log" || true ;;
    *) grep -cE '"[A-Z]+ /[^ ]* HTTP/[0-9.]+" [0-9]{3} ' "$SCRATCH/distribution.log" || true ;;
  esac
}

# cold NAME REGISTRY COUNT: COUNT cold admissions of the model; prints the example's JSON with
# the window of the registry's request log they made added.
cold() {
  local ref pinned before after out
  ref=$(field "$1" "$2" reference)
  pinned=$(field "$1" "$2" pinned)
  before=$(reg_lines "$2")
  out=$(target/release/examples/oci_admission serial "$URL" "$NS" "$MV" "$ref" "$pinned" "$3") ||
    die "oci_admission serial $ref failed"
  sleep 0.3 # distribution logs a request once its handler returned
  after=$(reg_lines "$2")
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); r["name"] = sys.argv[2]; r["registry"] = sys.argv[3]
r["log_from"], r["log_to"] = int(sys.argv[4]), int(sys.argv[5]); print(json.dumps(r))' \
    "$out" "$1" "$2" "$before" "$after"
}

: >"$SCRATCH/cold.jsonl"
cold llm-20 oci-registry "$COLD_N" >>"$SCRATCH/cold.jsonl"
cold llm-20 distribution "$COLD_N" >>"$SCRATCH/cold.jsonl"
for mib in $SIZES_MIB; do
  cold "llm-${mib}m" distribution "$SIZE_N" >>"$SCRATCH/cold.jsonl"
done
# Each model's manifest (its layer digests), read after the measurements.
for entry in "llm-20 $OCI_HOST oci-registry" "llm-20 $DIST_HOST distribution" \
  $(for mib in $SIZES_MIB; do echo "llm-${mib}m,$DIST_HOST,distribution"; done); do
  IFS=', ' read -r name host reg <<<"$entry"
  curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$host/v2/bench/$name/manifests/v1" >"$SCRATCH/manifest-$reg-$name.json" ||
    die "cannot read the manifest of $host/bench/$name:v1"
done

# --- oci sign, again (after the cold admissions: more signatures mean more bundles to read) --
sign_targets=("llm-20 $OCI_HOST oci-registry" "llm-20 $DIST_HOST distribution")
for mib in $SIZES_MIB; do sign_targets+=("llm-${mib}m $DIST_HOST distribution"); done
for entry in "${sign_targets[@]}"; do
  read -r name host reg <<<"$entry"
  ref="$host/bench/$name:v1"
  times=""
  for _ in $(seq 2 "$SIGNS"); do
    t0=$EPOCHREALTIME
    "$MS" oci sign key "$ref" --private-key "$SCRATCH/key.pem" --plain-http >/dev/null || die "oci sign $ref failed"
    times+=" $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
  done
  echo "$name $reg$times" >>"$SCRATCH/signs.txt"
done

# --- cached admissions --------------------------------------------------------------------
operator_restart --registry-plain-http
rss_idle=$(proc_kib VmRSS)
cpu_before=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$OP_PID/stat")
ref=$(field llm-20 distribution reference)
pinned=$(field llm-20 distribution pinned)
: >"$SCRATCH/cached.jsonl"
for what in tag digest; do
  r=$ref
  [ "$what" = tag ] || r=$pinned
  before=$(reg_lines distribution)
  out=$(target/release/examples/oci_admission rate "$URL" "$NS" "$MV" "$r" "$pinned" "$RATE" "$DURATION") ||
    die "oci_admission rate $r failed"
  sleep 0.3
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); r["by"] = sys.argv[2]; r["log_from"], r["log_to"] = int(sys.argv[3]), int(sys.argv[4])
print(json.dumps(r))' "$out" "$what" "$before" "$(reg_lines distribution)" >>"$SCRATCH/cached.jsonl"
done
hwm=$(proc_kib VmHWM)
cpu_after=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$OP_PID/stat")
load_after=$(load_check after sample-only)
elapsed=$((SECONDS - started))

# --- the report ---------------------------------------------------------------------------
python3 - "$SCRATCH" "$rss_idle" "$hwm" "$cpu_before" "$cpu_after" "$RATE" "$elapsed" "$SCRATCH/perf.tsv" <<'EOF'
import json, re, sys
scratch = sys.argv[1]
rss_idle, hwm = int(sys.argv[2]) / 1024, int(sys.argv[3]) / 1024
cpu = float(sys.argv[5]) - float(sys.argv[4])
rate, elapsed = int(sys.argv[6]), int(sys.argv[7])
models = [json.loads(l) for l in open(f"{scratch}/models.jsonl")]
cold = [json.loads(l) for l in open(f"{scratch}/cold.jsonl")]
cached = [json.loads(l) for l in open(f"{scratch}/cached.jsonl")]
signs = {}
for l in open(f"{scratch}/signs.txt"):
    name, reg, *ts = l.split()
    signs[(name, reg)] = [float(t) for t in ts]
for m in models:
    m["sign_all"] = sorted(m["sign_s"] + signs.get((m["name"], m["registry"]), []))
# The registries' request logs as (method, uri, status), in the order reg_lines counts them.
reqs = {"oci-registry": [], "distribution": []}
for line in open(f"{scratch}/oci-registry.log"):
    m = re.match(r'^[0-9/]{10} [0-9:]{8} ([A-Z]+) (/\S*) (\d{3})$', line.rstrip("\n"))
    if m:
        reqs["oci-registry"].append(m.groups())
for line in open(f"{scratch}/distribution.log"):
    m = re.search(r'"([A-Z]+) (/\S*) HTTP/[0-9.]+" (\d{3}) ', line)
    if m:
        reqs["distribution"].append(m.groups())

def per_review(window, n):
    """The requests of a log window by kind (digests elided), each as a count per review."""
    kinds = {}
    for meth, uri, status in window:
        k = re.sub(r"^/v2/bench/[^/]+/", "", uri)
        k = re.sub(r"sha256[:-][0-9a-f]{64}", "<digest>", k)
        k = f"{meth} {k.split('?')[0]} {status}"
        kinds[k] = kinds.get(k, 0) + 1
    return "; ".join(f"{k} x{v / n:.2f}" for k, v in sorted(kinds.items())) or "none"

def size(b):
    return f"{b / 2**30:.1f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"
def median(v):
    v = sorted(v); n = len(v)
    return (v[n // 2] + v[(n - 1) // 2]) / 2

print("`oci push` and `oci sign key` (plain HTTP, loopback; push wall time includes hashing every file):")
print()
print("| model | registry | files | bytes | push | push MB/s | sign median (min-max, %d runs) |" % len(models[0]["sign_all"]))
print("|---|---|---:|---:|---:|---:|---:|")
for m in models:
    s = m["sign_all"]
    print(f"| {m['name']} | {m['registry']} | {m['files']} | {size(m['bytes'])} | {m['push_s']:.2f} s "
          f"| {m['bytes'] / 1e6 / m['push_s']:.0f} | {median(s) * 1000:.1f} ms ({s[0] * 1000:.1f}-{s[-1] * 1000:.1f}) |")
signs_med = [median(m["sign_all"]) for m in models]
print()
print(f"sign time, largest / smallest median over all models: {max(signs_med) / min(signs_med):.2f}x")
print()
print("Cold admission (--image-cache-size 0: every review resolves, lists referrers, fetches the bundle and verifies; one at a time):")
print()
print("| model | registry | reviews | errors | p50 | p90 | p99 | max | registry requests per admission | GETs of model layer blobs |")
print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
sizes, layer_gets_all = [], []
for c in cold:
    m = next(m for m in models if m["name"] == c["name"] and m["registry"] == c["registry"])
    window = reqs[c["registry"]][c["log_from"]:c["log_to"]]
    per = per_review(window, c["requests"] + c["warmup_requests"])
    man = json.load(open(f"{scratch}/manifest-{c['registry']}-{c['name']}.json"))
    digests = {l["digest"] for l in man["layers"]}
    layer_gets = sum(1 for meth, uri, _ in window
                     if meth == "GET" and "/blobs/" in uri and uri.rsplit("/", 1)[-1] in digests)
    layer_gets_all.append(layer_gets)
    print(f"| {c['name']} ({size(m['bytes'])}) | {c['registry']} | {c['requests']} | {c['errors']} | {c['p50_ms']:.2f} ms "
          f"| {c['p90_ms']:.2f} ms | **{c['p99_ms']:.2f} ms** | {c['max_ms']:.2f} ms | {per} | {layer_gets} |")
    if c["name"] != "llm-20":
        sizes.append((m["bytes"], c))
    if c["errors"]:
        print(f"|   first error: {c['first_error'][:300]!r} |")
if len(sizes) >= 2:
    sizes.sort(key=lambda x: x[0])
    lo, hi = sizes[0], sizes[-1]
    print()
    print(f"cold p50, {size(hi[0])} / {size(lo[0])}: **{hi[1]['p50_ms'] / lo[1]['p50_ms']:.2f}x** "
          f"({hi[1]['p50_ms']:.2f} / {lo[1]['p50_ms']:.2f} ms; p99 {hi[1]['p99_ms'] / lo[1]['p99_ms']:.2f}x) for a model {hi[0] / lo[0]:.0f}x larger")
print()
print(f"Cached admission (default cache), {rate} reviews/s asked, open loop over 16 connections, 20-file model on distribution:")
print()
print("| reference | requests | achieved | errors | p50 | p90 | p99 | max | registry requests | per review |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for c in cached:
    window = reqs["distribution"][c["log_from"]:c["log_to"]]
    print(f"| by {c['by']} | {c['requests']} | {c['achieved_rps']:.0f}/s | {c['errors']} | {c['p50_ms']:.2f} ms | {c['p90_ms']:.2f} ms "
          f"| **{c['p99_ms']:.2f} ms** | {c['max_ms']:.2f} ms | {len(window)} | {per_review(window, c['requests'] + c['warmup_requests'])} |")
    if c["errors"]:
        print(f"|   first error: {c['first_error'][:300]!r} |")
print()
print(f"operator (cached phase): RSS idle {rss_idle:.1f} MiB, peak {hwm:.1f} MiB; CPU {cpu:.1f} s")
print()
c20 = [c for c in cold if c["name"] == "llm-20"]
cold_p99 = max(c["p99_ms"] for c in c20)
cold_err = sum(c["errors"] for c in cold)
by_tag = next(c for c in cached if c["by"] == "tag")
checks = [
    ("cold admission, 20-file model, p99 <= 100 ms (both registries)", cold_p99 <= 100 and cold_err == 0,
     ", ".join(f"{c['registry']} p50 {c['p50_ms']:.2f} / p99 {c['p99_ms']:.2f} ms" for c in c20)),
    (f"cached admission p99 <= 5 ms at {rate}/s, 0 errors (by tag; by digest)",
     all(c["p99_ms"] <= 5 and c["errors"] == 0 for c in cached),
     "; ".join(f"{c['by']} {c['p99_ms']:.2f} ms, {c['errors']} errors" for c in cached)),
]
if len(sizes) >= 2:
    ratio = sizes[-1][1]["p50_ms"] / sizes[0][1]["p50_ms"]
    checks.append((f"cold decision flat in model size ({size(sizes[0][0])} -> {size(sizes[-1][0])}: p50 ratio <= 1.5x, no layer GET)",
                   ratio <= 1.5 and all(l == 0 for l in layer_gets_all),
                   f"p50 ratio {ratio:.2f}x, {sum(layer_gets_all)} layer blob GETs"))
for name, ok, got in checks:
    print(f"target {name}: {'met' if ok else 'MISSED'} ({got})")
print(f"script runtime: {elapsed} s")

# The same values, machine-readable (bench/lib.sh perf_save).
rows = []
def row(table, name, series, value, unit):
    rows.append(f"{table}\t{name}\t{series}\t{value:.6g}\t{unit}")
for m in models:
    name = f"{m['name']} ({size(m['bytes'])}) on {m['registry']}"
    row("push", name, "oci push", m["bytes"] / 1e6 / m["push_s"], "MB/s")
    row("sign", name, "oci sign key, median", median(m["sign_all"]) * 1000, "ms")
    if m["name"] != "llm-20" and m["registry"] == "distribution":
        row("sign-size", round(m["bytes"] / 2**20), "oci sign key, median", median(m["sign_all"]) * 1000, "ms")
for c in cold:
    m = next(m for m in models if m["name"] == c["name"] and m["registry"] == c["registry"])
    name = f"{c['name']} ({size(m['bytes'])}) on {c['registry']}"
    for q in ("p50", "p90", "p99", "max"):
        row("cold", name, q, c[f"{q}_ms"], "ms")
    row("cold-errors", name, "errors", c["errors"], "errors")
    if c["name"] != "llm-20":
        for q in ("p50", "p99"):
            row("cold-size", round(m["bytes"] / 2**20), q, c[f"{q}_ms"], "ms")
for c in cached:
    for q in ("p50", "p90", "p99", "max"):
        row("cached", f"by {c['by']}", q, c[f"{q}_ms"], "ms")
    row("cached-errors", f"by {c['by']}", "errors", c["errors"], "errors")
    row("cached-rate", f"by {c['by']}", "achieved", c["achieved_rps"], "reviews/s")
row("operator", "cached phase", "RSS idle", rss_idle, "MiB")
row("operator", "cached phase", "RSS peak", hwm, "MiB")
row("operator-cpu", "cached phase", "CPU", cpu, "s")
with open(sys.argv[8], "w") as f:
    f.write("".join(x + "\n" for x in rows))
EOF
echo
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo); registry storage: $(cat "$SCRATCH/df"); before: $load_before; after: $load_after"
perf_save oci-admission "$load_before" "$load_after" \
  "COLD_N=$COLD_N SIZE_N=$SIZE_N SIGNS=$SIGNS RATE=$RATE SECONDS_=$DURATION SIZES_MIB=\"$SIZES_MIB\"; loopback registries on plain HTTP; one run." \
  <"$SCRATCH/perf.tsv"
perf_plot oci-admission "" --kind bar --table cold --series p50,p90,p99 \
  --title "OCI models: cold admission, every review resolves, lists referrers and verifies (bench/oci-admission.sh)" \
  --xlabel "latency of one AdmissionReview, one at a time" --ylabel "model on registry"
perf_plot oci-admission -size --kind line --xlog --table cold-size \
  --title "OCI models: cold admission against model size, on distribution (bench/oci-admission.sh)" \
  --xlabel "model size (MiB)" --ylabel "latency"
perf_plot oci-admission -cached --kind bar --table cached --series p50,p90,p99 \
  --title "OCI models: cached admission at $RATE reviews/s, 20-file model on distribution (bench/oci-admission.sh)" \
  --xlabel "latency from scheduled send to answer" --ylabel "reference"
