//! # pocketrec
//!
//! The device-side runtime of pocketrec: it opens a `.prec` file of sparse user and item
//! embeddings zero-copy from a byte slice (flash, an Android asset buffer) or a memory map,
//! validates it, looks up rows, scores (dot or cosine, plus biases) and returns top-k
//! recommendations, with no heap allocation on the query path.
//!
//! ```
//! # fn main() -> Result<(), pocketrec::Error> {
//! # let bytes = pocketrec::builder::tiny_example_model()?;
//! use pocketrec::{Model, Recommendation};
//!
//! let model = Model::from_bytes(&bytes)?;  // checks header, section table, metadata
//! let mut top = [Recommendation::default(); 3];
//! let n = model.recommend(0, 3, &[], &mut top)?;
//! for rec in &top[..n] {
//!     println!("item {} scores {}", rec.id, rec.score);
//! }
//! # Ok(()) }
//! ```
//!
//! ## Features
//! - *(none)*: `no_std`, no allocator. Everything in this crate but the builder works.
//! - `alloc`: `Model<Vec<u8>>`, [`Row::to_dense`], and the [`builder`] that writes files.
//! - `std` (default): `std::error::Error` for [`Error`], [`Model::read`], I/O errors, a faster
//!   checksum table.
//! - `mmap`: `Model::open(path)`, a read-only memory map (memmap2).
//!
//! ## Safety model
//! Every file is untrusted. Opening validates the header, section table and metadata with
//! their checksums; every row access validates the row it reads (offsets, lengths, column
//! indices); [`Model::verify`] checks everything including the data checksums. No input makes
//! this crate panic or read out of bounds. `unsafe` code is confined to two places: the
//! memory map in `Model::open`, and the SIMD kernels (`core::arch` intrinsics), each block
//! with its `SAFETY` argument and each kernel tested against a scalar twin. The bytes may be at any alignment: values are read with
//! `from_le_bytes`, never cast in place. The format is specified byte by byte in
//! `docs/FORMAT.md`.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "alloc")]
pub mod builder;
mod columns;
mod error;
pub mod format;
// SIMD intrinsics and the loads they need: every unsafe block there has a SAFETY comment.
#[allow(unsafe_code)]
mod kernels;
mod layout;
mod le;
#[cfg(feature = "mmap")]
#[allow(unsafe_code)]
mod mmap;
mod model;
mod properties;
mod row;
mod scan;
mod score;
mod table;
mod topk;
mod verify;

pub use error::{ChecksumScope, Error, Result};
pub use format::{
    IdEncoding, IdKind, IndexEncoding, OffsetWidth, Role, Scoring, SectionKind, ValueEncoding,
    string_id,
};
/// The read-only memory map type behind `Model::open` (re-exported from memmap2).
#[cfg(feature = "mmap")]
pub use memmap2::Mmap;
pub use model::{Model, SectionInfo};
pub use properties::Properties;
pub use row::{Row, RowIter};
pub use scan::{MAX_STACK_BLOCK_ROWS, QueryPlan, Retrieval};
pub use score::MAX_STACK_DIM;
pub use table::Table;
pub use topk::Recommendation;
