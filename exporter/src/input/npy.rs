//! NumPy `.npy` arrays: reading (header versions 1.0, 2.0 and 3.0) as a stream, so that a large
//! file is converted chunk by chunk, and writing little-endian f32 files.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::convert::{
    ByteOrder, Origin, column_major, decode_floats_into, decode_ints_into, element_count,
    fortran_to_row_major, row_major, shape_str,
};
use super::npy_header::{NpyHeader, NpyKind, parse_header};
use super::{DenseMatrix, MAX_COLUMNS};
use crate::error::{ExportError, Result};

/// The first six bytes of every `.npy` file.
pub(crate) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Longest header accepted (NumPy itself refuses more than 10,000 bytes unless told otherwise).
const MAX_HEADER_LEN: usize = 1 << 20;

/// Size of the chunks the data is read and converted in.
const CHUNK: usize = 1 << 20;

/// An npy array whose header has been read and whose data comes next from `reader`.
pub(crate) struct NpyStream<R: Read> {
    /// The parsed header.
    pub header: NpyHeader,
    reader: R,
    path: PathBuf,
    tensor: String,
}

impl<R: Read> NpyStream<R> {
    /// Reads the magic string, version and header from `reader`, which holds `available` bytes in
    /// all (the file or archive member size). Fails if the data the header claims is longer than
    /// what is left, before anything is allocated for it.
    pub(crate) fn open(mut reader: R, available: u64, path: &Path, tensor: &str) -> Result<Self> {
        let origin = Origin::new(path, tensor);
        let mut prelude = [0u8; 8];
        read_exact(&mut reader, &mut prelude, &origin, "the npy header")?;
        if !prelude.starts_with(MAGIC) {
            return Err(origin.parse("not an npy array (no \\x93NUMPY magic string)"));
        }
        let (major, minor) = (prelude[6], prelude[7]);
        let (len_bytes, utf8) = match (major, minor) {
            (1, 0) => (2usize, false),
            (2, 0) => (4, false),
            (3, 0) => (4, true),
            _ => {
                return Err(origin.parse(format!(
                    "npy format version {major}.{minor} is not supported (only 1.0, 2.0, 3.0)"
                )));
            }
        };
        let mut len_buf = [0u8; 4];
        let len_slice = len_buf.get_mut(..len_bytes).unwrap_or_default();
        read_exact(&mut reader, len_slice, &origin, "the npy header")?;
        let header_len = u32::from_le_bytes(len_buf) as usize;
        if header_len > MAX_HEADER_LEN {
            return Err(origin.parse(format!(
                "npy header length {header_len} is larger than the {MAX_HEADER_LEN} bytes allowed"
            )));
        }
        let prelude_len = (8 + len_bytes + header_len) as u64;
        if prelude_len > available {
            return Err(origin.parse(format!(
                "truncated: the npy header claims {header_len} bytes but the file is only \
                 {available} bytes long"
            )));
        }
        let mut text = vec![0u8; header_len];
        read_exact(&mut reader, &mut text, &origin, "the npy header")?;
        let text = if utf8 {
            String::from_utf8(text).map_err(|_| origin.parse("npy header is not valid UTF-8"))?
        } else {
            // Versions 1.0 and 2.0 are latin-1.
            text.iter().map(|&b| char::from(b)).collect()
        };
        let header =
            parse_header(&text).map_err(|m| origin.parse(format!("bad npy header: {m}")))?;
        let left = available - prelude_len;
        if (header.data_len as u64) > left {
            return Err(origin.parse(format!(
                "truncated: shape {} of {} needs {} bytes of data but only {left} follow the header",
                shape_str(&header.shape),
                header.descr.text,
                header.data_len
            )));
        }
        Ok(NpyStream {
            header,
            reader,
            path: path.to_path_buf(),
            tensor: tensor.to_string(),
        })
    }

    /// Where this array came from, for errors.
    pub(crate) fn origin(&self) -> Origin<'_> {
        Origin::new(&self.path, &self.tensor)
    }

    /// Reads the data in chunks of whole elements; `sink` gets each chunk and the flat index of
    /// its first element.
    fn read_data(&mut self, mut sink: impl FnMut(&[u8], usize) -> Result<()>) -> Result<()> {
        let itemsize = self.header.descr.itemsize;
        let total = self.header.data_len;
        if total == 0 || itemsize == 0 {
            return Ok(());
        }
        let chunk = (CHUNK / itemsize)
            .max(1)
            .saturating_mul(itemsize)
            .min(total);
        let mut buf = vec![0u8; chunk];
        let mut done = 0usize;
        let origin = Origin::new(&self.path, &self.tensor);
        while done < total {
            let n = chunk.min(total - done);
            let part = buf.get_mut(..n).unwrap_or_default();
            read_exact(&mut self.reader, part, &origin, "the array data")?;
            sink(part, done / itemsize)?;
            done += n;
        }
        Ok(())
    }

    /// Reads what is left after the data (at most 64 KiB), so that an archive member's checksum
    /// gets verified by the zip reader.
    pub(crate) fn drain(&mut self) -> Result<()> {
        let origin = Origin::new(&self.path, &self.tensor);
        let mut rest = Vec::new();
        (&mut self.reader)
            .take(64 * 1024)
            .read_to_end(&mut rest)
            .map_err(|e| read_error(e, &origin, "the array data"))?;
        Ok(())
    }

    /// An empty vector with room for every element, or an error if that much memory cannot be
    /// had (the size was already checked against the data there is; this is a second guard).
    fn allocate<T>(&self) -> Result<Vec<T>> {
        let mut out = Vec::new();
        out.try_reserve_exact(self.header.count).map_err(|_| {
            self.origin().shape(format!(
                "cannot allocate memory for shape {}",
                shape_str(&self.header.shape)
            ))
        })?;
        Ok(out)
    }

    /// Reads all elements as `f32`, in file order; `locate` maps a flat index to (row, column)
    /// for the error about a non-finite value.
    pub(crate) fn floats(&mut self, locate: &dyn Fn(usize) -> (u64, u64)) -> Result<Vec<f32>> {
        let NpyKind::Float(ty, order) = self.header.descr.kind else {
            return Err(self
                .origin()
                .unsupported(self.header.descr.unsupported_text()));
        };
        let mut out = self.allocate::<f32>()?;
        let path = self.path.clone();
        let tensor = self.tensor.clone();
        let origin = Origin::new(&path, &tensor);
        self.read_data(|bytes, first| {
            decode_floats_into(&mut out, bytes, ty, order, first, &origin, locate)
        })?;
        Ok(out)
    }

    /// Reads all elements as `i64` (for index arrays).
    pub(crate) fn ints(&mut self) -> Result<Vec<i64>> {
        let NpyKind::Int(ty, order) = self.header.descr.kind else {
            return Err(self.origin().parse(format!(
                "has dtype {}, expected an integer type",
                self.header.descr.text
            )));
        };
        let mut out = self.allocate::<i64>()?;
        let path = self.path.clone();
        let tensor = self.tensor.clone();
        let origin = Origin::new(&path, &tensor);
        self.read_data(
            |bytes, first| match decode_ints_into(&mut out, bytes, ty, order) {
                None => Ok(()),
                Some(i) => {
                    Err(origin.parse(format!("element {} is larger than {}", first + i, i64::MAX)))
                }
            },
        )?;
        Ok(out)
    }

    /// Reads a short text value: a 0-d or one-element array of bytes (`S`) or unicode (`U`).
    pub(crate) fn short_text(&mut self) -> Result<String> {
        const MAX: usize = 1024;
        let kind = self.header.descr.kind;
        if !matches!(kind, NpyKind::Bytes | NpyKind::Unicode(_)) {
            return Err(self.origin().parse(format!(
                "has dtype {}, expected a string",
                self.header.descr.text
            )));
        }
        if self.header.count != 1 || self.header.data_len > MAX {
            return Err(self.origin().parse(format!(
                "expected one short string, found shape {} of {}",
                shape_str(&self.header.shape),
                self.header.descr.text
            )));
        }
        let mut raw = Vec::new();
        self.read_data(|bytes, _| {
            raw.extend_from_slice(bytes);
            Ok(())
        })?;
        let text = match kind {
            NpyKind::Unicode(order) => raw
                .as_chunks::<4>()
                .0
                .iter()
                .map(|c| match order {
                    ByteOrder::Little => u32::from_le_bytes(*c),
                    ByteOrder::Big => u32::from_be_bytes(*c),
                })
                .take_while(|&u| u != 0)
                .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
            _ => raw
                .iter()
                .take_while(|&&b| b != 0)
                .map(|&b| char::from(b))
                .collect(),
        };
        Ok(text)
    }

    /// Fails unless the element type is one that converts to f32 (checked before the shape, as
    /// the more fundamental problem).
    fn check_float(&self) -> Result<()> {
        match self.header.descr.kind {
            NpyKind::Float(..) => Ok(()),
            _ => Err(self
                .origin()
                .unsupported(self.header.descr.unsupported_text())),
        }
    }

    /// Reads the array as a 2-D table (C or Fortran order) into a row-major matrix.
    pub(crate) fn dense(&mut self) -> Result<DenseMatrix> {
        self.check_float()?;
        let (rows, cols) = table_shape(&self.origin(), &self.header.shape)?;
        if self.header.fortran_order {
            let flat = self.floats(&column_major(rows))?;
            let data = fortran_to_row_major(&flat, rows, cols);
            Ok(DenseMatrix { rows, cols, data })
        } else {
            let data = self.floats(&row_major(cols))?;
            Ok(DenseMatrix { rows, cols, data })
        }
    }

    /// Reads the array as a vector: shape `(n,)`, `(n, 1)` or `(1, n)` (order does not matter).
    pub(crate) fn vector(&mut self) -> Result<Vec<f32>> {
        self.check_float()?;
        let cols = vector_columns(&self.origin(), &self.header.shape)?;
        self.floats(&row_major(cols))
    }
}

/// Checks that `shape` is a 2-D table with at least one column; returns (rows, columns).
pub(crate) fn table_shape(origin: &Origin<'_>, shape: &[usize]) -> Result<(usize, usize)> {
    match *shape {
        [_, 0] => Err(origin.shape(format!(
            "shape {} has 0 columns; a table needs at least one",
            shape_str(shape)
        ))),
        [_, cols] if cols > MAX_COLUMNS => Err(origin.shape(format!(
            "shape {} has more than {MAX_COLUMNS} columns",
            shape_str(shape)
        ))),
        [rows, cols] => Ok((rows, cols)),
        _ => Err(origin.shape(format!(
            "found shape {} ({}-D), expected a 2-D table (rows, columns)",
            shape_str(shape),
            shape.len()
        ))),
    }
}

/// Checks that `shape` is a vector: `(n,)`, `(n, 1)` or `(1, n)`. Returns the number of columns
/// used to locate elements in errors (1 for `(n,)` and `(n, 1)`, n for `(1, n)`).
pub(crate) fn vector_columns(origin: &Origin<'_>, shape: &[usize]) -> Result<usize> {
    match *shape {
        [_] | [_, 1] => Ok(1),
        [1, n] => Ok(n),
        _ => Err(origin.shape(format!(
            "found shape {}, expected a vector: (n,), (n, 1) or (1, n)",
            shape_str(shape)
        ))),
    }
}

/// `read_exact` with npy-flavoured errors: a short read means the file is truncated.
fn read_exact(
    reader: &mut impl Read,
    buf: &mut [u8],
    origin: &Origin<'_>,
    what: &str,
) -> Result<()> {
    reader
        .read_exact(buf)
        .map_err(|e| read_error(e, origin, what))
}

/// Maps an I/O error while reading `what` to a Parse error (truncated or corrupt) or an Io error.
fn read_error(e: std::io::Error, origin: &Origin<'_>, what: &str) -> ExportError {
    match e.kind() {
        ErrorKind::UnexpectedEof => origin.parse(format!("truncated: the file ends inside {what}")),
        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::Unsupported => {
            origin.parse(format!("corrupt data in {what}: {e}"))
        }
        _ => ExportError::io(origin.path, e),
    }
}

/// The name an `.npy` file's only array goes by in messages: the file stem.
pub(crate) fn npy_tensor_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "array".to_string())
}

/// Opens an `.npy` file as a stream.
pub(crate) fn open_file(path: &Path) -> Result<NpyStream<BufReader<File>>> {
    let file = File::open(path).map_err(|e| ExportError::io(path, e))?;
    let len = file.metadata().map_err(|e| ExportError::io(path, e))?.len();
    let reader = BufReader::with_capacity(64 * 1024, file);
    NpyStream::open(reader, len, path, &npy_tensor_name(path))
}

/// Writes a little-endian f32 `.npy` (format version 1.0, C order).
pub(crate) fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let origin_name = npy_tensor_name(path);
    let origin = Origin::new(path, &origin_name);
    if element_count(shape) != Some(data.len()) {
        return Err(origin.shape(format!(
            "shape {} does not match the {} values given",
            shape_str(shape),
            data.len()
        )));
    }
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}",
        shape_str(shape)
    );
    // Pad with spaces so that the data starts at a multiple of 64 bytes; end with a newline.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    header.extend(std::iter::repeat_n(' ', padding));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| {
        origin.shape(format!(
            "shape {} is too long for an npy header",
            shape_str(shape)
        ))
    })?;

    let file = File::create(path).map_err(|e| ExportError::io(path, e))?;
    let mut w = BufWriter::with_capacity(CHUNK, file);
    let io = |e| ExportError::io(path, e);
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&[1, 0]).map_err(io)?;
    w.write_all(&header_len.to_le_bytes()).map_err(io)?;
    w.write_all(header.as_bytes()).map_err(io)?;
    let mut buf = Vec::with_capacity(CHUNK);
    for chunk in data.chunks(CHUNK / 4) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        w.write_all(&buf).map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(())
}
