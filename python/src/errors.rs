//! The libraries' errors as Python exceptions: `pocketrec.PocketrecError` (a `ValueError`) for
//! bad input, bad files and failed checks, and `pocketrec.PocketrecIOError` (also an `OSError`)
//! for files that cannot be read or written. Both classes are defined in Python
//! (`pocketrec/_errors.py`), so that they can have two bases; the message is the library's, as
//! the CLI prints it.

use std::fmt::Display;
use std::path::Path;

use pocketrec_export::ExportError;
use pocketrec_train::TrainError;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

/// Which exception class an error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `PocketrecError`: bad input or a failed check.
    Value,
    /// `PocketrecIOError`: a file could not be read or written.
    Io,
}

/// The exception of `kind` with `message`.
pub(crate) fn raise(kind: Kind, message: impl Display) -> PyErr {
    let message = message.to_string();
    let name = match kind {
        Kind::Value => "PocketrecError",
        Kind::Io => "PocketrecIOError",
    };
    Python::attach(|py| {
        let class = py
            .import("pocketrec._errors")
            .and_then(|m| m.getattr(name))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match (class, kind) {
            (Ok(class), _) => PyErr::from_type(class, (message,)),
            // The package's Python half is missing (the module imported on its own).
            (Err(_), Kind::Value) => PyValueError::new_err(message),
            (Err(_), Kind::Io) => PyOSError::new_err(message),
        }
    })
}

/// A runtime error about the model at `path` (the message names the file).
pub(crate) fn model_error(path: &Path, source: pocketrec::Error) -> PyErr {
    export_error(ExportError::Model {
        path: path.to_path_buf(),
        source,
    })
}

/// An exporter error.
pub(crate) fn export_error(e: ExportError) -> PyErr {
    let kind = match &e {
        ExportError::Io { .. }
        | ExportError::Model {
            source: pocketrec::Error::Io(_),
            ..
        } => Kind::Io,
        _ => Kind::Value,
    };
    raise(kind, e)
}

/// A trainer error.
pub(crate) fn train_error(e: TrainError) -> PyErr {
    let kind = match &e {
        TrainError::Io { .. }
        | TrainError::Model {
            source: pocketrec::Error::Io(_),
            ..
        } => Kind::Io,
        _ => Kind::Value,
    };
    raise(kind, e)
}

/// A `PocketrecError` for a bad argument.
pub(crate) fn usage(message: impl Display) -> PyErr {
    raise(Kind::Value, message)
}
