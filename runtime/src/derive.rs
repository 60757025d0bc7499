//! Sections a patch recomputes on the device instead of carrying them
//! ([`crate::patch::Op::Gramian`]).
//!
//! A fold-in section's Gramian (`d·(d+1)/2` f32, 8.3 KB at d = 64) follows from the item table,
//! and any changed item row changes nearly all of it: carried, it took about 5.6 KB of a coded
//! patch that changes 1 % of the rows. A device that has just written the item table can
//! compute it with the writer's own function ([`crate::fold_in::gramian_entries`]), bit for bit.
//! It reads the result written so far back from the sink, a chunk of entries per pass over the
//! item table, on the stack.

use crate::error::{Error, Result};
use crate::fold_in::gramian_entries;
use crate::format::{FOLD_IN_HEADER_SIZE, SectionKind};
use crate::model::Model;

/// Gramian entries recomputed per pass over the item table without `alloc` (2 KiB of f64 on
/// the stack; 9 passes at d = 64).
#[cfg(not(feature = "alloc"))]
pub(crate) const GRAMIAN_CHUNK: usize = 256;

/// Adds entries `first..first + out.len()` of the Gramian that the result's fold-in section
/// holds at bytes `at..at + len` into `out`. `result` is the sink's read-back: the result's
/// bytes up to `at` at least (what lies past the bytes written is not read). The fold-in
/// section must be the result's last section and its Gramian must start at `at` and end at
/// `at + len`; the item table then lies wholly in the bytes written. `row` holds one decoded
/// row.
pub(crate) fn gramian_chunk(
    result: &[u8],
    at: u64,
    len: u64,
    first: usize,
    out: &mut [f64],
    row: &mut [f32],
) -> Result<()> {
    let wrong = |what| Error::PatchResult(what);
    let end = at
        .checked_add(len)
        .and_then(|end| usize::try_from(end).ok())
        .ok_or(wrong("a recomputed Gramian ends past the result"))?;
    let content = result.get(..end).ok_or(Error::Sink(
        "the sink gives back fewer bytes than the result",
    ))?;
    let model = Model::from_content(content)
        .map_err(|_| wrong("the bytes before a recomputed Gramian do not open as a model"))?;
    let mut fold_in = None;
    for index in 0..model.section_count() {
        let section = model
            .section(index)
            .map_err(|_| wrong("the result's section table cannot be read"))?;
        if section.kind == SectionKind::FoldIn {
            if fold_in.is_some() {
                return Err(wrong("the result has two fold-in sections"));
            }
            fold_in = Some(section);
        }
    }
    let fold_in = fold_in.ok_or(wrong("a Gramian is recomputed in a result without fold-in"))?;
    let gramian_start = fold_in.offset.checked_add(FOLD_IN_HEADER_SIZE as u64);
    if gramian_start != Some(at) || fold_in.offset.checked_add(fold_in.length) != Some(end as u64) {
        return Err(wrong(
            "a recomputed Gramian is not where the result's fold-in section holds it",
        ));
    }
    for section in model.sections() {
        if section.index != fold_in.index
            && section.offset.saturating_add(section.length) > fold_in.offset
        {
            return Err(wrong(
                "a recomputed Gramian's fold-in section is not the result's last section",
            ));
        }
    }
    // Header, table index, dimension and length against the item table.
    model
        .fold_in_section()
        .map_err(|_| wrong("the result's fold-in section does not match its item table"))?;
    let items = model
        .items()
        .map_err(|_| wrong("the result's item table cannot be read"))?;
    gramian_entries(&items, first, out, row)
        .map_err(|_| wrong("the result's item rows cannot be decoded"))
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use crate::builder::{FoldInParams, Layout, ModelBuilder, SparseMatrix, TableSpec};
    use crate::{Model, Role, ValueEncoding};

    /// Entries summed a chunk at a time (as a device without `alloc` does, and with odd chunk
    /// sizes) are the bits of the whole triangle summed at once, and of the file's Gramian.
    #[test]
    fn chunks_give_the_bits_of_one_pass() {
        let dim = 24;
        let values: alloc::vec::Vec<f32> = (0..90 * dim)
            .map(|i| match (i * 7919) % 5 {
                0 | 1 => ((i * 31) % 97) as f32 / 13.0 - 3.5,
                _ => 0.0,
            })
            .collect();
        let items = SparseMatrix::from_dense(90, dim, &values).unwrap();
        for layout in [Layout::Rows, Layout::Columns] {
            let bytes = ModelBuilder::new()
                .table(
                    TableSpec::new("items", Role::Item, items.clone())
                        .layout(layout)
                        .values(ValueEncoding::I8),
                )
                .fold_in(FoldInParams {
                    unobserved_weight: 0.1,
                    regularization: 1.0,
                })
                .build()
                .unwrap();
            let model = Model::from_bytes(&bytes).unwrap();
            let table = model.items().unwrap();
            let section = model.fold_in_section().unwrap();
            let total = crate::format::packed_len(dim);
            let mut row = alloc::vec![0.0f32; dim];
            let mut whole = alloc::vec![0.0f64; total];
            super::gramian_entries(&table, 0, &mut whole, &mut row).unwrap();
            for (p, &g) in whole.iter().enumerate() {
                assert_eq!((g as f32).to_bits(), section.gram(p).to_bits(), "entry {p}");
            }
            for chunk in [1, 7, 256] {
                let mut start = 0;
                while start < total {
                    let n = chunk.min(total - start);
                    let mut sums = alloc::vec![0.0f64; n];
                    super::gramian_entries(&table, start, &mut sums, &mut row).unwrap();
                    for (k, &s) in sums.iter().enumerate() {
                        assert_eq!(s.to_bits(), whole[start + k].to_bits());
                    }
                    start += n;
                }
            }
        }
    }
}
