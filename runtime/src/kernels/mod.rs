//! Hot-loop kernels, each with a portable scalar version (the reference) and, where it pays,
//! SIMD versions through `core::arch`: AVX2 + F16C on x86_64 (chosen at run time under `std`,
//! at compile time otherwise; the posting-list scatter-add and the row kernels, u8-list and
//! bitmap, also have AVX-512 versions, used when the CPU has AVX-512F, plus BW, VL and POPCNT
//! for the rows) and NEON on aarch64 (the u8-list dot product, the scatter-add, the top-k
//! scan, the bitmap and sliced row kernels and the score finish; NEON is part of every aarch64
//! target, so nothing is detected). Every SIMD kernel gives bit-identical results to
//! its scalar twin, and is tested against it on the machine that runs the tests.
//!
//! ## Summation orders
//! - **Sequential** (f32 rows, and every column scan): products are added one after another in
//!   increasing column order, starting from 0. With f32 values this is the dense f32 dot
//!   product bit for bit.
//! - **Eight lanes** (f16, bf16, int8 and int4 rows in the row scan): entry `k` of a row (in column
//!   order) is added to partial sum `k % 8`, each partial sum starting from 0; the partial sums
//!   `p` are then reduced as `((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))`. This is the
//!   order of an 8-wide SIMD accumulator, fixed here so that the scalar, AVX2 and NEON versions
//!   agree bit for bit on every machine.

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(feature = "std")]
pub(crate) mod lanes;
#[cfg(target_arch = "aarch64")]
mod neon;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::format::ValueEncoding;

/// Calls the x86 or NEON row kernel `$kernel::<E>` monomorphised for `$encoding`, with `E` its
/// code (1 f32, 2 f16, 3 bf16, 4 int8, 5 int4, as `x86::encoding_of` and `neon`'s read it
/// back).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! by_encoding {
    ($encoding:expr, $($kernel:ident)::+ ($($arg:expr),*)) => {
        match $encoding {
            ValueEncoding::F32 => $($kernel)::+::<1>($($arg),*),
            ValueEncoding::F16 => $($kernel)::+::<2>($($arg),*),
            ValueEncoding::Bf16 => $($kernel)::+::<3>($($arg),*),
            ValueEncoding::I8 => $($kernel)::+::<4>($($arg),*),
            ValueEncoding::I4 => $($kernel)::+::<5>($($arg),*),
        }
    };
}

/// The instruction sets the kernels use on this machine, most capable first: `"avx512"` (the
/// row kernels, scatter-add and top-k scan; AVX2 for the rest), `"avx2+f16c"`, `"neon"` or
/// `"scalar"`. Decided at run time under `std` on x86_64, at compile time otherwise.
///
/// ```
/// let kernels = pocketrec::simd_kernels();
/// assert!(["avx512", "avx2+f16c", "neon", "scalar"].contains(&kernels));
/// println!("pocketrec kernels: {kernels}");
/// ```
pub fn in_use() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::rows_available() {
            return "avx512";
        }
        if x86::available() {
            return "avx2+f16c";
        }
    }
    #[cfg(target_arch = "aarch64")]
    return "neon";
    #[allow(unreachable_code)]
    "scalar"
}

/// Adds `weight * value` to `acc[item]` for every entry of a posting list (`items`: `u16`
/// little-endian block-local rows; `values`: in `encoding`, int8 as its integer code, int4 as
/// nibbles from the low nibble of `values[0]`: see [`scatter_add_from`] for lists that start
/// mid-byte).
/// Returns false, having added nothing past the end, if an item is not below `acc.len()`.
/// Prefetches what `ahead` holds (the next list) along the way: spread over the loop where the
/// kernel can, all at once before it otherwise.
#[inline]
pub(crate) fn scatter_add(
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    encoding: ValueEncoding,
    ahead: &mut Prefetch<'_>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: `avx512::available` checked AVX-512F, AVX2 and F16C.
        return unsafe {
            let way = avx512::Scatter::preferred();
            avx512::scatter_add_way(way, acc, weight, items, values, encoding, ahead)
        };
    }
    ahead.rest();
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: `available` checked AVX2 and F16C.
        return unsafe { x86::scatter_add(acc, weight, items, values, encoding) };
    }
    #[cfg(target_arch = "aarch64")]
    return neon::scatter_add(acc, weight, items, values, encoding);
    #[allow(unreachable_code)]
    scalar::scatter_add(acc, weight, items, values, encoding)
}

/// [`scatter_add`] for a posting list whose first value is nibble `first_nibble` (0 or 1) of
/// `values[0]` (int4 lists start mid-byte when their first entry's number is odd; other
/// encodings take 0): the first entry is added on its own, then the rest, from a whole byte,
/// by [`scatter_add`]. Each entry gets the same `acc + weight * value` either way.
#[inline]
pub(crate) fn scatter_add_from(
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    first_nibble: usize,
    encoding: ValueEncoding,
    ahead: &mut Prefetch<'_>,
) -> bool {
    if encoding == ValueEncoding::I4 && first_nibble == 1 {
        let (Some(item), Some(&byte)) = (items.get(..2), values.first()) else {
            ahead.rest();
            return true;
        };
        let row = usize::from(u16::from_le_bytes([item[0], item[1]]));
        let Some(a) = acc.get_mut(row) else {
            return false;
        };
        *a += weight * f32::from(crate::row::int4_code(byte >> 4));
        return scatter_add(acc, weight, &items[2..], &values[1..], encoding, ahead);
    }
    scatter_add(acc, weight, items, values, encoding, ahead)
}

/// A posting list of a bitmap column layout (format 1.3) with the query's weight for its
/// dimension, as [`bitmap_add`] takes it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BitmapList<'a> {
    /// The query's entry for the list's dimension.
    pub weight: f32,
    /// The list's bitmap: little-endian `u64` words, bit `r % 64` of word `r / 64` set for
    /// block-local row `r`.
    pub words: &'a [u8],
    /// The list's values, one per set bit, in row order (int8: the codes; int4: the bytes
    /// holding nibbles `int4_first..int4_first + int4_len`).
    pub values: &'a [u8],
    /// Int4 only: the nibble of `values` that holds the list's first value (0 or 1).
    pub int4_first: usize,
    /// Int4 only: the list's number of values.
    pub int4_len: usize,
    /// The values section from the list's first value to its end (`values` and what follows
    /// it): a kernel may read past the list's values, there, to load whole vectors.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub tail: &'a [u8],
}

/// The AVX-512 scatter-add the way `way` says (`"gather"`: gather, add, scatter; `"stash"`:
/// scalar additions from a stack copy), whatever the dispatcher prefers, for the benches;
/// `None` without AVX-512F or for another name.
#[cfg(target_arch = "x86_64")]
pub(crate) fn scatter_add_avx512(
    way: &str,
    acc: &mut [f32],
    weight: f32,
    items: &[u8],
    values: &[u8],
    encoding: ValueEncoding,
) -> Option<bool> {
    let way = match way {
        "gather" => avx512::Scatter::GATHER,
        "stash" => avx512::Scatter::STASH,
        _ => return None,
    };
    if !avx512::available() {
        return None;
    }
    let ahead = &mut Prefetch::default();
    // SAFETY: `avx512::available` checked AVX-512F, AVX2 and F16C.
    Some(unsafe { avx512::scatter_add_way(way, acc, weight, items, values, encoding, ahead) })
}

/// Lines of each range a [`Prefetch`] asks for at most (4 KiB).
const PREFETCH_LINES: usize = 64;

/// Two byte ranges to bring into the cache a line at a time (the items and the values of the
/// posting list a scan reads next), so that a loop can spread the requests over its
/// iterations instead of stalling on a burst of them: the CPU holds only a few outstanding
/// misses at once.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Prefetch<'a> {
    items: &'a [u8],
    values: &'a [u8],
}

impl<'a> Prefetch<'a> {
    /// The first [`PREFETCH_LINES`] lines of `items` and of `values`.
    pub(crate) fn new(items: &'a [u8], values: &'a [u8]) -> Self {
        let cap = |b: &'a [u8]| b.get(..64 * PREFETCH_LINES).unwrap_or(b);
        Prefetch {
            items: cap(items),
            values: cap(values),
        }
    }

    /// Asks for the next line of each range (if any is left).
    #[inline(always)]
    pub(crate) fn step(&mut self) {
        self.items = prefetch_line(self.items);
        self.values = prefetch_line(self.values);
    }

    /// Asks for every line left.
    pub(crate) fn rest(&mut self) {
        while !(self.items.is_empty() && self.values.is_empty()) {
            self.step();
        }
    }
}

/// Hints the CPU to load every cache line of `bytes`, all at once (a no-op where there is no
/// prefetch instruction: x86_64 and aarch64 have one).
#[inline]
pub(crate) fn prefetch_all(bytes: &[u8]) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = prefetch_line(rest);
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = bytes;
}

/// Hints the CPU to load the cache line at the start of `bytes` (if any; a no-op where there is
/// no prefetch instruction: x86_64 and aarch64 have one) and returns the bytes after that
/// line.
#[inline(always)]
fn prefetch_line(bytes: &[u8]) -> &[u8] {
    if bytes.is_empty() {
        return bytes;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is only a hint: it never faults and has no effect on the
        // program's memory, and the pointer is into a live, non-empty slice anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().cast()) };
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is only a hint: it never faults (not even on an unmapped address), writes
    // nothing and leaves the flags alone; the pointer is into a live, non-empty slice anyway.
    // `core::arch::aarch64::_prefetch` is not stable, inline assembly is.
    unsafe {
        core::arch::asm!(
            "prfm pldl1keep, [{address}]",
            address = in(reg) bytes.as_ptr(),
            options(nostack, readonly, preserves_flags)
        );
    }
    bytes.get(64..).unwrap_or(&[])
}

/// The eight-lane dot product (see the module docs) with `query` of a row of `n` entries
/// whose `u8` columns start `columns` and whose values start `values` (f16, bf16 or int8
/// codes; f32 rows are summed sequentially elsewhere). Both slices may run past the row's
/// `n` entries (up to the end of the row data), which lets SIMD versions load whole vectors.
/// The first `n` columns must be below `query.len()` and both slices must hold `n` entries
/// (checked when the row was parsed); otherwise the result is unspecified but memory-safe.
#[inline]
pub(crate) fn dot8_u8_list(
    query: &[f32],
    columns: &[u8],
    values: &[u8],
    n: usize,
    encoding: ValueEncoding,
) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: `available` checked AVX2 and F16C.
        return unsafe { x86::dot8_u8_list(query, columns, values, n, encoding) };
    }
    #[cfg(target_arch = "aarch64")]
    return neon::dot8_u8_list(query, columns, values, n, encoding);
    #[allow(unreachable_code)]
    scalar::dot8_u8_list(query, columns, values, n, encoding)
}

/// Dot products with `query` of rows `first..first + out.len()` of a bitmap table with u32
/// offsets, into `out`; rows checked as [`crate::Table::row`] checks them, results equal to
/// [`crate::Row::dot`] bit for bit. On a corrupt row, returns its number.
#[inline]
pub(crate) fn bitmap_dots(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
) -> Result<(), usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(result) = bitmap_dots_avx512(query, offsets, data, first, out, encoding) {
        return result;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(result) = bitmap_dots_avx2(query, offsets, data, first, out, encoding) {
        return result;
    }
    #[cfg(target_arch = "aarch64")]
    return by_encoding!(
        encoding,
        neon::bitmap_dots(query, offsets, data, first, out)
    );
    #[allow(unreachable_code)]
    scalar::bitmap_dots(query, offsets, data, first, out, encoding)
}

/// Adds, list after list (in `lists`' order, the increasing dimension order), `weight * value`
/// to `acc[row]` for every entry of bitmap posting lists: each set bit of a list's bitmap
/// names the row of its next value. With `first`, `acc` starts from zeros (so each row gets
/// `((0 + p0) + p1) + ...`, the column scan's order; the SIMD kernel adds `weight * 0` for the
/// rows a list does not hold, which leaves every such sum as it is, bit for bit: the sums start
/// at +0 and are never -0). Returns false if a list's bits name a row at or past `acc.len()`, or
/// are more or fewer than its values: a damaged file, for which `acc` is left meaningless.
#[inline]
pub(crate) fn bitmap_add(
    acc: &mut [f32],
    lists: &[BitmapList<'_>],
    first: bool,
    encoding: ValueEncoding,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx512::rows_available() {
        // SAFETY: `rows_available` checked AVX-512F, BW, VL, AVX2, F16C and POPCNT.
        return unsafe { by_encoding!(encoding, avx512::bitmap_add(acc, lists, first)) };
    }
    scalar::bitmap_add(acc, lists, first, encoding)
}

/// [`bitmap_dots`] through the AVX-512 kernel; `None` without AVX-512F, BW and VL.
#[cfg(target_arch = "x86_64")]
fn bitmap_dots_avx512(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
) -> Option<Result<(), usize>> {
    if !avx512::rows_available() {
        return None;
    }
    // SAFETY: `rows_available` checked AVX-512F/BW/VL, AVX2, F16C and POPCNT.
    Some(unsafe {
        by_encoding!(
            encoding,
            avx512::bitmap_dots(query, offsets, data, first, out)
        )
    })
}

/// [`bitmap_dots`] through the AVX2 kernel whatever the CPU has beyond it, for the tests and
/// benches; `None` without AVX2 and F16C.
#[cfg(target_arch = "x86_64")]
pub(crate) fn bitmap_dots_avx2(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
) -> Option<Result<(), usize>> {
    if !x86::available() {
        return None;
    }
    // SAFETY: `available` checked AVX2 and F16C.
    Some(unsafe { by_encoding!(encoding, x86::bitmap_dots(query, offsets, data, first, out)) })
}

/// Turns dot products into scores in place: `((x + user_bias) + item_bias) + global_bias`,
/// with the item biases of `bias` (little-endian f32, one per score) or 0 without them (still
/// added, so that every path performs the same operations).
#[inline]
pub(crate) fn finish_scores(
    scores: &mut [f32],
    user_bias: f32,
    bias: Option<&[u8]>,
    global_bias: f32,
) {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: `available` checked AVX2.
        return unsafe { x86::finish_scores(scores, user_bias, bias, global_bias) };
    }
    #[cfg(target_arch = "aarch64")]
    return neon::finish_scores(scores, user_bias, bias, global_bias);
    #[allow(unreachable_code)]
    scalar::finish_scores(scores, user_bias, bias, global_bias)
}

/// The signature of the batch row kernels: dot products of rows `first..first + out.len()`
/// into `out`, or the number of the first corrupt row.
pub(crate) type RowDots =
    fn(&[f32], &[u8], &[u8], usize, &mut [f32], ValueEncoding) -> Result<(), usize>;

/// The position of the first score that beats `threshold` or is not finite, or
/// `scores.len()`: how the top-k selection skips, eight scores per instruction, the items that
/// cannot enter it.
#[inline]
pub(crate) fn first_candidate(scores: &[f32], threshold: f32) -> usize {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: `avx512::available` checked AVX-512F, AVX2 and F16C.
        return unsafe { avx512::first_candidate(scores, threshold) };
    }
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: `available` checked AVX2.
        return unsafe { x86::first_candidate(scores, threshold) };
    }
    #[cfg(target_arch = "aarch64")]
    return neon::first_candidate(scores, threshold);
    #[allow(unreachable_code)]
    scalar::first_candidate(scores, threshold)
}

/// Dot products with `query` of rows `first..first + out.len()` of a table with u8 column
/// lists and u32 offsets, into `out`: the inner loop of the row scan.
/// Rows are checked as [`crate::Table::row`] checks them; on a corrupt row, returns its
/// number. Results equal [`crate::Row::dot`] bit for bit.
#[inline]
pub(crate) fn u8_list_dots(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
) -> Result<(), usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(result) = u8_list_dots_avx512(query, offsets, data, first, out, encoding) {
        return result;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(result) = u8_list_dots_avx2(query, offsets, data, first, out, encoding) {
        return result;
    }
    scalar::u8_list_dots(query, offsets, data, first, out, encoding)
}

/// [`u8_list_dots`] through the AVX-512 kernel; `None` without AVX-512F, BW and VL.
#[cfg(target_arch = "x86_64")]
fn u8_list_dots_avx512(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
) -> Option<Result<(), usize>> {
    if !avx512::rows_available() {
        return None;
    }
    // SAFETY: `rows_available` checked AVX-512F/BW/VL, AVX2 and F16C.
    Some(unsafe {
        by_encoding!(
            encoding,
            avx512::u8_list_dots(query, offsets, data, first, out)
        )
    })
}

/// [`u8_list_dots`] through the AVX2 kernel whatever the CPU has beyond it, for the benches;
/// `None` without AVX2 and F16C.
#[cfg(target_arch = "x86_64")]
pub(crate) fn u8_list_dots_avx2(
    query: &[f32],
    offsets: &[u8],
    data: &[u8],
    first: usize,
    out: &mut [f32],
    encoding: ValueEncoding,
) -> Option<Result<(), usize>> {
    if !x86::available() {
        return None;
    }
    // SAFETY: `available` checked AVX2 and F16C.
    Some(unsafe {
        by_encoding!(
            encoding,
            x86::u8_list_dots(query, offsets, data, first, out)
        )
    })
}

/// Dot products with `query` of the rows of window `window` of a table of sliced rows
/// (format 1.4) into `out` (the window's rows, in order; its length must be the window's row
/// count): each row's products added one after another in column order from +0 (the column
/// scan's order, so f32 results equal it bit for bit), int8 rows then times their scale.
/// AVX-512 on x86_64 when the CPU has it (sixteen lanes and masked loads: a slice in one
/// register), else AVX2 (two halves of eight lanes, the query entries gathered); NEON on
/// aarch64 (four vectors of four lanes, the query entries looked up from registers up to 64
/// dimensions); the scalar kernel otherwise. Returns the number
/// of a slice found corrupt ([`crate::sliced::SlicedRows::slice`]'s checks, columns not
/// strictly increasing and below `query.len()`, or a row of the window held twice).
#[inline]
pub(crate) fn sliced_dots(
    query: &[f32],
    rows: &crate::sliced::SlicedRows<'_>,
    window: usize,
    out: &mut [f32],
) -> Result<(), usize> {
    #[cfg(target_arch = "x86_64")]
    if avx512::rows_available() {
        // SAFETY: `rows_available` checked AVX-512F/BW/VL, AVX2, F16C and POPCNT.
        return unsafe {
            by_encoding!(rows.encoding, avx512::sliced_dots(query, rows, window, out))
        };
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(result) = sliced_dots_avx2(query, rows, window, out) {
        return result;
    }
    #[cfg(target_arch = "aarch64")]
    return by_encoding!(rows.encoding, neon::sliced_dots(query, rows, window, out));
    #[allow(unreachable_code)]
    scalar::sliced_dots(query, rows, window, out)
}

/// [`sliced_dots`] through the AVX2 kernel whatever the CPU has beyond it (for the tests and
/// benches); `None` without AVX2 and F16C.
#[cfg(target_arch = "x86_64")]
pub(crate) fn sliced_dots_avx2(
    query: &[f32],
    rows: &crate::sliced::SlicedRows<'_>,
    window: usize,
    out: &mut [f32],
) -> Option<Result<(), usize>> {
    if !x86::available() {
        return None;
    }
    // SAFETY: `available` checked AVX2 and F16C.
    Some(unsafe { by_encoding!(rows.encoding, x86::sliced_dots(query, rows, window, out)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ValueEncoding;

    /// A deterministic stream of pseudo-random 64-bit values.
    struct Stream(u64);
    impl Stream {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn float(&mut self) -> f32 {
            (self.next() % 20_000) as f32 / 1000.0 - 10.0
        }
    }

    fn encode(value: f32, encoding: ValueEncoding) -> Vec<u8> {
        match encoding {
            ValueEncoding::F32 => value.to_le_bytes().to_vec(),
            ValueEncoding::F16 => half::f16::from_f32(value).to_bits().to_le_bytes().to_vec(),
            ValueEncoding::Bf16 => half::bf16::from_f32(value).to_bits().to_le_bytes().to_vec(),
            ValueEncoding::I8 => vec![(value * 12.0) as i8 as u8],
            // Callers pack int4 codes two to a byte: see `pack`.
            ValueEncoding::I4 => vec![((value * 0.7) as i8).clamp(-7, 7) as u8 & 0x0F],
        }
    }

    /// Values as `encode` gives them, laid out as the encoding stores them: for int4, two
    /// nibbles a byte, the low one first, a zero high nibble after an odd count.
    fn pack(encoded: &[Vec<u8>], encoding: ValueEncoding) -> Vec<u8> {
        if encoding != ValueEncoding::I4 {
            return encoded.concat();
        }
        encoded
            .chunks(2)
            .map(|pair| pair[0][0] | pair.get(1).map_or(0, |v| v[0] << 4))
            .collect()
    }

    /// Each list's bitmap bytes, each list's entry range in the section, the values section.
    type BitmapSection = (Vec<Vec<u8>>, Vec<(usize, usize)>, Vec<u8>);

    /// The bytes of entries `start..end` of a values section in `encoding` (whole bytes for
    /// int4), and the nibble the first entry sits in.
    fn entry_bytes(encoding: ValueEncoding, start: usize, end: usize) -> (usize, usize, usize) {
        match encoding.byte_width() {
            Some(width) => (width * start, width * end, 0),
            None => (start / 2, end.div_ceil(2), start % 2),
        }
    }

    /// The list of entries `span` of `section`, with `weight` and bitmap `words`.
    fn bitmap_list<'a>(
        section: &'a [u8],
        span: (usize, usize),
        encoding: ValueEncoding,
        weight: f32,
        words: &'a [u8],
    ) -> BitmapList<'a> {
        let (from, to, nibble) = entry_bytes(encoding, span.0, span.1);
        BitmapList {
            weight,
            words,
            values: &section[from..to],
            int4_first: nibble,
            int4_len: span.1 - span.0,
            tail: &section[from..],
        }
    }

    /// Bitmap posting lists for a block of `rows` rows: for each list, its words (for
    /// `block_rows` rows), its values, and the whole values section they share.
    fn bitmap_lists(
        rng: &mut Stream,
        lists: usize,
        rows: usize,
        block_rows: usize,
        density: u64,
        encoding: ValueEncoding,
    ) -> BitmapSection {
        let (mut words, mut spans, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..lists {
            let mut bits = vec![0u8; block_rows / 8];
            let start = values.len();
            for row in 0..rows {
                if rng.next() % 100 < density {
                    bits[row / 8] |= 1 << (row % 8);
                    values.push(encode(rng.float(), encoding));
                }
            }
            words.push(bits);
            spans.push((start, values.len()));
        }
        (words, spans, pack(&values, encoding))
    }

    /// `bitmap_add` (AVX-512 where the CPU has it) gives its scalar twin's bits: every encoding,
    /// full and short blocks, one to twenty lists (more than a register group), sparse and
    /// dense lists, starting from zeros or from earlier sums, with and without room after the
    /// last list's values for whole loads; and both refuse a bit past the block, or bits that
    /// are more or fewer than the values.
    #[test]
    fn bitmap_add_equals_scalar() {
        let mut rng = Stream(21);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for &encoding in ValueEncoding::ALL {
            for (rows, block_rows) in [(4096, 4096), (1904, 4096), (64, 64), (63, 64), (1, 64)] {
                for lists in [0, 1, 3, 8, 9, 20] {
                    for density in [0, 3, 10, 50, 100] {
                        let (words, spans, mut section) =
                            bitmap_lists(&mut rng, lists, rows, block_rows, density, encoding);
                        for padded in [false, true] {
                            if padded {
                                section.extend(vec![0u8; 256]);
                            }
                            let weights: Vec<f32> = (0..lists).map(|_| rng.float()).collect();
                            let input: Vec<BitmapList<'_>> = (0..lists)
                                .map(|i| {
                                    bitmap_list(&section, spans[i], encoding, weights[i], &words[i])
                                })
                                .collect();
                            let start: Vec<f32> = (0..rows).map(|_| rng.float()).collect();
                            for first in [true, false] {
                                let (mut got, mut want) = (start.clone(), start.clone());
                                assert!(bitmap_add(&mut got, &input, first, encoding));
                                assert!(scalar::bitmap_add(&mut want, &input, first, encoding));
                                let what = format!(
                                    "{encoding} rows {rows} lists {lists} density {density} \
                                     padded {padded} first {first}"
                                );
                                assert_eq!(bits(&got), bits(&want), "{what}");
                            }
                            // Damage: a row past the block, a row without a value, a value
                            // without a row.
                            if lists > 0 && rows < block_rows {
                                let mut w = words[0].clone();
                                w[rows / 8] |= 1 << (rows % 8);
                                let mut damaged = input.clone();
                                damaged[0].words = &w;
                                let mut acc = start.clone();
                                assert!(!bitmap_add(&mut acc, &damaged, true, encoding));
                                assert!(!scalar::bitmap_add(&mut acc, &damaged, true, encoding));
                            }
                            if let Some(i) = (0..lists).find(|&i| spans[i].1 > spans[i].0) {
                                let (s, e) = spans[i];
                                let mut damaged = input.clone();
                                damaged[i] =
                                    bitmap_list(&section, (s, e - 1), encoding, 1.0, &words[i]);
                                let mut acc = start.clone();
                                assert!(!bitmap_add(&mut acc, &damaged, true, encoding));
                                assert!(!scalar::bitmap_add(&mut acc, &damaged, true, encoding));
                                let (_, to, _) = entry_bytes(encoding, s, e + 1);
                                if to <= section.len() {
                                    let mut damaged = input.clone();
                                    damaged[i] =
                                        bitmap_list(&section, (s, e + 1), encoding, 1.0, &words[i]);
                                    assert!(!bitmap_add(&mut acc, &damaged, true, encoding));
                                    assert!(!scalar::bitmap_add(
                                        &mut acc, &damaged, true, encoding
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `finish_scores` gives its scalar twin's bits, with and without biases, for every length.
    #[test]
    fn finish_scores_equals_scalar() {
        let mut rng = Stream(5);
        for len in 0..70 {
            let scores: Vec<f32> = (0..len).map(|_| rng.float()).collect();
            let bias: Vec<u8> = (0..len).flat_map(|_| rng.float().to_le_bytes()).collect();
            for b in [None, Some(&bias[..])] {
                let (mut got, mut want) = (scores.clone(), scores.clone());
                finish_scores(&mut got, 0.3, b, -1.25);
                scalar::finish_scores(&mut want, 0.3, b, -1.25);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "len {len}");
            }
        }
    }

    /// `first_candidate` finds what its scalar twin finds, with candidates and non-finite
    /// values at every position.
    #[test]
    fn first_candidate_equals_scalar() {
        let mut rng = Stream(99);
        for len in (0..70).chain([127, 128, 129, 200]) {
            for special in [
                None,
                Some(f32::NAN),
                Some(f32::INFINITY),
                Some(f32::NEG_INFINITY),
                Some(5.0),
            ] {
                let mut scores: Vec<f32> = (0..len).map(|_| rng.float() * 0.1).collect();
                if let (Some(x), true) = (special, len > 0) {
                    let at = (rng.next() % len as u64) as usize;
                    scores[at] = x;
                }
                for threshold in [f32::NEG_INFINITY, 0.5, 2.0, 100.0, f32::NAN] {
                    let want = scalar::first_candidate(&scores, threshold);
                    let what = format!("len {len} special {special:?} threshold {threshold}");
                    assert_eq!(first_candidate(&scores, threshold), want, "{what}");
                    #[cfg(target_arch = "x86_64")]
                    {
                        if x86::available() {
                            // SAFETY: AVX2 checked just above.
                            let got = unsafe { x86::first_candidate(&scores, threshold) };
                            assert_eq!(got, want, "AVX2 {what}");
                        }
                        if avx512::available() {
                            // SAFETY: AVX-512F, AVX2 and F16C checked just above.
                            let got = unsafe { avx512::first_candidate(&scores, threshold) };
                            assert_eq!(got, want, "AVX-512 {what}");
                        }
                    }
                }
            }
        }
    }

    /// The bitmap batch kernel equals `Row::dot` on every row of bitmap tables of every value
    /// encoding and several dimensions, and stops at a row with a bit past the dimension.
    #[test]
    fn bitmap_batch_kernel_equals_row_dot() {
        use crate::builder::{ModelBuilder, SparseMatrix, TableSpec};
        use crate::{IndexEncoding, Model, Role};
        let mut rng = Stream(0xb17);
        for &encoding in ValueEncoding::ALL {
            // (dimension, one in how many entries is non-zero: 1 is a dense table)
            for (dim, one_in) in [(5usize, 3), (37, 3), (64, 3), (64, 1), (70, 3), (130, 3)] {
                let rows = 300;
                let data: Vec<f32> = (0..rows * dim)
                    .map(|_| {
                        if rng.next().is_multiple_of(one_in) {
                            rng.float()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let m = SparseMatrix::from_dense(rows, dim, &data).unwrap();
                // One offset per row: the kernels' own input (bitmap rows in blocks reach
                // them through offsets worked out per block, see `crate::bitmap_blocks`).
                let spec = TableSpec::new("i", Role::Item, m)
                    .values(encoding)
                    .with_per_row_offsets(true);
                let bytes = ModelBuilder::new().table(spec).build().unwrap();
                let model = Model::from_bytes(&bytes).unwrap();
                let items = model.items().unwrap();
                assert_eq!(items.index_encoding(), IndexEncoding::Bitmap);
                let query: Vec<f32> = (0..dim).map(|_| rng.float()).collect();
                let (offsets, rows_data) = items.raw_rows();
                for (name, kernel) in bitmap_kernels() {
                    let index = IndexEncoding::Bitmap;
                    padding_nibble_refused(
                        name, kernel, &query, offsets, rows_data, index, encoding,
                    );
                    let mut got = vec![0.0f32; rows];
                    kernel(&query, offsets, rows_data, 0, &mut got, encoding).unwrap();
                    for (r, g) in got.iter().enumerate() {
                        let want = items.row(r).unwrap().dot(&query).unwrap();
                        let what = format!("{name} {encoding} dim {dim} 1/{one_in} row {r}");
                        assert_eq!(g.to_bits(), want.to_bits(), "{what}");
                    }
                    // A batch starting mid-table, of a length that is not a multiple of 8.
                    let mut part = vec![0.0f32; 45];
                    kernel(&query, offsets, rows_data, 13, &mut part, encoding).unwrap();
                    assert_eq!(part, got[13..58], "{name} {encoding} dim {dim} from row 13");
                    // A row one byte short: its length no longer matches its bitmap.
                    let r = 21;
                    let end = crate::le::u32_at(offsets, r + 1).unwrap();
                    if end > crate::le::u32_at(offsets, r).unwrap() {
                        let mut shortened = offsets.to_vec();
                        shortened[4 * (r + 1)..4 * (r + 2)]
                            .copy_from_slice(&(end - 1).to_le_bytes());
                        let mut out = vec![0.0f32; rows];
                        let result = kernel(&query, &shortened, rows_data, 0, &mut out, encoding);
                        assert_eq!(result, Err(r), "{name} {encoding} dim {dim}: short row");
                    }
                }
                if dim % 8 != 0 {
                    let r = (0..rows)
                        .find(|&r| !items.row(r).unwrap().is_empty())
                        .unwrap();
                    let start = crate::le::u32_at(offsets, r).unwrap() as usize;
                    let mut damaged = rows_data.to_vec();
                    damaged[start + dim.div_ceil(8) - 1] |= 0x80;
                    let mut got = vec![0.0f32; rows];
                    for (name, kernel) in bitmap_kernels() {
                        assert_eq!(
                            kernel(&query, offsets, &damaged, 0, &mut got, encoding),
                            Err(r),
                            "{name} {encoding} dim {dim}: a bit past the dimension"
                        );
                    }
                }
            }
        }
    }

    /// Every bitmap row kernel this machine can run, by name: the scalar reference, the
    /// dispatcher, and each x86 or NEON variant on its own (whichever the dispatcher prefers).
    fn bitmap_kernels() -> Vec<(&'static str, RowDots)> {
        let mut kernels: Vec<(&'static str, RowDots)> =
            vec![("scalar", scalar::bitmap_dots), ("dispatch", bitmap_dots)];
        #[cfg(target_arch = "aarch64")]
        kernels.push(("neon", |q, o, d, f, out, e| {
            by_encoding!(e, neon::bitmap_dots(q, o, d, f, out))
        }));
        #[cfg(target_arch = "x86_64")]
        {
            if x86::available() {
                kernels.push(("avx2", |q, o, d, f, out, e| {
                    bitmap_dots_avx2(q, o, d, f, out, e).unwrap()
                }));
            }
            if avx512::rows_available() {
                kernels.push(("avx512", |q, o, d, f, out, e| {
                    bitmap_dots_avx512(q, o, d, f, out, e).unwrap()
                }));
            }
        }
        kernels
    }

    /// For int4 tables: `kernel` refuses each of the first rows of an odd number of entries
    /// (whose last high nibble is padding) once that nibble is not zero, naming the row.
    fn padding_nibble_refused(
        name: &str,
        kernel: RowDots,
        query: &[f32],
        offsets: &[u8],
        data: &[u8],
        index: crate::IndexEncoding,
        encoding: ValueEncoding,
    ) {
        if encoding != ValueEncoding::I4 {
            return;
        }
        let rows = offsets.len() / 4 - 1;
        let dim = query.len();
        let mut tested = 0;
        for r in 0..rows {
            let start = crate::le::u32_at(offsets, r).unwrap() as usize;
            let end = crate::le::u32_at(offsets, r + 1).unwrap() as usize;
            let record = &data[start..end];
            let nnz = crate::row::Row::parse(record, dim, index, encoding)
                .unwrap()
                .nnz();
            if nnz.is_multiple_of(2) || tested == 5 {
                continue;
            }
            tested += 1;
            for bit in [0x10u8, 0x20, 0x40, 0x80] {
                let mut damaged = data.to_vec();
                damaged[end - 1] |= bit;
                let mut out = vec![0.0f32; rows];
                assert_eq!(
                    kernel(query, offsets, &damaged, 0, &mut out, encoding),
                    Err(r),
                    "{name} dim {dim} row {r}: a padding nibble of {bit:#04x}"
                );
            }
        }
        assert!(tested > 0, "{name} dim {dim}: no row of an odd length");
    }

    /// Every u8-list row kernel this machine can run, by name: the scalar reference, the
    /// dispatcher, and each x86 variant on its own (whichever the dispatcher prefers).
    fn row_kernels() -> Vec<(&'static str, RowDots)> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut kernels: Vec<(&'static str, RowDots)> =
            vec![("scalar", scalar::u8_list_dots), ("dispatch", u8_list_dots)];
        #[cfg(target_arch = "x86_64")]
        {
            if x86::available() {
                kernels.push(("avx2", |q, o, d, f, out, e| {
                    u8_list_dots_avx2(q, o, d, f, out, e).unwrap()
                }));
            }
            if avx512::rows_available() {
                kernels.push(("avx512", |q, o, d, f, out, e| {
                    u8_list_dots_avx512(q, o, d, f, out, e).unwrap()
                }));
            }
        }
        kernels
    }

    /// The batch row kernel equals `Row::dot` on every row and stops at the same corrupt row
    /// as `Table::row`, for rows of every length, with damaged rows mixed in.
    #[test]
    fn row_batch_kernel_equals_row_dot() {
        use crate::builder::{ModelBuilder, SparseMatrix, TableSpec};
        use crate::{Model, Role};
        let mut rng = Stream(0xfeed);
        for &encoding in ValueEncoding::ALL {
            for dim in [3usize, 17, 33, 64, 200] {
                let rows = 700;
                let data: Vec<f32> = (0..rows * dim)
                    .map(|i| {
                        // Most rows have about r % 6 non-zeros, every ninth about r % 40:
                        // lengths 0 to 40, beyond 16 too, short enough on average for u8 lists.
                        let r = i / dim;
                        let target = if r % 9 == 0 { r % 40 } else { r % 6 };
                        if (rng.next() % dim as u64) < target as u64 {
                            rng.float()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let m = SparseMatrix::from_dense(rows, dim, &data).unwrap();
                // Per-row offsets: lists against bitmaps as format 1.6 chose them (bitmap rows
                // in blocks would win at d = 64 too).
                let spec = TableSpec::new("i", Role::Item, m)
                    .values(encoding)
                    .with_per_row_offsets(true);
                let bytes = ModelBuilder::new().table(spec).build().unwrap();
                let model = Model::from_bytes(&bytes).unwrap();
                let items = model.items().unwrap();
                if items.index_encoding() != crate::IndexEncoding::U8List {
                    assert!(
                        dim < 64,
                        "{encoding} dim {dim} is expected to take u8 lists"
                    );
                    continue;
                }
                let query: Vec<f32> = (0..dim).map(|_| rng.float()).collect();
                let (offsets, rows_data) = items.raw_rows();
                for (name, kernel) in row_kernels() {
                    let mut got = vec![0.0f32; rows];
                    kernel(&query, offsets, rows_data, 0, &mut got, encoding)
                        .unwrap_or_else(|r| panic!("{name} {encoding} dim {dim}: row {r}"));
                    for (r, g) in got.iter().enumerate() {
                        let want = items.row(r).unwrap().dot(&query).unwrap();
                        assert_eq!(
                            g.to_bits(),
                            want.to_bits(),
                            "{name} {encoding} dim {dim} row {r}"
                        );
                    }
                    // A batch starting mid-table, of a length that is not a multiple of 8.
                    let mut part = vec![0.0f32; 45];
                    kernel(&query, offsets, rows_data, 13, &mut part, encoding).unwrap();
                    assert_eq!(part, got[13..58], "{name} {encoding} dim {dim} from row 13");
                    // Damage one row's columns: the kernel and Table::row see row r as corrupt.
                    for r in [5usize, 39, 450] {
                        let start = crate::le::u32_at(offsets, r).unwrap() as usize;
                        let end = crate::le::u32_at(offsets, r + 1).unwrap() as usize;
                        if items.row(r).unwrap().nnz() < 2 {
                            continue; // one column cannot be out of order
                        }
                        let mut damaged = rows_data.to_vec();
                        damaged[start + 1] = damaged[start];
                        let mut out = vec![0.0f32; rows];
                        assert_eq!(
                            kernel(&query, offsets, &damaged, 0, &mut out, encoding),
                            Err(r),
                            "{name} {encoding} dim {dim} row {r} record {:?}",
                            &damaged[start..end]
                        );
                        // A column at or past the dimension, in the row's last entry.
                        let n = items.row(r).unwrap().nnz();
                        let mut damaged = rows_data.to_vec();
                        damaged[start + n - 1] = dim.min(255) as u8;
                        assert_eq!(
                            kernel(&query, offsets, &damaged, 0, &mut out, encoding),
                            Err(r),
                            "{name} {encoding} dim {dim} row {r}: column past the dimension"
                        );
                    }
                    let index = crate::IndexEncoding::U8List;
                    padding_nibble_refused(
                        name, kernel, &query, offsets, rows_data, index, encoding,
                    );
                }
            }
        }
    }

    /// The dispatching kernels (SIMD where the CPU has it) equal the scalar ones bit for bit,
    /// for every length from 0 to 40 entries and every value encoding, with and without slack
    /// bytes after the row.
    #[test]
    fn simd_kernels_equal_their_scalar_twins() {
        let mut rng = Stream(0x1234_5678);
        for &encoding in ValueEncoding::ALL {
            for n in 0..=40usize {
                for slack in [0usize, 3, 64] {
                    let dim = 200;
                    let query: Vec<f32> = (0..dim).map(|_| rng.float()).collect();
                    let mut columns: Vec<u8> = (0..dim as u8)
                        .filter(|_| rng.next().is_multiple_of(4))
                        .collect();
                    columns.truncate(n);
                    let n = columns.len();
                    let encoded: Vec<Vec<u8>> =
                        (0..n).map(|_| encode(rng.float(), encoding)).collect();
                    let values = pack(&encoded, encoding);
                    let mut bytes = columns.clone();
                    bytes.extend(&values);
                    bytes.extend((0..slack).map(|_| rng.next() as u8));
                    if encoding != ValueEncoding::F32 {
                        let (cols, vals) = (&bytes[..], &bytes[n..]);
                        let want = scalar::dot8_u8_list(&query, cols, vals, n, encoding);
                        let got = dot8_u8_list(&query, cols, vals, n, encoding);
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{encoding} n={n} slack={slack}"
                        );
                    }
                    // Scatter: the same entries as a posting list over an accumulator.
                    let items: Vec<u8> = columns
                        .iter()
                        .flat_map(|&c| u16::from(c).to_le_bytes())
                        .collect();
                    let mut want = query.clone();
                    let mut got = query.clone();
                    assert!(scalar::scatter_add(
                        &mut want, 0.37, &items, &values, encoding
                    ));
                    let mut ahead = Prefetch::new(&items, &values);
                    assert!(scatter_add(
                        &mut got, 0.37, &items, &values, encoding, &mut ahead
                    ));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{encoding} scatter n={n}");
                    // Each x86 variant on its own, whichever the dispatcher prefers.
                    #[cfg(target_arch = "x86_64")]
                    {
                        if x86::available() {
                            let mut avx2 = query.clone();
                            // SAFETY: AVX2 and F16C checked just above.
                            let ok = unsafe {
                                x86::scatter_add(&mut avx2, 0.37, &items, &values, encoding)
                            };
                            assert!(ok);
                            assert_eq!(bits(&avx2), bits(&want), "{encoding} AVX2 n={n}");
                        }
                        if avx512::available() {
                            let ways = [
                                ("gather", avx512::Scatter::GATHER),
                                ("stash", avx512::Scatter::STASH),
                            ];
                            for (way, code) in ways {
                                let kernel = |acc: &mut [f32], w, ahead: &mut Prefetch<'_>| {
                                    // SAFETY: AVX-512F, AVX2 and F16C checked just above.
                                    unsafe {
                                        avx512::scatter_add_way(
                                            code, acc, w, &items, &values, encoding, ahead,
                                        )
                                    }
                                };
                                let mut avx512 = query.clone();
                                let mut ahead = Prefetch::new(&items, &values);
                                assert!(kernel(&mut avx512, 0.37, &mut ahead));
                                let what = format!("{encoding} AVX-512 {way} n={n}");
                                assert_eq!(bits(&avx512), bits(&want), "{what}");
                                // A row past the accumulator is refused, whatever the way.
                                if n > 0 {
                                    let last = usize::from(*columns.last().unwrap());
                                    let mut short = vec![0.0f32; last];
                                    let ok = kernel(&mut short, 1.0, &mut Prefetch::default());
                                    assert!(!ok, "{what}: a row past the accumulator");
                                }
                            }
                        }
                    }
                    // An item past the accumulator is refused by both.
                    if n > 0 {
                        let mut short = vec![0.0f32; usize::from(*columns.last().unwrap())];
                        let mut ahead = Prefetch::default();
                        assert!(!scatter_add(
                            &mut short, 1.0, &items, &values, encoding, &mut ahead
                        ));
                    }
                }
            }
        }
    }

    /// Int4 posting lists starting on either nibble of a byte (an odd first entry starts
    /// mid-byte): `scatter_add_from` (the SIMD kernel this machine dispatches to, after the
    /// first entry on its own) adds exactly `weight * code` to each row, in list order, as
    /// the format defines, for every length from 0 to 40; and refuses a row past the
    /// accumulator.
    #[test]
    fn int4_lists_from_either_nibble_add_their_codes() {
        let mut rng = Stream(0x14);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for n in 0..=40usize {
            for first in [0usize, 1] {
                let acc_len = 300;
                let mut rows: Vec<u16> = (0..acc_len as u16)
                    .filter(|_| rng.next().is_multiple_of(6))
                    .collect();
                rows.truncate(n);
                let n = rows.len();
                let codes: Vec<Vec<u8>> = (0..first + n + 3)
                    .map(|_| vec![((rng.next() % 15) as i8 - 7) as u8 & 0x0F])
                    .collect();
                let section = pack(&codes, ValueEncoding::I4);
                let items: Vec<u8> = rows.iter().flat_map(|r| r.to_le_bytes()).collect();
                let values = &section[first / 2..];
                let start: Vec<f32> = (0..acc_len).map(|_| rng.float()).collect();
                let mut want = start.clone();
                for (k, &row) in rows.iter().enumerate() {
                    let code = crate::row::nibble(&section, first + k);
                    want[usize::from(row)] += 0.37 * f32::from(code);
                }
                let mut got = start.clone();
                let mut ahead = Prefetch::new(&items, values);
                let encoding = ValueEncoding::I4;
                assert!(scatter_add_from(
                    &mut got, 0.37, &items, values, first, encoding, &mut ahead
                ));
                assert_eq!(bits(&got), bits(&want), "n {n} first nibble {first}");
                if n > 0 {
                    let mut short = vec![0.0f32; usize::from(*rows.last().unwrap())];
                    let mut ahead = Prefetch::default();
                    assert!(!scatter_add_from(
                        &mut short, 1.0, &items, values, first, encoding, &mut ahead
                    ));
                }
            }
        }
    }

    /// The SIMD nibble decoders read every byte as `row::nibble` does: the low nibble first,
    /// each a signed 4-bit code.
    #[test]
    fn simd_nibble_decoders_equal_the_scalar_one() {
        for b in 0..=255u8 {
            let bytes = [b, b ^ 0x5A, b.wrapping_mul(7), !b, b >> 1, b ^ 0xF0, 3, b];
            let want: Vec<f32> = (0..16)
                .map(|k| f32::from(crate::row::nibble(&bytes, k)))
                .collect();
            #[cfg(target_arch = "x86_64")]
            if x86::available() {
                use core::arch::x86_64::*;
                let mut got = [0.0f32; 16];
                // SAFETY: AVX2 checked just above; `bytes` is 8 readable bytes and `got` 16
                // writable floats.
                unsafe {
                    _mm256_storeu_ps(got.as_mut_ptr(), x86::nibbles8(&bytes, 0));
                    _mm256_storeu_ps(got.as_mut_ptr().add(8), x86::nibbles8(&bytes, 8));
                }
                assert_eq!(&got[..], &want[..], "avx2 nibbles8 {b:#04x}");
                let mut codes = [0i8; 16];
                // SAFETY: as above; `codes` is 16 writable bytes.
                unsafe {
                    let packed = _mm_loadl_epi64(bytes.as_ptr().cast());
                    _mm_storeu_si128(codes.as_mut_ptr().cast(), x86::nibbles16(packed));
                }
                let codes: Vec<f32> = codes.iter().map(|&c| f32::from(c)).collect();
                assert_eq!(codes, want, "nibbles16 {b:#04x}");
            }
            #[cfg(target_arch = "aarch64")]
            {
                use core::arch::aarch64::*;
                let mut got = [0.0f32; 16];
                for half in 0..2 {
                    let mut raw = [0u8; 8];
                    raw[..4].copy_from_slice(&bytes[4 * half..4 * half + 4]);
                    // SAFETY: NEON is always available on aarch64; `raw` is 8 readable bytes
                    // and each store writes 4 of the 16 floats of `got`.
                    unsafe {
                        let [low, high] = neon::nibbles8(vld1_u8(raw.as_ptr()));
                        vst1q_f32(got.as_mut_ptr().add(8 * half), low);
                        vst1q_f32(got.as_mut_ptr().add(8 * half + 4), high);
                    }
                }
                assert_eq!(&got[..], &want[..], "neon nibbles8 {b:#04x}");
            }
        }
    }

    /// The sliced-rows kernel this machine dispatches to gives the scalar kernel's bits on
    /// tables of every value encoding and several dimensions (the register lookup up to 64,
    /// the gather above), from any slice on, and both reject the same damaged slices.
    #[test]
    #[cfg(feature = "sliced-rows")]
    fn sliced_kernel_equals_its_scalar_twin() {
        use crate::builder::{ModelBuilder, SparseMatrix, TableSpec};
        use crate::{Model, Role};
        let mut rng = Stream(0x511ce);
        for &encoding in ValueEncoding::ALL {
            for (dim, one_in) in [
                (1usize, 2),
                (5, 3),
                (32, 3),
                (33, 4),
                (64, 3),
                (64, 1),
                (65, 3),
                (200, 9),
                (256, 1),
            ] {
                let rows = 333;
                let data: Vec<f32> = (0..rows * dim)
                    .map(|_| {
                        if rng.next().is_multiple_of(one_in) {
                            rng.float()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let m = SparseMatrix::from_dense(rows, dim, &data).unwrap();
                let built = ModelBuilder::new()
                    .table(
                        TableSpec::new("i", Role::Item, m)
                            .values(encoding)
                            .with_sliced_rows(true),
                    )
                    .build();
                if encoding == ValueEncoding::I4 {
                    // Sliced rows do not take int4 values: the builder refuses them.
                    assert!(built.is_err(), "{encoding} dim {dim}");
                    continue;
                }
                let Ok(bytes) = built else {
                    // A dense row of 256 entries does not fit a length byte.
                    assert_eq!((dim, one_in), (256, 1));
                    continue;
                };
                let model = Model::from_bytes(&bytes).unwrap();
                let items = model.items().unwrap();
                let sliced = items.sliced().unwrap();
                let query: Vec<f32> = (0..dim).map(|_| rng.float()).collect();
                let what = format!("{encoding} dim {dim} 1/{one_in}");
                // Window by window (256 rows, then 77).
                let windows = [0..256, 256..rows];
                let mut want = vec![0.0f32; rows];
                let mut got = vec![0.0f32; rows];
                for (w, range) in windows.iter().enumerate() {
                    scalar::sliced_dots(&query, &sliced, w, &mut want[range.clone()]).unwrap();
                    sliced_dots(&query, &sliced, w, &mut got[range.clone()]).unwrap();
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{what}");
                // The NEON kernel on its own (what the dispatcher runs on aarch64).
                #[cfg(target_arch = "aarch64")]
                for (w, range) in windows.iter().enumerate() {
                    let out = &mut got[range.clone()];
                    by_encoding!(encoding, neon::sliced_dots(&query, &sliced, w, out)).unwrap();
                    assert_eq!(bits(out), bits(&want[range.clone()]), "{what} neon");
                }
                // The AVX2 kernel on its own, whatever the dispatcher prefers.
                #[cfg(target_arch = "x86_64")]
                for (w, range) in windows.iter().enumerate() {
                    let out = &mut got[range.clone()];
                    if let Some(result) = sliced_dots_avx2(&query, &sliced, w, out) {
                        result.unwrap();
                        assert_eq!(bits(out), bits(&want[range.clone()]), "{what} avx2");
                    }
                }
                // Each row's dot product is the one `score` computes from the row alone.
                for r in (0..rows).step_by(7) {
                    let (dot, _) = sliced.dot_and_norm(r, &query).unwrap();
                    assert_eq!(dot.to_bits(), want[r].to_bits(), "{what} row {r}");
                }
                // An output of the wrong length is refused.
                let short_out = &mut got[..76];
                assert_eq!(
                    sliced_dots(&query, &sliced, 1, short_out),
                    Err(16),
                    "{what}"
                );
                // Damage: a column at the dimension (when a byte can hold it), two entries of
                // one row swapped (when a row has two), two lanes holding one row, a slice one
                // byte short.
                let header = 32 + if encoding == ValueEncoding::I8 { 32 } else { 0 };
                let (offsets, data) = (sliced.offsets, sliced.data);
                let slice = (0..crate::sliced::slice_count(rows))
                    .find(|&s| sliced.slice(s).unwrap().longest >= 2)
                    .or((dim == 1).then_some(0));
                let Some(s) = slice else { continue };
                let start = crate::le::u32_at(offsets, s).unwrap() as usize;
                let first = sliced.slice(s).unwrap();
                let mut damaged = Vec::new();
                let lane = first.lengths.iter().position(|&n| n >= 2);
                if let Some(lane) = lane {
                    // Lane `lane`'s first two entries: at step 0 after the lanes before it
                    // that have one, and at step 1 after all step-0 entries and the lanes
                    // before it that have a second.
                    let before = |t: usize| {
                        first.lengths[..lane]
                            .iter()
                            .filter(|&&n| usize::from(n) > t)
                            .count()
                    };
                    let step0 = first.lengths.iter().filter(|&&n| n > 0).count();
                    let (a, b) = (
                        start + header + before(0),
                        start + header + step0 + before(1),
                    );
                    let mut d = data.to_vec();
                    d.swap(a, b);
                    damaged.push((d, "columns out of order"));
                }
                if dim < 256 && first.lengths[0] > 0 {
                    let mut d = data.to_vec();
                    d[start + header] = dim as u8;
                    damaged.push((d, "column at the dimension"));
                }
                let mut d = data.to_vec();
                d[start + 17] = d[start + 16];
                damaged.push((d, "two lanes holding one row"));
                if first.lengths[0] > first.lengths[15] {
                    let mut d = data.to_vec();
                    d.swap(start, start + 15);
                    damaged.push((d, "lengths increasing along the lanes"));
                }
                let mut short = offsets.to_vec();
                let end = crate::le::u32_at(offsets, s + 1).unwrap();
                short[4 * (s + 1)..4 * (s + 2)].copy_from_slice(&(end - 1).to_le_bytes());
                let short_rows = crate::sliced::SlicedRows {
                    offsets: &short,
                    ..sliced
                };
                let w = s / crate::sliced::WINDOW_SLICES;
                let out = &mut got[windows[w].clone()];
                let scalar_short = scalar::sliced_dots(&query, &short_rows, w, out);
                assert_eq!(scalar_short, Err(s), "{what}: short");
                assert_eq!(
                    sliced_dots(&query, &short_rows, w, out),
                    Err(s),
                    "{what}: short"
                );
                for (d, how) in &damaged {
                    let rows_d = crate::sliced::SlicedRows { data: d, ..sliced };
                    let scalar_result = scalar::sliced_dots(&query, &rows_d, w, out);
                    assert_eq!(scalar_result, Err(s), "{what}: {how}");
                    assert_eq!(
                        sliced_dots(&query, &rows_d, w, out),
                        Err(s),
                        "{what}: {how}"
                    );
                    #[cfg(target_arch = "x86_64")]
                    if let Some(result) = sliced_dots_avx2(&query, &rows_d, w, out) {
                        assert_eq!(result, Err(s), "{what}: {how} (avx2)");
                    }
                    #[cfg(target_arch = "aarch64")]
                    {
                        let result =
                            by_encoding!(encoding, neon::sliced_dots(&query, &rows_d, w, out));
                        assert_eq!(result, Err(s), "{what}: {how} (neon)");
                    }
                }
            }
        }
    }
}
