//! The column layout (format 1.1): posting lists per (row block, dimension).

use alloc::vec::Vec;

use half::f16;

use crate::format::{ListOrder, ListRows, OffsetWidth};

/// Rows per block of the column layout this writer uses: block-local rows fit a `u16`, and a
/// block's score accumulator (`4 * COLUMN_BLOCK_ROWS` bytes) stays in the L1 cache.
pub const COLUMN_BLOCK_ROWS: u32 = 4096;

/// A table's column-layout sections.
pub(crate) struct EncodedColumns {
    pub block_rows: u32,
    /// How `items` names the rows of each list.
    pub list_rows: ListRows,
    pub entries: u64,
    pub offset_width: OffsetWidth,
    pub offsets: Vec<u8>,
    pub items: Vec<u8>,
    pub values: Vec<u8>,
    pub norms: Option<Vec<u8>>,
    pub scales: Option<Vec<u8>>,
}

/// The rows of a table after quantization, in file order.
pub(crate) struct RowEntries<'a> {
    /// Row `r` holds entries `bounds[r]..bounds[r + 1]`.
    pub bounds: &'a [usize],
    /// Column of each entry.
    pub columns: &'a [u32],
    /// Encoded value of each entry, `width` bytes each.
    pub values: &'a [u8],
    /// Bytes per value.
    pub width: usize,
}

/// Builds the posting lists by counting sort on (block, column): entries of list
/// `(b, d)` are the rows of block `b` with a non-zero in column `d`, in increasing row order.
/// `list_rows` says how the lists name their rows; blocks have `block_rows` rows.
pub(crate) fn encode_columns(
    dim: usize,
    rows: &RowEntries<'_>,
    row_scales: Option<&[f16]>,
    row_norms: Option<&[f32]>,
    order: ListOrder,
    list_rows: ListRows,
    block_rows: u32,
) -> EncodedColumns {
    let n_rows = rows.bounds.len() - 1;
    let block = block_rows as usize;
    let blocks = n_rows.div_ceil(block);
    let n_lists = blocks * dim;
    let list_of = |r: usize, c: usize| order.list(r / block, c, blocks, dim);
    let mut starts = alloc::vec![0usize; n_lists + 1];
    for r in 0..n_rows {
        for &c in &rows.columns[rows.bounds[r]..rows.bounds[r + 1]] {
            starts[list_of(r, c as usize) + 1] += 1;
        }
    }
    for i in 0..n_lists {
        starts[i + 1] += starts[i];
    }
    let entries = starts[n_lists];
    let bitmap_bytes = block / 8;
    let mut items = match list_rows {
        ListRows::U16 => alloc::vec![0u8; entries * 2],
        ListRows::Bitmap => alloc::vec![0u8; n_lists * bitmap_bytes],
    };
    let mut values = alloc::vec![0u8; entries * rows.width];
    let mut next = starts.clone();
    for r in 0..n_rows {
        let local = ((r % block) as u16).to_le_bytes();
        for k in rows.bounds[r]..rows.bounds[r + 1] {
            let list = list_of(r, rows.columns[k] as usize);
            let at = next[list];
            next[list] += 1;
            match list_rows {
                ListRows::U16 => items[2 * at..2 * at + 2].copy_from_slice(&local),
                ListRows::Bitmap => {
                    let bit = r % block;
                    items[list * bitmap_bytes + bit / 8] |= 1 << (bit % 8);
                }
            }
            values[at * rows.width..(at + 1) * rows.width]
                .copy_from_slice(&rows.values[k * rows.width..(k + 1) * rows.width]);
        }
    }
    let offset_width = if entries as u64 <= u64::from(u32::MAX) {
        OffsetWidth::U32
    } else {
        OffsetWidth::U64
    };
    let offsets = match offset_width {
        OffsetWidth::U32 => starts
            .iter()
            .flat_map(|&o| (o as u32).to_le_bytes())
            .collect(),
        OffsetWidth::U64 => starts
            .iter()
            .flat_map(|&o| (o as u64).to_le_bytes())
            .collect(),
    };
    EncodedColumns {
        block_rows,
        list_rows,
        entries: entries as u64,
        offset_width,
        offsets,
        items,
        values,
        norms: row_norms.map(|n| n.iter().flat_map(|x| x.to_le_bytes()).collect()),
        scales: row_scales.map(|s| s.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()),
    }
}
