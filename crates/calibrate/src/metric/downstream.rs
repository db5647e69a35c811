//! The downstream truth a set of synthetic positives earns: a linear
//! classifier actually trained on real negatives plus those positives, tested
//! on held-out real images. Used by the study and by `score --holdout`.

use crate::metric::probe::{self, ProbeError};
use crate::metric::Standardization;
use crate::stats::{auroc, f1};

/// A linear classifier trained on standardized `negatives` (0) and
/// `positives` (1), tested on `test` with `labels`: (F1 at p = 0.5, AUROC, accuracy).
pub fn train_and_test(negatives: &[&[f32]], positives: &[&[f32]], test: &[&[f32]], labels: &[bool]) -> Result<(f64, f64, f64), ProbeError> {
    let train: Vec<&[f32]> = negatives.iter().chain(positives).copied().collect();
    let standardization = Standardization::fit(&train);
    let z = |rows: &[&[f32]]| rows.iter().map(|r| standardization.apply(r)).collect::<Vec<_>>();
    let model = probe::fit_classes(&z(negatives), &z(positives))?;
    let scores: Vec<f64> = z(test).iter().map(|r| spanwatch_core::dot(r, &model.w) + model.bias).collect();
    let predicted: Vec<bool> = scores.iter().map(|&s| s > 0.0).collect();
    let accuracy = predicted.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64;
    Ok((f1(&predicted, labels), auroc(&scores, labels), accuracy))
}
