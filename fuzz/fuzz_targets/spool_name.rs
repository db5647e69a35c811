//! The spool's file-name parser on any name (read as the scan reads it,
//! lossily): a pair file is exactly `<id>.<source|synthetic>.<png|jpg|jpeg>`
//! with a non-empty id and no leading dot, never a panic. In CI:
//! `spool::tests` (proptest).
#![no_main]

use spanwatch_edge::spool::{classify, Half};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let name = String::from_utf8_lossy(data);
    if let Some((id, half)) = classify(&name) {
        let marker = match half {
            Half::Source => "source",
            Half::Synthetic => "synthetic",
        };
        let extension = name.rsplit_once('.').expect("an extension").1.to_ascii_lowercase();
        assert!(!id.is_empty() && !name.starts_with('.'));
        assert!(["png", "jpg", "jpeg"].contains(&extension.as_str()));
        assert_eq!(name.to_ascii_lowercase(), format!("{id}.{marker}.{extension}").to_ascii_lowercase());
    }
});
