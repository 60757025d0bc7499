//! Block bounds ([`SectionKind::BlockBounds`](crate::SectionKind::BlockBounds)): for each
//! block of rows and each dimension, int8 codes of the smallest and largest value the block
//! holds there, on a per-dimension scale. A scan bounds the best score a block can reach for
//! a user from the user's non-zero dimensions, and skips the block when that bound is below
//! the k-th best score found so far: the top-k stays exact, the work shrinks (block-max
//! pruning, as in Ding and Suel's block-max WAND and Mallia et al.'s Block-Max Pruning).
//!
//! ## Why the bound is safe
//! For a user `u` and a row `x` of block `b`, the scan computes `s = fl(Σ_j u_j·x_j)` (then
//! the int8 scale, the cosine division and the biases, each rounded). In exact arithmetic
//! `Σ_j u_j·x_j ≤ E = Σ_j max(u_j·upper_j, u_j·lower_j)·scale_j`, and every rounded sum of
//! `n` terms is within `n·2⁻²⁴·Σ|terms|` of the exact sum. The bound is evaluated in f32 as
//! `E + c·T`, where `T = 127·Σ_j |u_j|·scale_j` (every code is at most 127 in magnitude; plus
//! the biases' magnitudes) bounds every `Σ|terms|` of both the scan and the bound's own
//! evaluation, and
//! `c = (dim + 8)·2⁻²¹` is eight times the worst relative error of either. A block is
//! skipped only when that bound is finite, `T` is far from overflow, and the bound is strictly
//! below the k-th score: no row of it can enter the top-k, not even on a tie.

use crate::error::{Error, Result};
use crate::layout::BoundsSpans;

/// Blocks whose bounds are computed together (on the stack).
pub(crate) const CHUNK_BLOCKS: usize = 64;

/// Above this the bound's error term could overflow: blocks are never skipped.
const OVERFLOW_GUARD: f32 = 1e30;

/// A table's block bounds, borrowed from the file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockBounds<'a> {
    /// Rows per block.
    pub block_rows: usize,
    /// Blocks in the table.
    pub blocks: usize,
    /// `dim` f32.
    scales: &'a [u8],
    /// `blocks` f32, when the table has biases.
    bias_max: Option<&'a [u8]>,
    /// `dim · blocks` int8, dimension by dimension.
    upper: &'a [u8],
    lower: &'a [u8],
}

/// What a query needs to bound blocks: its non-zero dimensions with their values on each
/// dimension's scale, the query's norm for cosine, and the biases.
pub(crate) struct BoundQuery<'q> {
    /// The user's non-zero dimensions.
    pub dims: &'q [u16],
    /// `u_j · scale_j` for each of `dims`.
    pub weights: &'q [f32],
    /// Divides the sum (the user's norm for cosine, 1 for dot).
    pub divisor: f32,
    /// User bias plus global bias.
    pub fixed_bias: f32,
    /// `|user bias| + |global bias|`.
    pub fixed_bias_magnitude: f32,
    /// `c` of the module docs.
    pub relative_error: f32,
}

impl BoundQuery<'_> {
    /// `T` of the module docs without a block's bias maximum: `127·Σ|w| / divisor` plus the
    /// fixed biases' magnitudes (what bounds `|Σ terms|` of every block).
    pub(crate) fn magnitude(&self) -> f32 {
        let sum = self.weights.iter().fold(0.0f32, |m, &w| m + 127.0 * abs(w));
        sum / self.divisor + self.fixed_bias_magnitude
    }

    /// The bound of a block (or of the rest of one) whose sum of the query's best terms is
    /// `sum` and whose bias maximum is `bias`, given [`Self::magnitude`]: the sum divided,
    /// the biases added, raised by `c·T`; `f32::INFINITY` when the bound is not finite or `T`
    /// is close to overflow (such a block is always scored).
    #[inline(always)]
    pub(crate) fn bound(&self, sum: f32, bias: f32, magnitude: f32) -> f32 {
        let s = sum / self.divisor + self.fixed_bias + bias;
        let m = magnitude + abs(bias);
        let bound = s + self.relative_error * m + f32::MIN_POSITIVE;
        if m < OVERFLOW_GUARD && bound.is_finite() {
            bound
        } else {
            f32::INFINITY
        }
    }
}

impl<'a> BlockBounds<'a> {
    /// The bounds at `spans` in `bytes` (checked at open) of a table of dimension `dim`.
    pub(crate) fn new(bytes: &'a [u8], spans: &BoundsSpans, dim: usize) -> Result<Self> {
        let bias_max = match spans.bias_max {
            Some(span) => Some(span.slice(bytes)?),
            None => None,
        };
        let bounds = BlockBounds {
            block_rows: spans.block_rows,
            blocks: spans.blocks,
            scales: spans.scales.slice(bytes)?,
            bias_max,
            upper: spans.upper.slice(bytes)?,
            lower: spans.lower.slice(bytes)?,
        };
        if bounds.scales.len() != 4 * dim || bounds.upper.len() != dim * spans.blocks {
            return Err(Error::InvalidMetadata(
                "block bounds do not match their table",
            ));
        }
        Ok(bounds)
    }

    /// Bytes of the section: header, scales, bias maxima and codes.
    pub(crate) fn section_bytes(&self) -> usize {
        crate::format::BLOCK_BOUNDS_HEADER_SIZE
            + self.scales.len()
            + self.bias_max.map_or(0, <[u8]>::len)
            + self.upper.len()
            + self.lower.len()
    }

    /// The scale of dimension `dim` (0 past the table's dimension).
    pub(crate) fn scale(&self, dim: usize) -> f32 {
        crate::le::f32_at(self.scales, dim).unwrap_or(0.0)
    }

    /// The int8 codes `(lower, upper)` of dimension `dim` in block `block`.
    pub(crate) fn codes(&self, dim: usize, block: usize) -> (i8, i8) {
        let at = dim * self.blocks + block;
        let code = |b: &[u8]| b.get(at).map_or(0, |&c| c as i8);
        (code(self.lower), code(self.upper))
    }

    /// The bias maximum of block `block` (0 without biases).
    pub(crate) fn bias_max(&self, block: usize) -> f32 {
        self.bias_max
            .and_then(|b| crate::le::f32_at(b, block))
            .unwrap_or(0.0)
    }

    /// Whether the table has bias maxima.
    pub(crate) fn has_bias(&self) -> bool {
        self.bias_max.is_some()
    }

    /// The largest term each of `query`'s dimensions can add to a score in block `block`,
    /// `max(w·upper, w·lower)`, into `terms` (one per dimension of the query, in its order);
    /// `false` (and `terms` untouched) when `terms` is too short or the block is past the
    /// table.
    pub(crate) fn terms(&self, query: &BoundQuery<'_>, block: usize, terms: &mut [f32]) -> bool {
        if terms.len() < query.dims.len() || block >= self.blocks {
            return false;
        }
        for ((&dim, &weight), term) in query.dims.iter().zip(query.weights).zip(terms) {
            let (lower, upper) = self.codes(usize::from(dim), block);
            *term = weight * f32::from(if weight > 0.0 { upper } else { lower });
        }
        true
    }

    /// The bounds of blocks `first..first + out.len()` (at most [`CHUNK_BLOCKS`]) for `query`
    /// into `out`: `f32::INFINITY` for a block that must be scored whatever the threshold (a
    /// bound that is not finite or too close to overflow). Reads each of the query's
    /// dimensions as one run of codes; the loops are over fixed-size arrays, so that the
    /// compiler vectorises them (SSE/AVX on x86_64, NEON on aarch64).
    pub(crate) fn chunk(&self, query: &BoundQuery<'_>, first: usize, out: &mut [f32]) {
        let n = out.len().min(CHUNK_BLOCKS);
        let mut sum = [0.0f32; CHUNK_BLOCKS];
        let mut magnitude = 0.0f32;
        for (&dim, &weight) in query.dims.iter().zip(query.weights) {
            let at = usize::from(dim) * self.blocks + first;
            // max(w·upper, w·lower) is w·upper for w > 0 and w·lower for w < 0 (lower ≤
            // upper; the product the max would pick, exactly), so one run of codes a dimension.
            let codes = if weight > 0.0 { self.upper } else { self.lower };
            let mut code = [0u8; CHUNK_BLOCKS];
            match codes.get(at..at + n) {
                Some(run) => code[..n].copy_from_slice(run),
                None => {
                    // Checked at open; never here. Score every block rather than guess.
                    out.fill(f32::INFINITY);
                    return;
                }
            }
            add_dimension(&mut sum, &code, weight);
            // Every code is at most 127 in magnitude: this bounds |Σ terms| of every block.
            magnitude += 127.0 * abs(weight);
        }
        let magnitude = magnitude / query.divisor + query.fixed_bias_magnitude;
        let finish = |s: f32, bias: f32| query.bound(s, bias, magnitude);
        match self.bias_max {
            None => {
                for (o, &s) in out.iter_mut().zip(&sum) {
                    *o = finish(s, 0.0);
                }
            }
            Some(_) => {
                for (k, (o, &s)) in out.iter_mut().zip(&sum).enumerate() {
                    *o = finish(s, self.bias_max(first + k));
                }
            }
        }
    }
}

/// Adds one dimension's best contribution to each block's sum: `weight · code`, the code
/// being the upper one for a positive weight and the lower one for a negative weight.
#[inline(always)]
fn add_dimension(sum: &mut [f32; CHUNK_BLOCKS], code: &[u8; CHUNK_BLOCKS], weight: f32) {
    for k in 0..CHUNK_BLOCKS {
        sum[k] += weight * f32::from(code[k] as i8);
    }
}

/// `|x|` without `std`.
#[inline(always)]
fn abs(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// `c` of the module docs for dimension `dim`: `(dim + 8) · 2⁻²¹`.
pub(crate) fn relative_error(dim: usize) -> f32 {
    (dim as f32 + 8.0) * (1.0 / 2_097_152.0)
}
