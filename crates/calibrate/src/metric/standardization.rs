//! Per-dimension standardization fitted on the real images.

use spanwatch_core::standardize::{difference_into, safe_sigma, standardize_into};

/// mu and sigma per embedding dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardization {
    /// Mean of each dimension over the real images.
    pub mu: Vec<f32>,
    /// Population standard deviation (ddof = 0, as scikit-learn's
    /// StandardScaler) of each dimension; constant dimensions hold 1.
    pub sigma: Vec<f32>,
    /// How many dimensions were constant over the real images (kept, with
    /// sigma 1, so they contribute nothing to w and nothing to scores).
    pub constant_dims: usize,
}

impl Standardization {
    /// Fits mu and sigma on `rows` (all of one dimension; at least one row).
    pub fn fit(rows: &[&[f32]]) -> Standardization {
        let d = rows[0].len();
        let n = rows.len() as f64;
        let mut mu = vec![0f64; d];
        for row in rows {
            mu.iter_mut().zip(*row).for_each(|(m, &x)| *m += x as f64 / n);
        }
        let mut var = vec![0f64; d];
        for row in rows {
            var.iter_mut().zip(*row).zip(&mu).for_each(|((v, &x), m)| *v += (x as f64 - m).powi(2) / n);
        }
        // A dimension is constant when its spread is at round-off level.
        let sigma: Vec<f32> =
            var.iter().zip(&mu).map(|(v, m)| if v.sqrt() <= 1e-6 * m.abs().max(1e-12) { 0.0 } else { v.sqrt() as f32 }).collect();
        let constant_dims = sigma.iter().filter(|&&s| s == 0.0).count();
        Standardization { mu: mu.iter().map(|&m| m as f32).collect(), sigma: sigma.into_iter().map(safe_sigma).collect(), constant_dims }
    }

    /// z = (e - mu) / sigma.
    pub fn apply(&self, e: &[f32]) -> Vec<f32> {
        let mut z = vec![0f32; e.len()];
        standardize_into(e, &self.mu, &self.sigma, &mut z);
        z
    }

    /// The standardized difference z(synthetic) - z(source).
    pub fn difference(&self, synthetic: &[f32], source: &[f32]) -> Vec<f32> {
        let mut d = vec![0f32; synthetic.len()];
        difference_into(synthetic, source, &self.sigma, &mut d);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_std_and_constant_dimensions() {
        let rows: Vec<Vec<f32>> = vec![vec![1.0, 5.0], vec![3.0, 5.0]];
        let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let s = Standardization::fit(&refs);
        assert_eq!(s.mu, [2.0, 5.0]);
        assert_eq!(s.sigma, [1.0, 1.0]);
        assert_eq!(s.constant_dims, 1);
        assert_eq!(s.apply(&[3.0, 5.0]), [1.0, 0.0]);
    }
}
