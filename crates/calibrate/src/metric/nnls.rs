//! Non-negative least squares: min ||A^T alpha - w|| subject to alpha >= 0,
//! where the rows of A are the difference vectors (the cone they span).
//!
//! Lawson-Hanson's active-set method, in a form that grows with n d rather
//! than n^2: each outer step computes the gradient A (w - A^T alpha) with one
//! pass over A (faer, on every core), and the least-squares steps on the
//! passive set use the Gram entries of the rows that ever entered it, kept as
//! they are computed (at most a few d rows in practice). A solve can start
//! from the passive set of an earlier one ([`nnls`]'s `warm`): a bootstrap's
//! probes are close to each other, so each then takes fewer steps. With many
//! more rows than dimensions, the steps run on candidate rows and every row
//! is checked once per round ([`nnls`]).

use faer::linalg::solvers::Solve;
use faer::{Col, ColRef, Mat, MatRef, Side};
use nalgebra::{DMatrix, DVector};

/// Above this many rows per dimension, [`nnls`] solves on a growing subset
/// of candidate rows and checks the optimum with one pass over all of them.
const ROWS_PER_DIM_DIRECT: usize = 4;

/// Solves the NNLS problem for the rows of `a` (n x d) and `w` (length d),
/// starting from the passive set `warm` (indices of rows; may be empty).
/// `max_row_norm` is the largest row norm of `a` ([`max_row_norm`]), which
/// sets the tolerance. Returns alpha >= 0 (length n).
///
/// With n > 4 d the support (at most d rows) is a small part of the rows:
/// the problem is solved on candidate rows (the warm start, or cold the d
/// rows most aligned with w), then the gradient over all rows is checked,
/// and the rows that violate optimality most (up to d / 4 at a time) join
/// the candidates until none does. Each round costs one pass over A.
pub fn nnls(a: &DMatrix<f64>, w: &[f64], warm: &[usize], max_row_norm: f64) -> DVector<f64> {
    let (n, d) = a.shape();
    // |a_i . w| <= |a_i| |w|: the scale of both the Gram entries and A w.
    let w_norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
    let scale = (max_row_norm * max_row_norm.max(w_norm)).max(f64::MIN_POSITIVE);
    let tolerance = 1e-12 * scale * n.max(1) as f64;
    let warm: Vec<usize> = warm.iter().copied().filter(|&i| i < n).collect();
    if n <= ROWS_PER_DIM_DIRECT * d {
        return active_set(a, w, &warm, tolerance, scale);
    }
    let mut candidates = warm.clone();
    if candidates.is_empty() {
        candidates = top(&gradient(a, w), d, tolerance, &[]);
    }
    let mut sub_warm: Vec<usize> = (0..candidates.len()).collect();
    loop {
        let sub = DMatrix::from_fn(candidates.len(), d, |i, j| a[(candidates[i], j)]);
        let sub_alpha = active_set(&sub, w, &sub_warm, tolerance, scale);
        let residual: Vec<f64> = w.iter().zip(sub.tr_mul(&sub_alpha).iter()).map(|(w, r)| w - r).collect();
        let violators = top(&gradient(a, &residual), (d / 4).max(16), tolerance, &candidates);
        if violators.is_empty() {
            let mut alpha = DVector::<f64>::zeros(n);
            for (x, &i) in candidates.iter().enumerate() {
                alpha[i] = sub_alpha[x];
            }
            return alpha;
        }
        sub_warm = (0..candidates.len()).filter(|&x| sub_alpha[x] > 0.0).collect();
        candidates.extend(violators);
    }
}

/// A g with one pass over `a` (faer, on every core).
fn gradient(a: &DMatrix<f64>, r: &[f64]) -> Vec<f64> {
    let product = MatRef::from_column_major_slice(a.as_slice(), a.nrows(), a.ncols()) * ColRef::from_slice(r);
    product.iter().copied().collect()
}

/// The largest row norm of `a` (column by column: A is column-major).
pub fn max_row_norm(a: &DMatrix<f64>) -> f64 {
    let mut norms = vec![0.0; a.nrows()];
    for column in a.column_iter() {
        norms.iter_mut().zip(column.iter()).for_each(|(s, v)| *s += v * v);
    }
    norms.iter().fold(0.0f64, |m, &v| m.max(v)).sqrt()
}

/// The indices of the (at most) `count` largest entries of `g` above
/// `tolerance`, leaving out `exclude`, largest first.
fn top(g: &[f64], count: usize, tolerance: f64, exclude: &[usize]) -> Vec<usize> {
    let excluded: std::collections::HashSet<usize> = exclude.iter().copied().collect();
    let mut above: Vec<usize> = (0..g.len()).filter(|i| g[*i] > tolerance && !excluded.contains(i)).collect();
    above.sort_by(|&x, &y| g[y].total_cmp(&g[x]));
    above.truncate(count);
    above
}

/// Lawson-Hanson on all rows of `a`, from the passive set `warm`.
fn active_set(a: &DMatrix<f64>, w: &[f64], warm: &[usize], tolerance: f64, scale: f64) -> DVector<f64> {
    let n = a.nrows();
    let mut in_passive = vec![false; n];
    let mut distinct = Vec::with_capacity(warm.len());
    for &i in warm {
        if !in_passive[i] {
            in_passive[i] = true;
            distinct.push(i);
        }
    }
    let mut cone = Working::new(a, w, &distinct);
    // From a warm start: drop rows until the least-squares solution on the
    // passive set is positive, the invariant the iteration keeps.
    let mut alpha = vec![0.0; cone.rows.len()];
    cone.restore_feasibility(&mut alpha, tolerance / scale, true);
    sync_passive(&cone, &alpha, &mut in_passive);
    let mut gradient = cone.gradient(&cone.residual(&alpha));
    for _ in 0..3 * n + 10 {
        // The most promising row not yet in the passive set.
        let Some((j, &g)) = gradient.iter().enumerate().filter(|(i, _)| !in_passive[*i]).max_by(|x, y| x.1.total_cmp(y.1)) else {
            break;
        };
        if g <= tolerance {
            break;
        }
        in_passive[j] = true;
        let slot = cone.enter(j);
        if slot == alpha.len() {
            alpha.push(0.0);
        }
        cone.restore_feasibility(&mut alpha, tolerance / scale, false);
        sync_passive(&cone, &alpha, &mut in_passive);
        gradient = cone.gradient(&cone.residual(&alpha));
    }
    let mut full = DVector::<f64>::zeros(n);
    for (slot, &i) in cone.index.iter().enumerate() {
        full[i] = alpha[slot];
    }
    full
}

/// Marks passive exactly the rows with a positive weight.
fn sync_passive(cone: &Working, alpha: &[f64], in_passive: &mut [bool]) {
    for (slot, &i) in cone.index.iter().enumerate() {
        in_passive[i] = cone.passive[slot] && alpha[slot] > 0.0;
    }
}

/// The rows that ever entered the passive set, with their Gram entries.
struct Working<'a> {
    a: MatRef<'a, f64>,
    w: &'a [f64],
    /// Row of `a` of each slot.
    index: Vec<usize>,
    /// Each slot's row, contiguous.
    rows: Vec<Vec<f64>>,
    /// gram[s][t] = rows[s] . rows[t], for t <= s.
    gram: Vec<Vec<f64>>,
    /// rows[s] . w.
    h: Vec<f64>,
    /// Whether each slot is in the passive set now.
    passive: Vec<bool>,
}

impl<'a> Working<'a> {
    /// The rows `passive` in the passive set, their Gram block formed in one product.
    fn new(a: &'a DMatrix<f64>, w: &'a [f64], passive: &[usize]) -> Working<'a> {
        let a = MatRef::from_column_major_slice(a.as_slice(), a.nrows(), a.ncols());
        let block = Mat::from_fn(passive.len(), a.ncols(), |x, j| a[(passive[x], j)]);
        let gram_block = &block * block.transpose();
        let h = &block * ColRef::from_slice(w);
        Working {
            a,
            w,
            index: passive.to_vec(),
            rows: (0..passive.len()).map(|x| (0..a.ncols()).map(|j| block[(x, j)]).collect()).collect(),
            gram: (0..passive.len()).map(|x| (0..=x).map(|y| gram_block[(x, y)]).collect()).collect(),
            h: h.iter().copied().collect(),
            passive: vec![true; passive.len()],
        }
    }

    /// Puts row `i` in the passive set; returns its slot.
    fn enter(&mut self, i: usize) -> usize {
        if let Some(slot) = self.index.iter().position(|&j| j == i) {
            self.passive[slot] = true;
            return slot;
        }
        let row: Vec<f64> = (0..self.a.ncols()).map(|j| self.a[(i, j)]).collect();
        let mut gram_row: Vec<f64> = self.rows.iter().map(|other| dot(other, &row)).collect();
        gram_row.push(dot(&row, &row));
        self.h.push(dot(&row, self.w));
        self.gram.push(gram_row);
        self.rows.push(row);
        self.index.push(i);
        self.passive.push(true);
        self.index.len() - 1
    }

    fn gram(&self, s: usize, t: usize) -> f64 {
        if t <= s {
            self.gram[s][t]
        } else {
            self.gram[t][s]
        }
    }

    /// w - A^T alpha, alpha given per slot.
    fn residual(&self, alpha: &[f64]) -> Vec<f64> {
        let mut r = self.w.to_vec();
        for (row, &weight) in self.rows.iter().zip(alpha).filter(|(_, &weight)| weight != 0.0) {
            r.iter_mut().zip(row).for_each(|(r, &v)| *r -= weight * v);
        }
        r
    }

    /// A r, one pass over A.
    fn gradient(&self, r: &[f64]) -> Vec<f64> {
        (self.a * ColRef::from_slice(r)).iter().copied().collect()
    }

    /// Lawson-Hanson's inner loop: moves alpha toward the least-squares
    /// solution on the passive set, dropping rows whose weight reaches zero,
    /// until that solution is positive. `floor` is the weight under which a
    /// row leaves. From a warm start (`jump`) there is no feasible alpha to
    /// step from: the rows with a non-positive solution leave until it is positive.
    fn restore_feasibility(&mut self, alpha: &mut [f64], floor: f64, jump: bool) {
        loop {
            let s = self.solve_passive();
            let blocking = (0..alpha.len()).filter(|&t| self.passive[t] && s[t] <= 0.0);
            let step =
                if jump { f64::INFINITY } else { blocking.clone().map(|t| alpha[t] / (alpha[t] - s[t])).fold(f64::INFINITY, f64::min) };
            if !step.is_finite() {
                if jump && (0..alpha.len()).any(|t| self.passive[t] && s[t] <= 0.0) {
                    // Warm start: leave out the rows the solution does not want, and solve again.
                    for (passive, &solution) in self.passive.iter_mut().zip(&s).take(alpha.len()) {
                        if solution <= 0.0 {
                            *passive = false;
                        }
                    }
                    continue;
                }
                alpha.copy_from_slice(&s);
                return;
            }
            for t in 0..alpha.len() {
                alpha[t] += (s[t] - alpha[t]) * step;
                if self.passive[t] && alpha[t] <= floor {
                    self.passive[t] = false;
                    alpha[t] = 0.0;
                }
            }
        }
    }

    /// Least squares restricted to the passive set: G_PP s_P = h_P, s elsewhere 0.
    fn solve_passive(&self) -> Vec<f64> {
        let slots: Vec<usize> = (0..self.index.len()).filter(|&t| self.passive[t]).collect();
        let m = slots.len();
        let sub = Mat::from_fn(m, m, |x, y| self.gram(slots[x], slots[y]));
        let rhs = Col::from_fn(m, |x| self.h[slots[x]]);
        let solution: Vec<f64> = match sub.llt(Side::Lower) {
            Ok(cholesky) => cholesky.solve(&rhs).iter().copied().collect(),
            // Linearly dependent difference vectors: the minimum-norm solution.
            Err(_) => {
                let sub = DMatrix::from_fn(m, m, |x, y| sub[(x, y)]);
                let rhs = DVector::from_fn(m, |x, _| rhs[x]);
                sub.svd(true, true).solve(&rhs, 1e-12).expect("both factors were computed").iter().copied().collect()
            }
        };
        let mut s = vec![0.0; self.index.len()];
        for (x, &t) in slots.iter().enumerate() {
            s[t] = solution[x];
        }
        s
    }
}

/// a . b with four accumulators, so that it vectorizes.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0; 4];
    let (head_a, tail_a) = a.split_at(a.len() - a.len() % 4);
    let (head_b, tail_b) = b.split_at(head_a.len());
    for (x, y) in head_a.as_chunks::<4>().0.iter().zip(head_b.as_chunks::<4>().0) {
        for lane in 0..4 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f64>() + tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cone_excludes_opposite_directions() {
        // Rows: e1 and -e2. w = e1 + e2: the cone reaches e1 only.
        let a = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, -1.0]);
        let alpha = nnls(&a, &[1.0, 1.0], &[], max_row_norm(&a));
        assert!((alpha[0] - 1.0).abs() < 1e-12 && alpha[1] == 0.0);
    }

    #[test]
    fn duplicate_rows_do_not_break_it() {
        let a = DMatrix::from_row_slice(3, 2, &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let alpha = nnls(&a, &[2.0, 2.0], &[], max_row_norm(&a));
        let reconstruction = a.transpose() * &alpha;
        assert!((reconstruction - DVector::from_vec(vec![2.0, 2.0])).norm() < 1e-9);
        assert!(alpha.iter().all(|&v| v >= 0.0));
    }

    /// The KKT conditions: alpha >= 0, the gradient A (w - A^T alpha) is <= 0
    /// everywhere and 0 where alpha > 0.
    fn assert_optimal(a: &DMatrix<f64>, w: &[f64], alpha: &DVector<f64>) {
        let r = DVector::from_column_slice(w) - a.transpose() * alpha;
        let g = a * r;
        let scale = a.norm() * w.iter().map(|v| v * v).sum::<f64>().sqrt();
        for i in 0..a.nrows() {
            assert!(alpha[i] >= 0.0);
            assert!(g[i] <= 1e-9 * scale, "row {i}: gradient {}", g[i]);
            if alpha[i] > 0.0 {
                assert!(g[i].abs() <= 1e-9 * scale, "row {i} in the support: gradient {}", g[i]);
            }
        }
    }

    #[test]
    fn any_warm_start_reaches_the_same_optimum() {
        // w partly outside the cone.
        // Tall (column generation), square and wide (direct).
        for (n, d) in [(200, 8), (30, 8), (7, 20)] {
            let a = DMatrix::from_fn(n, d, |i, j| ((i * 31 + j * 17) as f64 * 0.37).sin());
            let w: Vec<f64> = (0..d).map(|j| (j as f64 * 0.9).cos()).collect();
            let cold = nnls(&a, &w, &[], max_row_norm(&a));
            assert_optimal(&a, &w, &cold);
            let support: Vec<usize> = (0..n).filter(|&i| cold[i] > 0.0).collect();
            for warm in [support.clone(), (0..n).collect(), vec![0, 3, 5], vec![n + 4]] {
                let alpha = nnls(&a, &w, &warm, max_row_norm(&a));
                assert_optimal(&a, &w, &alpha);
                let (x, y) = (a.transpose() * &alpha, a.transpose() * &cold);
                assert!((x - y).norm() < 1e-9, "warm start {warm:?}");
            }
        }
    }
}
