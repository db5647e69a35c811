//! What the command-line tools show on stderr: progress bars (hidden with
//! `--quiet` or when stderr is not a terminal) and log lines.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar of `len` steps labelled `what`.
pub fn bar(len: usize, what: &str, quiet: bool) -> ProgressBar {
    let bar =
        ProgressBar::with_draw_target(Some(len as u64), if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Sends log lines to stderr, without times or targets, filtered by
/// `RUST_LOG` or else by `default_filter` (a tracing filter such as "warn").
pub fn init_logging(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()))
        .with_writer(std::io::stderr)
        .with_ansi(spanwatch_embed::logtext::colour_on_stderr())
        .with_target(false)
        .without_time()
        .init();
}
