//! The library's errors as Python's exceptions, with the command line's messages: a file that
//! cannot be read or written is an `OSError`, bad data, settings or model files a
//! `ValueError`, a run whose loss became NaN a `FloatingPointError`.

use pyo3::PyErr;
use pyo3::exceptions::{PyFloatingPointError, PyOSError, PyRuntimeError, PyValueError};

use rnn::error::Error;

/// The exception for `e`.
pub fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Io { cause, .. } => match cause.raw_os_error() {
            // OSError(errno, message) sets `errno`, and Python picks the subclass
            // (FileNotFoundError, PermissionError, ...)
            Some(code) => PyOSError::new_err((code, message)),
            None => PyOSError::new_err(message),
        },
        Error::Data { .. } | Error::Model { .. } | Error::Config(_) => {
            PyValueError::new_err(message)
        }
        Error::Diverged { .. } | Error::DivergedSaved { .. } => {
            PyFloatingPointError::new_err(message)
        }
        Error::Plot { .. } => PyRuntimeError::new_err(message),
    }
}
