//! The log lines the command-line programs write on stderr.

/// Sends log lines to stderr, without times or targets, filtered by
/// `RUST_LOG` or else by `default_filter` (a tracing filter such as "warn").
pub fn init(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()))
        .with_writer(std::io::stderr)
        .with_ansi(spanwatch_embed::logtext::colour_on_stderr())
        .with_target(false)
        .without_time()
        .init();
}
