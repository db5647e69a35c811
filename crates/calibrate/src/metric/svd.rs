//! Thin SVD of the difference matrix D (n x d, one difference vector a row),
//! through the eigendecomposition of the smaller Gram matrix.
//!
//! For n <= d, D D^T = U S^2 U^T gives the singular values, and the right
//! singular vectors follow as v_j = D^T u_j / s_j, computed only for the top
//! k that the metric keeps. For n > d, D^T D = V S^2 V^T gives them directly.
//! Squaring costs accuracy only in singular values below about 1e-8 s_1,
//! which weigh nothing in the effective rank and are never in the top k
//! (checked against numpy's LAPACK SVD in crates/calibrate/tests/metric_reference.rs). The
//! Gram product and the eigendecomposition run in faer (blocked, on every
//! core through rayon): at n = 1000, d = 1280 it is several times faster
//! than nalgebra's (crates/calibrate/benches/speed.rs).

use faer::{MatRef, Side};
use nalgebra::{DMatrix, SymmetricEigen};

/// Singular values and the means to get right singular vectors.
pub struct ThinSvd {
    /// s_1 >= s_2 >= ... >= 0, all min(n, d) of them.
    pub singular_values: Vec<f64>,
    /// Eigenvectors of the Gram matrix, columns in the order of `singular_values`.
    vectors: DMatrix<f64>,
    /// True when the Gram matrix was D D^T (vectors are left singular vectors).
    left: bool,
}

/// Computes the thin SVD of `d`.
pub fn thin_svd(d: &DMatrix<f64>) -> ThinSvd {
    let left = d.nrows() <= d.ncols();
    let a = MatRef::from_column_major_slice(d.as_slice(), d.nrows(), d.ncols());
    let gram = if left { a * a.transpose() } else { a.transpose() * a };
    let (values, vectors): (Vec<f64>, DMatrix<f64>) = match gram.self_adjoint_eigen(Side::Lower) {
        Ok(eigen) => {
            let u = eigen.U();
            (eigen.S().column_vector().iter().copied().collect(), DMatrix::from_fn(u.nrows(), u.ncols(), |i, j| u[(i, j)]))
        }
        // faer's QR iteration did not converge (not seen on finite input):
        // nalgebra's implicit QL on the same Gram matrix.
        Err(_) => {
            let eigen = SymmetricEigen::new(DMatrix::from_fn(gram.nrows(), gram.ncols(), |i, j| gram[(i, j)]));
            (eigen.eigenvalues.iter().copied().collect(), eigen.eigenvectors)
        }
    };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let singular_values = order.iter().map(|&j| values[j].max(0.0).sqrt()).collect();
    let vectors = DMatrix::from_fn(vectors.nrows(), order.len(), |i, c| vectors[(i, order[c])]);
    ThinSvd { singular_values, vectors, left }
}

impl ThinSvd {
    /// The top `k` right singular vectors of `d` as rows (k x d), unit length;
    /// a direction with a zero singular value is left as a zero row.
    pub fn right_vectors(&self, d: &DMatrix<f64>, k: usize) -> DMatrix<f64> {
        if !self.left {
            return self.vectors.columns(0, k).transpose();
        }
        let mut rows = (d.transpose() * self.vectors.columns(0, k)).transpose();
        for (j, mut row) in rows.row_iter_mut().enumerate() {
            let s = self.singular_values[j];
            if s > 0.0 {
                row /= s;
            } else {
                row.fill(0.0);
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(d: DMatrix<f64>) {
        let svd = thin_svd(&d);
        let reference = nalgebra::SVD::new(d.clone(), false, true);
        for (ours, theirs) in svd.singular_values.iter().zip(reference.singular_values.iter()) {
            assert!((ours - theirs).abs() < 1e-9, "{ours} vs {theirs}");
        }
        let k = svd.singular_values.iter().filter(|&&s| s > 1e-6).count();
        let v = svd.right_vectors(&d, k);
        let vt = reference.v_t.unwrap();
        for j in 0..k {
            // Same direction up to sign.
            assert!((v.row(j).dot(&vt.row(j)).abs() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn matches_golub_kahan_svd_for_wide_and_tall_matrices() {
        let wide = DMatrix::from_fn(4, 7, |i, j| ((i * 7 + j) as f64 * 0.37).sin() + if i == j { 2.0 } else { 0.0 });
        check(wide.clone());
        check(wide.transpose());
    }

    #[test]
    fn zero_matrix_has_zero_spectrum_and_zero_vectors() {
        let d = DMatrix::<f64>::zeros(3, 5);
        let svd = thin_svd(&d);
        assert!(svd.singular_values.iter().all(|&s| s == 0.0));
        assert!(svd.right_vectors(&d, 1).iter().all(|&v| v == 0.0));
    }
}
