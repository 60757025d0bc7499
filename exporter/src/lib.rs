//! # pocketrec-export
//!
//! The workstation library that turns trained embedding tables into `.prec` files: it reads
//! tables (NumPy `.npy`/`.npz`, scipy sparse `.npz`, safetensors, text), id files and biases,
//! prunes by magnitude, quantizes through the runtime's builder, writes the file atomically, and
//! describes a written file as data (`inspect`). It depends on the runtime (`pocketrec`) and on
//! format readers only: never on a command-line parser, a progress-bar crate or the trainer, so
//! that any front end (the `pocketrec` CLI, the Python package) can call it. Long work reports
//! through the [`progress::Progress`] observer.
//!
//! ```no_run
//! use pocketrec_export::export::{ExportOptions, Source, export};
//! # fn main() -> pocketrec_export::Result<()> {
//! let mut options = ExportOptions::new(Source::file("users.npy"), Source::file("items.npy"), "model.prec");
//! options.values = pocketrec::ValueEncoding::F16;
//! let summary = export(&options)?;
//! println!("{} bytes", summary.file_bytes);
//! # Ok(()) }
//! ```

pub mod arrays;
pub mod atomic;
pub mod diff;
pub mod error;
pub mod export;
pub mod fold_in;
pub mod ids;
pub mod input;
pub mod inspect;
pub mod model_file;
pub mod progress;
pub mod prune;
pub mod sign;
pub mod storage;

pub use error::{ExportError, Result};
pub use model_file::open_model;
