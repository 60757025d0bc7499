//! Sliced rows (format 1.4, [`IndexEncoding::Sliced`](crate::format::IndexEncoding::Sliced)):
//! a table's rows in slices of [`SLICE_ROWS`], laid out so that a 16-lane vector walks a slice
//! one entry of every row at a time, with one accumulator lane per row and no reduction.
//!
//! Rows are grouped in windows of [`SLICE_WINDOW_ROWS`] (256: sixteen slices). Within a window
//! the rows are dealt to the lanes longest first, so that the rows of a slice have about the
//! same length and a slice takes few steps beyond its rows' average; each lane records which
//! row of its window it holds. A slice's record (offsets: one per slice, in bytes,
//! `slices + 1` of them) is:
//!
//! ```text
//! lengths  16 x u8        non-zeros of each lane's row, never increasing from lane to lane;
//!                         0 for lanes past the table's last row
//! rows     16 x u8        the row each lane holds, counted from its window's first row; 0 for
//!                         lanes past the table's last row
//! scales   16 x f16 LE    int8 tables only: each lane's row's scale, 0 for empty rows
//! columns  n x u8         n = sum of the lengths: for t = 0, 1, ..., for each lane (in order)
//!                         whose length is above t (the first lanes), the column of that
//!                         row's t-th non-zero
//! values   n x value      the values, in the same order (int8: the codes)
//! ```
//!
//! Lane `l` of slice `s` is lane `16 * s + l` of the table; it is live when that is below the
//! table's row count. The live lanes of a window hold each of its rows once. Each row's
//! columns are strictly increasing and below the dimension. A slice's record is checked as it
//! is read ([`SlicedRows::slice`]): its length against its lengths, the lanes past the last
//! row, the row numbers against the window's row count, the int8 scales; the columns as the
//! kernels walk them, and that no row of a window is held twice as they place the results.

use crate::error::{Error, Result};
use crate::format::{OffsetWidth, Role, SLICE_ROWS, SLICE_WINDOW_ROWS, ValueEncoding};
use crate::kernels::{
    self,
    scalar::{bf16_to_f32, f16_to_f32},
};
use crate::le;
use crate::row::sqrt;

/// Bytes of a slice's lengths and row numbers.
const LENGTH_BYTES: usize = 2 * SLICE_ROWS;
/// Slices per window.
pub(crate) const WINDOW_SLICES: usize = SLICE_WINDOW_ROWS / SLICE_ROWS;
/// Bytes of a slice's int8 scales.
const SCALE_BYTES: usize = 2 * SLICE_ROWS;

/// The number of slices of a table of `rows` rows.
pub(crate) const fn slice_count(rows: usize) -> usize {
    rows.div_ceil(SLICE_ROWS)
}

/// The first row of slice `index`'s window: the row a corrupt slice's error names (its lanes
/// hold rows of that window in no fixed order).
const fn window_row(index: usize) -> usize {
    index / WINDOW_SLICES * SLICE_WINDOW_ROWS
}

/// The number of windows of a table of `rows` rows.
pub(crate) const fn window_count(rows: usize) -> usize {
    rows.div_ceil(SLICE_WINDOW_ROWS)
}

/// One slice's record, its lengths and sizes checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slice<'a> {
    /// Each lane's number of non-zeros (0 past the table's last row).
    pub lengths: [u8; SLICE_ROWS],
    /// The row each lane holds, from its window's first row (checked below the window's row
    /// count; 0 past the table's last row).
    pub rows: [u8; SLICE_ROWS],
    /// How many lanes are live (below the table's row count).
    pub live: usize,
    /// The longest row's length.
    pub longest: usize,
    /// Each lane's int8 scale (f16 bits, checked: positive and finite for a non-empty row, 0
    /// for an empty one); all 0 for other encodings.
    pub scales: [u16; SLICE_ROWS],
    /// The `u8` columns of the entries, step by step.
    pub columns: &'a [u8],
    /// Their values.
    pub values: &'a [u8],
}

impl Slice<'_> {
    /// The factor that turns lane `lane`'s raw values into real ones (its int8 scale; 1
    /// otherwise).
    pub fn scale(&self, lane: usize, encoding: ValueEncoding) -> f32 {
        match encoding {
            ValueEncoding::I8 => f16_to_f32(self.scales[lane]),
            _ => 1.0,
        }
    }

    /// Calls `f(lane, column, raw value)` for every entry of the slice, step by step (each
    /// lane's entries in column order), checking that each row's columns are strictly
    /// increasing and below `dim`.
    fn walk(
        &self,
        dim: usize,
        encoding: ValueEncoding,
        mut f: impl FnMut(usize, usize, f32),
    ) -> core::result::Result<(), &'static str> {
        let mut next_allowed = [0usize; SLICE_ROWS];
        let mut position = 0usize;
        for t in 0..self.longest {
            for (lane, next_allowed) in next_allowed.iter_mut().enumerate() {
                if usize::from(self.lengths[lane]) <= t {
                    continue;
                }
                let column = usize::from(*self.columns.get(position).ok_or(TRUNCATED)?);
                if column < *next_allowed {
                    return Err("column indices of a sliced row are not strictly increasing");
                }
                if column >= dim {
                    return Err("column index is not below the dimension");
                }
                *next_allowed = column + 1;
                f(
                    lane,
                    column,
                    raw_value(self.values, position, encoding).ok_or(TRUNCATED)?,
                );
                position += 1;
            }
        }
        Ok(())
    }

    /// Calls `f(column, raw value)` for each non-zero of lane `lane` in column order, checking
    /// that the columns are strictly increasing and below `dim`.
    fn visit_lane(
        &self,
        lane: usize,
        dim: usize,
        encoding: ValueEncoding,
        mut f: impl FnMut(usize, f32),
    ) -> core::result::Result<(), &'static str> {
        let own = usize::from(self.lengths[lane]);
        let mut at = 0usize;
        let mut next_allowed = 0usize;
        for t in 0..own {
            // Lengths do not increase along the lanes (checked by `SlicedRows::slice`), so
            // every lane before this one has a `t`-th entry too.
            let position = at + lane;
            let column = usize::from(*self.columns.get(position).ok_or(TRUNCATED)?);
            if column < next_allowed {
                return Err("column indices of a sliced row are not strictly increasing");
            }
            if column >= dim {
                return Err("column index is not below the dimension");
            }
            next_allowed = column + 1;
            f(
                column,
                raw_value(self.values, position, encoding).ok_or(TRUNCATED)?,
            );
            at += self.lengths.iter().filter(|&&n| usize::from(n) > t).count();
        }
        Ok(())
    }
}

const TRUNCATED: &str = "slice record is shorter than its lengths";

/// The raw value of entry `position` (the code for int8); `None` past the values, and for
/// int4, which sliced rows do not take (refused at open).
#[inline(always)]
pub(crate) fn raw_value(values: &[u8], position: usize, encoding: ValueEncoding) -> Option<f32> {
    let width = encoding.byte_width()?;
    let bytes = values.get(position * width..position * width + width)?;
    Some(match encoding {
        ValueEncoding::F32 => f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        ValueEncoding::F16 => f16_to_f32(u16::from_le_bytes([bytes[0], bytes[1]])),
        ValueEncoding::Bf16 => bf16_to_f32(u16::from_le_bytes([bytes[0], bytes[1]])),
        ValueEncoding::I8 | ValueEncoding::I4 => f32::from(bytes[0] as i8),
    })
}

/// A table's sliced rows: its row offsets (one per slice) and row data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlicedRows<'a> {
    pub offsets: &'a [u8],
    pub width: OffsetWidth,
    pub data: &'a [u8],
    pub rows: usize,
    pub dim: usize,
    pub encoding: ValueEncoding,
    pub role: Role,
}

impl<'a> SlicedRows<'a> {
    fn corrupt(&self, row: usize, reason: &'static str) -> Error {
        Error::CorruptRow {
            role: self.role,
            row: row as u64,
            reason,
        }
    }

    /// Slice `index`'s record, checked (see [`Slice`]); the error names the slice's first row.
    pub fn slice(&self, index: usize) -> Result<Slice<'a>> {
        let first_row = index * SLICE_ROWS;
        let corrupt = |reason| self.corrupt(window_row(index), reason);
        let start = le::offset(self.offsets, self.width, index);
        let end = le::offset(self.offsets, self.width, index + 1);
        let record = match (start, end) {
            (Some(s), Some(e)) if s <= e => usize::try_from(s)
                .ok()
                .zip(usize::try_from(e).ok())
                .and_then(|(s, e)| self.data.get(s..e)),
            _ => None,
        }
        .ok_or_else(|| corrupt("slice offsets are out of order or past the row data"))?;
        let (length_bytes, rest) = record
            .split_at_checked(LENGTH_BYTES)
            .ok_or_else(|| corrupt("slice record is shorter than its lengths"))?;
        let mut lengths = [0u8; SLICE_ROWS];
        let mut rows = [0u8; SLICE_ROWS];
        lengths.copy_from_slice(&length_bytes[..SLICE_ROWS]);
        rows.copy_from_slice(&length_bytes[SLICE_ROWS..]);
        let live = self.rows.saturating_sub(first_row).min(SLICE_ROWS);
        if lengths[live..].iter().chain(&rows[live..]).any(|&n| n != 0) {
            return Err(corrupt("a lane past the table's last row has entries"));
        }
        let window_rows = self.window_rows(index / WINDOW_SLICES);
        if rows[..live].iter().any(|&r| usize::from(r) >= window_rows) {
            return Err(corrupt("a lane holds a row past its window"));
        }
        if lengths.iter().any(|&n| usize::from(n) > self.dim) {
            return Err(corrupt("a sliced row has more entries than the dimension"));
        }
        if lengths.windows(2).any(|pair| pair[1] > pair[0]) {
            return Err(corrupt("the lengths of a slice's lanes increase"));
        }
        let mut scales = [0u16; SLICE_ROWS];
        let rest = if self.encoding == ValueEncoding::I8 {
            let (scale_bytes, rest) = rest
                .split_at_checked(SCALE_BYTES)
                .ok_or_else(|| corrupt("slice record is shorter than its int8 scales"))?;
            for ((scale, bytes), &n) in scales
                .iter_mut()
                .zip(scale_bytes.chunks_exact(2))
                .zip(&lengths)
            {
                *scale = u16::from_le_bytes([bytes[0], bytes[1]]);
                let value = f16_to_f32(*scale);
                let valid = if n == 0 {
                    *scale == 0
                } else {
                    value.is_finite() && value > 0.0
                };
                if !valid {
                    return Err(corrupt(
                        "int8 scale is not positive and finite (or not 0 for an empty row)",
                    ));
                }
            }
            rest
        } else {
            rest
        };
        let entries: usize = lengths.iter().map(|&n| usize::from(n)).sum();
        let width = self
            .encoding
            .byte_width()
            .ok_or_else(|| corrupt("sliced rows do not take int4 values"))?;
        if rest.len() != entries * (1 + width) {
            return Err(corrupt("slice record length does not match its lengths"));
        }
        let (columns, values) = rest.split_at(entries);
        Ok(Slice {
            lengths,
            rows,
            live,
            longest: usize::from(lengths.iter().copied().max().unwrap_or(0)),
            scales,
            columns,
            values,
        })
    }

    /// The number of rows of window `window` (256 but for the last).
    pub fn window_rows(&self, window: usize) -> usize {
        self.rows
            .saturating_sub(window * SLICE_WINDOW_ROWS)
            .min(SLICE_WINDOW_ROWS)
    }

    /// Row `row`'s slice and lane: the one live lane of its window that holds it.
    fn lane_of(&self, row: usize) -> Result<(Slice<'a>, usize)> {
        let window = row / SLICE_WINDOW_ROWS;
        let local = (row % SLICE_WINDOW_ROWS) as u8;
        let mut found = None;
        let first = window * WINDOW_SLICES;
        for index in first..first + self.window_rows(window).div_ceil(SLICE_ROWS) {
            let slice = self.slice(index)?;
            for lane in 0..slice.live {
                if slice.rows[lane] == local {
                    if found.is_some() {
                        return Err(self.corrupt(row, "two lanes of a window hold the same row"));
                    }
                    found = Some((slice, lane));
                }
            }
        }
        found.ok_or_else(|| self.corrupt(row, "no lane of its window holds the row"))
    }

    /// Places slice results `lanes` (the slice's live lanes) at their rows in `out` (the
    /// window's rows), marking each row in `marks`; false if a row is past `out`. Once every
    /// slice of the window is placed, [`Self::all_marked`] says whether each row was placed
    /// (and so none twice): independent stores, no read-modify-write chain.
    #[inline(always)]
    pub(crate) fn place(
        slice_rows: &[u8; SLICE_ROWS],
        live: usize,
        lanes: &[f32; SLICE_ROWS],
        out: &mut [f32],
        marks: &mut [u8; SLICE_WINDOW_ROWS],
    ) -> bool {
        for (&row, &x) in slice_rows[..live].iter().zip(lanes) {
            match out.get_mut(usize::from(row)) {
                Some(slot) => *slot = x,
                None => return false,
            }
            marks[usize::from(row)] = 1;
        }
        true
    }

    /// Whether the first `rows` marks are all set (then, `rows` lanes having been placed,
    /// each row of the window was placed once), clearing them for the next window.
    #[inline(always)]
    pub(crate) fn all_marked(marks: &mut [u8; SLICE_WINDOW_ROWS], rows: usize) -> bool {
        let marked: usize = marks.iter().map(|&m| usize::from(m)).sum();
        marks.fill(0);
        marked == rows
    }

    /// Writes row `row` (below `rows`, checked by the caller) densely into `out` (`dim` long).
    pub fn decode_row(&self, row: usize, out: &mut [f32]) -> Result<()> {
        if out.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim as u64,
                actual: out.len() as u64,
            });
        }
        let (slice, lane) = self.lane_of(row)?;
        let scale = slice.scale(lane, self.encoding);
        out.fill(0.0);
        let is_i8 = self.encoding == ValueEncoding::I8;
        slice
            .visit_lane(lane, self.dim, self.encoding, |c, v| {
                out[c] = if is_i8 { v * scale } else { v };
            })
            .map_err(|reason| self.corrupt(row, reason))
    }

    /// Row `row`'s dot product with `query` (`dim` long) and its Euclidean norm, each summed
    /// one product after another in column order, as the sliced scan sums them.
    pub fn dot_and_norm(&self, row: usize, query: &[f32]) -> Result<(f32, f32)> {
        let (slice, lane) = self.lane_of(row)?;
        let (mut dot, mut sq) = (0.0f32, 0.0f32);
        slice
            .visit_lane(lane, self.dim, self.encoding, |c, v| {
                dot += query.get(c).copied().unwrap_or(0.0) * v;
                sq += v * v;
            })
            .map_err(|reason| self.corrupt(row, reason))?;
        let scale = slice.scale(lane, self.encoding);
        Ok((dot * scale, sqrt(sq) * scale))
    }

    /// The dot products with `query` of window `window`'s rows into `out` (its rows, in
    /// order), int8 scales applied: [`kernels::sliced_dots`].
    #[inline]
    pub fn dots(&self, window: usize, query: &[f32], out: &mut [f32]) -> Result<()> {
        kernels::sliced_dots(query, self, window, out).map_err(|bad| self.slice_error(bad))
    }

    /// The error for slice `index`, found corrupt by a kernel: what [`Self::slice`] finds, or
    /// else what only the kernels check.
    fn slice_error(&self, index: usize) -> Error {
        match self.slice(index) {
            Err(e) => e,
            Ok(_) => self.corrupt(
                window_row(index),
                "a sliced row's columns are not strictly increasing and below the dimension, \
                 or two lanes of a window hold the same row",
            ),
        }
    }

    /// Cosine similarities with `query` (whose norm is `query_norm`) of window `window`'s
    /// rows, into `out` (its rows, in order), as [`crate::Model::score`] computes them from
    /// [`Self::dot_and_norm`]: dot and squared norm summed one product after another in column
    /// order, 0 for a zero row or query.
    pub fn cosines(
        &self,
        window: usize,
        query: &[f32],
        query_norm: f32,
        out: &mut [f32],
    ) -> Result<()> {
        let mut marks = [0u8; SLICE_WINDOW_ROWS];
        if out.len() != self.window_rows(window) {
            return Err(self.corrupt(window * SLICE_WINDOW_ROWS, "window size mismatch"));
        }
        let first = window * WINDOW_SLICES;
        for index in first..first + out.len().div_ceil(SLICE_ROWS) {
            let slice = self.slice(index)?;
            let mut dot = [0.0f32; SLICE_ROWS];
            let mut sq = [0.0f32; SLICE_ROWS];
            slice
                .walk(self.dim, self.encoding, |lane, column, v| {
                    dot[lane] += query.get(column).copied().unwrap_or(0.0) * v;
                    sq[lane] += v * v;
                })
                .map_err(|reason| self.corrupt(window_row(index), reason))?;
            let mut lanes = [0.0f32; SLICE_ROWS];
            for (lane, x) in lanes.iter_mut().enumerate() {
                let scale = slice.scale(lane, self.encoding);
                let norm = sqrt(sq[lane]) * scale;
                *x = if query_norm == 0.0 || norm == 0.0 {
                    0.0
                } else {
                    (dot[lane] * scale) / (query_norm * norm)
                };
            }
            if !Self::place(&slice.rows, slice.live, &lanes, out, &mut marks) {
                return Err(self.slice_error(index));
            }
        }
        if !Self::all_marked(&mut marks, out.len()) {
            return Err(self.slice_error(first));
        }
        Ok(())
    }

    /// The number of all-zero rows.
    pub fn empty_rows(&self) -> Result<u64> {
        let mut empty = 0u64;
        for index in 0..slice_count(self.rows) {
            let slice = self.slice(index)?;
            let live = (self.rows - index * SLICE_ROWS).min(SLICE_ROWS);
            empty += slice.lengths[..live].iter().filter(|&&n| n == 0).count() as u64;
        }
        Ok(empty)
    }

    /// Checks every slice completely (columns and values too) and returns the number of
    /// non-zeros; `finite(raw)` says whether a raw value is acceptable.
    pub fn verify(&self) -> Result<u64> {
        let mut nnz = 0u64;
        let mut marks = [0u8; SLICE_WINDOW_ROWS];
        let mut placed = [0.0f32; SLICE_WINDOW_ROWS];
        for window in 0..window_count(self.rows) {
            let window_rows = self.window_rows(window);
            let first = window * WINDOW_SLICES;
            for index in first..first + window_rows.div_ceil(SLICE_ROWS) {
                let slice = self.slice(index)?;
                let lanes = [0.0f32; SLICE_ROWS];
                let out = &mut placed[..window_rows];
                // In range: `slice` checked every live lane's row against the window.
                Self::place(&slice.rows, slice.live, &lanes, out, &mut marks);
                let mut finite = true;
                slice
                    .walk(self.dim, self.encoding, |_, _, v| finite &= v.is_finite())
                    .map_err(|reason| self.corrupt(window_row(index), reason))?;
                if !finite {
                    return Err(self.corrupt(window_row(index), "a stored value is not finite"));
                }
                nnz += slice.lengths.iter().map(|&n| u64::from(n)).sum::<u64>();
            }
            if !Self::all_marked(&mut marks, window_rows) {
                return Err(
                    self.corrupt(window_row(first), "two lanes of a window hold the same row")
                );
            }
        }
        Ok(nnz)
    }
}
