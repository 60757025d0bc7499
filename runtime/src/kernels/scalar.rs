//! Portable kernels: the reference for the SIMD versions.

use half::f16;

use crate::format::ValueEncoding;

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
            f16::from_bits(u16::from_le_bytes(b)).to_f32()
        }),
        ValueEncoding::Bf16 => scatter::<2>(acc, weight, items, values, |b| {
            f32::from_bits(u32::from(u16::from_le_bytes(b)) << 16)
        }),
        ValueEncoding::I8 => scatter::<1>(acc, weight, items, values, |b| f32::from(b[0] as i8)),
    }
}
