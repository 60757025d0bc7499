//! Plain-text vectors: one number per line; blank lines and lines starting with `#` are skipped.

use std::path::Path;

use super::convert::not_finite;
use crate::error::{ExportError, Result};

/// Parses the text of a vector file (`bytes`, read from `path`).
pub(crate) fn parse_vector(path: &Path, bytes: &[u8]) -> Result<Vec<f32>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ExportError::parse(
            path,
            format!(
                "not a .npy, .npz or .safetensors file, nor UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let err = |message: String| ExportError::Line {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(field), None) = (fields.next(), fields.next()) else {
            return Err(err(format!(
                "expected one number per line, found {} fields",
                line.split_whitespace().count()
            )));
        };
        // Parsed straight to f32 (correctly rounded); f64 only tells overflow from inf/NaN.
        let f: f32 = field.parse().map_err(|_| {
            let shown: String = field.chars().take(40).collect();
            err(format!("'{shown}' is not a number"))
        })?;
        if !f.is_finite() {
            let v: f64 = field.parse().unwrap_or(f64::NAN);
            return Err(err(if v.is_finite() {
                format!("value {v:e} does not fit in f32")
            } else {
                not_finite(v)
            }));
        }
        out.push(f);
    }
    Ok(out)
}
