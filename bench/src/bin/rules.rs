//! `bench-rules`: evaluations per second on one core for each rule of the library, with
//! the compiled AST cached as the server caches it. For every `*.test.json` the rule is
//! compiled once with `scripting::Sandbox`; each case's input then runs in a tight loop
//! on this thread (every case gets an equal share of the rule's time). Cases that
//! expect an error are skipped; every other case is checked once against its expected
//! effects first (a rule that does not do what its test says is a real error).
//!
//! The anchor is the smallest useful rule, `award("points", 1)`, on an empty input,
//! measured the same way in the same run: the fixed cost of one sandboxed evaluation
//! (input conversion, engine call, reading the effects).
//!
//! No database. See bench/README.md for how to run it.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::{build_kind, build_note, machine_load, thousands, verdict};
use clap::Parser;
use scripting::{AST, Effect, EventInput, Input, MemberInput, Sandbox};
use serde_json::Value;

/// Evaluations per second per core the library's rules should reach.
const TARGET_EVALS_PER_SEC: f64 = 100_000.0;

/// Evaluations between two looks at the clock.
const CHUNK: u64 = 32;

const ANCHOR_SCRIPT: &str = r#"award("points", 1)"#;

#[derive(Parser)]
#[command(
    name = "bench-rules",
    version,
    about = "Rule evaluations per second per core for each library rule, cached AST (prints figures; not a test)"
)]
struct Args {
    /// Folder of rules and their `*.test.json` files.
    #[arg(long, default_value = "examples/rules")]
    dir: PathBuf,
    /// Seconds of evaluation per rule (shared equally among its cases) and for the anchor.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Only rules whose file name contains this.
    #[arg(long)]
    rule: Option<String>,
}

fn main() -> ExitCode {
    match bench(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-rules: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One case ready to run.
struct Case {
    name: String,
    input: Input,
}

/// What one loop measured.
struct Measured {
    evals: u64,
    elapsed: Duration,
}

impl Measured {
    fn per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.evals as f64 / s } else { 0.0 }
    }
    fn micros(&self) -> f64 {
        if self.evals > 0 { self.elapsed.as_secs_f64() * 1e6 / self.evals as f64 } else { 0.0 }
    }
}

struct RuleResult {
    file: String,
    cases: Vec<(String, Measured)>,
    skipped: usize,
}

impl RuleResult {
    fn total(&self) -> Measured {
        Measured {
            evals: self.cases.iter().map(|(_, m)| m.evals).sum(),
            elapsed: self.cases.iter().map(|(_, m)| m.elapsed).sum(),
        }
    }
}

fn bench(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    let files = scripting::testfile::find(&args.dir).with_context(|| format!("reading {}", args.dir.display()))?;
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| args.rule.as_deref().is_none_or(|r| f.file_name().is_some_and(|n| n.to_string_lossy().contains(r))))
        .collect();
    anyhow::ensure!(!files.is_empty(), "no *.test.json under {} (matching --rule)", args.dir.display());
    println!(
        "bench-rules: {} rule(s) from {}, {:.1} s each on one thread, {} build{}; {}",
        files.len(),
        args.dir.display(),
        args.seconds,
        build_kind(),
        build_note(),
        machine_load()
    );
    let sandbox = Sandbox::new();
    let budget = Duration::from_secs_f64(args.seconds);

    let anchor_ast = sandbox.compile(ANCHOR_SCRIPT).map_err(|e| anyhow::anyhow!("anchor rule: {e}"))?;
    let anchor_input = Input {
        event: EventInput { kind: "bench".into(), ..EventInput::default() },
        member: MemberInput::default(),
        params: serde_json::json!({}),
    };
    let anchor = measure(&sandbox, &anchor_ast, &anchor_input, budget).context("the anchor rule")?;
    println!(
        "anchor: {ANCHOR_SCRIPT} on an empty input: {} evals/s ({:.2} µs/eval)",
        thousands(anchor.per_sec()),
        anchor.micros()
    );

    let mut results = Vec::with_capacity(files.len());
    for file in &files {
        let r = bench_file(&sandbox, file, budget).with_context(|| format!("{}", file.display()))?;
        let t = r.total();
        println!(
            "{:<32} {} evals/s ({:.2} µs/eval) over {} case(s){}",
            r.file,
            thousands(t.per_sec()),
            t.micros(),
            r.cases.len(),
            if r.skipped > 0 { format!(", {} error case(s) skipped", r.skipped) } else { String::new() }
        );
        for (name, m) in &r.cases {
            println!("    {:<60} {:>10} evals/s ({:.2} µs)", name, thousands(m.per_sec()), m.micros());
        }
        results.push(r);
    }

    println!("\n== summary ({} build, one thread, {}) ==", build_kind(), machine_load());
    println!("anchor {ANCHOR_SCRIPT}: {} evals/s ({:.2} µs/eval)", thousands(anchor.per_sec()), anchor.micros());
    println!(
        "{:<32} {:>10} {:>9} {:>9}  target ≥ {}/s",
        "rule",
        "evals/s",
        "µs/eval",
        "÷ anchor",
        thousands(TARGET_EVALS_PER_SEC)
    );
    for r in &results {
        let t = r.total();
        println!(
            "{:<32} {:>10} {:>9.2} {:>9.2}  {}",
            r.file,
            thousands(t.per_sec()),
            t.micros(),
            t.per_sec() / anchor.per_sec(),
            verdict(t.per_sec() >= TARGET_EVALS_PER_SEC)
        );
    }
    Ok(())
}

/// Compiles the file's rule once, checks every case once, then measures each case.
fn bench_file(sandbox: &Sandbox, file: &Path, budget: Duration) -> anyhow::Result<RuleResult> {
    let text = std::fs::read_to_string(file)?;
    let tf: Value = serde_json::from_str(&text).context("not JSON")?;
    let rule = tf["rule"].as_str().context("no \"rule\"")?;
    let rule_path = file.parent().unwrap_or(Path::new(".")).join(rule);
    let script = std::fs::read_to_string(&rule_path).with_context(|| format!("reading {}", rule_path.display()))?;
    let ast = sandbox.compile(&script).map_err(|e| anyhow::anyhow!("{} does not compile: {e}", rule_path.display()))?;
    let file_params = tf.get("params").cloned().unwrap_or(Value::Null);

    let mut cases = vec![];
    let mut skipped = 0;
    for (i, c) in tf["cases"].as_array().context("no \"cases\" array")?.iter().enumerate() {
        let name = c["name"].as_str().map_or_else(|| format!("case {i}"), str::to_string);
        if c.get("expect_error").is_some() {
            skipped += 1;
            continue;
        }
        let event: EventInput = serde_json::from_value(c["event"].clone()).with_context(|| format!("{name}: event"))?;
        let member: MemberInput = match c.get("member") {
            Some(m) => serde_json::from_value(m.clone()).with_context(|| format!("{name}: member"))?,
            None => MemberInput::default(),
        };
        let params = c.get("params").cloned().unwrap_or_else(|| file_params.clone());
        let input = Input { event, member, params };
        let got = sandbox.run(&ast, &input).map_err(|e| anyhow::anyhow!("{name}: the rule failed: {e}"))?;
        if let Some(expect) = c.get("expect") {
            let want: Vec<Effect> =
                serde_json::from_value(expect.clone()).with_context(|| format!("{name}: expect"))?;
            if want != got {
                bail!("{name}: the rule returned {got:?}, its test expects {want:?}");
            }
        }
        cases.push(Case { name, input });
    }
    anyhow::ensure!(!cases.is_empty(), "no case without expect_error to run");

    let share = budget / cases.len() as u32;
    let mut measured = Vec::with_capacity(cases.len());
    for case in cases {
        let m = measure(sandbox, &ast, &case.input, share).with_context(|| case.name.clone())?;
        measured.push((case.name, m));
    }
    let file = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().to_string());
    let file = file.trim_end_matches(".test.json").to_string() + ".rhai";
    Ok(RuleResult { file, cases: measured, skipped })
}

/// Runs one input in a tight loop for `budget`, after a short warm-up. Every run must
/// succeed (a run that fails here, e.g. on the 50 ms wall-clock bound of a starved
/// thread, is reported as an error).
fn measure(sandbox: &Sandbox, ast: &AST, input: &Input, budget: Duration) -> anyhow::Result<Measured> {
    let warm_until = Instant::now() + budget.min(Duration::from_millis(50));
    while Instant::now() < warm_until {
        sandbox.run(ast, input).map_err(|e| anyhow::anyhow!("a run failed: {e}"))?;
    }
    let started = Instant::now();
    let deadline = started + budget;
    let mut evals = 0;
    loop {
        for _ in 0..CHUNK {
            let r = sandbox.run(black_box(ast), black_box(input));
            if let Err(e) = black_box(r) {
                bail!("run {evals} failed: {e}");
            }
        }
        evals += CHUNK;
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(Measured { evals, elapsed: started.elapsed() })
}
