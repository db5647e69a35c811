//! `spanwatch report`: one self-contained HTML page for a user's own data,
//! with the ranking table, DS with its interval, the per-sample alignment
//! histogram of every generator, and thumbnails of its most and least useful
//! synthetic samples beside their sources. Images and figures are inline
//! (data: URIs and SVG), so the file can be mailed or archived as it is.

use crate::metric::per_sample::{sample_utilities, SampleUtility};
use crate::metric::SpanFit;
use crate::pipeline::{GeneratorDiffs, Prepared};
use crate::progress;
use crate::ranking::GeneratorRow;
use anyhow::{anyhow, Result};
use base64::Engine;
use plotters::prelude::*;
use spanwatch_core::span::Solver;
use std::fmt::Write as _;
use std::path::Path;

/// Thumbnails shown for each end of a generator's ranking.
const SHOWN: usize = 4;
/// Thumbnail side in pixels.
const THUMB: u32 = 112;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn thumbnail(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)?;
    let image = spanwatch_embed::preprocess::load_rgb(path, &bytes)?;
    let small = image::DynamicImage::ImageRgb8(image).thumbnail(THUMB, THUMB);
    let mut png = Vec::new();
    small.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)))
}

fn histogram(alignments: &[f64]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 220)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("histogram: {e:?}"))?;
        let (lo, hi) = alignments.iter().fold((0f64, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.05).max(0.01);
        let (lo, hi) = (lo - pad, hi + pad);
        let bins = 24;
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0u32; bins];
        for &a in alignments {
            counts[(((a - lo) / width) as usize).min(bins - 1)] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(36)
            .build_cartesian_2d(lo..hi, 0u32..top + 1)
            .map_err(|e| anyhow!("histogram: {e:?}"))?;
        chart.configure_mesh().x_desc("alignment: cosine(w, d)").y_desc("samples").draw().map_err(|e| anyhow!("histogram: {e:?}"))?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * width;
                let colour = if x0 + width / 2.0 <= 0.0 { RGBColor(214, 39, 40) } else { RGBColor(31, 119, 180) };
                Rectangle::new([(x0, 0), (x0 + width, c)], colour.filled())
            }))
            .map_err(|e| anyhow!("histogram: {e:?}"))?;
        root.present().map_err(|e| anyhow!("histogram: {e:?}"))?;
    }
    Ok(svg)
}

fn sample_cards(html: &mut String, g: &GeneratorDiffs, order: &[usize], utilities: &[SampleUtility]) -> Result<()> {
    html.push_str("<div class=\"cards\">");
    for &i in order {
        let pair = &g.pairs[i];
        let u = utilities[i];
        let name = |p: &Path| escape(&p.file_name().unwrap_or_default().to_string_lossy());
        let _ = write!(
            html,
            "<figure class=\"card\"><img src=\"{}\" alt=\"synthetic {}\"><img src=\"{}\" alt=\"source {}\"><figcaption>{} &larr; {}<br>alignment {} &middot; marginal DS {:+.4}</figcaption></figure>",
            thumbnail(&pair.synthetic)?,
            name(&pair.synthetic),
            thumbnail(&pair.source)?,
            name(&pair.source),
            name(&pair.synthetic),
            name(&pair.source),
            u.alignment.map_or("n/a (no change)".into(), |a| format!("{a:+.3}")),
            u.marginal
        );
    }
    html.push_str("</div>");
    Ok(())
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
table{border-collapse:collapse;margin:1em 0}th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}\
th:nth-child(2),td:nth-child(2){text-align:left}.note{background:#fff6e0;border-left:4px solid #e0a800;padding:.5em 1em}\
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{margin:0;border:1px solid #ddd;padding:6px;border-radius:4px}\
.card img{width:112px;height:112px;object-fit:cover;margin-right:4px;image-rendering:pixelated}figcaption{font-size:12px;max-width:236px}";

/// Builds the report page for a prepared dataset, its ranked rows, and a solver.
pub fn build(prepared: &Prepared, rows: &[GeneratorRow], solver: Solver, quiet: bool) -> Result<String> {
    let mut html = String::new();
    let title = format!("spanwatch report: {}", prepared.dataset.root.display());
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    let _ = write!(
        html,
        "<h1>{}</h1><p>Model <b>{}</b> (sha256 <code>{}</code>, d = {}), solver <b>{}</b>; {} real negatives, {} real positives.</p>",
        escape(&title),
        escape(&prepared.model.name),
        hex::encode(prepared.model.sha256),
        prepared.model.dim,
        solver.name(),
        prepared.negatives.len(),
        prepared.positives.len()
    );
    for warning in &prepared.warnings {
        let _ = write!(html, "<p class=\"note\">{}</p>", escape(warning));
    }
    html.push_str("<h2>Ranking</h2><table><tr><th>rank</th><th>generator</th><th>pairs</th><th>k</th><th>DS</th><th>95% CI</th><th>chance DS</th><th>corrected</th><th>mean alignment</th><th>opposed</th></tr>");
    for (i, r) in rows.iter().enumerate() {
        let ci = r.ds_ci.map_or("&ndash;".into(), |[lo, hi]| format!("[{lo:.4}, {hi:.4}]"));
        let _ = write!(
            html,
            "<tr><td>{}</td><td><a href=\"#g{i}\">{}</a></td><td>{}</td><td>{}</td><td>{:.4}</td><td>{ci}</td><td>{:.4}</td><td>{:.4}</td><td>{:+.3}</td><td>{:.0}%</td></tr>",
            i + 1,
            escape(&r.name),
            r.n_pairs,
            r.k,
            r.ds,
            r.chance_ds,
            r.corrected,
            r.mean_alignment,
            100.0 * r.opposed_share
        );
    }
    html.push_str("</table><p>DS = 1 &minus; ||w &minus; &#373;|| / ||w||: how much of the probe w, trained on the real images, the synthetic changes reconstruct. Chance DS is what a random span of the same rank reaches. Alignment is the cosine of w and a sample&rsquo;s change; a change with alignment &le; 0 points away from the defect side.</p>");
    let total: usize = rows.iter().map(|r| r.n_pairs).sum();
    let bar = progress::bar(total, "per-sample", quiet);
    for (i, row) in rows.iter().enumerate() {
        let g = prepared.generator(&row.name)?;
        let fit = SpanFit::new(g.diffs.clone());
        let utilities = sample_utilities(&prepared.probe.w, &fit, solver, || bar.inc(1));
        let alignments: Vec<f64> = utilities.iter().filter_map(|u| u.alignment).collect();
        let _ = write!(
            html,
            "<section id=\"g{i}\"><h2>{}</h2><p>DS {:.4}, {} pairs, effective rank {}.</p>",
            escape(&row.name),
            row.ds,
            row.n_pairs,
            row.k
        );
        if alignments.is_empty() {
            html.push_str("<p class=\"note\">Every synthetic image embeds exactly like its source: nothing to plot.</p>");
        } else {
            html.push_str("<figure>");
            html.push_str(&histogram(&alignments)?);
            html.push_str(
                "<figcaption>Per-sample alignment with the probe (red: pointing away from the defect side).</figcaption></figure>",
            );
        }
        let mut order: Vec<usize> = (0..utilities.len()).collect();
        let key = |u: &SampleUtility| (u.marginal, u.alignment.unwrap_or(0.0));
        order.sort_by(|&a, &b| key(&utilities[b]).partial_cmp(&key(&utilities[a])).unwrap_or(std::cmp::Ordering::Equal));
        let shown = SHOWN.min(order.len() / 2).max(1).min(order.len());
        html.push_str("<h3>Most useful samples</h3>");
        sample_cards(&mut html, g, &order[..shown], &utilities)?;
        html.push_str("<h3>Least useful samples</h3>");
        sample_cards(&mut html, g, &order[order.len() - shown..], &utilities)?;
        html.push_str("</section>");
    }
    bar.finish_and_clear();
    html.push_str("</body></html>\n");
    Ok(html)
}
