use std::path::PathBuf;

/// Why an image could not be embedded, or a model not loaded. Every variant
/// names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A file could not be read. The I/O error is part of the message and
    /// deliberately not a `source()`: a report of the error chain
    /// (anyhow's `{:#}`) would print it twice.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A model manifest is missing fields or malformed.
    #[error("model manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The ONNX file is not there.
    #[error("model file {path} is missing; {hint}")]
    ModelMissing {
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// A model's recipe could not make it.
    #[error("cannot make model {model}: {step} failed: {reason}")]
    Provision {
        /// The manifest's name.
        model: String,
        /// The step that failed.
        step: String,
        /// Why, with the command and what it said.
        reason: String,
    },
    /// The ONNX file is not the one the manifest names.
    #[error("model file {path}: sha256 is {actual}, the manifest expects {expected}")]
    ModelChecksum {
        /// The ONNX file.
        path: PathBuf,
        /// sha256 from the manifest.
        expected: String,
        /// sha256 of the file.
        actual: String,
    },
    /// tract could not load or run the model.
    #[error("model {path}: {reason}")]
    Model {
        /// The ONNX file.
        path: PathBuf,
        /// tract's error chain.
        reason: String,
    },
    /// An image is empty, corrupt, truncated, too large or of a shape the model cannot take.
    #[error("image {path}: {reason}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The model produced NaN or infinite values for an image.
    #[error("image {path}: the model's embedding holds {bad} non-finite values (NaN or infinite)")]
    NonFinite {
        /// The image file.
        path: PathBuf,
        /// How many values are not finite.
        bad: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_is_said_once_in_the_error_chain() {
        let error = EmbedError::Io { path: "/spool/pair-1.source.png".into(), error: std::io::Error::from(std::io::ErrorKind::NotFound) };
        assert!(std::error::Error::source(&error).is_none());
        let text = error.to_string();
        assert_eq!(text.matches("not found").count(), 1, "{text}");
        assert!(text.starts_with("/spool/pair-1.source.png: "), "{text}");
    }
}
