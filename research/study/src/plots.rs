//! The study's figures, as SVG: the default score against downstream F1 with
//! the fitted line, rho of every metric, and rho against the number of pairs.

use crate::correlations::{families, find, CorrelationRow};
use crate::evaluate::Metric;
use crate::{CellResult, StudyConfig};
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn plot_error<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {what}: {e:?}")
}

/// Least-squares line y = a + b x.
fn fit_line(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let b = if sxx > 0.0 { x.iter().zip(y).map(|(a, c)| (a - mx) * (c - my)).sum::<f64>() / sxx } else { 0.0 };
    (my - b * mx, b)
}

/// `score` against downstream F1 for every (surface, family, generator) at the
/// headline sample size, one panel per model, coloured by family.
pub fn score_vs_truth(config: &StudyConfig, results: &[CellResult], rows: &[CorrelationRow], score: Metric, path: &Path) -> Result<()> {
    let (n_pos, n_pairs) = (config.default_positives(), config.max_pairs());
    let root = SVGBackend::new(path, (560 * config.models.len() as u32, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error("background"))?;
    for (panel, model) in root.split_evenly((1, config.models.len())).iter().zip(&config.models) {
        let cells: Vec<&CellResult> =
            results.iter().filter(|c| &c.model == model && c.n_positives == n_pos && c.n_pairs == n_pairs).collect();
        let x: Vec<f64> = cells.iter().map(|c| c.metric(score)).collect();
        let y: Vec<f64> = cells.iter().map(|c| c.truths[0]).collect();
        let (lo, hi) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let rho = find(rows, model, score, "lr_f1", "pooled", n_pos, n_pairs).map_or(f64::NAN, |r| r.spearman.value);
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{model}: {score} vs F1 (rho = {rho:+.2})"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..1.0)
            .map_err(plot_error("axes"))?;
        chart.configure_mesh().x_desc(score.name()).y_desc("downstream F1").draw().map_err(plot_error("mesh"))?;
        for (i, family) in families(results).iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(
                    cells.iter().filter(|c| &c.family == family).map(|c| Circle::new((c.metric(score), c.truths[0]), 4, colour.filled())),
                )
                .map_err(plot_error("points"))?
                .label(family.as_str())
                .legend(move |(px, py)| Circle::new((px, py), 4, colour.filled()));
        }
        let (a, b) = fit_line(&x, &y);
        chart
            .draw_series(LineSeries::new([lo - pad, hi + pad].map(|v| (v, a + b * v)), BLACK.stroke_width(2)))
            .map_err(plot_error("line"))?;
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(plot_error("legend"))?;
    }
    root.present().map_err(plot_error("file"))
}

/// Pooled Spearman rho with downstream F1 of every metric, one bar per model.
pub fn rho_bars(config: &StudyConfig, rows: &[CorrelationRow], path: &Path) -> Result<()> {
    let (n_pos, n_pairs) = (config.default_positives(), config.max_pairs());
    let root = SVGBackend::new(path, (900, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error("background"))?;
    let metrics = Metric::ALL;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Spearman rho with downstream F1 (pooled, {n_pos} positives, {n_pairs} pairs)"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..metrics.len() as f64, -1.0..1.0)
        .map_err(plot_error("axes"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(metrics.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (*x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < metrics.len() {
                metrics[i as usize].name().to_string()
            } else {
                String::new()
            }
        })
        .x_label_style(("sans-serif", 12).into_font().transform(FontTransform::Rotate270))
        .y_desc("rho")
        .draw()
        .map_err(plot_error("mesh"))?;
    let width = 0.8 / config.models.len() as f64;
    for (m, model) in config.models.iter().enumerate() {
        let colour = COLOURS[m % COLOURS.len()];
        let bars = metrics.iter().enumerate().filter_map(|(i, metric)| {
            let r = find(rows, model, *metric, "lr_f1", "pooled", n_pos, n_pairs)?;
            let rho = r.spearman.value;
            rho.is_finite().then(|| {
                let x0 = i as f64 + 0.1 + m as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, rho)], colour.filled())
            })
        });
        chart
            .draw_series(bars)
            .map_err(plot_error("bars"))?
            .label(model.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error("legend"))?;
    root.present().map_err(plot_error("file"))
}

/// Pooled rho with F1 against the number of pairs for a few metrics, one panel per model.
pub fn rho_vs_pairs(config: &StudyConfig, rows: &[CorrelationRow], metrics: &[Metric], path: &Path) -> Result<()> {
    let n_pos = config.default_positives();
    let root = SVGBackend::new(path, (560 * config.models.len() as u32, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error("background"))?;
    let max_log = (config.max_pairs() as f64).log2() + 0.3;
    let min_log = (*config.pair_counts.iter().min().expect("pair counts") as f64).log2() - 0.3;
    for (panel, model) in root.split_evenly((1, config.models.len())).iter().zip(&config.models) {
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{model}: rho with F1 vs pairs ({n_pos} positives)"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(min_log..max_log, -1.0..1.0)
            .map_err(plot_error("axes"))?;
        chart.configure_mesh().x_desc("log2(pairs)").y_desc("rho").draw().map_err(plot_error("mesh"))?;
        for (i, metric) in metrics.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let points: Vec<(f64, f64)> = config
                .pair_counts
                .iter()
                .filter_map(|&n| {
                    let r = find(rows, model, *metric, "lr_f1", "pooled", n_pos, n)?;
                    r.spearman.value.is_finite().then_some(((n as f64).log2(), r.spearman.value))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(plot_error("lines"))?
                .label(metric.name())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error("legend"))?;
    }
    root.present().map_err(plot_error("file"))
}
