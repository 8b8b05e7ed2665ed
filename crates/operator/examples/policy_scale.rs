//! Load for bench/policy-scale.sh: trust policies at scale (issue 13). Against the cluster in
//! KUBECONFIG, with the operator running and `--cluster-policy-namespaces` selecting
//! `pscale=true`, it:
//!
//! 1. creates NS namespaces `pscale-N` (labels `pscale=true`, `scale-group=gN % G`), CMVS
//!    ClusterModelValidations `pol-NNNN` (policy J selects `scale-group=gJ % G`, so that every
//!    namespace is governed by about `CMVS_PER_NS` of them; an inline key authority) and MVS
//!    namespaced ModelValidations `mv-NNNN` (MV M in namespace M % NS, key inline), and waits
//!    until every policy's status names its namespaces and a dry run in every namespace gets the
//!    verifiers it should (the webhook's cache has caught up);
//! 2. creates PODS pods through the webhook, round-robin over the namespaces, every other round
//!    labelled with one of its namespace's ModelValidations, the others unlabelled (governed by
//!    the ClusterModelValidations alone), and measures until every injected count is right;
//! 3. (a) plays the kubelet: writes every verifier's terminated state into pod status (one
//!    container in ten fails, exit 1 "verification failed: ..."), and measures the time from
//!    the last write until every ClusterModelValidation and ModelValidation status shows the
//!    expected injected, verified and failed counts;
//! 4. (b) single changes: re-runs ONE pod's verifier of one cluster policy (now failing) and
//!    times until that policy's status shows it, CHANGES times; the same for a ModelValidation;
//! 5. (c) admission: dry-run pod creates (`dryRun=All`) through the API server at RATE per
//!    second for ADMISSION_SECONDS into `pscale-0`, half labelled, and the latency of the whole
//!    API call measured from each request's scheduled time (no coordinated omission); the
//!    operator's `model_validation_admission_duration_seconds` histogram is read before and
//!    after (METRICS=host:port) to estimate the webhook's share.
//!
//! Statuses are followed through watches (no polling of the API server), which also count the
//! status writes per phase. With OP_PID set, the operator's RSS is sampled after each phase.
//! Every wait has a limit (CONVERGE_LIMIT seconds, default 120); passing it exits non-zero
//! without printing a result. Prints one JSON line.
//!
//!   policy_scale NS CMVS MVS PODS

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use model_validation_operator::crd::ModelValidation;
use model_validation_operator::crd::cluster::ClusterModelValidation;
use model_validation_operator::names::{LABEL, VERIFY_CONTAINER, cluster_containers};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONCURRENCY: usize = 64;
/// A P-256 public key: the operator carries it to the verifier without parsing it.
const PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdH9ByLc5X0wFwX3V99Gvnpb0rNy1
Lz0XbZUSEXYvgIIyk1MkIyROCexzpf0oZzM+wMitNPsCO3wv429/K2AkCw==
-----END PUBLIC KEY-----
";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Give up after this many seconds (env CONVERGE_LIMIT, default 120).
fn limit() -> Duration {
    Duration::from_secs(env_num("CONVERGE_LIMIT", 120))
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("policy_scale: {message}");
    std::process::exit(1)
}

/// A policy whose status is followed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Cmv(String),
    Mv(String, String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Cmv(n) => write!(f, "cmv/{n}"),
            Key::Mv(ns, n) => write!(f, "mv/{ns}/{n}"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    injected: i32,
    verified: i32,
    failed: i32,
}

impl From<[i32; 3]> for Counts {
    /// From a status's injected, verified and failed counts.
    fn from([injected, verified, failed]: [i32; 3]) -> Counts {
        Counts {
            injected,
            verified,
            failed,
        }
    }
}

/// Who is where: namespaces, policies, pods and their verifiers, all derived from the sizes.
struct Layout {
    ns: usize,
    cmvs: usize,
    mvs: usize,
    pods: usize,
    groups: usize,
}

impl Layout {
    fn new(ns: usize, cmvs: usize, mvs: usize, pods: usize) -> Layout {
        let per_ns = env_num("CMVS_PER_NS", 4).max(1) as usize;
        let groups = (cmvs / per_ns).clamp(1, ns.max(1));
        Layout {
            ns,
            cmvs,
            mvs,
            pods,
            groups,
        }
    }
    fn namespace(&self, n: usize) -> String {
        format!("pscale-{n}")
    }
    fn cmv(&self, j: usize) -> String {
        format!("pol-{j:04}")
    }
    fn mv(&self, m: usize) -> String {
        format!("mv-{m:04}")
    }
    /// The cluster policies governing namespace `n`, in name order.
    fn cmvs_of_ns(&self, n: usize) -> Vec<usize> {
        (n % self.groups..self.cmvs).step_by(self.groups).collect()
    }
    fn namespaces_of_cmv(&self, j: usize) -> usize {
        (0..self.ns)
            .filter(|n| n % self.groups == j % self.groups)
            .count()
    }
    fn mvs_of_ns(&self, n: usize) -> Vec<usize> {
        (n..self.mvs).step_by(self.ns).collect()
    }
    fn mv_ns(&self, m: usize) -> usize {
        m % self.ns
    }
    fn pod_ns(&self, i: usize) -> usize {
        i % self.ns
    }
    /// Every other round over the namespaces is labelled, with the namespace's MVs in turn.
    fn pod_mv(&self, i: usize) -> Option<usize> {
        let round = i / self.ns;
        if round % 2 == 1 {
            return None;
        }
        let mvs = self.mvs_of_ns(self.pod_ns(i));
        (!mvs.is_empty()).then(|| mvs[(round / 2) % mvs.len()])
    }
    /// The verifiers a pod in namespace `n` (labelled with `mv`) gets, in the webhook's order:
    /// (init container, policy).
    fn verifiers_for(&self, n: usize, mv: Option<usize>) -> Vec<(String, Key)> {
        let mut v: Vec<(String, Key)> = self
            .cmvs_of_ns(n)
            .into_iter()
            .map(|j| (cluster_containers(&self.cmv(j)).0, Key::Cmv(self.cmv(j))))
            .collect();
        if let Some(m) = mv {
            v.push((
                VERIFY_CONTAINER.to_string(),
                Key::Mv(self.namespace(n), self.mv(m)),
            ));
        }
        v
    }
    fn verifiers(&self, i: usize) -> Vec<(String, Key)> {
        self.verifiers_for(self.pod_ns(i), self.pod_mv(i))
    }
    /// One verifier in ten fails in the burst.
    fn fails(i: usize, k: usize) -> bool {
        (i + k) % 10 == 9
    }
    /// Every policy's counts when each verifier `k` of pod `i` stands at `outcome(i, k)`
    /// (`None`: not finished; `Some(true)`: verified).
    fn expected(&self, outcome: impl Fn(usize, usize) -> Option<bool>) -> HashMap<Key, Counts> {
        let mut want: HashMap<Key, Counts> = HashMap::new();
        for j in 0..self.cmvs {
            want.insert(Key::Cmv(self.cmv(j)), Counts::default());
        }
        for m in 0..self.mvs {
            want.insert(
                Key::Mv(self.namespace(self.mv_ns(m)), self.mv(m)),
                Counts::default(),
            );
        }
        for i in 0..self.pods {
            for (k, (_, key)) in self.verifiers(i).into_iter().enumerate() {
                let c = want.entry(key).or_default();
                c.injected += 1;
                match outcome(i, k) {
                    Some(true) => c.verified += 1,
                    Some(false) => c.failed += 1,
                    None => {}
                }
            }
        }
        want
    }
}

fn pod(name: &str, mv: Option<&str>) -> Pod {
    let mut labels = json!({"app": "llm"});
    if let Some(mv) = mv {
        labels[LABEL] = json!(mv);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "app",
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "emptyDir": {}}]}
    }))
    .expect("pod")
}

fn init_names(p: &Pod) -> Vec<String> {
    p.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .map(|c| c.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The pod status a kubelet writes once every verifier has ended; `failed(k)` says whether
/// verifier `k` failed, `rerun(k)` whether it ran a second time (after a first run that passed).
fn kubelet_status(
    verifiers: &[(String, Key)],
    failed: impl Fn(usize) -> bool,
    rerun: impl Fn(usize) -> bool,
) -> Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let terminated = |code: i32| {
        let message = if code == 0 {
            "verified: 3 files, key release".to_string()
        } else {
            "verification failed: 1 file changed: weights.bin".to_string()
        };
        json!({"terminated": {"exitCode": code, "reason": if code == 0 {"Completed"} else {"Error"},
               "message": message, "finishedAt": now}})
    };
    let statuses: Vec<Value> = verifiers
        .iter()
        .enumerate()
        .map(|(k, (name, _))| {
            let code = i32::from(failed(k));
            let mut s = json!({"name": name, "image": "agent", "imageID": "", "ready": false,
                               "restartCount": 0, "state": terminated(code)});
            if rerun(k) {
                s["restartCount"] = json!(1);
                s["lastState"] = terminated(0);
            }
            s
        })
        .collect();
    json!({"status": {"phase": "Pending", "initContainerStatuses": statuses}})
}

/// What the watches saw: each policy's counts (and matched namespaces), and how many
/// modifications of each kind arrived after the initial list.
#[derive(Default)]
struct Seen {
    status: HashMap<Key, (Counts, Option<i32>)>,
    cmv_writes: u64,
    mv_writes: u64,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn follow(client: &Client) -> Shared {
    let seen: Shared = Arc::default();
    follow_kind(
        Api::<ClusterModelValidation>::all(client.clone()),
        seen.clone(),
        |o| Key::Cmv(o.name_any()),
        |o| {
            let st = o.status.clone().unwrap_or_default();
            let counts = [st.injected_pod_count, st.verified_count, st.failed_count];
            (
                counts.into(),
                o.status.as_ref().map(|st| st.matched_namespaces),
            )
        },
    );
    follow_kind(
        Api::<ModelValidation>::all(client.clone()),
        seen.clone(),
        |o| Key::Mv(o.namespace().unwrap_or_default(), o.name_any()),
        |o| {
            let st = o.status.clone().unwrap_or_default();
            let counts = [st.injected_pod_count, st.verified_count, st.failed_count];
            (counts.into(), None)
        },
    );
    seen
}

/// Follows the statuses of one kind into `seen`, counting each modification after the initial
/// list as a status write of that kind.
fn follow_kind<K>(
    api: Api<K>,
    seen: Shared,
    key: fn(&K) -> Key,
    status: fn(&K) -> (Counts, Option<i32>),
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let events = watcher(api, watcher::Config::default()).default_backoff();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(e) = events.next().await {
            let (obj, modified) = match e {
                Ok(watcher::Event::Apply(o)) => (o, true),
                Ok(watcher::Event::InitApply(o)) => (o, false),
                Ok(watcher::Event::Delete(o)) => {
                    lock(&seen).status.remove(&key(&o));
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("policy_scale: {kind} watch: {e}");
                    continue;
                }
            };
            let k = key(&obj);
            let mut g = lock(&seen);
            *match k {
                Key::Cmv(_) => &mut g.cmv_writes,
                Key::Mv(..) => &mut g.mv_writes,
            } += u64::from(modified);
            g.status.insert(k, status(&obj));
        }
    });
}

/// Seconds until every status in `want` is right (checked against the watches every 2 ms);
/// exits the process when `within` passes.
async fn converge(seen: &Shared, want: &HashMap<Key, Counts>, what: &str, within: Duration) -> f64 {
    converge_split(seen, want, what, within).await.0
}

/// [`converge`], plus when every ClusterModelValidation and when every ModelValidation of
/// `want` was first right (`None`: `want` has none of that kind).
async fn converge_split(
    seen: &Shared,
    want: &HashMap<Key, Counts>,
    what: &str,
    within: Duration,
) -> (f64, Option<f64>, Option<f64>) {
    let start = Instant::now();
    let (mut cmv_at, mut mv_at) = (None, None);
    loop {
        {
            let g = lock(seen);
            let wrong_of = |cluster: bool| {
                want.iter()
                    .filter(|(k, _)| matches!(k, Key::Cmv(_)) == cluster)
                    .any(|(k, w)| g.status.get(k).map(|s| s.0) != Some(*w))
            };
            let now = start.elapsed().as_secs_f64();
            if cmv_at.is_none() && !wrong_of(true) {
                cmv_at = Some(now);
            }
            if mv_at.is_none() && !wrong_of(false) {
                mv_at = Some(now);
            }
            let wrong: Vec<String> = want
                .iter()
                .filter(|(k, w)| g.status.get(*k).map(|s| s.0) != Some(**w))
                .map(|(k, w)| format!("{k}: want {w:?}, have {:?}", g.status.get(k).map(|s| s.0)))
                .take(5)
                .collect();
            if wrong.is_empty() {
                let has = |cluster: bool| want.keys().any(|k| matches!(k, Key::Cmv(_)) == cluster);
                return (
                    start.elapsed().as_secs_f64(),
                    cmv_at.filter(|_| has(true)),
                    mv_at.filter(|_| has(false)),
                );
            }
            if start.elapsed() > within {
                let n = want
                    .iter()
                    .filter(|(k, w)| g.status.get(*k).map(|s| s.0) != Some(**w))
                    .count();
                fail(format!(
                    "{what}: not converged after {} s: {n} of {} statuses wrong, e.g. {wrong:?}",
                    within.as_secs(),
                    want.len()
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The operator's RSS in KiB (OP_PID), `None` without OP_PID.
fn rss_kib() -> Option<u64> {
    let pid = std::env::var("OP_PID").ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| fail(format!("cannot read the operator's RSS (pid {pid}): {e}")));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The operator's /metrics text (METRICS=host:port), `None` without METRICS.
async fn scrape() -> Option<String> {
    let addr = std::env::var("METRICS").ok()?;
    let text = async {
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: operator\r\n\r\n")
            .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<String, std::io::Error>(out)
    }
    .await
    .unwrap_or_else(|e| {
        fail(format!(
            "cannot scrape the operator's metrics at {addr}: {e}"
        ))
    });
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| fail("metrics: no HTTP body"));
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        fail(format!(
            "metrics: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    Some(body.to_string())
}

/// ModelValidation reconciles so far (`model_validation_reconciles_total`, every result), `None`
/// without METRICS or before the first reconcile.
async fn reconciles() -> Option<f64> {
    let metrics = scrape().await?;
    let total: Vec<f64> = metrics
        .lines()
        .filter(|l| l.starts_with("model_validation_reconciles_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
        .collect();
    (!total.is_empty()).then(|| total.iter().sum())
}

/// (le, cumulative count) of the admission histogram, then its sum and count.
fn admission_histogram(metrics: &str) -> (Vec<(f64, f64)>, f64, f64) {
    const NAME: &str = "model_validation_admission_duration_seconds";
    let mut buckets = Vec::new();
    let (mut sum, mut count) = (None, None);
    for line in metrics.lines() {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if let Some(le) = key
            .strip_prefix(NAME)
            .and_then(|k| k.strip_prefix("_bucket{le=\""))
            .and_then(|k| k.strip_suffix("\"}"))
        {
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            buckets.push((le, value));
        } else if key == format!("{NAME}_sum") {
            sum = Some(value);
        } else if key == format!("{NAME}_count") {
            count = Some(value);
        }
    }
    match (buckets.is_empty(), sum, count) {
        (false, Some(s), Some(c)) => (buckets, s, c),
        _ => fail(format!("metrics: no sample of {NAME}")),
    }
}

/// The q-quantile of a histogram, linearly interpolated within its bucket.
fn histogram_quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    let rank = q * total;
    let (mut lo, mut below) = (0.0, 0.0);
    for &(le, cum) in buckets {
        if cum >= rank && cum > below {
            if le.is_infinite() {
                return lo;
            }
            return lo + (le - lo) * (rank - below) / (cum - below);
        }
        if le.is_finite() {
            lo = le;
        }
        below = cum;
    }
    lo
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn median_max(v: &[f64]) -> (Option<f64>, Option<f64>) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return (None, None);
    }
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (Some(median), s.last().copied())
}

async fn create_all<T>(api_of: impl Fn(&T) -> Api<T>, objects: Vec<T>, what: &str)
where
    T: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let what = what.to_string();
    futures::stream::iter(objects)
        .map(|o| {
            let api = api_of(&o);
            async move { api.create(&PostParams::default(), &o).await.map(|_| ()) }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .unwrap_or_else(|e| fail(format!("create {what}: {e}")));
}

/// Dry-run pod creates into namespace 0 at `rate` per second for `seconds`, every other one
/// labelled with the namespace's first ModelValidation: the latency of each whole API call
/// from its scheduled send time, the errors by kind, and the operator's admission histogram
/// over the same time. Pods are named `adm-ROUND-I` (the script finds the webhook's log lines
/// by that name).
async fn admission(
    client: &Client,
    layout: &Layout,
    rate: u64,
    seconds: u64,
    round: usize,
) -> Value {
    let n0 = 0;
    let mv0 = layout.mvs_of_ns(n0).first().copied();
    let want_labelled: Vec<String> = layout
        .verifiers_for(n0, mv0)
        .into_iter()
        .map(|v| v.0)
        .collect();
    let want_plain: Vec<String> = layout
        .verifiers_for(n0, None)
        .into_iter()
        .map(|v| v.0)
        .collect();
    let before = scrape().await;
    let api = Api::<Pod>::namespaced(client.clone(), &layout.namespace(n0));
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = rate * seconds;
    let t_adm = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = t_adm + interval * i as u32;
        tokio::time::sleep_until(at.into()).await;
        let labelled = i % 2 == 0 && mv0.is_some();
        let p = pod(
            &format!("adm-{round}-{i}"),
            if labelled {
                mv0.map(|m| layout.mv(m))
            } else {
                None
            }
            .as_deref(),
        );
        let want = if labelled {
            want_labelled.clone()
        } else {
            want_plain.clone()
        };
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let dry = PostParams {
                dry_run: true,
                ..Default::default()
            };
            let error = match api.create(&dry, &p).await {
                Ok(got) if init_names(&got) == want => None,
                Ok(got) => Some(format!("wrong init containers {:?}", init_names(&got))),
                Err(kube::Error::Api(e)) => Some(format!(
                    "{} {}: {}",
                    e.code,
                    e.reason,
                    e.message.chars().take(160).collect::<String>()
                )),
                Err(e) => Some(e.to_string().chars().take(80).collect()),
            };
            (at.elapsed().as_secs_f64() * 1000.0, labelled, error)
        }));
    }
    let sent_s = t_adm.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut lab = Vec::new();
    let mut plain = Vec::new();
    let mut errors = 0u64;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let (ms, labelled, error) = t
            .await
            .unwrap_or_else(|e| fail(format!("admission task: {e}")));
        if let Some(kind) = error {
            errors += 1;
            *kinds.entry(kind).or_default() += 1;
        }
        all.push(ms);
        if labelled {
            lab.push(ms);
        } else {
            plain.push(ms);
        }
    }
    let after = scrape().await;
    for v in [&mut all, &mut lab, &mut plain] {
        v.sort_by(f64::total_cmp);
    }
    let webhook = match (before, after) {
        (Some(b), Some(a)) => {
            let (bb, bs, bc) = admission_histogram(&b);
            let (ab, as_, ac) = admission_histogram(&a);
            let d: Vec<(f64, f64)> = ab.iter().zip(&bb).map(|(x, y)| (x.0, x.1 - y.1)).collect();
            let calls = ac - bc;
            json!({"calls": calls,
                   "mean_ms": if calls > 0.0 { (as_ - bs) / calls * 1000.0 } else { f64::NAN },
                   "p50_ms_est": histogram_quantile(&d, 0.5) * 1000.0,
                   "p99_ms_est": histogram_quantile(&d, 0.99) * 1000.0})
        }
        _ => Value::Null,
    };
    json!({
        "rate_asked": rate, "seconds": seconds, "requests": all.len(),
        "achieved_rps": all.len() as f64 / sent_s.max(1e-9), "errors": errors,
        "error_kinds": kinds,
        "p50_ms": percentile(&all, 0.5), "p90_ms": percentile(&all, 0.9),
        "p99_ms": percentile(&all, 0.99), "max_ms": all.last(),
        "labelled_p50_ms": percentile(&lab, 0.5), "labelled_p99_ms": percentile(&lab, 0.99),
        "unlabelled_p50_ms": percentile(&plain, 0.5),
        "unlabelled_p99_ms": percentile(&plain, 0.99),
        "webhook_histogram": webhook,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| fail("usage: policy_scale NS CMVS MVS PODS"))
        })
        .collect();
    let [ns, cmvs, mvs, pods] = args[..] else {
        fail("usage: policy_scale NS CMVS MVS PODS")
    };
    if ns == 0 {
        fail("NS must be at least 1");
    }
    let layout = Arc::new(Layout::new(ns, cmvs, mvs, pods));
    let client = Client::try_default()
        .await
        .unwrap_or_else(|e| fail(format!("KUBECONFIG: {e}")));
    let seen = follow(&client);
    let mut rss: BTreeMap<&str, Option<u64>> = BTreeMap::new();
    let mut writes: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let writes_now = |seen: &Shared| {
        let g = lock(seen);
        (g.cmv_writes, g.mv_writes)
    };
    let delta = |a: (u64, u64), b: (u64, u64)| (b.0 - a.0, b.1 - a.1);

    // 1. Namespaces, policies, and the wait until the operator sees them all.
    let t_setup = Instant::now();
    let namespaces: Vec<Namespace> = (0..ns)
        .map(|n| {
            serde_json::from_value(json!({"metadata": {"name": layout.namespace(n),
                "labels": {"pscale": "true", "scale-group": format!("g{}", n % layout.groups)}}}))
            .expect("namespace")
        })
        .collect();
    create_all(
        |_| Api::<Namespace>::all(client.clone()),
        namespaces,
        "namespaces",
    )
    .await;
    let model = json!({"path": "/data/model", "signaturePath": "/data/model/model.sig"});
    let mv_objects: Vec<ModelValidation> = (0..mvs)
        .map(|m| {
            serde_json::from_value(json!({
                "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
                "metadata": {"name": layout.mv(m), "namespace": layout.namespace(layout.mv_ns(m))},
                "spec": {"model": model.clone(), "config": {"publicKeyConfig": {"keyPem": PEM}}}
            }))
            .expect("ModelValidation")
        })
        .collect();
    create_all(
        |o: &ModelValidation| {
            Api::namespaced(
                client.clone(),
                o.metadata.namespace.as_deref().unwrap_or_default(),
            )
        },
        mv_objects,
        "ModelValidations",
    )
    .await;
    let cmv_objects: Vec<ClusterModelValidation> = (0..cmvs)
        .map(|j| {
            serde_json::from_value(json!({
                "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ClusterModelValidation",
                "metadata": {"name": layout.cmv(j)},
                "spec": {
                    "namespaceSelector": {"matchLabels": {"pscale": "true",
                                          "scale-group": format!("g{}", j % layout.groups)}},
                    "model": model.clone(),
                    "authorities": [{"name": "release", "key": {"pem": PEM}}]
                }
            }))
            .expect("ClusterModelValidation")
        })
        .collect();
    create_all(
        |_| Api::<ClusterModelValidation>::all(client.clone()),
        cmv_objects,
        "ClusterModelValidations",
    )
    .await;
    // Every cluster policy's status names its namespaces: the status controller has seen the
    // policies and the namespaces.
    let start = Instant::now();
    loop {
        let wrong = {
            let g = lock(&seen);
            (0..cmvs)
                .filter(|&j| {
                    g.status.get(&Key::Cmv(layout.cmv(j))).and_then(|s| s.1)
                        != Some(layout.namespaces_of_cmv(j) as i32)
                })
                .count()
        };
        if wrong == 0 {
            break;
        }
        if start.elapsed() > limit() {
            fail(format!(
                "setup: {wrong} of {cmvs} ClusterModelValidations do not show their matchedNamespaces after {} s",
                limit().as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A dry run in every namespace gets every verifier it should: the webhook's cache holds
    // every namespace and policy.
    let gate = futures::stream::iter(0..ns)
        .map(|n| {
            let (client, layout) = (client.clone(), layout.clone());
            async move {
                let mv = layout.mvs_of_ns(n).last().copied();
                let want: Vec<String> = layout
                    .verifiers_for(n, mv)
                    .into_iter()
                    .map(|v| v.0)
                    .collect();
                let api = Api::<Pod>::namespaced(client, &layout.namespace(n));
                let p = pod("gate", mv.map(|m| layout.mv(m)).as_deref());
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                let start = Instant::now();
                loop {
                    let got = api.create(&dry, &p).await;
                    match &got {
                        Ok(got) if init_names(got) == want => return Ok(()),
                        _ if start.elapsed() > limit() => {
                            return Err(format!(
                                "setup: a dry run in {} does not get {want:?} after {} s: {:?}",
                                layout.namespace(n),
                                limit().as_secs(),
                                got.map(|g| init_names(&g))
                            ));
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await;
    if let Err(e) = gate {
        fail(e);
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    rss.insert("after_setup", rss_kib());
    let w0 = writes_now(&seen);

    // 2. Pods through the webhook.
    let t_create = Instant::now();
    futures::stream::iter(0..pods)
        .map(|i| {
            let (client, layout) = (client.clone(), layout.clone());
            async move {
                let p = pod(
                    &format!("p-{i}"),
                    layout.pod_mv(i).map(|m| layout.mv(m)).as_deref(),
                );
                let got = Api::<Pod>::namespaced(client, &layout.namespace(layout.pod_ns(i)))
                    .create(&PostParams::default(), &p)
                    .await
                    .map_err(|e| format!("create pod p-{i}: {e}"))?;
                let want: Vec<String> = layout.verifiers(i).into_iter().map(|v| v.0).collect();
                if init_names(&got) != want {
                    return Err(format!(
                        "pod p-{i} got init containers {:?}, want {want:?}",
                        init_names(&got)
                    ));
                }
                Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap_or_else(|e| fail(e));
    let create_s = t_create.elapsed().as_secs_f64();
    let (converge_create_s, create_cmv_s, create_mv_s) = converge_split(
        &seen,
        &layout.expected(|_, _| None),
        "after creating the pods",
        limit(),
    )
    .await;
    rss.insert("after_create", rss_kib());
    let w1 = writes_now(&seen);
    let r1 = reconciles().await;

    // 3. (a) The burst: every verifier of every pod ends.
    // (pod, its verifiers that ran again and failed)
    let write = |ids: Vec<(usize, Vec<usize>)>| {
        let (client, layout) = (client.clone(), layout.clone());
        async move {
            futures::stream::iter(ids)
                .map(|(i, reruns)| {
                    let (client, layout) = (client.clone(), layout.clone());
                    async move {
                        let v = layout.verifiers(i);
                        let status = kubelet_status(
                            &v,
                            |k| Layout::fails(i, k) || reruns.contains(&k),
                            |k| reruns.contains(&k),
                        );
                        Api::<Pod>::namespaced(client, &layout.namespace(layout.pod_ns(i)))
                            .patch_status(
                                &format!("p-{i}"),
                                &PatchParams::default(),
                                &Patch::Merge(status),
                            )
                            .await
                            .map(|_| ())
                            .map_err(|e| format!("pod p-{i} status: {e}"))
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await
                .unwrap_or_else(|e| fail(e));
        }
    };
    let governed: Vec<usize> = (0..pods)
        .filter(|&i| !layout.verifiers(i).is_empty())
        .collect();
    let t_write = Instant::now();
    write(governed.iter().map(|&i| (i, vec![])).collect()).await;
    let write_s = t_write.elapsed().as_secs_f64();
    let burst_want = layout.expected(|i, k| Some(!Layout::fails(i, k)));
    let (burst_s, burst_cmv_s, burst_mv_s) =
        converge_split(&seen, &burst_want, "after the burst", limit()).await;
    rss.insert("after_burst", rss_kib());
    // The counts are right; let the last status writes (other fields, echoes of writes in
    // flight) drain, so the single changes below are measured, and counted, alone.
    let quiet_after = Instant::now();
    let mut last = writes_now(&seen);
    let mut unchanged_since = Instant::now();
    while unchanged_since.elapsed() < Duration::from_secs(2) {
        if quiet_after.elapsed() > limit() {
            fail("status writes did not stop after the burst");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = writes_now(&seen);
        if now != last {
            last = now;
            unchanged_since = Instant::now();
        }
    }
    let quiet_s = quiet_after.elapsed().as_secs_f64() - 2.0;
    let w2 = writes_now(&seen);
    let r2 = reconciles().await;

    // 4. (b) Single changes: one verifier of one pod runs again and now fails.
    let changes = env_num("CHANGES", 5) as usize;
    let mut flipped: HashSet<(usize, usize)> = HashSet::new();
    let mut want = burst_want.clone();
    let mut single = |cluster: bool| {
        let mut picked = Vec::new();
        for r in 0..changes {
            let found = (0..pods)
                .map(|d| (r * pods / changes.max(1) + 7 + d) % pods.max(1))
                .find_map(|i| {
                    layout
                        .verifiers(i)
                        .iter()
                        .enumerate()
                        .find(|(k, (_, key))| {
                            matches!(key, Key::Cmv(_)) == cluster
                                && !Layout::fails(i, *k)
                                && !flipped.contains(&(i, *k))
                        })
                        .map(|(k, (_, key))| (i, k, key.clone()))
                });
            if let Some((i, k, key)) = found {
                flipped.insert((i, k));
                picked.push((i, k, key));
            }
        }
        picked
    };
    let cmv_changes = if cmvs > 0 { single(true) } else { vec![] };
    let mv_changes = if mvs > 0 { single(false) } else { vec![] };
    let mut single_cmv = Vec::new();
    let mut single_mv = Vec::new();
    let mut applied: Vec<(usize, usize)> = Vec::new();
    // ModelValidation reconciles from each change's write until 0.5 s later.
    let mut per_change = Vec::new();
    let reconciled = |a: Option<f64>, b: Option<f64>| b.unwrap_or(0.0) - a.unwrap_or(0.0);
    for (i, k, key) in cmv_changes.into_iter().chain(mv_changes) {
        let c = want.get_mut(&key).expect("policy");
        c.verified -= 1;
        c.failed += 1;
        let one = HashMap::from([(key.clone(), *c)]);
        // Every verifier of this pod that ran again so far (another change may have picked it).
        applied.push((i, k));
        let reruns: Vec<usize> = applied
            .iter()
            .filter(|(p, _)| *p == i)
            .map(|(_, q)| *q)
            .collect();
        let before = reconciles().await;
        let t = Instant::now();
        write(vec![(i, reruns)]).await;
        let s = t.elapsed().as_secs_f64()
            + converge(&seen, &one, &format!("single change of {key}"), limit()).await;
        match key {
            Key::Cmv(_) => single_cmv.push(s),
            Key::Mv(..) => single_mv.push(s),
        }
        // Let the controllers settle before the next change.
        tokio::time::sleep(Duration::from_millis(500)).await;
        per_change.push(reconciled(before, reconciles().await));
    }
    // Nothing else moved.
    converge(&seen, &want, "after the single changes", limit()).await;
    rss.insert("after_changes", rss_kib());
    let w3 = writes_now(&seen);
    let r3 = reconciles().await;

    // 5. (c) Admission at fixed rates (RATE, a comma-separated list; the first is the target's).
    let seconds = env_num("ADMISSION_SECONDS", 20);
    let rates: Vec<u64> = std::env::var("RATE")
        .unwrap_or_else(|_| "500".into())
        .split(',')
        .map(|r| {
            r.trim()
                .parse::<u64>()
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or_else(|| fail(format!("RATE: {r:?} is not a rate")))
        })
        .collect();
    let mut admissions = Vec::new();
    for (round, rate) in rates.into_iter().enumerate() {
        admissions.push(admission(&client, &layout, rate, seconds, round).await);
        // Let the API server drain before the next rate.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    rss.insert("after_admission", rss_kib());
    let w4 = writes_now(&seen);

    let (cmv_median, cmv_max) = median_max(&single_cmv);
    let (mv_median, mv_max) = median_max(&single_mv);
    let per_ns: Vec<usize> = (0..ns).map(|n| layout.cmvs_of_ns(n).len()).collect();
    let verifiers: usize = (0..pods).map(|i| layout.verifiers(i).len()).sum();
    let failing: usize = (0..pods)
        .map(|i| {
            (0..layout.verifiers(i).len())
                .filter(|&k| Layout::fails(i, k))
                .count()
        })
        .sum();
    writes.insert("create", delta(w0, w1));
    writes.insert("burst", delta(w1, w2));
    writes.insert("single_changes", delta(w2, w3));
    writes.insert("admission", delta(w3, w4));
    let writes: BTreeMap<&str, Value> = writes
        .into_iter()
        .map(|(k, (c, m))| (k, json!({"cmv": c, "mv": m})))
        .collect();
    println!(
        "{}",
        json!({
            "namespaces": ns, "cmvs": cmvs, "mvs": mvs, "pods": pods,
            "cmvs_per_namespace": [per_ns.iter().min(), per_ns.iter().max()],
            "labelled_pods": (0..pods).filter(|&i| layout.pod_mv(i).is_some()).count(),
            "governed_pods": governed.len(),
            "verifier_containers": verifiers, "failing_verifiers": failing,
            "setup_s": setup_s, "create_pods_s": create_s,
            "converge_after_create_s": converge_create_s,
            "converge_after_create_cmv_s": create_cmv_s,
            "converge_after_create_mv_s": create_mv_s,
            "write_statuses_s": write_s, "converge_after_burst_s": burst_s,
            "converge_after_burst_cmv_s": burst_cmv_s, "converge_after_burst_mv_s": burst_mv_s,
            "writes_quiet_after_convergence_s": quiet_s,
            "single_change_cmv_s": single_cmv, "single_change_cmv_median_s": cmv_median,
            "single_change_cmv_max_s": cmv_max,
            "single_change_mv_s": single_mv, "single_change_mv_median_s": mv_median,
            "single_change_mv_max_s": mv_max,
            "admission": admissions,
            "status_writes": writes,
            "mv_reconciles": {"burst": reconciled(r1, r2), "single_changes": reconciled(r2, r3),
                              "per_change": per_change},
            "rss_kib": rss,
        })
    );
}
