//! The edge's state file (`state.redb`) as any bytes: opening it either
//! restores a state or moves the file aside and starts fresh, never a panic
//! that escapes and never an error (a damaged file is not the operator's
//! fault to untangle). In CI: `store::tests` (proptest).
#![no_main]

use spanwatch_edge::store::Store;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("the state folder");
    std::fs::write(state.join("state.redb"), data).expect("the state file");
    let opened = Store::open(&state, "bundle", 8);
    assert!(opened.is_ok(), "{:#}", opened.err().expect("an error"));
});
