//! # pocketrec-export
//!
//! The workstation side of pocketrec: read trained embedding tables (NumPy `.npy`/`.npz`,
//! scipy sparse `.npz`, safetensors), optionally prune and quantize them, and write a `.prec`
//! file that the `pocketrec` runtime opens zero-copy on a phone or a microcontroller. Also the
//! `pocketrec` command-line tool.
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

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod error;
pub mod eval;
pub mod export;
pub mod ids;
pub mod input;
pub mod inspect;
pub mod progress;
pub mod prune;
pub mod recommend;
pub mod synth;
pub mod train;

pub use error::{ExportError, Result};
