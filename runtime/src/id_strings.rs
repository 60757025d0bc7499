//! The original strings of string ids: a table whose ids are [`string_id`] hashes may carry
//! them (section [`SectionKind::IdStrings`]), so that every answer can name an item as the app
//! does (`"sku-10442"`), and a lookup by string is exact (the stored string is compared, not
//! only its hash). Read in place: a string is a `&str` borrowed from the model's bytes.

use crate::error::{Error, Result};
use crate::format::{
    ID_STRINGS_HEADER_SIZE, IdKind, IdStringsHeader, Role, SectionKind, string_id,
};
use crate::le;
use crate::model::Model;
use crate::table::Table;

/// A table's id strings (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct IdStrings<'a> {
    role: Role,
    rows: usize,
    offsets: &'a [u8],
    strings: &'a [u8],
}

impl<'a> IdStrings<'a> {
    /// Parses the section's bytes for a table of `rows` rows at position `table`.
    fn parse(bytes: &'a [u8], role: Role, table: u32, rows: usize) -> Result<Self> {
        let corrupt = |reason| Error::CorruptTable { role, reason };
        let header: &IdStringsHeader = bytes
            .get(..ID_STRINGS_HEADER_SIZE)
            .and_then(|b| bytemuck::try_from_bytes(b).ok())
            .ok_or(corrupt("id-strings section shorter than its header"))?;
        if header.table.get() != table || header.reserved.get() != 0 {
            return Err(corrupt("id-strings section names another table"));
        }
        if header.rows.get() != rows as u64 {
            return Err(corrupt("id-strings section's rows differ from the table's"));
        }
        let offsets_len = rows
            .checked_add(1)
            .and_then(|n| n.checked_mul(4))
            .ok_or(corrupt("id-strings offsets overflow"))?;
        let rest = &bytes[ID_STRINGS_HEADER_SIZE..];
        if rest.len() < offsets_len {
            return Err(corrupt("id-strings section shorter than its offsets"));
        }
        let (offsets, strings) = rest.split_at(offsets_len);
        if le::u32_at(offsets, 0) != Some(0)
            || le::u32_at(offsets, rows).map(|end| end as usize) != Some(strings.len())
        {
            return Err(corrupt("id-strings offsets do not span the string bytes"));
        }
        Ok(IdStrings {
            role,
            rows,
            offsets,
            strings,
        })
    }

    /// Rows (one string each).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `row`'s string.
    pub fn get(&self, row: usize) -> Result<&'a str> {
        if row >= self.rows {
            return Err(Error::RowOutOfRange {
                role: self.role,
                row: row as u64,
                rows: self.rows as u64,
            });
        }
        let corrupt = |reason| Error::CorruptRow {
            role: self.role,
            row: row as u64,
            reason,
        };
        let (start, end) = match (
            le::u32_at(self.offsets, row),
            le::u32_at(self.offsets, row + 1),
        ) {
            (Some(s), Some(e)) if s <= e => (s as usize, e as usize),
            _ => return Err(corrupt("id string offsets out of order")),
        };
        let bytes = self
            .strings
            .get(start..end)
            .ok_or(corrupt("id string past the end of its section"))?;
        core::str::from_utf8(bytes).map_err(|_| corrupt("id string is not UTF-8"))
    }

    /// Checks every string: offsets in order, UTF-8, and its hash equal to the row's id.
    pub fn verify(&self, table: &Table<'_>) -> Result<()> {
        for row in 0..self.rows {
            let s = self.get(row)?;
            if string_id(s) != table.id(row)? {
                return Err(Error::CorruptRow {
                    role: self.role,
                    row: row as u64,
                    reason: "id string does not hash to the row's id",
                });
            }
        }
        Ok(())
    }
}

impl<S: AsRef<[u8]>> Model<S> {
    /// The original strings of the string ids of the table with role `role`: `Ok(None)` when
    /// the table has integer ids or was written without them.
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
    /// use pocketrec::{IdKind, Model, Role, string_id};
    ///
    /// let names = ["sku-2", "sku-10442"];
    /// let mut ids: Vec<u64> = names.iter().map(|s| string_id(s)).collect();
    /// let mut strings: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    /// let items = SparseMatrix::from_dense(2, 2, &[1.0, 0.0, 0.0, 1.0])?;
    /// let bytes = ModelBuilder::new()
    ///     .table(TableSpec::new("items", Role::Item, items)
    ///         .ids(ids.clone(), IdKind::StringHash)
    ///         .id_strings(strings))
    ///     .build()?;
    /// let model = Model::from_bytes(&bytes)?;
    /// assert_eq!(model.id_str(Role::Item, string_id("sku-10442"))?, Some("sku-10442"));
    /// assert_eq!(model.find_str(Role::Item, "sku-2")?, string_id("sku-2"));
    /// # Ok(()) }
    /// ```
    pub fn id_strings(&self, role: Role) -> Result<Option<IdStrings<'_>>> {
        let table = self.table(role)?;
        if table.id_kind() != IdKind::StringHash {
            return Ok(None);
        }
        let position = self
            .layout_table_index(role)
            .ok_or(Error::MissingTable(role.name()))?;
        let mut found = None;
        for index in 0..self.section_count() {
            let section = self.section(index)?;
            if section.kind != SectionKind::IdStrings {
                continue;
            }
            let start = section.offset as usize;
            let bytes = self
                .bytes()
                .get(start..start.saturating_add(section.length as usize))
                .ok_or(Error::InvalidSection {
                    index,
                    reason: "section extends past the end of the file",
                })?;
            let named = bytes
                .get(..4)
                .and_then(|b| le::u32_at(b, 0))
                .is_some_and(|t| t == position);
            if named {
                if found.is_some() {
                    return Err(Error::InvalidSection {
                        index,
                        reason: "second id-strings section for a table",
                    });
                }
                found = Some(IdStrings::parse(bytes, role, position, table.rows())?);
            }
        }
        Ok(found)
    }

    /// The original string of the external id `id` in the table with role `role`, when the
    /// table stores its id strings (`Ok(None)` otherwise).
    pub fn id_str(&self, role: Role, id: u64) -> Result<Option<&str>> {
        match self.id_strings(role)? {
            Some(strings) => {
                let row = self.table(role)?.find(id)?;
                strings.get(row).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The external id of the string id `s` in the table with role `role`: its hash
    /// ([`string_id`]), checked against the stored string when the table has them (so that a
    /// string whose hash collides with another's is not found). [`Error::IdNotFound`] when
    /// absent.
    pub fn find_str(&self, role: Role, s: &str) -> Result<u64> {
        let id = string_id(s);
        let table = self.table(role)?;
        let row = table.find(id)?;
        if let Some(strings) = self.id_strings(role)?
            && strings.get(row)? != s
        {
            return Err(Error::IdNotFound { role, id });
        }
        Ok(id)
    }
}
