//! safetensors files (Hugging Face): parsed with the `safetensors` crate after a cheap check of
//! the header's data offsets, then converted from F32, F64, F16 or BF16.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use super::DenseMatrix;
use super::convert::{ByteOrder, FloatType, Origin, decode_floats_into, row_major};
use super::npy::{table_shape, vector_columns};
use crate::error::{ExportError, Result};

/// A safetensors file read into memory, with its tensor names in file order.
pub(crate) struct SafetensorsFile {
    path: PathBuf,
    bytes: Vec<u8>,
    names: Vec<String>,
}

impl SafetensorsFile {
    /// Reads and validates `path`.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ExportError::io(path, e))?;
        precheck_offsets(path, &bytes)?;
        let (_, metadata) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| ExportError::parse(path, format!("not a valid safetensors file: {e}")))?;
        let names = metadata.offset_keys();
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            bytes,
            names,
        })
    }

    /// The tensor names in the order their data appears in the file.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The tensor called `name`, or a MissingTensor error listing the names there are.
    pub(crate) fn resolve(&self, name: &str) -> Result<String> {
        if self.names.iter().any(|n| n == name) {
            Ok(name.to_string())
        } else {
            Err(ExportError::MissingTensor {
                path: self.path.clone(),
                tensor: name.to_string(),
                available: self.names.join(", "),
            })
        }
    }

    /// The shape of tensor `name` and its values as f32 (row-major), after the dtype check;
    /// `cols_for` picks the number of columns used to locate a bad value from the shape.
    fn floats(
        &self,
        name: &str,
        cols_for: impl FnOnce(&Origin<'_>, &[usize]) -> Result<usize>,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let origin = Origin::new(&self.path, name);
        let tensors = SafeTensors::deserialize(&self.bytes).map_err(|e| {
            ExportError::parse(&self.path, format!("not a valid safetensors file: {e}"))
        })?;
        self.resolve(name)?;
        let view = tensors
            .tensor(name)
            .map_err(|e| origin.parse(format!("cannot read the tensor: {e}")))?;
        let ty = match view.dtype() {
            Dtype::F32 => FloatType::F32,
            Dtype::F64 => FloatType::F64,
            Dtype::F16 => FloatType::F16,
            Dtype::BF16 => FloatType::Bf16,
            other => return Err(origin.unsupported(format!("{other:?}"))),
        };
        let shape = view.shape().to_vec();
        let cols = cols_for(&origin, &shape)?;
        let mut out = Vec::new();
        decode_floats_into(
            &mut out,
            view.data(),
            ty,
            ByteOrder::Little,
            0,
            &origin,
            &row_major(cols),
        )?;
        Ok((shape, out))
    }

    /// Reads tensor `name` as a 2-D table.
    pub(crate) fn dense(&self, name: &str) -> Result<DenseMatrix> {
        let mut dims = (0, 0);
        let (_, data) = self.floats(name, |origin, shape| {
            dims = table_shape(origin, shape)?;
            Ok(dims.1)
        })?;
        Ok(DenseMatrix {
            rows: dims.0,
            cols: dims.1,
            data,
        })
    }

    /// Reads tensor `name` as a vector: `(n,)`, `(n, 1)` or `(1, n)`.
    pub(crate) fn vector(&self, name: &str) -> Result<Vec<f32>> {
        self.floats(name, vector_columns).map(|(_, data)| data)
    }
}

/// Checks, before the `safetensors` crate sees the file, that every tensor's data offsets lie
/// within the file, so that no crafted offset can make the crate's own size arithmetic overflow.
fn precheck_offsets(path: &Path, bytes: &[u8]) -> Result<()> {
    let bad = |message: String| {
        ExportError::parse(path, format!("not a valid safetensors file: {message}"))
    };
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(bad("shorter than its 8-byte header length".to_string()));
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    let Some(header) = usize::try_from(header_len)
        .ok()
        .and_then(|n| n.checked_add(8))
        .and_then(|end| bytes.get(8..end))
    else {
        return Err(bad(format!(
            "header length {header_len} runs past the end of the file ({} bytes)",
            bytes.len()
        )));
    };
    let data_len = bytes.len() - 8 - header.len();
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
    for (name, entry) in &json {
        if name == "__metadata__" {
            continue;
        }
        let offsets = entry
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .map(|o| o.iter().map(serde_json::Value::as_u64).collect::<Vec<_>>());
        match offsets.as_deref() {
            Some([Some(start), Some(end)]) if start <= end && *end <= data_len as u64 => {}
            _ => {
                return Err(bad(format!(
                    "tensor '{name}' has data_offsets outside the {data_len} bytes of data"
                )));
            }
        }
    }
    Ok(())
}
