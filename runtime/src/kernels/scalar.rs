//! Portable kernels: the reference for the SIMD versions.

use crate::format::ValueEncoding;
use crate::row::nibble;

/// IEEE binary16 bits to f32, exactly, without branches (so loops over it vectorize): the
/// exponent and mantissa move into an f32, a multiplication by 2^112 rebiases the exponent
/// (subnormals included, exactly), and infinities and NaNs get the all-ones exponent back.
#[inline(always)]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let bits = u32::from(bits);
    let sign = (bits & 0x8000) << 16;
    let exp_mant = (bits & 0x7fff) << 13;
    let scaled = (f32::from_bits(exp_mant) * f32::from_bits(0x7780_0000)).to_bits();
    let special = if exp_mant >= 0x7c00 << 13 {
        0x7f80_0000
    } else {
        0
    };
    f32::from_bits(scaled | special | sign)
}

/// bfloat16 bits to f32 (exact: bf16 is the top half of an f32).
#[inline(always)]
pub(crate) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// Reduces eight partial sums in the fixed order of the module docs.
#[inline(always)]
pub(crate) fn reduce8(p: [f32; 8]) -> f32 {
    ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))
}

#[inline(always)]
fn lanes<const W: usize>(
    query: &[f32],
    columns: &[u8],
    values: &[u8],
    n: usize,
    decode: impl Fn([u8; W]) -> f32,
) -> f32 {
    let mut partial = [0.0f32; 8];
    let entries = columns.iter().zip(values.chunks_exact(W)).take(n);
    for (k, (&c, value)) in entries.enumerate() {
        let mut v = [0u8; W];
        v.copy_from_slice(value);
        let q = query.get(usize::from(c)).copied().unwrap_or(0.0);
        partial[k % 8] += q * decode(v);
    }
    reduce8(partial)
}

/// [`lanes`] for int4 codes: entry `k` is nibble `k` of `values` (low nibble first).
#[inline(always)]
fn lanes_i4(query: &[f32], columns: &[u8], values: &[u8], n: usize) -> f32 {
    let mut partial = [0.0f32; 8];
    for (k, &c) in columns.iter().take(n.min(2 * values.len())).enumerate() {
        let q = query.get(usize::from(c)).copied().unwrap_or(0.0);
        partial[k % 8] += q * f32::from(nibble(values, k));
    }
    reduce8(partial)
}

/// See [`super::dot8_u8_list`].
pub(crate) fn dot8_u8_list(
    query: &[f32],
    columns: &[u8],
    values: &[u8],
    n: usize,
    encoding: ValueEncoding,
) -> f32 {
    match encoding {
        ValueEncoding::F16 => lanes::<2>(query, columns, values, n, |b| {
            f16_to_f32(u16::from_le_bytes(b))
        }),
        ValueEncoding::Bf16 => lanes::<2>(query, columns, values, n, |b| {
            bf16_to_f32(u16::from_le_bytes(b))
        }),
        ValueEncoding::I8 => lanes::<1>(query, columns, values, n, |b| f32::from(b[0] as i8)),
        ValueEncoding::I4 => lanes_i4(query, columns, values, n),
        ValueEncoding::F32 => lanes::<4>(query, columns, values, n, f32::from_le_bytes),
    }
}

#[inline(always)]
fn scatter<const W: usize>(
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    decode: impl Fn([u8; W]) -> f32,
) -> bool {
    for (item, value) in items.chunks_exact(2).zip(values.chunks_exact(W)) {
        let row = usize::from(u16::from_le_bytes([item[0], item[1]]));
        let mut v = [0u8; W];
        v.copy_from_slice(value);
        match acc.get_mut(row) {
            Some(a) => *a += weight * decode(v),
            None => return false,
        }
    }
    true
}

/// [`scatter`] for int4 codes: entry `k` is nibble `k` of `values` (low nibble first).
#[inline(always)]
fn scatter_i4(acc: &mut [f32], weight: f32, items: &[u8], values: &[u8]) -> bool {
    let n = (items.len() / 2).min(2 * values.len());
    for (k, item) in items.chunks_exact(2).take(n).enumerate() {
        let row = usize::from(u16::from_le_bytes([item[0], item[1]]));
        match acc.get_mut(row) {
            Some(a) => *a += weight * f32::from(nibble(values, k)),
            None => return false,
        }
    }
    true
}

/// See [`super::scatter_add`].
pub(crate) fn scatter_add(
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    encoding: ValueEncoding,
) -> bool {
    match encoding {
        ValueEncoding::F32 => scatter::<4>(acc, weight, items, values, f32::from_le_bytes),
        ValueEncoding::F16 => scatter::<2>(acc, weight, items, values, |b| {
            f16_to_f32(u16::from_le_bytes(b))
        }),
        ValueEncoding::Bf16 => scatter::<2>(acc, weight, items, values, |b| {
            bf16_to_f32(u16::from_le_bytes(b))
        }),
        ValueEncoding::I8 => scatter::<1>(acc, weight, items, values, |b| f32::from(b[0] as i8)),
        ValueEncoding::I4 => scatter_i4(acc, weight, items, values),
    }
}

/// See [`super::bitmap_add`]: each set bit, in order, takes the list's next value.
pub(crate) fn bitmap_add(
    acc: &mut [f32],
    lists: &[super::BitmapList<'_>],
    first: bool,
    encoding: ValueEncoding,
) -> bool {
    if first {
        acc.fill(0.0);
    }
    lists.iter().all(|list| match encoding {
        ValueEncoding::F32 => bitmap_list::<4>(acc, list, f32::from_le_bytes),
        ValueEncoding::F16 => bitmap_list::<2>(acc, list, |b| f16_to_f32(u16::from_le_bytes(b))),
        ValueEncoding::Bf16 => bitmap_list::<2>(acc, list, |b| bf16_to_f32(u16::from_le_bytes(b))),
        ValueEncoding::I8 => bitmap_list::<1>(acc, list, |b| f32::from(b[0] as i8)),
        ValueEncoding::I4 => bitmap_list_i4(acc, list),
    })
}

/// [`bitmap_list`] for int4 codes: the list's values are nibbles `int4_first..int4_first +
/// int4_len` of `list.values`.
#[inline(always)]
fn bitmap_list_i4(acc: &mut [f32], list: &super::BitmapList<'_>) -> bool {
    if list.int4_first + list.int4_len > 2 * list.values.len() {
        return false;
    }
    let mut k = 0usize;
    for (w, word) in list.words.chunks_exact(8).enumerate() {
        let mut bits = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        while bits != 0 {
            let row = 64 * w + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let (Some(a), true) = (acc.get_mut(row), k < list.int4_len) else {
                return false;
            };
            *a += list.weight * f32::from(nibble(list.values, list.int4_first + k));
            k += 1;
        }
    }
    k == list.int4_len
}

#[inline(always)]
fn bitmap_list<const W: usize>(
    acc: &mut [f32],
    list: &super::BitmapList<'_>,
    decode: impl Fn([u8; W]) -> f32,
) -> bool {
    let mut values = list.values.chunks_exact(W);
    for (w, word) in list.words.chunks_exact(8).enumerate() {
        let mut bits = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        while bits != 0 {
            let row = 64 * w + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let (Some(a), Some(value)) = (acc.get_mut(row), values.next()) else {
                return false;
            };
            let mut v = [0u8; W];
            v.copy_from_slice(value);
            *a += list.weight * decode(v);
        }
    }
    values.next().is_none()
}

/// See [`super::finish_scores`].
pub(crate) fn finish_scores(
    scores: &mut [f32],
    user_bias: f32,
    bias: Option<&[u8]>,
    global_bias: f32,
) {
    match bias {
        Some(bias) => {
            for (x, b) in scores.iter_mut().zip(bias.chunks_exact(4)) {
                let item_bias = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                *x = ((*x + user_bias) + item_bias) + global_bias;
            }
        }
        None => {
            for x in scores.iter_mut() {
                *x = ((*x + user_bias) + 0.0) + global_bias;
            }
        }
    }
}

/// The position of the first score that beats `threshold` or is not finite (NaN or
/// infinite), or `scores.len()` when there is none.
pub(crate) fn first_candidate(scores: &[f32], threshold: f32) -> usize {
    scores
        .iter()
        .position(|&s| s > threshold || !s.is_finite())
        .unwrap_or(scores.len())
}

/// Dot products of rows `first..first + out.len()` of a u8-list table with values in
/// `encoding` and u32 offsets: the reference for the SIMD row-scan kernels. Each row
/// is parsed and checked exactly as [`crate::Table::row`] does, and its dot product is
/// [`crate::Row::dot`]'s. On a corrupt row, returns its number.
pub(crate) fn u8_list_dots(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
) -> Result<(), usize> {
    use crate::format::IndexEncoding;
    use crate::le;
    for (k, slot) in out.iter_mut().enumerate() {
        let row = first + k;
        let (Some(start), Some(end)) = (le::u32_at(offsets, row), le::u32_at(offsets, row + 1))
        else {
            return Err(row);
        };
        if start > end {
            return Err(row);
        }
        let parsed = crate::row::Row::parse_in(
            data,
            start as usize,
            end as usize,
            query.len(),
            IndexEncoding::U8List,
            encoding,
        )
        .map_err(|_| row)?;
        *slot = parsed.dot_unchecked_len(query);
    }
    Ok(())
}

/// One non-empty bitmap row record as the SIMD bitmap kernels see it, after
/// [`bitmap_records`] checked it: its columns are `columns[..n]` of the buffer it filled.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) struct BitmapRecord<'a> {
    /// Number of entries (set bits), at least 1.
    pub n: usize,
    /// The row's values (`n` of the encoding, nibble-packed for int4), after the scale.
    pub values: &'a [u8],
    /// Where `values` starts in the row data (the AVX2 kernel reads on past the row there).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub values_at: usize,
    /// The int8 or int4 scale (positive and finite), 1 for other encodings.
    pub scale: f32,
}

/// Walks the bitmap row records of rows `first..first + out.len()` (dimension `dim` at most
/// 256) with the checks of [`bitmap_dots`]: offsets in order and in the data, the record's
/// length against its bitmap and encoding (the scale's bytes, then the values), no bit past
/// the dimension, a positive finite int8 or int4 scale, a zero int4 padding nibble. Each
/// row's columns go to `columns`; an empty row gets 0, any other `dot(columns, record)`.
/// Returns the first bad row.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn bitmap_records(
    dim: usize,
    encoding: ValueEncoding,
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    columns: &mut [u8; 256],
    mut dot: impl FnMut(&[u8; 256], &BitmapRecord<'_>) -> f32,
) -> Result<(), usize> {
    use crate::le;
    let prefix = encoding.row_prefix();
    let bitmap_len = dim.div_ceil(8);
    let Some(mut start) = le::u32_at(offsets, first) else {
        return Err(first);
    };
    for (k, slot) in out.iter_mut().enumerate() {
        let row = first + k;
        let end = le::u32_at(offsets, row + 1).ok_or(row)?;
        let record = data.get(start as usize..end as usize).ok_or(row)?;
        let record_at = start as usize;
        start = end;
        if record.is_empty() {
            *slot = 0.0;
            continue;
        }
        if record.len() < bitmap_len + prefix {
            return Err(row);
        }
        let (bitmap, rest) = record.split_at(bitmap_len);
        if !dim.is_multiple_of(8) && bitmap[bitmap_len - 1] >> (dim % 8) != 0 {
            return Err(row);
        }
        let mut n = 0usize;
        for (w, chunk) in bitmap.chunks(8).enumerate() {
            let mut word = bitmap_word(chunk);
            while word != 0 {
                // At most 256 set bits (dim <= 256), each a column < dim (tail bits checked).
                columns[n & 255] = (w * 64 + word.trailing_zeros() as usize) as u8;
                n += 1;
                word &= word - 1;
            }
        }
        if n == 0 || !encoding.entries_fit(n, rest.len() - prefix) {
            return Err(row);
        }
        if !int4_padding_is_zero(encoding, &rest[prefix..], n) {
            return Err(row);
        }
        let scale = if prefix == 2 {
            let s = f16_to_f32(u16::from_le_bytes([rest[0], rest[1]]));
            if !(s.is_finite() && s > 0.0) {
                return Err(row);
            }
            s
        } else {
            1.0
        };
        let record = BitmapRecord {
            n,
            values: &rest[prefix..],
            values_at: record_at + bitmap_len + prefix,
            scale,
        };
        *slot = dot(columns, &record);
    }
    Ok(())
}

/// False for an int4 row of an odd number `n` of values whose last byte's high nibble (the
/// padding) is not zero; true otherwise.
#[inline(always)]
pub(crate) fn int4_padding_is_zero(encoding: ValueEncoding, values: &[u8], n: usize) -> bool {
    // No branch on the parity (random from row to row): the last byte's high nibble, masked
    // by it (`values` holds exactly the row's `ceil(n / 2)` bytes).
    encoding != ValueEncoding::I4
        || values
            .last()
            .is_none_or(|&b| (b >> 4) & (n as u8 & 1).wrapping_neg() == 0)
}

/// Up to 8 bitmap bytes as a little-endian word (missing high bytes are zero).
#[inline(always)]
pub(crate) fn bitmap_word(chunk: &[u8]) -> u64 {
    match <[u8; 8]>::try_from(chunk) {
        Ok(bytes) => u64::from_le_bytes(bytes),
        Err(_) => chunk
            .iter()
            .enumerate()
            .fold(0, |w, (i, &b)| w | (u64::from(b) << (8 * i))),
    }
}

/// Dot products of rows `first..first + out.len()` of a bitmap table (u32 offsets) with values
/// in `encoding`: one tight loop over the rows, each checked as [`crate::Table::row`] checks it
/// and summed as [`crate::Row::dot`] sums it (sequentially for f32, in eight lanes otherwise).
/// On a corrupt row, returns its number.
pub(crate) fn bitmap_dots(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
) -> Result<(), usize> {
    match encoding {
        ValueEncoding::F32 => {
            bitmap_rows::<true>(query, offsets, data, first, out, encoding, |v, k| {
                f32::from_le_bytes(value_at::<4>(v, k))
            })
        }
        ValueEncoding::F16 => {
            bitmap_rows::<false>(query, offsets, data, first, out, encoding, |v, k| {
                f16_to_f32(u16::from_le_bytes(value_at::<2>(v, k)))
            })
        }
        ValueEncoding::Bf16 => {
            bitmap_rows::<false>(query, offsets, data, first, out, encoding, |v, k| {
                bf16_to_f32(u16::from_le_bytes(value_at::<2>(v, k)))
            })
        }
        ValueEncoding::I8 => {
            bitmap_rows::<false>(query, offsets, data, first, out, encoding, |v, k| {
                f32::from(value_at::<1>(v, k)[0] as i8)
            })
        }
        ValueEncoding::I4 => {
            bitmap_rows::<false>(query, offsets, data, first, out, encoding, |v, k| {
                f32::from(nibble(v, k))
            })
        }
    }
}

/// The `k`-th `W`-byte value of `values` (zeros past the end).
#[inline(always)]
fn value_at<const W: usize>(values: &[u8], k: usize) -> [u8; W] {
    let mut v = [0u8; W];
    if let Some(b) = values.get(W * k..W * k + W) {
        v.copy_from_slice(b);
    }
    v
}

/// [`bitmap_dots`] for one encoding: `value(values, k)` reads a row's `k`-th value.
#[inline(always)]
fn bitmap_rows<const SEQUENTIAL: bool>(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
    value: impl Fn(&[u8], usize) -> f32,
) -> Result<(), usize> {
    use crate::le;
    let prefix = encoding.row_prefix();
    let dim = query.len();
    let bitmap_len = dim.div_ceil(8);
    let Some(mut start) = le::u32_at(offsets, first) else {
        return Err(first);
    };
    for (k, slot) in out.iter_mut().enumerate() {
        let row = first + k;
        let end = le::u32_at(offsets, row + 1).ok_or(row)?;
        let record = data.get(start as usize..end as usize).ok_or(row)?;
        start = end;
        if record.is_empty() {
            *slot = 0.0;
            continue;
        }
        if record.len() < bitmap_len + prefix {
            return Err(row);
        }
        let (bitmap, rest) = record.split_at(bitmap_len);
        if !dim.is_multiple_of(8) && bitmap[bitmap_len - 1] >> (dim % 8) != 0 {
            return Err(row);
        }
        let nnz: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
        if nnz == 0 || !encoding.entries_fit(nnz, rest.len() - prefix) {
            return Err(row);
        }
        if !int4_padding_is_zero(encoding, &rest[prefix..], nnz) {
            return Err(row);
        }
        let scale = if prefix == 2 {
            let s = f16_to_f32(u16::from_le_bytes([rest[0], rest[1]]));
            if !(s.is_finite() && s > 0.0) {
                return Err(row);
            }
            s
        } else {
            1.0
        };
        let values = &rest[prefix..];
        let mut partial = [0.0f32; 8];
        let mut sum = 0.0f32;
        let mut kth = 0usize;
        for (w, chunk) in bitmap.chunks(8).enumerate() {
            let mut word = bitmap_word(chunk);
            while word != 0 {
                let column = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                // `column < dim`: bits past the dimension were checked to be zero.
                let product = query[column] * value(values, kth);
                if SEQUENTIAL {
                    sum += product;
                } else {
                    partial[kth % 8] += product;
                }
                kth += 1;
            }
        }
        *slot = if SEQUENTIAL {
            sum
        } else {
            reduce8(partial) * scale
        };
    }
    Ok(())
}

/// Dot products with `query` of the rows of window `window` of a table of sliced rows into
/// `out` (the window's rows, in order), as [`super::sliced_dots`] describes them: each slice
/// checked by [`crate::sliced::SlicedRows::slice`], then [`slice_dots`], the int8 scales, and
/// the lanes' results placed at their rows. Returns the number of the first slice found
/// corrupt.
pub(crate) fn sliced_dots(
    query: &[f32],
    rows: &crate::sliced::SlicedRows<'_>,
    window: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    use crate::format::SLICE_ROWS;
    let first = window * crate::sliced::WINDOW_SLICES;
    if out.len() != rows.window_rows(window) || query.len() != rows.dim {
        return Err(first);
    }
    let mut marks = [0u8; crate::format::SLICE_WINDOW_ROWS];
    for index in first..first + out.len().div_ceil(SLICE_ROWS) {
        let slice = rows.slice(index).map_err(|_| index)?;
        let mut lanes = [0.0f32; SLICE_ROWS];
        if !slice_dots(query, &slice, rows.encoding, &mut lanes) {
            return Err(index);
        }
        if rows.encoding.is_scaled() {
            for (lane, x) in lanes.iter_mut().enumerate() {
                *x *= slice.scale(lane, rows.encoding);
            }
        }
        if !crate::sliced::SlicedRows::place(&slice.rows, slice.live, &lanes, out, &mut marks) {
            return Err(index);
        }
    }
    if !crate::sliced::SlicedRows::all_marked(&mut marks, out.len()) {
        return Err(first);
    }
    Ok(())
}

/// Dot products with `query` of a slice's sixteen sliced rows (format 1.4) into `out`, each
/// row's products added one after another in column order from +0 (lanes without entries get
/// 0; int8 rows their sum of `query * code`, unscaled). Returns false, `out` then meaningless,
/// if a row's columns are not strictly increasing and below `query.len()`, or the slice's
/// columns and values do not hold the entries its lengths count.
pub(crate) fn slice_dots(
    query: &[f32],
    slice: &crate::sliced::Slice<'_>,
    encoding: ValueEncoding,
    out: &mut [f32; crate::format::SLICE_ROWS],
) -> bool {
    match encoding {
        ValueEncoding::F32 => slice_walk::<4>(query, slice, out, |b| {
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }),
        ValueEncoding::F16 => slice_walk::<2>(query, slice, out, |b| {
            f16_to_f32(u16::from_le_bytes([b[0], b[1]]))
        }),
        ValueEncoding::Bf16 => slice_walk::<2>(query, slice, out, |b| {
            bf16_to_f32(u16::from_le_bytes([b[0], b[1]]))
        }),
        ValueEncoding::I8 => slice_walk::<1>(query, slice, out, |b| f32::from(b[0] as i8)),
        // Sliced rows do not take int4 values (refused at open and by the builder).
        ValueEncoding::I4 => false,
    }
}

/// [`slice_dots`] for values of `W` bytes read by `value`.
#[inline(always)]
fn slice_walk<const W: usize>(
    query: &[f32],
    slice: &crate::sliced::Slice<'_>,
    out: &mut [f32; crate::format::SLICE_ROWS],
    value: impl Fn(&[u8]) -> f32,
) -> bool {
    let mut acc = [0.0f32; crate::format::SLICE_ROWS];
    let mut next_allowed = [0usize; crate::format::SLICE_ROWS];
    let mut columns = slice.columns.iter();
    let mut values = slice.values.chunks_exact(W);
    for t in 0..slice.longest {
        for lane in 0..crate::format::SLICE_ROWS {
            if usize::from(slice.lengths[lane]) <= t {
                continue;
            }
            let (Some(&column), Some(bytes)) = (columns.next(), values.next()) else {
                return false;
            };
            let column = usize::from(column);
            let Some(&q) = query.get(column) else {
                return false;
            };
            if column < next_allowed[lane] {
                return false;
            }
            next_allowed[lane] = column + 1;
            acc[lane] += q * value(bytes);
        }
    }
    *out = acc;
    columns.next().is_none() && values.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one of the 65,536 f16 bit patterns converts exactly as the `half` crate does
    /// (NaNs to NaNs: `half` also quiets signalling NaNs, a difference without effect here,
    /// since any NaN value is an error).
    #[test]
    fn f16_conversion_is_exact_for_every_bit_pattern() {
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits).to_f32();
            let got = f16_to_f32(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "f16 bits {bits:#06x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "f16 bits {bits:#06x}");
            }
        }
    }
}
