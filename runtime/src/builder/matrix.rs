//! [`SparseMatrix`]: a table's rows in CSR form, f32, as the builder takes them.

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::format::MAX_DIM;

/// A sparse f32 matrix in CSR form: the input of [`super::TableSpec`].
///
/// Invariants (checked by every constructor): column indices in each row are strictly
/// increasing and below `dim`, values are finite and non-zero (zeros are dropped on input).
///
/// ```
/// use pocketrec::builder::SparseMatrix;
/// # fn main() -> Result<(), pocketrec::Error> {
/// let dense = [0.0, 1.5, 0.0, -2.0,
///              0.0, 0.0, 0.0,  0.0];
/// let m = SparseMatrix::from_dense(2, 4, &dense)?;
/// assert_eq!((m.rows(), m.dim(), m.nnz()), (2, 4, 2));
/// assert_eq!(m.row(0), (&[1u32, 3][..], &[1.5f32, -2.0][..]));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseMatrix {
    dim: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

fn invalid(row: usize, column: Option<usize>, reason: &'static str) -> Error {
    Error::InvalidInput {
        role: None,
        row: Some(row as u64),
        column: column.map(|c| c as u64),
        reason,
    }
}

impl SparseMatrix {
    /// An empty matrix (no rows) of width `dim`.
    pub fn new(dim: usize) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM as usize {
            return Err(Error::InvalidInput {
                role: None,
                row: None,
                column: None,
                reason: "dimension must be between 1 and 65536",
            });
        }
        Ok(SparseMatrix {
            dim,
            indptr: alloc::vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        })
    }

    /// Appends a row given as `(column, value)` pairs in strictly increasing column order.
    /// Zero values are dropped; NaN or infinite values are refused.
    pub fn push_row(&mut self, entries: impl IntoIterator<Item = (u32, f32)>) -> Result<()> {
        let row = self.rows();
        let start = self.indices.len();
        let mut next_allowed = 0usize;
        for (column, value) in entries {
            let c = column as usize;
            let problem = if c >= self.dim {
                Some("column index is not below the dimension")
            } else if c < next_allowed {
                Some("column indices are not strictly increasing")
            } else if !value.is_finite() {
                Some("value is not finite")
            } else {
                None
            };
            if let Some(reason) = problem {
                self.indices.truncate(start);
                self.values.truncate(start);
                return Err(invalid(row, Some(c), reason));
            }
            next_allowed = c + 1;
            if value != 0.0 {
                self.indices.push(column);
                self.values.push(value);
            }
        }
        self.indptr.push(self.indices.len());
        Ok(())
    }

    /// The non-zeros of a row-major dense `rows x dim` matrix.
    pub fn from_dense(rows: usize, dim: usize, data: &[f32]) -> Result<Self> {
        let mut m = SparseMatrix::new(dim)?;
        if rows.checked_mul(dim) != Some(data.len()) {
            return Err(Error::InvalidInput {
                role: None,
                row: None,
                column: None,
                reason: "dense data length is not rows x dim",
            });
        }
        for r in 0..rows {
            let row = &data[r * dim..(r + 1) * dim];
            m.push_row(row.iter().enumerate().map(|(c, &v)| (c as u32, v)))?;
        }
        Ok(m)
    }

    /// A matrix from CSR arrays (`indptr.len() == rows + 1`), checked.
    pub fn from_csr(dim: usize, indptr: &[u64], indices: &[u32], values: &[f32]) -> Result<Self> {
        let mut m = SparseMatrix::new(dim)?;
        let bad = |reason| Error::InvalidInput {
            role: None,
            row: None,
            column: None,
            reason,
        };
        if indices.len() != values.len() {
            return Err(bad("indices and values differ in length"));
        }
        if indptr.first() != Some(&0) || indptr.last() != Some(&(indices.len() as u64)) {
            return Err(bad(
                "indptr must start at 0 and end at the number of entries",
            ));
        }
        for (r, w) in indptr.windows(2).enumerate() {
            let (start, end) = (w[0] as usize, w[1] as usize);
            if start > end || end > indices.len() {
                return Err(invalid(r, None, "indptr is not non-decreasing"));
            }
            m.push_row(
                indices[start..end]
                    .iter()
                    .copied()
                    .zip(values[start..end].iter().copied()),
            )?;
        }
        Ok(m)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Width of each row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of stored non-zeros.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Row `r`'s column indices and values. Panics if `r >= rows()`.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (start, end) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[start..end], &self.values[start..end])
    }

    /// Row `r` as a dense vector. Panics if `r >= rows()`.
    pub fn dense_row(&self, r: usize) -> Vec<f32> {
        let mut out = alloc::vec![0.0; self.dim];
        let (cols, vals) = self.row(r);
        for (&c, &v) in cols.iter().zip(vals) {
            out[c as usize] = v;
        }
        out
    }
}
