//! One row of a table: its record parsed and checked, its non-zeros, and the kernels on it.
//!
//! A row record is `[column part][value part]`:
//! - column part: `nnz` `u8` or little-endian `u16` column indices, strictly increasing, or a
//!   `ceil(dim/8)`-byte occupancy bitmap;
//! - value part: `nnz` values (f32, f16 or bf16, little-endian), or for int8 a little-endian f16
//!   scale then `nnz` signed bytes, or for int4 an f16 scale then `ceil(nnz / 2)` bytes of
//!   nibbles (entry `k` in byte `k / 2`, the low nibble first; the high nibble after an odd
//!   count is 0), nibble `q` (signed, -8..=7) standing for the odd code `2q + 1`.
//!
//! An all-zero row has an empty record. [`Row::parse`] checks the record completely (lengths,
//! index order and range, bitmap tail bits, the int8/int4 scale, the int4 padding nibble)
//! before anything reads it, so the kernels below index the query vector with indices known
//! to be in range.

use half::f16;

use crate::error::{Error, Result};
use crate::format::{IndexEncoding, ValueEncoding};

/// The column part of a row record.
#[derive(Clone, Copy, Debug)]
enum Columns<'a> {
    U8(&'a [u8]),
    U16(&'a [u8]),
    Bitmap(&'a [u8]),
}

/// The value part of a row record.
#[derive(Clone, Copy, Debug)]
enum Values<'a> {
    F32(&'a [u8]),
    F16(&'a [u8]),
    Bf16(&'a [u8]),
    I8 {
        scale: f32,
        values: &'a [u8],
    },
    /// Two 4-bit codes per byte, low nibble first ([`int4_code`]).
    I4 {
        scale: f32,
        values: &'a [u8],
    },
}

/// The int4 code of the nibble in the low four bits of `bits`: the nibble as a signed
/// number `q` in -8..=7 stands for the odd code `2q + 1` in -15..=15 (sixteen levels
/// symmetric about 0, none of them 0: a stored value is never 0).
#[inline(always)]
pub(crate) const fn int4_code(bits: u8) -> i8 {
    // The nibble to the top of a byte, back down with its sign to bit 1, and bit 0 set.
    (((bits << 4) as i8) >> 3) | 1
}

/// The `k`-th int4 code of nibble-packed `values` (entry `k` in byte `k / 2`, the low nibble
/// first: see [`int4_code`]), or 0 past the end.
#[inline(always)]
pub(crate) fn nibble(values: &[u8], k: usize) -> i8 {
    match values.get(k / 2) {
        Some(&byte) => int4_code(if k.is_multiple_of(2) { byte } else { byte >> 4 }),
        None => 0,
    }
}

/// The first `n` int4 codes of nibble-packed `values`, as f32.
#[inline(always)]
pub(crate) fn nibbles(values: &[u8], n: usize) -> impl Iterator<Item = f32> + '_ {
    values
        .iter()
        .flat_map(|&b| [int4_code(b), int4_code(b >> 4)])
        .take(n)
        .map(f32::from)
}

/// One row of a table (a user's or an item's embedding), validated.
///
/// Obtained from [`crate::Table::row`] or [`crate::Table::row_by_id`]. It borrows the model's
/// bytes and never allocates.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    dim: usize,
    nnz: usize,
    columns: Columns<'a>,
    values: Values<'a>,
    /// The record and whatever row data follows it: SIMD kernels may load whole vectors past
    /// the record's end without leaving the row data.
    tail: &'a [u8],
    /// Where the values start in the record (after the columns and the int8 scale).
    values_at: usize,
}

/// Reads an f32 from a 4-byte chunk.
#[inline(always)]
fn f32_le(chunk: &[u8]) -> f32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(chunk);
    f32::from_le_bytes(b)
}

/// Reads a u16 from a 2-byte chunk.
#[inline(always)]
fn u16_le(chunk: &[u8]) -> u16 {
    u16::from_le_bytes([chunk[0], chunk[1]])
}

use crate::kernels::{
    self,
    scalar::{bf16_to_f32, f16_to_f32},
};

/// Calls `f(column)` for every set bit of `bitmap`, in increasing order.
#[inline(always)]
fn for_each_set_bit(bitmap: &[u8], mut f: impl FnMut(usize)) {
    let mut base = 0usize;
    let mut words = bitmap.chunks_exact(8);
    for chunk in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let mut word = u64::from_le_bytes(b);
        while word != 0 {
            f(base + word.trailing_zeros() as usize);
            word &= word - 1;
        }
        base += 64;
    }
    for &byte in words.remainder() {
        let mut word = byte;
        while word != 0 {
            f(base + word.trailing_zeros() as usize);
            word &= word - 1;
        }
        base += 8;
    }
}

/// Square root in `no_std` (libm's is correctly rounded, like the hardware instruction).
#[inline]
pub(crate) fn sqrt(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::sqrtf(x)
    }
}

impl<'a> Row<'a> {
    /// An all-zero row.
    pub(crate) const fn empty(dim: usize, values: ValueEncoding) -> Row<'a> {
        Row {
            dim,
            nnz: 0,
            tail: &[],
            values_at: 0,
            columns: Columns::U8(&[]),
            values: match values {
                ValueEncoding::F32 => Values::F32(&[]),
                ValueEncoding::F16 => Values::F16(&[]),
                ValueEncoding::Bf16 => Values::Bf16(&[]),
                ValueEncoding::I8 => Values::I8 {
                    scale: 0.0,
                    values: &[],
                },
                ValueEncoding::I4 => Values::I4 {
                    scale: 0.0,
                    values: &[],
                },
            },
        }
    }

    /// Parses and checks a row record; the error is the reason it is corrupt.
    pub(crate) fn parse(
        record: &'a [u8],
        dim: usize,
        index: IndexEncoding,
        encoding: ValueEncoding,
    ) -> core::result::Result<Row<'a>, &'static str> {
        if record.is_empty() {
            return Ok(Row::empty(dim, encoding));
        }
        let prefix = encoding.row_prefix();
        let (columns, nnz, rest) = match index {
            IndexEncoding::U8List | IndexEncoding::U16List => {
                let index_width = if index == IndexEncoding::U8List { 1 } else { 2 };
                let body = record
                    .len()
                    .checked_sub(prefix)
                    .ok_or("record shorter than its scale")?;
                let nnz = encoding
                    .entries_in(body, index_width)
                    .ok_or("record length is not a whole number of entries")?;
                if nnz == 0 {
                    return Err("non-empty record without entries");
                }
                if nnz > dim {
                    return Err("more entries than the dimension");
                }
                let (cols, rest) = record.split_at(nnz * index_width);
                let columns = if index_width == 1 {
                    check_increasing(cols.iter().map(|&c| usize::from(c)), dim)?;
                    Columns::U8(cols)
                } else {
                    check_increasing(cols.chunks_exact(2).map(|c| usize::from(u16_le(c))), dim)?;
                    Columns::U16(cols)
                };
                (columns, nnz, rest)
            }
            IndexEncoding::Sliced => return Err("sliced rows have no record of their own"),
            IndexEncoding::Bitmap | IndexEncoding::BitmapBlocks => {
                let bitmap_len = dim.div_ceil(8);
                if record.len() < bitmap_len {
                    return Err("record shorter than its bitmap");
                }
                let (bitmap, rest) = record.split_at(bitmap_len);
                if !dim.is_multiple_of(8) {
                    let last = bitmap.last().copied().unwrap_or(0);
                    if last >> (dim % 8) != 0 {
                        return Err("bitmap has bits set past the dimension");
                    }
                }
                let nnz: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
                if nnz == 0 {
                    return Err("non-empty record with an empty bitmap");
                }
                let fits = rest
                    .len()
                    .checked_sub(prefix)
                    .is_some_and(|values| encoding.entries_fit(nnz, values));
                if !fits {
                    return Err("record length does not match its bitmap");
                }
                (Columns::Bitmap(bitmap), nnz, rest)
            }
        };
        let values = match encoding {
            ValueEncoding::F32 => Values::F32(rest),
            ValueEncoding::F16 => Values::F16(rest),
            ValueEncoding::Bf16 => Values::Bf16(rest),
            ValueEncoding::I8 => {
                let (scale, values) = rest.split_at(2);
                let scale = f16_to_f32(u16_le(scale));
                if !(scale.is_finite() && scale > 0.0) {
                    return Err("int8 scale is not a positive finite number");
                }
                Values::I8 { scale, values }
            }
            ValueEncoding::I4 => {
                let (scale, values) = rest.split_at(2);
                let scale = f16_to_f32(u16_le(scale));
                if !(scale.is_finite() && scale > 0.0) {
                    return Err("int4 scale is not a positive finite number");
                }
                // No branch on the parity (random from row to row): the last byte's high
                // nibble, masked by it.
                if values
                    .last()
                    .is_some_and(|&b| (b >> 4) & (nnz as u8 & 1).wrapping_neg() != 0)
                {
                    return Err("int4 padding nibble is not zero");
                }
                Values::I4 { scale, values }
            }
        };
        let value_bytes = match values {
            Values::F32(v) | Values::F16(v) | Values::Bf16(v) => v.len(),
            Values::I8 { values, .. } | Values::I4 { values, .. } => values.len(),
        };
        Ok(Row {
            dim,
            nnz,
            columns,
            values,
            tail: record,
            values_at: record.len() - value_bytes,
        })
    }

    /// [`Self::parse`] for the record `data[start..end]`, keeping the rest of `data` readable
    /// for the SIMD kernels.
    #[inline]
    pub(crate) fn parse_in(
        data: &'a [u8],
        start: usize,
        end: usize,
        dim: usize,
        index: IndexEncoding,
        encoding: ValueEncoding,
    ) -> core::result::Result<Row<'a>, &'static str> {
        let record = data
            .get(start..end)
            .ok_or("row record is past the row data")?;
        let mut row = Row::parse(record, dim, index, encoding)?;
        if row.nnz > 0 {
            row.tail = data.get(start..).unwrap_or(record);
        }
        Ok(row)
    }

    /// The table's dimension (length of the dense vector).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of stored non-zero values.
    pub fn nnz(&self) -> usize {
        self.nnz
    }

    /// True when the row is all zeros.
    pub fn is_empty(&self) -> bool {
        self.nnz == 0
    }

    /// The factor that turns raw values into real ones (the int8 or int4 scale; 1 otherwise).
    #[inline(always)]
    fn scale(&self) -> f32 {
        match self.values {
            Values::I8 { scale, .. } | Values::I4 { scale, .. } => scale,
            _ => 1.0,
        }
    }

    /// Calls `f(column, raw_value)` for each non-zero in column order. Raw values are the real
    /// values for f32/f16/bf16 and the integer codes for int8 and int4 (multiply by
    /// [`Self::scale`]).
    #[inline(always)]
    fn visit_raw(&self, f: impl FnMut(usize, f32)) {
        match self.values {
            Values::F32(b) => self.visit_columns(b.chunks_exact(4).map(f32_le), f),
            Values::F16(b) => {
                self.visit_columns(b.chunks_exact(2).map(|c| f16_to_f32(u16_le(c))), f)
            }
            Values::Bf16(b) => {
                self.visit_columns(b.chunks_exact(2).map(|c| bf16_to_f32(u16_le(c))), f)
            }
            Values::I8 { values, .. } => {
                self.visit_columns(values.iter().map(|&q| f32::from(q as i8)), f)
            }
            Values::I4 { values, .. } => self.visit_columns(nibbles(values, self.nnz), f),
        }
    }

    #[inline(always)]
    fn visit_columns(&self, values: impl Iterator<Item = f32>, mut f: impl FnMut(usize, f32)) {
        match self.columns {
            Columns::U8(cols) => {
                for (&c, v) in cols.iter().zip(values) {
                    f(usize::from(c), v);
                }
            }
            Columns::U16(cols) => {
                for (c, v) in cols.chunks_exact(2).zip(values) {
                    f(usize::from(u16_le(c)), v);
                }
            }
            Columns::Bitmap(bitmap) => {
                let mut values = values;
                for_each_set_bit(bitmap, |c| {
                    if let Some(v) = values.next() {
                        f(c, v);
                    }
                });
            }
        }
    }

    /// Calls `f(column, value)` for each non-zero, in increasing column order.
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// let row = model.items()?.row(0)?;
    /// let mut sum = 0.0;
    /// row.for_each_nonzero(|_column, value| sum += value);
    /// # Ok(()) }
    /// ```
    pub fn for_each_nonzero(&self, mut f: impl FnMut(usize, f32)) {
        let scale = self.scale();
        match self.values {
            Values::I8 { .. } | Values::I4 { .. } => self.visit_raw(|c, q| f(c, q * scale)),
            _ => self.visit_raw(f),
        }
    }

    /// Iterator over `(column, value)` pairs, in increasing column order.
    pub fn iter(&self) -> RowIter<'a> {
        RowIter {
            row: *self,
            position: 0,
            byte_index: 0,
            next_byte: 0,
            bits: 0,
        }
    }

    /// Writes the dense row into `out` (zeros included). `out.len()` must equal [`Self::dim`].
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// let items = model.items()?;
    /// let mut dense = [0.0f32; 4];
    /// items.row(1)?.decode_into(&mut dense)?;
    /// # Ok(()) }
    /// ```
    pub fn decode_into(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim as u64,
                actual: out.len() as u64,
            });
        }
        out.fill(0.0);
        // Columns were checked to be < dim == out.len() in `parse`.
        self.for_each_nonzero(|c, v| out[c] = v);
        Ok(())
    }

    /// Copies the row into a new dense vector.
    #[cfg(feature = "alloc")]
    pub fn to_dense(&self) -> alloc::vec::Vec<f32> {
        let mut out = alloc::vec![0.0; self.dim];
        self.for_each_nonzero(|c, v| out[c] = v);
        out
    }

    /// Inner product with a dense vector of length [`Self::dim`].
    ///
    /// Sums `query[c] * value` over the non-zeros, in f32: for f32 rows one after another in
    /// increasing column order from 0 (the dense f32 dot product, bit for bit); for f16, bf16
    /// int8 and int4 rows in the fixed eight-lane order described in `kernels` (what an 8-wide
    /// SIMD unit does, reproduced exactly on every machine). For int8 and int4 rows the codes are
    /// summed and the sum multiplied by the row's scale once, so no value is dequantized on
    /// its own. The row scan of `recommend` and `score` use this same function.
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// let score = model.items()?.row(0)?.dot(&[1.0, 0.0, 0.0, 0.0])?;
    /// # let _ = score;
    /// # Ok(()) }
    /// ```
    pub fn dot(&self, query: &[f32]) -> Result<f32> {
        self.check_query(query)?;
        Ok(self.dot_unchecked_len(query))
    }

    /// [`Self::dot`] for a query already known to have length `dim`.
    #[inline]
    pub(crate) fn dot_unchecked_len(&self, query: &[f32]) -> f32 {
        match (self.columns, self.values) {
            (_, Values::F32(_)) => {
                let mut acc = 0.0f32;
                // Columns were checked to be < dim == query.len() in `parse`.
                self.visit_raw(|c, v| acc += query[c] * v);
                acc
            }
            (Columns::U8(columns), values) => {
                let (encoding, values) = match values {
                    Values::F16(v) => (ValueEncoding::F16, v),
                    Values::Bf16(v) => (ValueEncoding::Bf16, v),
                    Values::I4 { values, .. } => (ValueEncoding::I4, values),
                    Values::I8 { values, .. } | Values::F32(values) => (ValueEncoding::I8, values),
                };
                // Let the kernel read on past the row, within the row data.
                let columns_ext = if self.tail.is_empty() {
                    columns
                } else {
                    self.tail
                };
                let values_ext = self.tail.get(self.values_at..).unwrap_or(values);
                kernels::dot8_u8_list(query, columns_ext, values_ext, self.nnz, encoding)
                    * self.scale()
            }
            _ => {
                let mut partial = [0.0f32; 8];
                let mut k = 0usize;
                self.visit_raw(|c, v| {
                    partial[k % 8] += query[c] * v;
                    k += 1;
                });
                kernels::scalar::reduce8(partial) * self.scale()
            }
        }
    }

    /// Inner product with `query` and the row's squared Euclidean norm, in one pass.
    #[inline]
    pub(crate) fn dot_and_norm(&self, query: &[f32]) -> (f32, f32) {
        let mut dot = 0.0f32;
        let mut sq = 0.0f32;
        self.visit_raw(|c, v| {
            dot += query[c] * v;
            sq += v * v;
        });
        let scale = self.scale();
        (dot * scale, sqrt(sq) * scale)
    }

    /// The values of a row with every column non-zero and f32 values: `4·dim` bytes, column
    /// `c` at bytes `4c..4c + 4` (the order [`Self::for_each_nonzero`] visits them in).
    #[inline]
    pub(crate) fn dense_f32_values(&self) -> Option<&'a [u8]> {
        match self.values {
            Values::F32(bytes) if self.nnz == self.dim && bytes.len() == 4 * self.dim => {
                Some(bytes)
            }
            _ => None,
        }
    }

    /// The row's Euclidean norm.
    pub fn norm(&self) -> f32 {
        let mut sq = 0.0f32;
        self.visit_raw(|_, v| sq += v * v);
        sqrt(sq) * self.scale()
    }

    /// The stored bits of the value for `column` (the f32, f16 or bf16 bits, the int8 code as
    /// a byte, the int4 code as a nibble), or `None` when the column is zero.
    pub(crate) fn raw_value(&self, column: usize) -> Option<u32> {
        let k = match self.columns {
            Columns::U8(cols) => cols.binary_search(&u8::try_from(column).ok()?).ok()?,
            Columns::U16(cols) => {
                let target = u16::try_from(column).ok()?;
                let n = cols.len() / 2;
                let (mut lo, mut hi) = (0, n);
                let mut found = None;
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    let c = u16_le(&cols[2 * mid..2 * mid + 2]);
                    match c.cmp(&target) {
                        core::cmp::Ordering::Less => lo = mid + 1,
                        core::cmp::Ordering::Greater => hi = mid,
                        core::cmp::Ordering::Equal => {
                            found = Some(mid);
                            break;
                        }
                    }
                }
                found?
            }
            Columns::Bitmap(bitmap) => {
                let byte = *bitmap.get(column / 8)?;
                if byte & (1 << (column % 8)) == 0 {
                    return None;
                }
                let before: u32 = bitmap[..column / 8].iter().map(|b| b.count_ones()).sum();
                (before + (byte & ((1u8 << (column % 8)) - 1)).count_ones()) as usize
            }
        };
        let (bytes, width) = match self.values {
            Values::F32(b) => (b, 4),
            Values::F16(b) | Values::Bf16(b) => (b, 2),
            Values::I8 { values, .. } => (values, 1),
            Values::I4 { values, .. } => {
                if k >= self.nnz {
                    return None;
                }
                let byte = values.get(k / 2)?;
                return Some(u32::from(if k.is_multiple_of(2) {
                    byte & 0x0F
                } else {
                    byte >> 4
                }));
            }
        };
        crate::le::value_bits(bytes.get(k * width..(k + 1) * width)?)
    }

    /// The int8 or int4 scale as stored (f16 bits), or 0 for other encodings and empty rows.
    pub(crate) fn scale_bits(&self) -> u16 {
        match self.values {
            Values::I8 { scale, .. } | Values::I4 { scale, .. } if self.nnz > 0 => {
                f16::from_f32(scale).to_bits()
            }
            _ => 0,
        }
    }

    /// True when every stored value (and the int8 scale) is finite.
    pub(crate) fn all_finite(&self) -> bool {
        let mut finite = true;
        self.visit_raw(|_, v| finite &= v.is_finite());
        finite
    }

    fn check_query(&self, query: &[f32]) -> Result<()> {
        if query.len() == self.dim {
            Ok(())
        } else {
            Err(Error::DimensionMismatch {
                expected: self.dim as u64,
                actual: query.len() as u64,
            })
        }
    }
}

/// Checks that `columns` is strictly increasing and below `dim`.
fn check_increasing(
    columns: impl Iterator<Item = usize>,
    dim: usize,
) -> core::result::Result<(), &'static str> {
    let mut next_allowed = 0usize;
    for c in columns {
        if c < next_allowed {
            return Err("column indices are not strictly increasing");
        }
        if c >= dim {
            return Err("column index is not below the dimension");
        }
        next_allowed = c + 1;
    }
    Ok(())
}

/// Iterator over a row's `(column, value)` pairs; see [`Row::iter`].
#[derive(Clone, Debug)]
pub struct RowIter<'a> {
    row: Row<'a>,
    position: usize,
    /// Bitmap rows: the byte `bits` came from, the next byte to load, and the bits of
    /// `byte_index` not yet returned.
    byte_index: usize,
    next_byte: usize,
    bits: u8,
}

impl Iterator for RowIter<'_> {
    type Item = (usize, f32);

    fn next(&mut self) -> Option<(usize, f32)> {
        if self.position >= self.row.nnz {
            return None;
        }
        let k = self.position;
        let column = match self.row.columns {
            Columns::U8(cols) => usize::from(*cols.get(k)?),
            Columns::U16(cols) => usize::from(u16_le(cols.get(2 * k..2 * k + 2)?)),
            Columns::Bitmap(bitmap) => {
                while self.bits == 0 {
                    self.byte_index = self.next_byte;
                    self.bits = *bitmap.get(self.next_byte)?;
                    self.next_byte += 1;
                }
                let bit = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                self.byte_index * 8 + bit
            }
        };
        let value = match self.row.values {
            Values::F32(b) => f32_le(b.get(4 * k..4 * k + 4)?),
            Values::F16(b) => f16_to_f32(u16_le(b.get(2 * k..2 * k + 2)?)),
            Values::Bf16(b) => bf16_to_f32(u16_le(b.get(2 * k..2 * k + 2)?)),
            Values::I8 { scale, values } => f32::from(*values.get(k)? as i8) * scale,
            Values::I4 { scale, values } => f32::from(nibble(values, k)) * scale,
        };
        self.position += 1;
        Some((column, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.row.nnz - self.position;
        (left, Some(left))
    }
}
