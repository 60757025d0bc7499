//! The exporter's one error type.
//!
//! Every variant names the file and, where it applies, the tensor, row, column or line, so that
//! the CLI can print it as is and the user knows where to look.

use std::path::PathBuf;

/// Everything that can go wrong while reading tables, building a model or running a CLI command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A file could not be opened, read, written or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file is malformed for the format it claims (npy, npz, safetensors, text).
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, and where in the file.
        message: String,
    },
    /// A tensor has an element type the exporter does not read.
    #[error("{}: tensor '{tensor}' has dtype {dtype}; supported: f32, f64, f16, bf16", path.display())]
    UnsupportedDtype {
        /// The file concerned.
        path: PathBuf,
        /// The tensor (or npz member) name.
        tensor: String,
        /// The dtype as the file spells it.
        dtype: String,
    },
    /// A named tensor is not in the file.
    #[error("{}: no tensor named '{tensor}' (the file has: {available})", path.display())]
    MissingTensor {
        /// The file concerned.
        path: PathBuf,
        /// The name that was asked for.
        tensor: String,
        /// The names the file does hold, comma-separated.
        available: String,
    },
    /// A tensor's shape is not what the command needs, or two inputs disagree.
    #[error("{}: tensor '{tensor}': {message}", path.display())]
    Shape {
        /// The file concerned.
        path: PathBuf,
        /// The tensor (or npz member) name.
        tensor: String,
        /// The shape found and the shape expected.
        message: String,
    },
    /// A value is NaN or infinite, or does not fit the type it must be stored in.
    #[error("{}: tensor '{tensor}' row {row}, column {column}: {message}", path.display())]
    BadValue {
        /// The file concerned.
        path: PathBuf,
        /// The tensor (or npz member) name.
        tensor: String,
        /// Row of the offending value (0-based).
        row: u64,
        /// Column of the offending value (0-based).
        column: u64,
        /// What is wrong with it, e.g. "value NaN is not finite".
        message: String,
    },
    /// A line of a text input (id file, interaction log, bias file) is malformed or repeats an id.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with the line.
        message: String,
    },
    /// The command's arguments are inconsistent (e.g. `--users` without `--items`).
    #[error("{0}")]
    Usage(String),
    /// The runtime rejected a model file or the builder rejected its input.
    #[error("{}: {source}", path.display())]
    Model {
        /// The `.prec` file concerned (or the output being written).
        path: PathBuf,
        /// The runtime's error.
        #[source]
        source: pocketrec::Error,
    },
    /// A patch could not be made (the diff's own check failed), or a key file is malformed.
    #[error("{0}")]
    Patch(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = ExportError> = std::result::Result<T, E>;

impl ExportError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }

    /// A parse error for `path` with a message.
    pub fn parse(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ExportError::Parse {
            path: path.into(),
            message: message.into(),
        }
    }
}
