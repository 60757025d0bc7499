//! A table's column layout (format 1.1): posting lists per (row block, dimension).

use crate::error::{Error, Result};
use crate::format::{ListOrder, ListRows, OffsetWidth, Role, ValueEncoding};
use crate::kernels::scalar::{bf16_to_f32, f16_to_f32};
use crate::layout::ColumnSpans;
use crate::le;

/// Which rows of its block a posting list holds, still as bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ListRowBytes<'a> {
    /// `2 * len` bytes of little-endian `u16` block-local rows (format 1.1).
    U16(&'a [u8]),
    /// `block_rows / 8` bytes: little-endian `u64` words, bit `r % 64` of word `r / 64` set
    /// when block-local row `r` has an entry (format 1.3). Nothing says the bits are as many
    /// as the values: readers check.
    Bitmap(&'a [u8]),
}

/// One posting list: which rows of its block it holds, and their values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PostingList<'a> {
    /// The number of its first entry in the layout (its start offset).
    pub first: usize,
    /// Its number of entries.
    pub entries: usize,
    /// The rows.
    pub rows: ListRowBytes<'a>,
    /// Its values in the table's value encoding: `width * len` bytes, or for int4 the bytes
    /// that hold its nibbles (entry `first` in the high nibble of the first byte when `first`
    /// is odd).
    pub values: &'a [u8],
}

impl<'a> PostingList<'a> {
    /// Its number of entries (of values).
    pub fn len(&self) -> usize {
        self.entries
    }

    /// The block-local rows of the list, in stored order (for bitmaps, increasing).
    pub fn local_rows(&self) -> LocalRows<'a> {
        match self.rows {
            ListRowBytes::U16(items) => LocalRows::U16(items.chunks_exact(2)),
            ListRowBytes::Bitmap(words) => LocalRows::Bitmap {
                words: words.chunks_exact(8),
                base: 0,
                bits: 0,
            },
        }
    }
}

/// The block-local rows of a posting list ([`PostingList::local_rows`]).
pub(crate) enum LocalRows<'a> {
    /// From `u16` items.
    U16(core::slice::ChunksExact<'a, u8>),
    /// From bitmap words: `bits` are the unvisited bits of the word for rows `base - 64..base`.
    Bitmap {
        words: core::slice::ChunksExact<'a, u8>,
        base: usize,
        bits: u64,
    },
}

impl Iterator for LocalRows<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            LocalRows::U16(items) => items
                .next()
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))),
            LocalRows::Bitmap { words, base, bits } => {
                while *bits == 0 {
                    *bits = u64::from_le_bytes(words.next()?.try_into().ok()?);
                    *base += 64;
                }
                let row = *base - 64 + bits.trailing_zeros() as usize;
                *bits &= *bits - 1;
                Some(row)
            }
        }
    }
}

/// `Σ weights[row] · value(n)` over the `n`-th entries of `list`; `None` when a row is past
/// `weights`, a value is missing, or a bitmap has more rows than values.
#[inline(always)]
fn sum_entries(
    list: PostingList<'_>,
    weights: &[f32],
    value: impl Fn(usize) -> Option<f32>,
) -> Option<f32> {
    let mut sum = 0.0f32;
    for (n, local) in list.local_rows().enumerate() {
        if n >= list.entries {
            return None;
        }
        sum += *weights.get(local)? * value(n)?;
    }
    Some(sum)
}

/// A view of a table's column layout, borrowed from the model's bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ColumnView<'a> {
    pub role: Role,
    pub rows: usize,
    pub dim: usize,
    pub block_rows: usize,
    pub blocks: usize,
    order: ListOrder,
    pub encoding: ValueEncoding,
    pub(crate) offset_width: OffsetWidth,
    offsets: &'a [u8],
    /// How the lists name their rows.
    pub list_rows: ListRows,
    items: &'a [u8],
    values: &'a [u8],
    norms: Option<&'a [u8]>,
    scales: Option<&'a [u8]>,
}

impl<'a> ColumnView<'a> {
    pub fn new(
        bytes: &'a [u8],
        spans: &ColumnSpans,
        role: Role,
        rows: usize,
        dim: usize,
        encoding: ValueEncoding,
    ) -> Result<Self> {
        Ok(ColumnView {
            role,
            rows,
            dim,
            block_rows: spans.block_rows,
            blocks: spans.blocks,
            order: spans.order,
            encoding,
            offset_width: spans.offset_width,
            offsets: spans.offsets.slice(bytes)?,
            list_rows: spans.list_rows,
            items: spans.items.slice(bytes)?,
            values: spans.values.slice(bytes)?,
            norms: match spans.norms {
                Some(s) => Some(s.slice(bytes)?),
                None => None,
            },
            scales: match spans.scales {
                Some(s) => Some(s.slice(bytes)?),
                None => None,
            },
        })
    }

    fn corrupt(&self, reason: &'static str) -> Error {
        Error::CorruptTable {
            role: self.role,
            reason,
        }
    }

    /// Number of rows in block `block` (the last one may be short).
    pub fn rows_in_block(&self, block: usize) -> usize {
        self.rows
            .saturating_sub(block * self.block_rows)
            .min(self.block_rows)
    }

    /// The entry range of list `(block, dim)`, checked to be ordered and in range.
    #[inline]
    pub fn list_range(&self, block: usize, dim: usize) -> Result<(usize, usize)> {
        if block >= self.blocks || dim >= self.dim {
            return Err(self.corrupt("column list past the layout"));
        }
        let at = self.order.list(block, dim, self.blocks, self.dim);
        let start = le::offset(self.offsets, self.offset_width, at);
        let end = le::offset(self.offsets, self.offset_width, at + 1);
        let entries = self.encoding.values_in(self.values.len()) as u64;
        match (start, end) {
            (Some(s), Some(e)) if s <= e && e <= entries => Ok((s as usize, e as usize)),
            _ => Err(self.corrupt("column offsets are out of order or past the entries")),
        }
    }

    /// The stored offsets of lists `(first..first + count, dim)`, when they lie together
    /// (dimension-major lists; `None` for block-major ones or past the layout): what a scan
    /// that will visit some of those blocks asks the CPU to bring in ahead.
    pub fn offsets_of_blocks(&self, first: usize, count: usize, dim: usize) -> Option<&'a [u8]> {
        if self.order != ListOrder::DimensionMajor || dim >= self.dim || first >= self.blocks {
            return None;
        }
        let width = self.offset_width.bytes();
        let at = dim.checked_mul(self.blocks)?.checked_add(first)?;
        let end = at
            .checked_add(count.min(self.blocks - first))?
            .checked_add(1)?;
        self.offsets
            .get(at.checked_mul(width)?..end.checked_mul(width)?)
    }

    /// Bytes of each list's bitmap (format 1.3).
    fn bitmap_bytes(&self) -> usize {
        self.block_rows / 8
    }

    /// Posting list `(block, dim)`.
    #[inline]
    pub fn list(&self, block: usize, dim: usize) -> Result<PostingList<'a>> {
        let (start, end) = self.list_range(block, dim)?;
        let rows = match self.list_rows {
            ListRows::U16 => self.items.get(2 * start..2 * end).map(ListRowBytes::U16),
            ListRows::Bitmap => {
                let at = self.order.list(block, dim, self.blocks, self.dim) * self.bitmap_bytes();
                self.items
                    .get(at..at + self.bitmap_bytes())
                    .map(ListRowBytes::Bitmap)
            }
        };
        let values = match self.encoding.byte_width() {
            Some(width) => self.values.get(width * start..width * end),
            None => self.values.get(start / 2..end.div_ceil(2)),
        };
        match (rows, values) {
            (Some(rows), Some(values)) => Ok(PostingList {
                first: start,
                entries: end - start,
                rows,
                values,
            }),
            _ => Err(self.corrupt("column list is past its section")),
        }
    }

    /// The values section from `list`'s first value to the end: what a kernel that loads
    /// whole vectors may read past a list (the list's own values are its first bytes).
    #[inline]
    pub fn values_from(&self, list: &PostingList<'a>) -> &'a [u8] {
        let start = match self.encoding.byte_width() {
            Some(width) => list.first.saturating_mul(width),
            None => list.first / 2,
        };
        self.values.get(start..).unwrap_or(&[])
    }

    /// Calls `visit(local_row, entry)` for each entry of list `(block, dim)` in order, after
    /// checking that its rows increase and lie in the block, and that the list has as many
    /// rows as values (a bitmap's set bits, counted).
    pub fn for_each_entry(
        &self,
        block: usize,
        dim: usize,
        mut visit: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<()> {
        let list = self.list(block, dim)?;
        let (start, end) = (list.first, list.first + list.len());
        let rows_in_block = self.rows_in_block(block);
        let mut next_allowed = 0usize;
        let mut at = start;
        for local in list.local_rows() {
            if local < next_allowed || local >= rows_in_block {
                return Err(self.corrupt("column list rows are not increasing within their block"));
            }
            if at >= end {
                return Err(self.corrupt("a column bitmap has more rows than values"));
            }
            next_allowed = local + 1;
            visit(local, at)?;
            at += 1;
        }
        if at != end {
            return Err(self.corrupt("a column bitmap has fewer rows than values"));
        }
        Ok(())
    }

    /// `Σ weights[row] · value` over the entries of list `(block, dim)`, the values as stored
    /// (int8/int4 codes unscaled), `weights` indexed by block-local row: the transpose of the
    /// column scan's scatter, for the softmax fold-in. The encoding is matched once per list.
    pub fn weighted_list_sum(&self, block: usize, dim: usize, weights: &[f32]) -> Result<f32> {
        let list = self.list(block, dim)?;
        let values = list.values;
        let first = list.first;
        let sum = match self.encoding {
            ValueEncoding::F32 => sum_entries(list, weights, |n| {
                let b = values.get(4 * n..4 * n + 4)?;
                Some(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }),
            ValueEncoding::F16 => sum_entries(list, weights, |n| {
                let b = values.get(2 * n..2 * n + 2)?;
                Some(f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            }),
            ValueEncoding::Bf16 => sum_entries(list, weights, |n| {
                let b = values.get(2 * n..2 * n + 2)?;
                Some(bf16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            }),
            ValueEncoding::I8 => sum_entries(list, weights, |n| {
                values.get(n).map(|&b| f32::from(b as i8))
            }),
            ValueEncoding::I4 => sum_entries(list, weights, |n| {
                // Entry `first + n` of the section; `values` starts at byte `first / 2`.
                let at = (first % 2) + n;
                values.get(at / 2)?;
                Some(f32::from(crate::row::nibble(values, at)))
            }),
        };
        sum.ok_or_else(|| self.corrupt("column list rows or values do not match"))
    }

    /// Bytes a query reads from list `(block, dim)` (rows and values).
    pub fn list_bytes(&self, block: usize, dim: usize) -> u64 {
        self.list_range(block, dim).map_or(0, |(s, e)| {
            let values = self.encoding.value_bytes(e - s).unwrap_or(usize::MAX);
            (match self.list_rows {
                ListRows::U16 => (e - s).saturating_mul(2).saturating_add(values),
                ListRows::Bitmap => self.bitmap_bytes().saturating_add(values),
            }) as u64
        })
    }

    /// The stored norm of row `row` (cosine scoring).
    #[inline]
    pub fn norm(&self, row: usize) -> Result<f32> {
        self.norms
            .and_then(|n| le::f32_at(n, row))
            .ok_or_else(|| self.corrupt("row norm missing"))
    }

    /// The int8 or int4 scales (f16, little-endian) of rows `first..first + count`, if stored.
    #[inline]
    pub fn scales_of(&self, first: usize, count: usize) -> Result<Option<&'a [u8]>> {
        match self.scales {
            None => Ok(None),
            Some(s) => s
                .get(2 * first..2 * (first + count))
                .map(Some)
                .ok_or_else(|| self.corrupt("row scales missing")),
        }
    }

    /// The norms (f32, little-endian) of rows `first..first + count`.
    #[inline]
    pub fn norms_of(&self, first: usize, count: usize) -> Result<&'a [u8]> {
        self.norms
            .and_then(|n| n.get(4 * first..4 * (first + count)))
            .ok_or_else(|| self.corrupt("row norms missing"))
    }

    /// The stored f16 bits of row `row`'s scale, for int8 and int4 tables.
    pub fn scale_bits(&self, row: usize) -> Option<u16> {
        self.scales
            .and_then(|s| s.get(2 * row..2 * row + 2))
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    /// Whether norms are stored.
    pub fn has_norms(&self) -> bool {
        self.norms.is_some()
    }

    /// Bytes of the per-row norms and scales (read by every query that uses them).
    pub fn per_row_bytes(&self) -> u64 {
        (self.norms.map_or(0, <[u8]>::len) + self.scales.map_or(0, <[u8]>::len)) as u64
    }

    /// Entry `at`'s stored bits, as [`crate::Row`]'s `raw_value` gives a row's: the f32,
    /// f16 or bf16 bits, the int8 code as a byte, the int4 code as a nibble; `None` past the
    /// section.
    #[inline]
    pub fn value_bits(&self, at: usize) -> Option<u32> {
        match self.encoding.byte_width() {
            Some(width) => {
                let start = width.checked_mul(at)?;
                le::value_bits(self.values.get(start..start.checked_add(width)?)?)
            }
            None => {
                let byte = *self.values.get(at / 2)?;
                Some(u32::from(if at.is_multiple_of(2) {
                    byte & 0x0F
                } else {
                    byte >> 4
                }))
            }
        }
    }

    /// Entry `at`'s value as the column scan adds it: the value for f32, f16 and bf16, the
    /// integer code for int8 and int4 (to be multiplied by the row's scale); `None` past the
    /// section.
    #[inline]
    pub fn raw_value(&self, at: usize) -> Option<f32> {
        let Some(width) = self.encoding.byte_width() else {
            self.values.get(at / 2)?;
            return Some(f32::from(crate::row::nibble(self.values, at)));
        };
        let start = width.checked_mul(at)?;
        let b = self.values.get(start..start.checked_add(width)?)?;
        Some(match self.encoding {
            ValueEncoding::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            ValueEncoding::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            ValueEncoding::Bf16 => bf16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            ValueEncoding::I8 | ValueEncoding::I4 => f32::from(b[0] as i8),
        })
    }

    /// The entry of row `row` in the posting list of dimension `dim`, if the row is non-zero
    /// there: a binary search over `u16` rows, or a bit test and a count of the bits before it.
    pub fn find(&self, row: usize, dim: usize) -> Result<Option<usize>> {
        let (block, local) = (row / self.block_rows, row % self.block_rows);
        let list = self.list(block, dim)?;
        let (start, len) = (list.first, list.len());
        match list.rows {
            ListRowBytes::U16(items) => {
                let (mut lo, mut hi) = (0, len);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    let at = usize::from(u16::from_le_bytes([items[2 * mid], items[2 * mid + 1]]));
                    match at.cmp(&local) {
                        core::cmp::Ordering::Less => lo = mid + 1,
                        core::cmp::Ordering::Greater => hi = mid,
                        core::cmp::Ordering::Equal => return Ok(Some(start + mid)),
                    }
                }
                Ok(None)
            }
            ListRowBytes::Bitmap(words) => {
                let word = |w: usize| le::u64_at(words, w).unwrap_or(0);
                let bit = 1u64 << (local % 64);
                if word(local / 64) & bit == 0 {
                    return Ok(None);
                }
                let before: usize = (0..local / 64)
                    .map(|w| word(w).count_ones() as usize)
                    .sum::<usize>()
                    + (word(local / 64) & (bit - 1)).count_ones() as usize;
                if before >= len {
                    return Err(self.corrupt("a column bitmap has more rows than values"));
                }
                Ok(Some(start + before))
            }
        }
    }

    /// Row `row`'s value in dimension `dim` as the column scan adds it ([`Self::raw_value`]),
    /// if the row is non-zero there.
    fn value_in(&self, row: usize, dim: usize) -> Result<Option<f32>> {
        match self.find(row, dim)? {
            None => Ok(None),
            Some(at) => self
                .raw_value(at)
                .map(Some)
                .ok_or_else(|| self.corrupt("column value missing")),
        }
    }

    /// The int8 or int4 scale of row `row` as an f32 (1 for other encodings), checked to be
    /// positive and finite as a row record's is.
    fn scale(&self, row: usize) -> Result<f32> {
        if !self.encoding.is_scaled() {
            return Ok(1.0);
        }
        match self.scale_bits(row).map(f16_to_f32) {
            Some(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
            _ => Err(Error::CorruptRow {
                role: self.role,
                row: row as u64,
                reason: "int8 or int4 scale is not a positive finite number",
            }),
        }
    }

    /// Writes row `row` as a dense vector into `out` (`out.len()` must be `dim`): one binary
    /// search per dimension, so `dim * log2(list length)` steps.
    pub fn decode_row(&self, row: usize, out: &mut [f32]) -> Result<()> {
        if out.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim as u64,
                actual: out.len() as u64,
            });
        }
        out.fill(0.0);
        let mut scale = None;
        for (dim, slot) in out.iter_mut().enumerate() {
            if let Some(value) = self.value_in(row, dim)? {
                let scale = match scale {
                    Some(s) => s,
                    None => *scale.insert(self.scale(row)?),
                };
                *slot = match self.encoding {
                    ValueEncoding::I8 | ValueEncoding::I4 => value * scale,
                    _ => value,
                };
            }
        }
        Ok(())
    }

    /// The dot product of row `row` with `query` exactly as the column scan computes it:
    /// `query[d] * value` added in increasing `d` from 0 over the dimensions where both are
    /// non-zero, then (int8) multiplied by the row's scale.
    pub fn dot_row(&self, row: usize, query: &[f32]) -> Result<f32> {
        let mut acc = 0.0f32;
        let mut any = false;
        for (dim, &weight) in query.iter().enumerate().take(self.dim) {
            if weight == 0.0 {
                continue;
            }
            if let Some(value) = self.value_in(row, dim)? {
                acc += weight * value;
                any = true;
            }
        }
        if self.encoding.is_scaled() {
            // The column scan multiplies every row by its stored scale (0 for an empty row).
            let scale = if any {
                self.scale(row)?
            } else {
                self.scale_bits(row).map_or(0.0, f16_to_f32)
            };
            acc *= scale;
        }
        Ok(acc)
    }

    /// False for int4 values whose section ends in a nonzero padding nibble (after an odd
    /// number of `entries`); true otherwise.
    pub fn padding_is_zero(&self, entries: u64) -> bool {
        self.encoding != ValueEncoding::I4
            || entries.is_multiple_of(2)
            || self.values.last().is_none_or(|&b| b >> 4 == 0)
    }

    /// Bytes of each column section: offsets, items, values, norms, scales.
    pub fn section_bytes(&self) -> [usize; 5] {
        [
            self.offsets.len(),
            self.items.len(),
            self.values.len(),
            self.norms.map_or(0, <[u8]>::len),
            self.scales.map_or(0, <[u8]>::len),
        ]
    }
}
