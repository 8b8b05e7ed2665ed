#!/usr/bin/env bash
# Trust policies at scale (issue 13): the real operator binary against the local control plane
# with NS namespaces, CMVS ClusterModelValidations and MVS namespaced ModelValidations, PODS pods
# created through the webhook (labelled ones naming a ModelValidation, unlabelled ones governed
# by the cluster policies alone), each verifier's outcome written to pod status as a kubelet
# would. crates/operator/examples/policy_scale.rs measures (a) how long after the last status
# write every policy's status is right, (b) a single change, (c) admission latency of dry-run
# pod creates through the API server at RATE/s; this script adds (d) the operator's RSS and
# (e) its reconcile counts, the webhook's own time per call from the operator's log, and (f)
# admission latency of the webhook alone at DIRECT_RATE/s (AdmissionReviews posted straight to
# it, as bench/webhook-load.sh does, for pods in a namespace every cluster policy of its group
# governs, half of them labelled with a ModelValidation).
#   NS=200 CMVS=500 MVS=500 PODS=20000 bash bench/policy-scale.sh
#   NS=20 CMVS=50 MVS=50 PODS=2000 bash bench/policy-scale.sh
# Targets (issue 13): admission p99 <= 5 ms at 500/s (the webhook's, as issue 5 measured it), a single change in status within 1 s, a
# burst within 10 s, operator RSS <= 200 MiB. Every wait (control plane, operator /readyz,
# leadership, the policies seen, each convergence) fails the script when it times out
# (CONVERGE_LIMIT seconds for the example's waits, default 120); nothing is printed then.
# The results also go to docs/perf/policy-scale.tsv (bench/lib.sh perf_save), charted in
# policy-scale.svg (convergence), policy-scale-admission.svg (latency against the rates of
# RATE, through the API server) and policy-scale-rss.svg (operator RSS by phase).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=policy-scale
# shellcheck source=bench/lib.sh
. bench/lib.sh
NS=${NS:-200}
CMVS=${CMVS:-500}
MVS=${MVS:-500}
PODS=${PODS:-20000}
# RATE: admission rates, one after the other; the first is judged against the target.
export RATE=${RATE:-500,100} ADMISSION_SECONDS=${ADMISSION_SECONDS:-20}
DIRECT_RATE=${DIRECT_RATE:-500}
# The namespaces the benchmark creates carry pscale=true; cluster policies may govern only
# those (the operator reads this variable as --cluster-policy-namespaces).
export MVO_CLUSTER_POLICY_NAMESPACES='{"matchLabels":{"pscale":"true"}}'
trap operator_cleanup EXIT

load_before=$(load_check before)
operator_up "$PWD/target/bench-cluster-policy"
WAIT_PID=$OP_PID WAIT_LOG=$OP_LOG wait_until "operator leadership (model_validation_leader 1)" 30 \
  bash -c "curl -fsS 'http://127.0.0.1:$OP_HEALTH/metrics' | grep -q '^model_validation_leader 1'"
rss_idle=$(proc_kib VmRSS)
cpu_before=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$OP_PID/stat")
started=$SECONDS
if ! result=$(OP_PID=$OP_PID METRICS="127.0.0.1:$OP_HEALTH" \
  target/release/examples/policy_scale "$NS" "$CMVS" "$MVS" "$PODS"); then
  cp "$OP_LOG" target/policy-scale-operator.log
  die "policy_scale failed; the operator's log is in target/policy-scale-operator.log"
fi
# (f) The webhook alone, after everything above: 4 cluster policies govern pscale-0, and every
# other pod names mv-0000 (in pscale-0 when there are ModelValidations).
mv_label=()
if [ "$MVS" != 0 ]; then mv_label=(mv-0000); fi
direct=$(MODEL_MOUNT=/data target/release/examples/admission_load "https://127.0.0.1:$OP_PORT" "$DIRECT_RATE" \
  "$ADMISSION_SECONDS" pscale-0 "${mv_label[@]}") || die "admission_load failed"
elapsed=$((SECONDS - started))
rss=$(proc_kib VmRSS)
hwm=$(proc_kib VmHWM)
cpu_after=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$OP_PID/stat")
metrics=$(operator_metrics)
reconciles=$(awk '/^model_validation_reconciles_total\{result="success"\}/ { print $2 }' <<<"$metrics")
errors=$(awk '/^model_validation_reconcile_errors_total / { print $2 }' <<<"$metrics")
# Without ModelValidations nothing is reconciled, and the counter has no sample yet.
if [ -z "$reconciles" ] && [ "$MVS" = 0 ]; then reconciles=0; fi
[ -n "$reconciles" ] || die "no sample of model_validation_reconciles_total{result=\"success\"}"
[ -n "$errors" ] || die "no sample of model_validation_reconcile_errors_total"
cp "$OP_LOG" target/policy-scale-operator.log
load_after=$(load_check after sample-only)
echo "$result"
perf_rows=$(mktemp)
RESULT=$result DIRECT=$direct python3 - "$rss_idle" "$rss" "$hwm" "$reconciles" "$errors" "$cpu_before" "$cpu_after" "$elapsed" \
  target/policy-scale-operator.log "$perf_rows" "$DIRECT_RATE" <<'EOF'
import json, math, os, sys
r = json.loads(os.environ["RESULT"])
d = json.loads(os.environ["DIRECT"])
idle, rss, hwm = (int(x) / 1024 for x in sys.argv[1:4])
reconciles, errors = float(sys.argv[4]), float(sys.argv[5])
cpu = float(sys.argv[7]) - float(sys.argv[6])
elapsed, log = int(sys.argv[8]), sys.argv[9]

# The webhook's own time per call (decode, decide, respond; not TLS nor the API server) for the
# dry-run creates, from the operator's log, and how many calls each request made.
# A log line has two "message" keys (the event's, then the review's message field): keep the
# first of each key.
def first_keys(pairs):
    d = {}
    for k, v in pairs:
        d.setdefault(k, v)
    return d
micros, calls, warns = {}, {}, {}
with open(log) as f:
    for line in f:
        try:
            e = json.loads(line, object_pairs_hook=first_keys)
        except ValueError:
            continue
        if e.get("level") in ("WARN", "ERROR"):
            m = e.get("message", "")
            warns[m] = warns.get(m, 0) + 1
        name = str(e.get("name", ""))
        if e.get("message") == "admission" and name.startswith("adm-"):
            rnd = int(name.split("-")[1])
            micros.setdefault(rnd, []).append(int(e["micros"]))
            calls.setdefault(rnd, {})
            calls[rnd][name] = calls[rnd].get(name, 0) + 1
for v in micros.values():
    v.sort()
def pct(v, q):
    return v[min(len(v), max(1, math.ceil(q * len(v)))) - 1] if v else float("nan")

a = r["admission"][0]
def s(x, unit="s", nd=2):
    return "n/a" if x is None else f"{x:.{nd}f} {unit}"
print()
print("| pods | namespaces | CMVs | MVs | burst convergence | single change CMV median / max | single change MV median / max | admission p99: webhook alone (errors) / through the API server (errors) | operator RSS idle / after / peak | MV reconciles | CMV / MV status writes (burst) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
w = r["status_writes"]
print(f"| {r['pods']} | {r['namespaces']} | {r['cmvs']} | {r['mvs']} | **{r['converge_after_burst_s']:.2f} s** "
      f"| {s(r['single_change_cmv_median_s'])} / {s(r['single_change_cmv_max_s'])} "
      f"| {s(r['single_change_mv_median_s'])} / {s(r['single_change_mv_max_s'])} "
      f"| **{d['p99_ms']:.2f} ms** ({d['errors']}) / {a['p99_ms']:.2f} ms ({a['errors']}) "
      f"| {idle:.0f} / {rss:.0f} / **{hwm:.0f} MiB** | {reconciles:.0f} ({errors:.0f} errors) "
      f"| {w['burst']['cmv']} / {w['burst']['mv']} |")
print()
print(f"setup {r['setup_s']:.1f} s; {r['pods']} pods ({r['labelled_pods']} labelled, {r['governed_pods']} with a verifier, "
      f"{r['verifier_containers']} verifiers, {r['failing_verifiers']} failing; {r['cmvs_per_namespace'][0]}-{r['cmvs_per_namespace'][1]} CMVs per namespace) "
      f"created in {r['create_pods_s']:.1f} s ({r['pods'] / r['create_pods_s']:.0f}/s), injected counts right {r['converge_after_create_s']:.2f} s later; "
      f"statuses written in {r['write_statuses_s']:.1f} s")
print(f"every CMV / every MV status right: after the creates {s(r['converge_after_create_cmv_s'])} / {s(r['converge_after_create_mv_s'])}, "
      f"after the burst {s(r['converge_after_burst_cmv_s'])} / {s(r['converge_after_burst_mv_s'])}; "
      f"the last status write of the burst {r['writes_quiet_after_convergence_s']:.2f} s after the counts were right")
for rnd, x in enumerate(r["admission"]):
    print(f"admission through the API server ({x['rate_asked']}/s asked, {x['achieved_rps']:.0f}/s sent, {x['requests']} dry-run creates): "
          f"p50 {x['p50_ms']:.2f} ms, p90 {x['p90_ms']:.2f} ms, p99 {x['p99_ms']:.2f} ms, max {x['max_ms']:.2f} ms; "
          f"labelled p99 {s(x['labelled_p99_ms'], 'ms')}, unlabelled p99 {s(x['unlabelled_p99_ms'], 'ms')}; errors {x['errors']} {x['error_kinds'] or ''}")
    h = x.get("webhook_histogram")
    if h:
        print(f"  webhook histogram (decide only): {h['calls']:.0f} calls, mean {h['mean_ms']:.3f} ms, p50 ~{h['p50_ms_est']:.3f} ms, p99 ~{h['p99_ms_est']:.3f} ms")
    m = micros.get(rnd, [])
    if m:
        per = sorted(calls[rnd].values())
        print(f"  webhook log (decode+decide+respond): {len(m)} calls for {len(calls[rnd])} requests ({per[0]}-{per[-1]} per request), "
              f"p50 {pct(m, 0.5) / 1000:.3f} ms, p99 {pct(m, 0.99) / 1000:.3f} ms, max {m[-1] / 1000:.3f} ms")
    else:
        print("  webhook log: no admission line for these requests")
print(f"webhook alone ({d['requests']} AdmissionReviews at {d['achieved_rps']:.0f}/s, half labelled, into pscale-0): "
      f"p50 {d['p50_ms']:.2f} ms, p90 {d['p90_ms']:.2f} ms, p99 {d['p99_ms']:.2f} ms, max {d['max_ms']:.2f} ms, errors {d['errors']}")
rc = r["mv_reconciles"]
changes = len(r["single_change_mv_s"])
print(f"ModelValidation reconciles: burst {rc['burst']:.0f}, single changes {rc['single_changes']:.0f} for {changes} changes "
      f"(each change, from its write to 0.5 s later, CMV changes first: {[int(x) for x in rc['per_change']]})")
print(f"status writes seen by watches (CMV / MV): " + ", ".join(f"{k} {v['cmv']} / {v['mv']}" for k, v in w.items()))
print(f"operator RSS by phase (KiB): {r['rss_kib']}; operator CPU {cpu:.1f} s over the {elapsed} s run")
print("operator warnings/errors: " + (", ".join(f"{m!r} x{n}" for m, n in sorted(warns.items(), key=lambda x: -x[1])[:6]) or "none"))
print()
checks = [
    ("admission p99 <= 5 ms (webhook alone)", d["p99_ms"] <= 5 and d["errors"] == 0, f"{d['p99_ms']:.2f} ms, {d['errors']} errors"),
    ("admission p99 <= 5 ms (through the API server)", a["p99_ms"] <= 5 and a["errors"] == 0, f"{a['p99_ms']:.2f} ms, {a['errors']} errors"),
    ("single change <= 1 s (max, CMV and MV)",
     all(x is not None and x <= 1 for x in (r["single_change_cmv_max_s"], r["single_change_mv_max_s"]) if x is not None),
     f"CMV {s(r['single_change_cmv_max_s'])}, MV {s(r['single_change_mv_max_s'])}"),
    ("burst <= 10 s", r["converge_after_burst_s"] <= 10, f"{r['converge_after_burst_s']:.2f} s"),
    ("RSS <= 200 MiB", hwm <= 200, f"peak {hwm:.0f} MiB"),
]
for name, ok, got in checks:
    print(f"target {name}: {'met' if ok else 'MISSED'} ({got})")

# The same values, machine-readable (bench/lib.sh perf_save). A value the run did not measure
# (None: e.g. no ModelValidations, no single change of that kind) gets no line.
rows = []
def row(table, name, series, value, unit):
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        rows.append(f"{table}\t{name}\t{series}\t{value:.6g}\t{unit}")
for name, key in (("burst: every policy", "converge_after_burst_s"), ("burst: every CMV", "converge_after_burst_cmv_s"),
                  ("burst: every MV", "converge_after_burst_mv_s"), ("single change: CMV, median", "single_change_cmv_median_s"),
                  ("single change: CMV, max", "single_change_cmv_max_s"), ("single change: MV, median", "single_change_mv_median_s"),
                  ("single change: MV, max", "single_change_mv_max_s")):
    row("convergence", name, "time until every status is right", r.get(key), "s")
for rnd, x in enumerate(r["admission"]):
    for q in ("p50", "p90", "p99"):
        row("admission", x["rate_asked"], f"{q}, whole call through the API server", x[f"{q}_ms"], "ms")
    m = micros.get(rnd, [])
    if m:
        row("admission", x["rate_asked"], "p99, the webhook's own time (log)", pct(m, 0.99) / 1000, "ms")
    row("admission-errors", x["rate_asked"], "errors", x["errors"], "errors")
for q in ("p50", "p90", "p99", "max"):
    row("direct", f"{sys.argv[11]}/s asked", q, d[f"{q}_ms"], "ms")
row("direct", f"{sys.argv[11]}/s asked", "errors", d["errors"], "errors")
row("rss", "idle (leader, nothing created)", "RSS", idle, "MiB")
for phase in ("after_setup", "after_create", "after_burst", "after_changes", "after_admission"):
    v = r["rss_kib"].get(phase)
    row("rss", phase.replace("_", " "), "RSS", None if v is None else v / 1024, "MiB")
row("rss", "peak (VmHWM)", "RSS", hwm, "MiB")
for k in ("pods", "namespaces", "cmvs", "mvs"):
    row("size", k, "count", r[k], "count")
row("reconciles", "MV reconciles (whole run)", "count", reconciles, "count")
for k, v in w.items():
    row("status-writes", k, "CMV", v["cmv"], "writes")
    row("status-writes", k, "MV", v["mv"], "writes")
with open(sys.argv[10], "w") as f:
    f.write("".join(x + "\n" for x in rows))
EOF
echo
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo); before: $load_before; after: $load_after"
perf_save policy-scale "$load_before" "$load_after" \
  "NS=$NS CMVS=$CMVS MVS=$MVS PODS=$PODS RATE=$RATE ADMISSION_SECONDS=$ADMISSION_SECONDS DIRECT_RATE=$DIRECT_RATE; one run." <"$perf_rows"
rm -f "$perf_rows"
perf_plot policy-scale "" --kind bar --table convergence \
  --title "Policies at scale: $PODS pods, $CMVS CMVs + $MVS MVs over $NS namespaces (bench/policy-scale.sh)" \
  --xlabel "from the last status write (burst) or the change's write until every status is right"
perf_plot policy-scale -admission --kind line --table admission \
  --title "Policies at scale: dry-run pod creates through the API server, $PODS pods in place (bench/policy-scale.sh)" \
  --xlabel "pod creates per second asked" --ylabel "latency"
perf_plot policy-scale -rss --kind bar --table rss \
  --title "Policies at scale: operator RSS by phase, $PODS pods (bench/policy-scale.sh)" \
  --xlabel "resident memory" --ylabel "phase"
