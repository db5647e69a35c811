//! spanwatch's batch metric against an independent numpy / scikit-learn /
//! scipy implementation (tests/reference/make_metric_fixtures.py) on fixed
//! embeddings: real EfficientNet-Lite0 embeddings of the demo images, and a
//! random case with more pairs than dimensions.

use nalgebra::DMatrix;
use spanwatch_calibrate::metric::probe::fit_classes as fit_probe;
use spanwatch_calibrate::metric::{SpanFit, Standardization};
use spanwatch_core::span::Solver;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/metric").join(name)
}

fn rows(name: &str) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let d = npy.shape()[1] as usize;
    let flat: Vec<f32> = npy.into_vec().unwrap();
    flat.chunks(d).map(|c| c.to_vec()).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|x| x * x).sum::<f64>().sqrt())
}

fn check_case(case: &str, expected: &serde_json::Value) {
    let neg = rows(&format!("{case}_neg.npy"));
    let pos = rows(&format!("{case}_pos.npy"));
    let real: Vec<&[f32]> = neg.iter().chain(&pos).map(|r| r.as_slice()).collect();
    let standardization = Standardization::fit(&real);
    assert_eq!(standardization.constant_dims as u64, expected["constant_dims"].as_u64().unwrap(), "{case}: constant dims");
    let z = |r: &Vec<Vec<f32>>| r.iter().map(|e| standardization.apply(e)).collect::<Vec<_>>();
    let probe = fit_probe(&z(&neg), &z(&pos)).unwrap();

    let sklearn_w: Vec<f64> = {
        let bytes = std::fs::read(fixture(&format!("{case}_w_sklearn.npy"))).unwrap();
        npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap()
    };
    let ours: Vec<f64> = probe.w.iter().map(|&v| v as f64).collect();
    let cos = cosine(&ours, &sklearn_w);
    println!("{case}: cosine(w, sklearn w) = {cos:.8}");
    assert!(cos >= 0.999, "{case}: probe cosine {cos} < 0.999");

    for generator in expected["generators"].as_array().unwrap() {
        let g = generator.as_str().unwrap();
        let want = &expected["scores"][g];
        let syn = rows(&format!("{case}_{g}_syn.npy"));
        let src = rows(&format!("{case}_{g}_src.npy"));
        let diffs: Vec<Vec<f32>> = syn.iter().zip(&src).map(|(a, b)| standardization.difference(a, b)).collect();
        let fit = SpanFit::new(DMatrix::from_fn(diffs.len(), diffs[0].len(), |i, j| diffs[i][j] as f64));
        assert_eq!(fit.k() as u64, want["k"].as_u64().unwrap(), "{case}/{g}: effective rank");
        for (solver, key) in [(Solver::Ridge { lambda: 0.01 }, "ds_ridge"), (Solver::Lstsq, "ds_lstsq"), (Solver::Nnls, "ds_nnls")] {
            let score = fit.score(&probe.w, solver);
            let reference = want[key].as_f64().unwrap();
            println!("{case}/{g} {key}: {:.6} (reference {reference:.6})", score.ds);
            assert!((score.ds - reference).abs() <= 1e-4, "{case}/{g} {key}: {} vs reference {reference}", score.ds);
        }
        let chance = fit.score(&probe.w, Solver::Lstsq).chance_ds;
        assert!((chance - want["chance_ds"].as_f64().unwrap()).abs() < 1e-9);
        let top = want["singular_values_top3"].as_array().unwrap();
        for (ours, theirs) in fit.singular_values().iter().zip(top) {
            assert!((ours - theirs.as_f64().unwrap()).abs() <= 1e-4 * theirs.as_f64().unwrap(), "{case}/{g}: singular values");
        }
    }
}

#[test]
fn every_solver_matches_the_numpy_reference() {
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    for case in ["demo", "tall"] {
        check_case(case, &expected[case]);
    }
}
