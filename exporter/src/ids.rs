//! Id files: one external id per line, integers or strings.
//!
//! A file whose every line is a decimal integer in `0..2^64` holds integer ids; any other file
//! holds string ids, stored as [`pocketrec::string_id`] hashes (FNV-1a 64). Leading and trailing
//! whitespace is trimmed; empty lines are errors (an id file has exactly one line per row).
//! Duplicate ids and two different strings with the same hash are refused with both line
//! numbers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pocketrec::IdKind;

use crate::error::{ExportError, Result};

/// The ids read from an id file, in line (= row) order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdList {
    /// The file they came from.
    pub path: PathBuf,
    /// One id per row: the integer, or the hash of the string.
    pub ids: Vec<u64>,
    /// Integers or string hashes.
    pub kind: IdKind,
    /// The strings themselves, in line order, for string ids (`None` for integers).
    pub strings: Option<Vec<String>>,
}

/// Reads an id file.
pub fn read_id_file(path: &Path) -> Result<IdList> {
    let text = std::fs::read(path).map_err(|e| ExportError::io(path, e))?;
    let text = String::from_utf8(text)
        .map_err(|e| ExportError::parse(path, format!("not UTF-8 text ({e})")))?;
    parse_ids(path, &text)
}

/// Parses the text of an id file (see the module docs).
pub fn parse_ids(path: &Path, text: &str) -> Result<IdList> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    if let Some(n) = lines.iter().position(|l| l.is_empty()) {
        return Err(ExportError::Line {
            path: path.to_path_buf(),
            line: n as u64 + 1,
            message: "empty line: an id file has exactly one id per line".into(),
        });
    }
    let integers: Option<Vec<u64>> = lines.iter().map(|l| l.parse::<u64>().ok()).collect();
    let duplicate = |line: usize, first: usize, message: String| ExportError::Line {
        path: path.to_path_buf(),
        line: line as u64 + 1,
        message: format!("{message} (first on line {})", first + 1),
    };
    match integers {
        Some(ids) => {
            let mut seen = HashMap::with_capacity(ids.len());
            for (line, &id) in ids.iter().enumerate() {
                if let Some(first) = seen.insert(id, line) {
                    return Err(duplicate(line, first, format!("duplicate id {id}")));
                }
            }
            Ok(IdList {
                path: path.to_path_buf(),
                ids,
                kind: IdKind::Integer,
                strings: None,
            })
        }
        None => {
            let mut seen: HashMap<u64, usize> = HashMap::with_capacity(lines.len());
            let mut ids = Vec::with_capacity(lines.len());
            for (line, &name) in lines.iter().enumerate() {
                let id = pocketrec::string_id(name);
                if let Some(first) = seen.insert(id, line) {
                    let message = if lines[first] == name {
                        format!("duplicate id {name:?}")
                    } else {
                        format!(
                            "string id {name:?} has the same 64-bit hash ({id:#018x}) as {:?}; rename one of them",
                            lines[first]
                        )
                    };
                    return Err(duplicate(line, first, message));
                }
                ids.push(id);
            }
            Ok(IdList {
                path: path.to_path_buf(),
                ids,
                kind: IdKind::StringHash,
                strings: Some(lines.iter().map(|l| l.to_string()).collect()),
            })
        }
    }
}

/// Turns an id given on the command line into the table's id: the integer for integer ids,
/// the hash for string ids.
pub fn resolve_id(text: &str, kind: IdKind) -> Result<u64> {
    let text = text.trim();
    match kind {
        IdKind::StringHash => Ok(pocketrec::string_id(text)),
        IdKind::Integer => text.parse::<u64>().map_err(|_| {
            ExportError::Usage(format!(
                "'{text}' is not an integer id (this model's ids are integers)"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ids() {
        let ids = parse_ids(Path::new("u.txt"), "10\n 3 \r\n7\n").unwrap();
        assert_eq!(ids.ids, vec![10, 3, 7]);
        assert_eq!(ids.kind, IdKind::Integer);
    }

    #[test]
    fn string_ids_are_hashed() {
        let ids = parse_ids(Path::new("u.txt"), "alice\nbob\n42\n").unwrap();
        assert_eq!(ids.kind, IdKind::StringHash);
        assert_eq!(ids.ids[0], pocketrec::string_id("alice"));
        assert_eq!(ids.ids[2], pocketrec::string_id("42"));
    }

    #[test]
    fn duplicates_name_both_lines() {
        let e = parse_ids(Path::new("u.txt"), "1\n2\n1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "u.txt:3: duplicate id 1 (first on line 1)");
        let e = parse_ids(Path::new("u.txt"), "a\nb\nb\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "u.txt:3: duplicate id \"b\" (first on line 2)");
    }

    #[test]
    fn empty_lines_are_errors() {
        let e = parse_ids(Path::new("u.txt"), "1\n\n2\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("u.txt:2: empty line"), "{e}");
    }

    #[test]
    fn ids_on_the_command_line() {
        assert_eq!(resolve_id("17", IdKind::Integer).unwrap(), 17);
        assert!(resolve_id("x", IdKind::Integer).is_err());
        assert_eq!(
            resolve_id("x", IdKind::StringHash).unwrap(),
            pocketrec::string_id("x")
        );
    }
}
