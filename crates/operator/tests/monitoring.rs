//! The dashboard and the alerts in deploy/monitoring use only metric names the operator exports,
//! cover every metric it exports, and are complete (the panels and alerts that
//! deploy/monitoring/README.md and docs/operator.md promise, each alert with its `for`, severity
//! and runbook). No cluster: the names come from `Metrics::new()`'s own exposition.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use model_validation_operator::images::verifier::VerifyStats;
use model_validation_operator::metrics::{
    MethodLabels, Metrics, PolicyPodLabels, ReconcileLabels, RefusalLabels, VerificationLabels,
};
use serde_json::Value;

/// The panels the dashboard must have, by title.
const PANELS: &[&str] = &[
    "Admissions by result",
    "Denied admissions",
    "Admission latency p50 / p99",
    "Injections by method",
    "Verification outcomes",
    "Image-volume verifications by source",
    "Webhook refusals by reason",
    "Serving certificate expiry",
    "Leader",
    "Cache synced",
    "Reconciles and errors",
    "Cluster policy pods by state",
];

/// The alerts the rules must have.
const ALERTS: &[&str] = &[
    "ModelValidationWebhookUnavailable",
    "ModelValidationCertificateExpiringSoon",
    "ModelValidationVerificationFailuresRising",
    "ModelValidationCacheUnsynced",
    "ModelValidationAdmissionLatencyHigh",
    "ModelValidationNoLeader",
];

/// Metric names the files may use that the operator does not export (Prometheus's own).
const FOREIGN: &[&str] = &["up"];

/// PromQL functions and aggregations (and Grafana's `label_values`, handled before parsing).
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "day_of_month",
    "day_of_week",
    "days_in_month",
    "delta",
    "deriv",
    "end",
    "exp",
    "floor",
    "group",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "minute",
    "month",
    "predict_linear",
    "present_over_time",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_desc",
    "sqrt",
    "start",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "stdvar_over_time",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
    "year",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Other keywords and literals.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/monitoring/grafana-dashboard.json")).unwrap()
}

fn rules() -> Value {
    yaml("deploy/monitoring/prometheus-rules.yaml")
}

/// What the operator exports: each family's name and type (from `# TYPE`), and every sample name.
struct Exported {
    families: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

impl Exported {
    /// The sample names a family of this type must show: what PromQL selects.
    fn series_of(name: &str, kind: &str) -> Vec<String> {
        match kind {
            "counter" => vec![format!("{name}_total")],
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{name}{s}"))
                .collect(),
            _ => vec![name.to_string()],
        }
    }

    /// Every name an expression may select: the sample names of the exposition.
    fn knows(&self, name: &str) -> bool {
        self.samples.contains(name)
    }

    /// The family a selected name belongs to.
    fn family_of(&self, name: &str) -> Option<&str> {
        self.families
            .iter()
            .find(|(f, kind)| Self::series_of(f, kind).iter().any(|s| s == name))
            .map(|(f, _)| f.as_str())
    }
}

/// The exposition of `Metrics::new()` with every family given a sample.
fn exported() -> Exported {
    let m = Metrics::new();
    m.admission("injected", 0.0004);
    m.image_verifications(&VerifyStats {
        cached: 1,
        verified: 2,
    });
    m.injections
        .get_or_create(&MethodLabels {
            method: "public-key".into(),
        })
        .inc();
    m.verifications
        .get_or_create(&VerificationLabels {
            method: "sigstore".into(),
            result: "failed".into(),
        })
        .inc();
    m.reconciles
        .get_or_create(&ReconcileLabels {
            result: "success".into(),
        })
        .inc();
    m.reconcile_duration.observe(0.01);
    m.reconcile_errors.inc();
    m.certificate_expiry.set(1_900_000_000);
    m.leader.set(1);
    m.cache_synced.set(1);
    m.webhook_refusals
        .get_or_create(&RefusalLabels {
            reason: "busy".into(),
        })
        .inc();
    m.cluster_policy_pods
        .get_or_create(&PolicyPodLabels {
            policy: "org".into(),
            state: "verified".into(),
        })
        .set(3);
    parse_exposition(&m.encode())
}

fn parse_exposition(text: &str) -> Exported {
    let mut families = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            families.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_string());
        }
    }
    Exported { families, samples }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// The index after the bracket that closes the one at `open`, skipping quoted strings.
fn skip_group(s: &[char], open: usize, close: char) -> Result<usize, String> {
    let start = s[open];
    let mut depth = 0;
    let mut i = open;
    while i < s.len() {
        match s[i] {
            '"' | '\'' | '`' => i = skip_string(s, i)? - 1,
            c if c == start => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(format!("unclosed '{start}' at {open}"))
}

/// The index after the string literal that starts at `open`.
fn skip_string(s: &[char], open: usize) -> Result<usize, String> {
    let quote = s[open];
    let mut i = open + 1;
    while i < s.len() {
        if s[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if s[i] == quote {
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(format!("unclosed string at {open}"))
}

/// The metric names a PromQL expression selects, in order: identifiers that are not functions,
/// keywords, label names (inside `{...}` and `by`/`without`/`on`/`ignoring`/`group_*` lists),
/// ranges (`[...]`), strings, numbers, durations or Grafana variables (`$x`, `${x}`).
/// An identifier called like a function that is not a known PromQL function is an error, and so
/// is an unbalanced bracket or string.
fn metric_names(expr: &str) -> Result<Vec<String>, String> {
    let s: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&s, i)?,
            '#' => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            '{' => i = skip_group(&s, i, '}')?,
            '[' => i = skip_group(&s, i, ']')?,
            '}' | ']' => return Err(format!("unopened '{c}' at {i}")),
            '$' => {
                i += 1;
                if s.get(i) == Some(&'{') {
                    i = skip_group(&s, i, '}')?;
                } else {
                    while i < s.len() && is_ident(s[i]) {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                // Numbers, 1e3, 0x1f and durations (5m, 1h30m).
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == '.' || s[i] == '_') {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < s.len() && is_ident(s[i]) {
                    i += 1;
                }
                let word: String = s[start..i].iter().collect();
                let lower = word.to_ascii_lowercase();
                let mut next = i;
                while next < s.len() && s[next].is_whitespace() {
                    next += 1;
                }
                let called = s.get(next) == Some(&'(');
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if called {
                        i = skip_group(&s, next, ')')?;
                    }
                } else if KEYWORDS.contains(&lower.as_str()) || FUNCTIONS.contains(&word.as_str()) {
                } else if called {
                    return Err(format!("unknown function {word}"));
                } else {
                    names.push(word);
                }
            }
            '(' => {
                depth += 1;
                i += 1;
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unopened ')' at {i}"));
                }
                i += 1;
            }
            ',' | '+' | '-' | '*' | '/' | '%' | '^' | '=' | '!' | '<' | '>' | '@' | ':' => i += 1,
            c if c.is_whitespace() => i += 1,
            c => return Err(format!("unexpected '{c}' at {i}")),
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    Ok(names)
}

/// The PromQL inside a Grafana variable query: `label_values(EXPR, label)` gives EXPR,
/// `label_values(label)` nothing, `query_result(EXPR)` EXPR, anything else itself.
fn variable_promql(query: &str) -> Option<String> {
    let q = query.trim();
    if let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return inner.rfind(',').map(|at| inner[..at].to_string());
    }
    if let Some(inner) = q
        .strip_prefix("query_result(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return Some(inner.to_string());
    }
    Some(q.to_string())
}

/// What is wrong with the names `expr` selects: names the operator does not export (and that
/// are not Prometheus's own), or an expression that does not parse.
fn unknown_metrics(expr: &str, exported: &Exported) -> Vec<String> {
    match metric_names(expr) {
        Err(e) => vec![format!("{e} in `{expr}`")],
        Ok(names) => names
            .into_iter()
            .filter(|n| !exported.knows(n) && !FOREIGN.contains(&n.as_str()))
            .collect(),
    }
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Every PromQL expression of the dashboard, named by where it is.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default().to_string();
            out.push((format!("panel {:?} {}", p["title"], t["refId"]), expr));
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap_or_default();
            if let Some(expr) = variable_promql(q) {
                out.push((format!("variable {}", v["name"]), expr));
            }
        }
    }
    out
}

/// Every alerting rule of a PrometheusRule.
fn alert_rules(rules: &Value) -> Vec<&Value> {
    rules["spec"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter(|r| r.get("alert").is_some())
        .collect()
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn doc_anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

fn is_duration(s: &str) -> bool {
    let mut digits = false;
    let mut units = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits = true;
        } else if digits && "smhdwy".contains(c) {
            if c == 'm' && chars.peek() == Some(&'s') {
                chars.next();
            }
            digits = false;
            units += 1;
        } else {
            return false;
        }
    }
    !digits && units > 0
}

/// Everything wrong with the dashboard's structure (names are checked separately).
fn dashboard_problems(dashboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if dashboard["schemaVersion"].as_u64().is_none_or(|v| v < 36) {
        problems.push(format!("schemaVersion {}", dashboard["schemaVersion"]));
    }
    let vars = dashboard["templating"]["list"].as_array();
    let ds = vars
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "datasource");
    if !ds.is_some_and(|v| v["type"] == "datasource" && v["query"] == "prometheus") {
        problems.push("no `datasource` variable of Prometheus data sources".into());
    }
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for p in panels(dashboard) {
        let title = p["title"].as_str().unwrap_or_default();
        if !ids.insert(p["id"].to_string()) {
            problems.push(format!("panel {title:?}: duplicate id {}", p["id"]));
        }
        if p["type"] == "row" {
            continue;
        }
        titles.insert(title);
        if p["datasource"]["uid"] != "${datasource}" {
            problems.push(format!("panel {title:?}: datasource {}", p["datasource"]));
        }
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if targets.is_empty() {
            problems.push(format!("panel {title:?}: no targets"));
        }
        for t in targets {
            if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problems.push(format!("panel {title:?} {}: no expr", t["refId"]));
            }
            if !t["datasource"].is_null() && t["datasource"]["uid"] != "${datasource}" {
                problems.push(format!("panel {title:?} {}: datasource", t["refId"]));
            }
        }
    }
    for want in PANELS {
        if !titles.contains(want) {
            problems.push(format!("no panel {want:?}"));
        }
    }
    problems
}

/// Everything wrong with the rules' structure (names are checked separately).
fn rule_problems(rules: &Value, docs: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if rules["apiVersion"] != "monitoring.coreos.com/v1" || rules["kind"] != "PrometheusRule" {
        problems.push(format!("{} {}", rules["apiVersion"], rules["kind"]));
    }
    let anchors = doc_anchors(docs);
    let mut names = BTreeSet::new();
    for r in alert_rules(rules) {
        let name = r["alert"].as_str().unwrap_or_default();
        if !names.insert(name) {
            problems.push(format!("{name}: twice"));
        }
        if r["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
            problems.push(format!("{name}: no expr"));
        }
        if !r["for"].as_str().is_some_and(is_duration) {
            problems.push(format!("{name}: for {}", r["for"]));
        }
        if !["critical", "warning", "info"]
            .contains(&r["labels"]["severity"].as_str().unwrap_or(""))
        {
            problems.push(format!("{name}: severity {}", r["labels"]["severity"]));
        }
        for a in ["summary", "description"] {
            if r["annotations"][a]
                .as_str()
                .is_none_or(|s| s.trim().is_empty())
            {
                problems.push(format!("{name}: no {a}"));
            }
        }
        let runbook = r["annotations"]["runbook_url"].as_str().unwrap_or("");
        match runbook.split_once("docs/operator.md#") {
            Some((_, a)) if anchors.contains(a) => {}
            _ => problems.push(format!(
                "{name}: runbook_url {runbook:?} is no heading of docs/operator.md"
            )),
        }
    }
    for want in ALERTS {
        if !names.contains(want) {
            problems.push(format!("no alert {want}"));
        }
    }
    problems
}

#[test]
fn every_exported_family_shows_the_series_promql_selects() {
    let e = exported();
    assert_eq!(e.families.len(), 13, "{:?}", e.families);
    for (family, kind) in &e.families {
        assert!(family.starts_with("model_validation_"), "{family}");
        for s in Exported::series_of(family, kind) {
            assert!(
                e.samples.contains(&s),
                "{family} ({kind}) shows no {s}: exercise it in exported(); samples {:?}",
                e.samples
            );
        }
    }
    for s in &e.samples {
        assert!(e.family_of(s).is_some(), "sample {s} of no family");
    }
    // The names the metrics table of docs/operator.md lists are the exported families.
    let docs = read("docs/operator.md");
    for (family, kind) in &e.families {
        let short = family.trim_start_matches("model_validation_");
        let shown = if kind == "counter" {
            format!("`{short}_total`")
        } else {
            format!("`{short}`")
        };
        assert!(docs.contains(&shown), "docs/operator.md lists no {shown}");
    }
}

#[test]
fn dashboard_and_rules_use_only_exported_metrics_and_show_them_all() {
    let e = exported();
    let d = dashboard();
    let r = rules();
    let mut exprs = dashboard_exprs(&d);
    for rule in alert_rules(&r) {
        exprs.push((
            format!("alert {}", rule["alert"]),
            rule["expr"].as_str().unwrap_or_default().to_string(),
        ));
    }
    assert!(exprs.len() >= PANELS.len() + ALERTS.len(), "{exprs:?}");
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for (at, expr) in &exprs {
        let names = metric_names(expr).unwrap_or_else(|err| panic!("{at}: {err}: {expr}"));
        assert!(!names.is_empty(), "{at} selects no metric: {expr}");
        used.extend(names);
        for bad in unknown_metrics(expr, &e) {
            problems.push(format!("{at}: {bad}"));
        }
    }
    assert!(
        problems.is_empty(),
        "not exported by the operator: {problems:#?}\nexported: {:?}",
        e.samples
    );
    // Every family the operator exports is on the dashboard.
    let dash_used: BTreeSet<String> = dashboard_exprs(&d)
        .iter()
        .flat_map(|(_, x)| metric_names(x).unwrap())
        .collect();
    for family in e.families.keys() {
        let on = dash_used
            .iter()
            .any(|n| e.family_of(n) == Some(family.as_str()));
        assert!(on, "{family} is on no dashboard panel");
    }
    // The README lists exactly the names used.
    let readme = read("deploy/monitoring/README.md");
    for n in &used {
        assert!(readme.contains(&format!("`{n}`")), "README lists no `{n}`");
    }
}

#[test]
fn dashboard_has_its_panels_and_the_rules_their_alerts() {
    let d = dashboard();
    let problems = dashboard_problems(&d);
    assert!(problems.is_empty(), "{problems:#?}");
    let docs = read("docs/operator.md");
    let problems = rule_problems(&rules(), &docs);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(alert_rules(&rules()).len() >= 4);
    assert!(
        docs.contains("deploy/monitoring/"),
        "docs/operator.md links deploy/monitoring/"
    );
}

#[test]
fn podmonitor_scrapes_the_operators_health_port() {
    let pm = yaml("deploy/monitoring/podmonitor.yaml");
    let dep = yaml("deploy/base/deployment.yaml");
    let pod_labels = &dep["spec"]["template"]["metadata"]["labels"];
    let selector = pm["spec"]["selector"]["matchLabels"].as_object().unwrap();
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(&pod_labels[k], v, "pod template label {k}");
    }
    let ports: Vec<&Value> = dep["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .collect();
    for ep in pm["spec"]["podMetricsEndpoints"].as_array().unwrap() {
        let port = ports
            .iter()
            .find(|p| p["name"] == ep["port"])
            .unwrap_or_else(|| panic!("no container port {}", ep["port"]));
        assert_eq!(
            port["containerPort"], 8081,
            "the health address serves /metrics"
        );
        assert_eq!(ep["path"], "/metrics");
    }
    assert_eq!(pm["metadata"]["namespace"], dep["metadata"]["namespace"]);
}

#[test]
fn the_tokenizer_finds_metric_names_and_nothing_else() {
    assert_eq!(
        metric_names(
            r#"sum by (result, le) (rate(a_total{result="denied", ns=~"$namespace"}[$__rate_interval]))
               / on(pod) group_left(node) b:rec offset 5m > bool 1e3 and absent(up{job=~".*x.*"} == 1)
               or -0.5 * time() unless c{q="}[("}[1h30m:1m] # d"#
        )
        .unwrap(),
        ["a_total", "b:rec", "up", "c"]
    );
    assert_eq!(
        metric_names("histogram_quantile(0.99, sum without (pod) (rate(h_bucket[5m])))").unwrap(),
        ["h_bucket"]
    );
    assert!(metric_names("rat(x[5m])").unwrap_err().contains("rat"));
    assert!(metric_names(r#"x{a="b""#).is_err());
    assert!(metric_names("sum(x").is_err());
    assert!(metric_names("x)").is_err());
    assert_eq!(
        variable_promql("label_values(model_validation_leader, namespace)").as_deref(),
        Some("model_validation_leader")
    );
    assert_eq!(variable_promql("label_values(namespace)"), None);
    assert!(is_duration("5m") && is_duration("1h30m") && is_duration("500ms"));
    assert!(!is_duration("5") && !is_duration("m") && !is_duration("5 m"));
    assert_eq!(anchor(" Dashboards and alerts"), "dashboards-and-alerts");
}

#[test]
fn the_checks_catch_wrong_names_and_broken_files() {
    let e = exported();
    // Names the operator does not export, the base names of counters and histograms, typos.
    for (expr, bad) in [
        (
            "sum(rate(model_validation_nonexistent_total[5m]))",
            "model_validation_nonexistent_total",
        ),
        (
            "rate(model_validation_admission_requests[5m])",
            "model_validation_admission_requests",
        ),
        (
            "rate(model_validation_admission_duration_seconds[5m])",
            "model_validation_admission_duration_seconds",
        ),
        (
            "model_validation_cache_synced_total",
            "model_validation_cache_synced_total",
        ),
        ("model_valdation_leader == 0", "model_valdation_leader"),
    ] {
        assert_eq!(unknown_metrics(expr, &e), [bad], "{expr}");
    }
    assert!(
        unknown_metrics(
            "histogram_quantile(0.99, sum by (le) (rate(model_validation_admission_duration_seconds_bucket[5m]))) and up",
            &e
        )
        .is_empty()
    );
    assert_eq!(unknown_metrics("rat(up[5m])", &e).len(), 1);

    // A dashboard without a panel, with a panel on another data source, a repeated id or an
    // empty query.
    let good = dashboard();
    assert!(dashboard_problems(&good).is_empty());
    let mut d = good.clone();
    let list = d["panels"].as_array_mut().unwrap();
    list.retain(|p| p["title"] != "Leader");
    assert_eq!(dashboard_problems(&d), [r#"no panel "Leader""#]);
    let mut d = good.clone();
    let i = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["title"] == "Cache synced")
        .unwrap();
    d["panels"][i]["datasource"]["uid"] = "prometheus".into();
    d["panels"][i]["targets"][0]["expr"] = " ".into();
    d["panels"][i]["id"] = d["panels"][0]["id"].clone();
    assert_eq!(
        dashboard_problems(&d).len(),
        3,
        "{:?}",
        dashboard_problems(&d)
    );
    let mut d = good.clone();
    d["templating"]["list"] = Value::Array(vec![]);
    d["schemaVersion"] = 27.into();
    assert_eq!(
        dashboard_problems(&d).len(),
        2,
        "{:?}",
        dashboard_problems(&d)
    );

    // Rules without `for`, severity, description or an alert, or with a runbook to nowhere.
    let docs = read("docs/operator.md");
    let good = rules();
    assert!(rule_problems(&good, &docs).is_empty());
    let find = |r: &Value, name: &str| {
        let rules = r["spec"]["groups"][0]["rules"].as_array().unwrap();
        rules.iter().position(|x| x["alert"] == name).unwrap()
    };
    let mut r = good.clone();
    let i = find(&r, "ModelValidationCacheUnsynced");
    r["spec"]["groups"][0]["rules"][i]
        .as_object_mut()
        .unwrap()
        .remove("for");
    r["spec"]["groups"][0]["rules"][i]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("severity");
    r["spec"]["groups"][0]["rules"][i]["annotations"]["description"] = "".into();
    r["spec"]["groups"][0]["rules"][i]["annotations"]["runbook_url"] =
        "https://example.com/docs/operator.md#no-such-heading".into();
    assert_eq!(
        rule_problems(&r, &docs).len(),
        4,
        "{:?}",
        rule_problems(&r, &docs)
    );
    let mut r = good.clone();
    let i = find(&r, "ModelValidationNoLeader");
    r["spec"]["groups"][0]["rules"][i]["alert"] = "Renamed".into();
    assert_eq!(
        rule_problems(&r, &docs),
        ["no alert ModelValidationNoLeader"]
    );
    // The runbook anchors exist only because docs/operator.md has the headings.
    let without: String = docs
        .lines()
        .filter(|l| !l.starts_with("#### ModelValidation"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(rule_problems(&good, &without).len(), ALERTS.len());

    // An exposition without a family's samples is noticed.
    let partial = parse_exposition(
        "# TYPE model_validation_leader gauge\n# TYPE model_validation_x counter\nmodel_validation_leader 1\n# EOF\n",
    );
    assert!(partial.knows("model_validation_leader"));
    assert!(!partial.knows("model_validation_x_total"));
}
