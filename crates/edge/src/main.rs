//! `spanwatch-edge`: the edge monitor daemon. See `spanwatch-edge --help`
//! and docs/mqtt.md for the messages it publishes.

use anyhow::Result;
use clap::Parser;
use spanwatch_edge::config::{Options, Settings};
use spanwatch_edge::Edge;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Watches a spool of synthetic-defect pairs, tracks the discriminative span
/// of the recent ones against a calibration bundle, drives an alarm line and
/// reports over MQTT. Every option may also be set in the TOML config file
/// (same name, '_' for '-'); flags win.
#[derive(Parser)]
#[command(name = "spanwatch-edge", version)]
struct Cli {
    /// TOML config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Check the config, its bundle and its model (and that the spool is a
    /// folder) without starting; exit 0 when everything is usable.
    #[arg(long)]
    check_config: bool,
    #[command(flatten)]
    options: Options,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(spanwatch_embed::logtext::colour_on_stderr())
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spanwatch-edge: {}", spanwatch_embed::logtext::Escaped(format_args!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let file = match &cli.config {
        Some(path) => Options::from_file(path)?,
        None => Options::default(),
    };
    let settings = Settings::resolve(cli.options.or(file))?;
    if cli.check_config {
        println!("{}", spanwatch_edge::check(&settings)?);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let edge = Edge::start(settings)?;
        let stop = Arc::new(AtomicBool::new(false));
        tokio::spawn(stop_on_signal(stop.clone()));
        edge.run(stop).await.map(|_| ())
    })
}

/// Sets `stop` on SIGTERM or SIGINT.
async fn stop_on_signal(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop the monitor with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing the current pair and shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: finishing the current pair and shutting down"),
    }
    stop.store(true, Ordering::SeqCst);
}
