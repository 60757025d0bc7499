//! Block bounds (docs/FORMAT.md, *Block bounds*) as they follow from their table: the one
//! definition the builder writes them with and a device recomputes them with. Linked with the
//! `block-bounds` feature (reading and patching such files) or with `alloc` (the builder).

use crate::error::{Error, Result};
use crate::format::{BLOCK_BOUNDS_BIAS, BLOCK_BOUNDS_HEADER_SIZE, BlockBoundsHeader};
use crate::kernels::scalar::f16_to_f32;
use crate::model::Model;
use crate::table::Table;

/// The header of the block-bounds `section` of `model`, and the table it names.
pub(crate) fn bounds_table<'m>(
    model: &'m Model<&[u8]>,
    section: crate::SectionInfo,
) -> Result<(Table<'m>, BlockBoundsHeader)> {
    let start = section.offset as usize;
    let header: BlockBoundsHeader = model
        .bytes()
        .get(start..start + BLOCK_BOUNDS_HEADER_SIZE)
        .map(bytemuck::pod_read_unaligned)
        .ok_or(Error::InvalidMetadata("a block-bounds header is cut short"))?;
    let role = crate::Role::ALL
        .iter()
        .copied()
        .find(|&role| model.layout_table_index(role) == Some(header.table.get()))
        .ok_or(Error::InvalidMetadata(
            "block bounds name a table the file does not have",
        ))?;
    Ok((model.table(role)?, header))
}

/// A value as a column scan multiplies it by the user's, exactly (f64): the decoded value
/// (int8 and int4: the code times the row's scale), divided by the row's stored norm when the
/// table stores norms (cosine; 0 for a norm of 0).
fn scan_value(table: &Table<'_>, row: usize, at: usize) -> Result<f64> {
    let columns = table
        .columns()
        .ok_or(Error::InvalidMetadata("block bounds need a column layout"))?;
    let corrupt = || Error::InvalidMetadata("a column value or a row's scale is missing");
    let code = f64::from(columns.raw_value(at).ok_or_else(corrupt)?);
    let value = if table.value_encoding().is_scaled() {
        code * f64::from(f16_to_f32(columns.scale_bits(row).ok_or_else(corrupt)?))
    } else {
        code
    };
    if !columns.has_norms() {
        return Ok(value);
    }
    let norm = columns.norm(row)?;
    Ok(if norm == 0.0 {
        0.0
    } else {
        value / f64::from(norm)
    })
}

/// Bytes `first..first + out.len()` of a block-bounds section's body (docs/FORMAT.md, *Block
/// bounds*) for `table` as stored and `header`'s blocks: per dimension `j` the scale
/// `s_j = max |x| / 127` rounded up to an f32; per block the largest bias (flag bit 0); then
/// per dimension and block the largest and the smallest value, 0 included when a row of the
/// block has no entry there, divided by `s_j` and rounded outward to an int8 code (both 0
/// for an empty cell or a zero scale). The one definition: the builder writes its sections
/// with it, and a device recomputes them with it ([`super::recompute_chunk`]). `first` is a multiple
/// of 4.
pub(crate) fn bounds_body(
    table: &Table<'_>,
    header: &BlockBoundsHeader,
    first: usize,
    out: &mut [u8],
) -> Result<()> {
    let columns = table
        .columns()
        .ok_or(Error::InvalidMetadata("block bounds need a column layout"))?;
    let dim = table.dim();
    let blocks = header.blocks.get() as usize;
    let block_rows = header.block_rows.get() as usize;
    let bias = header.flags.get() & BLOCK_BOUNDS_BIAS != 0;
    let scales_end = 4 * dim;
    let bias_end = scales_end + if bias { 4 * blocks } else { 0 };
    let upper_end = bias_end + dim * blocks;
    // `s_j` as f64 for the last dimension asked (codes come dimension by dimension).
    let mut cached: Option<(usize, f64)> = None;
    let mut scale = |j: usize| -> Result<f64> {
        if let Some((cj, s)) = cached
            && cj == j
        {
            return Ok(s);
        }
        let mut largest = 0.0f64;
        for block in 0..blocks {
            let first_row = block * block_rows;
            columns.for_each_entry(block, j, |local, at| {
                largest = largest.max(scan_value(table, first_row + local, at)?.abs());
                Ok(())
            })?;
        }
        let s = f64::from(f32_at_least(largest / 127.0));
        cached = Some((j, s));
        Ok(s)
    };
    let mut p = first;
    let mut k = 0;
    while k < out.len() {
        if p < scales_end {
            let s = scale(p / 4)? as f32;
            out[k..k + 4].copy_from_slice(&s.to_le_bytes());
            (p, k) = (p + 4, k + 4);
        } else if p < bias_end {
            let block = (p - scales_end) / 4;
            let rows = block * block_rows..((block + 1) * block_rows).min(table.rows());
            let mut max = f32::NEG_INFINITY;
            for row in rows {
                max = max.max(table.bias(row)?);
            }
            out[k..k + 4].copy_from_slice(&max.to_le_bytes());
            (p, k) = (p + 4, k + 4);
        } else {
            let up = p < upper_end;
            let cell = p - if up { bias_end } else { upper_end };
            let (j, block) = (cell / blocks, cell % blocks);
            let s = scale(j)?;
            let first_row = block * block_rows;
            let (mut hi, mut lo, mut count) = (f64::NEG_INFINITY, f64::INFINITY, 0usize);
            columns.for_each_entry(block, j, |local, at| {
                let x = scan_value(table, first_row + local, at)?;
                hi = hi.max(x);
                lo = lo.min(x);
                count += 1;
                Ok(())
            })?;
            if count < columns.rows_in_block(block) {
                hi = hi.max(0.0);
                lo = lo.min(0.0);
            }
            let code = if s > 0.0 && count > 0 {
                divide_outward(if up { hi } else { lo }, s, up)
            } else {
                0
            };
            out[k] = code as u8;
            (p, k) = (p + 1, k + 1);
        }
    }
    Ok(())
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
