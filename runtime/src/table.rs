//! A view of one table: its rows, external ids and biases.

use crate::bitmap_blocks::BitmapBlocks;
use crate::bounds::BlockBounds;
use crate::columns::ColumnView;
use crate::error::{Error, Result};
use crate::format::{IdEncoding, IdKind, IndexEncoding, OffsetWidth, Role, ValueEncoding};
use crate::layout::TableLayout;
use crate::le;
use crate::row::Row;
use crate::sliced::SlicedRows;

/// One embedding table of a model (the users' or the items'), borrowed from the model's bytes.
///
/// Cheap to create and to copy. Every accessor checks what it reads and returns an error,
/// never panics, on corrupt data.
///
/// ```
/// # fn main() -> Result<(), pocketrec::Error> {
/// # let bytes = pocketrec::builder::tiny_example_model()?;
/// let model = pocketrec::Model::from_bytes(&bytes)?;
/// let items = model.items()?;
/// assert_eq!(items.dim(), 4);
/// let row = items.find(2)?;               // external id -> row number
/// assert_eq!(items.id(row)?, 2);           // row number -> external id
/// let vector = items.row(row)?;
/// assert!(vector.nnz() <= 4);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    layout: &'a TableLayout,
    name: &'a str,
    offsets: &'a [u8],
    data: &'a [u8],
    ids: &'a [u8],
    /// The id index (format 1.5), empty when the ids are sorted.
    id_index: &'a [u8],
    bias: Option<&'a [u8]>,
    columns: Option<ColumnView<'a>>,
    bounds: Option<BlockBounds<'a>>,
}

impl<'a> Table<'a> {
    /// A view of the table described by `layout` in `bytes` (checked at open).
    pub(crate) fn new(bytes: &'a [u8], layout: &'a TableLayout) -> Result<Self> {
        let name = core::str::from_utf8(layout.name.slice(bytes)?)
            .map_err(|_| Error::InvalidMetadata("table name is not UTF-8"))?;
        Ok(Table {
            layout,
            name,
            offsets: layout.offsets.slice(bytes)?,
            data: layout.data.slice(bytes)?,
            ids: match layout.ids {
                Some(span) => span.slice(bytes)?,
                None => &[],
            },
            id_index: match layout.id_index {
                Some(span) => span.slice(bytes)?,
                None => &[],
            },
            bias: match layout.bias {
                Some(span) => Some(span.slice(bytes)?),
                None => None,
            },
            bounds: match &layout.bounds {
                Some(spans) => Some(BlockBounds::new(bytes, spans, layout.dim)?),
                None => None,
            },
            columns: match &layout.columns {
                Some(spans) => Some(ColumnView::new(
                    bytes,
                    spans,
                    layout.role,
                    layout.rows,
                    layout.dim,
                    layout.values,
                )?),
                None => None,
            },
        })
    }

    /// The table's column layout, if it was written with one.
    pub(crate) fn columns(&self) -> Option<ColumnView<'a>> {
        self.columns
    }

    /// The table's block bounds, if the file has them.
    #[cfg(feature = "block-bounds")]
    pub(crate) fn bounds(&self) -> Option<BlockBounds<'a>> {
        self.bounds
    }

    /// The table's block bounds: always `None` without the `block-bounds` feature (such files
    /// are refused at open, and every use of bounds is then dead code the linker leaves out).
    #[cfg(not(feature = "block-bounds"))]
    #[inline(always)]
    pub(crate) fn bounds(&self) -> Option<BlockBounds<'a>> {
        None
    }

    /// True when the file holds block bounds for this table ([`crate::SectionKind::BlockBounds`]):
    /// scans skip the blocks of rows that cannot hold a top-k item.
    pub fn has_block_bounds(&self) -> bool {
        self.bounds.is_some()
    }

    /// Bytes of the table's id-index section (0 when its ids are sorted).
    pub fn id_index_bytes(&self) -> usize {
        if self.id_index.is_empty() {
            0
        } else {
            self.id_index.len() + crate::format::ID_INDEX_HEADER_SIZE
        }
    }

    /// Bytes of the table's block-bounds section (0 without one).
    pub fn block_bounds_bytes(&self) -> usize {
        self.bounds.map_or(0, |b| b.section_bytes())
    }

    /// Rows per block of the table's block bounds, if it has them.
    pub fn block_bounds_rows(&self) -> Option<usize> {
        self.bounds.map(|b| b.block_rows)
    }

    /// Row `k` of the id index: the row with the `k`-th smallest id.
    #[inline]
    fn index_row(&self, k: usize) -> Option<usize> {
        le::u32_at(self.id_index, k)
            .map(|r| r as usize)
            .filter(|&r| r < self.layout.rows)
    }

    /// True when the table has a column layout (format 1.1).
    pub fn has_columns(&self) -> bool {
        self.columns.is_some()
    }

    /// True when the table stores its rows as row data (row records, or sliced rows); false
    /// for a table stored only as a column layout (format 1.2, `--layout columns`), whose rows
    /// [`Self::row`] cannot return (use [`Self::decode_row`]).
    pub fn has_rows(&self) -> bool {
        self.layout.rows_stored
    }

    /// True when the table stores its rows sliced (format 1.4, [`IndexEncoding::Sliced`]):
    /// the row scan walks sixteen rows at a time; a row has no record of its own, so
    /// [`Self::row`] cannot return it (use [`Self::decode_row`]).
    pub fn has_sliced_rows(&self) -> bool {
        self.layout.index == IndexEncoding::Sliced
    }

    /// The table's sliced rows, if it stores them so (always `None` without the
    /// `sliced-rows` feature: such tables are refused at open, and every use of sliced rows is
    /// then dead code the linker leaves out).
    #[cfg(not(feature = "sliced-rows"))]
    #[inline(always)]
    pub(crate) fn sliced(&self) -> Option<SlicedRows<'a>> {
        None
    }

    /// The table's sliced rows, if it stores them so.
    #[cfg(feature = "sliced-rows")]
    pub(crate) fn sliced(&self) -> Option<SlicedRows<'a>> {
        self.has_sliced_rows().then_some(SlicedRows {
            offsets: self.offsets,
            width: self.layout.offset_width,
            data: self.data,
            rows: self.layout.rows,
            dim: self.layout.dim,
            encoding: self.layout.values,
            role: self.layout.role,
        })
    }

    /// Whether the table stores bitmap rows in blocks (format 1.7,
    /// [`IndexEncoding::BitmapBlocks`]): one row offset per 16 rows.
    pub fn has_bitmap_blocks(&self) -> bool {
        self.layout.index == IndexEncoding::BitmapBlocks && self.layout.rows_stored
    }

    /// The table's bitmap rows in blocks, if it stores them so.
    pub(crate) fn bitmap_blocks(&self) -> Option<BitmapBlocks<'a>> {
        if !self.has_bitmap_blocks() {
            return None;
        }
        BitmapBlocks::new(
            self.offsets,
            self.layout.offset_width,
            self.data,
            self.layout.rows,
            self.layout.dim,
            self.layout.values,
        )
    }

    /// How the column layout's posting lists name their rows (`None` without one).
    pub fn column_list_rows(&self) -> Option<crate::format::ListRows> {
        self.columns.map(|c| c.list_rows)
    }

    /// Bytes of the column layout's sections: offsets, rows (u16 items or bitmaps), values,
    /// norms, scales (all 0 without one).
    pub fn column_bytes(&self) -> [usize; 5] {
        self.columns.map_or([0; 5], |c| c.section_bytes())
    }

    /// The table's name, as the exporter recorded it (e.g. `item_embedding`).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Whether it embeds users or items.
    pub fn role(&self) -> Role {
        self.layout.role
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.layout.rows
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.layout.dim
    }

    /// Number of stored non-zero values, as recorded in the metadata (checked by `verify`).
    pub fn nnz(&self) -> u64 {
        self.layout.nnz
    }

    /// How values are stored.
    pub fn value_encoding(&self) -> ValueEncoding {
        self.layout.values
    }

    /// How column indices are stored.
    pub fn index_encoding(&self) -> IndexEncoding {
        self.layout.index
    }

    /// Width of the row offsets.
    pub fn offset_width(&self) -> OffsetWidth {
        self.layout.offset_width
    }

    /// How external ids are stored.
    pub fn id_encoding(&self) -> IdEncoding {
        self.layout.id_encoding
    }

    /// Whether ids are integers or hashes of strings ([`crate::string_id`]).
    pub fn id_kind(&self) -> IdKind {
        self.layout.id_kind
    }

    /// True when the table has per-row biases.
    pub fn has_bias(&self) -> bool {
        self.bias.is_some()
    }

    /// Bytes of the row-offsets section.
    pub fn offsets_bytes(&self) -> usize {
        self.offsets.len()
    }

    /// Bytes of the row-data section.
    pub fn data_bytes(&self) -> usize {
        self.data.len()
    }

    /// Bytes of the ids section (0 when ids are row numbers).
    pub fn ids_bytes(&self) -> usize {
        self.ids.len()
    }

    /// Bytes of the bias section (0 without biases).
    pub fn bias_bytes(&self) -> usize {
        self.bias.map_or(0, <[u8]>::len)
    }

    fn corrupt(&self, row: usize, reason: &'static str) -> Error {
        Error::CorruptRow {
            role: self.layout.role,
            row: row as u64,
            reason,
        }
    }

    fn check_row(&self, row: usize) -> Result<()> {
        if row < self.layout.rows {
            Ok(())
        } else {
            Err(Error::RowOutOfRange {
                role: self.layout.role,
                row: row as u64,
                rows: self.layout.rows as u64,
            })
        }
    }

    /// The byte range of row `row`'s record in the row data.
    #[inline]
    pub(crate) fn record_range(&self, row: usize) -> Result<(usize, usize)> {
        self.check_row(row)?;
        if !self.layout.rows_stored || self.has_sliced_rows() {
            return Err(Error::RowsNotStored {
                role: self.layout.role,
            });
        }
        if self.has_bitmap_blocks() {
            return self
                .bitmap_blocks()
                .ok_or("row offsets section is shorter than its blocks")
                .and_then(|blocks| blocks.record_range(row))
                .map_err(|reason| self.corrupt(row, reason));
        }
        let width = self.layout.offset_width;
        let start = le::offset(self.offsets, width, row);
        let end = le::offset(self.offsets, width, row + 1);
        match (start, end) {
            (Some(start), Some(end)) if start <= end && end <= self.data.len() as u64 => {
                Ok((start as usize, end as usize))
            }
            _ => Err(self.corrupt(row, "row offsets are out of order or past the row data")),
        }
    }

    /// Writes row number `row` as a dense vector into `out` (`out.len()` must be the
    /// dimension), from its record, or from the column layout in a table without row records
    /// (one binary search per dimension).
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// let items = model.items()?;
    /// let mut dense = [0.0f32; 4];
    /// items.decode_row(items.find(1)?, &mut dense)?;
    /// assert_eq!(dense, [0.0, 2.0, 0.0, 0.0]);
    /// # Ok(()) }
    /// ```
    pub fn decode_row(&self, row: usize, out: &mut [f32]) -> Result<()> {
        if let Some(sliced) = self.sliced() {
            self.check_row(row)?;
            return sliced.decode_row(row, out);
        }
        match self.columns {
            Some(columns) if !self.layout.rows_stored => {
                self.check_row(row)?;
                columns.decode_row(row, out)
            }
            _ => self.row(row)?.decode_into(out),
        }
    }

    /// The number of all-zero rows: counted from the row offsets, or from the posting lists
    /// in a table without row records (one pass over its column items, nothing allocated).
    pub fn empty_rows(&self) -> Result<u64> {
        if let Some(sliced) = self.sliced() {
            return sliced.empty_rows();
        }
        let Some(columns) = self.columns.filter(|_| !self.layout.rows_stored) else {
            let mut empty = 0u64;
            for row in 0..self.layout.rows {
                let (start, end) = self.record_range(row)?;
                empty += u64::from(start == end);
            }
            return Ok(empty);
        };
        let mut empty = 0u64;
        let mut seen = [0u64; crate::scan::MAX_STACK_BLOCK_ROWS / 64];
        for block in 0..columns.blocks {
            let rows = columns.rows_in_block(block);
            seen.fill(0);
            for dim in 0..columns.dim {
                columns.for_each_entry(block, dim, |local, _| {
                    match seen.get_mut(local / 64) {
                        Some(word) if local < rows => *word |= 1 << (local % 64),
                        _ => {
                            return Err(Error::CorruptTable {
                                role: self.layout.role,
                                reason: "column blocks are larger than a reader scans",
                            });
                        }
                    }
                    Ok(())
                })?;
            }
            let nonzero: u32 = seen.iter().map(|w| w.count_ones()).sum();
            empty += (rows - nonzero as usize) as u64;
        }
        Ok(empty)
    }

    /// Row number `row` (0-based), checked. A table without row records has none to return
    /// ([`Error::RowsNotStored`]; see [`Self::decode_row`]).
    #[inline]
    pub fn row(&self, row: usize) -> Result<Row<'a>> {
        let (start, end) = self.record_range(row)?;
        Row::parse_in(
            self.data,
            start,
            end,
            self.layout.dim,
            self.layout.index,
            self.layout.values,
        )
        .map_err(|reason| self.corrupt(row, reason))
    }

    /// The row with external id `id`.
    pub fn row_by_id(&self, id: u64) -> Result<Row<'a>> {
        self.row(self.find(id)?)
    }

    /// The row number of external id `id`: binary search over the sorted ids (through the id
    /// index when the rows are not in id order), no allocation.
    pub fn find(&self, id: u64) -> Result<usize> {
        let rows = self.layout.rows;
        let found = match self.layout.id_encoding {
            IdEncoding::RowNumber => usize::try_from(id).ok().filter(|&r| r < rows),
            IdEncoding::U32 => u32::try_from(id)
                .ok()
                .and_then(|id| binary_search(rows, |i| le::u32_at(self.ids, i), id)),
            IdEncoding::U64 => binary_search(rows, |i| le::u64_at(self.ids, i), id),
            IdEncoding::U32Indexed => u32::try_from(id).ok().and_then(|id| {
                let at = |k| self.index_row(k).and_then(|r| le::u32_at(self.ids, r));
                binary_search(rows, at, id).and_then(|k| self.index_row(k))
            }),
            IdEncoding::U64Indexed => {
                let at = |k| self.index_row(k).and_then(|r| le::u64_at(self.ids, r));
                binary_search(rows, at, id).and_then(|k| self.index_row(k))
            }
        };
        found.ok_or(Error::IdNotFound {
            role: self.layout.role,
            id,
        })
    }

    /// The external id of row `row`.
    #[inline]
    pub fn id(&self, row: usize) -> Result<u64> {
        self.check_row(row)?;
        let id = match self.layout.id_encoding {
            IdEncoding::RowNumber => Some(row as u64),
            IdEncoding::U32 | IdEncoding::U32Indexed => le::u32_at(self.ids, row).map(u64::from),
            IdEncoding::U64 | IdEncoding::U64Indexed => le::u64_at(self.ids, row),
        };
        id.ok_or_else(|| self.corrupt(row, "id is past the ids section"))
    }

    /// The bias of row `row` (0 when the table has no biases).
    #[inline]
    pub fn bias(&self, row: usize) -> Result<f32> {
        self.check_row(row)?;
        match self.bias {
            None => Ok(0.0),
            Some(bias) => {
                le::f32_at(bias, row).ok_or_else(|| self.corrupt(row, "bias is past its section"))
            }
        }
    }

    /// The raw row-offsets and row-data sections, for the row-scan kernels.
    pub(crate) fn raw_rows(&self) -> (&'a [u8], &'a [u8]) {
        (self.offsets, self.data)
    }

    /// The raw ids section and its width, for `verify`.
    pub(crate) fn raw_ids(&self) -> &'a [u8] {
        self.ids
    }

    /// The raw id index (empty when the ids are sorted), for `verify`.
    pub(crate) fn raw_id_index(&self) -> &'a [u8] {
        self.id_index
    }

    /// The raw bias section, for `verify`.
    pub(crate) fn raw_bias(&self) -> Option<&'a [u8]> {
        self.bias
    }
}

/// Finds `target` in a sorted sequence of `len` values read by `get`.
fn binary_search<T: Ord + Copy>(
    len: usize,
    get: impl Fn(usize) -> Option<T>,
    target: T,
) -> Option<usize> {
    let (mut lo, mut hi) = (0usize, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let value = get(mid)?;
        match value.cmp(&target) {
            core::cmp::Ordering::Less => lo = mid + 1,
            core::cmp::Ordering::Greater => hi = mid,
            core::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}
