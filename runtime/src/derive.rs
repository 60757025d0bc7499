//! Sections a patch recomputes on the device instead of carrying them
//! ([`crate::patch::Op::Recompute`]): what follows from a table is computed from it.
//!
//! - A fold-in section's Gramian (`d·(d+1)/2` f32, 8.3 KB at d = 64): any changed item row
//!   changes nearly all of it; carried, it took about 5.6 KB of a coded patch that changes 1 %
//!   of the rows.
//! - A block-bounds section's body (scales, bias maxima, int8 codes of each block's extremes):
//!   a changed row moves its block's codes, and the largest value of a dimension moves its
//!   scale and so every code of that dimension.
//!
//! A device that has just written the table computes them with the writer's own functions
//! ([`crate::fold_in::gramian_entries`], [`bounds_body`]), bit for bit, reading the result
//! written so far back from the sink, a chunk of bytes at a time.

use crate::error::{Error, Result};
use crate::fold_in::gramian_entries;
#[cfg(feature = "block-bounds")]
use crate::format::BlockBoundsHeader;
use crate::format::{BLOCK_BOUNDS_HEADER_SIZE, FOLD_IN_HEADER_SIZE, SectionKind};
use crate::layout::ColumnSpans;
use crate::model::Model;
use crate::score::MAX_STACK_DIM;
use crate::table::Table;

#[cfg(any(feature = "block-bounds", feature = "alloc"))]
mod bounds;
#[cfg(any(feature = "block-bounds", feature = "alloc"))]
pub(crate) use bounds::{bounds_body, bounds_table};

/// Bytes recomputed per pass without `alloc` (on the stack: 2 KiB of f64 sums for a Gramian's
/// 256 entries, and the bytes; 9 passes over the item table at d = 64).
#[cfg(not(feature = "alloc"))]
pub(crate) const CHUNK_BYTES: usize = 1024;

/// The section a patch's recomputed bytes belong to.
enum Recomputed<'m> {
    /// A fold-in section's Gramian: the item table.
    Gramian(Table<'m>),
    /// A block-bounds section's body: its table and header.
    #[cfg(feature = "block-bounds")]
    Bounds(Table<'m>, BlockBoundsHeader),
    /// A column-layout section of a table that also stores row records: the rows say it all.
    Columns(Table<'m>, ColumnSpans, ColumnPart),
}

/// One of a column layout's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColumnPart {
    Offsets,
    Items,
    Values,
    Norms,
    Scales,
}

/// Writes bytes `first..first + out.len()` of the section body that a result of
/// `result_size` bytes holds at `body` (`at..at + len`) into `out`: the Gramian after a
/// fold-in section's 16-byte header, or the body after a block-bounds section's 24-byte
/// header, computed from the table they follow from. `result` is the sink's read-back: the
/// result's bytes up to `at` at least (the model is opened over the file size its header
/// records; bytes not yet written are whatever the sink holds there, and a result computed
/// from them fails its hash). `first` is a multiple of 4 (and for a Gramian, `len` and
/// `out.len()` too); `sums` has room for `out.len() / 4` f64 (a Gramian's) and `row` for one
/// decoded row.
pub(crate) fn recompute_chunk(
    result: &[u8],
    result_size: u64,
    body: core::ops::Range<u64>,
    first: usize,
    out: &mut [u8],
    sums: &mut [f64],
    row: &mut [f32],
) -> Result<()> {
    let wrong = Error::PatchResult;
    let (at, len) = (body.start, body.end.saturating_sub(body.start));
    if (result.len() as u64) < result_size {
        return Err(Error::Sink(
            "the sink gives back fewer bytes than the result",
        ));
    }
    let file_size = crate::le::read_u64(result, 32)
        .filter(|&n| n <= result_size)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(wrong(
            "the result's header is not written before recomputed bytes",
        ))?;
    let written = usize::try_from(at).unwrap_or(usize::MAX);
    let model = Model::from_written(&result[..file_size], written)
        .map_err(|_| wrong("the bytes before recomputed bytes do not open as a model"))?;
    let end = at.checked_add(len);
    let mut found = None;
    for section in model.sections() {
        let header = match section.kind {
            SectionKind::FoldIn => FOLD_IN_HEADER_SIZE,
            SectionKind::BlockBounds => BLOCK_BOUNDS_HEADER_SIZE,
            _ => continue,
        } as u64;
        if section.offset.checked_add(header) == Some(at)
            && section.offset.checked_add(section.length) == end
        {
            found = Some(section);
        }
    }
    let which = match found {
        Some(section) => recomputed_body(&model, section)?,
        None => column_part(&model, at, len).ok_or(wrong(
            "recomputed bytes are not a section the device can recompute",
        ))?,
    };
    match which {
        Recomputed::Gramian(items) => {
            if !(len.is_multiple_of(4) && first.is_multiple_of(4) && out.len().is_multiple_of(4)) {
                return Err(wrong("a recomputed Gramian is not whole f32 values"));
            }
            let (first, n) = (first / 4, out.len() / 4);
            let sums = sums
                .get_mut(..n)
                .ok_or(wrong("recomputed bytes overflow their buffer"))?;
            sums.fill(0.0);
            gramian_entries(&items, first, sums, row)
                .map_err(|_| wrong("the result's item rows cannot be decoded"))?;
            for (to, &sum) in out.chunks_exact_mut(4).zip(sums.iter()) {
                let value = sum as f32;
                if !value.is_finite() {
                    return Err(wrong("a recomputed Gramian value overflows f32"));
                }
                to.copy_from_slice(&value.to_le_bytes());
            }
            Ok(())
        }
        #[cfg(feature = "block-bounds")]
        Recomputed::Bounds(table, header) => bounds_body(&table, &header, first, out)
            .map_err(|_| wrong("the result's block bounds cannot be computed from its table")),
        Recomputed::Columns(table, spans, part) => columns_body(&table, &spans, part, first, out)
            .map_err(|_| wrong("the result's column layout cannot be computed from its rows")),
    }
}

/// The fold-in Gramian or block-bounds body of `section`, checked against its table.
fn recomputed_body<'m>(
    model: &'m Model<&[u8]>,
    section: crate::SectionInfo,
) -> Result<Recomputed<'m>> {
    let wrong = Error::PatchResult;
    Ok(match section.kind {
        SectionKind::FoldIn => {
            // Header, table index, dimension and length against the item table.
            model
                .fold_in_section()
                .map_err(|_| wrong("the result's fold-in section does not match its item table"))?;
            Recomputed::Gramian(
                model
                    .items()
                    .map_err(|_| wrong("the result's item table cannot be read"))?,
            )
        }
        #[cfg(feature = "block-bounds")]
        _ => {
            let (table, header) = bounds_table(model, section)
                .map_err(|_| wrong("block bounds name a table the result does not have"))?;
            Recomputed::Bounds(table, header)
        }
        #[cfg(not(feature = "block-bounds"))]
        _ => {
            return Err(wrong(
                "the patch recomputes block bounds: this pocketrec was built without its \
                 `block-bounds` feature",
            ));
        }
    })
}

/// The column-layout section at exactly `at..at + len` of a table that also stores row
/// records, if there is one.
fn column_part<'m>(model: &'m Model<&[u8]>, at: u64, len: u64) -> Option<Recomputed<'m>> {
    for role in crate::Role::ALL.iter().copied() {
        let Some(layout) = model.layout().table(role) else {
            continue;
        };
        let Some(spans) = layout.columns.filter(|_| layout.rows_stored) else {
            continue;
        };
        let parts = [
            (Some(spans.offsets), ColumnPart::Offsets),
            (Some(spans.items), ColumnPart::Items),
            (Some(spans.values), ColumnPart::Values),
            (spans.norms, ColumnPart::Norms),
            (spans.scales, ColumnPart::Scales),
        ];
        for (span, part) in parts {
            if let Some(span) = span
                && span.start as u64 == at
                && span.len as u64 == len
            {
                return Some(Recomputed::Columns(model.table(role).ok()?, spans, part));
            }
        }
    }
    None
}

/// The bytes `first..first + out.len()` of a stream that is produced from its start.
struct Window<'o> {
    out: &'o mut [u8],
    first: usize,
    /// Bytes of the stream produced so far.
    pos: usize,
}

impl Window<'_> {
    fn end(&self) -> usize {
        self.first + self.out.len()
    }

    /// Whether any of the next `n` bytes falls in the window.
    fn wants(&self, n: usize) -> bool {
        self.pos < self.end() && self.pos + n > self.first
    }

    fn done(&self) -> bool {
        self.pos >= self.end()
    }

    /// The next bytes of the stream.
    fn push(&mut self, bytes: &[u8]) {
        for (k, &b) in bytes.iter().enumerate() {
            let p = self.pos + k;
            if p >= self.first && p < self.end() {
                self.out[p - self.first] = b;
            }
        }
        self.pos += bytes.len();
    }

    /// Skips the next `n` bytes of the stream.
    fn skip(&mut self, n: usize) {
        self.pos += n;
    }
}

/// The int4 code of column `d` in row `r`'s record (the low nibble of its raw bits), or the
/// raw bits of another encoding's value; `None` where the row is zero.
fn raw(table: &Table<'_>, r: usize, d: usize) -> Option<u32> {
    table.row(r).ok().and_then(|row| row.raw_value(d))
}

/// Bytes `first..first + out.len()` of a column-layout section of `table`, which also stores
/// its rows as records: what the writer's column encoder makes of those rows (docs/FORMAT.md,
/// *Column layout*): lists in block-major order, each the rows of its block with a non-zero in
/// its dimension, in row order; their values as the records store them (int4 codes packed two
/// to a byte over the whole section); the per-row norms and int8/int4 scales of the records.
fn columns_body(
    table: &Table<'_>,
    spans: &ColumnSpans,
    part: ColumnPart,
    first: usize,
    out: &mut [u8],
) -> Result<()> {
    let dim = table.dim();
    let rows = table.rows();
    let block = spans.block_rows;
    let mut window = Window { out, first, pos: 0 };
    if matches!(part, ColumnPart::Norms | ColumnPart::Scales) {
        let width = if part == ColumnPart::Norms { 4 } else { 2 };
        for r in 0..rows {
            if window.done() {
                break;
            }
            if !window.wants(width) {
                window.skip(width);
                continue;
            }
            let row = table.row(r).ok();
            if part == ColumnPart::Norms {
                window.push(&row.map_or(0.0, |row| row.norm()).to_le_bytes());
            } else {
                window.push(&row.map_or(0, |row| row.scale_bits()).to_le_bytes());
            }
        }
        return Ok(());
    }
    if dim > MAX_STACK_DIM
        || spans.order != crate::format::ListOrder::BlockMajor
        || block > crate::scan::MAX_STACK_BLOCK_ROWS
    {
        return Err(Error::InvalidMetadata(
            "a column layout the device does not recompute",
        ));
    }
    let offset_width = match spans.offset_width {
        crate::format::OffsetWidth::U32 => 4,
        crate::format::OffsetWidth::U64 => 8,
    };
    let encoding = table.value_encoding();
    let value_width = match encoding {
        crate::ValueEncoding::F32 => 4,
        crate::ValueEncoding::F16 | crate::ValueEncoding::Bf16 => 2,
        _ => 1,
    };
    let int4 = encoding == crate::ValueEncoding::I4;
    let bitmap_bytes = block / 8;
    let bitmaps = spans.list_rows == crate::format::ListRows::Bitmap;
    let mut counts = [0u32; MAX_STACK_DIM];
    let mut total = 0u64;
    // Int4 values: entries written so far (a byte holds entries 2k and 2k + 1), and the low
    // nibble of the byte not yet complete.
    let mut entries = 0usize;
    let mut low = 0u8;
    if part == ColumnPart::Offsets {
        window.push(&total.to_le_bytes()[..offset_width]);
    }
    for b in 0..spans.blocks {
        if window.done() {
            break;
        }
        let block_rows = b * block..((b + 1) * block).min(rows);
        counts[..dim].fill(0);
        for r in block_rows.clone() {
            if let Ok(row) = table.row(r) {
                row.for_each_nonzero(|c, _| counts[c] += 1);
            }
        }
        for (d, &count) in counts[..dim].iter().enumerate() {
            let count = count as usize;
            let bytes = match part {
                ColumnPart::Offsets => {
                    total += count as u64;
                    window.push(&total.to_le_bytes()[..offset_width]);
                    continue;
                }
                ColumnPart::Items if bitmaps => bitmap_bytes,
                ColumnPart::Items => 2 * count,
                // The bytes this list's entries complete.
                ColumnPart::Values if int4 => (entries + count) / 2 - entries / 2,
                _ => count * value_width,
            };
            let wanted = window.wants(bytes) || (int4 && window.wants(bytes + 1));
            if !wanted {
                window.skip(bytes);
                if int4 && (entries + count) % 2 == 1 && count > 0 {
                    // The list's last code opens a byte the next list completes.
                    let last = block_rows
                        .clone()
                        .rev()
                        .find_map(|r| raw(table, r, d))
                        .unwrap_or(0);
                    low = last as u8 & 0x0F;
                }
                entries += count;
                continue;
            }
            let mut bits = [0u8; crate::scan::MAX_STACK_BLOCK_ROWS / 8];
            for r in block_rows.clone() {
                let Some(value) = raw(table, r, d) else {
                    continue;
                };
                let local = r - b * block;
                match part {
                    ColumnPart::Items if bitmaps => bits[local / 8] |= 1 << (local % 8),
                    ColumnPart::Items => window.push(&(local as u16).to_le_bytes()),
                    ColumnPart::Values if int4 => {
                        let nibble = value as u8 & 0x0F;
                        if entries.is_multiple_of(2) {
                            low = nibble;
                        } else {
                            window.push(&[low | nibble << 4]);
                        }
                        entries += 1;
                    }
                    _ => window.push(&value.to_le_bytes()[..value_width]),
                }
            }
            if part == ColumnPart::Items && bitmaps {
                window.push(&bits[..bitmap_bytes]);
            }
        }
    }
    if int4 && part == ColumnPart::Values && entries % 2 == 1 && !window.done() {
        window.push(&[low]);
    }
    Ok(())
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
