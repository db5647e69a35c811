//! Programs outside Rust's reach that some tests need (mosquitto, Chromium,
//! qemu-system-arm, openssl). Outside CI a test whose program is missing
//! prints one `SKIPPED: <test> needs <program> (apt-get install <package>)`
//! line and passes; with `CI` set it fails, so CI runs every such test.
//! Included with `#[path]` by each test that needs one.

#![allow(dead_code)] // each including test uses its own part

use std::io::Write;
use std::process::{Command, Stdio};

/// Whether `program` can be started from PATH.
pub fn have(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Whether every `(program, Debian package)` is here. Where one is missing:
/// with `CI` set the test fails; otherwise one SKIPPED line goes to the
/// terminal (past the test harness's output capture) and this returns false.
pub fn needs(programs: &[(&str, &str)]) -> bool {
    needs_for("", programs)
}

/// [`needs`] for one part of a test (`part` names it in the SKIPPED line);
/// the rest of the test goes on when this returns false.
pub fn needs_for(part: &str, programs: &[(&str, &str)]) -> bool {
    let Some((program, package)) = programs.iter().find(|(program, _)| !have(program)) else { return true };
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let what = if part.is_empty() { test } else { format!("{test} ({part})") };
    let line = format!("SKIPPED: {what} needs {program} (apt-get install {package})");
    assert!(std::env::var_os("CI").is_none(), "{line}: CI must run it (.ci/run installs it)");
    // Written to the process's stderr, not through eprintln!, which the test
    // harness captures and shows only for failing tests.
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}

/// mosquitto and its command-line subscriber, as the broker tests need them.
pub const MOSQUITTO: [(&str, &str); 2] = [("mosquitto", "mosquitto"), ("mosquitto_sub", "mosquitto-clients")];
