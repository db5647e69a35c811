//! The study's baselines (FID, KID, PRDC) against scipy and the prdc package
//! (tests/reference/make_metric_fixtures.py) on the same fixed embeddings as
//! the calibration library's metric reference.

use nalgebra::DMatrix;
use spanwatch_study::baselines::{frechet_distance, kernel_inception_distance, mean_cosine, prdc};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/metric").join(name)
}

fn matrix(name: &str) -> DMatrix<f64> {
    let bytes = std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let d = npy.shape()[1] as usize;
    let flat: Vec<f32> = npy.into_vec().unwrap();
    DMatrix::from_fn(flat.len() / d, d, |i, j| flat[i * d + j] as f64)
}

#[test]
fn baselines_match_scipy_and_the_prdc_package() {
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected_baselines.json")).unwrap()).unwrap();
    for (key, want) in expected.as_object().unwrap() {
        let (case, generator) = key.split_once('/').unwrap();
        let real = matrix(&format!("{case}_pos.npy"));
        let fake = matrix(&format!("{case}_{generator}_syn.npy"));
        let p = prdc(&real, &fake, 5);
        let ours = [
            ("frechet", frechet_distance(&real, &fake)),
            ("kid", kernel_inception_distance(&real, &fake)),
            ("precision", p.precision),
            ("recall", p.recall),
            ("density", p.density),
            ("coverage", p.coverage),
            ("mean_cosine", mean_cosine(&real, &fake)),
        ];
        for (name, value) in ours {
            let reference = want[name].as_f64().unwrap();
            println!("{key} {name}: {value:.8} (reference {reference:.8})");
            assert!((value - reference).abs() <= 1e-4 * reference.abs().max(1e-12), "{key} {name}: {value} vs {reference}");
        }
    }
}
