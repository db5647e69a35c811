//! The progress bars the library's long calls (embedding, bootstrap,
//! per-sample utilities) draw on stderr, hidden when the caller asks for
//! quiet or when stderr is not a terminal.

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
