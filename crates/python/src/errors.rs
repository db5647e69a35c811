//! How a call of the native module runs: without the GIL, and with its
//! error or panic turned into the Python exception a user expects.

use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The Python exception of `error`: `FileNotFoundError` when a file or
/// folder is missing, else `ValueError`; the message is the CLI's.
pub fn to_py(error: anyhow::Error) -> PyErr {
    let message = format!("{error:#}");
    let missing =
        error.chain().any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound));
    if missing {
        PyFileNotFoundError::new_err(message)
    } else {
        PyValueError::new_err(message)
    }
}

/// Runs `work` with the GIL released; its error becomes [`to_py`]'s
/// exception and a panic a `RuntimeError`, so neither unwinds into Python.
pub fn run<T: Send>(py: Python<'_>, work: impl FnOnce() -> anyhow::Result<T> + Send) -> PyResult<T> {
    py.detach(|| match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result.map_err(to_py),
        Err(panic) => {
            let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            Err(PyRuntimeError::new_err(format!("spanwatch: internal error: {}", what.unwrap_or_else(|| "a panic".into()))))
        }
    })
}
