//! The `spanwatch` command.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = spanwatch::cli::Cli::parse();
    let level = if cli.global.quiet { "error" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    match spanwatch::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
