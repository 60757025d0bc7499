//! # pocketrec
//!
//! The device-side runtime of pocketrec: it opens a `.prec` file of sparse user and item
//! embeddings zero-copy from a byte slice (flash, an Android asset buffer) or a memory map,
//! validates it, looks up rows, scores (dot or cosine, plus biases) and returns top-k
//! recommendations, with no heap allocation on the query path. It depends on no other
//! pocketrec crate and on nothing that needs `std` or an allocator unless its `std`, `alloc` or
//! `mmap` features ask for it (see `docs/ARCHITECTURE.md`).
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

#[cfg(feature = "std")]
pub mod atomic;
#[cfg(feature = "std")]
mod batch;
mod bitmap_blocks;
mod bounds;
#[cfg(feature = "alloc")]
pub mod builder;
mod columns;
mod derive;
mod error;
mod fold_in;
mod fold_in_softmax;
pub mod format;
mod id_strings;
// SIMD intrinsics and the loads they need: every unsafe block there has a SAFETY comment.
#[allow(unsafe_code)]
mod kernels;
mod layout;
mod le;
#[cfg(feature = "mmap")]
#[allow(unsafe_code)]
mod mmap;
mod model;
pub mod patch;
mod properties;
pub mod range_coder;
mod row;
mod scan;
mod score;
pub mod signature;
mod sliced;
mod table;
mod topk;
mod verify;

/// The kernels, exposed for the criterion benches only (not a stable API).
#[doc(hidden)]
pub mod bench_kernels {
    use crate::format::ValueEncoding;

    /// The dispatching scatter-add (SIMD where available).
    pub fn scatter_add(
        acc: &mut [f32],
        weight: f32,
        items: &[u8],
        values: &[u8],
        encoding: ValueEncoding,
    ) -> bool {
        let mut ahead = crate::kernels::Prefetch::default();
        crate::kernels::scatter_add(acc, weight, items, values, encoding, &mut ahead)
    }

    /// The scalar scatter-add.
    pub fn scatter_add_scalar(
        acc: &mut [f32],
        weight: f32,
        items: &[u8],
        values: &[u8],
        encoding: ValueEncoding,
    ) -> bool {
        crate::kernels::scalar::scatter_add(acc, weight, items, values, encoding)
    }

    /// The AVX-512 scatter-add one way (`"gather"` or `"stash"`), whatever the dispatcher
    /// prefers; `None` without AVX-512F or for another name.
    #[cfg(target_arch = "x86_64")]
    pub fn scatter_add_avx512(
        way: &str,
        acc: &mut [f32],
        weight: f32,
        items: &[u8],
        values: &[u8],
        encoding: ValueEncoding,
    ) -> Option<bool> {
        crate::kernels::scatter_add_avx512(way, acc, weight, items, values, encoding)
    }

    /// The dispatching eight-lane u8-list dot product.
    pub fn dot8(
        query: &[f32],
        columns: &[u8],
        values: &[u8],
        n: usize,
        encoding: ValueEncoding,
    ) -> f32 {
        crate::kernels::dot8_u8_list(query, columns, values, n, encoding)
    }

    /// The scalar eight-lane u8-list dot product.
    pub fn dot8_scalar(
        query: &[f32],
        columns: &[u8],
        values: &[u8],
        n: usize,
        encoding: ValueEncoding,
    ) -> f32 {
        crate::kernels::scalar::dot8_u8_list(query, columns, values, n, encoding)
    }

    /// The dispatching batch row kernel over a table's raw row sections.
    pub fn row_dots(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        let (offsets, data) = table.raw_rows();
        crate::kernels::u8_list_dots(query, offsets, data, 0, out, table.value_encoding()).is_ok()
    }

    /// The AVX2 batch row kernel, whatever the dispatcher prefers (`false` without AVX2).
    #[cfg(target_arch = "x86_64")]
    pub fn row_dots_avx2(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        let (offsets, data) = table.raw_rows();
        crate::kernels::u8_list_dots_avx2(query, offsets, data, 0, out, table.value_encoding())
            .is_some_and(|r| r.is_ok())
    }

    /// The scalar batch row kernel.
    pub fn row_dots_scalar(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        let (offsets, data) = table.raw_rows();
        crate::kernels::scalar::u8_list_dots(query, offsets, data, 0, out, table.value_encoding())
            .is_ok()
    }

    /// The dispatching batch row kernel for bitmap tables.
    pub fn bitmap_dots(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        let (offsets, data) = table.raw_rows();
        crate::kernels::bitmap_dots(query, offsets, data, 0, out, table.value_encoding()).is_ok()
    }

    /// The AVX2 batch row kernel for bitmap tables, whatever the dispatcher prefers (`false`
    /// without AVX2).
    #[cfg(target_arch = "x86_64")]
    pub fn bitmap_dots_avx2(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        let (offsets, data) = table.raw_rows();
        crate::kernels::bitmap_dots_avx2(query, offsets, data, 0, out, table.value_encoding())
            .is_some_and(|r| r.is_ok())
    }

    /// The scalar batch row kernel for bitmap tables.
    pub fn bitmap_dots_scalar(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        let (offsets, data) = table.raw_rows();
        crate::kernels::scalar::bitmap_dots(query, offsets, data, 0, out, table.value_encoding())
            .is_ok()
    }

    /// The dispatching sliced-rows kernel over a table of sliced rows (`false` for another
    /// table, or a corrupt one).
    pub fn sliced_dots(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        sliced_windows(table, out, |rows, window, out| {
            crate::kernels::sliced_dots(query, rows, window, out)
        })
    }

    /// The AVX2 sliced-rows kernel, whatever the dispatcher prefers (`false` without AVX2).
    #[cfg(target_arch = "x86_64")]
    pub fn sliced_dots_avx2(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        sliced_windows(table, out, |rows, window, out| {
            crate::kernels::sliced_dots_avx2(query, rows, window, out).unwrap_or(Err(0))
        })
    }

    /// The scalar sliced-rows kernel.
    pub fn sliced_dots_scalar(query: &[f32], table: &crate::Table<'_>, out: &mut [f32]) -> bool {
        sliced_windows(table, out, |rows, window, out| {
            crate::kernels::scalar::sliced_dots(query, rows, window, out)
        })
    }

    /// Runs a window kernel over every window of a table of sliced rows (`out`: one result a
    /// row).
    fn sliced_windows(
        table: &crate::Table<'_>,
        out: &mut [f32],
        kernel: impl Fn(&crate::sliced::SlicedRows<'_>, usize, &mut [f32]) -> Result<(), usize>,
    ) -> bool {
        let Some(rows) = table.sliced() else {
            return false;
        };
        out.len() == table.rows()
            && out
                .chunks_mut(crate::format::SLICE_WINDOW_ROWS)
                .enumerate()
                .all(|(window, out)| kernel(&rows, window, out).is_ok())
    }

    /// The scalar f16 decode of one value.
    pub fn f16_to_f32(bits: u16) -> f32 {
        crate::kernels::scalar::f16_to_f32(bits)
    }
}

#[cfg(feature = "std")]
pub use batch::BatchSummary;
pub use error::{ChecksumScope, Error, Result};
pub use fold_in::{FoldInParams, FoldInSection, FoldInSummary, MAX_CHOLESKY_DIM, Prior, Solver};
pub use fold_in_softmax::{DEFAULT_FOLD_IN_CLUSTERS, SoftmaxFoldIn};
pub use format::{
    IdEncoding, IdKind, IndexEncoding, ListRows, OffsetWidth, Role, Scoring, SectionKind,
    ValueEncoding, string_id,
};
pub use id_strings::IdStrings;
pub use kernels::in_use as simd_kernels;
/// The read-only memory map type behind `Model::open` (re-exported from memmap2).
#[cfg(feature = "mmap")]
pub use memmap2::Mmap;
pub use model::{Model, SectionInfo};
pub use properties::Properties;
pub use row::{Row, RowIter};
pub use scan::{
    BITMAP_BYTE_WEIGHT, MAX_STACK_BLOCK_ROWS, QueryPlan, Retrieval, ScanStats,
    U16_LIST_BYTE_QUARTERS,
};
pub use score::MAX_STACK_DIM;
pub use table::Table;
pub use topk::Recommendation;
