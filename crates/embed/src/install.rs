//! Where spanwatch finds its shared files (model manifests and models, the
//! demo's textures) at run time. No build path is baked into a binary: the
//! search order is an environment variable, then the install prefix beside
//! the executable (`<exe>/../share/spanwatch/<what>`, as the Debian package
//! lays it out), then the workspace that `cargo run` or `cargo test` started
//! the program from (found upward from `$CARGO_MANIFEST_DIR`, which cargo
//! sets for the programs it runs), then `/usr/share/spanwatch/<what>`, then
//! the checkout around `target/<profile>/<exe>`.

use std::path::{Path, PathBuf};

/// A kind of shared folder.
#[derive(Clone, Copy, Debug)]
pub struct SharedDir {
    /// Its path under the install's `share/spanwatch/` and under a checkout.
    pub subdir: &'static str,
    /// The environment variable that names it directly.
    pub env: &'static str,
    /// A file that must be in it, so that an unrelated folder of the same name is passed over.
    pub marker: &'static str,
}

/// Model manifests and the committed models (`$SPANWATCH_MODELS`).
pub const MODELS: SharedDir = SharedDir { subdir: "models", env: "SPANWATCH_MODELS", marker: "efficientnet-lite0.toml" };

/// The demo's CC0 textures (`$SPANWATCH_TEXTURES`).
pub const TEXTURES: SharedDir = SharedDir { subdir: "data/textures", env: "SPANWATCH_TEXTURES", marker: "brick.png" };

impl SharedDir {
    /// Every place looked at, in order.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut places = Vec::new();
        if let Some(dir) = std::env::var_os(self.env) {
            places.push(PathBuf::from(dir));
        }
        let exe = std::env::current_exe().ok().and_then(|e| e.canonicalize().ok());
        if let Some(prefix) = exe.as_deref().and_then(Path::parent).and_then(Path::parent) {
            places.push(prefix.join("share/spanwatch").join(self.subdir));
        }
        // Under `cargo run` or `cargo test`, the checkout being run wins over a system install.
        if let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
            places.extend(Path::new(&manifest_dir).ancestors().map(|dir| dir.join(self.subdir)));
        }
        places.push(Path::new("/usr/share/spanwatch").join(self.subdir));
        // target/<profile>/<exe> in a checkout.
        if let Some(checkout) = exe.as_deref().and_then(|e| e.ancestors().nth(3)) {
            places.push(checkout.join(self.subdir));
        }
        places
    }

    /// The first candidate that holds the marker file, or every place looked at.
    pub fn find(&self) -> Result<PathBuf, Vec<PathBuf>> {
        let places = self.candidates();
        places.iter().find(|dir| dir.join(self.marker).is_file()).cloned().ok_or(places)
    }
}

/// Places as one line, for errors.
pub fn list(places: &[PathBuf]) -> String {
    places.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
