//! Fixed-size linear algebra on a window's Gram matrix, without allocation:
//! a cyclic Jacobi eigendecomposition and non-negative least squares.
//! Matrices are `[[f64; W]; W]` of which the top-left n x n is in use.

/// A symmetric matrix of at most W x W and its size in use.
pub type Square<const W: usize> = [[f64; W]; W];

/// Eigenvalues (descending) and eigenvectors (columns, same order) of the
/// top-left n x n of the symmetric `a`, by cyclic Jacobi rotations.
pub fn symmetric_eigen<const W: usize>(a: &Square<W>, n: usize, values: &mut [f64; W], vectors: &mut Square<W>) {
    let mut m = *a;
    for (i, row) in vectors.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if i == j { 1.0 } else { 0.0 };
        }
    }
    let scale: f64 = (0..n).map(|i| m[i][i] * m[i][i]).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..64 {
        let off: f64 = (0..n).flat_map(|p| (p + 1..n).map(move |q| (p, q))).map(|(p, q)| m[p][q] * m[p][q]).sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if m[p][q] == 0.0 {
                    continue;
                }
                let theta = (m[q][q] - m[p][p]) / (2.0 * m[p][q]);
                let t = theta.signum() / (theta.abs() + libm::sqrt(theta * theta + 1.0));
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / libm::sqrt(t * t + 1.0);
                let s = t * c;
                for k in 0..n {
                    let (kp, kq) = (m[k][p], m[k][q]);
                    m[k][p] = c * kp - s * kq;
                    m[k][q] = s * kp + c * kq;
                }
                for k in 0..n {
                    let (pk, qk) = (m[p][k], m[q][k]);
                    m[p][k] = c * pk - s * qk;
                    m[q][k] = s * pk + c * qk;
                }
                for row in vectors.iter_mut().take(n) {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
    }
    // Sort descending (selection sort: n <= W is small), columns with them.
    for i in 0..n {
        values[i] = m[i][i];
    }
    for i in 0..n {
        let best = (i..n).max_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap_or(i);
        if best != i {
            values.swap(i, best);
            for row in vectors.iter_mut().take(n) {
                row.swap(i, best);
            }
        }
    }
}

/// Solves min ||A^T alpha - w|| over alpha >= 0 given G = A A^T (n x n) and
/// h = A w, by Lawson-Hanson on the normal equations, starting from the
/// feasible `alpha` (its support is the initial passive set): a warm start
/// from the previous window's solution usually needs a step or two.
pub fn nnls<const W: usize>(g: &Square<W>, h: &[f64; W], n: usize, alpha: &mut [f64; W]) {
    let scale = (0..n).map(|i| g[i][i].abs().max(h[i].abs())).fold(f64::MIN_POSITIVE, f64::max);
    let tolerance = 1e-12 * scale * n.max(1) as f64;
    let mut passive = [false; W];
    for i in 0..n {
        alpha[i] = alpha[i].max(0.0);
        passive[i] = alpha[i] > 0.0;
    }
    for a in alpha.iter_mut().skip(n) {
        *a = 0.0;
    }
    let mut z = [0.0; W];
    for _ in 0..3 * W + 10 {
        // Inner loop: make the passive-set solution feasible.
        loop {
            solve_passive(g, h, n, &passive, &mut z);
            let step = (0..n).filter(|&i| passive[i] && z[i] <= 0.0).map(|i| alpha[i] / (alpha[i] - z[i])).fold(f64::INFINITY, f64::min);
            if !step.is_finite() {
                alpha[..n].copy_from_slice(&z[..n]);
                break;
            }
            for i in 0..n {
                alpha[i] += step * (z[i] - alpha[i]);
                if passive[i] && alpha[i] <= tolerance / scale {
                    passive[i] = false;
                    alpha[i] = 0.0;
                }
            }
        }
        // Outer loop: the most promising index outside the passive set.
        let gradient = |j: usize| h[j] - (0..n).map(|i| g[j][i] * alpha[i]).sum::<f64>();
        let next = (0..n).filter(|&j| !passive[j]).map(|j| (j, gradient(j))).max_by(|a, b| a.1.total_cmp(&b.1));
        match next {
            Some((j, value)) if value > tolerance => passive[j] = true,
            _ => return,
        }
    }
}

/// z_P = G_PP^-1 h_P by Cholesky (with a tiny ridge if G_PP is singular), z = 0 elsewhere.
fn solve_passive<const W: usize>(g: &Square<W>, h: &[f64; W], n: usize, passive: &[bool; W], z: &mut [f64; W]) {
    let mut index = [0usize; W];
    let mut m = 0;
    for i in 0..n {
        if passive[i] {
            index[m] = i;
            m += 1;
        }
    }
    let mut l: Square<W> = [[0.0; W]; W];
    let jitter = 1e-12 * (0..m).map(|a| g[index[a]][index[a]]).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    for a in 0..m {
        for b in 0..=a {
            let mut sum = g[index[a]][index[b]] - (0..b).map(|c| l[a][c] * l[b][c]).sum::<f64>();
            if a == b {
                sum = if sum > jitter { sum } else { sum.max(0.0) + jitter };
                l[a][a] = libm::sqrt(sum);
            } else {
                l[a][b] = sum / l[b][b];
            }
        }
    }
    let mut y = [0.0; W];
    for a in 0..m {
        y[a] = (h[index[a]] - (0..a).map(|c| l[a][c] * y[c]).sum::<f64>()) / l[a][a];
    }
    z.iter_mut().for_each(|v| *v = 0.0);
    for a in (0..m).rev() {
        let value = (y[a] - (a + 1..m).map(|c| l[c][a] * z[index[c]]).sum::<f64>()) / l[a][a];
        z[index[a]] = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_of_a_known_matrix() {
        let a: Square<3> = [[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]];
        let (mut values, mut vectors) = ([0.0; 3], [[0.0; 3]; 3]);
        symmetric_eigen(&a, 3, &mut values, &mut vectors);
        for (got, want) in values.iter().zip([5.0, 3.0, 1.0]) {
            assert!((got - want).abs() < 1e-12, "{values:?}");
        }
        // A v = lambda v for each column.
        for j in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|k| a[i][k] * vectors[k][j]).sum();
                assert!((av - values[j] * vectors[i][j]).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn nnls_cone_excludes_opposite_directions_and_warm_starts() {
        // Rows of A: e1, -e2, e1 + e2. w = (1, 1): the third row alone fits exactly.
        let g: Square<4> = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, -1.0, 0.0], [1.0, -1.0, 2.0, 0.0], [0.0; 4]];
        let h = [1.0, -1.0, 2.0, 0.0];
        let mut alpha = [0.0; 4];
        nnls(&g, &h, 3, &mut alpha);
        let residual = 2.0 - 2.0 * (0..3).map(|i| h[i] * alpha[i]).sum::<f64>()
            + (0..3).flat_map(|i| (0..3).map(move |j| (i, j))).map(|(i, j)| alpha[i] * g[i][j] * alpha[j]).sum::<f64>();
        assert!(residual.abs() < 1e-12 && alpha.iter().all(|&a| a >= 0.0), "{alpha:?}");
        assert_eq!(alpha[1], 0.0);
        // Warm start from an infeasible-for-the-optimum support converges too.
        let mut warm = [0.5, 0.0, 0.0, 0.0];
        nnls(&g, &h, 3, &mut warm);
        let fit: [f64; 2] = [warm[0] + warm[2], -warm[1] + warm[2]];
        assert!((fit[0] - 1.0).abs() < 1e-9 && (fit[1] - 1.0).abs() < 1e-9, "{warm:?}");
    }
}
