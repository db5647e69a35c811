//! `spanwatch calibrate`: the edge monitor's calibration bundle.

use super::{GeneratorArgs, Global};
use crate::metric::band::alert_band;
use crate::metric::SpanFit;
use crate::pipeline::prepare;
use anyhow::{bail, Context, Result};
use spanwatch_core::bundle::{Bundle, F32Le, ModelIdentity};
use std::path::PathBuf;

/// Fewest pairs a calibration accepts: the alert band needs windows of at
/// least 4 pairs drawn from at least twice as many.
pub const MIN_CALIBRATION_PAIRS: usize = 8;

/// Arguments of `spanwatch calibrate`.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// The generator whose synthetic data the edge will monitor.
    #[command(flatten)]
    target: GeneratorArgs,
    /// Where to write the bundle.
    #[arg(long, short)]
    output: PathBuf,
    /// Pairs per window scored by the edge (capped at half the calibration pairs).
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Random windows drawn from the calibration pairs to set the alert band.
    #[arg(long, default_value_t = 200)]
    windows: usize,
    /// Seed for drawing the windows.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub(super) fn run(args: CalibrateArgs, global: &Global) -> Result<()> {
    let GeneratorArgs { data, solver, generator: name } = &args.target;
    let prepared = prepare(&data.data, &data.model, &global.cache_choice(), data.skip_unpaired, global.quiet)?;
    let generator = prepared.generator(name)?;
    let n = generator.pairs.len();
    if n < MIN_CALIBRATION_PAIRS {
        bail!("generator {name:?} has {n} pairs; calibration needs at least {MIN_CALIBRATION_PAIRS}");
    }
    let solver = solver.solver();
    let w = &prepared.probe.w;
    let fit = SpanFit::new(generator.diffs.clone());
    let reference = fit.score(w, solver);
    let window = args.window.clamp(4, n / 2);
    let alert = alert_band(&generator.diffs, w, solver, window, args.windows, args.seed);
    let singular: Vec<f32> = fit.singular_values()[..fit.k()].iter().map(|&s| s as f32).collect();
    let sha256: [u8; 32] = hex::decode(&prepared.model.sha256)?.try_into().map_err(|_| anyhow::anyhow!("model sha256 is not 32 bytes"))?;
    let (mu, sigma, w_bytes) =
        (F32Le::encode(&prepared.standardization.mu), F32Le::encode(&prepared.standardization.sigma), F32Le::encode(w));
    let (basis, singular_bytes) = (F32Le::encode(fit.basis()), F32Le::encode(&singular));
    fn view(bytes: &[u8]) -> F32Le<'_> {
        F32Le::from_bytes(bytes).expect("encoded f32 values")
    }
    let bundle = Bundle {
        model: ModelIdentity { sha256, name: &prepared.model.name, dim: prepared.model.dim as u32 },
        generator: name,
        solver,
        n_pairs: n as u32,
        mu: view(&mu),
        sigma: view(&sigma),
        w: view(&w_bytes),
        basis: view(&basis),
        singular_values: view(&singular_bytes),
        reference,
        alert,
    };
    let bytes = bundle.encode().map_err(|e| anyhow::anyhow!("cannot encode the bundle: {e}"))?;
    let temporary = args.output.with_extension("partial");
    std::fs::write(&temporary, &bytes).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, &args.output).with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "wrote {} ({} bytes): generator {:?}, {} pairs, k = {}, DS = {:.4} ({}), alert below {:.4} (clears above {:.4}) over windows of {}",
        args.output.display(),
        bytes.len(),
        name,
        n,
        fit.k(),
        reference.ds,
        solver.name(),
        alert.raise_below,
        alert.clear_above,
        alert.window
    );
    Ok(())
}
