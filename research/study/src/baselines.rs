//! The metrics users already know, computed on the same embeddings as DS:
//! Frechet distance (FID-style), kernel inception distance (KID), and
//! precision, recall, density and coverage (PRDC, Naeem et al. 2020).
//! Rows of the matrices are embeddings; `real` is the reference set (real
//! positives), `fake` the set judged (synthetic positives).

use nalgebra::{DMatrix, DVector};

fn mean_row(x: &DMatrix<f64>) -> DVector<f64> {
    x.row_mean().transpose()
}

fn centered(x: &DMatrix<f64>) -> DMatrix<f64> {
    let mean = x.row_mean();
    let mut c = x.clone();
    for mut row in c.row_iter_mut() {
        row -= &mean;
    }
    c
}

/// Frechet distance between Gaussians fitted to the two sets (unbiased
/// covariances): ||mu_r - mu_f||^2 + tr S_r + tr S_f - 2 tr (S_r S_f)^(1/2).
/// The trace of the matrix square root is the nuclear norm of
/// A_r A_f^T / sqrt((n_r - 1)(n_f - 1)) for centered data A, which costs an
/// n_r x n_f SVD instead of a d x d matrix square root. Each set needs 2 rows.
pub fn frechet_distance(real: &DMatrix<f64>, fake: &DMatrix<f64>) -> f64 {
    let (a, b) = (centered(real), centered(fake));
    let (cr, cf) = ((real.nrows() - 1) as f64, (fake.nrows() - 1) as f64);
    let mean_gap = (mean_row(real) - mean_row(fake)).norm_squared();
    let traces = a.norm_squared() / cr + b.norm_squared() / cf;
    let cross = (&a * b.transpose()).singular_values().sum() / (cr * cf).sqrt();
    (mean_gap + traces - 2.0 * cross).max(0.0)
}

/// Unbiased squared MMD with the cubic polynomial kernel
/// k(x, y) = (x.y / d + 1)^3, as in KID, over the full sets (no subsets).
pub fn kernel_inception_distance(real: &DMatrix<f64>, fake: &DMatrix<f64>) -> f64 {
    let d = real.ncols() as f64;
    let kernel = |x: &DMatrix<f64>, y: &DMatrix<f64>| (x * y.transpose()).map(|v| (v / d + 1.0).powi(3));
    let off_diagonal_mean = |k: &DMatrix<f64>| {
        let n = k.nrows() as f64;
        (k.sum() - k.trace()) / (n * (n - 1.0))
    };
    off_diagonal_mean(&kernel(real, real)) + off_diagonal_mean(&kernel(fake, fake)) - 2.0 * kernel(real, fake).mean()
}

/// Precision, recall, density and coverage with k nearest neighbours.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Prdc {
    /// Share of fake samples inside some real sample's k-NN ball.
    pub precision: f64,
    /// Share of real samples inside some fake sample's k-NN ball.
    pub recall: f64,
    /// Mean count of real balls holding each fake sample, over k.
    pub density: f64,
    /// Share of real samples whose ball holds at least one fake sample.
    pub coverage: f64,
}

fn pairwise_distances(x: &DMatrix<f64>, y: &DMatrix<f64>) -> DMatrix<f64> {
    let xx: Vec<f64> = x.row_iter().map(|r| r.norm_squared()).collect();
    let yy: Vec<f64> = y.row_iter().map(|r| r.norm_squared()).collect();
    let xy = x * y.transpose();
    DMatrix::from_fn(x.nrows(), y.nrows(), |i, j| (xx[i] + yy[j] - 2.0 * xy[(i, j)]).max(0.0).sqrt())
}

/// Distance from each row to its k-th nearest other row of the same set.
fn kth_neighbour_radii(x: &DMatrix<f64>, k: usize) -> Vec<f64> {
    let distances = pairwise_distances(x, x);
    distances
        .row_iter()
        .map(|row| {
            let mut sorted: Vec<f64> = row.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            // sorted[0] is the row itself (distance 0).
            sorted[k.min(sorted.len() - 1)]
        })
        .collect()
}

/// PRDC with `k` nearest neighbours (Naeem et al. 2020, Euclidean distance).
pub fn prdc(real: &DMatrix<f64>, fake: &DMatrix<f64>, k: usize) -> Prdc {
    let real_radii = kth_neighbour_radii(real, k);
    let fake_radii = kth_neighbour_radii(fake, k);
    let real_to_fake = pairwise_distances(real, fake);
    let (n_real, n_fake) = (real.nrows(), fake.nrows());
    let inside_real = |i: usize, j: usize| real_to_fake[(i, j)] < real_radii[i];
    let precision = (0..n_fake).filter(|&j| (0..n_real).any(|i| inside_real(i, j))).count() as f64 / n_fake as f64;
    let recall = (0..n_real).filter(|&i| (0..n_fake).any(|j| real_to_fake[(i, j)] < fake_radii[j])).count() as f64 / n_real as f64;
    let density = (0..n_fake).map(|j| (0..n_real).filter(|&i| inside_real(i, j)).count()).sum::<usize>() as f64 / (k * n_fake) as f64;
    let nearest_fake = |i: usize| real_to_fake.row(i).iter().copied().fold(f64::INFINITY, f64::min);
    let coverage = (0..n_real).filter(|&i| nearest_fake(i) < real_radii[i]).count() as f64 / n_real as f64;
    Prdc { precision, recall, density, coverage }
}

/// Cosine of the mean real-positive and mean synthetic-positive embeddings
/// (the reference code's simplest baseline).
pub fn mean_cosine(real: &DMatrix<f64>, fake: &DMatrix<f64>) -> f64 {
    let (a, b) = (mean_row(real), mean_row(fake));
    a.dot(&b) / (a.norm() * b.norm()).max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sets_are_at_distance_zero() {
        let x = DMatrix::from_fn(6, 3, |i, j| ((i * 3 + j) as f64 * 0.7).sin());
        assert!(frechet_distance(&x, &x).abs() < 1e-9);
        let p = prdc(&x, &x, 2);
        assert_eq!((p.precision, p.recall, p.coverage), (1.0, 1.0, 1.0));
        assert!((mean_cosine(&x, &x) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn frechet_of_shifted_set_is_the_squared_shift() {
        let x = DMatrix::from_fn(5, 2, |i, j| (i as f64) * if j == 0 { 1.0 } else { -0.5 });
        let shifted = x.map(|v| v + 3.0);
        assert!((frechet_distance(&x, &shifted) - 18.0).abs() < 1e-9);
    }
}
