//! R3: hostile scripts fail cleanly, each with a clear kind of error, quickly.

use std::time::{Duration, Instant};

use scripting::{Effect, EventInput, Input, Sandbox};

fn input() -> Input {
    Input { event: EventInput { kind: "checked_in".into(), ..Default::default() }, ..Default::default() }
}

/// Compiles and runs; returns the error kind (or "compile" for a compile error).
fn fails(sandbox: &Sandbox, script: &str) -> (String, String) {
    let started = Instant::now();
    let out = match sandbox.compile(script) {
        Err(e) => ("compile".to_string(), e.message),
        Ok(ast) => match sandbox.run(&ast, &input()) {
            Err(e) => (e.kind.to_string(), e.message),
            Ok(effects) => panic!("{script:?} succeeded with {effects:?}"),
        },
    };
    assert!(started.elapsed() < Duration::from_secs(2), "{script:?} took {:?}", started.elapsed());
    out
}

#[test]
fn every_hostile_script_fails_with_its_own_reason() {
    let sb = Sandbox::new();
    let many_vars: String = (0..2000).map(|i| format!("let v{i} = {i};\n")).collect();
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("infinite loop", "loop { }".into(), &["too_many_operations", "timeout"]),
        ("busy while", "let x = 0; while true { x += 1; }".into(), &["too_many_operations", "timeout"]),
        ("deep recursion", "fn f(n) { f(n + 1) } f(0)".into(), &["limit"]),
        ("string bomb", "let s = \"xxxxxxxx\"; loop { s += s; }".into(), &["limit"]),
        ("array bomb", "let a = []; loop { a.push(1); }".into(), &["limit"]),
        (
            "map bomb",
            "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }".into(),
            &["limit", "too_many_operations", "timeout"],
        ),
        ("thousands of variables", many_vars, &["limit", "compile"]),
        ("eval", "eval(\"1 + 1\")".into(), &["compile"]),
        ("import", "import \"os\" as os; 1".into(), &["compile"]),
        (
            "huge result",
            "let a = []; for i in 0..900 { a.push(award(\"points\", 1)); } a".into(),
            &["bad_effects", "limit"],
        ),
        ("too many effects", "let a = []; for i in 0..60 { a.push(tag(\"t\")); } a".into(), &["bad_effects"]),
        ("integer overflow", "let x = 9223372036854775807; x + 1".into(), &["script_error"]),
        ("division by zero", "let z = 0; 10 / z".into(), &["script_error"]),
        ("undefined variable", "award(\"points\", nope)".into(), &["compile", "script_error"]),
        ("not an effect", "42".into(), &["bad_effects"]),
        ("bad amount", "award(\"points\", -5)".into(), &["bad_effects"]),
        ("too deep referral", "award_referrer(4, \"points\", 5, \"\")".into(), &["bad_effects"]),
        ("float amount", "award(\"points\", 1.5)".into(), &["script_error"]),
        ("deep expression", format!("{}1{}", "(".repeat(200), ")".repeat(200)), &["compile"]),
        ("huge script", format!("// {}\n1", "x".repeat(70_000)), &["compile"]),
    ];
    for (name, script, kinds) in cases {
        let (kind, message) = fails(&sb, &script);
        assert!(kinds.contains(&kind.as_str()), "{name}: got {kind}: {message}");
        assert!(!message.is_empty(), "{name}: empty message");
    }
}

#[test]
fn the_sandbox_still_works_after_hostile_scripts() {
    let sb = Sandbox::new();
    let _ = fails(&sb, "loop { }");
    let ast = sb.compile("award(\"points\", event.data.n * 2, \"double\")").unwrap();
    let mut i = input();
    i.event.data = serde_json::json!({"n": 21});
    assert_eq!(
        sb.run(&ast, &i).unwrap(),
        vec![Effect::Award { currency: "points".into(), amount: 42, memo: "double".into(), expires_in_days: None }]
    );
}

#[test]
fn a_long_running_script_is_stopped_by_the_wall_clock() {
    let sb = Sandbox::new();
    // Each iteration is a few operations but sorting a 1000-element array is costly in
    // time, not in counted operations.
    let ast = sb.compile("let a = []; for i in 0..1000 { a.push(1000 - i); } loop { a.sort(); a.reverse(); }").unwrap();
    let started = Instant::now();
    let e = sb.run(&ast, &input()).unwrap_err();
    assert!(["timeout", "too_many_operations"].contains(&e.kind), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[test]
fn compile_errors_name_line_and_column() {
    let sb = Sandbox::new();
    let e = sb.compile("let x = 1;\nlet y = ;\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.column > 0);
}

#[test]
fn scripts_read_event_member_and_params() {
    let sb = Sandbox::new();
    let ast = sb
        .compile(
            r#"
            let m = member.level.benefits.earn_multiplier;
            let pts = (event.data.amount_fen / 100 * params.per_yuan * m).to_int();
            [award("points", pts, "purchase"), tag("buyer"), set_counter("orders", member.lifetime)]
            "#,
        )
        .unwrap();
    let mut i = input();
    i.event.kind = "order_completed".into();
    i.event.data = serde_json::json!({"amount_fen": 12800});
    i.params = serde_json::json!({"per_yuan": 1});
    i.member.level.benefits = serde_json::json!({"earn_multiplier": 1.5});
    i.member.lifetime = 3;
    let effects = sb.run(&ast, &i).unwrap();
    assert_eq!(
        effects[0],
        Effect::Award { currency: "points".into(), amount: 192, memo: "purchase".into(), expires_in_days: None }
    );
    assert_eq!(effects[1], Effect::Tag { name: "buyer".into() });
    assert_eq!(effects[2], Effect::SetCounter { name: "orders".into(), value: 3 });
}
