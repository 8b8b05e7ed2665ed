//! Strict bundles: a signature file follows the protobuf JSON mapping's default. Every known
//! bundle fixture parses (in its JSON or its proto field names); the same bundle with one extra
//! field, at any object level, is refused naming the field and where it is; deep nesting never
//! crashes. The in-toto statement ignores unknown fields (the in-toto rule) except in
//! `serialization`.

mod support;

use std::path::PathBuf;
use std::sync::LazyLock;

use model_signing::bundle::{Bundle, encode_base64};
use model_signing::statement;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Every bundle fixture that is meant to parse: what the peer, upstream and the OMS vectors
/// wrote (the OMS `invalid/` vectors are refused for other reasons and are not here).
static FIXTURES: LazyLock<Vec<(String, Value)>> = LazyLock::new(|| {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::from(support::FIXTURES)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.display().to_string();
            if path.is_dir() {
                if !name.ends_with("/invalid") {
                    dirs.push(path);
                }
                continue;
            }
            if !(name.ends_with(".sig") || name.ends_with(".bundle.json")) {
                continue;
            }
            let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap()) else {
                continue;
            };
            if v.get("mediaType").is_some() {
                out.push((name, v));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 30, "only {} bundle fixtures found", out.len());
    out
});

/// A path to an object inside a JSON value, and how the error renders it.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn render(path: &[Step]) -> String {
    if path.is_empty() {
        return "the top level".into();
    }
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Every object in `v`, by path.
fn objects(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            out.push(path.clone());
            for (k, x) in m {
                path.push(Step::Key(k.clone()));
                objects(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(Step::Index(i));
                objects(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn object_at<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Map<String, Value> {
    let mut cur = v;
    for step in path {
        cur = match step {
            Step::Key(k) => cur.get_mut(k).unwrap(),
            Step::Index(i) => cur.get_mut(*i).unwrap(),
        };
    }
    cur.as_object_mut().unwrap()
}

/// The fixture whose path ends with `suffix`; it parses as it is (the twin of each test that
/// alters it).
fn fixture_value(suffix: &str) -> Value {
    let (_, v) = FIXTURES.iter().find(|(n, _)| n.ends_with(suffix)).unwrap();
    parse(v).unwrap();
    v.clone()
}

fn parse(v: &Value) -> Result<Bundle, String> {
    Bundle::from_slice(&serde_json::to_vec(v).unwrap()).map_err(|e| e.to_string())
}

/// Asserts that `v` is refused with a message containing `expected`.
fn refused(v: &Value, expected: &str) {
    let err = parse(v).unwrap_err();
    assert!(err.contains(expected), "expected {expected:?} in {err:?}");
}

/// Renames every key to its proto (snake_case) spelling.
fn snake_case(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let mut s = String::new();
                    for c in k.chars() {
                        if c.is_ascii_uppercase() {
                            s.push('_');
                            s.push(c.to_ascii_lowercase());
                        } else {
                            s.push(c);
                        }
                    }
                    (s, snake_case(x))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(snake_case).collect()),
        other => other.clone(),
    }
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        Just(serde_json::json!({"a": [1, {"b": null}]})),
    ]
}

#[test]
fn every_fixture_parses() {
    for (name, v) in FIXTURES.iter() {
        parse(v).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn proto_field_names_are_accepted_and_mean_the_same() {
    for (name, v) in FIXTURES.iter() {
        let camel = parse(v).unwrap().to_json();
        let snake = parse(&snake_case(v)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(snake.to_json(), camel, "{name}");
    }
}

#[test]
fn both_spellings_of_one_field_are_refused() {
    let mut v = fixture_value("key-p256.model.sig");
    let vm = v["verificationMaterial"].clone();
    v.as_object_mut()
        .unwrap()
        .insert("verification_material".into(), vm);
    refused(&v, "\"verificationMaterial\" is given twice");
}

#[test]
fn an_array_is_not_a_message() {
    // serde's derived structs would read a message from an array of its fields in order.
    let mut v = fixture_value("key-p256.model.sig");
    let env = &v["dsseEnvelope"];
    let as_array = serde_json::json!([env["payload"], env["payloadType"], env["signatures"]]);
    v["dsseEnvelope"] = as_array;
    refused(&v, "expected a JSON object (Envelope) at dsseEnvelope");
    assert!(Bundle::from_slice(b"[]").is_err());
}

#[test]
fn two_kinds_of_material_are_refused() {
    let mut v = fixture_value("cert-p256.model.sig");
    v["verificationMaterial"]["publicKey"] = serde_json::json!({"hint": "00"});
    refused(
        &v,
        "publicKey and verificationMaterial.x509CertificateChain are both given",
    );
}

#[test]
fn an_unknown_field_holding_200000_nested_arrays_is_refused() {
    let sample =
        std::fs::read_to_string(support::fixture("peer-samples/key-p256.model.sig")).unwrap();
    let body = sample.strip_suffix('}').unwrap();
    let hostile = format!("{body},\"foo\":{}}}", nested_arrays(200_000));
    let err = Bundle::from_slice(hostile.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown field \"foo\" at the top level"),
        "{err}"
    );
    // The same nesting in a known field is refused too (serde_json's depth limit), and so is
    // a field name that opens a deep object.
    let known = format!(
        "{{\"mediaType\":\"x\",\"verificationMaterial\":{{\"tlogEntries\":{}}}}}",
        nested_arrays(200_000)
    );
    assert!(Bundle::from_slice(known.as_bytes()).is_err());
    let objects = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert!(Bundle::from_slice(objects.as_bytes()).is_err());
}

#[test]
fn statements_ignore_unknown_fields_except_in_serialization() {
    let b = Bundle::from_slice(
        &std::fs::read(support::fixture("peer-samples/key-p256.model.sig")).unwrap(),
    )
    .unwrap();
    let payload = b.envelope().unwrap().payload_bytes().unwrap();
    let v: Value = serde_json::from_slice(&payload).unwrap();
    // in-toto: consumers MUST ignore unrecognized fields. Deep nesting there is skipped
    // without recursion (200,000 levels, beyond serde_json's own depth limit of 128).
    let levels: [&[&str]; 4] = [
        &[],
        &["subject", "0"],
        &["predicate"],
        &["predicate", "resources", "0"],
    ];
    for level in levels {
        let mut w = v.clone();
        let mut obj = &mut w;
        for k in level {
            obj = match k.parse::<usize>() {
                Ok(i) => &mut obj[i],
                Err(_) => &mut obj[*k],
            };
        }
        obj.as_object_mut()
            .unwrap()
            .insert("extension".into(), Value::String("MARK".into()));
        let s = serde_json::to_string(&w)
            .unwrap()
            .replace("\"MARK\"", &nested_arrays(200_000));
        let m = statement::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{level:?}: {e}"));
        assert_eq!(m.resources.len(), 7);
    }
    let mut w = v.clone();
    w["predicate"]["serialization"]["chunk_size"] = Value::from(4096);
    let err = statement::parse(&serde_json::to_vec(&w).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field \"chunk_size\""), "{err}");
}

#[test]
fn the_payload_round_trips_through_base64_unchanged() {
    // A twin for the tests above: the strict parse keeps the payload bytes as written.
    for (name, v) in FIXTURES.iter() {
        let b = parse(v).unwrap();
        let Ok(env) = b.envelope() else { continue };
        let p = env
            .payload_bytes()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            encode_base64(&p).trim_end_matches('='),
            env.payload.trim_end_matches('=')
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn an_extra_field_anywhere_is_refused_and_named(
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        suffix in "[a-zA-Z0-9_]{0,10}",
        value in json_value(),
    ) {
        let (name, original) = &FIXTURES[which.index(FIXTURES.len())];
        let mut places = Vec::new();
        objects(original, &mut Vec::new(), &mut places);
        let place = &places[at.index(places.len())];
        let field = format!("unknownExtra{suffix}");
        let mut v = original.clone();
        object_at(&mut v, place).insert(field.clone(), value);
        let err = parse(&v).expect_err(name);
        let expected = format!("unknown field {field:?} at {}", render(place));
        prop_assert!(err.contains(&expected), "{}: expected {:?} in {:?}", name, expected, err);
        // Its twin: without the extra field, the same bundle parses.
        prop_assert!(parse(original).is_ok());
    }
}

proptest! {
    // Each case parses up to a megabyte of brackets: fewer cases.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn deep_nesting_never_crashes(
        depth in 1usize..300_000,
        open in prop::sample::select(vec!["[", "{\"a\":", "{\"mediaType\":"]),
        at_top in any::<bool>(),
    ) {
        let close = if open == "[" { "]" } else { "}" };
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let doc = if at_top {
            nested
        } else {
            format!("{{\"verificationMaterial\":{{\"publicKey\":{nested}}}}}")
        };
        prop_assert!(Bundle::from_slice(doc.as_bytes()).is_err());
        prop_assert!(statement::parse(doc.as_bytes()).is_err());
    }
}
