//! `spanwatch-mcu-log FIRMWARE.elf < log.defmt`: prints each defmt frame of
//! the log as `<level> <message>` (`-` for a frame without a level). Exits 1
//! naming the problem when the ELF has no defmt table or a frame does not
//! decode; a log cut short in its last frame ends the output there.

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("spanwatch-mcu-log: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let elf = std::env::args_os().nth(1).ok_or("usage: spanwatch-mcu-log FIRMWARE.elf < log.defmt")?;
    let shown = std::path::Path::new(&elf).display().to_string();
    let bytes = std::fs::read(&elf).map_err(|e| format!("{shown}: {e}"))?;
    let table = defmt_decoder::Table::parse(&bytes)
        .map_err(|e| format!("{shown}: {e}"))?
        .ok_or_else(|| format!("{shown}: the ELF has no defmt table"))?;
    let mut log = Vec::new();
    std::io::stdin().read_to_end(&mut log).map_err(|e| format!("standard input: {e}"))?;
    let mut decoder = table.new_stream_decoder();
    decoder.received(&log);
    let mut out = std::io::stdout().lock();
    loop {
        match decoder.decode() {
            Ok(frame) => {
                let level = frame.level().map_or("-", |l| l.as_str());
                writeln!(out, "{level} {}", frame.display_message()).map_err(|e| format!("standard output: {e}"))?;
            }
            Err(defmt_decoder::DecodeError::UnexpectedEof) => return Ok(()),
            Err(e) => return Err(format!("undecodable defmt frame: {e:?}")),
        }
    }
}
