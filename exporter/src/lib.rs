//! # pocketrec-export
//!
//! The workstation side of pocketrec: read trained embedding tables, optionally prune and
//! quantize them, and write a `.prec` file that the `pocketrec` runtime opens zero-copy on a
//! phone or a microcontroller.

pub mod error;
pub mod input;

pub use error::{ExportError, Result};
