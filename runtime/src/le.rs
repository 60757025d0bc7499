//! Little-endian reads from byte slices at any alignment.
//!
//! The runtime never casts file bytes to `&[u32]` or `&[f32]`: every multi-byte value is read
//! with `from_le_bytes`, which compiles to a plain (unaligned) load on little-endian machines.
//! So a model opens from a buffer at any address (an Android asset is only 4-byte aligned) and
//! gives the same answers on big-endian machines.

use crate::format::OffsetWidth;

/// The `u32` at element position `index` (byte `4 * index`).
#[inline]
pub(crate) fn u32_at(bytes: &[u8], index: usize) -> Option<u32> {
    let start = index.checked_mul(4)?;
    let b: [u8; 4] = bytes.get(start..start.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// The `u64` at element position `index` (byte `8 * index`).
#[inline]
pub(crate) fn u64_at(bytes: &[u8], index: usize) -> Option<u64> {
    let start = index.checked_mul(8)?;
    let b: [u8; 8] = bytes.get(start..start.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// The `f32` at element position `index` (byte `4 * index`).
#[inline]
pub(crate) fn f32_at(bytes: &[u8], index: usize) -> Option<f32> {
    u32_at(bytes, index).map(f32::from_bits)
}

/// Row offset number `index` of an offsets section of the given width.
#[inline]
pub(crate) fn offset(bytes: &[u8], width: OffsetWidth, index: usize) -> Option<u64> {
    match width {
        OffsetWidth::U32 => u32_at(bytes, index).map(u64::from),
        OffsetWidth::U64 => u64_at(bytes, index),
    }
}

/// A stored value's bits from its 1, 2 or 4 little-endian bytes (an int8 code, f16/bf16 bits,
/// f32 bits), for comparing two stored values exactly; `None` for another length.
#[inline]
pub(crate) fn value_bits(bytes: &[u8]) -> Option<u32> {
    match *bytes {
        [a] => Some(u32::from(a)),
        [a, b] => Some(u32::from(u16::from_le_bytes([a, b]))),
        [a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d])),
        _ => None,
    }
}

/// The `u32` at byte offset `at`.
#[inline]
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// The `u64` at byte offset `at`.
#[inline]
pub(crate) fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}
