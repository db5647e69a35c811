//! The image path of every pair: decode with the header-checked limits, then
//! resize, crop and normalize as EfficientNet-Lite0's manifest says. An image
//! within the limits or an error naming the file, never a panic; memory is
//! held under the documented ceiling by `-rss_limit_mb` (fuzz/run.sh).
//! In CI: `preprocess::tests` (proptest).
#![no_main]

use spanwatch_embed::preprocess::PreprocessSpec;
use spanwatch_embed::preprocess::{load_rgb, to_tensor, MAX_PIXELS};
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match load_rgb(Path::new("fuzzed.img"), data) {
        Ok(image) => {
            assert!(image.width() as u64 * image.height() as u64 <= MAX_PIXELS);
            let spec = PreprocessSpec { resize_short_side: 256, crop: 224, scale: 1.0 / 255.0, mean: [0.5; 3], std: [0.5; 3] };
            assert_eq!(to_tensor(&image, &spec).len(), 3 * 224 * 224);
        }
        Err(e) => assert!(e.to_string().contains("fuzzed.img")),
    }
});
