//! [`Model::verify`]: the full check of a model, data sections included.

use crate::columns::ColumnView;
use crate::error::{ChecksumScope, Error, Result};
use crate::format::{self, IdEncoding, Role, Scoring};
use crate::kernels::scalar::f16_to_f32;
use crate::le;
use crate::model::Model;
use crate::row::sqrt;
use crate::scan::MAX_STACK_BLOCK_ROWS;
use crate::table::Table;

impl<S: AsRef<[u8]>> Model<S> {
    /// Checks the whole file: the checksum of every section, every row record (offsets in
    /// order, lengths, column indices, finite values and scales), the non-zero count recorded
    /// in the metadata, ids strictly increasing and finite biases, and a fold-in section's
    /// header, length and Gramian values.
    ///
    /// Together with the checks made at open (header, section table and metadata checksums,
    /// zero padding, no trailing bytes), a change to any single byte of a file makes `open` or
    /// `verify` fail. Reads every byte, so it takes time in proportion to the file size.
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// model.verify()?;
    ///
    /// let mut damaged = bytes.clone();
    /// let last = damaged.len() - 1;
    /// damaged[last] ^= 0x01;               // the last byte is row data
    /// let damaged = pocketrec::Model::from_bytes(&damaged)?; // opening does not read data...
    /// assert!(damaged.verify().is_err());  // ...verify does
    /// # Ok(()) }
    /// ```
    pub fn verify(&self) -> Result<()> {
        for info in 0..self.section_count() {
            let section = self.section(info)?;
            let start = section.offset as usize;
            let bytes = self
                .bytes()
                .get(start..start + section.length as usize)
                .ok_or(Error::InvalidSection {
                    index: info,
                    reason: "section extends past the end of the file",
                })?;
            let computed = format::crc32c(bytes);
            if computed != section.crc {
                return Err(Error::Checksum {
                    scope: ChecksumScope::Section { index: info },
                    stored: section.crc,
                    computed,
                });
            }
        }
        for role in Role::ALL {
            match self.table(*role) {
                Ok(table) => {
                    verify_table(&table, self.scoring())?;
                    if let Some(strings) = self.id_strings(*role)? {
                        strings.verify(&table)?;
                    }
                }
                Err(Error::MissingTable(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // The softmax settings and summary (and that no file has both objectives).
        if let Some((_, Some(summary))) = self.softmax_section()? {
            summary.verify()?;
        }
        match self.fold_in_section() {
            Ok(section) => section.verify(),
            Err(Error::NoFoldIn) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn verify_table(table: &Table<'_>, scoring: Scoring) -> Result<()> {
    let role = table.role();
    let corrupt = |reason| Error::CorruptTable { role, reason };
    if let Some(sliced) = table.sliced() {
        if sliced.verify()? != table.nnz() {
            return Err(corrupt("non-zero count differs from the metadata"));
        }
    } else if table.has_rows() {
        let mut nnz = 0u64;
        for index in 0..table.rows() {
            let row = table.row(index)?;
            if !row.all_finite() {
                return Err(Error::CorruptRow {
                    role,
                    row: index as u64,
                    reason: "a value is not finite",
                });
            }
            nnz += row.nnz() as u64;
        }
        if nnz != table.nnz() {
            return Err(corrupt("non-zero count differs from the metadata"));
        }
    }
    let ids = table.raw_ids();
    let increasing = match table.id_encoding() {
        IdEncoding::RowNumber => true,
        IdEncoding::U32 => strictly_increasing((0..table.rows()).map(|i| le::u32_at(ids, i))),
        IdEncoding::U64 => strictly_increasing((0..table.rows()).map(|i| le::u64_at(ids, i))),
        // Strictly increasing ids through the index also make it a permutation: `rows`
        // entries, each below `rows`, naming rows of different ids, hence different rows.
        IdEncoding::U32Indexed => {
            strictly_increasing(indexed_rows(table).map(|r| r.and_then(|r| le::u32_at(ids, r))))
        }
        IdEncoding::U64Indexed => {
            strictly_increasing(indexed_rows(table).map(|r| r.and_then(|r| le::u64_at(ids, r))))
        }
    };
    if !increasing {
        return Err(corrupt("ids are not strictly increasing"));
    }
    if let Some(columns) = table.columns()
        && !columns.padding_is_zero(table.nnz())
    {
        return Err(corrupt(
            "the int4 column values' padding nibble is not zero",
        ));
    }
    match table.columns() {
        Some(columns) if table.has_rows() => verify_columns(table, &columns)?,
        Some(columns) => verify_columns_only(table, &columns)?,
        None => {}
    }
    if table.has_block_bounds() {
        verify_bounds(table, scoring)?;
    }
    if let Some(bias) = table.raw_bias()
        && bias
            .chunks_exact(4)
            .any(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
    {
        return Err(corrupt("a bias is not finite"));
    }
    Ok(())
}

/// True when every value is present and each is greater than the one before.
fn strictly_increasing<T: PartialOrd>(mut values: impl Iterator<Item = Option<T>>) -> bool {
    let Some(Some(mut previous)) = values.next() else {
        return true;
    };
    for value in values {
        match value {
            Some(v) if v > previous => previous = v,
            _ => return false,
        }
    }
    true
}

/// Checks that the column layout holds exactly the row records' data: every posting entry's
/// row lies in its block, rows increase along each list, and the entry's value bytes are the
/// row's value for that column; the per-row scales and norms equal the rows'. Since the entry
/// count equals the table's non-zero count (checked at open) and entries map to distinct
/// (row, column) pairs, the two layouts agree entry for entry.
fn verify_columns(table: &Table<'_>, columns: &ColumnView<'_>) -> Result<()> {
    let role = table.role();
    let corrupt = |reason| Error::CorruptTable { role, reason };
    for block in 0..columns.blocks {
        for dim in 0..columns.dim {
            columns.for_each_entry(block, dim, |local, at| {
                let row = table.row(block * columns.block_rows + local)?;
                if row.raw_value(dim) != columns.value_bits(at) {
                    return Err(corrupt("a column entry differs from its row"));
                }
                Ok(())
            })?;
        }
    }
    for index in 0..table.rows() {
        let row = table.row(index)?;
        if let Some(scale) = columns.scale_bits(index)
            && scale != row.scale_bits()
        {
            return Err(corrupt(
                "a row scale in the column layout differs from its row",
            ));
        }
        if columns.has_norms() && columns.norm(index)?.to_bits() != row.norm().to_bits() {
            return Err(corrupt(
                "a row norm in the column layout differs from its row",
            ));
        }
    }
    Ok(())
}

/// Checks a column layout that is the only copy of its table (format 1.2): rows increase
/// along each list and lie in their block, values are finite, and the per-row arrays hold
/// what the row records would: a positive finite int8 scale for every non-empty row and 0 for
/// an empty one, and each row's norm computed as [`crate::Row::norm`] computes it (squares
/// summed in column order, the square root times the scale), 0 for an empty row. The entry
/// count equals the table's non-zero count (checked at open).
fn verify_columns_only(table: &Table<'_>, columns: &ColumnView<'_>) -> Result<()> {
    let role = table.role();
    let corrupt = |reason| Error::CorruptTable { role, reason };
    let mut squares = [0.0f32; MAX_STACK_BLOCK_ROWS];
    let mut seen = [false; MAX_STACK_BLOCK_ROWS];
    for block in 0..columns.blocks {
        let rows_in_block = columns.rows_in_block(block);
        let (squares, seen) = match (
            squares.get_mut(..rows_in_block),
            seen.get_mut(..rows_in_block),
        ) {
            (Some(squares), Some(seen)) => (squares, seen),
            _ => return Err(corrupt("column blocks are larger than a reader scans")),
        };
        squares.fill(0.0);
        seen.fill(false);
        for dim in 0..columns.dim {
            columns.for_each_entry(block, dim, |local, at| {
                let value = columns
                    .raw_value(at)
                    .ok_or(corrupt("column list is past its section"))?;
                if !value.is_finite() {
                    return Err(Error::CorruptRow {
                        role,
                        row: (block * columns.block_rows + local) as u64,
                        reason: "a value is not finite",
                    });
                }
                squares[local] += value * value;
                seen[local] = true;
                Ok(())
            })?;
        }
        for (local, (&sq, &nonempty)) in squares.iter().zip(seen.iter()).enumerate() {
            let row = block * columns.block_rows + local;
            let scale = match columns.scale_bits(row) {
                None => 1.0,
                Some(bits) => {
                    let scale = f16_to_f32(bits);
                    let valid = if nonempty {
                        scale.is_finite() && scale > 0.0
                    } else {
                        bits == 0
                    };
                    if !valid {
                        return Err(corrupt(
                            "a row scale is not positive and finite, or not 0 for an empty row",
                        ));
                    }
                    scale
                }
            };
            if columns.has_norms() {
                let expected = if nonempty { sqrt(sq) * scale } else { 0.0 };
                if columns.norm(row)?.to_bits() != expected.to_bits() {
                    return Err(corrupt("a row norm differs from its row's values"));
                }
            }
        }
    }
    Ok(())
}

/// The rows of the id index in order (`None` for an entry past the table).
fn indexed_rows<'t>(table: &'t Table<'_>) -> impl Iterator<Item = Option<usize>> + 't {
    let index = table.raw_id_index();
    (0..table.rows()).map(move |k| {
        le::u32_at(index, k)
            .map(|r| r as usize)
            .filter(|&r| r < table.rows())
    })
}

/// Checks that every row lies within its block's bounds (up to the rounding of its decoded
/// value) and every item bias below its block's bias maximum; the bounds' own scales and
/// codes must be finite, non-negative and ordered.
fn verify_bounds(table: &Table<'_>, scoring: Scoring) -> Result<()> {
    let Some(bounds) = table.bounds() else {
        return Ok(());
    };
    let corrupt = |row: Option<usize>, reason| match row {
        Some(row) => Error::CorruptRow {
            role: table.role(),
            row: row as u64,
            reason,
        },
        None => Error::CorruptTable {
            role: table.role(),
            reason,
        },
    };
    let dim = table.dim();
    for j in 0..dim {
        let s = bounds.scale(j);
        if !(s.is_finite() && s >= 0.0) {
            return Err(corrupt(
                None,
                "a block-bounds scale is negative or not finite",
            ));
        }
        for b in 0..bounds.blocks {
            let (lo, hi) = bounds.codes(j, b);
            if lo > hi || lo == i8::MIN || hi == i8::MIN {
                return Err(corrupt(None, "block-bounds codes are out of order or -128"));
            }
        }
    }
    let mut row = [0.0f32; crate::score::MAX_STACK_DIM];
    let row = row.get_mut(..dim).ok_or(Error::DimensionTooLarge {
        dim: dim as u64,
        max: crate::score::MAX_STACK_DIM as u64,
    })?;
    for r in 0..table.rows() {
        let block = r / bounds.block_rows;
        table.decode_row(r, row)?;
        let norm = match (scoring, table.columns()) {
            (Scoring::Dot, _) => 1.0,
            (Scoring::Cosine, Some(columns)) => columns.norm(r)?,
            (Scoring::Cosine, None) => table.row(r)?.norm(),
        };
        for (j, &v) in row.iter().enumerate() {
            let x = if norm == 0.0 { 0.0 } else { v / norm };
            let (lo, hi) = bounds.codes(j, block);
            let s = bounds.scale(j);
            // The decoded value and the division are rounded: allow a few units in the last
            // place (the scan's bound allows far more).
            let slack = f32::from_bits(x.to_bits() & 0x7fff_ffff) * (1.0 / 1_048_576.0);
            if x - slack > f32::from(hi) * s || x + slack < f32::from(lo) * s {
                return Err(corrupt(Some(r), "a value lies outside its block's bounds"));
            }
        }
        if bounds.has_bias() && table.bias(r)? > bounds.bias_max(block) {
            return Err(corrupt(
                Some(r),
                "an item bias is above its block's bias maximum",
            ));
        }
    }
    Ok(())
}
