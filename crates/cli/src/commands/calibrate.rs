//! `spanwatch calibrate`: the edge monitor's calibration bundle.

use super::{GeneratorArgs, Global};
use anyhow::Result;
use spanwatch_calibrate::calibration::{summary, write_bundle, CalibrationSettings};
use spanwatch_calibrate::metric::drift::DetectorSettings;
use spanwatch_calibrate::pipeline::prepare_generator;
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
    /// Pairs per window scored by the edge (at most the calibration pairs
    /// and 64): its DS, k and mean alignment in every metrics message.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Good pairs between false alarms the drift detector is calibrated
    /// for (its average run length to a false alarm, ARL0).
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u32).range(100..))]
    false_alarm_every: u32,
    /// The alignment CUSUM's reference value k: half the shift, in
    /// good-pair standard deviations of the normalized alignment, it is
    /// tuned for.
    #[arg(long, default_value_t = 0.5)]
    alignment_k: f64,
    /// The change-size CUSUMs' reference value k (in good-pair standard
    /// deviations of the normalized log change size). Larger than the
    /// alignment's: the size of a faithful change moves with the normal
    /// images themselves (a new region of a texture: a quarter of a
    /// standard deviation), the degradations it is there for move it by
    /// several.
    #[arg(long, default_value_t = 1.0)]
    size_k: f64,
    /// The off-span CUSUM's reference value k (in good-pair standard
    /// deviations of the normalized share outside the reference basis).
    /// 1, as for the size: held-out brick tiles' off span sits 0.14 sd
    /// above the calibration's, and at 0.5 the candidate simulation's
    /// false alarms on brick rose from 0.9 to 6.8 per 10,000.
    #[arg(long, default_value_t = 1.0)]
    off_span_k: f64,
    /// The two pixel-extent CUSUMs' reference value k (in good-pair standard
    /// deviations of the normalized log share of pixels the change moved).
    /// 1, as for the size: the held-out good pairs' extent sits within 0.18
    /// sd of the calibration pairs', noise and photometric changes move it
    /// by 3 to 6.
    #[arg(long, default_value_t = 1.0)]
    extent_k: f64,
    /// The shift of the line's good pairs' change size and pixel extent
    /// from the calibration pairs', in standard deviations, that the two
    /// size CUSUMs' and the two extent CUSUMs' thresholds are set to
    /// tolerate (below --size-k and the extent's k of 1): both move with the
    /// normal images' contrast (held-out grass tiles change 0.22 sd less
    /// than the calibration's in the embedding, and 0.18 sd more of their
    /// pixels).
    #[arg(long, default_value_t = spanwatch_calibrate::metric::drift::DEFAULT_SIZE_MARGIN)]
    size_margin: f64,
    /// Folds of the cross-fitting: each calibration pair's alignment comes
    /// from a probe fitted without its source image, its off span from a
    /// basis fitted without its fold's pairs.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=50))]
    folds: u32,
    /// Seed of the cross-fitting's folds and of the threshold simulation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub(super) fn run(args: CalibrateArgs, global: &Global) -> Result<()> {
    let GeneratorArgs { data, solver, generator: name } = &args.target;
    let prepared = prepare_generator(&data.data, &data.model, &data.source(global), data.skip_unpaired, name, global.quiet)?;
    let settings = CalibrationSettings {
        solver: solver.solver(),
        window: args.window,
        detector: DetectorSettings {
            alignment_k: args.alignment_k,
            size_k: args.size_k,
            off_span_k: args.off_span_k,
            extent_k: args.extent_k,
            false_alarm_every: args.false_alarm_every,
            size_margin: args.size_margin,
            seed: args.seed,
            ..DetectorSettings::default()
        },
        folds: args.folds as usize,
    };
    let done = write_bundle(&prepared, name, &settings, &args.output)?;
    println!("{}", summary(&args.output, name, &settings, &done));
    Ok(())
}
