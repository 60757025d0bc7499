//! Encoding one table into its sections: row order, ids, quantization, row records, offsets.

use alloc::vec::Vec;

use half::{bf16, f16};

use super::bounds::EncodedBounds;
use super::columns::{EncodedColumns, RowEntries, encode_columns};
use super::{RowOrder, TableSpec};
use crate::error::{Error, Result};
use crate::format::ListOrder;
use crate::format::{
    BITMAP_BLOCK_ROWS, ID_INDEX_HEADER_SIZE, IdEncoding, IdIndexHeader, IdKind, IndexEncoding,
    OffsetWidth, SLICE_ROWS, SLICE_WINDOW_ROWS, U32Le, U64Le, ValueEncoding,
};
use crate::row::Row;

/// A table's sections, ready to be placed in the file.
pub(crate) struct EncodedTable {
    pub offsets: Vec<u8>,
    pub data: Vec<u8>,
    pub ids: Option<Vec<u8>>,
    pub bias: Option<Vec<u8>>,
    pub nnz: u64,
    pub index: IndexEncoding,
    pub offset_width: OffsetWidth,
    pub id_encoding: IdEncoding,
    pub columns: Option<EncodedColumns>,
    /// File row `i` is input row `order[i]`.
    pub order: Vec<usize>,
    /// The id index's row numbers (format 1.5), for rows not in id order.
    pub id_index: Option<Vec<u32>>,
    pub bounds: Option<EncodedBounds>,
}

/// The bytes of an id-index section for the table at `position`: the header, then `index`.
pub(crate) fn id_index_section(position: usize, index: &[u32]) -> Vec<u8> {
    let header = IdIndexHeader {
        table: U32Le::new(position as u32),
        reserved: U32Le::new(0),
        rows: U64Le::new(index.len() as u64),
    };
    let mut out = Vec::with_capacity(ID_INDEX_HEADER_SIZE + 4 * index.len());
    out.extend_from_slice(bytemuck::bytes_of(&header));
    out.extend(index.iter().flat_map(|r| r.to_le_bytes()));
    out
}

/// One row after quantization: its columns and its encoded values (plus the int8 scale).
/// Int4 codes are held one per byte here (as int8 codes are), and packed two to a byte when
/// the sections are written ([`pack_nibbles`]).
struct QuantizedRows {
    bounds: Vec<usize>,
    columns: Vec<u32>,
    value_bytes: Vec<u8>,
    scales: Vec<f16>,
}

/// Bytes per value in [`QuantizedRows::value_bytes`]: the encoding's width, 1 for int4.
fn code_width(values: ValueEncoding) -> usize {
    values.byte_width().unwrap_or(1)
}

/// Int4 codes, one per byte (the odd numbers `-15..=15`, as `i8`), packed two to a byte as
/// the format stores them: code `c` as the nibble `q = (c - 1) / 2` (two's complement), code
/// `k` in byte `k / 2`, the low nibble first; after an odd count the last high nibble is 0.
pub(crate) fn pack_nibbles(codes: &[u8]) -> Vec<u8> {
    let nibble = |c: u8| ((c as i8) >> 1) as u8 & 0x0F;
    codes
        .chunks(2)
        .map(|pair| nibble(pair[0]) | pair.get(1).map_or(0, |&c| nibble(c) << 4))
        .collect()
}

/// The int4 code of `v` with scale `scale`: the odd number `2q + 1` nearest `v / scale`, `q`
/// clamped to `-8..=7` (so the code to `-15..=15`).
fn int4_code_of(v: f32, scale: f32) -> i8 {
    let half = v / scale / 2.0;
    // floor(half) without `std`: truncate, then step down below zero.
    let truncated = half.clamp(-9.0, 9.0) as i32;
    let floor = if (truncated as f32) > half {
        truncated - 1
    } else {
        truncated
    };
    (2 * floor.clamp(-8, 7) + 1) as i8
}

/// The int4 scale of a row with the non-zero values `vals` (largest magnitude `max_abs`): of
/// the candidates `max_abs / 15 × (1 − 0.02 k)` for `k = 0..=20`, each rounded up to an f16,
/// the one whose codes ([`int4_code_of`]) give the row the least squared error (ties to the
/// larger scale). The first candidate codes every value within the scale (half a step of
/// the odd levels); the smaller ones clip the largest values to `±15 × scale` and bring every
/// other one closer: on trained tables the least-error scale keeps more of the ranking (see
/// docs/FORMAT.md, *Row records*). `None` when `max_abs / 15` exceeds the f16 range.
fn int4_scale(vals: &[f32], max_abs: f32) -> Option<f16> {
    let mut best: Option<(f64, f16)> = None;
    for k in 0..=20u8 {
        let scale = row_scale(max_abs * (1.0 - 0.02 * f32::from(k)), 15.0)?;
        let s = scale.to_f32();
        let error: f64 = vals
            .iter()
            .map(|&v| {
                let e = f64::from(v) - f64::from(s) * f64::from(int4_code_of(v, s));
                e * e
            })
            .sum();
        if best.is_none_or(|(least, _)| error < least) {
            best = Some((error, scale));
        }
    }
    best.map(|(_, scale)| scale)
}

/// The scale of a row whose largest magnitude is `max_abs`, for codes up to `levels` (127 for
/// int8, 7 for int4): `max_abs / levels` rounded *up* to an f16 (so every
/// `|v| / scale <= levels`), at least the smallest positive f16. `None` when it exceeds the
/// f16 range.
fn row_scale(max_abs: f32, levels: f32) -> Option<f16> {
    let ideal = max_abs / levels;
    let mut scale = f16::from_f32(ideal);
    if scale.to_f32() < ideal {
        scale = f16::from_bits(scale.to_bits() + 1);
    }
    if scale.to_f32() <= 0.0 {
        scale = f16::from_bits(1);
    }
    scale.is_finite().then_some(scale)
}

/// Rounds half away from zero without `std` (`f32::round` needs libm).
fn round_half_away(x: f32) -> f32 {
    let shifted = if x >= 0.0 { x + 0.5 } else { x - 0.5 };
    (shifted as i32) as f32
}

/// Encodes the table's rows in `order` with its value encoding.
fn quantize(spec: &TableSpec, order: &[usize]) -> Result<QuantizedRows> {
    let role = Some(spec.role);
    let mut q = QuantizedRows {
        bounds: Vec::with_capacity(order.len() + 1),
        columns: Vec::with_capacity(spec.matrix.nnz()),
        value_bytes: Vec::with_capacity(spec.matrix.nnz() * code_width(spec.values)),
        scales: Vec::new(),
    };
    q.bounds.push(0);
    for &r in order {
        let (cols, vals) = spec.matrix.row(r);
        let out_of_range = |c: u32, what: &'static str| Error::InvalidInput {
            role,
            row: Some(r as u64),
            column: Some(u64::from(c)),
            reason: what,
        };
        match spec.values {
            ValueEncoding::F32 => {
                for (&c, &v) in cols.iter().zip(vals) {
                    q.columns.push(c);
                    q.value_bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            ValueEncoding::F16 => {
                for (&c, &v) in cols.iter().zip(vals) {
                    let h = f16::from_f32(v);
                    if h.is_infinite() {
                        return Err(out_of_range(c, "value does not fit in f16 (|v| > 65504)"));
                    }
                    if h.to_f32() != 0.0 {
                        q.columns.push(c);
                        q.value_bytes.extend_from_slice(&h.to_bits().to_le_bytes());
                    }
                }
            }
            ValueEncoding::Bf16 => {
                for (&c, &v) in cols.iter().zip(vals) {
                    let b = bf16::from_f32(v);
                    if b.is_infinite() {
                        return Err(out_of_range(c, "value does not fit in bf16"));
                    }
                    if b.to_f32() != 0.0 {
                        q.columns.push(c);
                        q.value_bytes.extend_from_slice(&b.to_bits().to_le_bytes());
                    }
                }
            }
            ValueEncoding::I4 => {
                let max_abs = vals.iter().fold(0.0f32, |m, &v| {
                    let a = f32::from_bits(v.to_bits() & 0x7fff_ffff);
                    if a > m { a } else { m }
                });
                if max_abs == 0.0 {
                    q.bounds.push(q.columns.len());
                    continue;
                }
                let scale = int4_scale(vals, max_abs).ok_or(Error::InvalidInput {
                    role,
                    row: Some(r as u64),
                    column: None,
                    reason: "row too large for int4 with an f16 scale (|v| > 9.8e5)",
                })?;
                let scale_f32 = scale.to_f32();
                // Every non-zero keeps a code: int4 has no level 0.
                for (&c, &v) in cols.iter().zip(vals) {
                    if v != 0.0 {
                        q.columns.push(c);
                        q.value_bytes.push(int4_code_of(v, scale_f32) as u8);
                    }
                }
                q.scales.push(scale);
            }
            ValueEncoding::I8 => {
                let max_abs = vals.iter().fold(0.0f32, |m, &v| {
                    let a = f32::from_bits(v.to_bits() & 0x7fff_ffff);
                    if a > m { a } else { m }
                });
                let scale = row_scale(max_abs, 127.0).ok_or(Error::InvalidInput {
                    role,
                    row: Some(r as u64),
                    column: None,
                    reason: "row too large for int8 with an f16 scale (|v| > 8.3e6)",
                })?;
                let scale_f32 = scale.to_f32();
                let start = q.columns.len();
                for (&c, &v) in cols.iter().zip(vals) {
                    let code = round_half_away(v / scale_f32).clamp(-127.0, 127.0) as i8;
                    if code != 0 {
                        q.columns.push(c);
                        q.value_bytes.push(code as u8);
                    }
                }
                if q.columns.len() > start {
                    q.scales.push(scale);
                }
            }
        }
        q.bounds.push(q.columns.len());
    }
    Ok(q)
}

/// How a table's rows are ordered and its ids stored.
struct RowPlan {
    /// File row `i` is input row `order[i]`.
    order: Vec<usize>,
    encoding: IdEncoding,
    /// The ids section.
    ids: Option<Vec<u8>>,
    /// The id index, for rows not in id order.
    id_index: Option<Vec<u32>>,
}

/// The row order (sorted by external id when ids are given, or clustered), the ids' encoding
/// and their bytes, and the id index of clustered rows.
fn order_rows(spec: &TableSpec) -> Result<RowPlan> {
    let rows = spec.matrix.rows();
    if let Some(ids) = &spec.ids
        && ids.len() != rows
    {
        return Err(Error::InvalidInput {
            role: Some(spec.role),
            row: None,
            column: None,
            reason: "number of ids differs from the number of rows",
        });
    }
    let id = |r: usize| spec.ids.as_ref().map_or(r as u64, |ids| ids[r]);
    // Input rows in increasing id order, with duplicates refused.
    let mut by_id: Vec<usize> = (0..rows).collect();
    if spec.ids.is_some() {
        by_id.sort_unstable_by_key(|&r| (id(r), r));
        for pair in by_id.windows(2) {
            if id(pair[0]) == id(pair[1]) {
                return Err(Error::DuplicateId {
                    role: spec.role,
                    id: id(pair[0]),
                    rows: (pair[0] as u64, pair[1] as u64),
                });
            }
        }
    }
    let narrow = spec.id_kind == IdKind::Integer
        && by_id.last().is_none_or(|&r| id(r) <= u64::from(u32::MAX));
    if spec.row_order == RowOrder::Clustered {
        let order = match &spec.keep_order {
            Some(previous) => kept_order(&spec.matrix, previous, &by_id, id),
            None => cluster_order(&spec.matrix),
        };
        let mut file_row = alloc::vec![0u32; rows];
        for (i, &r) in order.iter().enumerate() {
            file_row[r] = i as u32;
        }
        let index: Vec<u32> = by_id.iter().map(|&r| file_row[r]).collect();
        let in_order = order.iter().map(|&r| id(r));
        let (encoding, bytes) = if narrow {
            let bytes = in_order.flat_map(|id| (id as u32).to_le_bytes()).collect();
            (IdEncoding::U32Indexed, bytes)
        } else {
            (
                IdEncoding::U64Indexed,
                in_order.flat_map(u64::to_le_bytes).collect(),
            )
        };
        if u32::try_from(rows).is_err() {
            return Err(Error::InvalidInput {
                role: Some(spec.role),
                row: None,
                column: None,
                reason: "clustered rows need fewer than 2^32 rows (u32 id index)",
            });
        }
        return Ok(RowPlan {
            order,
            encoding,
            ids: Some(bytes),
            id_index: Some(index),
        });
    }
    let order = by_id;
    let sorted = order.iter().map(|&r| id(r));
    let identity =
        spec.id_kind == IdKind::Integer && sorted.clone().enumerate().all(|(i, id)| id == i as u64);
    let (encoding, ids) = if identity {
        (IdEncoding::RowNumber, None)
    } else if narrow {
        let bytes = sorted.flat_map(|id| (id as u32).to_le_bytes()).collect();
        (IdEncoding::U32, Some(bytes))
    } else {
        (
            IdEncoding::U64,
            Some(sorted.flat_map(u64::to_le_bytes).collect()),
        )
    };
    Ok(RowPlan {
        order,
        encoding,
        ids,
        id_index: None,
    })
}

/// The rows whose ids are in `previous`, in that order, then the others in clustered order
/// ([`super::TableSpec::keep_order_of`]). `by_id`: the input rows in increasing id order.
fn kept_order(
    matrix: &super::SparseMatrix,
    previous: &[u64],
    by_id: &[usize],
    id: impl Fn(usize) -> u64,
) -> Vec<usize> {
    let mut placed = alloc::vec![false; by_id.len()];
    let mut order = Vec::with_capacity(by_id.len());
    for &wanted in previous {
        if let Ok(k) = by_id.binary_search_by_key(&wanted, |&r| id(r)) {
            let r = by_id[k];
            if !placed[r] {
                placed[r] = true;
                order.push(r);
            }
        }
    }
    order.extend(cluster_order(matrix).into_iter().filter(|&r| !placed[r]));
    order
}

/// The clustered row order ([`RowOrder::Clustered`]) of `matrix`: file row `i` is input row
/// `order[i]`. Rows are keyed by their strongest dimension and its sign, then their second
/// strongest, then by decreasing squared norm; empty rows last; ties in input order.
/// Deterministic.
///
/// ```
/// use pocketrec::builder::{SparseMatrix, cluster_order};
/// # fn main() -> Result<(), pocketrec::Error> {
/// let m = SparseMatrix::from_dense(4, 2, &[0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 0.0, 0.0])?;
/// // Row 1 (strongest in dimension 0), rows 2 and 0 (dimension 1, larger norm first), the
/// // empty row 3 last.
/// assert_eq!(cluster_order(&m), vec![1, 2, 0, 3]);
/// # Ok(()) }
/// ```
pub fn cluster_order(matrix: &super::SparseMatrix) -> Vec<usize> {
    let rows = matrix.rows();
    // (strongest, second strongest) as `2 * dim + negative`, u32::MAX when absent.
    let mut keys: Vec<(u32, u32, u32)> = Vec::with_capacity(rows);
    let mut norms: Vec<f64> = Vec::with_capacity(rows);
    for r in 0..rows {
        let (cols, vals) = matrix.row(r);
        let (mut first, mut second) = ((u32::MAX, 0.0f32), (u32::MAX, 0.0f32));
        let mut sq = 0.0f64;
        for (&c, &v) in cols.iter().zip(vals) {
            let a = f32::from_bits(v.to_bits() & 0x7fff_ffff);
            sq += f64::from(v) * f64::from(v);
            let code = 2 * c + u32::from(v < 0.0);
            if a > first.1 {
                second = first;
                first = (code, a);
            } else if a > second.1 {
                second = (code, a);
            }
        }
        keys.push((first.0, second.0, 0));
        norms.push(sq);
    }
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by(|&a, &b| {
        (keys[a].0, keys[a].1)
            .cmp(&(keys[b].0, keys[b].1))
            .then(norms[b].total_cmp(&norms[a]))
            .then(a.cmp(&b))
    });
    order
}

/// Picks the index encoding for this table: the column list, or bitmap records only when
/// their index bytes are strictly fewer than the list's (`nonempty_rows × ceil(dim / 8)`
/// against `nnz × width`), with one offset a row or (`blocks`, format 1.7) one offset and one
/// mask per 16 rows. The offsets saved in blocks do not move the line: below it a bitmap
/// would save a few bytes a row and cost the row scan more than they are worth (at d = 64 and
/// 10 %, 9 % fewer bytes for 2.7 times the AVX-512 scan time of u8 lists; docs/FORMAT.md).
fn choose_index(dim: usize, nonempty_rows: usize, nnz: usize, blocks: bool) -> IndexEncoding {
    let list = if dim <= 256 {
        IndexEncoding::U8List
    } else {
        IndexEncoding::U16List
    };
    let list_bytes = list.row_bytes(nnz, dim) as u128;
    let bitmap_bytes = (nonempty_rows as u128) * (IndexEncoding::Bitmap.row_bytes(1, dim) as u128);
    match (bitmap_bytes < list_bytes, blocks) {
        (true, true) => IndexEncoding::BitmapBlocks,
        (true, false) => IndexEncoding::Bitmap,
        (false, _) => list,
    }
}

/// Encodes one table.
pub(crate) fn encode_table(
    spec: &TableSpec,
    cosine: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<EncodedTable> {
    let dim = spec.matrix.dim();
    let RowPlan {
        order,
        encoding: id_encoding,
        ids,
        id_index,
    } = order_rows(spec)?;
    let bias: Option<Vec<u8>> = match &spec.bias {
        None => None,
        Some(bias) => {
            if bias.len() != order.len() {
                return Err(Error::InvalidInput {
                    role: Some(spec.role),
                    row: None,
                    column: None,
                    reason: "number of biases differs from the number of rows",
                });
            }
            if let Some(r) = bias.iter().position(|b| !b.is_finite()) {
                return Err(Error::InvalidInput {
                    role: Some(spec.role),
                    row: Some(r as u64),
                    column: None,
                    reason: "bias is not finite",
                });
            }
            Some(order.iter().flat_map(|&r| bias[r].to_le_bytes()).collect())
        }
    };
    let q = quantize(spec, &order)?;
    let nonempty = q.bounds.windows(2).filter(|w| w[1] > w[0]).count();
    let width = code_width(spec.values);
    if spec.sliced {
        if spec.block_bounds.is_some() {
            return Err(Error::InvalidInput {
                role: Some(spec.role),
                row: None,
                column: None,
                reason: "block bounds need a column layout, not sliced rows",
            });
        }
        let mut table = encode_sliced(spec, &q, ids, bias, id_encoding, progress)?;
        table.order = order;
        table.id_index = id_index;
        return Ok(table);
    }
    // Bitmap rows in blocks only where rows are stored (a table without row records keeps
    // the codes row records would have used, and has no offsets to save).
    let blocks = spec.layout.has_rows() && !spec.per_row_offsets;
    let index = choose_index(dim, nonempty, q.columns.len(), blocks);

    let mut data = Vec::new();
    let mut offsets = Vec::with_capacity(order.len() + 1);
    offsets.push(0u64);
    let mut scales = q.scales.iter();
    for (row, w) in q.bounds.windows(2).enumerate() {
        let (start, end) = (w[0], w[1]);
        if end > start {
            let cols = &q.columns[start..end];
            match index {
                IndexEncoding::U8List | IndexEncoding::Sliced => {
                    data.extend(cols.iter().map(|&c| c as u8))
                }
                IndexEncoding::U16List => {
                    data.extend(cols.iter().flat_map(|&c| (c as u16).to_le_bytes()))
                }
                IndexEncoding::Bitmap | IndexEncoding::BitmapBlocks => {
                    let base = data.len();
                    data.resize(base + dim.div_ceil(8), 0);
                    for &c in cols {
                        data[base + c as usize / 8] |= 1 << (c % 8);
                    }
                }
            }
            if let Some(scale) = spec.values.is_scaled().then(|| scales.next()).flatten() {
                data.extend_from_slice(&scale.to_bits().to_le_bytes());
            }
            let codes = &q.value_bytes[start * width..end * width];
            if spec.values == ValueEncoding::I4 {
                data.extend(pack_nibbles(codes));
            } else {
                data.extend_from_slice(codes);
            }
        }
        offsets.push(data.len() as u64);
        if row % 65_536 == 0 {
            progress(row as u64);
        }
    }
    progress(order.len() as u64);
    let columns = spec.layout.has_columns().then(|| {
        let rows = RowEntries {
            bounds: &q.bounds,
            columns: &q.columns,
            values: &q.value_bytes,
            width,
        };
        // Norms as the row path computes them, from the encoded rows, so that both paths
        // give the same cosine bit for bit.
        let norms: Option<Vec<f32>> = cosine.then(|| {
            offsets
                .windows(2)
                .map(|w| {
                    Row::parse(&data[w[0] as usize..w[1] as usize], dim, index, spec.values)
                        .map_or(0.0, |row| row.norm())
                })
                .collect()
        });
        let scales: Option<Vec<f16>> = spec.values.is_scaled().then(|| {
            let mut nonempty = q.scales.iter();
            q.bounds
                .windows(2)
                .map(|w| {
                    if w[1] > w[0] {
                        nonempty.next().copied().unwrap_or(f16::ZERO)
                    } else {
                        f16::ZERO
                    }
                })
                .collect()
        });
        let list_order = ListOrder::of_table(spec.layout.has_rows());
        let block_rows = spec.block_bounds.unwrap_or(super::COLUMN_BLOCK_ROWS);
        let mut columns = encode_columns(
            dim,
            &rows,
            scales.as_deref(),
            norms.as_deref(),
            list_order,
            spec.list_rows,
            block_rows,
        );
        if spec.values == ValueEncoding::I4 {
            // One section-wide run of nibbles: entry `e` in byte `e / 2`.
            columns.values = pack_nibbles(&columns.values);
        }
        columns
    });
    let (columns, bounds) = match columns {
        None if spec.block_bounds.is_some() => {
            return Err(Error::InvalidInput {
                role: Some(spec.role),
                row: None,
                column: None,
                reason: "block bounds need a column layout (Layout::Both or Layout::Columns)",
            });
        }
        None => (None, None),
        Some(columns) => {
            let bounds = match spec.block_bounds {
                None => None,
                Some(block_rows) => {
                    if !block_rows.is_power_of_two() || !(64..=4096).contains(&block_rows) {
                        return Err(Error::InvalidInput {
                            role: Some(spec.role),
                            row: None,
                            column: None,
                            reason: "block bounds' block must be a power of two in 64..=4096",
                        });
                    }
                    // The body is computed from the assembled file (`super::bounds`).
                    Some(EncodedBounds::placeholder(
                        dim,
                        block_rows as usize,
                        spec.matrix.rows(),
                        bias.is_some(),
                    ))
                }
            };
            (Some(columns), bounds)
        }
    };
    let offset_width = offset_width_for(data.len());
    let offsets = if index == IndexEncoding::BitmapBlocks {
        block_offset_bytes(&offsets, offset_width)
    } else {
        offset_bytes(&offsets, offset_width)
    };
    Ok(EncodedTable {
        offsets,
        data,
        ids,
        bias,
        nnz: q.columns.len() as u64,
        index,
        offset_width,
        id_encoding,
        columns,
        order,
        id_index,
        bounds,
    })
}

/// The offset width that can address `data_len` bytes.
fn offset_width_for(data_len: usize) -> OffsetWidth {
    if data_len as u64 <= u64::from(u32::MAX) {
        OffsetWidth::U32
    } else {
        OffsetWidth::U64
    }
}

/// Offsets as little-endian integers of `width`.
fn offset_bytes(offsets: &[u64], width: OffsetWidth) -> Vec<u8> {
    match width {
        OffsetWidth::U32 => offsets
            .iter()
            .flat_map(|&o| (o as u32).to_le_bytes())
            .collect(),
        OffsetWidth::U64 => offsets.iter().flat_map(|&o| o.to_le_bytes()).collect(),
    }
}

/// The offsets section of bitmap rows in blocks (format 1.7) from the rows' offsets (`rows +
/// 1` of them): every [`BITMAP_BLOCK_ROWS`]-th offset and the last, then each block's mask of
/// its non-empty rows.
fn block_offset_bytes(row_offsets: &[u64], width: OffsetWidth) -> Vec<u8> {
    let rows = row_offsets.len().saturating_sub(1);
    let mut starts: Vec<u64> = row_offsets[..rows]
        .iter()
        .step_by(BITMAP_BLOCK_ROWS)
        .copied()
        .collect();
    starts.push(row_offsets[rows]);
    let mut bytes = offset_bytes(&starts, width);
    for first in (0..rows).step_by(BITMAP_BLOCK_ROWS) {
        let mask = (first..rows.min(first + BITMAP_BLOCK_ROWS))
            .filter(|&r| row_offsets[r + 1] > row_offsets[r])
            .fold(0u16, |m, r| m | 1 << (r - first));
        bytes.extend_from_slice(&mask.to_le_bytes());
    }
    bytes
}

/// Encodes a table's quantized rows `q` as sliced rows (format 1.4, see
/// [`IndexEncoding::Sliced`]): per window of [`SLICE_WINDOW_ROWS`] rows, its rows longest
/// first dealt to slices of [`SLICE_ROWS`] lanes; per slice, the lanes' lengths, rows and int8
/// scales, then the `t`-th entry of every lane that has one for `t = 0, 1, ...` (columns,
/// then values).
fn encode_sliced(
    spec: &TableSpec,
    q: &QuantizedRows,
    ids: Option<Vec<u8>>,
    bias: Option<Vec<u8>>,
    id_encoding: IdEncoding,
    progress: &mut dyn FnMut(u64),
) -> Result<EncodedTable> {
    let dim = spec.matrix.dim();
    let role = Some(spec.role);
    if spec.values == ValueEncoding::I4 {
        return Err(Error::InvalidInput {
            role,
            row: None,
            column: None,
            reason: "sliced rows do not take int4 values; write row records or a column layout",
        });
    }
    if dim > 256 {
        return Err(Error::InvalidInput {
            role,
            row: None,
            column: None,
            reason: "sliced rows need a dimension of at most 256 (u8 columns); write row records",
        });
    }
    if spec.layout != super::Layout::Rows {
        return Err(Error::InvalidInput {
            role,
            row: None,
            column: None,
            reason: "sliced rows are a row layout of their own: they take no column layout",
        });
    }
    let width = code_width(spec.values);
    let rows = q.bounds.len() - 1;
    let length = |r: usize| q.bounds[r + 1] - q.bounds[r];
    if let Some(r) = (0..rows).find(|&r| length(r) > 255) {
        return Err(Error::InvalidInput {
            role,
            row: Some(r as u64),
            column: None,
            reason: "a sliced row holds at most 255 non-zeros; write row records",
        });
    }
    // Each row's int8 scale (0 for an empty row).
    let mut nonempty = q.scales.iter();
    let scales: Vec<f16> = (0..rows)
        .map(|r| match spec.values {
            ValueEncoding::I8 if length(r) > 0 => nonempty.next().copied().unwrap_or(f16::ZERO),
            _ => f16::ZERO,
        })
        .collect();
    let mut data = Vec::new();
    let mut offsets = Vec::with_capacity(rows.div_ceil(SLICE_ROWS) + 1);
    offsets.push(0u64);
    for window in (0..rows).step_by(SLICE_WINDOW_ROWS) {
        // The window's rows, longest first (ties in row order), dealt to its lanes in turn.
        let mut dealt: Vec<usize> = (window..(window + SLICE_WINDOW_ROWS).min(rows)).collect();
        dealt.sort_by_key(|&r| core::cmp::Reverse(length(r)));
        for lanes in dealt.chunks(SLICE_ROWS) {
            let lane_length = |lane: usize| lanes.get(lane).map_or(0, |&r| length(r));
            data.extend((0..SLICE_ROWS).map(|lane| lane_length(lane) as u8));
            data.extend(
                (0..SLICE_ROWS).map(|lane| lanes.get(lane).map_or(0, |&r| (r - window) as u8)),
            );
            if spec.values == ValueEncoding::I8 {
                for lane in 0..SLICE_ROWS {
                    let scale = lanes.get(lane).map_or(f16::ZERO, |&r| scales[r]);
                    data.extend_from_slice(&scale.to_bits().to_le_bytes());
                }
            }
            let longest = (0..SLICE_ROWS).map(lane_length).max().unwrap_or(0);
            // The entries of the quantized rows, step by step.
            let mut entries = Vec::new();
            for t in 0..longest {
                entries.extend(
                    lanes
                        .iter()
                        .filter(|&&r| length(r) > t)
                        .map(|&r| q.bounds[r] + t),
                );
            }
            data.extend(entries.iter().map(|&entry| q.columns[entry] as u8));
            for &entry in &entries {
                data.extend_from_slice(&q.value_bytes[entry * width..(entry + 1) * width]);
            }
            offsets.push(data.len() as u64);
        }
        if window % 65_536 == 0 {
            progress(window as u64);
        }
    }
    progress(rows as u64);
    let offset_width = offset_width_for(data.len());
    Ok(EncodedTable {
        offsets: offset_bytes(&offsets, offset_width),
        data,
        ids,
        bias,
        nnz: q.columns.len() as u64,
        index: IndexEncoding::Sliced,
        offset_width,
        id_encoding,
        columns: None,
        order: Vec::new(),
        id_index: None,
        bounds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Int4 coding: every value within `15 × scale` is coded within `scale` of itself (half
    /// the step between odd levels), larger ones to `±15 × scale`; the chosen scale is the
    /// first candidate's or one of less squared error; codes pack to the nibbles the reader
    /// decodes back.
    #[test]
    fn int4_codes_are_within_the_scale_and_pack_to_what_readers_decode() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2_000_001) as f32 / 1_000_000.0 - 1.0
        };
        for len in 1..40usize {
            let vals: Vec<f32> = (0..len).map(|_| next() * 3.0).collect();
            let max_abs = vals.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if max_abs == 0.0 {
                continue;
            }
            let scale = int4_scale(&vals, max_abs).unwrap();
            let s = scale.to_f32();
            let first = row_scale(max_abs, 15.0).unwrap().to_f32();
            assert!(
                s <= first && s >= 0.6 * max_abs / 15.0,
                "len {len}: scale {s}"
            );
            let error = |s: f32| -> f64 {
                vals.iter()
                    .map(|&v| (f64::from(v) - f64::from(s) * f64::from(int4_code_of(v, s))).powi(2))
                    .sum()
            };
            assert!(error(s) <= error(first), "len {len}");
            let codes: Vec<u8> = vals.iter().map(|&v| int4_code_of(v, s) as u8).collect();
            for (&v, &c) in vals.iter().zip(&codes) {
                let c = c as i8;
                assert!(c % 2 != 0 && (-15..=15).contains(&c), "code {c}");
                let decoded = f64::from(s) * f64::from(c);
                let allowed = if v.abs() <= 15.0 * s {
                    f64::from(s)
                } else {
                    f64::from(v.abs()) - 15.0 * f64::from(s)
                };
                assert!(
                    (f64::from(v) - decoded).abs() <= allowed * (1.0 + 1e-6),
                    "{v} {c} {s}"
                );
            }
            let packed = pack_nibbles(&codes);
            assert_eq!(packed.len(), len.div_ceil(2));
            if len % 2 == 1 {
                assert_eq!(packed[len / 2] >> 4, 0, "padding nibble");
            }
            for (k, &c) in codes.iter().enumerate() {
                assert_eq!(
                    crate::row::nibble(&packed, k),
                    c as i8,
                    "len {len} entry {k}"
                );
            }
        }
        // Exactly on a level, and exactly between two (to the upper one: floor of v / 2s).
        assert_eq!(int4_code_of(3.0, 1.0), 3);
        assert_eq!(int4_code_of(2.0, 1.0), 3);
        assert_eq!(int4_code_of(-2.0, 1.0), -1);
        assert_eq!(int4_code_of(0.0, 1.0), 1);
        assert_eq!(int4_code_of(100.0, 1.0), 15);
        assert_eq!(int4_code_of(-100.0, 1.0), -15);
    }
}
