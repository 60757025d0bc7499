//! The block-bounds section ([`crate::format::BlockBoundsHeader`]): per block of rows and
//! dimension, int8 codes of the smallest and largest value, rounded outward.
//!
//! The encoder places the section with its header and a body of zeros; once the file is
//! assembled, [`fill`] computes every body from the table as the file stores it, with the
//! function a device uses to recompute it from a patched file (`crate::derive::bounds_body`),
//! so that both give the same bytes.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::Result;
use crate::format::{
    BLOCK_BOUNDS_BIAS, BLOCK_BOUNDS_HEADER_SIZE, BlockBoundsHeader, SectionKind, U32Le,
};
use crate::model::Model;

/// A table's block-bounds section before its body is computed.
pub(crate) struct EncodedBounds {
    dim: usize,
    block_rows: usize,
    blocks: usize,
    bias: bool,
}

impl EncodedBounds {
    /// The section of a table of `rows` rows and dimension `dim` in blocks of `block_rows`,
    /// with bias maxima when the table has biases.
    pub(crate) fn placeholder(dim: usize, block_rows: usize, rows: usize, bias: bool) -> Self {
        EncodedBounds {
            dim,
            block_rows,
            blocks: rows.div_ceil(block_rows),
            bias,
        }
    }

    /// The section's bytes for the table at `position`: the header, then a body of zeros
    /// ([`fill`] computes it).
    pub(crate) fn section(&self, position: u32) -> Vec<u8> {
        let header = BlockBoundsHeader {
            table: U32Le::new(position),
            dim: U32Le::new(self.dim as u32),
            block_rows: U32Le::new(self.block_rows as u32),
            blocks: U32Le::new(self.blocks as u32),
            flags: U32Le::new(if self.bias { BLOCK_BOUNDS_BIAS } else { 0 }),
            reserved: U32Le::new(0),
        };
        let body =
            4 * (self.dim + if self.bias { self.blocks } else { 0 }) + 2 * self.dim * self.blocks;
        let mut out = vec![0u8; BLOCK_BOUNDS_HEADER_SIZE + body];
        out[..BLOCK_BOUNDS_HEADER_SIZE].copy_from_slice(bytemuck::bytes_of(&header));
        out
    }
}

/// The block-bounds sections of the assembled file `bytes`, in section-table order, each
/// with its body computed from its table as stored (`crate::derive::bounds_body`).
pub(crate) fn fill(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let model = Model::from_bytes(bytes)?;
    let mut out = Vec::new();
    for section in model.sections() {
        if section.kind != SectionKind::BlockBounds {
            continue;
        }
        let (table, header) = crate::derive::bounds_table(&model, section)?;
        let start = section.offset as usize;
        let mut filled = bytes[start..start + section.length as usize].to_vec();
        crate::derive::bounds_body(&table, &header, 0, &mut filled[BLOCK_BOUNDS_HEADER_SIZE..])?;
        out.push(filled);
    }
    Ok(out)
}
