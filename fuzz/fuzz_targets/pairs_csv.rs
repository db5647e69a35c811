//! A generator's `pairs.csv` as any bytes, in a dataset with real negatives
//! and synthetic images: loading it pairs each listed synthetic with a real
//! negative or fails with an error, never a panic, and never pairs a
//! synthetic with a file outside `real/negative`. In CI: `dataset::tests`
//! (proptest).
#![no_main]

use spanwatch_calibrate::dataset::Dataset;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = dir.path();
    for file in ["real/negative/a.png", "real/negative/b.png", "real/positive/p.png", "real/other/x.png", "synthetic/g/s1.png", "synthetic/g/s2.png"] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a folder");
        std::fs::write(path, b"x").expect("a file");
    }
    std::fs::write(root.join("synthetic/g/pairs.csv"), data).expect("pairs.csv");
    if let Ok(dataset) = Dataset::open(root, true) {
        for pair in dataset.generators.iter().flat_map(|g| &g.pairs) {
            assert!(pair.source.starts_with(root.join("real/negative")), "{}", pair.source.display());
        }
    }
});
