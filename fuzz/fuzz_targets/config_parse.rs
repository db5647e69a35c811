//! The edge's config file: any text is options that resolve to settings or
//! an error, never a panic. In CI: `config::tests` (proptest).
#![no_main]

use spanwatch_edge::config::{Options, Settings};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(options) = toml::from_str::<Options>(text) {
            let _ = Settings::resolve(options);
        }
    }
});
