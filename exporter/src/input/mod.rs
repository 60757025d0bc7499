//! Readers for trained tables: NumPy `.npy`/`.npz`, scipy sparse `.npz`, safetensors, and plain
//! text vectors.
//!
//! The format of a file is detected from its first bytes, never from its extension:
//!
//! | format | recognised by |
//! | --- | --- |
//! | `.npy` | the magic string `\x93NUMPY` |
//! | `.npz` (`np.savez`, `np.savez_compressed`, `scipy.sparse.save_npz`) | a zip header `PK\x03\x04` (or `PK\x05\x06` for an empty archive) |
//! | safetensors | a little-endian u64 header length that fits the file, followed by `{` |
//! | text (vectors only) | anything else that is UTF-8 |
//!
//! Values are converted to `f32` from f32, f64, f16 and bf16 (big-endian `.npy` too); every value
//! must be finite and, for f64, within f32's range. Nothing a file says is trusted before it is
//! checked against the file's real size, so a crafted file yields an error, never a panic or a
//! huge allocation.
//!
//! ```no_run
//! use pocketrec_export::input::{Matrix, read_table, read_vector};
//! use std::path::Path;
//!
//! let users = read_table(Path::new("model.safetensors"), Some("user_embedding"))?;
//! let items = read_table(Path::new("items.npz"), None)?; // scipy CSR or a single array
//! let bias = read_vector(Path::new("item_bias.txt"), None)?;
//! if let Matrix::Csr(m) = &items.matrix {
//!     println!("{} rows, {} stored values", m.rows, m.values.len());
//! }
//! # Ok::<(), pocketrec_export::ExportError>(())
//! ```

mod convert;
mod npy;
mod npy_header;
mod npz;
mod safetensors;
mod sparse;
mod text;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{ExportError, Result};

use self::npz::Npz;
use self::safetensors::SafetensorsFile;

/// Most columns a table may have (column indices are stored as `u32`).
pub const MAX_COLUMNS: usize = u32::MAX as usize;

/// Most rows a scipy CSC or COO matrix may claim. Their row count comes from `shape` alone, so it
/// is bounded before row pointers are allocated; CSR and dense row counts are bounded by the data.
pub const MAX_SPARSE_ROWS: usize = u32::MAX as usize;

/// Row-major dense f32 matrix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DenseMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

impl DenseMatrix {
    /// Row `r`, or `None` past the end.
    pub fn row(&self, r: usize) -> Option<&[f32]> {
        let start = r.checked_mul(self.cols)?;
        self.data.get(start..start.checked_add(self.cols)?)
    }
}

/// CSR f32 matrix: per row, column indices strictly increasing (sorted; duplicates summed, as
/// scipy does), `indptr.len() == rows + 1`, `indptr[0] == 0`,
/// `indptr[rows] == indices.len() == values.len()`. Explicit zeros may remain (the writer drops
/// them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsrMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row `r` holds entries `indptr[r]..indptr[r + 1]`.
    pub indptr: Vec<u64>,
    /// Column of each stored entry.
    pub indices: Vec<u32>,
    /// Value of each stored entry.
    pub values: Vec<f32>,
}

impl CsrMatrix {
    /// The column indices and values stored in row `r`, or `None` past the end.
    pub fn row(&self, r: usize) -> Option<(&[u32], &[f32])> {
        let start = usize::try_from(*self.indptr.get(r)?).ok()?;
        let end = usize::try_from(*self.indptr.get(r.checked_add(1)?)?).ok()?;
        Some((self.indices.get(start..end)?, self.values.get(start..end)?))
    }

    /// The matrix as a dense row-major one (absent entries are 0). For tests and small tables.
    pub fn to_dense(&self) -> DenseMatrix {
        let mut data = vec![0f32; self.rows.saturating_mul(self.cols)];
        for r in 0..self.rows {
            let Some((cols, vals)) = self.row(r) else {
                break;
            };
            for (&c, &v) in cols.iter().zip(vals) {
                if let Some(slot) = data.get_mut(r * self.cols + c as usize) {
                    *slot = v;
                }
            }
        }
        DenseMatrix {
            rows: self.rows,
            cols: self.cols,
            data,
        }
    }
}

/// A table, dense or sparse.
#[derive(Clone, Debug, PartialEq)]
pub enum Matrix {
    /// Every value stored.
    Dense(DenseMatrix),
    /// Only the stored (usually nonzero) values.
    Csr(CsrMatrix),
}

impl Matrix {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Dense(m) => m.rows,
            Matrix::Csr(m) => m.rows,
        }
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Dense(m) => m.cols,
            Matrix::Csr(m) => m.cols,
        }
    }
}

/// A 2-D table read from a file, with where it came from (for messages and provenance).
#[derive(Clone, Debug, PartialEq)]
pub struct Table2d {
    /// The file it was read from.
    pub path: PathBuf,
    /// The tensor: the npz member (without `.npy`) or safetensors name; for a `.npy` file its
    /// stem; for a scipy sparse archive `scipy csr`, `scipy csc` or `scipy coo`.
    pub tensor: String,
    /// The values.
    pub matrix: Matrix,
}

/// A file format, as detected from a file's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A NumPy `.npy` array.
    Npy,
    /// A zip archive, read as a NumPy `.npz`.
    Npz,
    /// A safetensors file.
    Safetensors,
    /// None of the above (read as text by [`read_vector`]).
    Other,
}

/// Detects the format of `path` from its first bytes (see the module docs).
pub fn detect_format(path: &Path) -> Result<Format> {
    let mut file = File::open(path).map_err(|e| ExportError::io(path, e))?;
    let len = file.metadata().map_err(|e| ExportError::io(path, e))?.len();
    let mut head = Vec::with_capacity(9);
    file.by_ref()
        .take(9)
        .read_to_end(&mut head)
        .map_err(|e| ExportError::io(path, e))?;
    Ok(format_of(&head, len))
}

/// The format of a file of `len` bytes that starts with `head` (at least its first 9 bytes).
fn format_of(head: &[u8], len: u64) -> Format {
    if head.starts_with(npy::MAGIC) {
        Format::Npy
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Format::Npz
    } else if let (Some(n), Some(b'{')) = (head.first_chunk::<8>(), head.get(8)) {
        let n = u64::from_le_bytes(*n);
        if n >= 2 && n.checked_add(8).is_some_and(|end| end <= len) {
            Format::Safetensors
        } else {
            Format::Other
        }
    } else {
        Format::Other
    }
}

/// The error for a file that is none of the table formats.
fn not_a_table_file(path: &Path) -> ExportError {
    ExportError::parse(
        path,
        "not a .npy, .npz or .safetensors file (recognised by content: \\x93NUMPY, PK\\x03\\x04, \
         or a safetensors header)",
    )
}

/// The error for a file holding several tensors when none was named.
fn ambiguous(path: &Path, names: &[String]) -> ExportError {
    ExportError::Usage(format!(
        "{}: the file holds {} tensors ({}); name the one to read",
        path.display(),
        names.len(),
        names.join(", ")
    ))
}

/// The error for a file holding no tensor at all.
fn empty_file(path: &Path) -> ExportError {
    ExportError::parse(path, "the file holds no tensors")
}

/// The only name in `names`, or the error saying there are none or several.
fn only_name(path: &Path, names: &[String]) -> Result<String> {
    match names {
        [one] => Ok(one.clone()),
        [] => Err(empty_file(path)),
        _ => Err(ambiguous(path, names)),
    }
}

/// Checks a tensor name given for a `.npy` file: it holds one array, named after the file stem.
fn check_npy_name(path: &Path, tensor: Option<&str>) -> Result<String> {
    let stem = npy::npy_tensor_name(path);
    match tensor {
        Some(t) if t != stem && t.strip_suffix(".npy") != Some(stem.as_str()) => {
            Err(ExportError::MissingTensor {
                path: path.to_path_buf(),
                tensor: t.to_string(),
                available: format!("{stem} (a .npy file holds one array, named after the file)"),
            })
        }
        _ => Ok(stem),
    }
}

/// Reads a 2-D table. Format detected from content (npy magic `\x93NUMPY`, zip `PK\x03\x04`,
/// safetensors = u64 LE header length + JSON starting with `{`), not from the extension.
///
/// `tensor`: npz member name (with or without `.npy`) or safetensors tensor name. With `None`:
/// npy -> its array; npz -> a scipy sparse matrix if the archive is one (members indptr, indices,
/// data, shape, format), else its only array; safetensors -> its only tensor; otherwise a
/// [`ExportError::Usage`] listing the names available. A name that is not there gives
/// [`ExportError::MissingTensor`] listing the names there are.
///
/// Dense tables may have 0 rows but not 0 columns. scipy CSR, CSC and COO matrices come back as
/// canonical [`CsrMatrix`]; other scipy formats are rejected.
pub fn read_table(path: &Path, tensor: Option<&str>) -> Result<Table2d> {
    let table = |tensor: String, matrix: Matrix| Table2d {
        path: path.to_path_buf(),
        tensor,
        matrix,
    };
    match detect_format(path)? {
        Format::Npy => {
            let name = check_npy_name(path, tensor)?;
            let m = npy::open_file(path)?.dense()?;
            Ok(table(name, Matrix::Dense(m)))
        }
        Format::Npz => {
            let mut npz = Npz::open(path)?;
            let name = match tensor {
                Some(t) => npz.resolve(t)?,
                None if sparse::is_scipy_sparse(&npz) => {
                    let (format, m) = sparse::read_scipy(&mut npz)?;
                    return Ok(table(sparse::table_name(&format), Matrix::Csr(m)));
                }
                None => only_name(path, &npz.names())?,
            };
            let m = npz.with_member(&name, |s| s.dense())?;
            Ok(table(name, Matrix::Dense(m)))
        }
        Format::Safetensors => {
            let st = SafetensorsFile::open(path)?;
            let name = match tensor {
                Some(t) => st.resolve(t)?,
                None => only_name(path, st.names())?,
            };
            let m = st.dense(&name)?;
            Ok(table(name, Matrix::Dense(m)))
        }
        Format::Other => Err(not_a_table_file(path)),
    }
}

/// Reads a 1-D vector of f32 (biases): .npy 1-D or (n,1)/(1,n); npz member; safetensors tensor;
/// or a text file with one float per line (blank lines and lines starting with '#' skipped).
///
/// `tensor` picks the npz member or safetensors tensor as in [`read_table`]; a text file has no
/// tensor names. Values must be finite and fit in f32.
pub fn read_vector(path: &Path, tensor: Option<&str>) -> Result<Vec<f32>> {
    match detect_format(path)? {
        Format::Npy => {
            check_npy_name(path, tensor)?;
            npy::open_file(path)?.vector()
        }
        Format::Npz => {
            let mut npz = Npz::open(path)?;
            let name = match tensor {
                Some(t) => npz.resolve(t)?,
                None if sparse::is_scipy_sparse(&npz) => {
                    return Err(ExportError::parse(
                        path,
                        "holds a scipy sparse matrix, not a vector (save biases with np.save)",
                    ));
                }
                None => only_name(path, &npz.names())?,
            };
            npz.with_member(&name, |s| s.vector())
        }
        Format::Safetensors => {
            let st = SafetensorsFile::open(path)?;
            let name = match tensor {
                Some(t) => st.resolve(t)?,
                None => only_name(path, st.names())?,
            };
            st.vector(&name)
        }
        Format::Other => {
            if let Some(t) = tensor {
                return Err(ExportError::MissingTensor {
                    path: path.to_path_buf(),
                    tensor: t.to_string(),
                    available: "none: a text file holds one unnamed vector".to_string(),
                });
            }
            let bytes = std::fs::read(path).map_err(|e| ExportError::io(path, e))?;
            text::parse_vector(path, &bytes)
        }
    }
}

/// The tensor / member names a file holds (for messages and `--help` hints): npz members without
/// `.npy` in archive order, safetensors names in data order, and for a `.npy` file its stem.
/// A file in none of these formats is a Parse error.
pub fn tensor_names(path: &Path) -> Result<Vec<String>> {
    match detect_format(path)? {
        Format::Npy => {
            npy::open_file(path)?; // the header must be valid
            Ok(vec![npy::npy_tensor_name(path)])
        }
        Format::Npz => Ok(Npz::open(path)?.names()),
        Format::Safetensors => Ok(SafetensorsFile::open(path)?.names().to_vec()),
        Format::Other => Err(not_a_table_file(path)),
    }
}

/// Writes a little-endian f32 `.npy` (v1.0 header, C order). Used by tests, the demo and the
/// trainer. `shape` must hold exactly `data.len()` elements (a Shape error otherwise).
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    npy::write_f32(path, shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_content() {
        assert_eq!(format_of(b"\x93NUMPY\x01\x00", 100), Format::Npy);
        assert_eq!(format_of(b"PK\x03\x04\x14\x00", 100), Format::Npz);
        assert_eq!(format_of(b"PK\x05\x06\x00\x00", 22), Format::Npz);
        let mut st = 2u64.to_le_bytes().to_vec();
        st.push(b'{');
        assert_eq!(format_of(&st, 10), Format::Safetensors);
        assert_eq!(format_of(&st, 9), Format::Other, "header longer than file");
        assert_eq!(format_of(b"0.5\n0.25\n", 9), Format::Other);
        assert_eq!(format_of(b"", 0), Format::Other);
    }

    #[test]
    fn csr_helpers() {
        let m = CsrMatrix {
            rows: 2,
            cols: 3,
            indptr: vec![0, 1, 3],
            indices: vec![2, 0, 1],
            values: vec![1.0, 2.0, 3.0],
        };
        assert_eq!(m.row(1), Some((&[0u32, 1][..], &[2.0f32, 3.0][..])));
        assert_eq!(m.row(2), None);
        assert_eq!(m.to_dense().data, vec![0.0, 0.0, 1.0, 2.0, 3.0, 0.0]);
        assert_eq!(m.to_dense().row(1), Some(&[2.0f32, 3.0, 0.0][..]));
    }
}
