//! AVX-512 kernels for x86_64 (used when the CPU has them, detected at run time under `std`).
//! Each is the twin of a function in [`super::scalar`] and returns the same bits; where a
//! kernel cannot take its input quickly it hands it to the AVX2 twin in [`super::x86`].

use core::arch::x86_64::*;

use super::x86::{self, encoding_of};
use super::{Prefetch, scalar};
use crate::format::ValueEncoding;

/// Sixteen values of encoding code `$e` (1 f32, 2 f16, 3 bf16, 4 int8 codes, as
/// [`encoding_of`] reads them; not 5, int4, whose kernels decode nibbles themselves) from the
/// byte pointer `$at`, as sixteen f32; only the lanes of the 16-bit mask `$mask` are read, the
/// others are +0 (with a constant all-ones mask the compiler emits plain loads). Intrinsics only: use it inside an `unsafe` block of a function
/// with AVX-512F, BW, VL and F16C, whose SAFETY comment covers the bytes read.
macro_rules! load16 {
    ($e:expr, $mask:expr, $at:expr) => {{
        let (mask, at): (__mmask16, *const u8) = ($mask, $at);
        match $e {
            1 => _mm512_maskz_loadu_ps(mask, at.cast()),
            2 => _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, at.cast())),
            3 => _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(
                _mm256_maskz_loadu_epi16(mask, at.cast()),
            ))),
            _ => _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, at.cast()))),
        }
    }};
}

/// Whether the CPU has AVX-512F (run-time detection under `std`).
#[inline(always)]
pub(super) fn available() -> bool {
    #[cfg(feature = "std")]
    {
        x86::available() && std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

/// How [`scatter_add`] adds sixteen products into the accumulator.
pub(super) struct Scatter;

impl Scatter {
    /// A masked gather, an add and a masked scatter (fast on Intel's AVX-512 cores).
    pub(super) const GATHER: u8 = 0;
    /// Sixteen scalar additions from a stack copy of the products, each row read as one
    /// `u16` (2.27 times faster than [`Scatter::GATHER`] on AMD's Zen 4, whose AVX-512 gather
    /// and scatter are slow: criterion `kernel/scatter-add`, docs/BENCHMARKS.md).
    pub(super) const STASH: u8 = 1;

    /// The way for this CPU: [`Scatter::STASH`] on AMD processors, [`Scatter::GATHER`]
    /// otherwise.
    #[inline(always)]
    pub(super) fn preferred() -> u8 {
        if amd() {
            Scatter::STASH
        } else {
            Scatter::GATHER
        }
    }
}

/// Whether the CPU's vendor string (CPUID leaf 0) is AMD's.
#[inline(always)]
fn amd() -> bool {
    #[cfg(feature = "std")]
    {
        static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AMD.get_or_init(|| {
            let id = __cpuid(0);
            // "AuthenticAMD" in EBX, EDX, ECX.
            (id.ebx, id.edx, id.ecx) == (0x6874_7541, 0x6974_6E65, 0x444D_4163)
        })
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

/// [`scatter_add`] the way `way` says ([`Scatter::GATHER`] or [`Scatter::STASH`]).
///
/// # Safety
/// As [`scatter_add`]'s.
#[inline]
pub(super) unsafe fn scatter_add_way(
    way: u8,
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    encoding: ValueEncoding,
    ahead: &mut Prefetch<'_>,
) -> bool {
    // SAFETY: the caller's promise is `scatter_add`'s.
    unsafe {
        match way {
            Scatter::STASH => {
                scatter_add::<{ Scatter::STASH }>(acc, weight, items, values, encoding, ahead)
            }
            _ => scatter_add::<{ Scatter::GATHER }>(acc, weight, items, values, encoding, ahead),
        }
    }
}

/// AVX-512 twin of [`scalar::scatter_add`]: sixteen entries at a time are decoded and
/// multiplied by the weight, the last group under a mask; one line of each of `ahead`'s ranges
/// is prefetched per group, the rest at the end. How the sixteen products reach the
/// accumulator is [`Scatter`]'s choice: a gather, an add and a scatter, or sixteen scalar
/// additions from a stack copy of the products (faster where the CPU scatters slowly).
/// Either way each row gets `acc + weight * value`, in list order. Rows within a posting
/// list are strictly increasing (checked by `verify`), so a group never names a row twice; if
/// a damaged list did, the gather/scatter way would lose one of its additions, which is a
/// wrong answer for a damaged file, never an access outside the accumulator (all rows are
/// bounds-checked first).
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and F16C ([`available`]).
#[target_feature(enable = "avx512f,avx2,f16c")]
pub(super) unsafe fn scatter_add<const S: u8>(
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    encoding: ValueEncoding,
    ahead: &mut Prefetch<'_>,
) -> bool {
    let n = (items.len() / 2).min(encoding.values_in(values.len()));
    if acc.len() > i32::MAX as usize {
        ahead.rest();
        return scalar::scatter_add(acc, weight, items, values, encoding);
    }
    // The bytes of entries `k..k + count` (`k` a multiple of 16: whole bytes for int4, whose
    // last byte may hold a padding nibble past entry `n`).
    let span = |k: usize, count: usize| match encoding.byte_width() {
        Some(width) => (width * k, width * (k + count)),
        None => (k / 2, (k + count).div_ceil(2)),
    };
    let w = _mm512_set1_ps(weight);
    let last_row = _mm512_set1_epi32(acc.len() as i32 - 1);
    // Sixteen rows and values from 32 bytes of rows and the bytes of 16 values.
    let decode = |rows: &[u8], at: &[u8]| {
        // SAFETY: the callers pass at least 32 bytes of rows and the bytes of 16 values (8
        // for int4); unaligned loads.
        unsafe {
            let rows = _mm512_cvtepu16_epi32(_mm256_loadu_si256(rows.as_ptr().cast()));
            let at = at.as_ptr();
            let v = match encoding {
                ValueEncoding::F32 => _mm512_loadu_ps(at.cast()),
                ValueEncoding::F16 => _mm512_cvtph_ps(_mm256_loadu_si256(at.cast())),
                ValueEncoding::Bf16 => _mm512_castsi512_ps(_mm512_slli_epi32::<16>(
                    _mm512_cvtepu16_epi32(_mm256_loadu_si256(at.cast())),
                )),
                ValueEncoding::I8 => {
                    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(at.cast())))
                }
                ValueEncoding::I4 => _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(x86::nibbles16(
                    _mm_loadl_epi64(at.cast()),
                ))),
            };
            (rows, v)
        }
    };
    let mut k = 0;
    while k < n {
        // Sixteen entries, or the last 1 to 15 copied into zero-padded buffers, under a mask.
        let count = (n - k).min(16);
        let lanes = ((1u32 << count) - 1) as __mmask16;
        let (from, to) = span(k, count);
        let (rows, v) = if count == 16 {
            ahead.step();
            decode(&items[2 * k..2 * k + 32], &values[from..to])
        } else {
            let (mut rows_tail, mut values_tail) = ([0u8; 32], [0u8; 64]);
            rows_tail[..2 * count].copy_from_slice(&items[2 * k..2 * n]);
            values_tail[..to - from].copy_from_slice(&values[from..to]);
            decode(&rows_tail, &values_tail)
        };
        if _mm512_mask_cmpgt_epi32_mask(lanes, rows, last_row) != 0 {
            ahead.rest();
            let (items, values) = (&items[2 * k..], &values[from..]);
            return scalar::scatter_add(acc, weight, items, values, encoding);
        }
        if S == Scatter::GATHER {
            // SAFETY: every row of an active lane is < acc.len() (checked just above);
            // inactive lanes are neither read nor written.
            unsafe {
                let zero = _mm512_setzero_ps();
                let current = _mm512_mask_i32gather_ps::<4>(zero, lanes, rows, acc.as_ptr().cast());
                let sum = _mm512_add_ps(current, _mm512_mul_ps(w, v));
                _mm512_mask_i32scatter_ps::<4>(acc.as_mut_ptr().cast(), lanes, rows, sum);
            }
        } else {
            let mut products = [0.0f32; 16];
            // SAFETY: `products` is 16 writable floats; unaligned store.
            unsafe { _mm512_storeu_ps(products.as_mut_ptr(), _mm512_mul_ps(w, v)) };
            // The rows again, read as the u16 they are (one load each, not two bytes).
            let rows = items[2 * k..2 * (k + count)].as_ptr().cast::<u16>();
            let add = |j: usize| {
                // SAFETY: j < count: the u16 at `rows + j` is inside the slice just taken
                // (unaligned read); its row was checked above to be < acc.len().
                unsafe {
                    let row = usize::from(u16::from_le(rows.add(j).read_unaligned()));
                    *acc.get_unchecked_mut(row) += products[j];
                }
            };
            if count == 16 {
                (0..16).for_each(add);
            } else {
                (0..count).for_each(add);
            }
        }
        k += count;
    }
    ahead.rest();
    true
}

/// Whether the CPU has what the row kernels ([`u8_list_dots`], [`bitmap_dots`]) need on top
/// of [`available`]: AVX-512BW and AVX-512VL (byte and word masked loads and compares) and
/// POPCNT (the entries of a bitmap; every AVX-512 CPU has it, but the kernels only assume what
/// was detected).
#[inline(always)]
pub(super) fn rows_available() -> bool {
    #[cfg(feature = "std")]
    {
        available()
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

/// Marks a row length that [`u8_list_dots`] leaves to the scalar kernel.
const NOT_SHORT: u64 = u64::MAX;

/// For each row length in bytes (values of `encoding`, a `prefix`-byte header), what
/// [`u8_list_dots`] needs of a row of 0 to 16 entries, packed in one word: the mask of its
/// entries (bits 0 to 15), that mask shifted right by one (bits 16 to 31) and the number of
/// entries (from bit 32); [`NOT_SHORT`] for every other length.
const fn short_rows<const N: usize>(encoding: ValueEncoding) -> [u64; N] {
    let prefix = encoding.row_prefix();
    let mut table = [NOT_SHORT; N];
    table[0] = 0;
    let mut n = 1;
    while n <= 16 {
        let values = match encoding.value_bytes(n) {
            Some(v) => v,
            None => 0,
        };
        let len = n + values + prefix;
        if len < N {
            let mask = (1u64 << n) - 1;
            table[len] = mask | (mask >> 1) << 16 | (n as u64) << 32;
        }
        n += 1;
    }
    table
}

/// The u32 offsets of rows `first..=first + rows` (the row kernels check them once per
/// batch), or `None` if `offsets` does not hold them all.
fn batch_offsets(offsets: &[u8], first: usize, rows: usize) -> Option<&[u8]> {
    let end = first.checked_add(rows)?.checked_add(1)?.checked_mul(4)?;
    offsets.get(first.checked_mul(4)?..end)
}

/// A query of at most 64 dimensions as four 16-float vectors, zero past its end.
#[inline]
#[target_feature(enable = "avx512f")]
fn query_quarters(query: &[f32]) -> [__m512; 4] {
    let mut padded = [0.0f32; 64];
    padded[..query.len()].copy_from_slice(query);
    // SAFETY: `padded` holds 64 floats: four unaligned 16-float loads.
    [0, 16, 32, 48].map(|at| unsafe { _mm512_loadu_ps(padded.as_ptr().add(at)) })
}

/// [`short_rows`] for f32 values.
static SHORT_F32_ROWS: [u64; 81] = short_rows::<81>(ValueEncoding::F32);
/// [`short_rows`] for 2-byte values (f16, bf16).
static SHORT_WIDE_ROWS: [u64; 49] = short_rows::<49>(ValueEncoding::F16);
/// [`short_rows`] for int8 values (a 2-byte scale before them).
static SHORT_INT8_ROWS: [u64; 35] = short_rows::<35>(ValueEncoding::I8);
/// [`short_rows`] for int4 values (a 2-byte scale, then two codes a byte).
static SHORT_INT4_ROWS: [u64; 27] = short_rows::<27>(ValueEncoding::I4);

/// Rows reduced together by [`u8_list_dots`].
const GROUP: usize = 8;

/// The eight-lane reductions `((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))` of eight
/// accumulators at once, by transposing while adding, with exactly the additions, in exactly
/// the order, of the one-row reduction. The sums come out in the order
/// `[acc[0], acc[2], acc[4], acc[6], acc[1], acc[3], acc[5], acc[7]]`: pass the rows in the
/// order [`REDUCE8_INPUT`] to get them back in row order.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn reduce8(acc: &[__m256; GROUP]) -> __m256 {
    // p_l + p_{l+4}, two accumulators per vector: [a: s0 s1 s2 s3 | b: s0 s1 s2 s3].
    let halves = |a: __m256, b: __m256| {
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(a, b),
            _mm256_permute2f128_ps::<0x31>(a, b),
        )
    };
    let (s01, s23) = (halves(acc[0], acc[1]), halves(acc[2], acc[3]));
    let (s45, s67) = (halves(acc[4], acc[5]), halves(acc[6], acc[7]));
    // (s0 + s2) and (s1 + s3): [r0 u0 u1, r2 u0 u1 | r1 u0 u1, r3 u0 u1].
    let pairs = |a: __m256, b: __m256| {
        _mm256_add_ps(
            _mm256_shuffle_ps::<0x44>(a, b),
            _mm256_shuffle_ps::<0xEE>(a, b),
        )
    };
    let (u0123, u4567) = (pairs(s01, s23), pairs(s45, s67));
    // u0 + u1: [acc 0, 2, 4, 6 | acc 1, 3, 5, 7].
    _mm256_add_ps(
        _mm256_shuffle_ps::<0x88>(u0123, u4567),
        _mm256_shuffle_ps::<0xDD>(u0123, u4567),
    )
}

/// The f32 row sums of eight rows at once, in the order of the scalar kernel: lane `j` is
/// `(((0 + p0) + p1) + ...) + p_last` over row `j`'s products `products[j]` (`STRIDE`, a
/// multiple of 8, of them), stopping after `most` of them (the products of a row past its own entries are +0, and
/// adding +0 to a sum that started at +0 changes nothing: such a sum is never -0).
/// Two 8 x 8 transposes turn the rows' products into one vector per position.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sequential8<const STRIDE: usize>(
    products: &[[f32; STRIDE]; GROUP],
    most: usize,
) -> __m256 {
    let mut sum = _mm256_setzero_ps();
    for first in (0..STRIDE.min(most)).step_by(8) {
        let rows: [__m256; GROUP] = core::array::from_fn(|j| {
            // The last eight positions of a row whose stride is not a multiple of 8 would
            // overlap the next row's: strides are 16 and 64.
            debug_assert!(first + 8 <= STRIDE);
            // SAFETY: first + 8 <= STRIDE (STRIDE is a multiple of 8, first < STRIDE is a
            // multiple of 8): eight floats of row j.
            unsafe { _mm256_loadu_ps(products[j].as_ptr().add(first)) }
        });
        // Position t of rows 0..8 into columns[t].
        let pairs = |a: __m256, b: __m256| (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
        let ((t0, t1), (t2, t3)) = (pairs(rows[0], rows[1]), pairs(rows[2], rows[3]));
        let ((t4, t5), (t6, t7)) = (pairs(rows[4], rows[5]), pairs(rows[6], rows[7]));
        let quads = |a: __m256, b: __m256| {
            (
                _mm256_shuffle_ps::<0x44>(a, b),
                _mm256_shuffle_ps::<0xEE>(a, b),
            )
        };
        let ((u0, u1), (u2, u3)) = (quads(t0, t2), quads(t1, t3));
        let ((u4, u5), (u6, u7)) = (quads(t4, t6), quads(t5, t7));
        let columns = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for column in &columns[..(most - first).min(8)] {
            sum = _mm256_add_ps(sum, *column);
        }
    }
    sum
}

/// AVX-512 twin of [`scalar::bitmap_dots`] (`E` as in [`x86::u8_list_dots`]) for a query of
/// at most 64 dimensions (one 64-bit bitmap per row); other inputs go to the AVX2 kernel. Per
/// row: the bitmap, its length and tail bits checked, then per sixteen dimensions the query
/// entries of the set bits packed together (`vcompressps`, registers only), multiplied by one
/// masked load of the values, and stored at the row's next positions. Every eight rows, the
/// products are summed as the scalar kernel sums them: for f32 one position after another
/// ([`sequential8`]), for the others eight positions at a time and then [`reduce8`].
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW, AVX-512VL, AVX2, F16C and POPCNT
/// ([`rows_available`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,f16c,popcnt")]
pub(super) unsafe fn bitmap_dots<const E: u8>(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    let encoding = encoding_of(E);
    let prefix = encoding.row_prefix();
    let dim = query.len();
    let bounds = batch_offsets(offsets, first, out.len());
    let (Some(bounds), 1..=5, 1..=64) = (bounds, E, dim) else {
        // SAFETY: AVX2 and F16C are implied by this function's features.
        return unsafe { x86::bitmap_dots::<E>(query, offsets, data, first, out) };
    };
    // Bytes per value; int4 rows (E = 5) are first decoded to one code a byte.
    let width = encoding.byte_width().unwrap_or(1);
    let offset = |k: usize| {
        let b = &bounds[4 * k..4 * k + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    };
    let bitmap_len = dim.div_ceil(8);
    // Bits at or past the dimension must be clear.
    let tail = if dim == 64 { 0 } else { u64::MAX << dim };
    let quarters = query_quarters(query);
    let mut products = [[0.0f32; 64]; GROUP];
    let mut done = 0;
    let mut groups = out.chunks_exact_mut(GROUP);
    for group in &mut groups {
        let mut most = 0;
        let mut scales = [1.0f32; GROUP];
        for (j, row_products) in products.iter_mut().enumerate() {
            let row = first + done + j;
            let (s, e) = (offset(done + j), offset(done + j + 1));
            let record = data.get(s..e).ok_or(row)?;
            *row_products = [0.0; 64];
            if record.is_empty() {
                continue;
            }
            let mut bitmap = [0u8; 8];
            bitmap[..bitmap_len].copy_from_slice(record.get(..bitmap_len).ok_or(row)?);
            let bits = u64::from_le_bytes(bitmap);
            let n = bits.count_ones() as usize;
            let value_bytes = record.len().checked_sub(bitmap_len + prefix);
            if bits & tail != 0
                || n == 0
                || !value_bytes.is_some_and(|bytes| encoding.entries_fit(n, bytes))
            {
                return Err(row);
            }
            if E == 4 || E == 5 {
                let at = bitmap_len;
                let scale = scalar::f16_to_f32(u16::from_le_bytes([record[at], record[at + 1]]));
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(row);
                }
                scales[j] = scale;
            }
            most = most.max(n);
            let mut values = record[bitmap_len + prefix..].as_ptr();
            // Int4: the row's (at most 32) bytes of nibbles as 64 codes, a byte each, on the
            // stack (16 more zero bytes, so that a load of sixteen at any entry stays inside).
            let mut codes = [0i8; 80];
            if E == 5 {
                let nibbles = &record[bitmap_len + prefix..];
                // An odd row: the last byte's high nibble is padding, and must be 0 (no branch
                // on the parity).
                if (nibbles[nibbles.len() - 1] >> 4) & (n as u8 & 1).wrapping_neg() != 0 {
                    return Err(row);
                }
                let mut padded = [0u8; 32];
                padded[..nibbles.len()].copy_from_slice(nibbles);
                for i in 0..4 {
                    // SAFETY: each load reads bytes 8i..8i + 8 of `padded` (32 bytes) and
                    // each store writes codes 16i..16i + 16 of `codes` (80 bytes).
                    unsafe {
                        let eight = _mm_loadl_epi64(padded.as_ptr().add(8 * i).cast());
                        let sixteen = x86::nibbles16(eight);
                        _mm_storeu_si128(codes.as_mut_ptr().add(16 * i).cast(), sixteen);
                    }
                }
                values = codes.as_ptr().cast();
            }
            let mut at = 0;
            for (k, &q) in quarters.iter().enumerate() {
                debug_assert!(at <= 16 * k);
                let mask = (bits >> (16 * k)) as u16;
                let count = mask.count_ones() as usize;
                let lanes = ((1u32 << count) - 1) as __mmask16;
                let packed = _mm512_maskz_compress_ps(mask, q);
                // SAFETY: the row's values are record[bitmap_len + prefix..], width * n
                // bytes (int4: `codes`, 80 bytes, one a value); lanes below `count` read
                // values at..at + count, at + count <= n; masked-off lanes are not read. The store writes row_products[at..at + 16]:
                // at <= 16 * k (at most 16 entries per earlier quarter), so at + 16 <= 64.
                // Its lanes from `count` on are +0 (packed lanes are +0, and so are masked-off
                // values), which the next quarter's store overwrites or which stay the +0 of
                // positions past the row's entries.
                unsafe {
                    let from = values.add(width * at);
                    // Int4 codes are bytes now: read as int8 codes.
                    let v = if E == 5 {
                        load16!(4, lanes, from)
                    } else {
                        load16!(E, lanes, from)
                    };
                    let p = _mm512_mul_ps(packed, v);
                    _mm512_storeu_ps(row_products.as_mut_ptr().add(at), p);
                }
                at += count;
            }
        }
        let sums = if E == 1 {
            // SAFETY: AVX2 is implied by this function's features.
            unsafe { sequential8(&products, most) }
        } else {
            // Lane l of row j: ((0 + p_l) + p_{l+8}) + ..., as the AVX2 kernel's accumulator
            // holds it (the positions past a row's entries are +0 and change nothing).
            let acc: [__m256; GROUP] = core::array::from_fn(|i| {
                let row = &products[REDUCE8_INPUT[i]];
                let mut acc = _mm256_setzero_ps();
                for at in (0..most).step_by(8) {
                    // SAFETY: at < most <= 64 and at is a multiple of 8: eight floats of row.
                    acc = _mm256_add_ps(acc, unsafe { _mm256_loadu_ps(row.as_ptr().add(at)) });
                }
                acc
            });
            // SAFETY: AVX2 is implied by this function's features.
            let sums = unsafe { reduce8(&acc) };
            // SAFETY: `scales` is 8 readable f32.
            _mm256_mul_ps(sums, unsafe { _mm256_loadu_ps(scales.as_ptr()) })
        };
        // SAFETY: `group` is 8 writable f32.
        unsafe { _mm256_storeu_ps(group.as_mut_ptr(), sums) };
        done += GROUP;
    }
    // The last rows, fewer than a group.
    // SAFETY: AVX2 and F16C are implied by this function's features.
    unsafe { x86::bitmap_dots::<E>(query, offsets, data, first + done, groups.into_remainder()) }
}

/// The row to pass as `acc[i]` to [`reduce8`] so that lane `r` of its result is row `r`'s.
const REDUCE8_INPUT: [usize; GROUP] = [0, 4, 1, 5, 2, 6, 3, 7];

/// AVX-512 twin of [`scalar::u8_list_dots`] (`E` as in [`x86::u8_list_dots`]) for a query of
/// at most 64 dimensions; other inputs go to the AVX2 kernel. Per row of up to 16 entries: one masked load each of the columns and the
/// values (no copies at the end of the data), the column checks as one masked compare, the
/// query entries looked up from registers (`vpermt2ps`, no gather), and the products summed
/// into eight lanes; every eight rows, one transposing reduction ([`reduce8`]), or for f32,
/// whose rows sum one product after another, two transposes and one add per position
/// ([`sequential8`]). Longer rows take the scalar path.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW, AVX-512VL, AVX2 and F16C ([`rows_available`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,f16c")]
pub(super) unsafe fn u8_list_dots<const E: u8>(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    let encoding = encoding_of(E);
    let prefix = encoding.row_prefix();
    let short_rows: &[u64] = match E {
        1 => &SHORT_F32_ROWS,
        4 => &SHORT_INT8_ROWS,
        5 => &SHORT_INT4_ROWS,
        _ => &SHORT_WIDE_ROWS,
    };
    let dim = query.len();
    let bounds = batch_offsets(offsets, first, out.len());
    let (Some(bounds), 1..=5, 1..=64) = (bounds, E, dim) else {
        // SAFETY: AVX2 and F16C are implied by this function's features.
        return unsafe { x86::u8_list_dots::<E>(query, offsets, data, first, out) };
    };
    let [q0, q1, q2, q3] = query_quarters(query);
    let dims = _mm_set1_epi8(dim as i8); // dim <= 64: no sign trouble below (unsigned compare)
    let mut done = 0;
    // Each row's 16 products (+0 where it has no entry), summed into 8 lanes at the end of
    // its group through memory: two 8-float loads instead of a cross-lane extract. Every row
    // of a group writes its 16 (the SIMD path) or zeros (the scalar one).
    let mut products = [[0.0f32; 16]; GROUP];
    let mut groups = out.chunks_exact_mut(GROUP);
    for group in &mut groups {
        // The group's nine offsets, checked once (`bounds` holds out.len() + 1 of them).
        let Some(&group_offsets) = bounds
            .get(4 * done..4 * done + 4 * (GROUP + 1))
            .and_then(|b| <&[u8; 4 * (GROUP + 1)]>::try_from(b).ok())
        else {
            return Err(first + done);
        };
        let offset = |k: usize| {
            u32::from_le_bytes([
                group_offsets[4 * k],
                group_offsets[4 * k + 1],
                group_offsets[4 * k + 2],
                group_offsets[4 * k + 3],
            ]) as usize
        };
        let mut scales = [1.0f32; GROUP];
        // The most entries of a row of the group that went through SIMD (f32 sums stop there).
        let mut most = 0;
        // Rows the scalar kernel computed: (slot, value).
        let mut long = [(0usize, 0.0f32); GROUP];
        let mut longs = 0;
        for j in 0..GROUP {
            let (s, e) = (offset(j), offset(j + 1));
            // Rows of up to 16 entries (and empty rows: mask 0, products +0) in SIMD; every
            // other length, and offsets out of order or past the data, in the scalar kernel,
            // which also finds what is wrong with a corrupt row.
            let len = e.wrapping_sub(s);
            let row_masks = match short_rows.get(len) {
                Some(&masks) if e <= data.len() && masks != NOT_SHORT => masks,
                _ => {
                    let mut value = 0.0f32;
                    scalar::u8_list_dots(
                        query,
                        offsets,
                        data,
                        first + done + j,
                        core::slice::from_mut(&mut value),
                        encoding,
                    )?;
                    long[longs] = (j, value);
                    longs += 1;
                    products[j] = [0.0; 16];
                    continue;
                }
            };
            let row = first + done + j;
            let (mask, successors) = (row_masks as __mmask16, (row_masks >> 16) as __mmask16);
            let n = (row_masks >> 32) as usize;
            if E == 1 {
                most = most.max(n);
            }
            // s <= e <= data.len() (len did not wrap): in bounds or one past the end (n = 0).
            let at = data.as_ptr().wrapping_add(s);
            // SAFETY: lanes below n read data[s..s + n], inside data[s..e]; masked-off lanes
            // are not read (AVX-512 masked loads do not touch, or fault on, them).
            let columns = unsafe { _mm_maskz_loadu_epi8(mask, at.cast()) };
            // Each column's successor in the row, and the dimension after the last one: the
            // columns are strictly increasing and below the dimension exactly when each is
            // below its successor (unsigned), one compare for both checks.
            // SAFETY: lanes below n - 1 read data[s + 1..s + n], inside the row; the other
            // lanes take `dims` and are not read (`wrapping_add`: with n = 0 nothing is read
            // and `at` may be the end of the data).
            let next = unsafe { _mm_mask_loadu_epi8(dims, successors, at.wrapping_add(1).cast()) };
            if _mm_mask_cmplt_epu8_mask(mask, columns, next) != mask {
                return Err(row);
            }
            if (E == 4 || E == 5) && n > 0 {
                let scale = scalar::f16_to_f32(u16::from_le_bytes([data[s + n], data[s + n + 1]]));
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(row);
                }
                scales[j] = scale;
            }
            // An odd int4 row: the last byte's high nibble is padding, and must be 0. (Tested
            // without a branch on the parity, which is random from row to row.)
            if E == 5 && n > 0 && (data[e - 1] >> 4) & (n as u8 & 1).wrapping_neg() != 0 {
                return Err(row);
            }
            let values = if E == 5 {
                // The row's ceil(n / 2) bytes of nibbles, sixteen codes from them (those past
                // n are zero or the padding nibble: their products are masked off below).
                let bytes = ((1u32 << n.div_ceil(2)) - 1) as __mmask16;
                // SAFETY: the values start at data[s + n + prefix], and bytes below
                // ceil(n / 2) lie inside data[s..e] (len == n + prefix + ceil(n / 2));
                // masked-off bytes are not read.
                let packed =
                    unsafe { _mm_maskz_loadu_epi8(bytes, at.wrapping_add(n + prefix).cast()) };
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(x86::nibbles16(packed)))
            } else {
                // SAFETY: the values start at data[s + n + prefix] and lanes below n lie
                // inside data[s..e] (len == n * (1 + width) + prefix); masked-off lanes are
                // not read (with n = 0, none: `wrapping_add`, as the pointer may pass the end).
                unsafe { load16!(E, mask, at.wrapping_add(n + prefix)) }
            };
            // The query entries of the columns: bit 5 of a column picks q2:q3 over q0:q1.
            // (Bit 5 of each column byte, shifted to its sign bit, taken as a mask: two cheap
            // byte operations instead of a compare on the busier shuffle port.)
            let index = _mm512_cvtepu8_epi32(columns);
            let low = _mm512_permutex2var_ps(q0, index, q1);
            let high = _mm512_permutex2var_ps(q2, index, q3);
            let upper = _mm_movepi8_mask(_mm_slli_epi16::<2>(columns));
            let q = _mm512_mask_blend_ps(upper, low, high);
            // Inactive lanes are +0, as the AVX2 kernel's are: lane l holds
            // (0 + p_l) + p_{l+8}.
            let row_products = _mm512_maskz_mul_ps(mask, q, values);
            // SAFETY: products[j] is 16 writable f32.
            unsafe { _mm512_storeu_ps(products[j].as_mut_ptr(), row_products) };
        }
        if E == 1 {
            // SAFETY: AVX2 is implied by this function's features.
            let sums = unsafe { sequential8(&products, most) };
            // SAFETY: `group` is 8 writable f32.
            unsafe { _mm256_storeu_ps(group.as_mut_ptr(), sums) };
            for &(j, value) in &long[..longs] {
                group[j] = value;
            }
            done += GROUP;
            continue;
        }
        // Lane l of row j: (0 + p_l) + p_{l+8}, as the AVX2 kernel's accumulator holds it.
        let acc: [__m256; GROUP] = core::array::from_fn(|i| {
            let j = REDUCE8_INPUT[i];
            // SAFETY: products[j] is 16 floats: two 8-float loads.
            let (first8, second8) = unsafe {
                let at = products[j].as_ptr();
                (_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8)))
            };
            _mm256_add_ps(_mm256_add_ps(_mm256_setzero_ps(), first8), second8)
        });
        // SAFETY: AVX2 is implied by this function's features.
        let mut sums = unsafe { reduce8(&acc) };
        if E == 4 || E == 5 {
            // SAFETY: `scales` is 8 readable f32.
            sums = _mm256_mul_ps(sums, unsafe { _mm256_loadu_ps(scales.as_ptr()) });
        }
        // SAFETY: `group` is 8 writable f32.
        unsafe { _mm256_storeu_ps(group.as_mut_ptr(), sums) };
        for &(j, value) in &long[..longs] {
            group[j] = value;
        }
        done += GROUP;
    }
    // The last rows, fewer than a group (only at the end of a table: the row scan asks for
    // batches of a multiple of 8 rows).
    // SAFETY: AVX2 and F16C are implied by this function's features.
    unsafe { x86::u8_list_dots::<E>(query, offsets, data, first + done, groups.into_remainder()) }
}

/// AVX-512 twin of [`scalar::first_candidate`]: sixteen scores per compare, 64 per branch.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and F16C ([`available`]).
#[target_feature(enable = "avx512f,avx2,f16c")]
pub(super) unsafe fn first_candidate(scores: &[f32], threshold: f32) -> usize {
    let t = _mm512_set1_ps(threshold);
    let largest = _mm512_set1_ps(f32::MAX);
    // Above the threshold, or not finite: |x| is not <= f32::MAX for infinities and NaNs.
    let flagged = |v: __m512| -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, t)
            | _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(_mm512_abs_ps(v), largest)
    };
    let at = scores.as_ptr();
    let mut k = 0;
    while k + 64 <= scores.len() {
        // SAFETY: 64 floats at k are in `scores` (k + 64 <= len); unaligned loads.
        let masks = [0, 16, 32, 48].map(|o| flagged(unsafe { _mm512_loadu_ps(at.add(k + o)) }));
        if masks.iter().any(|&m| m != 0) {
            let (i, m) = masks
                .iter()
                .enumerate()
                .find(|(_, m)| **m != 0)
                .unwrap_or((0, &0));
            return k + 16 * i + m.trailing_zeros() as usize;
        }
        k += 64;
    }
    while k < scores.len() {
        let rest = (scores.len() - k).min(16);
        let lanes = ((1u32 << rest) - 1) as __mmask16;
        // SAFETY: lanes below `rest` read scores[k..k + rest], in bounds; masked-off lanes
        // are not read (AVX-512 masked loads do not touch, or fault on, them).
        let m = flagged(unsafe { _mm512_maskz_loadu_ps(lanes, at.add(k)) }) & lanes;
        if m != 0 {
            return k + m.trailing_zeros() as usize;
        }
        k += rest;
    }
    scores.len()
}

/// Most posting lists [`bitmap_add`] adds in one pass over a block: their bitmap and value
/// positions and weights stay in registers; more lists take more passes.
const BITMAP_GROUP: usize = 8;

/// AVX-512 twin of [`scalar::bitmap_add`] (`E` as in [`x86::u8_list_dots`]): the block's
/// rows 64 at a time in four 16-lane sums held in registers across up to [`BITMAP_GROUP`]
/// lists. Per list and 64 rows: one bitmap word; per 16 of its bits, one whole load of the
/// list's next 16 values, spread to the lanes of the set bits (`vexpandps`, zeros elsewhere),
/// multiplied by the weight and added (a separate multiply and add, as the scalar kernel
/// rounds). No accumulator read-modify-write per entry: one load (after the first group) and
/// one store per 64 rows. Lists whose values are not followed by 64 more values in their
/// section (the last lists of a table) take the scalar kernel, so the whole loads stay inside
/// the section.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW, AVX-512VL, AVX2, F16C and POPCNT
/// ([`rows_available`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,f16c,popcnt")]
pub(super) unsafe fn bitmap_add<const E: u8>(
    acc: &mut [f32],
    lists: &[super::BitmapList<'_>],
    first: bool,
) -> bool {
    let encoding = encoding_of(E);
    // Int4 lists (E = 5) take the scalar kernel: their values may start mid-byte.
    let Some(width) = encoding.byte_width() else {
        return scalar::bitmap_add(acc, lists, first, encoding);
    };
    let windows = acc.len().div_ceil(64);
    // The last address from which 64 values can be read inside every list's tail.
    let limit = lists
        .iter()
        .map(|list| (list.tail.as_ptr() as usize + list.tail.len()).saturating_sub(64 * width))
        .min()
        .unwrap_or(0);
    let whole_loads_fit = |list: &super::BitmapList<'_>| {
        list.words.len() >= 8 * windows
            && list.values.len().is_multiple_of(width)
            && list.tail.as_ptr() == list.values.as_ptr()
            && list.values.len() <= list.tail.len()
            && list.values.as_ptr() as usize + list.values.len() <= limit
    };
    if !lists.iter().all(whole_loads_fit) {
        return scalar::bitmap_add(acc, lists, first, encoding);
    }
    // Bits for rows past the block (only a table's last block is short) name no row.
    if lists
        .iter()
        .any(|list| list.words[8 * windows..].iter().any(|&b| b != 0))
    {
        return false;
    }
    if lists.is_empty() && first {
        acc.fill(0.0);
    }
    let mut first = first;
    for group in lists.chunks(BITMAP_GROUP) {
        macro_rules! by_count {
            ($($k:literal)*) => {
                match group.len() {
                    // SAFETY: this function's features; every list of the group passed
                    // `whole_loads_fit`: at least `windows` bitmap words, its end at or
                    // before `limit`, 64 values readable in every tail from `limit`.
                    $($k => unsafe { bitmap_group::<$k, E>(acc, group, first, limit) },)*
                    _ => false,
                }
            };
        }
        if !by_count!(1 2 3 4 5 6 7 8) {
            return false;
        }
        first = false;
    }
    true
}

/// [`bitmap_add`] for exactly `K` lists (at most [`BITMAP_GROUP`]), each list's step
/// written out (a macro, not a loop) so that its positions stay in registers.
///
/// # Safety
/// As [`bitmap_add`]'s, and every list of `group` has at least `ceil(acc.len() / 64)` bitmap
/// words, and `limit` is an address from which 64 values' bytes can be read inside every
/// list's `tail` (which starts where its `values` start), at or past every list's end.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,f16c,popcnt")]
unsafe fn bitmap_group<const K: usize, const E: u8>(
    acc: &mut [f32],
    group: &[super::BitmapList<'_>],
    first: bool,
    limit: usize,
) -> bool {
    // Never int4: `bitmap_add` hands those to the scalar kernel.
    let width = encoding_of(E).byte_width().unwrap_or(1);
    let list = |i: usize| group.get(i).copied().unwrap_or_default();
    let words: [*const u8; BITMAP_GROUP] = core::array::from_fn(|i| list(i).words.as_ptr());
    let mut next: [*const u8; BITMAP_GROUP] = core::array::from_fn(|i| list(i).values.as_ptr());
    let weights: [__m512; BITMAP_GROUP] = core::array::from_fn(|i| _mm512_set1_ps(list(i).weight));
    let rows = acc.len();
    let out = acc.as_mut_ptr();
    for window in 0..rows.div_ceil(64) {
        let base = 64 * window;
        // The lanes of rows inside the block: all 64 but in a short block's last window.
        let lanes = match rows - base {
            64.. => u64::MAX,
            n => (1u64 << n) - 1,
        };
        let quarter = |q: usize| (lanes >> (16 * q)) as __mmask16;
        let mut sums: [__m512; 4] = core::array::from_fn(|q| {
            if first {
                _mm512_setzero_ps()
            } else {
                // SAFETY: lanes under the mask are rows base + 16q.. of `acc`, below rows.
                unsafe { _mm512_maskz_loadu_ps(quarter(q), out.add(base + 16 * q)) }
            }
        });
        // Bits past the block, or a list's position past `limit`: checked once per window.
        let mut damaged = 0u64;
        macro_rules! add_list {
            ($i:literal) => {
                if $i < K {
                    // SAFETY: window < ceil(rows / 64) <= the list's words (the caller's
                    // promise).
                    let bits = u64::from_le(unsafe {
                        core::ptr::read_unaligned(words[$i].add(8 * window).cast::<u64>())
                    });
                    damaged |= bits & !lanes;
                    let mut at = next[$i];
                    for (q, sum) in sums.iter_mut().enumerate() {
                        let mask = (bits >> (16 * q)) as __mmask16;
                        // SAFETY: `at` is at most 48 values past the window's start, itself at
                        // most `limit` (checked after every window; the list starts at or
                        // before its end, at or before `limit`), and 64 values' bytes of the
                        // list's tail follow `limit` (the caller's promise): the 16 values
                        // loaded are inside the tail.
                        let packed = unsafe { load16!(E, 0xFFFF, at) };
                        let spread = _mm512_maskz_expand_ps(mask, packed);
                        *sum = _mm512_add_ps(*sum, _mm512_mul_ps(spread, weights[$i]));
                        at = at.wrapping_add(width * mask.count_ones() as usize);
                    }
                    damaged |= u64::from(at as usize > limit);
                    next[$i] = at;
                }
            };
        }
        add_list!(0);
        add_list!(1);
        add_list!(2);
        add_list!(3);
        add_list!(4);
        add_list!(5);
        add_list!(6);
        add_list!(7);
        if damaged != 0 {
            return false;
        }
        for (q, sum) in sums.into_iter().enumerate() {
            // SAFETY: lanes under the mask are rows base + 16q.. of `acc`, below rows.
            unsafe { _mm512_mask_storeu_ps(out.add(base + 16 * q), quarter(q), sum) };
        }
    }
    // Each list's bits named exactly its values.
    group
        .iter()
        .zip(next)
        .all(|(list, at)| at == list.values.as_ptr().wrapping_add(list.values.len()))
}

/// AVX-512 twin of [`scalar::sliced_dots`] for value encoding `E` (as [`encoding_of`] reads
/// it), one window at a time: each slice's record checked as
/// [`crate::sliced::SlicedRows::slice`] checks it, then one accumulator lane per row of the
/// slice, so no reduction at all. Step `t` takes the lanes longer than `t` as a mask (one byte
/// compare of the sixteen lengths; the slice ends at the first empty mask): since lengths do
/// not increase along the lanes, those are the first lanes and their entries load as they lie
/// (masked loads). The query entries are looked up from registers for a query of at most 64
/// dimensions (`vpermt2ps`; a masked gather for wider ones) and the products added to the
/// masked lanes only: each lane sums its row one product after another in column order from
/// +0, the scalar twin's order, bit for bit. Columns strictly increasing within each row: one
/// masked compare a step; below the dimension: one compare a slice (of the largest column
/// loaded). The lanes' results are then placed at their rows of the window, each row once.
/// Returns the number of the first slice found corrupt.
///
/// # Safety
/// The CPU must support AVX-512F, BW and VL, AVX2, F16C and POPCNT ([`rows_available`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,f16c,popcnt")]
pub(super) unsafe fn sliced_dots<const E: u8>(
    query: &[f32],
    rows: &crate::sliced::SlicedRows<'_>,
    window: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    use crate::format::{SLICE_ROWS, SLICE_WINDOW_ROWS};
    use crate::sliced::{SlicedRows, WINDOW_SLICES};
    let dim = query.len();
    let first_slice = window * WINDOW_SLICES;
    // Sliced rows do not take int4 values (refused at open).
    let Some(width) = encoding_of(E).byte_width() else {
        return Err(first_slice);
    };
    let window_rows = rows.window_rows(window);
    if dim == 0 || dim > 256 || dim != rows.dim || out.len() != window_rows {
        return Err(first_slice);
    }
    let mut marks = [0u8; SLICE_WINDOW_ROWS];
    let header = 2 * SLICE_ROWS + if E == 4 { 2 * SLICE_ROWS } else { 0 };
    // SAFETY: the target features are enabled (this function's contract). The query loads
    // read `query[16 * i..]` masked to its length. A slice's record is `data[start..end]`
    // (checked in bounds), at least `header` bytes long (checked), and holds `entries` columns
    // and values after the header, `entries` being the sum of the lengths (checked against the
    // record's length). Step `t`'s masked loads read `m.count_ones()` entries at entry `at`
    // (`m` is a prefix of the lanes: lengths checked not to increase), and `at` plus the bits
    // of the remaining steps' masks is `entries`, so they stay in the record. The gather (wide queries) reads only lanes whose columns were just checked
    // to be below `dim`. The stores write stack arrays of sixteen lanes.
    unsafe {
        let q: [__m512; 4] = core::array::from_fn(|i| {
            let left = dim.saturating_sub(16 * i).min(16);
            let mask = ((1u32 << left) - 1) as __mmask16;
            _mm512_maskz_loadu_ps(mask, query.as_ptr().wrapping_add(16 * i))
        });
        let narrow = dim <= 64;
        let last_column = _mm_set1_epi8((dim - 1) as u8 as i8);
        let longest_allowed = _mm_set1_epi8(dim.min(255) as u8 as i8);
        // Row numbers at or past this are past the window (none in a full window).
        let past_window = _mm_set1_epi8(window_rows.min(255) as u8 as i8);
        for k in 0..window_rows.div_ceil(SLICE_ROWS) {
            let slice = first_slice + k;
            let start = crate::le::offset(rows.offsets, rows.width, slice);
            let end = crate::le::offset(rows.offsets, rows.width, slice + 1);
            let record = match (start, end) {
                (Some(s), Some(e)) if s <= e && e <= rows.data.len() as u64 => {
                    &rows.data[s as usize..e as usize]
                }
                _ => return Err(slice),
            };
            if record.len() < header {
                return Err(slice);
            }
            prefetch_slice(rows, slice + SLICES_AHEAD);
            let lengths = _mm_loadu_si128(record.as_ptr().cast());
            let row_bytes = _mm_loadu_si128(record.as_ptr().add(SLICE_ROWS).cast());
            let live = rows.rows.saturating_sub(slice * SLICE_ROWS).min(SLICE_ROWS);
            let live_mask = ((1u32 << live) - 1) as __mmask16;
            let either = _mm_or_si128(lengths, row_bytes);
            if _mm_mask_test_epi8_mask(!live_mask, either, either) != 0
                || _mm_cmpgt_epu8_mask(lengths, longest_allowed) != 0
                || _mm_cmpgt_epu8_mask(_mm_bsrli_si128::<1>(lengths), lengths) != 0
                || (window_rows < SLICE_WINDOW_ROWS
                    && _mm_mask_cmpge_epu8_mask(live_mask, row_bytes, past_window) != 0)
            {
                return Err(slice);
            }
            // The entry count from the record's length (so that the loads' addresses do not
            // wait for the lengths' bytes), checked against the lengths' sum.
            let entries = (record.len() - header) / (1 + width);
            let sums = _mm_sad_epu8(lengths, _mm_setzero_si128());
            let counted = (_mm_cvtsi128_si64(sums) + _mm_extract_epi64::<1>(sums)) as usize;
            if record.len() != header + entries * (1 + width) || counted != entries {
                return Err(slice);
            }
            let columns_at = record.as_ptr().add(header);
            let values_at = columns_at.add(entries);
            let mut acc = _mm512_setzero_ps();
            let mut previous = _mm_setzero_si128();
            // The largest column seen (lanes without an entry load 0), checked once a slice.
            let mut largest = _mm_setzero_si128();
            let mut bad: __mmask16 = 0;
            let mut at = 0usize;
            // The step number in every byte, stepped with an add (a broadcast from a
            // general register would take the shuffle port the loop is short of).
            let mut t = _mm_setzero_si128();
            let mut first = true;
            loop {
                let m = _mm_cmpgt_epu8_mask(lengths, t);
                if m == 0 {
                    break;
                }
                // The lanes longer than `t` are the first ones (lengths do not increase
                // along the lanes), so their entries load as they lie, no expanding needed.
                let columns = _mm_maskz_loadu_epi8(m, columns_at.add(at).cast());
                largest = _mm_max_epu8(largest, columns);
                if !first {
                    bad |= _mm_mask_cmple_epu8_mask(m, columns, previous);
                }
                first = false;
                previous = _mm_mask_mov_epi8(previous, m, columns);
                let from = values_at.add(at * width);
                let values = load16!(E, m, from);
                let index = _mm512_cvtepu8_epi32(columns);
                let weights = if narrow {
                    // Bit 5 of each column (which pair of registers holds its entry), moved
                    // to the byte's top bit: shift and sign-bit mask, off the shuffle port.
                    let high = _mm_movepi8_mask(_mm_slli_epi16::<2>(columns));
                    _mm512_mask_blend_ps(
                        high,
                        _mm512_permutex2var_ps(q[0], index, q[1]),
                        _mm512_permutex2var_ps(q[2], index, q[3]),
                    )
                } else {
                    if bad != 0 || _mm_mask_cmpgt_epu8_mask(m, columns, last_column) != 0 {
                        return Err(slice);
                    }
                    _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        m,
                        index,
                        query.as_ptr().cast(),
                    )
                };
                acc = _mm512_mask_add_ps(acc, m, acc, _mm512_mul_ps(weights, values));
                at += m.count_ones() as usize;
                t = _mm_add_epi8(t, _mm_set1_epi8(1));
            }
            if bad != 0 || _mm_cmpgt_epu8_mask(largest, last_column) != 0 {
                return Err(slice);
            }
            if E == 4 {
                // Each row's scale: positive and finite for a row with entries, 0 without.
                let raw = _mm256_loadu_si256(record.as_ptr().add(2 * SLICE_ROWS).cast());
                let scales = _mm512_cvtph_ps(raw);
                let filled = _mm_test_epi8_mask(lengths, lengths);
                let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(scales, _mm512_setzero_ps());
                let finite =
                    _mm512_cmp_ps_mask::<_CMP_LT_OQ>(scales, _mm512_set1_ps(f32::INFINITY));
                let nonzero = _mm256_test_epi16_mask(raw, raw);
                if (filled & !(positive & finite)) | (!filled & nonzero) != 0 {
                    return Err(slice);
                }
                acc = _mm512_mul_ps(acc, scales);
            }
            let mut lanes = [0.0f32; SLICE_ROWS];
            _mm512_storeu_ps(lanes.as_mut_ptr(), acc);
            let mut slice_rows = [0u8; SLICE_ROWS];
            _mm_storeu_si128(slice_rows.as_mut_ptr().cast(), row_bytes);
            if !SlicedRows::place(&slice_rows, live, &lanes, out, &mut marks) {
                return Err(slice);
            }
        }
    }
    if !SlicedRows::all_marked(&mut marks, window_rows) {
        return Err(first_slice);
    }
    Ok(())
}

/// How many slices ahead of the one it adds up [`sliced_dots`] asks for the bytes of.
const SLICES_AHEAD: usize = 16;

/// Asks the CPU for the bytes of slice `slice`'s record, if it has one: a hint only.
#[inline(always)]
fn prefetch_slice(rows: &crate::sliced::SlicedRows<'_>, slice: usize) {
    let start = crate::le::offset(rows.offsets, rows.width, slice);
    let end = crate::le::offset(rows.offsets, rows.width, slice + 1);
    if let (Some(start), Some(end)) = (start, end)
        && start <= end
        && end <= rows.data.len() as u64
    {
        let mut line = start as usize & !63;
        while line < end as usize {
            // SAFETY: a prefetch reads nothing the program sees and cannot fault; the address
            // is inside `rows.data` (or the start of its cache line).
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(rows.data.as_ptr().wrapping_add(line).cast());
            }
            line += 64;
        }
    }
}
