//! The CLI's one error type: the libraries' errors as they are, and the CLI's own failures.

use std::path::PathBuf;

use pocketrec_export::ExportError;
use pocketrec_train::TrainError;

/// Everything that can stop a command. Each prints as one line after `pocketrec: error: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Reading tables, writing a file or opening a model failed (the exporter's message).
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Reading a log, training or evaluating failed (the trainer's message).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A file or stream the command itself reads or writes failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned (`<stdout>` for standard output).
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a file the command reads (e.g. `--users-file`) is unusable.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with the line.
        message: String,
    },
    /// The arguments are inconsistent.
    #[error("{0}")]
    Usage(String),
    /// The runtime rejected a model the command opened.
    #[error("{}: {source}", path.display())]
    Model {
        /// The `.prec` file concerned.
        path: PathBuf,
        /// The runtime's error.
        #[source]
        source: pocketrec::Error,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.into(),
            source,
        }
    }
}
