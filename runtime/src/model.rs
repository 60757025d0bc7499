//! [`Model`]: an opened, validated `.prec` file.

use crate::error::{Error, Result};
use crate::format::{Role, Scoring, SectionKind};
use crate::layout::Layout;
use crate::properties::Properties;
use crate::table::Table;

/// An opened `.prec` model over storage `S` (a byte slice, a `Vec<u8>`, a memory map...).
///
/// Opening ([`Model::new`], [`Model::from_bytes`]) validates the header, the section table and
/// the metadata, with their checksums, but does not read the data sections, so it costs the
/// same for a 1 KB and a 1 GB file. Row accesses check what they read; [`Model::verify`] checks
/// everything, data checksums included.
///
/// The storage is never written to, and the model holds no interior mutability: a
/// `Model<&[u8]>` or `Model<Mmap>` is `Send + Sync` and can serve many threads at once.
///
/// ```
/// # fn main() -> Result<(), pocketrec::Error> {
/// # let bytes = pocketrec::builder::tiny_example_model()?;
/// use pocketrec::{Model, Recommendation};
///
/// let model = Model::from_bytes(&bytes)?;     // zero-copy: borrows `bytes`
/// let mut top = [Recommendation::default(); 2];
/// let n = model.recommend(0, 2, &[], &mut top)?;
/// for r in &top[..n] {
///     println!("item {} score {:.3}", r.id, r.score);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Model<S> {
    storage: S,
    layout: Layout,
    /// Bytes of the `.prec` file proper: the storage without a signature trailer.
    content_len: usize,
}

/// Where a section lies in the file, for reports such as `pocketrec inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionInfo {
    /// Position in the section table.
    pub index: u32,
    /// What the section holds.
    pub kind: SectionKind,
    /// Offset from the start of the file.
    pub offset: u64,
    /// Length in bytes (without padding).
    pub length: u64,
    /// The stored CRC32C of its bytes.
    pub crc: u32,
}

impl<'a> Model<&'a [u8]> {
    /// Opens a model that borrows `bytes` (zero-copy), validating header, section table and
    /// metadata. The bytes may be at any alignment.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self> {
        Model::new(bytes)
    }

    /// Opens `bytes` as a `.prec` file written up to byte `written`, without looking for a
    /// signature trailer after it: for a file still being written (a patch that recomputes a
    /// section reads the result so far; the padding past `written` is not checked, and nothing
    /// past it is read unless asked for).
    pub(crate) fn from_written(bytes: &'a [u8], written: usize) -> Result<Self> {
        Ok(Model {
            storage: bytes,
            layout: Layout::parse_written(bytes, written)?,
            content_len: bytes.len(),
        })
    }

    /// Opens a model only if it is signed by `public_key` (Ed25519; see `docs/FORMAT.md`,
    /// *Signatures*): the signature is checked over the SHA-256 of the whole file before anything
    /// else is read. Errors: [`Error::Unsigned`], [`Error::WrongKey`], [`Error::Tampered`].
    #[cfg(feature = "signatures")]
    pub fn from_bytes_signed(bytes: &'a [u8], public_key: &[u8; 32]) -> Result<Self> {
        crate::signature::verify(bytes, public_key)?;
        Model::new(bytes)
    }
}

#[cfg(feature = "std")]
impl Model<alloc::vec::Vec<u8>> {
    /// Reads a whole file into memory and opens it. See `Model::open` (feature `mmap`) to map
    /// it instead.
    pub fn read(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Model::new(std::fs::read(path)?)
    }
}

impl<S: AsRef<[u8]>> Model<S> {
    /// Opens a model over `storage`, validating header, section table and metadata.
    ///
    /// A signature trailer after the file ([`crate::signature`]) is read and set aside, not
    /// checked: use [`Model::from_bytes_signed`] or [`Model::new_signed`] to require one.
    pub fn new(storage: S) -> Result<Self> {
        let (content, _) = crate::signature::split(storage.as_ref())?;
        let content_len = content.len();
        let layout = Layout::parse(content)?;
        Ok(Model {
            storage,
            layout,
            content_len,
        })
    }

    /// Opens a model over `storage` only if it is signed by `public_key`; see
    /// [`Model::from_bytes_signed`].
    #[cfg(feature = "signatures")]
    pub fn new_signed(storage: S, public_key: &[u8; 32]) -> Result<Self> {
        crate::signature::verify(storage.as_ref(), public_key)?;
        Model::new(storage)
    }

    /// Where the file's parts are (checked at open).
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The file's bytes (without a signature trailer).
    pub fn bytes(&self) -> &[u8] {
        &self.storage.as_ref()[..self.content_len]
    }

    /// The signature trailer, if the file has one (read again from the bytes after the file;
    /// opening checked its form, not its signature).
    pub fn signature_trailer(&self) -> Option<crate::signature::Trailer> {
        crate::signature::split(self.storage.as_ref())
            .ok()
            .and_then(|(_, trailer)| trailer)
    }

    /// The storage the model was opened over.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Gives the storage back.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// The format minor version the file was written with (the major is always 1).
    pub fn format_minor(&self) -> u16 {
        self.layout.minor
    }

    /// How scores are computed.
    pub fn scoring(&self) -> Scoring {
        self.layout.scoring
    }

    /// The constant added to every score.
    pub fn global_bias(&self) -> f32 {
        self.layout.global_bias
    }

    /// The table with role `role`.
    pub fn table(&self, role: Role) -> Result<Table<'_>> {
        let layout = self
            .layout
            .table(role)
            .ok_or(Error::MissingTable(role.name()))?;
        Table::new(self.bytes(), layout)
    }

    /// The table named `name`.
    pub fn table_by_name(&self, name: &str) -> Result<Table<'_>> {
        for role in Role::ALL {
            if let Ok(table) = self.table(*role)
                && table.name() == name
            {
                return Ok(table);
            }
        }
        Err(Error::MissingTable("such a named"))
    }

    /// The position in the metadata's tables of the table with role `role`.
    pub(crate) fn layout_table_index(&self, role: Role) -> Option<u32> {
        self.layout.table(role).map(|t| t.position)
    }

    /// The user table.
    pub fn users(&self) -> Result<Table<'_>> {
        self.table(Role::User)
    }

    /// The item table.
    pub fn items(&self) -> Result<Table<'_>> {
        self.table(Role::Item)
    }

    /// The embedding dimension (shared by both tables).
    pub fn dim(&self) -> Option<usize> {
        self.layout
            .item
            .as_ref()
            .or(self.layout.user.as_ref())
            .map(|t| t.dim)
    }

    /// The free-form `(key, value)` string properties (provenance).
    pub fn properties(&self) -> Properties<'_> {
        match self.layout.properties.slice(self.bytes()) {
            Ok(bytes) => Properties::new(bytes),
            Err(_) => Properties::new(&[]),
        }
    }

    /// The value of property `key`, if present.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Bytes of the header (64 in format 1.0).
    pub fn header_size(&self) -> usize {
        self.layout.header_size
    }

    /// Number of sections.
    pub fn section_count(&self) -> u32 {
        self.layout.section_count
    }

    /// Section number `index` of the section table.
    pub fn section(&self, index: u32) -> Result<SectionInfo> {
        if index >= self.layout.section_count {
            return Err(Error::InvalidSection {
                index,
                reason: "no such section",
            });
        }
        let entry = self.layout.section(self.bytes(), index)?;
        Ok(SectionInfo {
            index,
            kind: entry.kind,
            offset: entry.span.start as u64,
            length: entry.span.len as u64,
            crc: entry.crc,
        })
    }

    /// All sections, in file order.
    pub fn sections(&self) -> impl Iterator<Item = SectionInfo> + '_ {
        (0..self.layout.section_count).filter_map(|i| self.section(i).ok())
    }
}
