//! Per-dimension standardization z = (e - mu) / sigma.
//!
//! sigma is fitted on the real images; a constant dimension (sigma = 0) is
//! kept with sigma replaced by 1 (see [`safe_sigma`]), so dimensions never
//! disappear and every vector keeps the model's embedding dimension.

/// The sigma used for a dimension whose fitted standard deviation is `sigma`:
/// itself, or 1 when the dimension is constant (or sigma is not finite).
pub fn safe_sigma(sigma: f32) -> f32 {
    if sigma.is_finite() && sigma > 0.0 {
        sigma
    } else {
        1.0
    }
}

/// Writes z = (e - mu) / sigma into `out`. All slices have the same length;
/// `sigma` is expected to have passed through [`safe_sigma`].
pub fn standardize_into(e: &[f32], mu: &[f32], sigma: &[f32], out: &mut [f32]) {
    debug_assert!(e.len() == mu.len() && mu.len() == sigma.len() && sigma.len() == out.len());
    for (((o, &x), &m), &s) in out.iter_mut().zip(e).zip(mu).zip(sigma) {
        *o = (x - m) / s;
    }
}

/// Writes the standardized difference d = z(synthetic) - z(source) into `out`.
/// The means cancel, so this is (synthetic - source) / sigma.
pub fn difference_into(synthetic: &[f32], source: &[f32], sigma: &[f32], out: &mut [f32]) {
    debug_assert!(synthetic.len() == source.len() && source.len() == sigma.len());
    for (((o, &a), &b), &s) in out.iter_mut().zip(synthetic).zip(source).zip(sigma) {
        *o = (a - b) / s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_dimension_keeps_unit_sigma() {
        assert_eq!(safe_sigma(0.0), 1.0);
        assert_eq!(safe_sigma(f32::NAN), 1.0);
        assert_eq!(safe_sigma(2.5), 2.5);
    }

    #[test]
    fn difference_equals_difference_of_standardized() {
        let mu = [1.0, -2.0, 0.5];
        let sigma = [2.0, 0.5, 1.0];
        let a = [3.0, 1.0, -1.0];
        let b = [0.0, 0.0, 4.0];
        let (mut za, mut zb, mut d) = ([0.0; 3], [0.0; 3], [0.0; 3]);
        standardize_into(&a, &mu, &sigma, &mut za);
        standardize_into(&b, &mu, &sigma, &mut zb);
        difference_into(&a, &b, &sigma, &mut d);
        for i in 0..3 {
            assert!((d[i] - (za[i] - zb[i])).abs() < 1e-6);
        }
        assert_eq!(za, [1.0, 6.0, -1.5]);
    }
}
