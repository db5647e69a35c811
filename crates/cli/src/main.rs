//! The `spanwatch` command: one thin module per subcommand (`commands/`)
//! over the calibration library.

mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    restore_default_sigpipe();
    keep_large_buffers_mapped();
    let cli = commands::Cli::parse();
    let level = if cli.global.quiet { "error" } else { "warn" };
    spanwatch_cli::logging::init(level);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Fixes glibc's mmap threshold at its default (128 KiB). glibc raises it
/// when a large mapped block is freed; after that the model's large
/// temporary buffers came from the heap, which then grew by about 70 MB a
/// second without ever being reused or returned (measured on `spanwatch
/// study`: 24 GB and killed after 10,000 EfficientNet images; heaptrack saw
/// at most 60 MB live). With the threshold fixed they are mapped and
/// unmapped per image, and the resident size stays flat.
fn keep_large_buffers_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any other thread exists;
    // mallopt only changes the allocator's tuning.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`spanwatch score ... | head`)
/// would panic; like other Unix tools, end quietly instead.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists;
    // setting a signal's disposition to its default is always sound.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
