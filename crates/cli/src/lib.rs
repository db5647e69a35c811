//! What the `spanwatch` CLI shares with the other command-line programs of
//! the workspace (the demo): the embedding cache's flags and the log set-up.
//! The subcommands themselves are the binary's (`src/commands/`), thin glue
//! over the calibration library, spanwatch-calibrate.
#![warn(missing_docs)]

pub mod flags;
pub mod logging;
