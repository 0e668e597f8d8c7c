//! The library of example rules passes its own test files (R7).

use std::path::Path;

use scripting::{Sandbox, testfile};

#[test]
fn every_example_rule_passes_its_test_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules");
    let report = testfile::run_dir(&Sandbox::new(), &dir).unwrap();
    assert!(report.files >= 8, "{} test files found in {}", report.files, dir.display());
    assert!(report.failures.is_empty(), "{}", report.failures.join("\n"));
}
