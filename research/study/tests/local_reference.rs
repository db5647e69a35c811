//! The study's local pair differences (issue 26) against onnxruntime and
//! numpy (tests/reference/make_local_fixtures.py) on a real pair: a CC0 crop
//! and the same crop with a dark scratch. The ViT is made from its recipe on
//! first use, as every ViT test does.

use spanwatch_calibrate::embedding::CacheChoice;
use spanwatch_study::local::pair_differences;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn load_npy(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<f32>().unwrap()
}

#[test]
fn local_differences_match_onnxruntime_and_numpy_and_are_cached() {
    let bases = ["vit-s14-patchmean", "vit-s14-l6-patchmean"];
    let source = fixtures().join("images/coins_gray.png");
    let synthetic = fixtures().join("local/coins_scratch.png");
    let pairs = [(synthetic.as_path(), source.as_path()), (source.as_path(), source.as_path())];
    let cache = tempfile::tempdir().unwrap();
    let choice = CacheChoice::At(cache.path().to_path_buf());
    let computed = pair_differences(&bases, &pairs, &choice, true).unwrap();
    for (base, differences) in bases.iter().zip(&computed) {
        let want = load_npy(&fixtures().join(format!("local/local_{base}.npy")));
        let got = &differences[&synthetic];
        assert_eq!(got.len(), want.len(), "{base}");
        let max_abs = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{base}: max abs diff {max_abs:.2e}");
        // The embeddings' parity bound (tract against onnxruntime).
        assert!(max_abs <= 1e-4, "{base}: max abs diff {max_abs}");
        assert!(got.iter().any(|&v| v != 0.0), "{base}: the scratch changed nothing");
        // A copy (its two paths are one file) changes nothing.
        assert!(differences[&source].iter().all(|&v| v == 0.0), "{base}");
    }
    // The second time every difference comes from the cache, to the bit.
    let cached = pair_differences(&bases, &pairs, &choice, true).unwrap();
    assert_eq!(cached, computed);
    // A pair whose file is missing is an error that names it.
    let missing = fixtures().join("local/missing.png");
    let error = pair_differences(&bases, &[(missing.as_path(), source.as_path())], &CacheChoice::Off, true).unwrap_err();
    assert!(format!("{error:#}").contains("missing.png"), "{error:#}");
}

#[test]
fn anomaly_region_features_match_onnxruntime_and_numpy() {
    use spanwatch_study::anomaly::{real_regions, SurfaceReals};
    let negatives: Vec<PathBuf> =
        ["coins_gray", "brick_gray", "camera_gray"].iter().map(|n| fixtures().join(format!("images/{n}.png"))).collect();
    let scratched = fixtures().join("local/coins_scratch.png");
    let surface = SurfaceReals { negatives: negatives.iter().map(PathBuf::as_path).collect(), others: vec![scratched.as_path()] };
    let computed = real_regions(&["vit-s14-l6-patchmean"], &[surface], true).unwrap();
    let want = load_npy(&fixtures().join("local/anomaly_vit-s14-l6-patchmean.npy"));
    let dim = 384;
    assert_eq!(want.len(), 4 * dim);
    for (row, path) in negatives.iter().chain([&scratched]).enumerate() {
        let got = &computed[0][path].feature;
        let max_abs = got.iter().zip(&want[row * dim..(row + 1) * dim]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{}: max abs diff {max_abs:.2e}", path.display());
        assert!(max_abs <= 1e-4, "{}: max abs diff {max_abs}", path.display());
    }
    // A missing real image is an error that names it.
    let missing = fixtures().join("local/missing.png");
    let surface = SurfaceReals { negatives: vec![missing.as_path()], others: Vec::new() };
    let error = real_regions(&["vit-s14-l6-patchmean"], &[surface], true).unwrap_err();
    assert!(format!("{error:#}").contains("missing.png"), "{error:#}");
}
