//! What can go wrong with a script: it does not compile, or a run fails.

#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize)]
#[error("line {line}, column {column}: {message}")]
pub struct CompileError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A run that failed: the script broke a bound, raised an error or returned bad effects.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize)]
#[error("{message}")]
pub struct RunError {
    /// `timeout`, `too_many_operations`, `limit`, `script_error`, `bad_effects`.
    pub kind: &'static str,
    pub message: String,
}
