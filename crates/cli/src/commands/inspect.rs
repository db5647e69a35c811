//! `spanwatch inspect`: a bundle, for humans (or as JSON).

use anyhow::Result;
use spanwatch_calibrate::bundle_summary::read_bundle;
use std::path::PathBuf;

/// Arguments of `spanwatch inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// Also check that the bundle belongs to this model (name or manifest path).
    #[arg(long)]
    model: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: InspectArgs) -> Result<()> {
    let b = read_bundle(&args.bundle, args.model.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&b)?);
        return Ok(());
    }
    let (r, a) = (&b.reference, &b.detector);
    println!("spanwatch calibration bundle {} (format {}, {} bytes, checksum ok)", b.file, b.format_version, b.bytes);
    println!("  model        {} sha256 {} d = {}", b.model, b.model_sha256, b.dim);
    println!("  generator    {:?}, {} calibration pairs", b.generator, b.n_pairs);
    println!("  solver       {:?}", b.solver);
    let top: Vec<String> = b.singular_values_top.iter().map(|s| format!("{s:.2}")).collect();
    println!("  span         k = {} basis vectors, top singular values {}", b.k, top.join(", "));
    println!("  reference    DS = {:.4}, RPE = {:.4}, chance DS = {:.4}, corrected = {:.4}", r.ds, r.rpe, r.chance_ds, r.corrected);
    println!("  window       {} pairs (DS, k and mean alignment in every metrics message)", b.window);
    let ([a_low, a_high], [s_low, s_high], [o_low, o_high]) = (a.alignment_range, a.size_range, a.off_span_range);
    let [e_low, e_high] = a.extent_range;
    let [_, _, off_row, _] = a.residuals;
    println!(
        "  detector     CUSUM on alignment (calibrated {a_low:.4} to {a_high:.4}, k = {}), log change size ({s_low:.3} to {s_high:.3}, k = {}),\n               \
         share outside the basis ({o_low:.3} to {o_high:.3}, k = {}; its residual {:+.3} a {:+.3} s {:+.3} o)\n               \
         and log pixel extent ({e_low:.3} to {e_high:.3}, k = {});\n               \
         thresholds {}, one false alarm per {} good pairs with a margin of {} sd on the change size and extent (simulated: one per {:.0}); clears after {} quiet pairs",
        a.alignment_k,
        a.size_k,
        a.off_span_k,
        off_row[0],
        off_row[1],
        off_row[2],
        a.extent_k,
        spanwatch_core::detector::NamedThresholds(&a.thresholds),
        a.false_alarm_every,
        a.size_margin,
        a.simulated_every,
        a.clear_after
    );
    let [sigma_low, sigma_high] = b.sigma_range;
    println!("  probe        ||w|| = {:.4}; sigma in [{sigma_low:.3e}, {sigma_high:.3e}]", b.w_norm);
    if let Some(model) = &args.model {
        println!("  matches model {model}");
    }
    Ok(())
}
