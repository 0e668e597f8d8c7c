//! Evaluations per second on this thread for each rule of examples/rules, cached AST,
//! measured like `bench-rules`: every case without `expect_error` gets an equal share of
//! the rule's time, and the rule's figure is all its evaluations over all its time. `best`
//! is the same from the fastest 10 ms slice of each case (less disturbed by a busy machine).
//!
//! `cargo run --release -p scripting --example evals [-- SECONDS_PER_RULE [NAME_FILTER]]`
//!
//! With `count=N` instead of seconds, every case runs exactly N times and nothing is
//! timed (for instruction counts, e.g. under `valgrind --tool=callgrind`).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use scripting::{AST, Effect, EventInput, Input, MemberInput, Sandbox};
use serde_json::Value;

const CHUNK: u64 = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next().unwrap_or_else(|| "1".into());
    let count: Option<u64> = first.strip_prefix("count=").map(|n| n.parse().expect("count"));
    let seconds: f64 = if count.is_some() { 0.0 } else { first.parse().expect("seconds") };
    let filter = args.next().unwrap_or_default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules");
    let sandbox = Sandbox::new();

    let anchor = sandbox.compile(r#"award("points", 1)"#).expect("anchor compiles");
    if count.is_none() {
        let empty = Input { event: EventInput { kind: "x".into(), ..Default::default() }, ..Default::default() };
        let (n, t, best) = measure(&sandbox, &anchor, &empty, Duration::from_secs_f64(seconds));
        println!(
            "{:<32} {:>10.0} evals/s   best {best:>8.0}",
            "(anchor: award(\"points\", 1))",
            n as f64 / t.as_secs_f64()
        );
    }

    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/rules")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.json"))
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    files.sort();
    for file in files {
        let tf: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
        let rule = tf["rule"].as_str().expect("rule");
        let script = std::fs::read_to_string(dir.join(rule)).expect("rule file");
        let ast = sandbox.compile(&script).expect("compiles");
        let file_params = tf.get("params").cloned().unwrap_or(Value::Null);
        let mut inputs = vec![];
        for c in tf["cases"].as_array().expect("cases") {
            if c.get("expect_error").is_some() {
                continue;
            }
            let event: EventInput = serde_json::from_value(c["event"].clone()).expect("event");
            let member: MemberInput = c
                .get("member")
                .map_or_else(MemberInput::default, |m| serde_json::from_value(m.clone()).expect("member"));
            let params = c.get("params").cloned().unwrap_or_else(|| file_params.clone());
            let input = Input { event, member, params };
            let got = sandbox.run(&ast, &input).expect("run");
            if let Some(expect) = c.get("expect") {
                let want: Vec<Effect> = serde_json::from_value(expect.clone()).expect("expect");
                assert_eq!(want, got, "{rule}: {}", c["name"]);
            }
            inputs.push(input);
        }
        if let Some(n) = count {
            for input in &inputs {
                for _ in 0..n {
                    assert!(black_box(sandbox.run(black_box(&ast), black_box(input))).is_ok());
                }
            }
            println!("{rule}: {} cases × {n} runs", inputs.len());
            continue;
        }
        let share = Duration::from_secs_f64(seconds) / inputs.len() as u32;
        let (mut evals, mut elapsed) = (0, Duration::ZERO);
        let (mut per_case, mut bests) = (vec![], vec![]);
        for input in &inputs {
            let (n, t, best) = measure(&sandbox, &ast, input, share);
            per_case.push(format!("{:.0}", n as f64 / t.as_secs_f64()));
            bests.push(best);
            evals += n;
            elapsed += t;
        }
        // Every case has the same time: the rule's best is the mean of its cases' bests.
        let best = bests.iter().sum::<f64>() / bests.len() as f64;
        println!(
            "{:<32} {:>10.0} evals/s   best {best:>8.0}   (cases: {})",
            rule,
            evals as f64 / elapsed.as_secs_f64(),
            per_case.join(", ")
        );
    }
}

/// Runs one input for `budget` after a short warm-up: (evaluations, time, the best rate
/// over 10 ms slices, which a busy machine disturbs less than the mean).
fn measure(sandbox: &Sandbox, ast: &AST, input: &Input, budget: Duration) -> (u64, Duration, f64) {
    let warm_until = Instant::now() + budget.min(Duration::from_millis(50));
    while Instant::now() < warm_until {
        sandbox.run(ast, input).expect("warm-up run");
    }
    let started = Instant::now();
    let deadline = started + budget;
    let (mut evals, mut best) = (0, 0.0_f64);
    let (mut slice_started, mut slice_evals) = (started, 0);
    loop {
        for _ in 0..CHUNK {
            let r = sandbox.run(black_box(ast), black_box(input));
            assert!(black_box(r).is_ok());
        }
        evals += CHUNK;
        slice_evals += CHUNK;
        let now = Instant::now();
        if now - slice_started >= Duration::from_millis(10) {
            best = best.max(slice_evals as f64 / (now - slice_started).as_secs_f64());
            (slice_started, slice_evals) = (now, 0);
        }
        if now >= deadline {
            break;
        }
    }
    (evals, started.elapsed(), best)
}
