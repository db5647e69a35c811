//! Fixed-size linear algebra on a window's Gram matrix, without allocation:
//! its Householder reduction (kept, for the eigenvalues with one vector's
//! coordinates in the eigenbasis, and for shifted solves) and non-negative
//! least squares.
//! Matrices are `[[f64; W]; W]` of which the top-left n x n is in use.

/// A symmetric matrix of at most W x W and its size in use.
pub type Square<const W: usize> = [[f64; W]; W];

/// Working memory of the eigendecomposition and NNLS, kept inside the window
/// (and so inside the tracker) rather than on the stack: a tracker's size is
/// its whole footprint, and the stack a score needs does not grow with W^2.
#[derive(Clone)]
pub struct Scratch<const W: usize> {
    /// The QL step's subdiagonal; then singular values.
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

/// The Householder reduction of a symmetric matrix, G = Q T Q^T with T
/// tridiagonal, kept so that the eigenvalues of G and the coordinates of any
/// vector in G's eigenbasis cost O(n^2) each ([`Tridiagonal::eigen`]): Q is
/// kept as its reflectors and applied to that one vector, and the implicit
/// QL rotations are applied to it alone instead of being accumulated into
/// all n eigenvectors (the O(n^3) steps of EISPACK's tred2 and tql2).
#[derive(Clone)]
pub struct Tridiagonal<const W: usize> {
    /// Row k holds reflector k's vector in columns k+1..n (the reduction
    /// works on the matrix in place; the trailing block is scratch after).
    reflectors: Square<W>,
    /// Reflector k is I - beta[k] v v^T.
    beta: [f64; W],
    /// T's diagonal.
    diagonal: [f64; W],
    /// T's subdiagonal: T[k][k-1] in entry k (entry 0 unused).
    off: [f64; W],
    n: usize,
}

impl<const W: usize> Tridiagonal<W> {
    /// The reduction of a 0 x 0 matrix (all zero bytes).
    pub const fn new() -> Self {
        Tridiagonal { reflectors: [[0.0; W]; W], beta: [0.0; W], diagonal: [0.0; W], off: [0.0; W], n: 0 }
    }

    /// Becomes the reduction of the top-left n x n of the symmetric `a`:
    /// for each k, the reflector that zeroes row (and column) k beyond the
    /// subdiagonal, applied to the trailing block as one symmetric rank-2
    /// update, B - v w^T - w v^T (Golub and Van Loan, algorithm 8.3.1), on
    /// contiguous rows. About 2 n^3 flops.
    pub fn reduce(&mut self, a: &Square<W>, n: usize) {
        let r = &mut self.reflectors;
        for (i, row) in r.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x = if i < n && j < n { a[i][j] } else { 0.0 };
            }
        }
        self.beta.fill(0.0);
        self.diagonal.fill(0.0);
        self.off.fill(0.0);
        self.n = n;
        let mut w = [0.0; W];
        for k in 0..n {
            self.diagonal[k] = r[k][k];
            if k + 1 == n {
                break;
            }
            let (head, tail) = r.split_at_mut(k + 1);
            let v = &mut head[k][k + 1..n];
            let norm = libm::sqrt(dot64(v, v));
            if norm == 0.0 {
                continue;
            }
            let alpha = if v[0] > 0.0 { -norm } else { norm };
            v[0] -= alpha;
            let beta = 2.0 / dot64(v, v);
            self.off[k + 1] = alpha;
            self.beta[k] = beta;
            let m = n - k - 1;
            let block = &mut tail[..m];
            for (wi, row) in w.iter_mut().zip(block.iter()) {
                *wi = beta * dot64(&row[k + 1..n], v);
            }
            let half = 0.5 * beta * dot64(&w[..m], v);
            for (wi, vi) in w.iter_mut().zip(v.iter()) {
                *wi -= half * vi;
            }
            for (i, row) in block.iter_mut().enumerate() {
                let (vi, wi) = (v[i], w[i]);
                for ((x, vj), wj) in row[k + 1..n].iter_mut().zip(v.iter()).zip(&w[..m]) {
                    *x -= vi * wj + wi * vj;
                }
            }
        }
    }

    /// Q^T x, in place.
    fn to_tridiagonal_basis(&self, x: &mut [f64; W]) {
        let n = self.n;
        for k in 0..n.saturating_sub(1) {
            if self.beta[k] != 0.0 {
                let v = &self.reflectors[k][k + 1..n];
                let scale = self.beta[k] * dot64(v, &x[k + 1..n]);
                for (xi, vi) in x[k + 1..n].iter_mut().zip(v) {
                    *xi -= scale * vi;
                }
            }
        }
    }

    /// The eigenvalues of the reduced matrix (descending, in `values`) and
    /// the coordinates of `vector` in its eigenbasis (`coords[j]` = u_j .
    /// vector, same order); entries from n on are zero. `work` is scratch.
    pub fn eigen(&self, vector: &[f64; W], values: &mut [f64; W], coords: &mut [f64; W], work: &mut [f64; W]) {
        let n = self.n;
        values.fill(0.0);
        coords.fill(0.0);
        if n == 0 {
            return;
        }
        // The vector in T's basis, as a row: (Q^T x)^T.
        let mut row = [*vector];
        self.to_tridiagonal_basis(&mut row[0]);
        values[..n].copy_from_slice(&self.diagonal[..n]);
        work.fill(0.0);
        work[..n].copy_from_slice(&self.off[..n]);
        diagonalize(&mut row, n, values, work);
        coords[..n].copy_from_slice(&row[0][..n]);
        // Sort descending (selection sort: n <= W is small), coordinates with them.
        for i in 0..n {
            let best = (i..n).max_by(|&x, &y| values[x].total_cmp(&values[y])).unwrap_or(i);
            values.swap(i, best);
            coords.swap(i, best);
        }
    }

    /// x^T (G + shift I)^-1 x for the reduced G, by LDL^T of the shifted
    /// tridiagonal T + shift I: O(n^2) for Q^T x, then O(n). For a positive
    /// semi-definite G and shift > 0 every pivot is at least shift
    /// (round-off below it is clamped).
    pub fn inverse_quadratic(&self, vector: &[f64; W], shift: f64) -> f64 {
        let mut t = *vector;
        self.to_tridiagonal_basis(&mut t);
        let (mut pivot, mut y, mut total) = (0.0, 0.0, 0.0);
        for j in 0..self.n {
            let diagonal = self.diagonal[j] + shift;
            (pivot, y) = if j == 0 {
                (diagonal, t[0])
            } else {
                let l = self.off[j] / pivot;
                (diagonal - l * self.off[j], t[j] - l * y)
            };
            pivot = pivot.max(shift);
            total += y * y / pivot;
        }
        total
    }
}

impl<const W: usize> Default for Tridiagonal<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// sqrt(a^2 + b^2): directly when that neither overflows nor underflows
/// (one square root, against libm's scaled hypot at twice the time on the QL
/// step's critical path), else by libm.
fn hypot(a: f64, b: f64) -> f64 {
    let sum = a * a + b * b;
    if sum.is_normal() {
        libm::sqrt(sum)
    } else {
        libm::hypot(a, b)
    }
}

/// Dot product of two equally long f64 slices in four independent lanes
/// (which the compiler vectorizes).
fn dot64(a: &[f64], b: &[f64]) -> f64 {
    const LANES: usize = 4;
    let ((a_chunks, a_tail), (b_chunks, b_tail)) = (a.as_chunks::<LANES>(), b.as_chunks::<LANES>());
    let tail: f64 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    let mut lanes = [0.0; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for k in 0..LANES {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// The implicit QL algorithm on the tridiagonal (`d`, `e`), applying the
/// rotations to the columns of `rows` (Q^T x as a row gives the coordinates
/// of x in the eigenbasis); eigenvalues end in `d` (unsorted).
fn diagonalize<const W: usize>(rows: &mut [[f64; W]], n: usize, d: &mut [f64; W], e: &mut [f64; W]) {
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
                let mut r = hypot(p, 1.0);
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
                    r = hypot(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    for row in rows.iter_mut() {
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
    for (i, _) in passive.iter().enumerate().take(n).filter(|(_, &p)| p) {
        index[m] = i;
        m += 1;
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
    /// Eigenvalues and eigenvectors (columns) from a reduction: the
    /// coordinates of e_i in the eigenbasis are row i of the eigenvectors.
    fn eigen<const W: usize>(a: &Square<W>, n: usize) -> ([f64; W], Square<W>) {
        let mut reduced = Tridiagonal::new();
        reduced.reduce(a, n);
        let (mut values, mut vectors, mut coords, mut work) = ([0.0; W], [[0.0; W]; W], [0.0; W], [0.0; W]);
        for (i, row) in vectors.iter_mut().enumerate().take(n) {
            let unit: [f64; W] = core::array::from_fn(|k| if k == i { 1.0 } else { 0.0 });
            reduced.eigen(&unit, &mut values, &mut coords, &mut work);
            *row = coords;
        }
        (values, vectors)
    }

    #[test]
    fn eigen_of_a_known_matrix() {
        let a: Square<3> = [[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]];
        let (values, vectors) = eigen(&a, 3);
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
        for (i, g_row) in g.iter_mut().enumerate().take(N) {
            for (j, g_ij) in g_row.iter_mut().enumerate().take(N) {
                *g_ij = (0..5).map(|k| row(i)[k] * row(j)[k]).sum();
            }
        }
        let (values, vectors) = eigen(&g, N);
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
        assert!(
            values[N..].iter().chain(vectors[N].iter()).chain(vectors.iter().map(|r| &r[N])).all(|&x| x == 0.0),
            "unused entries stay zero"
        );
        // Any vector's coordinates are its products with those eigenvectors.
        let x: [f64; 16] = core::array::from_fn(|i| if i < N { libm::cos(i as f64) } else { 0.0 });
        let mut reduced = Tridiagonal::new();
        reduced.reduce(&g, N);
        let (mut got_values, mut coords, mut work) = ([0.0; 16], [0.0; 16], [0.0; 16]);
        reduced.eigen(&x, &mut got_values, &mut coords, &mut work);
        assert_eq!(got_values, values);
        for j in 0..N {
            let want: f64 = (0..N).map(|i| vectors[i][j] * x[i]).sum();
            assert!((coords[j] - want).abs() < 1e-12, "coordinate {j}");
        }
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
