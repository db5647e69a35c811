//! Stream-level measurements for the edge alert (`spanwatch study --streams`):
//! which windowed statistic should the edge watch?
//!
//! Per surface and model, the probe is fitted on the real training images
//! (the headline number of real positives), and the faithful generator's
//! pairs are split in two: the even ones calibrate the alert (as `calibrate`
//! does: the `false_alarm` quantile of the lowest window over simulated good
//! streams), the odd ones are fresh good pairs the calibration never saw.
//! Then:
//! - false alarms: the share of good streams of `horizon` fresh pairs (drawn
//!   with replacement) whose window falls below the threshold;
//! - detection: a window of fresh good pairs, then a degraded generator's
//!   pairs in random order; the pairs after the switch until the window falls
//!   below the threshold (median over random orders).
//!
//! Each window is scored directly from its pairs' Gram matrix (the core's
//! cone on exactly the window), the batch equivalent of the edge's tracker.

use super::{Embeddings, Reference, StudyConfig, StudyGenerator, SurfaceImages};
use crate::metric::bootstrap::quantile;
use crate::metric::pair_window::PairWindow;
use crate::metric::probe;
use crate::metric::shift::real_gap;
use crate::metric::Standardization;
use anyhow::{Context, Result};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use spanwatch_core::detector::alignment_of_dots;
use spanwatch_core::span::Solver;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Pairs per window, as `calibrate`'s default.
const WINDOW: usize = 32;
/// Pairs per simulated stream.
const HORIZON: usize = 500;
/// Simulated streams for the threshold, and fresh good streams for false alarms.
const STREAMS: usize = 200;
/// Target share of good streams that may alarm.
const FALSE_ALARM: f64 = 0.05;
/// Random orders of each degraded generator's pairs.
const ORDERS: usize = 10;

/// A windowed statistic the edge could watch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Watched {
    /// The window's mean alignment (cosine of w and each change).
    Alignment,
    /// The window's mean probe shift (w . d over the real defects' gap).
    Shift,
    /// The window's mean capped probe shift (each pair's clamped to [-1, 1]).
    CappedShift,
    /// The window's cone DS.
    Cone,
}

impl Watched {
    const ALL: [Watched; 4] = [Watched::Alignment, Watched::Shift, Watched::CappedShift, Watched::Cone];

    fn name(&self) -> &'static str {
        match self {
            Watched::Alignment => "mean alignment",
            Watched::Shift => "mean probe shift",
            Watched::CappedShift => "mean capped shift",
            Watched::Cone => "cone DS",
        }
    }
}

/// The pairs of one (surface, model), as the windows need them.
struct Pairs {
    gram: DMatrix<f64>,
    /// h_i = w . d_i.
    h: Vec<f64>,
    w_norm2: f64,
    /// w . (mean real positive - mean real negative).
    gap: f64,
    d: usize,
}

impl Pairs {
    /// The cosine of w and pair `i`, as the edge computes it.
    fn alignment(&self, i: usize) -> f64 {
        alignment_of_dots(self.h[i], self.w_norm2, self.gram[(i, i)])
    }

    /// The statistic of every full window of `sequence`, in order: a mean
    /// over the window's pairs, or the cone through the core's window
    /// exactly as the edge computes it.
    fn windows(&self, watched: Watched, sequence: &[usize]) -> Vec<f64> {
        let per_pair: fn(&Pairs, usize) -> f64 = match watched {
            Watched::Cone => return self.cone_windows(sequence),
            Watched::Alignment => Pairs::alignment,
            Watched::Shift => |p, i| p.h[i] / p.gap,
            Watched::CappedShift => |p, i| (p.h[i] / p.gap).clamp(-1.0, 1.0),
        };
        sequence.windows(WINDOW).map(|window| window.iter().map(|&i| per_pair(self, i)).sum::<f64>() / window.len() as f64).collect()
    }

    fn cone_windows(&self, sequence: &[usize]) -> Vec<f64> {
        let mut ring = PairWindow::new(self.w_norm2, self.d, Solver::Nnls, WINDOW);
        let mut values = Vec::with_capacity(sequence.len().saturating_sub(WINDOW - 1));
        for (t, &pair) in sequence.iter().enumerate() {
            ring.push(&self.gram, pair, self.h[pair], 0.0);
            if t + 1 >= WINDOW {
                values.push(ring.span_ds(Solver::Nnls));
            }
        }
        values
    }
}

/// One (surface, model, statistic) row of the experiment.
pub struct StreamRow {
    /// Surface.
    pub surface: String,
    /// Model.
    pub model: String,
    /// Statistic watched.
    pub watched: Watched,
    /// The calibrated threshold.
    pub raise_below: f64,
    /// Share of fresh good streams that alarmed.
    pub false_alarms: f64,
    /// Per degraded generator: median pairs after the switch until the alarm (None: not within its pairs).
    pub detection: Vec<(StudyGenerator, Option<usize>)>,
}

/// Runs the experiment on every surface and model and writes streams.md under `out`.
pub fn run(config: &StudyConfig, surfaces: &[SurfaceImages], embeddings: &Embeddings, out: &Path) -> Result<Vec<StreamRow>> {
    let mut rows = Vec::new();
    for images in surfaces {
        for family in &images.families {
            for model in &config.models {
                rows.extend(
                    experiment(config, images, family, &embeddings[model.as_str()], model)
                        .with_context(|| format!("streams of {} / {family} / {model}", images.surface))?,
                );
            }
        }
    }
    let path = out.join("streams.md");
    std::fs::write(&path, summary(&rows)).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(rows)
}

fn experiment(
    config: &StudyConfig,
    images: &SurfaceImages,
    family: &str,
    embeddings: &std::collections::BTreeMap<PathBuf, Vec<f32>>,
    model: &str,
) -> Result<Vec<StreamRow>> {
    let get = |p: &PathBuf| embeddings[p].as_slice();
    let negatives: Vec<&[f32]> = images.train_negatives.iter().map(get).collect();
    let positives: Vec<&[f32]> = images.probe_positives[family][..config.default_positives()].iter().map(get).collect();
    let real: Vec<&[f32]> = negatives.iter().chain(&positives).copied().collect();
    let standardization = Standardization::fit(&real);
    let (zn, zp): (Vec<Vec<f32>>, Vec<Vec<f32>>) =
        (negatives.iter().map(|r| standardization.apply(r)).collect(), positives.iter().map(|r| standardization.apply(r)).collect());
    let w = probe::fit_classes(&zn, &zp)?.w;
    // Rows: the faithful pairs, then every other generator's, in study order.
    let mut rows: Vec<Vec<f32>> = Vec::new();
    let mut ranges: Vec<(StudyGenerator, std::ops::Range<usize>)> = Vec::new();
    for &generator in &images.generators {
        let start = rows.len();
        for (synthetic, source) in &images.pairs[&(family.to_string(), generator)] {
            rows.push(standardization.difference(get(synthetic), get(source)));
        }
        ranges.push((generator, start..rows.len()));
    }
    let d = w.len();
    let matrix = DMatrix::from_fn(rows.len(), d, |i, j| rows[i][j] as f64);
    let w_column = DMatrix::from_iterator(d, 1, w.iter().map(|&v| v as f64));
    let gap = real_gap(&w, &zn, &zp).context("the real classes do not differ along the probe")?;
    let pairs = Pairs {
        gram: &matrix * matrix.transpose(),
        h: (&matrix * &w_column).iter().copied().collect(),
        w_norm2: w_column.norm_squared(),
        gap,
        d,
    };
    let is_faithful = |g: &StudyGenerator| g.reference() == Some(Reference::Faithful);
    let faithful = ranges.iter().find(|(g, _)| is_faithful(g)).map(|(_, r)| r.clone()).context("no faithful generator")?;
    let (calibration, fresh): (Vec<usize>, Vec<usize>) = faithful.partition(|i| i % 2 == 0);
    let mut out = Vec::new();
    for watched in Watched::ALL {
        let mut rng = StdRng::seed_from_u64(1);
        let lowest = |from: &[usize], rng: &mut StdRng| {
            let stream: Vec<usize> = (0..HORIZON).map(|_| from[rng.random_range(0..from.len())]).collect();
            pairs.windows(watched, &stream).into_iter().fold(f64::INFINITY, f64::min)
        };
        let minima: Vec<f64> = {
            let mut m: Vec<f64> = (0..STREAMS).map(|_| lowest(&calibration, &mut rng)).collect();
            m.sort_by(f64::total_cmp);
            m
        };
        let raise_below = quantile(&minima, FALSE_ALARM);
        let false_alarms = (0..STREAMS).filter(|_| lowest(&fresh, &mut rng) < raise_below).count() as f64 / STREAMS as f64;
        let detection = ranges
            .iter()
            .filter(|(g, _)| !is_faithful(g))
            .map(|(name, range)| {
                let mut delays: Vec<Option<usize>> = (0..ORDERS)
                    .map(|_| {
                        let mut degraded: Vec<usize> = range.clone().collect();
                        degraded.shuffle(&mut rng);
                        let lead: Vec<usize> = (0..WINDOW).map(|_| fresh[rng.random_range(0..fresh.len())]).collect();
                        let stream: Vec<usize> = lead.into_iter().chain(degraded).collect();
                        // Window t ends at pair WINDOW + t - 1: t pairs after the switch.
                        pairs.windows(watched, &stream).iter().skip(1).position(|&v| v < raise_below).map(|t| t + 1)
                    })
                    .collect();
                delays.sort_by_key(|d| d.unwrap_or(usize::MAX));
                (*name, delays[ORDERS / 2])
            })
            .collect();
        out.push(StreamRow { surface: images.surface.clone(), model: model.to_string(), watched, raise_below, false_alarms, detection });
    }
    Ok(out)
}

fn summary(rows: &[StreamRow]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Which statistic should the edge alert watch?\n");
    let _ = writeln!(
        md,
        "Windows of {WINDOW} pairs; threshold at the {FALSE_ALARM} quantile of the lowest window of {STREAMS} simulated good streams of {HORIZON} calibration pairs (the even faithful pairs). False alarms: share of {STREAMS} streams of {HORIZON} fresh faithful pairs (the odd ones, never calibrated on) that fall below it. Detection: {WINDOW} fresh good pairs, then the degraded generator's pairs in random order; median over {ORDERS} orders of the pairs after the switch until the alert (- = not within the generator's pairs).\n"
    );
    let mut last = (String::new(), String::new());
    for row in rows {
        if (row.surface.clone(), row.model.clone()) != last {
            last = (row.surface.clone(), row.model.clone());
            let _ = writeln!(md, "\n## {} / {}\n", row.surface, row.model);
            let names: Vec<String> = row.detection.iter().map(|(g, _)| g.name()).collect();
            let _ = writeln!(md, "| statistic | threshold | false alarms | {} |", names.join(" | "));
            let _ = writeln!(md, "|---|---|---|{}", "---|".repeat(names.len()));
        }
        let delays: Vec<String> = row.detection.iter().map(|(_, d)| d.map_or("-".into(), |v| v.to_string())).collect();
        let _ =
            writeln!(md, "| {} | {:.4} | {:.0}% | {} |", row.watched.name(), row.raise_below, 100.0 * row.false_alarms, delays.join(" | "));
    }
    md
}
