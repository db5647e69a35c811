//! Small dense-vector helpers, accumulating in f64 so that f32 storage does
//! not cost accuracy on 1280-long sums.

/// Dot product of two equally long slices, accumulated in f64.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Euclidean norm, accumulated in f64.
pub fn norm(a: &[f32]) -> f64 {
    libm::sqrt(dot(a, a))
}
