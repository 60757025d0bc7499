//! The id-strings section of a table whose ids are string hashes: the strings in file row
//! order (sorted by id, or clustered), with `u32` offsets.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::format::{IdKind, IdStringsHeader, U32Le, U64Le, string_id};

use super::TableSpec;

/// The section for `spec`'s strings (`None` when it has none), the table at `position`,
/// whose file row `i` is input row `order[i]`.
pub(crate) fn section(spec: &TableSpec, position: u32, order: &[usize]) -> Result<Option<Vec<u8>>> {
    let Some(strings) = &spec.id_strings else {
        return Ok(None);
    };
    let bad = |row: Option<u64>, reason| Error::InvalidInput {
        role: Some(spec.role),
        row,
        column: None,
        reason,
    };
    let ids = match (&spec.ids, spec.id_kind) {
        (Some(ids), IdKind::StringHash) => ids,
        _ => return Err(bad(None, "id strings need string ids (IdKind::StringHash)")),
    };
    if strings.len() != ids.len() {
        return Err(bad(
            None,
            "number of id strings differs from the number of ids",
        ));
    }
    if let Some(row) = strings
        .iter()
        .zip(ids)
        .position(|(s, &id)| string_id(s) != id)
    {
        return Err(bad(Some(row as u64), "id string does not hash to its id"));
    }
    let total: usize = strings.iter().map(String::len).sum();
    if u32::try_from(total).is_err() {
        return Err(bad(None, "id strings take more than 4 GiB"));
    }
    let header = IdStringsHeader {
        table: U32Le::new(position),
        reserved: U32Le::new(0),
        rows: U64Le::new(ids.len() as u64),
    };
    let mut out = Vec::with_capacity(16 + 4 * (ids.len() + 1) + total);
    out.extend_from_slice(bytemuck::bytes_of(&header));
    let mut offset = 0u32;
    out.extend_from_slice(&offset.to_le_bytes());
    for &r in order {
        // At most `total`, which fits in u32 (checked above).
        offset += strings[r].len() as u32;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for &r in order {
        out.extend_from_slice(strings[r].as_bytes());
    }
    Ok(Some(out))
}
