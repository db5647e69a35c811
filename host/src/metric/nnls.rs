//! Non-negative least squares: min ||A^T alpha - w|| subject to alpha >= 0,
//! where the rows of A are the difference vectors (the cone they span).
//!
//! Lawson-Hanson's active-set method on the normal equations (the "fast
//! NNLS" of Bro and de Jong): it works with the n x n Gram matrix G = A A^T
//! and h = A w, so each step solves a small system on the passive set.

use nalgebra::{DMatrix, DVector};

/// Solves the NNLS problem given G = A A^T and h = A w. Returns alpha >= 0.
pub fn nnls_gram(gram: &DMatrix<f64>, h: &DVector<f64>) -> DVector<f64> {
    let n = h.len();
    let scale = gram.diagonal().max().max(h.amax()).max(f64::MIN_POSITIVE);
    let tolerance = 1e-12 * scale * n.max(1) as f64;
    let mut alpha = DVector::<f64>::zeros(n);
    let mut passive = vec![false; n];
    let mut gradient = h.clone();
    for _ in 0..3 * n + 10 {
        // The most promising index not yet in the passive set.
        let Some((j, &g)) = gradient.iter().enumerate().filter(|(i, _)| !passive[*i]).max_by(|a, b| a.1.total_cmp(b.1)) else {
            break;
        };
        if g <= tolerance {
            break;
        }
        passive[j] = true;
        loop {
            let s = solve_passive(gram, h, &passive);
            let blocking = (0..n).filter(|&i| passive[i] && s[i] <= 0.0);
            let step = blocking.map(|i| alpha[i] / (alpha[i] - s[i])).fold(f64::INFINITY, f64::min);
            if !step.is_finite() {
                alpha = s;
                break;
            }
            alpha += (s - &alpha) * step;
            for i in 0..n {
                if passive[i] && alpha[i] <= tolerance / scale {
                    passive[i] = false;
                    alpha[i] = 0.0;
                }
            }
        }
        gradient = h - gram * &alpha;
    }
    alpha
}

/// Least squares restricted to the passive set: G_PP s_P = h_P, s elsewhere 0.
fn solve_passive(gram: &DMatrix<f64>, h: &DVector<f64>, passive: &[bool]) -> DVector<f64> {
    let index: Vec<usize> = (0..h.len()).filter(|&i| passive[i]).collect();
    let m = index.len();
    let sub = DMatrix::from_fn(m, m, |a, b| gram[(index[a], index[b])]);
    let rhs = DVector::from_fn(m, |a, _| h[index[a]]);
    let solution = match sub.clone().cholesky() {
        Some(cholesky) => cholesky.solve(&rhs),
        // Linearly dependent difference vectors: the minimum-norm solution.
        None => sub.svd(true, true).solve(&rhs, 1e-12).expect("both factors were computed"),
    };
    let mut s = DVector::<f64>::zeros(h.len());
    for (a, &i) in index.iter().enumerate() {
        s[i] = solution[a];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cone_excludes_opposite_directions() {
        // Rows: e1 and -e2. w = e1 + e2: the cone reaches e1 only.
        let a = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, -1.0]);
        let w = DVector::from_vec(vec![1.0, 1.0]);
        let alpha = nnls_gram(&(&a * a.transpose()), &(&a * &w));
        assert!((alpha[0] - 1.0).abs() < 1e-12 && alpha[1] == 0.0);
    }

    #[test]
    fn duplicate_rows_do_not_break_it() {
        let a = DMatrix::from_row_slice(3, 2, &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let w = DVector::from_vec(vec![2.0, 2.0]);
        let alpha = nnls_gram(&(&a * a.transpose()), &(&a * &w));
        let reconstruction = a.transpose() * &alpha;
        assert!((reconstruction - w).norm() < 1e-9);
        assert!(alpha.iter().all(|&v| v >= 0.0));
    }
}
