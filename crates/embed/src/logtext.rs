//! Text for the tools' logs: colour only on a terminal, and file names and
//! other outside text escaped so that they cannot forge log lines.

use std::fmt;
use std::io::IsTerminal;

/// Whether stderr logs may use ANSI colour: only when stderr is a terminal
/// and NO_COLOR (https://no-color.org) is unset or empty. Log files, pipes
/// and journald get plain text.
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Outside text (a file name, a path, an error that quotes one) as one log
/// line: control characters (newlines, carriage returns, escapes) are
/// written as Rust escapes (`\n`, `\u{1b}`), everything else as is. Wraps
/// anything displayable (`Escaped(path.display())`, `Escaped(id)`).
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        /// Passes text on with its control characters escaped.
        struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for Escaping<'_, '_> {
            fn write_str(&mut self, text: &str) -> fmt::Result {
                for c in text.chars() {
                    if c.is_control() {
                        write!(self.0, "{}", c.escape_default())?;
                    } else {
                        self.0.write_char(c)?;
                    }
                }
                Ok(())
            }
        }
        write!(Escaping(f), "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let forged = "pair-1\n2026-11-30T00:00:00Z  INFO spanwatch_edge: forged\r\u{1b}[31mred é";
        let line = Escaped(forged).to_string();
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert_eq!(line, "pair-1\\n2026-11-30T00:00:00Z  INFO spanwatch_edge: forged\\r\\u{1b}[31mred é");
    }
}
