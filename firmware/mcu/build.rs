//! Puts memory.x on the linker's path and picks the compiled-in calibration:
//! the bundle and stored pair stream in `data/`, or in the folder named by
//! SPANWATCH_MCU_DATA (a bundle from `spanwatch calibrate` and a stream
//! written like data/README.md says); and the window capacity W
//! (SPANWATCH_MCU_WINDOW, default 32).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy("memory.x", out.join("memory.x")).expect("cannot copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");

    // The tracker's window capacity (pairs), fixed at build time.
    println!("cargo:rerun-if-env-changed=SPANWATCH_MCU_WINDOW");
    let window = std::env::var("SPANWATCH_MCU_WINDOW").unwrap_or_else(|_| "32".into());
    match window.parse::<usize>() {
        Ok(w) if (1..=256).contains(&w) => println!("cargo:rustc-env=SPANWATCH_MCU_WINDOW={w}"),
        _ => panic!("SPANWATCH_MCU_WINDOW={window:?} is not a window of 1..=256 pairs"),
    }

    println!("cargo:rerun-if-env-changed=SPANWATCH_MCU_DATA");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let data = std::env::var_os("SPANWATCH_MCU_DATA").map(PathBuf::from).unwrap_or_else(|| manifest_dir.join("data"));
    for (file, variable) in [("calibration.bundle", "SPANWATCH_MCU_BUNDLE"), ("stream.f32", "SPANWATCH_MCU_STREAM")] {
        let path = data.join(file);
        if !path.is_file() {
            panic!("the firmware compiles in {}, which does not exist (set SPANWATCH_MCU_DATA to a folder with {file})", path.display());
        }
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-env={variable}={}", path.display());
    }
}
