//! Scoring one cell of the study (surface, family, generator, model, number
//! of real positives, number of pairs) with DS and every baseline, and the
//! downstream truth a generator earns when a classifier is actually trained
//! on its synthetic positives.

use crate::baselines::{frechet_distance, kernel_inception_distance, mean_cosine, prdc};
use nalgebra::DMatrix;
use spanwatch_calibrate::metric::downstream::train_and_test;
use spanwatch_calibrate::metric::probe::{self, ProbeError};
use spanwatch_calibrate::metric::shift::{capped_probe_shift, probe_shift};
use spanwatch_calibrate::metric::{SpanFit, Standardization};
use spanwatch_core::span::{alignment, Solver};

/// The metrics the study compares, in the order of results.csv's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// DS with the paper's ridge span (lambda 0.01).
    DsRidge,
    /// DS with the exact span (lstsq).
    DsLstsq,
    /// DS with the sign-aware cone (NNLS), the default.
    DsNnls,
    /// The ridge span's chance-corrected capture.
    DsCorrected,
    /// Mean cosine of w and the changes.
    Alignment,
    /// The changes' mean shift along w, as a share of the real defects' gap.
    ProbeShift,
    /// The probe shift with each pair's share capped to [-1, 1].
    ShiftCapped,
    /// Frechet distance between real and synthetic positives (lower is better).
    Frechet,
    /// Kernel inception distance between real and synthetic positives (lower is better).
    Kid,
    /// PRDC precision.
    Precision,
    /// PRDC recall.
    Recall,
    /// PRDC density.
    Density,
    /// PRDC coverage.
    Coverage,
    /// Accuracy of a probe trained on the synthetic positives (the reference code's baseline; trains a classifier).
    ProbeAccuracy,
    /// Mean cosine of real and synthetic positives (the reference code's baseline).
    MeanCosine,
}

impl Metric {
    /// Every metric, in column order (`Metric::ALL[i] as usize == i`).
    pub const ALL: [Metric; 15] = [
        Metric::DsRidge,
        Metric::DsLstsq,
        Metric::DsNnls,
        Metric::DsCorrected,
        Metric::Alignment,
        Metric::ProbeShift,
        Metric::ShiftCapped,
        Metric::Frechet,
        Metric::Kid,
        Metric::Precision,
        Metric::Recall,
        Metric::Density,
        Metric::Coverage,
        Metric::ProbeAccuracy,
        Metric::MeanCosine,
    ];

    /// Its column name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::DsRidge => "ds_ridge",
            Metric::DsLstsq => "ds_lstsq",
            Metric::DsNnls => "ds_nnls",
            Metric::DsCorrected => "ds_corrected",
            Metric::Alignment => "alignment",
            Metric::ProbeShift => "probe_shift",
            Metric::ShiftCapped => "shift_capped",
            Metric::Frechet => "frechet",
            Metric::Kid => "kid",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Density => "density",
            Metric::Coverage => "coverage",
            Metric::ProbeAccuracy => "probe_accuracy",
            Metric::MeanCosine => "mean_cosine",
        }
    }

    /// Whether a higher value means more useful data (all but the two distances).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Frechet | Metric::Kid)
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Rows as a matrix.
pub fn matrix(rows: &[&[f32]]) -> DMatrix<f64> {
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j] as f64)
}

/// Inputs of one cell, as embeddings of one model.
pub struct Cell<'a> {
    /// Real negatives for training (probe and classifiers).
    pub negatives: &'a [&'a [f32]],
    /// Real positives for the probe.
    pub positives: &'a [&'a [f32]],
    /// (synthetic, source) embeddings.
    pub pairs: &'a [(&'a [f32], &'a [f32])],
    /// Held-out real images with their labels.
    pub test: &'a [&'a [f32]],
    /// Labels of `test`.
    pub labels: &'a [bool],
}

/// Every metric of [`Metric::ALL`] for one cell, in that order.
pub fn score_cell(cell: &Cell) -> Result<Vec<f64>, ProbeError> {
    let real: Vec<&[f32]> = cell.negatives.iter().chain(cell.positives).copied().collect();
    let standardization = Standardization::fit(&real);
    let z = |rows: &[&[f32]]| rows.iter().map(|r| standardization.apply(r)).collect::<Vec<_>>();
    let w = probe::fit_classes(&z(cell.negatives), &z(cell.positives))?.w;
    let diffs: Vec<Vec<f32>> = cell.pairs.iter().map(|(s, o)| standardization.difference(s, o)).collect();
    let fit = SpanFit::new(DMatrix::from_fn(diffs.len(), diffs[0].len(), |i, j| diffs[i][j] as f64));
    let ridge = fit.score(&w, Solver::Ridge { lambda: 0.01 });
    let mean_alignment = diffs.iter().map(|d| alignment(&w, d).unwrap_or(0.0)).sum::<f64>() / diffs.len() as f64;
    let (zn, zp) = (z(cell.negatives), z(cell.positives));
    let shift = probe_shift(&w, &diffs, &zn, &zp).unwrap_or(0.0);
    let capped = capped_probe_shift(&w, &diffs, &zn, &zp).unwrap_or(0.0);
    let synthetic: Vec<&[f32]> = cell.pairs.iter().map(|(s, _)| *s).collect();
    let (real_pos, fake) = (matrix(cell.positives), matrix(&synthetic));
    let k = 5.min(cell.positives.len() - 1).min(synthetic.len() - 1).max(1);
    let p = prdc(&real_pos, &fake, k);
    let (_, _, probe_accuracy) = train_and_test(cell.negatives, &synthetic, cell.test, cell.labels)?;
    Ok(vec![
        ridge.ds,
        fit.score(&w, Solver::Lstsq).ds,
        fit.score(&w, Solver::Nnls).ds,
        ridge.corrected,
        mean_alignment,
        shift,
        capped,
        frechet_distance(&real_pos, &fake),
        kernel_inception_distance(&real_pos, &fake),
        p.precision,
        p.recall,
        p.density,
        p.coverage,
        probe_accuracy,
        mean_cosine(&real_pos, &fake),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_listed_in_column_order_with_unique_names() {
        for (i, metric) in Metric::ALL.iter().enumerate() {
            assert_eq!(*metric as usize, i);
            assert_eq!(Metric::ALL.iter().filter(|m| m.name() == metric.name()).count(), 1);
        }
    }
}
