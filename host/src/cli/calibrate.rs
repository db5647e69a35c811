//! `spanwatch calibrate`: the edge monitor's calibration bundle.

use super::{GeneratorArgs, Global};
use anyhow::Result;
use spanwatch::calibration::{write_bundle, AlertOn, CalibrationSettings};
use spanwatch::pipeline::prepare;
use std::path::PathBuf;

/// Arguments of `spanwatch calibrate`.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// The generator whose synthetic data the edge will monitor.
    #[command(flatten)]
    target: GeneratorArgs,
    /// Where to write the bundle.
    #[arg(long, short)]
    output: PathBuf,
    /// What the edge's alert watches: the mean alignment of the window's
    /// pairs with the probe (default: it detected drift in about half the
    /// pairs the cone needed, docs/validation.md), or the window's span score.
    #[arg(long, value_enum, default_value_t = AlertOn::Alignment)]
    alert_on: AlertOn,
    /// Pairs per window scored by the edge (at most the calibration pairs and 64).
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Target share of good streams of --horizon pairs that may raise the alert.
    #[arg(long, default_value_t = 0.05)]
    false_alarm: f64,
    /// Pairs per simulated good stream.
    #[arg(long, default_value_t = 500)]
    horizon: usize,
    /// Simulated good streams drawn from the calibration pairs to set the alert band.
    #[arg(long, default_value_t = 200)]
    streams: usize,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub(super) fn run(args: CalibrateArgs, global: &Global) -> Result<()> {
    let GeneratorArgs { data, solver, generator: name } = &args.target;
    let prepared = prepare(&data.data, &data.model, &data.source(global), data.skip_unpaired, global.quiet)?;
    let settings = CalibrationSettings {
        solver: solver.solver(),
        statistic: args.alert_on.statistic(),
        window: args.window,
        false_alarm: args.false_alarm,
        horizon: args.horizon,
        streams: args.streams,
        seed: args.seed,
    };
    let done = write_bundle(&prepared, name, &settings, &args.output)?;
    let alert = done.alert;
    println!(
        "wrote {} ({} bytes): generator {name:?}, {} pairs, k = {}, DS = {:.4} ({}), alert when the {} of the last {} pairs\n\
         falls below {:.4} (clears above {:.4});\n\
         {:.1}% of {} simulated good streams of {} pairs raised it",
        args.output.display(),
        done.bytes,
        done.pairs,
        done.k,
        done.reference.ds,
        settings.solver.name(),
        alert.statistic.name(),
        alert.window,
        alert.raise_below,
        alert.clear_above,
        alert.false_alarm * 100.0,
        settings.streams,
        alert.horizon
    );
    Ok(())
}
