//! The JSON Schema of rule test files (`examples/rules/test-file.schema.json`) that
//! editors use: every test file of the library validates against it, it agrees with the
//! runner on what a test file is, and every effect a script can return fits it.

use std::path::{Path, PathBuf};

use scripting::{Input, Sandbox};
use serde_json::{Value, json};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules")
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(examples().join("test-file.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert!(jsonschema::meta::is_valid(&schema), "the schema is a valid JSON Schema");
    jsonschema::validator_for(&schema).unwrap()
}

fn problems(v: &jsonschema::Validator, file: &Value) -> Vec<String> {
    v.iter_errors(file).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn every_test_file_of_the_library_validates_against_the_schema() {
    let v = validator();
    let files = scripting::testfile::find(&examples()).unwrap();
    assert!(files.len() >= 10, "the library's test files: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problems(&v, &json), Vec::<String>::new(), "{}", file.display());
        assert_eq!(json["$schema"], "test-file.schema.json", "{} names the schema for editors", file.display());
        scripting::testfile::parse(&text).unwrap();
    }
}

#[test]
fn the_schema_and_the_runner_agree_on_what_a_test_file_is() {
    let v = validator();
    let case = |extra: Value| {
        let mut c = json!({"name": "c", "event": {"type": "checked_in"}});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"rule": "r.rhai", "cases": [c]})
    };
    let award = json!({"kind": "award", "currency": "points", "amount": 5, "memo": ""});
    let good = [
        case(json!({"expect": []})),
        case(json!({"expect": [award]})),
        case(
            json!({"expect": [{"kind": "award", "currency": "points", "amount": 5, "memo": "", "expires_in_days": null}]}),
        ),
        case(
            json!({"expect": [{"kind": "award", "currency": "points", "amount": 5, "memo": "x", "expires_in_days": 30}]}),
        ),
        case(json!({"expect_error": "script_error"})),
        case(json!({"member": {"profile": {"birthday": "1990-05-01", "gender": "female"}, "locks": [{"total": 10}]},
            "expect": []})),
        case(json!({"event": {"type": "x", "occurred_at": "2026-11-30T23:59:00+08:00", "day": "2026-11-30",
            "data": {"a": 1}}, "params": {"n": 1}, "expect": []})),
        json!({"$schema": "test-file.schema.json", "rule": "r.rhai", "params": {}, "cases": [{"name": "c",
            "event": {"type": "x"}, "expect": [{"kind": "tag", "name": "vip"}, {"kind": "deny", "reason": "no"}]}]}),
    ];
    for file in good {
        assert_eq!(problems(&v, &file), Vec::<String>::new(), "{file}");
        scripting::testfile::parse(&file.to_string()).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let bad = [
        // An award without its memo (award(currency, amount) has memo "").
        case(json!({"expect": [{"kind": "award", "currency": "points", "amount": 5}]})),
        case(json!({"expect": [{"kind": "bonus", "amount": 5}]})),
        case(json!({"expect": [{"kind": "tag", "name": "vip", "extra": 1}]})),
        case(json!({"expect": [], "surprise": 1})),
        case(json!({"member": {"streak": 1, "mood": "good"}, "expect": []})),
        case(json!({"event": {"type": "x", "when": "now"}, "expect": []})),
        json!({"rule": "r.rhai"}),
        json!({"cases": []}),
    ];
    for file in bad {
        assert!(!problems(&v, &file).is_empty(), "the schema refuses {file}");
        assert!(scripting::testfile::parse(&file.to_string()).is_err(), "the runner refuses {file}");
    }
    // The runner says "give exactly one of expect and expect_error" when it runs such a
    // case; the schema says so at once.
    assert!(!problems(&v, &case(json!({}))).is_empty());
    assert!(!problems(&v, &case(json!({"expect": [], "expect_error": "x"}))).is_empty());
}

#[test]
fn every_effect_a_script_returns_has_the_shape_the_schema_documents() {
    let v = validator();
    let sandbox = Sandbox::new();
    let script = r#"[award("points", 5), award("points", 5, "m"), award_expiring("points", 5, 30, "m"),
        deduct("points", 1, "m"), award_referrer(1, "points", 2, "m"), lock("points", 100, 10, "m"),
        accelerate(0, 3, "m"), set_counter("n", -2), tag("vip"), deny("no")]"#;
    let ast = sandbox.compile(script).unwrap();
    let effects = sandbox.run(&ast, &Input::default()).unwrap();
    assert_eq!(effects.len(), 10);
    let file = json!({"rule": "r.rhai", "cases": [{"name": "all", "event": {"type": "x"}, "expect": effects}]});
    assert_eq!(problems(&v, &file), Vec::<String>::new(), "{file}");
}
