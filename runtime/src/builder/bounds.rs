//! The block-bounds section ([`crate::format::BlockBoundsHeader`]): per block of rows and
//! dimension, int8 codes of the smallest and largest value, rounded outward.

use alloc::vec::Vec;

use half::{bf16, f16};

use super::columns::RowEntries;
use crate::format::{
    BLOCK_BOUNDS_BIAS, BLOCK_BOUNDS_HEADER_SIZE, BlockBoundsHeader, U32Le, ValueEncoding,
};

/// A table's block bounds, ready to be placed in the file.
pub(crate) struct EncodedBounds {
    dim: usize,
    block_rows: usize,
    blocks: usize,
    scales: Vec<f32>,
    bias_max: Option<Vec<f32>>,
    upper: Vec<i8>,
    lower: Vec<i8>,
}

/// The value of a stored entry as a scan multiplies it by the user's value, exactly: the
/// decoded value (int8: code times the row's scale, a product f64 holds exactly).
fn exact_value(bytes: &[u8], encoding: ValueEncoding, scale: f64) -> f64 {
    match encoding {
        ValueEncoding::F32 => {
            f64::from(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        }
        ValueEncoding::F16 => {
            f64::from(f16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]])).to_f32())
        }
        ValueEncoding::Bf16 => {
            f64::from(bf16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]])).to_f32())
        }
        // Int4 codes are one per byte here, as int8 codes are (packed later).
        ValueEncoding::I8 | ValueEncoding::I4 => f64::from(bytes[0] as i8) * scale,
    }
}

/// `x / s` rounded toward +∞ (`up`) or −∞, for `|x / s| ≤ 127` (no `std` needed).
fn divide_outward(x: f64, s: f64, up: bool) -> i8 {
    let q = x / s;
    let t = q as i64 as f64; // toward zero
    let r = if up && t < q {
        t + 1.0
    } else if !up && t > q {
        t - 1.0
    } else {
        t
    };
    r.clamp(-127.0, 127.0) as i8
}

/// The smallest f32 at least `x` (finite, `≥ 0`).
fn f32_at_least(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) < x {
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}

/// Bounds of the rows `rows` (file order) in blocks of `block_rows`: values in `encoding`,
/// each row's int8 scale in `scales`, its stored norm in `norms` (cosine scoring: values are
/// divided by it, 0 for a norm of 0), its bias in `bias`.
pub(crate) fn encode_bounds(
    dim: usize,
    block_rows: usize,
    rows: &RowEntries<'_>,
    encoding: ValueEncoding,
    scales: Option<&[f16]>,
    norms: Option<&[f32]>,
    bias: Option<&[f32]>,
) -> EncodedBounds {
    let n_rows = rows.bounds.len() - 1;
    let blocks = n_rows.div_ceil(block_rows);
    let value = |r: usize, k: usize| -> f64 {
        let scale = scales
            .and_then(|s| s.get(r))
            .map_or(1.0, |s| f64::from(s.to_f32()));
        let bytes = &rows.values[k * rows.width..(k + 1) * rows.width];
        let v = exact_value(bytes, encoding, scale);
        match norms.and_then(|n| n.get(r)) {
            None => v,
            Some(&n) => {
                if n == 0.0 {
                    0.0
                } else {
                    v / f64::from(n)
                }
            }
        }
    };
    // Per (dimension, block): the largest and smallest value, and how many rows have one.
    let cells = dim * blocks;
    let mut high = alloc::vec![f64::NEG_INFINITY; cells];
    let mut low = alloc::vec![f64::INFINITY; cells];
    let mut count = alloc::vec![0usize; cells];
    let mut largest = alloc::vec![0.0f64; dim];
    for r in 0..n_rows {
        let block = r / block_rows;
        for k in rows.bounds[r]..rows.bounds[r + 1] {
            let j = rows.columns[k] as usize;
            let x = value(r, k);
            let cell = j * blocks + block;
            high[cell] = high[cell].max(x);
            low[cell] = low[cell].min(x);
            count[cell] += 1;
            largest[j] = largest[j].max(x.abs());
        }
    }
    // A scale per dimension with every |x| / scale ≤ 127.
    let scales: Vec<f32> = largest.iter().map(|&m| f32_at_least(m / 127.0)).collect();
    let mut upper = alloc::vec![0i8; cells];
    let mut lower = alloc::vec![0i8; cells];
    for (j, &scale) in scales.iter().enumerate() {
        let s = f64::from(scale);
        for b in 0..blocks {
            let cell = j * blocks + b;
            let in_block = block_rows.min(n_rows - b * block_rows);
            // Rows without an entry in `j` hold 0 there.
            let (mut hi, mut lo) = (high[cell], low[cell]);
            if count[cell] < in_block {
                hi = hi.max(0.0);
                lo = lo.min(0.0);
            }
            if s > 0.0 && count[cell] > 0 {
                upper[cell] = divide_outward(hi, s, true);
                lower[cell] = divide_outward(lo, s, false);
            }
        }
    }
    let bias_max = bias.map(|bias| {
        bias.chunks(block_rows)
            .map(|chunk| chunk.iter().copied().fold(f32::NEG_INFINITY, f32::max))
            .collect()
    });
    EncodedBounds {
        dim,
        block_rows,
        blocks,
        scales,
        bias_max,
        upper,
        lower,
    }
}

impl EncodedBounds {
    /// The section's bytes, for the table at `position`.
    pub(crate) fn section(&self, position: u32) -> Vec<u8> {
        let header = BlockBoundsHeader {
            table: U32Le::new(position),
            dim: U32Le::new(self.dim as u32),
            block_rows: U32Le::new(self.block_rows as u32),
            blocks: U32Le::new(self.blocks as u32),
            flags: U32Le::new(if self.bias_max.is_some() {
                BLOCK_BOUNDS_BIAS
            } else {
                0
            }),
            reserved: U32Le::new(0),
        };
        let mut out = Vec::with_capacity(
            BLOCK_BOUNDS_HEADER_SIZE + 4 * (self.dim + self.blocks) + 2 * self.upper.len(),
        );
        out.extend_from_slice(bytemuck::bytes_of(&header));
        out.extend(self.scales.iter().flat_map(|s| s.to_le_bytes()));
        if let Some(bias) = &self.bias_max {
            out.extend(bias.iter().flat_map(|b| b.to_le_bytes()));
        }
        out.extend(self.upper.iter().map(|&c| c as u8));
        out.extend(self.lower.iter().map(|&c| c as u8));
        out
    }
}
