//! Bitmap rows in blocks (format 1.7, [`IndexEncoding::BitmapBlocks`]): the row records of a
//! bitmap table, found through one row offset per block of [`BITMAP_BLOCK_ROWS`] rows instead
//! of one per row.
//!
//! A bitmap record says its own length: `ceil(dim / 8)` bytes of bitmap, the int8 or int4
//! scale, then one value per set bit. So the offsets section holds `blocks + 1` offsets (where
//! each block's records start, then the row data's length) and one `u16` mask per block (bit
//! `i` set when the block's row `i` has a record; an all-zero row has none), and a reader finds
//! a row by walking at most its block's sixteen records: 6 bytes of offsets and mask per 16
//! rows instead of 64. On the Gowalla BSL tables at density 0.4 with int4 values (d = 64, 23
//! bytes a row of bitmap, scale and values) the offsets shrink from 283,364 bytes to 26,582.
//!
//! Every walk checks its block whole: the offsets in order and within the row data, no mask bit
//! past the table's last row, each record within its block, and the records ending exactly
//! where the next block starts. What a record holds (bits past the dimension, the scale, the
//! int4 padding) is checked where it is read, as for any bitmap record ([`crate::Row`]).

use crate::format::{BITMAP_BLOCK_ROWS, IndexEncoding, OffsetWidth, ValueEncoding};
use crate::le;

/// A table's bitmap rows in blocks: its offsets, masks and row data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BitmapBlocks<'a> {
    /// `blocks + 1` offsets of `width`.
    offsets: &'a [u8],
    /// `blocks` little-endian `u16` masks.
    masks: &'a [u8],
    width: OffsetWidth,
    data: &'a [u8],
    rows: usize,
    bitmap_len: usize,
    encoding: ValueEncoding,
}

/// The number of blocks of a table of `rows` rows.
pub(crate) const fn block_count(rows: usize) -> usize {
    rows.div_ceil(BITMAP_BLOCK_ROWS)
}

impl<'a> BitmapBlocks<'a> {
    /// A view of the rows in blocks of a table: `section` is its whole offsets section (whose
    /// length the layout checked: `blocks + 1` offsets, then `blocks` masks); `None` if it is
    /// too short.
    pub(crate) fn new(
        section: &'a [u8],
        width: OffsetWidth,
        data: &'a [u8],
        rows: usize,
        dim: usize,
        encoding: ValueEncoding,
    ) -> Option<Self> {
        let offsets_len = block_count(rows)
            .checked_add(1)?
            .checked_mul(width.bytes())?;
        let (offsets, masks) = section.split_at_checked(offsets_len)?;
        Some(BitmapBlocks {
            offsets,
            masks,
            width,
            data,
            rows,
            bitmap_len: IndexEncoding::BitmapBlocks.row_bytes(0, dim),
            encoding,
        })
    }

    /// Block offset number `b`.
    #[inline(always)]
    fn offset(&self, b: usize) -> Option<usize> {
        le::offset(self.offsets, self.width, b).and_then(|o| usize::try_from(o).ok())
    }

    /// Block `block`'s records: where they start and end in the row data (in order, within
    /// it), its mask, and its number of rows (16 but in the last block), checked to hold no
    /// mask bit past the table's last row.
    #[inline(always)]
    fn block(&self, block: usize) -> Result<(usize, usize, u16, usize), &'static str> {
        let out_of_order = "block offsets are out of order or past the row data";
        let (start, end) = match (self.offset(block), self.offset(block + 1)) {
            (Some(s), Some(e)) if s <= e && e <= self.data.len() => (s, e),
            _ => return Err(out_of_order),
        };
        let mask = self
            .masks
            .get(2 * block..2 * block + 2)
            .map(|m| u16::from_le_bytes([m[0], m[1]]))
            .ok_or(out_of_order)?;
        let rows_here = self
            .rows
            .saturating_sub(block * BITMAP_BLOCK_ROWS)
            .min(BITMAP_BLOCK_ROWS);
        if rows_here < BITMAP_BLOCK_ROWS && u32::from(mask) >> rows_here != 0 {
            return Err("a block's mask names rows past the table");
        }
        Ok((start, end, mask, rows_here))
    }

    /// The length of the record at byte `at`, which must end by `end` (at most the row data's
    /// length): its bitmap (at least one bit set), then the scale and the values of its set
    /// bits.
    #[inline(always)]
    fn record_len(&self, at: usize, end: usize) -> Result<usize, &'static str> {
        let past = "record runs past its block";
        let bitmap = self
            .data
            .get(at..at.checked_add(self.bitmap_len).ok_or(past)?)
            .ok_or(past)?;
        let mut set = 0usize;
        for chunk in bitmap.chunks(8) {
            set += crate::kernels::scalar::bitmap_word(chunk).count_ones() as usize;
        }
        if set == 0 {
            return Err("a masked row's record has an empty bitmap");
        }
        // `set` is at most `8 × bitmap_len`, so no sum below overflows.
        let values = match self.encoding.byte_width() {
            Some(width) => set * width,
            None => set.div_ceil(2),
        };
        let len = self.bitmap_len + self.encoding.row_prefix() + values;
        if len <= end - at { Ok(len) } else { Err(past) }
    }

    /// Walks block `block` whole, checked (see the module), and gives `each` every row of it
    /// in order: its number within the block and its record's byte range in the row data
    /// (empty for an all-zero row).
    #[inline(always)]
    fn walk(
        &self,
        block: usize,
        mut each: impl FnMut(usize, usize, usize),
    ) -> Result<(), &'static str> {
        let (mut at, end, mask, rows_here) = self.block(block)?;
        for i in 0..rows_here {
            let len = if mask >> i & 1 != 0 {
                self.record_len(at, end)?
            } else {
                0
            };
            each(i, at, at + len);
            at += len;
        }
        if at != end {
            return Err("a block's records do not end where the next block starts");
        }
        Ok(())
    }

    /// The byte range of row `row`'s record in the row data (`row` below the row count).
    pub(crate) fn record_range(&self, row: usize) -> Result<(usize, usize), &'static str> {
        let (block, within) = (row / BITMAP_BLOCK_ROWS, row % BITMAP_BLOCK_ROWS);
        let mut range = (0, 0);
        self.walk(block, |i, start, end| {
            if i == within {
                range = (start, end);
            }
        })?;
        Ok(range)
    }

    /// The row offsets of rows `first..first + count` as a table with one `u32` offset per
    /// row would store them (`count + 1` offsets into `out`, which must hold them), for the
    /// row kernels: each block walked once, checked as [`Self::record_range`] checks it. On a
    /// corrupt block, or an offset above `u32::MAX`, returns the number of a row of it.
    pub(crate) fn row_offsets(
        &self,
        first: usize,
        count: usize,
        out: &mut [u8],
    ) -> Result<(), usize> {
        let end_row = first.checked_add(count).filter(|&e| e <= self.rows);
        let (Some(end_row), true) = (end_row, out.len() >= 4 * (count + 1)) else {
            return Err(first);
        };
        if count == 0 {
            return Ok(());
        }
        // Offsets above `u32::MAX` (only in a table of u64 offsets, which the kernels do not
        // read) cannot be given.
        let mut fits = true;
        for block in first / BITMAP_BLOCK_ROWS..=(end_row - 1) / BITMAP_BLOCK_ROWS {
            let base = block * BITMAP_BLOCK_ROWS;
            // Rows are back to back, so row `r`'s end is row `r + 1`'s start: each row in the
            // range gives its start, the last one its end too.
            self.walk(block, |i, start, end| {
                let row = base + i;
                if !(first..end_row).contains(&row) {
                    return;
                }
                let mut put = |k: usize, at: usize| match u32::try_from(at) {
                    Ok(at) => out[4 * k..4 * k + 4].copy_from_slice(&at.to_le_bytes()),
                    Err(_) => fits = false,
                };
                put(row - first, start);
                if row + 1 == end_row {
                    put(count, end);
                }
            })
            .map_err(|_| base.max(first))?;
            if !fits {
                return Err(base.max(first));
            }
        }
        Ok(())
    }

    /// The byte range of the row data holding rows `first..end` (whole blocks), for
    /// prefetching; empty when the offsets are out of order.
    pub(crate) fn data_range(&self, first: usize, end: usize) -> (usize, usize) {
        match (
            self.offset(first / BITMAP_BLOCK_ROWS),
            self.offset(block_count(end.min(self.rows))),
        ) {
            (Some(s), Some(e)) if s <= e => (s, e),
            _ => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::builder::{ModelBuilder, SparseMatrix, TableSpec};
    use crate::format::{IndexEncoding, ValueEncoding};
    use crate::{Model, Role};

    /// A table of `rows` rows with about `density` of `dim` non-zeros a row and every
    /// `empty_every`-th row all zero, built with bitmap rows in blocks and with one offset per
    /// row.
    fn both(rows: usize, dim: usize, empty_every: usize, encoding: ValueEncoding) -> [Vec<u8>; 2] {
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (rows * 31 + dim) as u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let dense: Vec<f32> = (0..rows * dim)
            .map(|i| {
                let r = next();
                if (i / dim) % empty_every == 3 || r % 10 < 3 {
                    0.0
                } else {
                    (r % 2000) as f32 / 100.0 - 10.0
                }
            })
            .collect();
        [false, true].map(|per_row| {
            let m = SparseMatrix::from_dense(rows, dim, &dense).unwrap();
            let spec = TableSpec::new("i", Role::Item, m)
                .values(encoding)
                .with_per_row_offsets(per_row);
            ModelBuilder::new().table(spec).build().unwrap()
        })
    }

    /// The offsets worked out from the blocks are the per-row file's own, for every batch
    /// start and length; the row data is the same bytes; every row reads the same.
    #[test]
    fn block_walks_give_the_per_row_offsets() {
        for &encoding in ValueEncoding::ALL {
            for (rows, dim, empty_every) in [(1, 9, 2), (16, 64, 5), (17, 64, 4), (100, 33, 7)] {
                let [blocks, per_row] = both(rows, dim, empty_every, encoding);
                let (a, b) = (
                    Model::from_bytes(&blocks).unwrap(),
                    Model::from_bytes(&per_row).unwrap(),
                );
                let (a, b) = (a.items().unwrap(), b.items().unwrap());
                assert_eq!(a.index_encoding(), IndexEncoding::BitmapBlocks);
                assert_eq!(b.index_encoding(), IndexEncoding::Bitmap);
                let ((_, a_data), (b_offsets, b_data)) = (a.raw_rows(), b.raw_rows());
                assert_eq!(a_data, b_data);
                assert_eq!(a.empty_rows().unwrap(), b.empty_rows().unwrap());
                let walk = a.bitmap_blocks().unwrap();
                for first in 0..rows {
                    for count in [0, 1, 5, 16, 17, rows - first] {
                        let count = count.min(rows - first);
                        let mut out = vec![0u8; 4 * (count + 1)];
                        walk.row_offsets(first, count, &mut out).unwrap();
                        if count > 0 {
                            assert_eq!(out, b_offsets[4 * first..4 * (first + count + 1)]);
                        }
                    }
                    let q: alloc::vec::Vec<f32> = (0..dim).map(|i| i as f32 - 3.0).collect();
                    let (ra, rb) = (a.row(first).unwrap(), b.row(first).unwrap());
                    assert_eq!(ra.dot(&q).unwrap().to_bits(), rb.dot(&q).unwrap().to_bits());
                }
                // Past the table, or a buffer too small: the first row is named.
                let mut out = vec![0u8; 4 * (rows + 2)];
                assert_eq!(walk.row_offsets(0, rows + 1, &mut out), Err(0));
                assert_eq!(walk.row_offsets(0, rows, &mut out[..4 * rows]), Err(0));
            }
        }
    }

    /// The row scan of a table of bitmap rows in blocks gives the per-row table's top-k, bit
    /// for bit, through every batch.
    #[test]
    fn row_scans_agree() {
        for &encoding in ValueEncoding::ALL {
            let [blocks, per_row] = both(700, 64, 9, encoding);
            let (a, b) = (
                Model::from_bytes(&blocks).unwrap(),
                Model::from_bytes(&per_row).unwrap(),
            );
            let query: alloc::vec::Vec<f32> = (0..64).map(|i| (i % 7) as f32 - 2.5).collect();
            let mut got = [crate::Recommendation::default(); 25];
            let mut want = [crate::Recommendation::default(); 25];
            let n = a.recommend_vector(&query, 25, &[], &mut got).unwrap();
            let m = b.recommend_vector(&query, 25, &[], &mut want).unwrap();
            assert_eq!(n, 25);
            assert_eq!(got[..n], want[..m], "{encoding}");
        }
    }
}
