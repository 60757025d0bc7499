//! Hot-loop kernels, each with a portable scalar version (the reference) and, where it pays,
//! SIMD versions through `core::arch`: AVX2 + F16C on x86_64 (chosen at run time under `std`,
//! at compile time otherwise) and NEON on aarch64. Every SIMD kernel gives bit-identical
//! results to its scalar twin and is tested against it.

pub(crate) mod scalar;

use crate::format::ValueEncoding;

/// Adds `weight * value` to `acc[item]` for every entry of a posting list (`items`: `u16`
/// little-endian block-local rows; `values`: in `encoding`, int8 as its integer code).
/// Returns false, having added nothing past the end, if an item is not below `acc.len()`.
#[inline]
pub(crate) fn scatter_add(
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    encoding: ValueEncoding,
) -> bool {
    scalar::scatter_add(acc, weight, items, values, encoding)
}
