//! The `.prec` v1 on-disk layout: the one definition of it in code.
//!
//! `docs/FORMAT.md` describes the same layout byte by byte; the reader ([`crate::Model`]) and the
//! writer ([`crate::builder`], used by the exporter) both go through the types here. Every
//! multi-byte integer is little-endian and is stored in a byte array ([`U16Le`], [`U32Le`],
//! [`U64Le`]), so every struct here has alignment 1: a header or section entry can be viewed in
//! place at any address, and no Rust layout rule decides a byte on disk.

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The eight bytes every `.prec` file starts with: `\x89PREC\r\n\x1a`.
///
/// Like PNG's signature, the high first byte and the CR LF / Ctrl-Z detect files mangled by
/// text-mode transfers.
pub const MAGIC: [u8; 8] = *b"\x89PREC\r\n\x1a";
/// The byte-order mark: written as a little-endian `u32`, so its bytes on disk are
/// `0D 0C 0B 0A`. A file whose mark reads `0A 0B 0C 0D` was written big-endian.
pub const BYTE_ORDER_MARK: u32 = 0x0A0B_0C0D;
/// The format major version this crate reads and writes. Readers reject any other major.
pub const FORMAT_MAJOR: u16 = 1;
/// The newest format minor version this crate writes. Minor versions only add (sections,
/// trailing metadata fields, header fields after byte 64, tables stored without row records);
/// a reader accepts any minor of its major, and refuses, with an error, a file that uses
/// something it does not know. The writer stamps a file with the oldest minor that holds
/// what it uses: [`FORMAT_MINOR_COLUMNS_ONLY`] only for a table without row records,
/// [`FORMAT_MINOR_BITMAP_LISTS`] only for a column layout with bitmap posting lists,
/// [`FORMAT_MINOR_SLICED_ROWS`] only for a table of sliced rows, [`FORMAT_MINOR_ID_INDEX`]
/// only for a table whose rows are not in id order, [`FORMAT_MINOR_INT4`] only for a table of
/// int4 values, [`FORMAT_MINOR_BITMAP_BLOCKS`] only for a table of bitmap rows in blocks.
pub const FORMAT_MINOR: u16 = 7;
/// The minor version of files with column layouts and every table stored as rows (1.1).
pub const FORMAT_MINOR_ROWS: u16 = 1;
/// The minor version of files with a table stored only as a column layout (1.2).
pub const FORMAT_MINOR_COLUMNS_ONLY: u16 = 2;
/// The minor version of files with a column layout whose posting lists name their rows by
/// bitmaps ([`SectionKind::ColumnBitmaps`], format 1.3). A 1.1 or 1.2 reader refuses such a
/// file (its column record names a section of a kind it does not know).
pub const FORMAT_MINOR_BITMAP_LISTS: u16 = 3;
/// The minor version of files with a table of sliced rows ([`IndexEncoding::Sliced`], format
/// 1.4). A 1.3 or older reader refuses such a file (its index encoding code is unknown there).
pub const FORMAT_MINOR_SLICED_ROWS: u16 = 4;
/// The minor version of files with a table whose rows are not in id order
/// ([`IdEncoding::U32Indexed`], [`IdEncoding::U64Indexed`] and their [`SectionKind::IdIndex`],
/// format 1.5): the item rows reordered so that [`SectionKind::BlockBounds`] are tight. A 1.4
/// or older reader refuses such a file (its id encoding code is unknown there).
pub const FORMAT_MINOR_ID_INDEX: u16 = 5;
/// The minor version of files with a table of int4 values ([`ValueEncoding::I4`], format
/// 1.6). A 1.5 or older reader refuses such a file (its value encoding code is unknown there).
pub const FORMAT_MINOR_INT4: u16 = 6;
/// The minor version of files with a table of bitmap rows in blocks
/// ([`IndexEncoding::BitmapBlocks`], format 1.7): one row offset per [`BITMAP_BLOCK_ROWS`]
/// rows. A 1.6 or older reader refuses such a file (its index encoding code is unknown there).
pub const FORMAT_MINOR_BITMAP_BLOCKS: u16 = 7;
/// Rows per block of a table of bitmap rows in blocks ([`IndexEncoding::BitmapBlocks`]): one
/// row offset and one `u16` mask of its non-empty rows per block.
pub const BITMAP_BLOCK_ROWS: usize = 16;
/// Rows per slice of a table of sliced rows ([`IndexEncoding::Sliced`]): one lane of a
/// 16-wide f32 vector per row.
pub const SLICE_ROWS: usize = 16;
/// Rows per window of a table of sliced rows: sixteen slices, among whose lanes the window's
/// rows are dealt longest first (each lane names the row it holds, as a byte).
pub const SLICE_WINDOW_ROWS: usize = 256;
/// In a [`TableRecord`]'s `offsets_section` and `data_section` (format 1.2): the table has
/// no row records; its rows are stored only in its column layout. A 1.1 reader refuses such a
/// file (the index names no section).
pub const NO_SECTION: u32 = u32::MAX;
/// The order of a column layout's posting lists in its sections (and of their offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListOrder {
    /// Block by block, dimensions in order within a block: list `(b, d)` is number
    /// `b * dim + d` (format 1.1, tables that also store row records).
    BlockMajor,
    /// Dimension by dimension, blocks in order within a dimension: list `(b, d)` is number
    /// `d * blocks + b`, so that a query reads each of its dimensions as one run (format 1.2,
    /// tables without row records).
    DimensionMajor,
}

impl ListOrder {
    /// The order of a table's column layout: block-major when the table also stores row
    /// records (as 1.1 readers expect), dimension-major when it does not.
    pub const fn of_table(rows_stored: bool) -> ListOrder {
        if rows_stored {
            ListOrder::BlockMajor
        } else {
            ListOrder::DimensionMajor
        }
    }

    /// The number of list `(block, dim)` in a layout of `blocks` blocks of `dims` dimensions.
    #[inline(always)]
    pub const fn list(self, block: usize, dim: usize, blocks: usize, dims: usize) -> usize {
        match self {
            ListOrder::BlockMajor => block * dims + dim,
            ListOrder::DimensionMajor => dim * blocks + block,
        }
    }
}

/// How a column layout's posting lists say which rows of their block they hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ListRows {
    /// One little-endian `u16` block-local row per entry, strictly increasing
    /// ([`SectionKind::ColumnItems`], format 1.1): `2 * entries` bytes. The default.
    #[default]
    U16,
    /// One bit per row of the block, set for the rows with an entry
    /// ([`SectionKind::ColumnBitmaps`], format 1.3): `block_rows / 8` bytes per list,
    /// whatever its length; the smaller of the two when more than one row in 16 of a block has
    /// an entry in a dimension on average. Slower to scan than `u16` rows at 10 % density (one
    /// set bit at a time, or a vector expand per 16 rows), about as fast at 20 % with AVX-512.
    Bitmap,
}

impl ListRows {
    /// The kind of the section that holds the rows of the lists.
    pub const fn section_kind(self) -> SectionKind {
        match self {
            ListRows::U16 => SectionKind::ColumnItems,
            ListRows::Bitmap => SectionKind::ColumnBitmaps,
        }
    }

    /// `u16` or `bitmap`.
    pub const fn name(self) -> &'static str {
        match self {
            ListRows::U16 => "u16",
            ListRows::Bitmap => "bitmap",
        }
    }

    /// The encoding named `u16` or `bitmap`.
    ///
    /// ```
    /// use pocketrec::ListRows;
    /// assert_eq!(ListRows::from_name("bitmap"), Some(ListRows::Bitmap));
    /// assert_eq!(ListRows::from_name(ListRows::U16.name()), Some(ListRows::U16));
    /// assert_eq!(ListRows::from_name("u8"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ListRows> {
        match name {
            "u16" => Some(ListRows::U16),
            "bitmap" => Some(ListRows::Bitmap),
            _ => None,
        }
    }
}

/// Most rows per column block of a table without row records (format 1.2), so that every
/// reader can scan it with a block accumulator of at most 16 KiB.
pub const MAX_COLUMNS_ONLY_BLOCK_ROWS: u32 = 4_096;
/// Size of the fixed header in format 1.0. Later minors may declare a larger `header_size`.
pub const HEADER_SIZE_V1: usize = 64;
/// Size of one section table entry.
pub const SECTION_ENTRY_SIZE: usize = 32;
/// The section alignment this crate writes. Readers accept any power of two in
/// [`MIN_SECTION_ALIGNMENT`]..=[`MAX_SECTION_ALIGNMENT`].
pub const SECTION_ALIGNMENT: u32 = 64;
/// Smallest section alignment a file may declare.
pub const MIN_SECTION_ALIGNMENT: u32 = 64;
/// Largest section alignment a file may declare (64 KiB covers every page size in use).
pub const MAX_SECTION_ALIGNMENT: u32 = 65_536;
/// Most sections a file may have (a bound on the work `Model::from_bytes` does).
pub const MAX_SECTIONS: u32 = 4_096;
/// Most table descriptors the metadata may hold.
pub const MAX_TABLES: usize = 8;
/// Largest embedding dimension a table may have (u16 column indices cover it).
pub const MAX_DIM: u32 = 65_536;
/// Byte offset of the header checksum field.
pub const HEADER_CRC_OFFSET: usize = 60;

/// A little-endian `u16` stored as bytes (alignment 1).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct U16Le(pub [u8; 2]);
/// A little-endian `u32` stored as bytes (alignment 1).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct U32Le(pub [u8; 4]);
/// A little-endian `u64` stored as bytes (alignment 1).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct U64Le(pub [u8; 8]);

macro_rules! le_int {
    ($name:ident, $int:ty) => {
        impl $name {
            /// Stores `value` little-endian.
            pub const fn new(value: $int) -> Self {
                Self(value.to_le_bytes())
            }
            /// The stored value.
            pub const fn get(self) -> $int {
                <$int>::from_le_bytes(self.0)
            }
        }
        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(&self.get(), f)
            }
        }
    };
}
le_int!(U16Le, u16);
le_int!(U32Le, u32);
le_int!(U64Le, u64);

/// A little-endian `f32` stored as bytes (alignment 1).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct F32Le(pub [u8; 4]);
le_int!(F32Le, f32);

/// The fixed 64-byte file header (format 1.0). See `docs/FORMAT.md` for each byte.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RawHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`BYTE_ORDER_MARK`], little-endian.
    pub byte_order_mark: U32Le,
    /// [`FORMAT_MAJOR`].
    pub major: U16Le,
    /// The minor version the writer used.
    pub minor: U16Le,
    /// Bytes in the header, at least [`HEADER_SIZE_V1`]; the section table follows it directly.
    pub header_size: U32Le,
    /// Entries in the section table.
    pub section_count: U32Le,
    /// Alignment of every section's offset: a power of two, 64..=65536.
    pub section_alignment: U32Le,
    /// CRC32C of the section table's bytes.
    pub section_table_crc: U32Le,
    /// Total file size in bytes; the last section ends exactly here.
    pub file_size: U64Le,
    /// Zero in 1.0; later minors may use them. Readers ignore them (the header checksum still
    /// covers them).
    pub reserved: [u8; 20],
    /// CRC32C of header bytes `[0, 60)` followed by `[64, header_size)`.
    pub header_crc: U32Le,
}
const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_SIZE_V1);
const _: () = assert!(core::mem::offset_of!(RawHeader, header_crc) == HEADER_CRC_OFFSET);

/// One 32-byte section table entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RawSection {
    /// What the section holds ([`SectionKind`]); unknown kinds are skipped by readers.
    pub kind: U32Le,
    /// Zero in 1.0; readers ignore them.
    pub flags: U32Le,
    /// Offset of the section from the start of the file; a multiple of the section alignment.
    pub offset: U64Le,
    /// Length of the section's data in bytes (padding after it not included).
    pub length: U64Le,
    /// CRC32C of the section's `length` data bytes.
    pub crc: U32Le,
    /// Zero in 1.0; readers ignore it.
    pub reserved: U32Le,
}
const _: () = assert!(core::mem::size_of::<RawSection>() == SECTION_ENTRY_SIZE);

/// The first bytes of a fold-in section ([`SectionKind::FoldIn`]); the Gramian follows: for
/// `a` in `0..dim` and `b` in `0..=a`, `G[a][b] = Σ_rows v[a]·v[b]` over the item rows as a
/// reader decodes them, as little-endian f32 at position `a·(a+1)/2 + b` (packed lower
/// triangle, row by row), [`fold_in_section_len`] bytes in all.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct FoldInHeader {
    /// Index of the item table in the metadata's tables.
    pub table: U32Le,
    /// The item table's dimension.
    pub dim: U32Le,
    /// `α₀ ≥ 0`, finite: the weight of every item as an unobserved (zero) target.
    pub unobserved_weight: F32Le,
    /// `λ > 0`, finite: the ridge added to the diagonal.
    pub regularization: F32Le,
}
const _: () = assert!(core::mem::size_of::<FoldInHeader>() == FOLD_IN_HEADER_SIZE);

/// The header of a softmax fold-in section ([`SectionKind::FoldInSoftmax`]): the objective a
/// model trained with a sampled-softmax loss on unit vectors folds users in by, and how many
/// clusters summarise the catalogue (see `docs/FORMAT.md`, *Softmax fold-in (kind 16)*). With
/// `clusters = 0` the section is this header alone; otherwise the summary follows it
/// ([`fold_in_softmax_section_len`]).
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct FoldInSoftmaxHeader {
    /// Index of the item table in the metadata's tables.
    pub table: U32Le,
    /// The item table's dimension.
    pub dim: U32Le,
    /// `τ > 0`, finite: the softmax temperature.
    pub temperature: F32Le,
    /// `P > 0`, finite: the weight of the log-partition term (BSL's power; 1 for a plain
    /// softmax).
    pub power: F32Le,
    /// `η > 0`, finite: the step of each ascent iteration.
    pub step: F32Le,
    /// Ascent iterations, 1 to [`MAX_FOLD_IN_SOFTMAX_ITERATIONS`].
    pub iterations: U32Le,
    /// `C`: the clusters of the catalogue summary, 1 to [`MAX_FOLD_IN_SOFTMAX_CLUSTERS`]; 0
    /// for none (each iteration then reads the whole item table).
    pub clusters: U32Le,
    /// Zero.
    pub reserved: U32Le,
}
const _: () = assert!(core::mem::size_of::<FoldInSoftmaxHeader>() == FOLD_IN_SOFTMAX_HEADER_SIZE);

/// Bytes of a softmax fold-in section's header ([`FoldInSoftmaxHeader`]).
pub const FOLD_IN_SOFTMAX_HEADER_SIZE: usize = 32;

/// Most iterations a softmax fold-in section may ask for.
pub const MAX_FOLD_IN_SOFTMAX_ITERATIONS: u32 = 64;

/// Most clusters a softmax fold-in section's catalogue summary may have.
pub const MAX_FOLD_IN_SOFTMAX_CLUSTERS: u32 = 4096;

/// The length of a softmax fold-in section with `clusters` clusters at dimension `dim`: the
/// header, then `C` f32 log-weights, `C` f32 spreads, `C·dim` f32 centroid values and the
/// `dim·(dim+1)/2` f32 of the packed within-cluster covariance (nothing after the header when
/// `C = 0`); `None` if it overflows.
pub const fn fold_in_softmax_section_len(dim: usize, clusters: usize) -> Option<usize> {
    if clusters == 0 {
        return Some(FOLD_IN_SOFTMAX_HEADER_SIZE);
    }
    let Some(per_cluster) = dim.checked_add(2) else {
        return None;
    };
    let Some(summary) = clusters.checked_mul(per_cluster) else {
        return None;
    };
    let Some(square) = dim.checked_mul(dim.saturating_add(1)) else {
        return None;
    };
    let Some(values) = summary.checked_add(square / 2) else {
        return None;
    };
    match values.checked_mul(4) {
        Some(bytes) => bytes.checked_add(FOLD_IN_SOFTMAX_HEADER_SIZE),
        None => None,
    }
}

/// The first bytes of an id-strings section ([`SectionKind::IdStrings`]): then `rows + 1`
/// little-endian `u32` offsets into the string bytes (the first 0, non-decreasing, the last
/// their length), then the UTF-8 strings one after another, row `r`'s between offsets `r` and
/// `r + 1`; [`string_id`] of row `r`'s string is its id.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct IdStringsHeader {
    /// Index of the table in the metadata's tables (its ids must be string hashes).
    pub table: U32Le,
    /// Zero.
    pub reserved: U32Le,
    /// The table's rows.
    pub rows: U64Le,
}
const _: () = assert!(core::mem::size_of::<IdStringsHeader>() == ID_STRINGS_HEADER_SIZE);

/// Bytes of [`IdStringsHeader`].
pub const ID_STRINGS_HEADER_SIZE: usize = 16;

/// The first bytes of an id-index section ([`SectionKind::IdIndex`], format 1.5): then `rows`
/// little-endian `u32` row numbers, the table's rows in increasing order of their ids (a
/// permutation of `0..rows`), so that an id is found by binary search through them.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct IdIndexHeader {
    /// Index of the table in the metadata's tables (its ids must be indexed).
    pub table: U32Le,
    /// Zero.
    pub reserved: U32Le,
    /// The table's rows.
    pub rows: U64Le,
}
const _: () = assert!(core::mem::size_of::<IdIndexHeader>() == ID_INDEX_HEADER_SIZE);

/// Bytes of [`IdIndexHeader`].
pub const ID_INDEX_HEADER_SIZE: usize = 16;

/// The first bytes of a block-bounds section ([`SectionKind::BlockBounds`]). For each block of
/// `block_rows` consecutive rows (the last may be shorter) and each dimension `j`, two int8
/// codes `lower ≤ upper` such that every row `r` of the block has
/// `lower · scale[j] ≤ x[r][j] ≤ upper · scale[j]` in exact arithmetic, where `x[r][j]` is the
/// value a scan multiplies by the user's `j`-th value: the decoded value (times the row's
/// int8 scale), divided by the row's stored norm when the model scores by cosine (0 for a row
/// of norm 0), and 0 where the row has no entry. After the header:
///
/// - `scale`: `dim` little-endian f32, finite and `≥ 0`;
/// - `bias_max` (when `flags` bit 0 is set): `blocks` little-endian f32, each at least every
///   item bias of its block;
/// - `upper`: `dim · blocks` int8 in `-127..=127`, dimension by dimension (`upper[j · blocks +
///   b]`);
/// - `lower`: the same for the lower codes.
///
/// A scan bounds a block's best score from the user's non-zero dimensions and skips it when
/// the bound, rounded outward, is below the k-th score found so far: exact top-k, less work.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockBoundsHeader {
    /// Index of the table in the metadata's tables.
    pub table: U32Le,
    /// The table's dimension.
    pub dim: U32Le,
    /// Rows per block: a power of two, 16..=4096; equal to the block of the table's column
    /// layout when it has one.
    pub block_rows: U32Le,
    /// `ceil(rows / block_rows)`.
    pub blocks: U32Le,
    /// Bit 0: `bias_max` is present (the table has biases). Other bits zero.
    pub flags: U32Le,
    /// Zero.
    pub reserved: U32Le,
}
const _: () = assert!(core::mem::size_of::<BlockBoundsHeader>() == BLOCK_BOUNDS_HEADER_SIZE);

/// Bytes of [`BlockBoundsHeader`].
pub const BLOCK_BOUNDS_HEADER_SIZE: usize = 24;

/// [`BlockBoundsHeader::flags`] bit: the section holds each block's largest item bias.
pub const BLOCK_BOUNDS_BIAS: u32 = 1;

/// The length of a block-bounds section: `None` on overflow.
pub const fn block_bounds_len(dim: usize, blocks: usize, bias: bool) -> Option<usize> {
    let codes = match dim.checked_mul(blocks) {
        Some(c) => c,
        None => return None,
    };
    let bias_bytes = if bias { blocks } else { 0 };
    match (dim.checked_add(bias_bytes), codes.checked_mul(2)) {
        (Some(floats), Some(codes)) => match floats.checked_mul(4) {
            Some(f) => match f.checked_add(codes) {
                Some(n) => n.checked_add(BLOCK_BOUNDS_HEADER_SIZE),
                None => None,
            },
            None => None,
        },
        _ => None,
    }
}

/// Bytes of [`FoldInHeader`].
pub const FOLD_IN_HEADER_SIZE: usize = 16;

/// Values of the packed lower triangle of a `dim × dim` symmetric matrix: `dim·(dim+1)/2`.
pub const fn packed_len(dim: usize) -> usize {
    dim * (dim + 1) / 2
}

/// The length of a fold-in section for dimension `dim`: the header and `dim·(dim+1)/2` f32;
/// `None` if it overflows.
pub const fn fold_in_section_len(dim: usize) -> Option<usize> {
    match (dim.checked_add(1), dim.checked_mul(dim.saturating_add(1))) {
        (Some(_), Some(square)) => match (square / 2).checked_mul(4) {
            Some(bytes) => bytes.checked_add(FOLD_IN_HEADER_SIZE),
            None => None,
        },
        _ => None,
    }
}

/// What a section holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SectionKind {
    /// The postcard-encoded [`MetadataRecord`]; exactly one per file.
    Metadata,
    /// A table's row offsets: `rows + 1` little-endian integers of the table's offset width.
    RowOffsets,
    /// A table's row records (indices or bitmap, then values).
    RowData,
    /// A table's external ids, one per row, strictly increasing.
    Ids,
    /// A table's per-row biases: `rows` little-endian `f32`.
    Bias,
    /// Column layout (1.1): offsets of the posting lists, one per (item block, dimension).
    ColumnOffsets,
    /// Column layout (1.1): the block-local item index (`u16`) of every posting entry.
    ColumnItems,
    /// Column layout (1.1): the value of every posting entry, in the table's value encoding.
    ColumnValues,
    /// Column layout (1.1): each row's Euclidean norm as stored (`rows` f32), for cosine.
    RowNorms,
    /// Column layout (1.1): each row's int8 scale (`rows` f16, 0 for empty rows).
    RowScales,
    /// Column layout (1.3), in place of [`SectionKind::ColumnItems`]: for each posting list,
    /// one bit per row of its block (`block_rows / 64` little-endian `u64`), set for the rows
    /// that have an entry, whose values follow one another in row order.
    ColumnBitmaps,
    /// What a fold-in needs (kind 12): the item table's Gramian `VᵀV` (packed lower triangle,
    /// f32) and the regularisation and unobserved weight chosen for the solve. At most one per
    /// file; readers that do not know it skip it. See [`FoldInHeader`].
    FoldIn,
    /// The original strings of a table's string ids (kind 13): see [`IdStringsHeader`]. At
    /// most one per table; readers that do not know it skip it.
    IdStrings,
    /// A table's id index (kind 14, format 1.5): see [`IdIndexHeader`]. Exactly one for each
    /// table whose ids are [`IdEncoding::U32Indexed`] or [`IdEncoding::U64Indexed`], none for
    /// the others.
    IdIndex,
    /// Bounds of a table's values per block of rows (kind 15): see [`BlockBoundsHeader`]. At
    /// most one per table; readers that do not know it skip it (it only lets a scan skip
    /// blocks that cannot hold a top-k item).
    BlockBounds,
    /// The softmax fold-in objective (kind 16): see [`FoldInSoftmaxHeader`]. At most one per
    /// file, and not beside a [`SectionKind::FoldIn`]; readers that do not know it skip it.
    FoldInSoftmax,
    /// A kind this reader does not know (written by a later minor version); skipped.
    Unknown(u32),
}

impl SectionKind {
    /// Whether sections of this kind belong to a table's column layout (offsets, items or
    /// bitmaps, values, row norms, row scales).
    pub const fn is_column_layout(self) -> bool {
        matches!(
            self,
            SectionKind::ColumnOffsets
                | SectionKind::ColumnItems
                | SectionKind::ColumnBitmaps
                | SectionKind::ColumnValues
                | SectionKind::RowNorms
                | SectionKind::RowScales
        )
    }

    /// The on-disk code of this kind.
    pub const fn code(self) -> u32 {
        match self {
            SectionKind::Metadata => 1,
            SectionKind::RowOffsets => 2,
            SectionKind::RowData => 3,
            SectionKind::Ids => 4,
            SectionKind::Bias => 5,
            SectionKind::ColumnOffsets => 6,
            SectionKind::ColumnItems => 7,
            SectionKind::ColumnValues => 8,
            SectionKind::RowNorms => 9,
            SectionKind::RowScales => 10,
            SectionKind::ColumnBitmaps => 11,
            SectionKind::FoldIn => 12,
            SectionKind::IdStrings => 13,
            SectionKind::IdIndex => 14,
            SectionKind::BlockBounds => 15,
            SectionKind::FoldInSoftmax => 16,
            SectionKind::Unknown(code) => code,
        }
    }

    /// The kind with on-disk code `code`.
    pub const fn from_code(code: u32) -> Self {
        match code {
            1 => SectionKind::Metadata,
            2 => SectionKind::RowOffsets,
            3 => SectionKind::RowData,
            4 => SectionKind::Ids,
            5 => SectionKind::Bias,
            6 => SectionKind::ColumnOffsets,
            7 => SectionKind::ColumnItems,
            8 => SectionKind::ColumnValues,
            9 => SectionKind::RowNorms,
            10 => SectionKind::RowScales,
            11 => SectionKind::ColumnBitmaps,
            12 => SectionKind::FoldIn,
            13 => SectionKind::IdStrings,
            14 => SectionKind::IdIndex,
            15 => SectionKind::BlockBounds,
            16 => SectionKind::FoldInSoftmax,
            other => SectionKind::Unknown(other),
        }
    }

    /// A short lowercase name, for reports.
    pub const fn name(self) -> &'static str {
        match self {
            SectionKind::Metadata => "metadata",
            SectionKind::RowOffsets => "row-offsets",
            SectionKind::RowData => "row-data",
            SectionKind::Ids => "ids",
            SectionKind::Bias => "bias",
            SectionKind::ColumnOffsets => "column-offsets",
            SectionKind::ColumnItems => "column-items",
            SectionKind::ColumnValues => "column-values",
            SectionKind::RowNorms => "row-norms",
            SectionKind::RowScales => "row-scales",
            SectionKind::ColumnBitmaps => "column-bitmaps",
            SectionKind::FoldIn => "fold-in",
            SectionKind::IdStrings => "id-strings",
            SectionKind::IdIndex => "id-index",
            SectionKind::BlockBounds => "block-bounds",
            SectionKind::FoldInSoftmax => "fold-in-softmax",
            SectionKind::Unknown(_) => "unknown",
        }
    }
}

/// Declares a `u8`-coded enum with its on-disk codes and names.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal { $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every variant, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The on-disk code.
            pub const fn code(self) -> u8 {
                match self { $( $name::$variant => $code ),+ }
            }

            /// The variant with on-disk code `code`.
            pub fn from_code(code: u8) -> Result<Self, Error> {
                match code {
                    $( $code => Ok($name::$variant), )+
                    _ => Err(Error::Unsupported { what: $what, code: code as u32 }),
                }
            }

            /// A short lowercase name, as the CLI spells it.
            pub const fn name(self) -> &'static str {
                match self { $( $name::$variant => $text ),+ }
            }

            /// The variant named `name` (as [`Self::name`] spells it).
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

coded_enum! {
    /// Which side of the recommender a table embeds.
    Role, "table role" {
        /// One row per user.
        User = 1 => "user",
        /// One row per item.
        Item = 2 => "item",
    }
}

coded_enum! {
    /// How a user and an item vector combine into a score (before biases).
    Scoring, "scoring" {
        /// Inner product.
        Dot = 0 => "dot",
        /// Cosine similarity (0 when either vector is all zeros).
        Cosine = 1 => "cosine",
    }
}

coded_enum! {
    /// How a table's non-zero values are stored.
    ValueEncoding, "value encoding" {
        /// IEEE 754 binary32, exact.
        F32 = 1 => "f32",
        /// IEEE 754 binary16, round to nearest even; relative error at most 2^-11.
        F16 = 2 => "f16",
        /// bfloat16 (the top half of an f32), round to nearest even; relative error at most 2^-8.
        Bf16 = 3 => "bf16",
        /// Symmetric int8 with one f16 scale per row: `v = scale * q`, `q` in -127..=127,
        /// `scale` = `max|v| / 127` rounded up to an f16; absolute error at most `scale / 2`.
        I8 = 4 => "i8",
        /// Int4 with one f16 scale per row (format 1.6): two values a byte, the first in the
        /// low nibble; a nibble is a two's-complement `q` in -8..=7 and the value is
        /// `scale * (2q + 1)`: sixteen odd levels `±1, ±3, ..., ±15` times the scale,
        /// symmetric, none of them 0. The unused high nibble after an odd count (of a row, or
        /// of a column-values section) is 0. The writer picks each row's scale of least
        /// squared error among `max|v| / 15 × (1 − 0.02 k)`, `k = 0..=20`, rounded up to an
        /// f16; a value within `15 × scale` is off by at most `scale`. See docs/FORMAT.md,
        /// *Row records*.
        I4 = 5 => "i4",
    }
}

coded_enum! {
    /// How a table records which columns of a row are non-zero.
    IndexEncoding, "index encoding" {
        /// One `u8` column index per non-zero (dim <= 256).
        U8List = 1 => "u8-list",
        /// One little-endian `u16` column index per non-zero (dim <= 65536).
        U16List = 2 => "u16-list",
        /// `ceil(dim / 8)` bytes per non-empty row; bit `j % 8` of byte `j / 8` set when column
        /// `j` is non-zero.
        Bitmap = 3 => "bitmap",
        /// Sliced rows (format 1.4, dim <= 256, at most 255 non-zeros a row): the rows in
        /// slices of [`SLICE_ROWS`] lanes, dealt longest first within windows of
        /// [`SLICE_WINDOW_ROWS`]; a slice's record holds its lanes' lengths and rows, then the
        /// `t`-th entry of every lane that has one for `t = 0, 1, ...`, as `u8` columns then
        /// values, so that a 16-lane vector walks the slice one entry of every row at a time.
        /// The row offsets are one per slice (`slices + 1`); see docs/FORMAT.md, *Sliced
        /// rows*.
        Sliced = 4 => "sliced",
        /// Bitmap rows in blocks (format 1.7): the row records of [`IndexEncoding::Bitmap`],
        /// but the row offsets are one per block of [`BITMAP_BLOCK_ROWS`] rows (`blocks + 1`),
        /// followed in the same section by one little-endian `u16` per block whose bit `i` is
        /// set when the block's row `i` has a record. A record's length follows from its bitmap
        /// (`ceil(dim / 8)`, the scale, then one value per set bit), so a reader walks at most
        /// a block's sixteen records to find a row: 4 bytes of offsets a row become 3 bits.
        /// See docs/FORMAT.md, *Bitmap rows in blocks*.
        BitmapBlocks = 5 => "bitmap-blocks",
    }
}

coded_enum! {
    /// How a table stores its rows' external ids.
    IdEncoding, "id encoding" {
        /// No id section: a row's id is its row number.
        RowNumber = 0 => "row-number",
        /// One little-endian `u32` per row.
        U32 = 1 => "u32",
        /// One little-endian `u64` per row.
        U64 = 2 => "u64",
        /// One little-endian `u32` per row, in row order but not sorted (format 1.5): the
        /// table's [`SectionKind::IdIndex`] section lists its rows in increasing id order.
        U32Indexed = 3 => "u32-indexed",
        /// One little-endian `u64` per row, not sorted, with an id index (format 1.5).
        U64Indexed = 4 => "u64-indexed",
    }
}

coded_enum! {
    /// Where a table's ids came from.
    IdKind, "id kind" {
        /// Integer ids (or row numbers): the id is the integer.
        Integer = 0 => "integer",
        /// String ids, stored as [`string_id`] hashes.
        StringHash = 1 => "string-hash",
    }
}

coded_enum! {
    /// Width of a table's row offsets.
    OffsetWidth, "offset width" {
        /// Little-endian `u32` (row data up to 4 GiB).
        U32 = 4 => "u32",
        /// Little-endian `u64`.
        U64 = 8 => "u64",
    }
}

impl ValueEncoding {
    /// Bytes per stored value for the encodings that store whole bytes per value, `None` for
    /// int4, which packs two values per byte (use [`Self::value_bytes`] for byte counts).
    pub const fn byte_width(self) -> Option<usize> {
        match self {
            ValueEncoding::F32 => Some(4),
            ValueEncoding::F16 | ValueEncoding::Bf16 => Some(2),
            ValueEncoding::I8 => Some(1),
            ValueEncoding::I4 => None,
        }
    }

    /// Bytes that `n` values take: `n × width`, or `ceil(n / 2)` for int4 (two per byte, a
    /// zero high nibble after an odd count). `None` if that overflows a `usize`.
    pub const fn value_bytes(self, n: usize) -> Option<usize> {
        match self.byte_width() {
            Some(width) => n.checked_mul(width),
            None => Some(n / 2 + n % 2),
        }
    }

    /// The number of values held by `bytes` bytes of values when their count is unknown but
    /// must fill them exactly (a column-values section): `bytes / width`, or for int4
    /// `2 × bytes` (the last high nibble may be padding: see [`Self::entries_fit`]).
    pub const fn values_in(self, bytes: usize) -> usize {
        match self.byte_width() {
            Some(width) => bytes / width,
            None => bytes.saturating_mul(2),
        }
    }

    /// Whether `n` values take exactly `bytes` bytes ([`Self::value_bytes`]).
    pub const fn entries_fit(self, n: usize, bytes: usize) -> bool {
        match self.value_bytes(n) {
            Some(b) => b == bytes,
            None => false,
        }
    }

    /// The number of entries `n` of a row record whose body (the record without the
    /// [`Self::row_prefix`]) is `body` bytes of `n` columns of `index_width` bytes followed by
    /// `n` values: `None` when no `n` fills the body exactly.
    pub const fn entries_in(self, body: usize, index_width: usize) -> Option<usize> {
        let n = match self.byte_width() {
            Some(width) => body / (index_width + width),
            // n × index_width + ceil(n / 2) = body: n is 2 × body / (2 × index_width + 1),
            // rounded down, when any n is (checked below).
            None => match body.checked_mul(2) {
                Some(twice) => twice / (2 * index_width + 1),
                None => return None,
            },
        };
        match (n.checked_mul(index_width), self.value_bytes(n)) {
            (Some(columns), Some(values)) if columns + values == body => Some(n),
            _ => None,
        }
    }

    /// Bytes each non-empty row stores before its values (the int8 or int4 scale).
    pub const fn row_prefix(self) -> usize {
        match self {
            ValueEncoding::I8 | ValueEncoding::I4 => 2,
            _ => 0,
        }
    }

    /// Whether values are integer codes times a per-row f16 scale (int8, int4).
    pub const fn is_scaled(self) -> bool {
        self.row_prefix() > 0
    }
}

impl IndexEncoding {
    /// Bytes of index data a non-empty row with `nnz` non-zeros takes in a table of width `dim`.
    pub const fn row_bytes(self, nnz: usize, dim: usize) -> usize {
        match self {
            IndexEncoding::U8List | IndexEncoding::Sliced => nnz,
            IndexEncoding::U16List => nnz * 2,
            IndexEncoding::Bitmap | IndexEncoding::BitmapBlocks => dim.div_ceil(8),
        }
    }

    /// Whether rows are bitmap records ([`IndexEncoding::Bitmap`] or
    /// [`IndexEncoding::BitmapBlocks`]).
    pub const fn is_bitmap(self) -> bool {
        matches!(self, IndexEncoding::Bitmap | IndexEncoding::BitmapBlocks)
    }
}

impl OffsetWidth {
    /// Bytes per offset.
    pub const fn bytes(self) -> usize {
        self.code() as usize
    }
}

impl IdEncoding {
    /// Bytes per id in the ids section (0 for row numbers).
    pub const fn width(self) -> usize {
        match self {
            IdEncoding::RowNumber => 0,
            IdEncoding::U32 | IdEncoding::U32Indexed => 4,
            IdEncoding::U64 | IdEncoding::U64Indexed => 8,
        }
    }

    /// Whether the ids are in row order rather than sorted, found through an id index.
    pub const fn is_indexed(self) -> bool {
        matches!(self, IdEncoding::U32Indexed | IdEncoding::U64Indexed)
    }
}

/// The metadata section: one postcard-encoded record. Minor versions may append fields at its
/// end; readers ignore bytes after the fields they know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetadataRecord<'a> {
    /// [`Scoring`] code.
    pub scoring: u8,
    /// Added to every score.
    pub global_bias: f32,
    /// The tables, at most [`MAX_TABLES`]; at most one per known role.
    #[serde(borrow)]
    pub tables: heapless::Vec<TableRecord<'a>, MAX_TABLES>,
    /// Free-form string properties (provenance): a postcard sequence of `(key, value)` string
    /// pairs, kept as bytes so readers need no allocation to hold them.
    pub properties: &'a [u8],
}

/// One table's descriptor in the metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableRecord<'a> {
    /// The table's name (e.g. `user_embedding`).
    pub name: &'a str,
    /// [`Role`] code. Readers skip tables with a role they do not know.
    pub role: u8,
    /// Number of rows.
    pub rows: u64,
    /// Embedding dimension, 1..=[`MAX_DIM`].
    pub dim: u32,
    /// Number of stored non-zero values.
    pub nnz: u64,
    /// [`ValueEncoding`] code.
    pub value_encoding: u8,
    /// [`IndexEncoding`] code.
    pub index_encoding: u8,
    /// [`OffsetWidth`] code (4 or 8).
    pub offset_width: u8,
    /// [`IdEncoding`] code.
    pub id_encoding: u8,
    /// [`IdKind`] code.
    pub id_kind: u8,
    /// Index of the [`SectionKind::RowOffsets`] section in the section table, or
    /// [`NO_SECTION`] for a table stored only as a column layout (format 1.2).
    pub offsets_section: u32,
    /// Index of the [`SectionKind::RowData`] section, or [`NO_SECTION`] (with
    /// `offsets_section`).
    pub data_section: u32,
    /// Index of the [`SectionKind::Ids`] section (absent for row-number ids).
    pub ids_section: Option<u32>,
    /// Index of the [`SectionKind::Bias`] section, if the table has per-row biases.
    pub bias_section: Option<u32>,
}

/// Additions to the metadata in format 1.1, encoded with postcard right after the
/// [`MetadataRecord`] in the same section. Absent in 1.0 files (the section ends after the
/// record); a 1.0 reader ignores it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataExtension {
    /// Column layouts of tables, at most one per table.
    pub columns: heapless::Vec<ColumnRecord, MAX_TABLES>,
}

/// A table's column layout (format 1.1): for each block of `block_rows` consecutive rows and
/// each dimension, the rows of the block that are non-zero in that dimension (a posting list)
/// and their values. Lets a query touch only the dimensions where the user is non-zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnRecord {
    /// Index of the table in [`MetadataRecord::tables`].
    pub table: u32,
    /// Rows per block: a power of two, 64..=65536 (block-local row indices are `u16`).
    pub block_rows: u32,
    /// Number of posting entries (equals the table's `nnz`).
    pub entries: u64,
    /// [`OffsetWidth`] code of the column offsets.
    pub offset_width: u8,
    /// [`SectionKind::ColumnOffsets`] section: `blocks * dim + 1` offsets (in entries); list
    /// `(block, dim)` is entries `[offset[block * dim + d], offset[block * dim + d + 1])`.
    pub offsets_section: u32,
    /// [`SectionKind::ColumnItems`] section: `entries` little-endian `u16` block-local rows,
    /// strictly increasing within each list; or (format 1.3) a [`SectionKind::ColumnBitmaps`]
    /// section: `blocks * dim` bitmaps of `block_rows` bits, one per list, in list order.
    pub items_section: u32,
    /// [`SectionKind::ColumnValues`] section: `entries` values (f32, f16, bf16 as in the row
    /// records; int8 codes, to be multiplied by the row's scale).
    pub values_section: u32,
    /// [`SectionKind::RowNorms`] section, present when the model scores by cosine.
    pub norms_section: Option<u32>,
    /// [`SectionKind::RowScales`] section, present for int8 tables.
    pub scales_section: Option<u32>,
}

/// CRC32C (Castagnoli, the iSCSI polynomial `0x1EDC6F41`, reflected, init and xor-out
/// `0xFFFFFFFF`): `crc32c(b"123456789") == 0xE3069283`.
#[cfg(feature = "std")]
const CASTAGNOLI: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);
#[cfg(not(feature = "std"))]
const CASTAGNOLI: crc::Crc<u32, crc::Table<1>> =
    crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISCSI);

/// CRC32C of `bytes`, the checksum used everywhere in the format.
///
/// ```
/// assert_eq!(pocketrec::format::crc32c(b"123456789"), 0xE306_9283);
/// ```
pub fn crc32c(bytes: &[u8]) -> u32 {
    CASTAGNOLI.checksum(bytes)
}

/// CRC32C of the header: bytes `[0, 60)` then `[64, header_size)`, i.e. everything but the
/// checksum field itself. `header` must hold the whole header (`header_size` bytes).
pub fn header_crc(header: &[u8]) -> u32 {
    let mut digest = CASTAGNOLI.digest();
    digest.update(header.get(..HEADER_CRC_OFFSET).unwrap_or(header));
    digest.update(header.get(HEADER_SIZE_V1..).unwrap_or(&[]));
    digest.finalize()
}

/// The stable 64-bit id of a string id: FNV-1a 64 of its UTF-8 bytes.
///
/// FNV-1a 64 starts from `0xcbf29ce484222325` and, for each byte, xors it in and multiplies by
/// `0x100000001b3` (mod 2^64). It is short enough to re-implement in any language; the
/// exporter rejects files in which two different strings get the same id.
///
/// ```
/// assert_eq!(pocketrec::string_id(""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(pocketrec::string_id("a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub const fn string_id(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Rounds `value` up to a multiple of `align` (a power of two); `None` on overflow.
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Recomputes every checksum of a (possibly damaged) file in place: each section's whose
/// bytes lie in the buffer, the section table's and the header's.
///
/// For tests and fuzzing only: it lets a deliberately edited file get past the checksums, so
/// that the structural checks behind them are exercised. Never panics, whatever `bytes` holds.
#[doc(hidden)]
pub fn reseal(bytes: &mut [u8]) {
    let Some(header) = bytes.get(..HEADER_SIZE_V1) else {
        return;
    };
    let Ok(raw) = bytemuck::try_from_bytes::<RawHeader>(header) else {
        return;
    };
    let header_size = raw.header_size.get() as usize;
    let count = raw.section_count.get().min(MAX_SECTIONS) as usize;
    let table_start = header_size;
    let table_end = table_start.saturating_add(count * SECTION_ENTRY_SIZE);
    if table_end > bytes.len() || header_size < HEADER_SIZE_V1 {
        return;
    }
    for i in 0..count {
        let at = table_start + i * SECTION_ENTRY_SIZE;
        let entry: RawSection = bytemuck::pod_read_unaligned(&bytes[at..at + SECTION_ENTRY_SIZE]);
        let (offset, length) = (entry.offset.get(), entry.length.get());
        let Some(end) = offset.checked_add(length) else {
            continue;
        };
        if end <= bytes.len() as u64 {
            let crc = crc32c(&bytes[offset as usize..end as usize]);
            bytes[at + 24..at + 28].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let table_crc = crc32c(&bytes[table_start..table_end]);
    bytes[28..32].copy_from_slice(&table_crc.to_le_bytes());
    let crc = header_crc(&bytes[..header_size]);
    bytes[HEADER_CRC_OFFSET..HEADER_SIZE_V1].copy_from_slice(&crc.to_le_bytes());
}
