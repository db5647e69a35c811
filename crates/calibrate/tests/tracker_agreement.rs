//! The edge's streaming tracker (no_std core) against the host's batch score
//! on the same vectors: real EfficientNet difference vectors of the demo's
//! faithful generator, then of its photometric one (a stream that degrades
//! halfway). After every pair, the tracker's window scores must equal the
//! batch scores of the same window within 1e-3, and the pair's share outside
//! the faithful pairs' reference basis nalgebra's projection within 1e-6.

use nalgebra::DMatrix;
use spanwatch_calibrate::metric::probe::fit_classes as fit_probe;
use spanwatch_calibrate::metric::{SpanFit, Standardization};
use spanwatch_core::span::Solver;
use spanwatch_core::tracker::SpanTracker;
use std::path::Path;

const D: usize = 1280;
const WINDOW: usize = 16;

fn rows(name: &str) -> Vec<Vec<f32>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/metric").join(name);
    let bytes = std::fs::read(&path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let d = npy.shape()[1] as usize;
    npy.into_vec::<f32>().unwrap().chunks(d).map(|c| c.to_vec()).collect()
}

#[test]
fn streamed_window_scores_equal_the_batch_scores() {
    let (neg, pos) = (rows("demo_neg.npy"), rows("demo_pos.npy"));
    let real: Vec<&[f32]> = neg.iter().chain(&pos).map(|r| r.as_slice()).collect();
    let standardization = Standardization::fit(&real);
    let z = |r: &Vec<Vec<f32>>| r.iter().map(|e| standardization.apply(e)).collect::<Vec<_>>();
    let w = fit_probe(&z(&neg), &z(&pos)).unwrap().w;
    let mut stream: Vec<Vec<f32>> = Vec::new();
    for generator in ["faithful", "photometric"] {
        let (syn, src) = (rows(&format!("demo_{generator}_syn.npy")), rows(&format!("demo_{generator}_src.npy")));
        stream.extend(syn.iter().zip(&src).map(|(a, b)| standardization.difference(a, b)));
    }
    // The reference basis of the faithful half, as a bundle holds it (k x D).
    let faithful = stream.len() / 2;
    let reference = SpanFit::new(DMatrix::from_fn(faithful, D, |i, j| stream[i][j] as f64));
    let basis = reference.basis().to_vec();
    let v = DMatrix::from_row_slice(reference.k(), D, &basis.iter().map(|&x| x as f64).collect::<Vec<_>>());
    let w_array: [f32; D] = w.as_slice().try_into().unwrap();
    let mut tracker = Box::new(SpanTracker::<D, 64>::new(&w_array, Solver::Nnls, WINDOW).unwrap());
    let mut worst: f64 = 0.0;
    let mut off_spans: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for (t, d) in stream.iter().enumerate() {
        let report = tracker.push(d.as_slice().try_into().unwrap(), basis.iter().copied(), 0.015);
        let d64 = nalgebra::DVector::from_iterator(D, d.iter().map(|&x| x as f64));
        let off_span = (1.0 - (&v * &d64).norm_squared() / d64.norm_squared()).max(0.0).sqrt();
        assert!((report.statistics.off_span - off_span).abs() < 1e-6, "pair {t}: off span {} vs {off_span}", report.statistics.off_span);
        if t >= faithful {
            off_spans.1.push(off_span);
        } else {
            off_spans.0.push(off_span);
        }
        let window = &stream[(t + 1).saturating_sub(WINDOW)..=t];
        let fit = SpanFit::new(DMatrix::from_fn(window.len(), D, |i, j| window[i][j] as f64));
        let (ridge, cone) = (fit.score(&w, Solver::Ridge { lambda: 0.01 }), fit.score(&w, Solver::Nnls));
        assert_eq!(report.scores.k, fit.k(), "pair {t}: effective rank");
        assert_eq!(report.scores.window, window.len());
        for (name, streamed, batch) in [("ridge", report.scores.ridge.ds, ridge.ds), ("cone", report.scores.cone.ds, cone.ds)] {
            assert!((streamed - batch).abs() <= 1e-3, "pair {t} {name}: streamed {streamed} vs batch {batch}");
            worst = worst.max((streamed - batch).abs());
        }
    }
    println!("largest difference between streamed and batch DS over {} pairs: {worst:.2e}", stream.len());
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (inside, outside) = (mean(&off_spans.0), mean(&off_spans.1));
    // The basis is the top k of the faithful changes (their effective rank), so some of each stays outside.
    println!("off span: faithful pairs {inside:.3} (their own basis), photometric {outside:.3}");
    assert!(outside > inside + 0.3, "photometric changes lie further outside the faithful basis than faithful ones: {outside} vs {inside}");
}

#[test]
fn tracker_memory_is_fixed_and_small() {
    let full = std::mem::size_of::<SpanTracker<1280, 64>>();
    let small = std::mem::size_of::<SpanTracker<384, 64>>();
    println!("SpanTracker<1280, 64>: {full} bytes; SpanTracker<384, 64>: {small} bytes");
    assert!(full < 8 * 1024 * 1024, "{full} bytes");
    // W x D f32 ring, three W x W f64 (the Gram matrix, its Householder
    // reduction, the NNLS's Cholesky scratch), w, and at most 16 W-vectors.
    assert!(full < 64 * 1280 * 4 + 3 * 64 * 64 * 8 + 1280 * 4 + 16 * 64 * 8);
    assert!(small < 64 * 384 * 4 + 3 * 64 * 64 * 8 + 384 * 4 + 16 * 64 * 8);
}
