//! The probe shift: how far a generator's changes move a normal image along
//! the probe, as a share of how far real defects sit from real normals.
//!
//! DS and the mean alignment only see directions: a faint change that points
//! the right way scores like a strong one, though a classifier trained on
//! faint synthetic defects learns little (measured on photographed defects,
//! docs/validation.md). The probe shift keeps the sign and the size:
//! `mean_i (w . d_i) / (w . (mean z(positives) - mean z(negatives)))`, 1 when
//! the changes move along w as far as the real defects do, 0 for copies, and
//! negative when they point away from the defect side.

use spanwatch_core::dot;

/// The mean of the rows of `rows` (all of length `d`).
fn mean(rows: &[Vec<f32>], d: usize) -> Vec<f32> {
    let mut sum = vec![0.0f64; d];
    for row in rows {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    sum.iter().map(|s| (s / rows.len().max(1) as f64) as f32).collect()
}

/// w . (mean of `positives` - mean of `negatives`): how far real defects
/// sit from real normals along w. None when they do not differ along it.
pub fn real_gap(w: &[f32], negatives: &[Vec<f32>], positives: &[Vec<f32>]) -> Option<f64> {
    let d = w.len();
    let gap = dot(w, &mean(positives, d)) - dot(w, &mean(negatives, d));
    (gap.abs() > 0.0 && gap.is_finite()).then_some(gap)
}

/// The shift of each difference vector along w as a share of `gap`.
pub fn pair_shifts<R: AsRef<[f32]>>(w: &[f32], diffs: impl IntoIterator<Item = R>, gap: f64) -> Vec<f64> {
    diffs.into_iter().map(|row| dot(w, row.as_ref()) / gap).collect()
}

/// The probe shift of the difference vectors `diffs` against the real
/// `negatives` and `positives`, all in the standardized space of `w`.
/// None when the real classes do not differ along w, or there are no diffs.
pub fn probe_shift(w: &[f32], diffs: &[Vec<f32>], negatives: &[Vec<f32>], positives: &[Vec<f32>]) -> Option<f64> {
    mean_shift(w, diffs, real_gap(w, negatives, positives)?)
}

/// The mean of [`pair_shifts`] (None without diffs): the probe shift for a
/// real gap computed once for many sets of diffs.
pub fn mean_shift<R: AsRef<[f32]>>(w: &[f32], diffs: impl IntoIterator<Item = R>, gap: f64) -> Option<f64> {
    let shifts = pair_shifts(w, diffs, gap);
    (!shifts.is_empty()).then(|| shifts.iter().sum::<f64>() / shifts.len() as f64)
}

/// The capped probe shift: each pair's shift clamped to [-1, 1] before the
/// mean, so that a change pushed further along w than real defects sit
/// counts as a real one, not more (exaggeration is not extra utility).
pub fn capped_probe_shift(w: &[f32], diffs: &[Vec<f32>], negatives: &[Vec<f32>], positives: &[Vec<f32>]) -> Option<f64> {
    let gap = real_gap(w, negatives, positives)?;
    let shifts = pair_shifts(w, diffs, gap);
    (!shifts.is_empty()).then(|| shifts.iter().map(|s| s.clamp(-1.0, 1.0)).sum::<f64>() / shifts.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_is_the_share_of_the_real_gap_along_w() {
        let w = [2.0, 0.0];
        let negatives = vec![vec![0.0, 5.0], vec![0.0, -5.0]];
        let positives = vec![vec![4.0, 1.0], vec![4.0, 3.0]];
        // Real gap along w: 2 * 4 = 8. Changes of +2 and +4 along the first axis: mean 6 / 8.
        let diffs = vec![vec![2.0, 9.0], vec![4.0, -9.0]];
        assert!((probe_shift(&w, &diffs, &negatives, &positives).unwrap() - 0.75).abs() < 1e-12);
        // Opposed changes are negative, copies zero, and no gap has no shift.
        assert!(probe_shift(&w, &[vec![-4.0, 0.0]], &negatives, &positives).unwrap() < 0.0);
        assert_eq!(probe_shift(&w, &[vec![0.0, 0.0]], &negatives, &positives), Some(0.0));
        assert_eq!(probe_shift(&w, &diffs, &negatives, &negatives), None);
        // Capped: shifts of 0.25 and 3 count as 0.25 and 1.
        let far = vec![vec![1.0, 0.0], vec![12.0, 0.0]];
        assert!((probe_shift(&w, &far, &negatives, &positives).unwrap() - 1.625).abs() < 1e-12);
        assert!((capped_probe_shift(&w, &far, &negatives, &positives).unwrap() - 0.625).abs() < 1e-12);
    }
}
