//! The runtime's one error type.

use core::fmt;

use crate::format::Role;

/// Which checksum failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumScope {
    /// The file header.
    Header,
    /// The section table.
    SectionTable,
    /// Section number `index` of the section table.
    Section {
        /// Position in the section table.
        index: u32,
    },
}

/// Everything that can go wrong opening, checking or querying a model, or building one.
///
/// Every failure class has its own variant, so callers (and the C API) can map them to codes.
/// No input, however corrupt, makes the runtime panic: it returns one of these instead.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before a structure that must be there.
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes it needs (from its start, or in total).
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The file does not start with the `.prec` magic bytes.
    BadMagic,
    /// The byte-order mark is not the little-endian one.
    ByteOrder {
        /// The mark as read (little-endian).
        found: u32,
    },
    /// The file's major version is not the one this runtime reads.
    UnsupportedVersion {
        /// Major version in the file.
        major: u16,
        /// Minor version in the file.
        minor: u16,
    },
    /// A header field is out of range or inconsistent with the buffer.
    InvalidHeader(&'static str),
    /// A checksum does not match the bytes it covers.
    Checksum {
        /// What it covers.
        scope: ChecksumScope,
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes as they are.
        computed: u32,
    },
    /// A section table entry is inconsistent (placement, alignment, padding, length, kind).
    InvalidSection {
        /// Position in the section table.
        index: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// The metadata does not decode, or contradicts the sections.
    InvalidMetadata(&'static str),
    /// An enum code in the file that this runtime does not know (a later format version?).
    Unsupported {
        /// What the code encodes.
        what: &'static str,
        /// The code found.
        code: u32,
    },
    /// A row's stored bytes are inconsistent (offsets, lengths, indices, values).
    CorruptRow {
        /// The table.
        role: Role,
        /// The row number.
        row: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// Another part of a table's data is inconsistent (ids, biases, counts), found by `verify`.
    CorruptTable {
        /// The table.
        role: Role,
        /// What is wrong.
        reason: &'static str,
    },
    /// The model has no table with that role or name.
    MissingTable(&'static str),
    /// The table stores no row records of its own: only a column layout (format 1.2, written
    /// with `--layout columns`), or sliced rows (format 1.4, `--sliced-rows`). Its rows are
    /// reached through [`crate::Table::decode_row`] and the scans, not as records.
    RowsNotStored {
        /// The table.
        role: Role,
    },
    /// No row of the table has this external id.
    IdNotFound {
        /// The table searched.
        role: Role,
        /// The id asked for.
        id: u64,
    },
    /// A row number past the end of the table.
    RowOutOfRange {
        /// The table.
        role: Role,
        /// The row asked for.
        row: u64,
        /// Rows in the table.
        rows: u64,
    },
    /// A vector's length does not match the table's dimension (or the two tables disagree).
    DimensionMismatch {
        /// The length required.
        expected: u64,
        /// The length given.
        actual: u64,
    },
    /// A caller-given output buffer is too small.
    BufferTooSmall {
        /// Elements needed.
        needed: u64,
        /// Elements given.
        actual: u64,
    },
    /// A score came out NaN or infinite (a corrupt value, or values too large for f32).
    NonFiniteScore {
        /// The item row whose score it was.
        item_row: u64,
    },
    /// The query needs more scratch space than the call provides on the stack; use the
    /// `*_vector` variant with a caller-given buffer.
    DimensionTooLarge {
        /// The table's dimension.
        dim: u64,
        /// The most the call supports.
        max: u64,
    },
    /// Input to the model builder is invalid (builder only).
    InvalidInput {
        /// The table concerned, if any.
        role: Option<Role>,
        /// The row concerned (input order), if any.
        row: Option<u64>,
        /// The column concerned, if any.
        column: Option<u64>,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two rows of a table have the same external id (builder only).
    DuplicateId {
        /// The table.
        role: Role,
        /// The repeated id.
        id: u64,
        /// The two rows (input order) that carry it.
        rows: (u64, u64),
    },
    /// The model has no fold-in section ([`crate::SectionKind::FoldIn`]): it was written
    /// without one, so a user cannot be folded in on the device.
    NoFoldIn,
    /// An argument of a query is invalid: a fold-in weight that is negative or not finite, a
    /// prior whose precision is negative or not finite, or nothing to solve from (no known item
    /// and no prior).
    InvalidQuery {
        /// The position of the offending argument element (e.g. the interaction), if any.
        index: Option<u64>,
        /// What is wrong.
        reason: &'static str,
    },
    /// A signature was required and the file carries none (no signature trailer).
    Unsigned,
    /// The file is signed, but by another key than the one given (its key id differs).
    WrongKey {
        /// The key id in the trailer (the first 8 bytes of the signer's key's SHA-256).
        signed_by: [u8; 8],
        /// The key id of the key given.
        expected: [u8; 8],
    },
    /// The signature does not match the bytes: the file (or its trailer) was changed after
    /// signing.
    Tampered(&'static str),
    /// A patch file is malformed (header, checksum, or an operation that breaks its rules).
    InvalidPatch(&'static str),
    /// A patch was made for another base file: its size or SHA-256 differs. Nothing was
    /// written.
    WrongBase {
        /// The base size the patch expects.
        expected_size: u64,
        /// The size of the base given.
        actual_size: u64,
    },
    /// Applying the patch did not give the file it promises (its SHA-256 or size differs).
    PatchResult(&'static str),
    /// The sink a patch streams into refused bytes (full, or a write failed).
    Sink(&'static str),
    /// Reading or mapping a file failed.
    #[cfg(feature = "std")]
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "truncated: {what} needs {needed} bytes, only {available} available"
            ),
            Error::BadMagic => f.write_str("not a .prec file (bad magic bytes)"),
            Error::ByteOrder { found } => write!(
                f,
                "byte-order mark is {found:#010x}, expected {:#010x} (file written big-endian or damaged)",
                crate::format::BYTE_ORDER_MARK
            ),
            Error::UnsupportedVersion { major, minor } => write!(
                f,
                "format version {major}.{minor} is not supported (this runtime reads {}.x)",
                crate::format::FORMAT_MAJOR
            ),
            Error::InvalidHeader(reason) => write!(f, "invalid header: {reason}"),
            Error::Checksum {
                scope,
                stored,
                computed,
            } => {
                match scope {
                    ChecksumScope::Header => f.write_str("header checksum mismatch")?,
                    ChecksumScope::SectionTable => {
                        f.write_str("section table checksum mismatch")?
                    }
                    ChecksumScope::Section { index } => {
                        write!(f, "section {index} checksum mismatch")?
                    }
                }
                write!(f, " (stored {stored:#010x}, computed {computed:#010x})")
            }
            Error::InvalidSection { index, reason } => write!(f, "section {index}: {reason}"),
            Error::InvalidMetadata(reason) => write!(f, "invalid metadata: {reason}"),
            Error::Unsupported { what, code } => write!(
                f,
                "unsupported {what} code {code} (file written by a newer pocketrec?)"
            ),
            Error::CorruptRow { role, row, reason } => {
                write!(f, "{role} table row {row} is corrupt: {reason}")
            }
            Error::CorruptTable { role, reason } => write!(f, "{role} table is corrupt: {reason}"),
            Error::MissingTable(what) => write!(f, "the model has no {what} table"),
            Error::RowsNotStored { role } => write!(
                f,
                "the {role} table stores no row records of its own (only a column layout, written with --layout columns, or sliced rows, written with --sliced-rows); decode_row reads its rows"
            ),
            Error::IdNotFound { role, id } => write!(f, "no {role} with id {id}"),
            Error::RowOutOfRange { role, row, rows } => {
                write!(
                    f,
                    "{role} row {row} is out of range (the table has {rows} rows)"
                )
            }
            Error::DimensionMismatch { expected, actual } => {
                write!(f, "dimension mismatch: expected {expected}, got {actual}")
            }
            Error::BufferTooSmall { needed, actual } => {
                write!(f, "buffer too small: need {needed} elements, got {actual}")
            }
            Error::NonFiniteScore { item_row } => {
                write!(f, "score for item row {item_row} is not finite")
            }
            Error::DimensionTooLarge { dim, max } => write!(
                f,
                "dimension {dim} exceeds the {max} this call keeps on the stack; pass a dense user vector instead"
            ),
            Error::InvalidInput {
                role,
                row,
                column,
                reason,
            } => {
                f.write_str("invalid input")?;
                if let Some(role) = role {
                    write!(f, " in the {role} table")?;
                }
                if let Some(row) = row {
                    write!(f, " at row {row}")?;
                }
                if let Some(column) = column {
                    write!(f, ", column {column}")?;
                }
                write!(f, ": {reason}")
            }
            Error::DuplicateId { role, id, rows } => write!(
                f,
                "{role} id {id} appears twice (rows {} and {})",
                rows.0, rows.1
            ),
            Error::NoFoldIn => f.write_str(
                "the model has no fold-in section (export or train it with one to fold in users)",
            ),
            Error::InvalidQuery { index, reason } => {
                f.write_str("invalid query")?;
                if let Some(index) = index {
                    write!(f, " at element {index}")?;
                }
                write!(f, ": {reason}")
            }
            Error::Unsigned => f.write_str(
                "unsigned: the file has no signature, and a signed one is required (pocketrec sign)",
            ),
            Error::WrongKey {
                signed_by,
                expected,
            } => {
                f.write_str("wrong key: signed by key id ")?;
                hex(f, signed_by)?;
                f.write_str(", expected key id ")?;
                hex(f, expected)
            }
            Error::Tampered(what) => write!(f, "tampered: {what}"),
            Error::InvalidPatch(reason) => write!(f, "invalid patch: {reason}"),
            Error::WrongBase {
                expected_size,
                actual_size,
            } => write!(
                f,
                "the patch is for another base file (it expects {expected_size} bytes with its SHA-256; this one has {actual_size} bytes{}); nothing was written",
                if expected_size == actual_size {
                    " and another SHA-256"
                } else {
                    ""
                }
            ),
            Error::PatchResult(what) => write!(f, "the patched file is not the one promised: {what}"),
            Error::Sink(what) => write!(f, "the patch's output was refused: {what}"),
            #[cfg(feature = "std")]
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            #[cfg(feature = "std")]
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "std")]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// Writes bytes as lowercase hex.
fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
