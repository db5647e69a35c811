//! Fixed-size linear algebra on a window's Gram matrix, without allocation:
//! a symmetric eigendecomposition and non-negative least squares.
//! Matrices are `[[f64; W]; W]` of which the top-left n x n is in use.

/// A symmetric matrix of at most W x W and its size in use.
pub type Square<const W: usize> = [[f64; W]; W];

/// Working memory of the eigendecomposition and NNLS, kept inside the window
/// (and so inside the tracker) rather than on the stack: a tracker's size is
/// its whole footprint, and the stack a score needs does not grow with W^2.
pub struct Scratch<const W: usize> {
    /// Subdiagonal of the tridiagonal form; then singular values.
    pub(crate) e: [f64; W],
    /// Cholesky factor of the passive block.
    cholesky: Square<W>,
    /// Passive-set indices.
    index: [usize; W],
    /// Which indices are passive.
    passive: [bool; W],
    /// The passive-set solution.
    z: [f64; W],
    /// The forward substitution's result.
    y: [f64; W],
    /// A new vector's dot products with the window (novelty).
    pub(crate) inner: [f64; W],
}

impl<const W: usize> Scratch<W> {
    /// Zeroed working memory.
    pub const fn new() -> Scratch<W> {
        Scratch { e: [0.0; W], cholesky: [[0.0; W]; W], index: [0; W], passive: [false; W], z: [0.0; W], y: [0.0; W], inner: [0.0; W] }
    }
}

/// Eigenvalues (descending) and eigenvectors (columns, same order) of the
/// top-left n x n of the symmetric `a`: Householder reduction to
/// tridiagonal form, then the implicit QL algorithm (tred2/tql2 as in
/// EISPACK and JAMA), O(n^3) with a small constant. Entries outside the
/// top-left n x n of `values` and `vectors` are left zero.
pub fn symmetric_eigen<const W: usize>(a: &Square<W>, n: usize, values: &mut [f64; W], vectors: &mut Square<W>, scratch: &mut Scratch<W>) {
    let v = vectors;
    for (i, row) in v.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = if i < n && j < n { a[i][j] } else { 0.0 };
        }
    }
    values.iter_mut().for_each(|x| *x = 0.0);
    if n == 0 {
        return;
    }
    let d = values;
    let e = &mut scratch.e;
    e.iter_mut().for_each(|x| *x = 0.0);
    tridiagonalize(v, n, d, e);
    diagonalize(v, n, d, e);
    // Sort descending (selection sort: n <= W is small), columns with them.
    for i in 0..n {
        let best = (i..n).max_by(|&x, &y| d[x].total_cmp(&d[y])).unwrap_or(i);
        if best != i {
            d.swap(i, best);
            for row in v.iter_mut().take(n) {
                row.swap(i, best);
            }
        }
    }
}

/// Householder reduction of the symmetric n x n in `v` to tridiagonal form
/// (diagonal `d`, subdiagonal `e[1..n]`), leaving the orthogonal transform in `v`.
/// Index loops on purpose: the code follows EISPACK's tred2 line by line.
#[allow(clippy::needless_range_loop, clippy::manual_memcpy)]
fn tridiagonalize<const W: usize>(v: &mut Square<W>, n: usize, d: &mut [f64; W], e: &mut [f64; W]) {
    for j in 0..n {
        d[j] = v[n - 1][j];
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
                v[j][i] = 0.0;
            }
        } else {
            for k in 0..i {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            let mut f = d[i - 1];
            let mut g = libm::sqrt(h);
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].iter_mut().for_each(|x| *x = 0.0);
            for j in 0..i {
                f = d[j];
                v[j][i] = f;
                g = e[j] + v[j][j] * f;
                for k in j + 1..i {
                    g += v[k][j] * d[k];
                    e[k] += v[k][j] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[k][j] -= f * e[k] + g * d[k];
                }
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n - 1 {
        v[n - 1][i] = v[i][i];
        v[i][i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[k][i + 1] / h;
            }
            for j in 0..=i {
                let g: f64 = (0..=i).map(|k| v[k][i + 1] * v[k][j]).sum();
                for k in 0..=i {
                    v[k][j] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[k][i + 1] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[n - 1][j];
        v[n - 1][j] = 0.0;
    }
    v[n - 1][n - 1] = 1.0;
    e[0] = 0.0;
}

/// The implicit QL algorithm on the tridiagonal (`d`, `e`), accumulating
/// the rotations into `v`; eigenvalues end in `d` (unsorted).
fn diagonalize<const W: usize>(v: &mut Square<W>, n: usize, d: &mut [f64; W], e: &mut [f64; W]) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let (mut f, mut largest) = (0.0, 0.0f64);
    for l in 0..n {
        largest = largest.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > f64::EPSILON * largest {
            m += 1;
        }
        if m > l {
            // At most 64 sweeps: converges in a few; the cap only guards against NaN.
            for _ in 0..64 {
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = libm::hypot(p, 1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for x in d.iter_mut().take(n).skip(l + 2) {
                    *x -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = libm::hypot(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    for row in v.iter_mut().take(n) {
                        let h = row[i + 1];
                        row[i + 1] = s * row[i] + c * h;
                        row[i] = c * row[i] - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if !(e[l].abs() > f64::EPSILON * largest) {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

/// Solves min ||A^T alpha - w|| over alpha >= 0 given G = A A^T (n x n) and
/// h = A w, by Lawson-Hanson on the normal equations, starting from the
/// feasible `alpha` (its support is the initial passive set): a warm start
/// from the previous window's solution usually needs a step or two.
pub fn nnls<const W: usize>(g: &Square<W>, h: &[f64; W], n: usize, alpha: &mut [f64; W], scratch: &mut Scratch<W>) {
    let scale = (0..n).map(|i| g[i][i].abs().max(h[i].abs())).fold(f64::MIN_POSITIVE, f64::max);
    let tolerance = 1e-12 * scale * n.max(1) as f64;
    let Scratch { cholesky, index, passive, z, y, .. } = scratch;
    passive.iter_mut().for_each(|p| *p = false);
    for i in 0..n {
        alpha[i] = alpha[i].max(0.0);
        passive[i] = alpha[i] > 0.0;
    }
    for a in alpha.iter_mut().skip(n) {
        *a = 0.0;
    }
    for _ in 0..3 * W + 10 {
        // Inner loop: make the passive-set solution feasible.
        loop {
            solve_passive(g, h, n, passive, z, (cholesky, index, y));
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
fn solve_passive<const W: usize>(
    g: &Square<W>,
    h: &[f64; W],
    n: usize,
    passive: &[bool; W],
    z: &mut [f64; W],
    (l, index, y): (&mut Square<W>, &mut [usize; W], &mut [f64; W]),
) {
    let mut m = 0;
    for i in 0..n {
        if passive[i] {
            index[m] = i;
            m += 1;
        }
    }
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
        symmetric_eigen(&a, 3, &mut values, &mut vectors, &mut Scratch::new());
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
    fn eigen_of_a_rank_deficient_gram_matrix() {
        // G = A A^T for 12 rows in 5 dimensions: rank 5, 7 zero eigenvalues.
        const N: usize = 12;
        let row =
            |i: usize| -> [f64; 5] { core::array::from_fn(|j| libm::sin((i * 7 + j * 3) as f64 * 0.37) + if i == j { 1.0 } else { 0.0 }) };
        let mut g: Square<16> = [[0.0; 16]; 16];
        for i in 0..N {
            for j in 0..N {
                g[i][j] = (0..5).map(|k| row(i)[k] * row(j)[k]).sum();
            }
        }
        let (mut values, mut vectors) = ([0.0; 16], [[0.0; 16]; 16]);
        symmetric_eigen(&g, N, &mut values, &mut vectors, &mut Scratch::new());
        let trace: f64 = (0..N).map(|i| g[i][i]).sum();
        assert!((values.iter().sum::<f64>() - trace).abs() < 1e-9 * trace);
        assert!(values[..N].windows(2).all(|w| w[0] >= w[1]), "{values:?}");
        assert!(values[4] > 1e-3 && values[5].abs() < 1e-9 * values[0], "{values:?}");
        for a in 0..N {
            for b in 0..N {
                let dot: f64 = (0..N).map(|k| vectors[k][a] * vectors[k][b]).sum();
                assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-10, "orthonormal columns");
            }
            for i in 0..N {
                let gv: f64 = (0..N).map(|k| g[i][k] * vectors[k][a]).sum();
                assert!((gv - values[a] * vectors[i][a]).abs() < 1e-9 * values[0]);
            }
        }
        assert!(vectors[N].iter().chain(vectors.iter().map(|r| &r[N])).all(|&x| x == 0.0), "unused entries stay zero");
    }

    #[test]
    fn nnls_cone_excludes_opposite_directions_and_warm_starts() {
        // Rows of A: e1, -e2, e1 + e2. w = (1, 1): the third row alone fits exactly.
        let g: Square<4> = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, -1.0, 0.0], [1.0, -1.0, 2.0, 0.0], [0.0; 4]];
        let h = [1.0, -1.0, 2.0, 0.0];
        let mut alpha = [0.0; 4];
        nnls(&g, &h, 3, &mut alpha, &mut Scratch::new());
        let residual = 2.0 - 2.0 * (0..3).map(|i| h[i] * alpha[i]).sum::<f64>()
            + (0..3).flat_map(|i| (0..3).map(move |j| (i, j))).map(|(i, j)| alpha[i] * g[i][j] * alpha[j]).sum::<f64>();
        assert!(residual.abs() < 1e-12 && alpha.iter().all(|&a| a >= 0.0), "{alpha:?}");
        assert_eq!(alpha[1], 0.0);
        // Warm start from an infeasible-for-the-optimum support converges too.
        let mut warm = [0.5, 0.0, 0.0, 0.0];
        nnls(&g, &h, 3, &mut warm, &mut Scratch::new());
        let fit: [f64; 2] = [warm[0] + warm[2], -warm[1] + warm[2]];
        assert!((fit[0] - 1.0).abs() < 1e-9 && (fit[1] - 1.0).abs() < 1e-9, "{warm:?}");
    }
}
