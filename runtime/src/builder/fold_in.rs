//! The fold-in section's bytes: the header and the item table's Gramian, computed from the
//! item rows exactly as a reader decodes them (quantized values included).

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::fold_in::FoldInParams;
use crate::format::{self, F32Le, FoldInHeader, Role, U32Le};
use crate::model::Model;
use crate::score::MAX_STACK_DIM;

/// The item table's index in the metadata's tables and its dimension, which a fold-in section
/// needs to be at most 512 (`MAX_STACK_DIM`).
fn item_table(model: &Model<&[u8]>) -> Result<(u32, usize)> {
    let dim = model.items()?.dim();
    if dim > MAX_STACK_DIM {
        return Err(Error::InvalidInput {
            role: Some(Role::Item),
            row: None,
            column: None,
            reason: "a fold-in section needs a dimension of at most 512 (MAX_STACK_DIM)",
        });
    }
    Ok((model.item_table_index()?, dim))
}

/// The softmax fold-in section for the item table of the file `bytes` (written without one).
pub(crate) fn softmax_section(
    bytes: &[u8],
    settings: crate::SoftmaxFoldIn,
) -> Result<[u8; format::FOLD_IN_SOFTMAX_SECTION_SIZE]> {
    settings.check()?;
    let model = Model::from_bytes(bytes)?;
    let (table, dim) = item_table(&model)?;
    let header = format::FoldInSoftmaxHeader {
        table: U32Le::new(table),
        dim: U32Le::new(dim as u32),
        temperature: F32Le::new(settings.temperature),
        power: F32Le::new(settings.power),
        step: F32Le::new(settings.step),
        iterations: U32Le::new(settings.iterations),
    };
    let mut out = [0u8; format::FOLD_IN_SOFTMAX_SECTION_SIZE];
    out.copy_from_slice(bytemuck::bytes_of(&header));
    Ok(out)
}

/// The section for the item table of the file `bytes` (written without one): `G = Σ v vᵀ`
/// over the decoded item rows, summed in f64 in row order (deterministic), stored as f32.
pub(crate) fn section(bytes: &[u8], params: FoldInParams) -> Result<Vec<u8>> {
    params.check()?;
    let model = Model::from_bytes(bytes)?;
    let items = model.items()?;
    let (table, dim) = item_table(&model)?;
    let mut gram = vec![0.0f64; format::packed_len(dim)];
    let mut row = vec![0.0f32; dim];
    let mut nonzero: Vec<(usize, f64)> = Vec::with_capacity(dim);
    for index in 0..items.rows() {
        items.decode_row(index, &mut row)?;
        nonzero.clear();
        nonzero.extend(
            row.iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(c, &v)| (c, f64::from(v))),
        );
        for (n, &(a, va)) in nonzero.iter().enumerate() {
            let base = a * (a + 1) / 2;
            for &(b, vb) in &nonzero[..=n] {
                gram[base + b] += va * vb;
            }
        }
    }
    let header = FoldInHeader {
        table: U32Le::new(table),
        dim: U32Le::new(dim as u32),
        unobserved_weight: F32Le::new(params.unobserved_weight),
        regularization: F32Le::new(params.regularization),
    };
    let mut out = Vec::with_capacity(format::fold_in_section_len(dim).unwrap_or(0));
    out.extend_from_slice(bytemuck::bytes_of(&header));
    for g in gram {
        let g = g as f32;
        if !g.is_finite() {
            return Err(Error::InvalidInput {
                role: Some(Role::Item),
                row: None,
                column: None,
                reason: "the item table's Gramian overflows f32 (values too large)",
            });
        }
        out.extend_from_slice(&g.to_le_bytes());
    }
    Ok(out)
}
