//! NEON kernels for aarch64 (NEON is part of every aarch64 target). Each is the twin of a
//! function in [`super::scalar`] and returns the same bits.

use core::arch::aarch64::*;

use super::scalar;
use crate::format::ValueEncoding;

/// Four f16 values (as little-endian bytes) to f32, with the branchless method of
/// [`scalar::f16_to_f32`], lane-wise.
#[inline(always)]
fn f16x4_to_f32(bits: [u16; 4]) -> float32x4_t {
    // SAFETY: NEON is always available on aarch64; `bits` is 4 readable u16.
    unsafe {
        let h = vmovl_u16(vld1_u16(bits.as_ptr()));
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
}

/// Decodes four values of `encoding` starting at entry `at` of `values` (entries past the end
/// of the slice decode as zero; callers mask them).
#[inline(always)]
fn decode4(values: &[u8], at: usize, encoding: ValueEncoding) -> float32x4_t {
    let width = encoding.width();
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
        ValueEncoding::I8 => {
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
        || n.saturating_mul(encoding.width()) > values.len()
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
    let n = (items.len() / 2).min(values.len() / encoding.width());
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
    let width = encoding.width();
    scalar::scatter_add(
        acc,
        weight,
        &items[2 * k..2 * n],
        &values[width * k..width * n],
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
