//! Thin SVD of the difference matrix D (n x d, one difference vector a row).

use nalgebra::DMatrix;

/// Singular values (descending, all min(n, d) of them) and the matching right
/// singular vectors as rows of `vt`.
pub struct ThinSvd {
    /// s_1 >= s_2 >= ... >= 0.
    pub singular_values: Vec<f64>,
    /// min(n, d) x d, row j the right singular vector of s_j.
    pub vt: DMatrix<f64>,
}

/// Computes the thin SVD of `d`, via the eigen-free Golub-Kahan SVD of nalgebra.
pub fn thin_svd(d: &DMatrix<f64>) -> ThinSvd {
    let svd = nalgebra::SVD::new(d.clone(), false, true);
    let vt = svd.v_t.expect("right singular vectors were requested");
    ThinSvd { singular_values: svd.singular_values.iter().copied().collect(), vt }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconstructs_a_known_matrix() {
        let d = DMatrix::from_row_slice(2, 3, &[3.0, 0.0, 0.0, 0.0, 0.0, -2.0]);
        let svd = thin_svd(&d);
        assert_eq!(svd.singular_values.len(), 2);
        assert!((svd.singular_values[0] - 3.0).abs() < 1e-12 && (svd.singular_values[1] - 2.0).abs() < 1e-12);
        assert!((svd.vt[(0, 0)].abs() - 1.0).abs() < 1e-12 && (svd.vt[(1, 2)].abs() - 1.0).abs() < 1e-12);
    }
}
