//! The reference probe: L2-regularized, class-balanced logistic regression
//! with an unpenalized intercept, the model of scikit-learn's
//! `LogisticRegression(C=1, class_weight='balanced')`, solved to convergence.
//!
//! With n samples and d >= n features the optimum lies in the row space of X
//! (representer theorem), so it is found by Newton's method on
//! w = X^T beta in n + 1 unknowns, with a backtracking line search on the
//! primal objective: exact, and fast for the few hundred real images a probe
//! is trained on. The Newton system used is the full one multiplied on the
//! left by diag(K^-1, 1), which stays well defined when K = X X^T is singular.

use nalgebra::{DMatrix, DVector};

/// A fitted probe.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Weights in standardized space (length d).
    pub w: Vec<f32>,
    /// Intercept (not used by the metric; kept for diagnostics).
    pub bias: f64,
    /// Newton iterations used.
    pub iterations: usize,
}

/// Why a probe could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// One class is missing.
    #[error("the probe needs real images of both classes ({negatives} negatives, {positives} positives given)")]
    MissingClass {
        /// Negatives given.
        negatives: usize,
        /// Positives given.
        positives: usize,
    },
    /// Newton's method did not converge.
    #[error("logistic regression did not converge in {0} iterations")]
    NoConvergence(usize),
}

const MAX_ITERATIONS: usize = 100;

fn softplus(f: f64) -> f64 {
    f.max(0.0) + (-f.abs()).exp().ln_1p()
}

fn sigmoid(f: f64) -> f64 {
    if f >= 0.0 {
        1.0 / (1.0 + (-f).exp())
    } else {
        let e = f.exp();
        e / (1.0 + e)
    }
}

/// Fits the probe on rows of `x` (standardized embeddings) with labels `y`
/// (true = positive), inverse regularization strength `c`.
pub fn fit(x: &DMatrix<f64>, y: &[bool], c: f64) -> Result<Probe, ProbeError> {
    let (beta, bias, iterations) = fit_kernel(&kernel(x), y, c)?;
    Ok(finish(x, &beta, bias, iterations))
}

/// K = X X^T of the rows of `x`, in faer (blocked, on every core).
pub fn kernel(x: &DMatrix<f64>) -> DMatrix<f64> {
    let a = faer::MatRef::from_column_major_slice(x.as_slice(), x.nrows(), x.ncols());
    let k = a * a.transpose();
    DMatrix::from_fn(k.nrows(), k.ncols(), |i, j| k[(i, j)])
}

/// Newton's method on the kernel `k` = X X^T: (beta, bias, iterations), w = X^T beta.
pub fn fit_kernel(k: &DMatrix<f64>, y: &[bool], c: f64) -> Result<(DVector<f64>, f64, usize), ProbeError> {
    let n = k.nrows();
    let positives = y.iter().filter(|&&v| v).count();
    let negatives = n - positives;
    if positives == 0 || negatives == 0 {
        return Err(ProbeError::MissingClass { negatives, positives });
    }
    // class_weight='balanced': n / (2 * count(class)).
    let weight: DVector<f64> =
        DVector::from_iterator(n, y.iter().map(|&v| n as f64 / (2.0 * if v { positives } else { negatives } as f64)));
    let target: DVector<f64> = DVector::from_iterator(n, y.iter().map(|&v| if v { 1.0 } else { 0.0 }));

    let objective = |beta: &DVector<f64>, b: f64| -> f64 {
        let f = k * beta;
        let loss: f64 = (0..n).map(|i| weight[i] * (softplus(f[i] + b) - target[i] * (f[i] + b))).sum();
        loss + beta.dot(&f) / (2.0 * c)
    };

    let mut beta = DVector::<f64>::zeros(n);
    let mut b = 0.0;
    let mut value = objective(&beta, b);
    for iteration in 0..MAX_ITERATIONS {
        let f = k * &beta;
        let p: DVector<f64> = f.map(|fi| sigmoid(fi + b));
        let residual = weight.component_mul(&(&p - &target));
        let r = &residual + &beta / c;
        let g_b: f64 = residual.sum();
        let kr = k * &r;
        let omega: DVector<f64> = DVector::from_iterator(n, (0..n).map(|i| weight[i] * p[i] * (1.0 - p[i])));
        let mut system = DMatrix::<f64>::zeros(n + 1, n + 1);
        for i in 0..n {
            for j in 0..n {
                system[(i, j)] = omega[i] * k[(i, j)];
            }
            system[(i, i)] += 1.0 / c;
            system[(i, n)] = omega[i];
        }
        let omega_k = omega.transpose() * k;
        for j in 0..n {
            system[(n, j)] = omega_k[j];
        }
        system[(n, n)] = omega.sum().max(1e-300);
        let mut rhs = DVector::<f64>::zeros(n + 1);
        rhs.rows_mut(0, n).copy_from(&(-&r));
        rhs[n] = -g_b;
        let Some(step) = solve(&system, &rhs) else { return Err(ProbeError::NoConvergence(iteration)) };
        let (d_beta, d_b) = (step.rows(0, n).into_owned(), step[n]);
        let slope = kr.dot(&d_beta) + g_b * d_b;
        // Newton decrement: half of -slope estimates the remaining gap to the
        // optimum; stop when it is at round-off level.
        if -slope / 2.0 <= 1e-13 * value.abs().max(1.0) {
            return Ok((beta, b, iteration));
        }
        let mut t = 1.0;
        loop {
            let candidate_beta = &beta + &d_beta * t;
            let candidate_b = b + d_b * t;
            let candidate = objective(&candidate_beta, candidate_b);
            if candidate <= value + 1e-4 * t * slope || t < 1e-12 {
                // No further decrease possible at machine precision: converged.
                if t < 1e-12 {
                    return Ok((beta, b, iteration));
                }
                beta = candidate_beta;
                b = candidate_b;
                value = candidate;
                break;
            }
            t *= 0.5;
        }
    }
    Err(ProbeError::NoConvergence(MAX_ITERATIONS))
}

/// Fits the probe with C = 1 on rows of `negatives` (label 0) and
/// `positives` (label 1), e.g. standardized embeddings.
pub fn fit_classes<N: AsRef<[f32]>, P: AsRef<[f32]>>(negatives: &[N], positives: &[P]) -> Result<Probe, ProbeError> {
    let (x, labels) = design(negatives, positives);
    fit(&x, &labels, 1.0)
}

/// The rows of `negatives` then `positives` as one matrix X, with their
/// labels (true = positive).
pub fn design<N: AsRef<[f32]>, P: AsRef<[f32]>>(negatives: &[N], positives: &[P]) -> (DMatrix<f64>, Vec<bool>) {
    let rows: Vec<&[f32]> = negatives.iter().map(|r| r.as_ref()).chain(positives.iter().map(|r| r.as_ref())).collect();
    let x = DMatrix::from_fn(rows.len(), rows.first().map_or(0, |r| r.len()), |i, j| rows[i][j] as f64);
    let labels: Vec<bool> = (0..rows.len()).map(|i| i >= negatives.len()).collect();
    (x, labels)
}

/// Solves the Newton system with faer's partial-pivoting LU; None when it is singular or not finite.
fn solve(system: &DMatrix<f64>, rhs: &DVector<f64>) -> Option<DVector<f64>> {
    use faer::linalg::solvers::Solve;
    let a = faer::MatRef::from_column_major_slice(system.as_slice(), system.nrows(), system.ncols());
    let x = a.partial_piv_lu().solve(faer::ColRef::from_slice(rhs.as_slice()));
    let x = DVector::from_iterator(rhs.len(), x.iter().copied());
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The probe w = X^T beta of a kernel fit on the rows of `x`.
fn finish(x: &DMatrix<f64>, beta: &DVector<f64>, bias: f64, iterations: usize) -> Probe {
    let w = x.transpose() * beta;
    Probe { w: w.iter().map(|&v| v as f32).collect(), bias, iterations }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_vanishes_at_the_solution() {
        // 6 samples in 3 dimensions, not separable by a tiny margin.
        let x =
            DMatrix::from_row_slice(6, 3, &[1.0, 0.2, 0.0, 0.8, -0.1, 0.3, 0.9, 0.4, -0.2, -1.0, 0.1, 0.1, -0.7, 0.3, 0.0, 0.2, -0.2, 0.1]);
        let y = [true, true, true, false, false, false];
        let probe = fit(&x, &y, 1.0).unwrap();
        // Primal gradient: X^T (s (p - y)) + w / C = 0 and sum s (p - y) = 0.
        let w = DVector::from_iterator(3, probe.w.iter().map(|&v| v as f64));
        let f = &x * &w;
        let residual: Vec<f64> = (0..6).map(|i| sigmoid(f[i] + probe.bias) - if y[i] { 1.0 } else { 0.0 }).collect();
        let g = x.transpose() * DVector::from_vec(residual.clone()) + &w;
        assert!(g.norm() < 1e-5, "gradient {g}");
        assert!(residual.iter().sum::<f64>().abs() < 1e-6);
        assert!(w[0] > 0.0, "the first feature separates the classes");
    }

    #[test]
    fn missing_class_is_an_error() {
        let x = DMatrix::from_row_slice(2, 1, &[1.0, 2.0]);
        assert!(matches!(fit(&x, &[false, false], 1.0), Err(ProbeError::MissingClass { positives: 0, .. })));
    }
}
