//! The change's share outside the reference basis (`off_span`): a
//! candidate statistic for the drift detector that the stream study
//! measures (docs/validation.md, "A candidate fourth CUSUM"); the detector
//! does not watch it yet.

use crate::calibration::SourceFolds;
use crate::metric::SpanFit;
use crate::pipeline::GeneratorDiffs;

/// The share of each of `generator`'s changes outside a reference basis
/// fitted without its fold's pairs (`SourceFolds`), as [`off_span`]
/// computes it against the bundle's basis for a pair the calibration never
/// saw; a pair in no fold is measured against the basis of all pairs (its
/// own change among them). For the study's candidate statistic.
pub fn cross_fitted_off_span(generator: &GeneratorDiffs, split: &SourceFolds) -> Vec<f64> {
    let basis_without = |f: Option<usize>| {
        let rows: Vec<usize> = (0..generator.pairs.len()).filter(|&i| f.is_none() || split.fold_of_pair[i] != f).collect();
        SpanFit::new(generator.diffs.select_rows(&rows)).basis().to_vec()
    };
    let bases: Vec<Vec<f32>> = (0..split.folds).map(|f| basis_without(Some(f))).collect();
    let full = basis_without(None);
    split
        .fold_of_pair
        .iter()
        .enumerate()
        .map(|(i, fold)| {
            let d: Vec<f32> = generator.diffs.row(i).iter().map(|&v| v as f32).collect();
            off_span(fold.map_or(&full, |f| &bases[f]), &d)
        })
        .collect()
}

/// The share of `d`'s norm outside the span of the orthonormal rows of
/// `basis`, sqrt(1 - ||B d||^2 / ||d||^2): 0 for a change the reference
/// pairs' changes span (and for no change at all), 1 for one orthogonal to
/// them. A candidate statistic of the drift detector, measured by the study.
pub fn off_span(basis: &[f32], d: &[f32]) -> f64 {
    let energy = spanwatch_core::dot(d, d);
    if energy <= 0.0 {
        return 0.0;
    }
    let inside: f64 = basis.chunks(d.len()).map(|row| spanwatch_core::dot(row, d).powi(2)).sum();
    (1.0 - inside / energy).max(0.0).sqrt()
}
