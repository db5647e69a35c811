//! The calibration bundle decoder on any bytes, raw and framed with a valid
//! header and checksum (so the payload decoder is reached): a valid bundle
//! or an error, never a panic. In CI: `bundle::tests` (proptest).
#![no_main]

use spanwatch_core::bundle::{frame, Bundle};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Bundle::decode(data);
    if let Ok(bundle) = Bundle::decode(&frame(data)) {
        assert!(bundle.validate().is_ok());
        let mut seed = vec![0.0f32; bundle.model.dim as usize];
        for j in 0..bundle.rank() {
            assert!(bundle.seed_into(j, &mut seed));
        }
    }
});
