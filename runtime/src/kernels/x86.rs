//! AVX2 + F16C kernels for x86_64. Each is the twin of a function in [`super::scalar`] and
//! returns the same bits.

use core::arch::x86_64::*;

use super::scalar;
use crate::format::ValueEncoding;

/// Whether the CPU has what these kernels need: known at compile time when the target
/// enables AVX2 and F16C, detected (once, cached by `std`) at run time otherwise.
#[inline(always)]
pub(super) fn available() -> bool {
    #[cfg(all(target_feature = "avx2", target_feature = "f16c"))]
    {
        true
    }
    #[cfg(all(
        feature = "std",
        not(all(target_feature = "avx2", target_feature = "f16c"))
    ))]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(all(
        not(feature = "std"),
        not(all(target_feature = "avx2", target_feature = "f16c"))
    ))]
    {
        false
    }
}

/// Loads 8 bytes from `bytes[at..]` into the low half of a vector; bytes past the end of the
/// slice read as zero.
#[inline(always)]
fn load8(bytes: &[u8], at: usize) -> __m128i {
    let mut buffer = [0u8; 16];
    match bytes.get(at..at.saturating_add(8)) {
        Some(b) => buffer[..8].copy_from_slice(b),
        None => {
            let tail = bytes.get(at..).unwrap_or(&[]);
            buffer[..tail.len()].copy_from_slice(tail);
        }
    }
    // SAFETY: `buffer` is 16 readable bytes; the load has no alignment requirement.
    unsafe { _mm_loadu_si128(buffer.as_ptr().cast()) }
}

/// Loads 16 bytes from `bytes[at..]`; bytes past the end of the slice read as zero.
#[inline(always)]
fn load16(bytes: &[u8], at: usize) -> __m128i {
    match bytes.get(at..at.saturating_add(16)) {
        // SAFETY: the slice holds the 16 bytes read; the load has no alignment requirement.
        Some(b) => unsafe { _mm_loadu_si128(b.as_ptr().cast()) },
        None => {
            let mut buffer = [0u8; 16];
            let tail = bytes.get(at..).unwrap_or(&[]);
            buffer[..tail.len()].copy_from_slice(tail);
            // SAFETY: `buffer` is 16 readable bytes.
            unsafe { _mm_loadu_si128(buffer.as_ptr().cast()) }
        }
    }
}

/// Int4 codes of entries `k..k + 8` (`k` even) of nibble-packed `values` (entry `j` in byte
/// `j / 2`, the low nibble first; nibble `q` is the code `2q + 1`, see `row::int4_code`) as
/// eight f32: the four bytes from `k / 2` as one word in every lane, lane `l`'s nibble shifted
/// to the top, back down with its sign to bit 1, and bit 0 set. Bytes past the end of the
/// slice read as zero.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn nibbles8(values: &[u8], k: usize) -> __m256 {
    let at = k / 2;
    let mut word = [0u8; 4];
    match values.get(at..at.saturating_add(4)) {
        Some(b) => word.copy_from_slice(b),
        None => {
            let tail = values.get(at..).unwrap_or(&[]);
            word[..tail.len()].copy_from_slice(tail);
        }
    }
    let all = _mm256_set1_epi32(i32::from_le_bytes(word));
    let top = _mm256_sllv_epi32(all, _mm256_setr_epi32(28, 24, 20, 16, 12, 8, 4, 0));
    let codes = _mm256_or_si256(_mm256_srai_epi32::<27>(top), _mm256_set1_epi32(1));
    _mm256_cvtepi32_ps(codes)
}

/// Sixteen int4 codes from the eight bytes of the low half of `bytes` (the low nibble of each
/// byte first; nibble `q` is the code `2q + 1`), as sixteen signed bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn nibbles16(bytes: __m128i) -> __m128i {
    let low_nibbles = _mm_set1_epi8(0x0F);
    let low = _mm_and_si128(bytes, low_nibbles);
    let high = _mm_and_si128(_mm_srli_epi16::<4>(bytes), low_nibbles);
    let nibbles = _mm_unpacklo_epi8(low, high);
    // Nibble n (0..15: the table lookup reads only its low four bits) to its code: q is n
    // taken as a signed 4-bit number, the code 2q + 1.
    let codes = _mm_setr_epi8(1, 3, 5, 7, 9, 11, 13, 15, -15, -13, -11, -9, -7, -5, -3, -1);
    _mm_shuffle_epi8(codes, nibbles)
}

/// AVX2 twin of [`scalar::dot8_u8_list`]: lane `l` of an 8-wide accumulator takes entries
/// `l, l + 8, ...`, then the fixed reduction.
///
/// # Safety
/// The CPU must support AVX2 and F16C ([`available`]).
#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn dot8_u8_list(
    query: &[f32],
    columns: &[u8],
    values: &[u8],
    n: usize,
    encoding: ValueEncoding,
) -> f32 {
    if encoding == ValueEncoding::F32
        || n > columns.len()
        || encoding
            .value_bytes(n)
            .is_none_or(|bytes| bytes > values.len())
        || query.len() > i32::MAX as usize
    {
        return scalar::dot8_u8_list(query, columns, values, n, encoding);
    }
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let last_column = _mm256_set1_epi32(query.len() as i32 - 1);
    let mut acc = _mm256_setzero_ps();
    let mut k = 0;
    while k < n {
        let active = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - k) as i32), lane);
        let columns8 = _mm256_cvtepu8_epi32(load8(columns, k));
        // Memory safety does not rest on the caller: a column past the query leaves SIMD.
        let outside = _mm256_and_si256(_mm256_cmpgt_epi32(columns8, last_column), active);
        if _mm256_movemask_epi8(outside) != 0 {
            return scalar::dot8_u8_list(query, columns, values, n, encoding);
        }
        // SAFETY: every active lane's column is in 0..query.len() (checked just above) and
        // inactive lanes are not loaded (mask).
        let q = unsafe {
            _mm256_mask_i32gather_ps::<4>(
                _mm256_setzero_ps(),
                query.as_ptr(),
                columns8,
                _mm256_castsi256_ps(active),
            )
        };
        let v = match encoding {
            ValueEncoding::F16 => _mm256_cvtph_ps(load16(values, 2 * k)),
            ValueEncoding::Bf16 => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(
                _mm256_cvtepu16_epi32(load16(values, 2 * k)),
            )),
            ValueEncoding::I4 => nibbles8(values, k),
            _ => _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(values, k))),
        };
        // Inactive lanes may hold any bits (even NaN): zero them before multiplying.
        let v = _mm256_and_ps(v, _mm256_castsi256_ps(active));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(q, v));
        k += 8;
    }
    // ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))
    let t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let u = _mm_add_ps(t, _mm_movehl_ps(t, t));
    _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps::<1>(u, u)))
}

/// The value encoding behind a kernel's const parameter `E`: 1 f32, 2 f16, 3 bf16, 4 int8,
/// 5 int4 (as [`super::u8_list_dots`] and [`super::bitmap_dots`] pick them).
pub(super) const fn encoding_of(e: u8) -> ValueEncoding {
    match e {
        1 => ValueEncoding::F32,
        2 => ValueEncoding::F16,
        3 => ValueEncoding::Bf16,
        5 => ValueEncoding::I4,
        _ => ValueEncoding::I8,
    }
}

/// AVX2 twin of [`scalar::u8_list_dots`] for one value encoding `E` (its code: 1 f32, 2 f16,
/// 3 bf16, 4 int8, 5 int4): the whole row loop in one function, so that every intrinsic inlines. Rows
/// it cannot take quickly (more than 16 entries) go through the scalar path for that row.
/// For f32 the products are computed eight at a time and then added one after another, in
/// column order, as the scalar sequential sum does.
///
/// # Safety
/// The CPU must support AVX2 and F16C ([`available`]).
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn u8_list_dots<const E: u8>(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    let encoding = encoding_of(E);
    let prefix = encoding.row_prefix();
    let dim = query.len();
    if dim == 0 || dim > 256 {
        return scalar::u8_list_dots(query, offsets, data, first, out, encoding);
    }
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let sign = _mm_set1_epi8(i8::MIN);
    let Some(mut start) = super::super::le::u32_at(offsets, first) else {
        return Err(first);
    };
    for (k, slot) in out.iter_mut().enumerate() {
        let row = first + k;
        let Some(end) = super::super::le::u32_at(offsets, row + 1) else {
            return Err(row);
        };
        let (s, e) = (start as usize, end as usize);
        start = end;
        if s > e || e > data.len() {
            return Err(row);
        }
        let len = e - s;
        if len == 0 {
            *slot = 0.0;
            continue;
        }
        let n = match len
            .checked_sub(prefix)
            .and_then(|body| encoding.entries_in(body, 1))
        {
            Some(n) if n > 0 && n <= dim => n,
            _ => return Err(row),
        };
        if n > 16 {
            scalar::u8_list_dots(
                query,
                offsets,
                data,
                row,
                core::slice::from_mut(slot),
                encoding,
            )?;
            continue;
        }
        let tail = &data[s..];
        // Columns strictly increasing: compare each of the first n bytes with the next one
        // (unsigned, via the sign flip), and the last one with the dimension.
        let columns = load16(tail, 0);
        let next = _mm_srli_si128::<1>(columns);
        let increasing = _mm_cmpgt_epi8(_mm_xor_si128(next, sign), _mm_xor_si128(columns, sign));
        let needed = (1u32 << (n - 1)) - 1;
        let last = usize::from(tail[n - 1]);
        if (_mm_movemask_epi8(increasing) as u32) & needed != needed || last >= dim {
            return Err(row);
        }
        let scale = if E == 4 || E == 5 {
            let s = scalar::f16_to_f32(u16::from_le_bytes([tail[n], tail[n + 1]]));
            if !(s.is_finite() && s > 0.0) {
                return Err(row);
            }
            s
        } else {
            1.0
        };
        let values = &tail[n + prefix..];
        // An odd int4 row: the last byte's high nibble is padding, and must be 0 (no branch
        // on the parity, which is random from row to row).
        if E == 5 && (tail[len - 1] >> 4) & (n as u8 & 1).wrapping_neg() != 0 {
            return Err(row);
        }
        let mut acc = _mm256_setzero_ps();
        let mut sequential = 0.0f32;
        let mut at = 0;
        while at < n {
            let active = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - at) as i32), lane);
            let columns8 = _mm256_cvtepu8_epi32(if at == 0 {
                columns
            } else {
                _mm_srli_si128::<8>(columns)
            });
            // SAFETY: active lanes hold columns checked above to be < dim == query.len();
            // inactive lanes are masked out and not loaded.
            let q = unsafe {
                _mm256_mask_i32gather_ps::<4>(
                    _mm256_setzero_ps(),
                    query.as_ptr(),
                    columns8,
                    _mm256_castsi256_ps(active),
                )
            };
            let v = match E {
                1 => _mm256_castsi256_ps(_mm256_set_m128i(
                    load16(values, 4 * at + 16),
                    load16(values, 4 * at),
                )),
                2 => _mm256_cvtph_ps(load16(values, 2 * at)),
                3 => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(load16(
                    values,
                    2 * at,
                )))),
                5 => nibbles8(values, at),
                _ => _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(values, at))),
            };
            let v = _mm256_and_ps(v, _mm256_castsi256_ps(active));
            if E == 1 {
                // Sequential: add the active products one by one, in column order.
                let mut products = [0.0f32; 8];
                // SAFETY: `products` is 8 writable f32.
                unsafe { _mm256_storeu_ps(products.as_mut_ptr(), _mm256_mul_ps(q, v)) };
                for p in &products[..(n - at).min(8)] {
                    sequential += *p;
                }
            } else {
                acc = _mm256_add_ps(acc, _mm256_mul_ps(q, v));
            }
            at += 8;
        }
        if E == 1 {
            *slot = sequential;
            continue;
        }
        let t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let u = _mm_add_ps(t, _mm_movehl_ps(t, t));
        *slot = _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps::<1>(u, u))) * scale;
    }
    Ok(())
}

/// AVX2 twin of [`scalar::scatter_add`]: eight values decoded and weighted at once, the
/// eight rows checked against the accumulator at once, then added entry by entry (AVX2 has no
/// scatter).
///
/// # Safety
/// The CPU must support AVX2 and F16C ([`available`]).
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn scatter_add(
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    encoding: ValueEncoding,
) -> bool {
    let n = (items.len() / 2).min(encoding.values_in(values.len()));
    if acc.len() > i32::MAX as usize {
        return scalar::scatter_add(acc, weight, items, values, encoding);
    }
    let w = _mm256_set1_ps(weight);
    let last_row = _mm256_set1_epi32(acc.len() as i32 - 1);
    let mut products = [0.0f32; 8];
    let mut rows = [0u32; 8];
    let mut k = 0;
    while k + 8 <= n {
        let rows8 = _mm256_cvtepu16_epi32(load16(items, 2 * k));
        if _mm256_movemask_epi8(_mm256_cmpgt_epi32(rows8, last_row)) != 0 {
            // A row past the accumulator: the scalar path adds up to it and reports it.
            break;
        }
        let v = match encoding {
            ValueEncoding::F16 => _mm256_cvtph_ps(load16(values, 2 * k)),
            ValueEncoding::Bf16 => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(
                _mm256_cvtepu16_epi32(load16(values, 2 * k)),
            )),
            ValueEncoding::I8 => _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(values, k))),
            ValueEncoding::I4 => nibbles8(values, k),
            // SAFETY: 8 entries of 4 bytes are in `values` (k + 8 <= n).
            ValueEncoding::F32 => unsafe { _mm256_loadu_ps(values.as_ptr().add(4 * k).cast()) },
        };
        // SAFETY: `products` and `rows` are 8 writable elements each.
        unsafe {
            _mm256_storeu_ps(products.as_mut_ptr(), _mm256_mul_ps(w, v));
            _mm256_storeu_si256(rows.as_mut_ptr().cast(), rows8);
        }
        for (&row, &p) in rows.iter().zip(&products) {
            // SAFETY: every row of this group was checked above to be < acc.len().
            unsafe { *acc.get_unchecked_mut(row as usize) += p };
        }
        k += 8;
    }
    // k is a multiple of 8: for int4, entry k starts byte k / 2.
    let (from, to) = match encoding.byte_width() {
        Some(width) => (width * k, width * n),
        None => (k / 2, values.len()),
    };
    scalar::scatter_add(
        acc,
        weight,
        &items[2 * k..2 * n],
        &values[from..to],
        encoding,
    )
}

/// AVX2 twin of [`scalar::first_candidate`].
///
/// # Safety
/// The CPU must support AVX2 ([`available`]).
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn first_candidate(scores: &[f32], threshold: f32) -> usize {
    let t = _mm256_set1_ps(threshold);
    let mut k = 0;
    while k + 8 <= scores.len() {
        // SAFETY: 8 floats at k are in `scores` (k + 8 <= len).
        let v = unsafe { _mm256_loadu_ps(scores.as_ptr().add(k)) };
        let above = _mm256_cmp_ps::<_CMP_GT_OQ>(v, t);
        // x - x is 0 for finite x and NaN for infinities and NaNs.
        let d = _mm256_sub_ps(v, v);
        let bad = _mm256_cmp_ps::<_CMP_UNORD_Q>(d, d);
        let mask = _mm256_movemask_ps(_mm256_or_ps(above, bad));
        if mask != 0 {
            return k + mask.trailing_zeros() as usize;
        }
        k += 8;
    }
    k + scalar::first_candidate(&scores[k..], threshold)
}

/// AVX2 twin of [`scalar::finish_scores`].
///
/// # Safety
/// The CPU must support AVX2 ([`available`]).
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn finish_scores(
    scores: &mut [f32],
    user_bias: f32,
    bias: Option<&[u8]>,
    global_bias: f32,
) {
    let n = match bias {
        Some(b) => scores.len().min(b.len() / 4),
        None => scores.len(),
    };
    let (ub, gb) = (_mm256_set1_ps(user_bias), _mm256_set1_ps(global_bias));
    let mut k = 0;
    while k + 8 <= n {
        // SAFETY: 8 scores (and 8 biases, 32 bytes) at k are in bounds (k + 8 <= n).
        unsafe {
            let p = scores.as_mut_ptr().add(k);
            let item = match bias {
                Some(b) => _mm256_loadu_ps(b.as_ptr().add(4 * k).cast()),
                None => _mm256_setzero_ps(),
            };
            let x = _mm256_add_ps(
                _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(p), ub), item),
                gb,
            );
            _mm256_storeu_ps(p, x);
        }
        k += 8;
    }
    scalar::finish_scores(
        &mut scores[k..],
        user_bias,
        bias.map(|b| &b[(4 * k).min(b.len())..]),
        global_bias,
    );
}

/// AVX2 twin of [`scalar::bitmap_dots`] for one value encoding `E` (1 f32, 2 f16, 3 bf16,
/// 4 int8, 5 int4): each row's bitmap becomes a list of columns on the stack, then the eight-lane dot
/// of [`dot8_u8_list`] (f32: products summed one after another, in column order).
///
/// # Safety
/// The CPU must support AVX2 and F16C ([`available`]).
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn bitmap_dots<const E: u8>(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    let encoding = encoding_of(E);
    let dim = query.len();
    if dim == 0 || dim > 256 {
        return scalar::bitmap_dots(query, offsets, data, first, out, encoding);
    }
    let mut columns = [0u8; 256];
    scalar::bitmap_records(
        dim,
        encoding,
        offsets,
        data,
        first,
        out,
        &mut columns,
        |columns, row| {
            if E == 1 {
                let mut sum = 0.0f32;
                for (&c, v) in columns[..row.n].iter().zip(row.values.chunks_exact(4)) {
                    sum += query[usize::from(c)] * f32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                }
                sum
            } else {
                // Hand the kernel the whole column buffer and the row data to its end, so that
                // its 8-wide loads never need a copy; lanes past `n` are masked.
                let values_ext = data.get(row.values_at..).unwrap_or(row.values);
                // SAFETY: same CPU features as this function.
                unsafe { dot8_u8_list(query, columns, values_ext, row.n, encoding) * row.scale }
            }
        },
    )
}

/// AVX2 twin of [`scalar::sliced_dots`] for value encoding `E` (as [`encoding_of`] reads it),
/// one window at a time: each slice checked by [`crate::sliced::SlicedRows::slice`], then its
/// sixteen lanes as two vectors of eight, one accumulator lane per row. Step `t` takes the
/// first `k` lanes (those longer than `t`; lengths do not increase along the lanes), loads
/// sixteen columns and values from where step `t`'s entries start (from a zero-padded copy
/// near the end of the row data), checks the first `k` columns (below the dimension, above the
/// row's previous column), gathers their query entries and adds the products to those lanes
/// only (`+ 0.0` to the others, which leaves them as they are: the sums start at +0 and are
/// never -0). Each lane sums its row one product after another in column order from +0, the
/// scalar twin's order, bit for bit. Returns the number of the first slice found corrupt.
///
/// # Safety
/// The CPU must support AVX2 and F16C ([`available`]).
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn sliced_dots<const E: u8>(
    query: &[f32],
    rows: &crate::sliced::SlicedRows<'_>,
    window: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    use crate::format::{SLICE_ROWS, SLICE_WINDOW_ROWS};
    use crate::sliced::{SlicedRows, WINDOW_SLICES};
    let encoding = encoding_of(E);
    let dim = query.len();
    let first_slice = window * WINDOW_SLICES;
    // Sliced rows do not take int4 values (refused at open): nothing of width 0 to walk.
    let Some(width) = encoding.byte_width() else {
        return Err(first_slice);
    };
    if dim == 0 || dim > 256 || dim != rows.dim || out.len() != rows.window_rows(window) {
        return Err(first_slice);
    }
    // Byte `i` is 0xFF for `i < k`, for `k` in 0..=16: the first `k` lanes.
    let mut prefix = [0u8; 32];
    prefix[..16].fill(0xFF);
    let mut marks = [0u8; SLICE_WINDOW_ROWS];
    for index in first_slice..first_slice + out.len().div_ceil(SLICE_ROWS) {
        let slice = rows.slice(index).map_err(|_| index)?;
        let entries = slice.columns.len();
        // Zero-padded copies of the last entries, for loads that would run past them.
        let mut columns_copy = [0u8; 16];
        let mut values_copy = [0u8; 64];
        // SAFETY: AVX2 and F16C are enabled (this function's contract). Every load reads 16
        // bytes of `columns` and `16 * width` of `values`, each within a slice of that length
        // (the entries from `at` on, or a zero-padded copy of what is left of them). The
        // gather reads `query[c]` for the lanes whose columns `c` were just checked below `dim`.
        let lanes = unsafe {
            let mut acc = [_mm256_setzero_ps(); 2];
            let mut previous = _mm_setzero_si128();
            let last_column = _mm_set1_epi8((dim - 1) as u8 as i8);
            let mut bad = _mm_setzero_si128();
            let mut at = 0usize;
            let mut k = SLICE_ROWS;
            for t in 0..slice.longest {
                while k > 0 && usize::from(slice.lengths[k - 1]) <= t {
                    k -= 1;
                }
                let columns_at = match slice.columns.get(at..at + 16) {
                    Some(c) => c,
                    None => {
                        let left = &slice.columns[at.min(entries)..];
                        columns_copy.fill(0);
                        columns_copy[..left.len()].copy_from_slice(left);
                        &columns_copy[..]
                    }
                };
                let values_at = match slice.values.get(at * width..(at + 16) * width) {
                    Some(v) => v,
                    None => {
                        let left = &slice.values[(at * width).min(slice.values.len())..];
                        values_copy.fill(0);
                        values_copy[..left.len()].copy_from_slice(left);
                        &values_copy[..16 * width]
                    }
                };
                let active = _mm_loadu_si128(prefix.as_ptr().add(16 - k).cast());
                let columns = _mm_and_si128(_mm_loadu_si128(columns_at.as_ptr().cast()), active);
                // Below the dimension: max(c, dim - 1) == dim - 1; above the previous column
                // (from the second step on): max(previous, c) != previous.
                let within = _mm_cmpeq_epi8(_mm_max_epu8(columns, last_column), last_column);
                bad = _mm_or_si128(bad, _mm_andnot_si128(within, active));
                if t > 0 {
                    let repeat = _mm_cmpeq_epi8(_mm_max_epu8(previous, columns), previous);
                    bad = _mm_or_si128(bad, _mm_and_si128(repeat, active));
                }
                if _mm_movemask_epi8(bad) != 0 {
                    return Err(index);
                }
                previous = _mm_blendv_epi8(previous, columns, active);
                let halves = [
                    (active, columns),
                    (_mm_srli_si128::<8>(active), _mm_srli_si128::<8>(columns)),
                ];
                for (half, (active, columns)) in halves.into_iter().enumerate() {
                    let mask = _mm256_cvtepi8_epi32(active);
                    let index = _mm256_cvtepu8_epi32(columns);
                    let weights = _mm256_mask_i32gather_ps::<4>(
                        _mm256_setzero_ps(),
                        query.as_ptr(),
                        index,
                        _mm256_castsi256_ps(mask),
                    );
                    let from = values_at.as_ptr().add(8 * half * width);
                    let values = match E {
                        1 => _mm256_loadu_ps(from.cast()),
                        2 => _mm256_cvtph_ps(_mm_loadu_si128(from.cast())),
                        3 => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
                            _mm_loadu_si128(from.cast()),
                        ))),
                        _ => _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(from.cast()))),
                    };
                    let product =
                        _mm256_and_ps(_mm256_mul_ps(weights, values), _mm256_castsi256_ps(mask));
                    acc[half] = _mm256_add_ps(acc[half], product);
                }
                at += k;
            }
            let mut lanes = [0.0f32; SLICE_ROWS];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc[1]);
            lanes
        };
        let mut lanes = lanes;
        if E == 4 {
            for (lane, x) in lanes.iter_mut().enumerate() {
                *x *= slice.scale(lane, encoding);
            }
        }
        if !SlicedRows::place(&slice.rows, slice.live, &lanes, out, &mut marks) {
            return Err(index);
        }
    }
    if !SlicedRows::all_marked(&mut marks, out.len()) {
        return Err(first_slice);
    }
    Ok(())
}
