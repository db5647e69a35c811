//! `spanwatch inspect`: a bundle, for humans (or as JSON).

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use spanwatch_core::bundle::{Bundle, ScoreTable, FORMAT_VERSION};
use spanwatch_core::norm;
use spanwatch_embed::Manifest;
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
    let path = &args.bundle;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bundle = Bundle::decode(&bytes).with_context(|| path.display().to_string())?;
    if let Some(model) = &args.model {
        let manifest = Manifest::resolve(model)?;
        let sha: [u8; 32] = hex::decode(&manifest.sha256)?.try_into().map_err(|_| anyhow!("bad sha256 in the manifest"))?;
        bundle.check_model(&manifest.embedding_identity(&sha), manifest.output.dim).with_context(|| path.display().to_string())?;
    }
    let w = bundle.w.to_vec();
    let sigma = bundle.sigma.to_vec();
    let summary = json!({
        "file": path.display().to_string(),
        "bytes": bytes.len(),
        "format_version": FORMAT_VERSION,
        "model": bundle.model.name,
        "model_sha256": hex::encode(bundle.model.sha256),
        "dim": bundle.model.dim,
        "generator": bundle.generator,
        "solver": bundle.solver,
        "n_pairs": bundle.n_pairs,
        "k": bundle.rank(),
        "singular_values_top": bundle.singular_values.iter().take(5).collect::<Vec<_>>(),
        "reference": bundle.reference,
        "window": bundle.window,
        "detector": {
            "kind": "cusum",
            "alignment_k": bundle.detector.alignment_k,
            "size_k": bundle.detector.size_k,
            "off_span_k": bundle.detector.off_span_k,
            "residuals": bundle.detector.residuals,
            "h": bundle.detector.h,
            "clear_after": bundle.detector.clear_after,
            "false_alarm_every": bundle.detector.false_alarm_every,
            "simulated_every": bundle.detector.simulated_every,
            "alignment_knots": bundle.detector.alignment.values.len(),
            "size_knots": bundle.detector.size.values.len(),
            "off_span_knots": bundle.detector.off_span.values.len(),
        },
        "w_norm": norm(&w),
        "sigma_range": [sigma.iter().copied().fold(f32::INFINITY, f32::min), sigma.iter().copied().fold(0f32, f32::max)],
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let r = bundle.reference;
    let a = bundle.detector;
    println!("spanwatch calibration bundle {} (format {FORMAT_VERSION}, {} bytes, checksum ok)", path.display(), bytes.len());
    println!("  model        {} sha256 {} d = {}", bundle.model.name, hex::encode(bundle.model.sha256), bundle.model.dim);
    println!("  generator    {:?}, {} calibration pairs", bundle.generator, bundle.n_pairs);
    println!("  solver       {:?}", bundle.solver);
    let top: Vec<String> = bundle.singular_values.iter().take(5).map(|s| format!("{s:.2}")).collect();
    println!("  span         k = {} basis vectors, top singular values {}", bundle.rank(), top.join(", "));
    println!("  reference    DS = {:.4}, RPE = {:.4}, chance DS = {:.4}, corrected = {:.4}", r.ds, r.rpe, r.chance_ds, r.corrected);
    println!("  window       {} pairs (DS, k and mean alignment in every metrics message)", bundle.window);
    let ends = |t: &ScoreTable| (t.values.iter().next().unwrap_or(f32::NAN), t.values.iter().last().unwrap_or(f32::NAN));
    let ((a_low, a_high), (s_low, s_high), (o_low, o_high)) = (ends(&a.alignment), ends(&a.size), ends(&a.off_span));
    let [_, _, off_row] = a.residuals;
    println!(
        "  detector     CUSUM on alignment (calibrated {a_low:.4} to {a_high:.4}, k = {}), log change size ({s_low:.3} to {s_high:.3}, k = {})\n               \
         and share outside the basis ({o_low:.3} to {o_high:.3}, k = {}; its residual {:+.3} a {:+.3} s {:+.3} o): h = {:.3};\n               \
         one false alarm per {} good pairs (simulated: one per {:.0}); clears after {} quiet pairs",
        a.alignment_k,
        a.size_k,
        a.off_span_k,
        off_row[0],
        off_row[1],
        off_row[2],
        a.h,
        a.false_alarm_every,
        a.simulated_every,
        a.clear_after
    );
    let sigma_low = sigma.iter().copied().fold(f32::INFINITY, f32::min);
    let sigma_high = sigma.iter().copied().fold(0f32, f32::max);
    println!("  probe        ||w|| = {:.4}; sigma in [{sigma_low:.3e}, {sigma_high:.3e}]", norm(&w));
    if args.model.is_some() {
        println!("  matches model {}", args.model.as_deref().unwrap_or_default());
    }
    Ok(())
}
