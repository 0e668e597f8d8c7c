//! Rule test files (R7): `NAME.test.json` beside the rule, run by `pointsmall rules test
//! DIR` and in CI.
//!
//! ```json
//! {
//!   "rule": "checkin_streak.rhai",
//!   "params": {"table": [5, 8, 12]},
//!   "cases": [
//!     {"name": "first day", "event": {"type": "checked_in"}, "member": {"streak": 1},
//!      "expect": [{"kind": "award", "currency": "points", "amount": 5, "memo": "day 1"}]},
//!     {"name": "bad input", "event": {"type": "checked_in"}, "expect_error": "not found"}
//!   ]
//! }
//! ```
//! A case's `params` replace the file's; `member` fields not given take defaults.
//! `examples/rules/test-file.schema.json` is the JSON Schema of this format, for editors
//! (a file names it with `"$schema"`); a test checks the library's files against it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::effects::Effect;
use crate::input::{EventInput, Input, MemberInput};
use crate::sandbox::Sandbox;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// The JSON Schema editors use for the file (not read here).
    #[serde(rename = "$schema", default)]
    _schema: Option<String>,
    rule: String,
    #[serde(default)]
    params: serde_json::Value,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    event: EventInput,
    #[serde(default)]
    member: MemberInput,
    #[serde(default)]
    params: Option<serde_json::Value>,
    #[serde(default)]
    expect: Option<Vec<Effect>>,
    /// A substring of the expected error message.
    #[serde(default)]
    expect_error: Option<String>,
}

/// What a run of test files found.
#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub cases: usize,
    pub failures: Vec<String>,
}

/// Finds `*.test.json` under `dir` (recursively), sorted.
pub fn find(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".test.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a test file's text as the runner does (without running it): the error says
/// what is wrong.
pub fn parse(text: &str) -> Result<(), String> {
    serde_json::from_str::<TestFile>(text).map(|_| ()).map_err(|e| e.to_string())
}

/// Runs every test file under `dir`.
pub fn run_dir(sandbox: &Sandbox, dir: &Path) -> std::io::Result<Report> {
    let mut report = Report::default();
    for file in find(dir)? {
        report.files += 1;
        run_file(sandbox, &file, &mut report);
    }
    Ok(report)
}

fn run_file(sandbox: &Sandbox, file: &Path, report: &mut Report) {
    let at = file.display();
    let parsed: Result<TestFile, String> = std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
    let tf = match parsed {
        Ok(tf) => tf,
        Err(e) => return report.failures.push(format!("{at}: cannot read: {e}")),
    };
    let rule_path = file.parent().unwrap_or(Path::new(".")).join(&tf.rule);
    let script = match std::fs::read_to_string(&rule_path) {
        Ok(s) => s,
        Err(e) => return report.failures.push(format!("{at}: rule {}: {e}", rule_path.display())),
    };
    let ast = match sandbox.compile(&script) {
        Ok(a) => a,
        Err(e) => return report.failures.push(format!("{}: does not compile: {e}", rule_path.display())),
    };
    for case in tf.cases {
        report.cases += 1;
        let input =
            Input { event: case.event, member: case.member, params: case.params.unwrap_or_else(|| tf.params.clone()) };
        let got = sandbox.run(&ast, &input);
        let name = &case.name;
        match (&case.expect, &case.expect_error, got) {
            (Some(want), None, Ok(effects)) if *want == effects => {}
            (Some(want), None, Ok(effects)) => report.failures.push(format!(
                "{at} / {name}: expected {}\n     got {}",
                serde_json::to_string(want).unwrap_or_default(),
                serde_json::to_string(&effects).unwrap_or_default()
            )),
            (Some(_), None, Err(e)) => report.failures.push(format!("{at} / {name}: failed: {e}")),
            (None, Some(want), Err(e)) if e.message.contains(want.as_str()) || e.kind == want.as_str() => {}
            (None, Some(want), Err(e)) => {
                report.failures.push(format!("{at} / {name}: expected an error with {want:?}, got {e}"))
            }
            (None, Some(want), Ok(effects)) => report.failures.push(format!(
                "{at} / {name}: expected an error with {want:?}, got effects {}",
                serde_json::to_string(&effects).unwrap_or_default()
            )),
            _ => report.failures.push(format!("{at} / {name}: give exactly one of expect and expect_error")),
        }
    }
}
