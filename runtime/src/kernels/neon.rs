//! NEON kernels for aarch64 (NEON is part of every aarch64 target). Each is the twin of a
//! function in [`super::scalar`] and returns the same bits.

use core::arch::aarch64::*;

use super::scalar;
use crate::format::ValueEncoding;

/// Four f16 values (as little-endian bytes) to f32, with the branchless method of
/// [`scalar::f16_to_f32`], lane-wise.
#[inline(always)]
fn f16x4_to_f32(bits: [u16; 4]) -> float32x4_t {
    // SAFETY: NEON is always available on aarch64 (what `f16_lanes_to_f32` enables); `bits`
    // is 4 readable u16.
    unsafe { f16_lanes_to_f32(vmovl_u16(vld1_u16(bits.as_ptr()))) }
}

/// Four f16 bit patterns (one in the low half of each lane, the high half zero) to f32, with
/// the branchless method of [`scalar::f16_to_f32`], lane-wise: the same bits for every input,
/// NaNs included (the hardware conversion would quiet signalling NaNs).
#[inline]
#[target_feature(enable = "neon")]
fn f16_lanes_to_f32(h: uint32x4_t) -> float32x4_t {
    let sign = vshlq_n_u32::<16>(vandq_u32(h, vdupq_n_u32(0x8000)));
    let exp_mant = vshlq_n_u32::<13>(vandq_u32(h, vdupq_n_u32(0x7fff)));
    let scaled = vreinterpretq_u32_f32(vmulq_f32(
        vreinterpretq_f32_u32(exp_mant),
        vreinterpretq_f32_u32(vdupq_n_u32(0x7780_0000)),
    ));
    let special = vandq_u32(
        vcgeq_u32(exp_mant, vdupq_n_u32(0x7c00 << 13)),
        vdupq_n_u32(0x7f80_0000),
    );
    vreinterpretq_f32_u32(vorrq_u32(vorrq_u32(scaled, special), sign))
}

/// Decodes four values of `encoding` starting at entry `at` of `values` (entries past the end
/// of the slice decode as zero; callers mask them).
#[inline(always)]
fn decode4(values: &[u8], at: usize, encoding: ValueEncoding) -> float32x4_t {
    let Some(width) = encoding.byte_width() else {
        // Int4: `at` is a multiple of 4, so the four codes are the two bytes from `at / 2`.
        let mut raw = [0u8; 8];
        let bytes = values.get(at / 2..).unwrap_or(&[]);
        let take = bytes.len().min(2);
        raw[..take].copy_from_slice(&bytes[..take]);
        // SAFETY: NEON is always available on aarch64; `raw` is 8 readable bytes.
        return unsafe { nibbles8(vld1_u8(raw.as_ptr()))[0] };
    };
    let mut raw = [0u8; 16];
    let bytes = values.get(at * width..).unwrap_or(&[]);
    let take = bytes.len().min(4 * width);
    raw[..take].copy_from_slice(&bytes[..take]);
    let u16s = |r: &[u8; 16]| {
        [
            u16::from_le_bytes([r[0], r[1]]),
            u16::from_le_bytes([r[2], r[3]]),
            u16::from_le_bytes([r[4], r[5]]),
            u16::from_le_bytes([r[6], r[7]]),
        ]
    };
    match encoding {
        ValueEncoding::F16 => f16x4_to_f32(u16s(&raw)),
        ValueEncoding::Bf16 => {
            let b = u16s(&raw).map(|x| u32::from(x) << 16);
            // SAFETY: NEON is always available on aarch64; `b` is 4 readable u32.
            unsafe { vreinterpretq_f32_u32(vld1q_u32(b.as_ptr())) }
        }
        ValueEncoding::I8 | ValueEncoding::I4 => {
            let f = [0, 1, 2, 3].map(|k| f32::from(raw[k] as i8));
            // SAFETY: as above.
            unsafe { vld1q_f32(f.as_ptr()) }
        }
        ValueEncoding::F32 => {
            let f = [0, 1, 2, 3].map(|k| {
                f32::from_le_bytes([raw[4 * k], raw[4 * k + 1], raw[4 * k + 2], raw[4 * k + 3]])
            });
            // SAFETY: as above.
            unsafe { vld1q_f32(f.as_ptr()) }
        }
    }
}

/// The first eight int4 codes of the low four bytes of `bytes` (entry `j` in byte `j / 2`,
/// the low nibble first; nibble `q` is the code `2q + 1`), as two vectors of four f32: the
/// nibbles split, interleaved, moved to the top of their byte and shifted back down with
/// their sign to bit 1, bit 0 set, then widened.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn nibbles8(bytes: uint8x8_t) -> [float32x4_t; 2] {
    let low = vand_u8(bytes, vdup_n_u8(0x0F));
    let high = vshr_n_u8::<4>(bytes);
    let top = vshl_n_s8::<4>(vreinterpret_s8_u8(vzip1_u8(low, high)));
    let codes = vorr_s8(vshr_n_s8::<3>(top), vdup_n_s8(1));
    let wide = vmovl_s8(codes);
    [
        vcvtq_f32_s32(vmovl_s16(vget_low_s16(wide))),
        vcvtq_f32_s32(vmovl_high_s16(wide)),
    ]
}

/// NEON twin of [`scalar::dot8_u8_list`]: two 4-lane accumulators stand for the eight lanes.
pub(super) fn dot8_u8_list(
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
    {
        return scalar::dot8_u8_list(query, columns, values, n, encoding);
    }
    let lane = |k: usize| {
        if k < n {
            query.get(usize::from(columns[k])).copied().unwrap_or(0.0)
        } else {
            0.0
        }
    };
    // SAFETY: NEON is always available on aarch64; every load reads a local array.
    unsafe {
        let mut low = vdupq_n_f32(0.0);
        let mut high = vdupq_n_f32(0.0);
        let mut k = 0;
        while k < n {
            let ql = [lane(k), lane(k + 1), lane(k + 2), lane(k + 3)];
            let qh = [lane(k + 4), lane(k + 5), lane(k + 6), lane(k + 7)];
            let keep = |j: usize| if k + j < n { u32::MAX } else { 0 };
            let ml = [keep(0), keep(1), keep(2), keep(3)];
            let mh = [keep(4), keep(5), keep(6), keep(7)];
            // Masked-off lanes may decode to anything (even NaN): zero them first.
            let vl = vreinterpretq_f32_u32(vandq_u32(
                vreinterpretq_u32_f32(decode4(values, k, encoding)),
                vld1q_u32(ml.as_ptr()),
            ));
            let vh = vreinterpretq_f32_u32(vandq_u32(
                vreinterpretq_u32_f32(decode4(values, k + 4, encoding)),
                vld1q_u32(mh.as_ptr()),
            ));
            low = vaddq_f32(low, vmulq_f32(vld1q_f32(ql.as_ptr()), vl));
            high = vaddq_f32(high, vmulq_f32(vld1q_f32(qh.as_ptr()), vh));
            k += 8;
        }
        // ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))
        let t = vaddq_f32(low, high);
        let u = vadd_f32(vget_low_f32(t), vget_high_f32(t));
        vget_lane_f32::<0>(u) + vget_lane_f32::<1>(u)
    }
}

/// NEON twin of [`scalar::scatter_add`]: values decoded and weighted four at a time.
pub(super) fn scatter_add(
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    encoding: ValueEncoding,
) -> bool {
    let n = (items.len() / 2).min(encoding.values_in(values.len()));
    let mut k = 0;
    let mut products = [0.0f32; 4];
    while k + 4 <= n {
        // SAFETY: NEON is always available on aarch64; `products` is 4 writable f32.
        unsafe {
            vst1q_f32(
                products.as_mut_ptr(),
                vmulq_f32(vdupq_n_f32(weight), decode4(values, k, encoding)),
            );
        }
        for (j, p) in products.iter().enumerate() {
            let at = 2 * (k + j);
            let row = usize::from(u16::from_le_bytes([items[at], items[at + 1]]));
            match acc.get_mut(row) {
                Some(a) => *a += *p,
                None => return false,
            }
        }
        k += 4;
    }
    // k is a multiple of 4: for int4, entry k starts byte k / 2.
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

/// NEON twin of [`scalar::first_candidate`].
pub(super) fn first_candidate(scores: &[f32], threshold: f32) -> usize {
    let mut k = 0;
    while k + 4 <= scores.len() {
        // SAFETY: NEON is always available on aarch64; 4 floats at k are in `scores`.
        let hit = unsafe {
            let v = vld1q_f32(scores.as_ptr().add(k));
            let above = vcgtq_f32(v, vdupq_n_f32(threshold));
            let d = vsubq_f32(v, v);
            // d == d fails only for NaN: x - x is NaN exactly when x is infinite or NaN.
            let bad = vmvnq_u32(vceqq_f32(d, d));
            vmaxvq_u32(vorrq_u32(above, bad)) != 0
        };
        if hit {
            return k + scalar::first_candidate(&scores[k..k + 4], threshold);
        }
        k += 4;
    }
    k + scalar::first_candidate(&scores[k..], threshold)
}

/// The value encoding behind a kernel's const parameter `E`: 1 f32, 2 f16, 3 bf16, 4 int8,
/// 5 int4 (as the dispatcher's `by_encoding!` picks them).
const fn encoding_of(e: u8) -> ValueEncoding {
    match e {
        1 => ValueEncoding::F32,
        2 => ValueEncoding::F16,
        3 => ValueEncoding::Bf16,
        5 => ValueEncoding::I4,
        _ => ValueEncoding::I8,
    }
}

/// Bytes of eight values of encoding `E` (four for int4).
const fn bytes8<const E: u8>() -> usize {
    match encoding_of(E).byte_width() {
        Some(width) => 8 * width,
        None => 4,
    }
}

/// Eight values of encoding `E` from the start of `bytes` (which must hold them), as two
/// vectors of four f32, decoded as [`scalar`] decodes them.
#[inline]
#[target_feature(enable = "neon")]
fn decode8<const E: u8>(bytes: &[u8]) -> [float32x4_t; 2] {
    let b = &bytes[..bytes8::<E>()];
    if E == 5 {
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(b);
        // SAFETY: NEON is always available on aarch64; `raw` is 8 readable bytes.
        return nibbles8(unsafe { vld1_u8(raw.as_ptr()) });
    }
    let p = b.as_ptr();
    // SAFETY: NEON is always available on aarch64. Each load reads 8 or 16 bytes from the
    // start of `b`, which holds 8 values of `E` (32, 16 or 8 bytes: checked by the slicing
    // above); byte loads have no alignment requirement.
    unsafe {
        match E {
            1 => [
                vreinterpretq_f32_u8(vld1q_u8(p)),
                vreinterpretq_f32_u8(vld1q_u8(p.add(16))),
            ],
            2 | 3 => {
                let h = vreinterpretq_u16_u8(vld1q_u8(p));
                if E == 2 {
                    [
                        f16_lanes_to_f32(vmovl_u16(vget_low_u16(h))),
                        f16_lanes_to_f32(vmovl_high_u16(h)),
                    ]
                } else {
                    [
                        vreinterpretq_f32_u32(vshll_n_u16::<16>(vget_low_u16(h))),
                        vreinterpretq_f32_u32(vshll_high_n_u16::<16>(h)),
                    ]
                }
            }
            _ => {
                let codes = vmovl_s8(vld1_s8(p.cast()));
                [
                    vcvtq_f32_s32(vmovl_s16(vget_low_s16(codes))),
                    vcvtq_f32_s32(vmovl_high_s16(codes)),
                ]
            }
        }
    }
}

/// Sixteen values of encoding `E` from the start of `bytes` (which must hold them), as four
/// vectors of four f32 (lanes 0-3, 4-7, 8-11, 12-15).
#[inline]
#[target_feature(enable = "neon")]
fn decode16<const E: u8>(bytes: &[u8]) -> [float32x4_t; 4] {
    let half = bytes8::<E>();
    let [a, b] = decode8::<E>(bytes);
    let [c, d] = decode8::<E>(&bytes[half..]);
    [a, b, c, d]
}

/// Byte `i` is 0xFF for `i < 16`: bytes `16 - k..32 - k` are the mask of the first `k` of
/// sixteen lanes, for `k` in 0..=16.
const PREFIX8: [u8; 32] = {
    let mut p = [0u8; 32];
    let mut i = 0;
    while i < 16 {
        p[i] = 0xFF;
        i += 1;
    }
    p
};

/// [`PREFIX8`] with 32-bit lanes.
const PREFIX32: [u32; 32] = {
    let mut p = [0u32; 32];
    let mut i = 0;
    while i < 16 {
        p[i] = u32::MAX;
        i += 1;
    }
    p
};

/// A query of at most 64 dimensions as four byte planes for `vqtbl4q_u8`: plane `p` holds
/// byte `p` (little-endian) of each of the 64 entries, zero past the query's end.
#[inline]
#[target_feature(enable = "neon")]
fn query_planes(query: &[f32]) -> [uint8x16x4_t; 4] {
    let mut bytes = [0u8; 256];
    for (chunk, q) in bytes.chunks_exact_mut(4).zip(query) {
        chunk.copy_from_slice(&q.to_le_bytes());
    }
    // SAFETY: NEON is always available on aarch64; each `vld4q_u8` reads the 64 bytes at
    // `64 * j` (j < 4) of `bytes`, which is 256 long.
    let [a, b, c, d] = [0, 1, 2, 3].map(|j| unsafe { vld4q_u8(bytes.as_ptr().add(64 * j)) });
    [
        uint8x16x4_t(a.0, b.0, c.0, d.0),
        uint8x16x4_t(a.1, b.1, c.1, d.1),
        uint8x16x4_t(a.2, b.2, c.2, d.2),
        uint8x16x4_t(a.3, b.3, c.3, d.3),
    ]
}

/// The query entries of sixteen columns from [`query_planes`], registers only: one table
/// lookup per byte plane, then the bytes zipped back into floats (a column of 64 or more gives
/// +0: the lookup never reads memory).
#[inline]
#[target_feature(enable = "neon")]
fn lookup_planes(planes: &[uint8x16x4_t; 4], columns: uint8x16_t) -> [float32x4_t; 4] {
    let [b0, b1, b2, b3] = planes.map(|plane| vqtbl4q_u8(plane, columns));
    let (lo01, hi01) = (
        vreinterpretq_u16_u8(vzip1q_u8(b0, b1)),
        vreinterpretq_u16_u8(vzip2q_u8(b0, b1)),
    );
    let (lo23, hi23) = (
        vreinterpretq_u16_u8(vzip1q_u8(b2, b3)),
        vreinterpretq_u16_u8(vzip2q_u8(b2, b3)),
    );
    [
        vzip1q_u16(lo01, lo23),
        vzip2q_u16(lo01, lo23),
        vzip1q_u16(hi01, hi23),
        vzip2q_u16(hi01, hi23),
    ]
    .map(|x| vreinterpretq_f32_u16(x))
}

/// The query entries of sixteen columns from a query zero-padded to 256 entries (any `u8`
/// column is in it: no bounds check, and a column past the query gives +0).
#[inline]
#[target_feature(enable = "neon")]
fn lookup_padded(padded: &[f32; 256], columns: uint8x16_t) -> [float32x4_t; 4] {
    let mut c = [0u8; 16];
    // SAFETY: NEON is always available on aarch64; `c` is 16 writable bytes.
    unsafe { vst1q_u8(c.as_mut_ptr(), columns) };
    let q: [f32; 16] = core::array::from_fn(|l| padded[usize::from(c[l])]);
    // SAFETY: as above; each load reads 4 of the 16 floats of `q`.
    [0, 1, 2, 3].map(|i| unsafe { vld1q_f32(q.as_ptr().add(4 * i)) })
}

/// NEON twin of [`scalar::sliced_dots`] for value encoding `E` (1 f32, 2 f16, 3 bf16, 4 int8),
/// one window at a time: each slice checked by [`crate::sliced::SlicedRows::slice`], then its
/// sixteen lanes as four vectors of four, one accumulator lane per row, as the AVX2 kernel
/// does. Step `t` takes the first `k` lanes (those longer than `t`; lengths do not increase
/// along the lanes), loads sixteen columns and values from where step `t`'s entries start
/// (from a zero-padded copy near the end of the slice), looks up the query entries of the
/// columns (up to 64 dimensions in registers, with table lookups over the query's bytes;
/// above, from a zero-padded copy on the stack) and adds the products to those lanes only
/// (`+ 0.0` to the others, which leaves them as they are: the sums start at +0 and are never
/// -0). Each lane sums its row one product after another in column order from +0, the scalar
/// twin's order, bit for bit. The columns (below the dimension, above the row's previous
/// column) are checked along the way and judged at the end of the slice: no lookup can read
/// outside the query, whatever they hold. Returns the number of the first slice found corrupt.
pub(super) fn sliced_dots<const E: u8>(
    query: &[f32],
    rows: &crate::sliced::SlicedRows<'_>,
    window: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    // SAFETY: the function only enables NEON, which every aarch64 target has.
    unsafe { sliced_dots_neon::<E>(query, rows, window, out) }
}

/// [`sliced_dots`] with NEON enabled, so that its intrinsics inline.
#[target_feature(enable = "neon")]
fn sliced_dots_neon<const E: u8>(
    query: &[f32],
    rows: &crate::sliced::SlicedRows<'_>,
    window: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    let dim = query.len();
    if dim == 0 || dim > 256 {
        // No u8 column reaches past 256: such a table has nothing for the vectors to do.
        return scalar::sliced_dots(query, rows, window, out);
    }
    if dim != rows.dim || out.len() != rows.window_rows(window) {
        return Err(window * crate::sliced::WINDOW_SLICES);
    }
    if dim <= 64 {
        let planes = query_planes(query);
        sliced_window::<E>(rows, window, out, dim, |c| lookup_planes(&planes, c))
    } else {
        let mut padded = [0.0f32; 256];
        padded[..dim].copy_from_slice(query);
        sliced_window::<E>(rows, window, out, dim, |c| lookup_padded(&padded, c))
    }
}

/// The body of [`sliced_dots`], its query entries from `lookup` (sixteen columns at once; a
/// column that is not below `dim` may give anything but must not fault).
#[inline]
#[target_feature(enable = "neon")]
fn sliced_window<const E: u8>(
    rows: &crate::sliced::SlicedRows<'_>,
    window: usize,
    out: &mut [f32],
    dim: usize,
    lookup: impl Fn(uint8x16_t) -> [float32x4_t; 4],
) -> Result<(), usize> {
    use crate::format::{SLICE_ROWS, SLICE_WINDOW_ROWS};
    use crate::sliced::{SlicedRows, WINDOW_SLICES};
    let encoding = encoding_of(E);
    let first_slice = window * WINDOW_SLICES;
    // Sliced rows do not take int4 values (refused at open).
    let Some(width) = encoding.byte_width() else {
        return Err(first_slice);
    };
    let last_column = vdupq_n_u8((dim - 1) as u8);
    let mut marks = [0u8; SLICE_WINDOW_ROWS];
    for index in first_slice..first_slice + out.len().div_ceil(SLICE_ROWS) {
        let slice = rows.slice(index).map_err(|_| index)?;
        let entries = slice.columns.len();
        // Zero-padded copies of the last entries, for loads that would run past them.
        let mut columns_copy = [0u8; 16];
        let mut values_copy = [0u8; 64];
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut previous = vdupq_n_u8(0);
        let mut bad = vdupq_n_u8(0);
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
            // SAFETY: NEON is always available on aarch64. `columns_at` holds 16 bytes (a
            // 16-byte subslice or the 16-byte copy); the masks read bytes, and 32-bit words,
            // `16 - k..32 - k` of the 32-element tables (k <= 16).
            let (columns, active, masks) = unsafe {
                let from = 16 - k;
                let active = vld1q_u8(PREFIX8.as_ptr().add(from));
                let masks = [0, 4, 8, 12].map(|i| vld1q_u32(PREFIX32.as_ptr().add(from + i)));
                (
                    vandq_u8(vld1q_u8(columns_at.as_ptr()), active),
                    active,
                    masks,
                )
            };
            // Below the dimension; above the row's previous column (from the second step on).
            bad = vorrq_u8(bad, vandq_u8(vcgtq_u8(columns, last_column), active));
            if t > 0 {
                bad = vorrq_u8(bad, vandq_u8(vcleq_u8(columns, previous), active));
            }
            previous = vbslq_u8(active, columns, previous);
            let q = lookup(columns);
            let v = decode16::<E>(values_at);
            for i in 0..4 {
                // Inactive lanes may hold any bits (even NaN): zero their products.
                let product = vreinterpretq_f32_u32(vandq_u32(
                    vreinterpretq_u32_f32(vmulq_f32(q[i], v[i])),
                    masks[i],
                ));
                acc[i] = vaddq_f32(acc[i], product);
            }
            at += k;
        }
        if vmaxvq_u8(bad) != 0 {
            return Err(index);
        }
        let mut lanes = [0.0f32; SLICE_ROWS];
        for (i, a) in acc.into_iter().enumerate() {
            // SAFETY: NEON is always available on aarch64; the store writes floats
            // `4 * i..4 * i + 4` (i < 4) of the 16 of `lanes`.
            unsafe { vst1q_f32(lanes.as_mut_ptr().add(4 * i), a) };
        }
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

/// NEON twin of [`scalar::bitmap_dots`] for value encoding `E` (as in [`sliced_dots`]): each
/// row checked as the scalar kernel checks it, its bitmap turned into a list of columns on the
/// stack, then the eight-lane dot product (entry `k` into partial sum `k % 8`, two vectors of
/// four, the fixed reduction) with the query entries read from a zero-padded copy (no bounds
/// checks) and the last group from zero-padded copies of its columns and values (`+0 * +0`
/// in the lanes past the row: adding +0 leaves a partial sum as it is). f32 rows, summed one
/// product after another, go to the scalar kernel.
pub(super) fn bitmap_dots<const E: u8>(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    // SAFETY: the function only enables NEON, which every aarch64 target has.
    unsafe { bitmap_dots_neon::<E>(query, offsets, data, first, out) }
}

/// [`bitmap_dots`] with NEON enabled, so that its intrinsics inline.
#[target_feature(enable = "neon")]
fn bitmap_dots_neon<const E: u8>(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    let encoding = encoding_of(E);
    let dim = query.len();
    if E == 1 || dim == 0 || dim > 256 {
        return scalar::bitmap_dots(query, offsets, data, first, out, encoding);
    }
    let mut padded = [0.0f32; 256];
    padded[..dim].copy_from_slice(query);
    let mut columns = [0u8; 256];
    scalar::bitmap_records(
        dim,
        encoding,
        offsets,
        data,
        first,
        out,
        &mut columns,
        |columns, row| dot8_columns::<E>(&padded, &columns[..row.n], row.values) * row.scale,
    )
}

/// The eight-lane dot product (see the parent module) of the entries `columns` (each below
/// 256) and `values` (one of `E` per column; int4: nibble-packed) with the zero-padded query
/// `padded`.
#[inline]
#[target_feature(enable = "neon")]
fn dot8_columns<const E: u8>(padded: &[f32; 256], columns: &[u8], values: &[u8]) -> f32 {
    let n = columns.len();
    // Where entry k's bytes start, for k a multiple of 8 (whole bytes for int4).
    let at = |k: usize| k / 8 * bytes8::<E>();
    let gather = |c: &[u8]| -> [f32; 8] { core::array::from_fn(|j| padded[usize::from(c[j])]) };
    let mut low = vdupq_n_f32(0.0);
    let mut high = vdupq_n_f32(0.0);
    let mut step = |q: [f32; 8], bytes: &[u8]| {
        let [vl, vh] = decode8::<E>(bytes);
        // SAFETY: NEON is always available on aarch64; each load reads 4 of the 8 floats of
        // `q`.
        let (ql, qh) = unsafe { (vld1q_f32(q.as_ptr()), vld1q_f32(q.as_ptr().add(4))) };
        low = vaddq_f32(low, vmulq_f32(ql, vl));
        high = vaddq_f32(high, vmulq_f32(qh, vh));
    };
    let mut k = 0;
    while k + 8 <= n {
        step(gather(&columns[k..k + 8]), &values[at(k)..at(k + 8)]);
        k += 8;
    }
    if k < n {
        // The last entries, zero-padded: +0 query entries times +0 values in the lanes past n.
        let mut c = [0u8; 8];
        let mut q = [0.0f32; 8];
        c[..n - k].copy_from_slice(&columns[k..]);
        for (j, q) in q[..n - k].iter_mut().enumerate() {
            *q = padded[usize::from(c[j])];
        }
        let mut v = [0u8; 32];
        let left = values.get(at(k)..).unwrap_or(&[]);
        let left = &left[..left.len().min(bytes8::<E>())];
        v[..left.len()].copy_from_slice(left);
        step(q, &v);
    }
    // ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))
    let t = vaddq_f32(low, high);
    let u = vadd_f32(vget_low_f32(t), vget_high_f32(t));
    vget_lane_f32::<0>(u) + vget_lane_f32::<1>(u)
}

/// NEON twin of [`scalar::finish_scores`]: four scores at a time, the same three additions in
/// the same order.
pub(super) fn finish_scores(
    scores: &mut [f32],
    user_bias: f32,
    bias: Option<&[u8]>,
    global_bias: f32,
) {
    // SAFETY: the function only enables NEON, which every aarch64 target has.
    unsafe { finish_scores_neon(scores, user_bias, bias, global_bias) }
}

/// [`finish_scores`] with NEON enabled, so that its intrinsics inline.
#[target_feature(enable = "neon")]
fn finish_scores_neon(scores: &mut [f32], user_bias: f32, bias: Option<&[u8]>, global_bias: f32) {
    let n = match bias {
        Some(b) => scores.len().min(b.len() / 4),
        None => scores.len(),
    };
    let (ub, gb) = (vdupq_n_f32(user_bias), vdupq_n_f32(global_bias));
    let mut k = 0;
    while k + 4 <= n {
        // SAFETY: NEON is always available on aarch64; 4 scores (and 4 biases, 16 bytes) at k
        // are in bounds (k + 4 <= n), and byte loads have no alignment requirement.
        unsafe {
            let p = scores.as_mut_ptr().add(k);
            let item = match bias {
                Some(b) => vreinterpretq_f32_u8(vld1q_u8(b.as_ptr().add(4 * k))),
                None => vdupq_n_f32(0.0),
            };
            vst1q_f32(
                p,
                vaddq_f32(vaddq_f32(vaddq_f32(vld1q_f32(p), ub), item), gb),
            );
        }
        k += 4;
    }
    scalar::finish_scores(
        &mut scores[k..],
        user_bias,
        bias.map(|b| &b[(4 * k).min(b.len())..]),
        global_bias,
    );
}
