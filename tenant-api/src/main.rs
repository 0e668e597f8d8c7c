//! `pointsmall`: the server and its command line (see `tenant_api::cli`).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// mimalloc gives freed memory back to the system (glibc's malloc kept argon2's 19 MiB
/// blocks resident: gigabytes after a burst of logins).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, one line; no backtrace for an operator's mistake.
            eprintln!("pointsmall: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    // A KEY=VALUE configuration file, if named, fills in what the environment lacks.
    if let Ok(path) = std::env::var("POINTSMALL_CONFIG") {
        dotenvy::from_path(&path).with_context(|| format!("reading POINTSMALL_CONFIG file {path}"))?;
    }
    tenant_api::cli::run(tenant_api::cli::Cli::parse()).await
}
