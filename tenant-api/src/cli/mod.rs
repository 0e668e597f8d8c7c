//! The `pointsmall` command line: the server (`serve`) and operations (migrations,
//! tenants, rules, ledger checks and jobs, secrets, demo data). `main.rs` only parses
//! and calls `run`.

mod args;
pub mod demo;
mod ops;
mod serve;

use anyhow::Context;
pub use args::Cli;
use args::{Command, RulesCommand};

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Rule tests need no database.
    if let Command::Rules { command: RulesCommand::Test { dir } } = &cli.command {
        return ops::rules_test(dir);
    }
    let is_serve = matches!(cli.command, Command::Serve { .. });
    init_logging(cli.log_format.as_deref(), is_serve);
    let url = cli
        .database_url
        .clone()
        .context("set DATABASE_URL (or --database-url) to the PostgreSQL URL of the main cluster")?;
    match cli.command {
        Command::Serve(s) => serve::serve(url, *s).await,
        Command::Migrate { concurrency } => ops::migrate(&url, concurrency).await,
        Command::Tenant { command } => ops::tenant(&url, command).await,
        Command::Ledger { command } => ops::ledger(&url, command).await,
        Command::Secrets { command } => ops::secrets(&url, command).await,
        Command::Demo { base_url } => demo::run(&url, &base_url).await,
        Command::Rules { .. } => unreachable!("handled before connecting"),
    }
}

fn init_logging(format: Option<&str>, default_json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = match format {
        Some("json") => true,
        Some(_) => false,
        None => default_json,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).with_current_span(true).init();
    } else {
        builder.compact().init();
    }
}
