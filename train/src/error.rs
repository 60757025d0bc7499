//! The trainer's one error type.
//!
//! Every variant names the file and, where it applies, the line, so that a front end can print
//! it as is and the user knows where to look.

use std::path::PathBuf;

/// Everything that can go wrong while reading interaction logs, training or evaluating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file as a whole is unusable (not UTF-8, no interactions).
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A line of an interaction log is malformed, or names an id of the wrong kind.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with the line.
        message: String,
    },
    /// A checkpoint is unusable: truncated, corrupt (a checksum differs), of another version,
    /// or made for other settings than the run that resumes it.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The options are inconsistent with each other or with the data (e.g. a density outside
    /// (0, 1], `k = 0`), or worker threads could not start.
    #[error("{0}")]
    Options(String),
    /// The runtime rejected a model (when evaluating) or the builder rejected the trained
    /// tables (when encoding).
    #[error("{}: {source}", path.display())]
    Model {
        /// The `.prec` file concerned, or `<trained model>` for tables being encoded.
        path: PathBuf,
        /// The runtime's error.
        #[source]
        source: pocketrec::Error,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl TrainError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    /// A parse error for `path` with a message.
    pub fn parse(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        TrainError::Parse {
            path: path.into(),
            message: message.into(),
        }
    }
}
