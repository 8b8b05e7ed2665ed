use super::*;
use crate::webhook::listener::Limits;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{Value, json};

/// Sizes of the Pod schema's list elements, by schema name; a list the test does not know
/// fails it, so that a new Kubernetes version cannot slip a large element past the price.
fn element_size(schema_name: &str) -> Option<usize> {
    macro_rules! sizes {
        ($($m:ident :: $t:ident),* $(,)?) => {
            [$((stringify!($t), size_of::<$m::$t>())),*]
        };
    }
    let table = sizes![
        core::Container,
        core::ContainerPort,
        core::ContainerResizePolicy,
        core::ContainerStatus,
        core::DownwardAPIVolumeFile,
        core::EnvFromSource,
        core::EnvVar,
        core::EphemeralContainer,
        core::HTTPHeader,
        core::HostAlias,
        core::HostIP,
        core::KeyToPath,
        core::LocalObjectReference,
        core::NodeSelectorRequirement,
        core::NodeSelectorTerm,
        core::PodAffinityTerm,
        core::PodCondition,
        core::PodDNSConfigOption,
        core::PodIP,
        core::PodReadinessGate,
        core::PodResourceClaim,
        core::PodResourceClaimStatus,
        core::PodSchedulingGate,
        core::PreferredSchedulingTerm,
        core::ResourceClaim,
        core::ResourceHealth,
        core::ResourceStatus,
        core::Sysctl,
        core::Toleration,
        core::TopologySpreadConstraint,
        core::Volume,
        core::VolumeDevice,
        core::VolumeMount,
        core::VolumeMountStatus,
        core::VolumeProjection,
        core::WeightedPodAffinityTerm,
        meta::LabelSelectorRequirement,
        meta::ManagedFieldsEntry,
        meta::OwnerReference,
    ];
    let short = schema_name.rsplit('.').next()?;
    table.iter().find(|(n, _)| *n == short).map(|(_, s)| *s)
}

/// The bytes a list element under `key` is priced for (as the typed struct).
fn priced_element_bytes(key: &str) -> usize {
    let parent = Frame {
        is_array: false,
        once: false,
        class: Class::Other,
        path: Path::Elsewhere,
        nonempty: true,
    };
    match open(Some(&parent), true, key.as_bytes(), false).class {
        Class::Volume => size_of::<core::Volume>(),
        Class::Container => max(
            size_of::<core::Container>(),
            size_of::<core::EphemeralContainer>(),
        ),
        Class::Status => size_of::<core::ContainerStatus>(),
        Class::Other => OTHER_ELEMENT_BYTES,
        class => panic!("{key} outside metadata priced as {class:?}"),
    }
}

#[test]
fn every_list_of_the_pod_schema_is_priced_at_least_as_its_element() {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<core::Pod>();
    let schema = serde_json::to_value(&schema).unwrap();
    let defs = schema["$defs"].as_object().unwrap();
    let mut lists = 0;
    for definition in defs.values().chain([&schema]) {
        for (key, property) in definition["properties"].as_object().into_iter().flatten() {
            let Some(item) = property["items"]["$ref"].as_str() else {
                continue;
            };
            let size = element_size(item)
                .unwrap_or_else(|| panic!("{item} (in {key:?}) has no size: add it to the table"));
            assert!(
                size <= priced_element_bytes(key),
                "{key:?} lists {item} of {size} bytes, priced for {}",
                priced_element_bytes(key)
            );
            lists += 1;
        }
    }
    assert!(lists > 40, "the walk found only {lists} lists");
}

/// A pod with `containers` containers of `env` environment variables each, and the
/// `managedFields` the API server records for it.
fn pod(containers: usize, env: usize) -> Value {
    let names = |c: usize| (0..env).map(move |e| format!("VARIABLE_{c}_{e}"));
    let containers_json: Vec<Value> = (0..containers)
        .map(|c| {
            json!({
                "name": format!("c{c}"),
                "image": "registry.example.com/serving/runtime:1.2.3",
                "env": names(c).map(|n| json!({"name": n, "value": "some value"})).collect::<Vec<_>>(),
                "volumeMounts": [{"name": "model", "mountPath": "/models", "readOnly": true}],
                "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            })
        })
        .collect();
    let fields: serde_json::Map<String, Value> = (0..containers)
        .map(|c| {
            let env: serde_json::Map<String, Value> = names(c)
                .map(|n| {
                    let key = format!("k:{{\"name\":\"{n}\"}}");
                    (key, json!({".": {}, "f:name": {}, "f:value": {}}))
                })
                .chain([(".".to_string(), json!({}))])
                .collect();
            (
                format!("k:{{\"name\":\"c{c}\"}}"),
                json!({".": {}, "f:env": env, "f:image": {}, "f:name": {}, "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}}}}),
            )
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "server",
            "namespace": "team",
            "labels": {"validation.ml.sigstore.dev/ml": "mv"},
            "managedFields": [{
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2026-11-26T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:validation.ml.sigstore.dev/ml": {}}}, "f:spec": {"f:containers": fields}},
            }],
        },
        "spec": {
            "containers": containers_json,
            "volumes": [{"name": "model", "persistentVolumeClaim": {"claimName": "weights"}}],
        },
    })
}

fn update_review(pod: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team",
            "operation": "UPDATE",
            "userInfo": {"username": "alice"},
            "object": pod,
            "oldObject": pod,
        },
    }))
    .unwrap()
}

#[test]
fn large_legitimate_pods_reviewed_on_update_fit_the_budget() {
    let max = Limits::default().max_decode_bytes;
    for (containers, env) in [(1, 1000), (3, 100), (10, 50), (10, 200), (20, 100)] {
        let body = update_review(&pod(containers, env));
        let cost = decode_cost(&body);
        assert!(
            cost <= max,
            "{containers} containers × {env} env: {cost} > {max} ({} KiB body)",
            body.len() / 1024
        );
    }
}

#[test]
fn tiny_json_objects_that_decode_to_large_structs_are_priced_as_them() {
    // 3 MiB of `{"name":""}` in `volumes`: 12 bytes each, a 3 KiB Volume each once decoded.
    let volumes = vec![json!({"name": ""}); 3 * 1024 * 1024 / 12];
    let attack = |key: &str| {
        let mut pod = pod(1, 1);
        pod["spec"][key] = Value::Array(volumes.clone());
        decode_cost(&update_review(&pod))
    };
    let max = Limits::default().max_decode_bytes;
    assert!(attack("volumes") > max);
    assert!(attack("initContainers") > max);
    // Written with an escape, the key is still `volumes` to the decoder.
    let escaped = br#"{"request":{"object":{"spec":{"vol\u0075mes":[{"name":""}]}}}}"#;
    let plain = br#"{"request":{"object":{"spec":{"volumes":[{"name":""}]}}}}"#;
    assert!(decode_cost(escaped) >= decode_cost(plain));
    assert!(decode_cost(plain) >= VOLUME_BYTES);
}

#[test]
fn only_the_pods_own_managed_fields_are_priced_as_dropped() {
    let entries = r#"[{"fieldsV1":{"f:a":{"f:b":{}}}},{"fieldsV1":{"f:c":{"f:d":{}}}}]"#;
    let at = |path: &str| {
        let body = path.replace("LIST", entries);
        decode_cost(body.as_bytes())
    };
    let own = at(r#"{"request":{"object":{"metadata":{"managedFields":LIST}}}}"#);
    let old = at(r#"{"request":{"oldObject":{"metadata":{"managedFields":LIST}}}}"#);
    let template = at(
        r#"{"request":{"object":{"spec":{"volumes":[{"ephemeral":{"volumeClaimTemplate":{"metadata":{"managedFields":LIST}}}}]}}}}"#,
    );
    let unknown = at(r#"{"request":{"object":{"spec":{"managedFields":LIST}}}}"#);
    assert!(old < own, "{old} {own}: the old object is only read");
    assert!(own < unknown, "{own} {unknown}");
    assert!(template > unknown, "{template} {unknown}");
}

#[test]
fn empty_objects_cost_less_only_where_they_allocate_less() {
    let in_fields = decode_cost(
        br#"{"request":{"object":{"metadata":{"managedFields":[{"fieldsV1":{"a":{},"b":{}}}]}}}}"#,
    );
    let in_fields_full = decode_cost(br#"{"request":{"object":{"metadata":{"managedFields":[{"fieldsV1":{"a":{"":1},"b":{"":1}}}]}}}}"#);
    assert!(in_fields < in_fields_full);
    // An empty element of a list still decodes to a whole struct.
    let empties = decode_cost(br#"{"volumes":[{},{}]}"#);
    assert!(empties >= 2 * VOLUME_BYTES);
    let managed_entries =
        decode_cost(br#"{"request":{"object":{"metadata":{"managedFields":[{},{}]}}}}"#);
    assert!(managed_entries >= 2 * 2 * size_of::<meta::ManagedFieldsEntry>());
}

#[test]
fn short_members_are_priced_as_the_values_they_become() {
    // `[0,0,…]`: two bytes per element, 32 bytes per `Value` in each rendering.
    let body = format!("{{\"args\":[{}0]}}", "0,".repeat(100_000));
    assert!(
        decode_cost(body.as_bytes()) >= 100_000 * (2 * size_of::<Value>() + size_of::<String>())
    );
}

#[test]
fn nesting_beyond_the_decoders_limit_is_priceless() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(decode_cost(nested(MAX_DEPTH).as_bytes()) < usize::MAX);
    assert_eq!(decode_cost(nested(MAX_DEPTH + 1).as_bytes()), usize::MAX);
    // serde_json agrees on where the limit is.
    assert!(serde_json::from_str::<Value>(&nested(MAX_DEPTH)).is_ok());
    assert!(serde_json::from_str::<Value>(&nested(MAX_DEPTH + 1)).is_err());
}

#[test]
fn strings_hide_brackets_and_keys() {
    let plain = decode_cost(br#"{"a":"[{\"volumes\":[{}]}]"}"#);
    assert!(plain < OTHER_BYTES + 64 * BYTE_COST + 2 * MEMBER_BYTES + VOLUME_BYTES);
    assert!(plain < VOLUME_BYTES);
}

#[test]
fn members_cover_map_entries_and_list_elements() {
    // Labels as a pod author may write them: 7 bytes per entry, each a B-tree entry of two
    // Strings in the pod, its clone and the decision's copy, and a Value entry per rendering.
    const {
        assert!(MAP_ENTRY_BYTES >= (11 * 2 * size_of::<String>()) / 5);
        assert!(VALUE_ENTRY_BYTES >= (11 * (size_of::<String>() + size_of::<Value>())) / 5);
        assert!(MEMBER_BYTES >= 3 * MAP_ENTRY_BYTES + 2 * VALUE_ENTRY_BYTES);
        assert!(MEMBER_BYTES >= 3 * size_of::<String>() + 2 * size_of::<Value>());
    }
    let labels: String = (0..10_000).map(|i| format!("\"l{i}\":\"\",")).collect();
    let body =
        format!(r#"{{"request":{{"object":{{"metadata":{{"labels":{{{labels}"z":""}}}}}}}}}}"#);
    assert!(decode_cost(body.as_bytes()) >= 10_000 * MEMBER_BYTES);
}

#[test]
#[ignore = "prints the prices of the pod shapes docs/performance.md reports"]
fn print_prices() {
    for (c, e) in [(3, 100), (10, 200), (10, 400), (1, 4000)] {
        let b = update_review(&pod(c, e));
        println!(
            "{c} x {e}: body {} KiB, price {:.1} MiB",
            b.len() / 1024,
            decode_cost(&b) as f64 / 1048576.0
        );
    }
}
