//! Element types and the conversion of raw tensor bytes to `f32` (with the finiteness checks) and
//! to integers (for sparse index arrays).
//!
//! Every decoder works on a chunk of bytes whose length is a multiple of the element size, so the
//! npy reader can stream a large file through it without holding the raw bytes and the converted
//! values at the same time.

use std::path::Path;

use crate::error::{ExportError, Result};

/// Byte order of multi-byte elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl ByteOrder {
    /// The byte order of the machine this runs on (for NumPy's `=`).
    pub(crate) const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };
}

/// The floating-point element types the exporter reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloatType {
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the top half of an f32).
    Bf16,
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
}

impl FloatType {
    /// Size of one element in bytes.
    pub(crate) const fn size(self) -> usize {
        match self {
            FloatType::F16 | FloatType::Bf16 => 2,
            FloatType::F32 => 4,
            FloatType::F64 => 8,
        }
    }
}

/// An integer element type (for sparse index arrays and shapes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IntType {
    /// Whether the type is signed.
    pub signed: bool,
    /// Size in bytes: 1, 2, 4 or 8.
    pub size: usize,
}

/// Where a tensor came from, to build errors that name it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin<'a> {
    /// The file.
    pub path: &'a Path,
    /// The tensor or npz member name.
    pub tensor: &'a str,
}

impl<'a> Origin<'a> {
    /// An origin for `tensor` in `path`.
    pub(crate) fn new(path: &'a Path, tensor: &'a str) -> Self {
        Origin { path, tensor }
    }

    /// A [`ExportError::Parse`] for this file whose message names the tensor.
    pub(crate) fn parse(&self, message: impl std::fmt::Display) -> ExportError {
        ExportError::parse(self.path, format!("tensor '{}': {message}", self.tensor))
    }

    /// A [`ExportError::Shape`] for this tensor.
    pub(crate) fn shape(&self, message: impl Into<String>) -> ExportError {
        ExportError::Shape {
            path: self.path.to_path_buf(),
            tensor: self.tensor.to_string(),
            message: message.into(),
        }
    }

    /// A [`ExportError::UnsupportedDtype`] for this tensor.
    pub(crate) fn unsupported(&self, dtype: impl Into<String>) -> ExportError {
        ExportError::UnsupportedDtype {
            path: self.path.to_path_buf(),
            tensor: self.tensor.to_string(),
            dtype: dtype.into(),
        }
    }

    /// A [`ExportError::BadValue`] at (`row`, `column`) of this tensor.
    pub(crate) fn bad_value(&self, (row, column): (u64, u64), message: String) -> ExportError {
        ExportError::BadValue {
            path: self.path.to_path_buf(),
            tensor: self.tensor.to_string(),
            row,
            column,
            message,
        }
    }
}

/// Maps the flat index of an element to its (row, column), for error messages only.
pub(crate) type Locate<'l> = &'l dyn Fn(usize) -> (u64, u64);

/// Position of a flat index in a row-major matrix with `cols` columns.
pub(crate) fn row_major(cols: usize) -> impl Fn(usize) -> (u64, u64) {
    move |i| match (i.checked_div(cols), i.checked_rem(cols)) {
        (Some(r), Some(c)) => (r as u64, c as u64),
        _ => (i as u64, 0),
    }
}

/// Position of a flat index in a column-major (Fortran order) matrix with `rows` rows.
pub(crate) fn column_major(rows: usize) -> impl Fn(usize) -> (u64, u64) {
    move |i| match (i.checked_rem(rows), i.checked_div(rows)) {
        (Some(r), Some(c)) => (r as u64, c as u64),
        _ => (0, i as u64),
    }
}

/// Decodes `bytes` (whole elements of `ty` in `order`) and appends them to `out` as `f32`.
///
/// `first` is the flat index of the first element of `bytes` within the tensor, and `locate`
/// turns a flat index into (row, column) for the error. Every value must be finite and, for f64,
/// within the range of f32; otherwise [`ExportError::BadValue`] names the first offending one.
pub(crate) fn decode_floats_into(
    out: &mut Vec<f32>,
    bytes: &[u8],
    ty: FloatType,
    order: ByteOrder,
    first: usize,
    origin: &Origin<'_>,
    locate: Locate<'_>,
) -> Result<()> {
    let size = ty.size();
    if !bytes.len().is_multiple_of(size) {
        return Err(origin.parse(format!(
            "data length {} is not a multiple of the element size {size}",
            bytes.len()
        )));
    }
    let start = out.len();
    out.reserve(bytes.len() / size);
    use ByteOrder::{Big, Little};
    match (ty, order) {
        (FloatType::F32, Little) => {
            out.extend(
                bytes
                    .as_chunks::<4>()
                    .0
                    .iter()
                    .map(|c| f32::from_le_bytes(*c)),
            );
        }
        (FloatType::F32, Big) => {
            out.extend(
                bytes
                    .as_chunks::<4>()
                    .0
                    .iter()
                    .map(|c| f32::from_be_bytes(*c)),
            );
        }
        (FloatType::F64, Little) => {
            out.extend(
                bytes
                    .as_chunks::<8>()
                    .0
                    .iter()
                    .map(|c| f64::from_le_bytes(*c) as f32),
            );
        }
        (FloatType::F64, Big) => {
            out.extend(
                bytes
                    .as_chunks::<8>()
                    .0
                    .iter()
                    .map(|c| f64::from_be_bytes(*c) as f32),
            );
        }
        (FloatType::F16, Little) => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| half::f16::from_le_bytes(*c).to_f32()),
        ),
        (FloatType::F16, Big) => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| half::f16::from_be_bytes(*c).to_f32()),
        ),
        (FloatType::Bf16, Little) => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| half::bf16::from_le_bytes(*c).to_f32()),
        ),
        (FloatType::Bf16, Big) => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| half::bf16::from_be_bytes(*c).to_f32()),
        ),
    }
    let converted = out.get(start..).unwrap_or_default();
    if let Some(pos) = converted.iter().position(|v| !v.is_finite()) {
        let message = match (ty, bytes.get(pos * size..)) {
            (FloatType::F64, Some(rest)) => {
                let raw = rest.as_chunks::<8>().0.first().copied().unwrap_or_default();
                let v = match order {
                    Little => f64::from_le_bytes(raw),
                    Big => f64::from_be_bytes(raw),
                };
                if v.is_finite() {
                    format!("value {v:e} does not fit in f32")
                } else {
                    not_finite(v)
                }
            }
            _ => not_finite(f64::from(converted.get(pos).copied().unwrap_or(f32::NAN))),
        };
        out.truncate(start);
        return Err(origin.bad_value(locate(first + pos), message));
    }
    Ok(())
}

/// The message for a NaN or infinite value.
pub(crate) fn not_finite(v: f64) -> String {
    if v.is_nan() {
        "value NaN is not finite".to_string()
    } else if v > 0.0 {
        "value inf is not finite".to_string()
    } else {
        "value -inf is not finite".to_string()
    }
}

/// Decodes `bytes` (whole elements of `ty` in `order`) and appends them to `out` as `i64`.
///
/// Returns the index (within `bytes`) of the first unsigned 64-bit value that does not fit in
/// `i64`, if any; `out` then holds the values before it.
pub(crate) fn decode_ints_into(
    out: &mut Vec<i64>,
    bytes: &[u8],
    ty: IntType,
    order: ByteOrder,
) -> Option<usize> {
    use ByteOrder::{Big, Little};
    out.reserve(bytes.len() / ty.size.max(1));
    match (ty.size, ty.signed, order) {
        (1, true, _) => out.extend(bytes.iter().map(|&b| i64::from(b as i8))),
        (1, false, _) => out.extend(bytes.iter().map(|&b| i64::from(b))),
        (2, true, Little) => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| i64::from(i16::from_le_bytes(*c))),
        ),
        (2, true, Big) => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| i64::from(i16::from_be_bytes(*c))),
        ),
        (2, false, Little) => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| i64::from(u16::from_le_bytes(*c))),
        ),
        (2, false, Big) => out.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| i64::from(u16::from_be_bytes(*c))),
        ),
        (4, true, Little) => out.extend(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|c| i64::from(i32::from_le_bytes(*c))),
        ),
        (4, true, Big) => out.extend(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|c| i64::from(i32::from_be_bytes(*c))),
        ),
        (4, false, Little) => out.extend(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|c| i64::from(u32::from_le_bytes(*c))),
        ),
        (4, false, Big) => out.extend(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|c| i64::from(u32::from_be_bytes(*c))),
        ),
        (8, true, Little) => {
            out.extend(
                bytes
                    .as_chunks::<8>()
                    .0
                    .iter()
                    .map(|c| i64::from_le_bytes(*c)),
            );
        }
        (8, true, Big) => {
            out.extend(
                bytes
                    .as_chunks::<8>()
                    .0
                    .iter()
                    .map(|c| i64::from_be_bytes(*c)),
            );
        }
        (8, false, _) => {
            for (i, c) in bytes.as_chunks::<8>().0.iter().enumerate() {
                let v = match order {
                    Little => u64::from_le_bytes(*c),
                    Big => u64::from_be_bytes(*c),
                };
                match i64::try_from(v) {
                    Ok(v) => out.push(v),
                    Err(_) => return Some(i),
                }
            }
        }
        // Callers only build `IntType`s of sizes 1, 2, 4 and 8.
        _ => return Some(0),
    }
    None
}

/// Formats a shape the way NumPy prints it: `(5, 4)`, `(5,)`, `()`.
pub(crate) fn shape_str(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(ToString::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Number of elements of `shape`, or `None` if it overflows `usize`.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Transposes a column-major `rows` x `cols` matrix into row-major order.
///
/// `src.len()` must be `rows * cols` (checked by the callers; a mismatch yields what fits).
pub(crate) fn fortran_to_row_major(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 64;
    let mut out = vec![0f32; src.len()];
    if rows.checked_mul(cols) != Some(src.len()) {
        return out;
    }
    // Blocked so that both the reads and the writes stay within a few cache lines.
    for r0 in (0..rows).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(rows);
        for c0 in (0..cols).step_by(BLOCK) {
            let c1 = (c0 + BLOCK).min(cols);
            for c in c0..c1 {
                let column = &src[c * rows..(c + 1) * rows];
                for r in r0..r1 {
                    out[r * cols + c] = column[r];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin<'static> {
        Origin::new(Path::new("t.npy"), "t")
    }

    #[test]
    fn f64_out_of_range_is_reported_with_position() {
        let mut bytes = Vec::new();
        for v in [1.0f64, 2.0, 1e300, 4.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let mut out = Vec::new();
        let err = decode_floats_into(
            &mut out,
            &bytes,
            FloatType::F64,
            ByteOrder::Little,
            0,
            &origin(),
            &row_major(2),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("row 1, column 0"), "{text}");
        assert!(text.contains("does not fit in f32"), "{text}");
        assert!(out.is_empty());
    }

    #[test]
    fn transpose_blocks() {
        let (rows, cols) = (130, 67);
        let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let out = fortran_to_row_major(&src, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(out[r * cols + c], src[c * rows + r]);
            }
        }
    }

    #[test]
    fn u64_too_large() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&5u64.to_le_bytes());
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut out = Vec::new();
        let ty = IntType {
            signed: false,
            size: 8,
        };
        assert_eq!(
            decode_ints_into(&mut out, &bytes, ty, ByteOrder::Little),
            Some(1)
        );
        assert_eq!(out, vec![5]);
    }

    #[test]
    fn shapes_print_like_numpy() {
        assert_eq!(shape_str(&[]), "()");
        assert_eq!(shape_str(&[3]), "(3,)");
        assert_eq!(shape_str(&[3, 4]), "(3, 4)");
    }
}
