//! Small dense-vector helpers, accumulating in f64 so that f32 storage does
//! not cost accuracy on 1280-long sums.

/// Dot product of two equally long slices, accumulated in f64.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    sum_pairs(a, b, |x, y| x * y)
}

/// Squared Euclidean distance of two equally long slices, accumulated in
/// f64 in the same order as [`dot`] (so that the distance to zero is exactly
/// the squared norm).
pub fn distance2(a: &[f32], b: &[f32]) -> f64 {
    sum_pairs(a, b, |x, y| (x - y) * (x - y))
}

/// The sum of `term` over the pairs, in eight independent f64 lanes (which
/// the compiler vectorizes; one running sum would wait on each addition).
fn sum_pairs(a: &[f32], b: &[f32], term: impl Fn(f64, f64) -> f64) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    const LANES: usize = 8;
    let ((a_chunks, a_tail), (b_chunks, b_tail)) = (a.as_chunks::<LANES>(), b.as_chunks::<LANES>());
    let tail: f64 = a_tail.iter().zip(b_tail).map(|(&x, &y)| term(x as f64, y as f64)).sum();
    let mut lanes = [0.0f64; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for k in 0..LANES {
            lanes[k] += term(x[k] as f64, y[k] as f64);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// Euclidean norm, accumulated in f64.
pub fn norm(a: &[f32]) -> f64 {
    libm::sqrt(dot(a, a))
}
