//! Patches: the bytes that turn one model file into the next, applied on the device in bounded
//! memory (see `docs/FORMAT.md`, *Patches*).
//!
//! A patch names its base and its result by size and SHA-256, and holds a list of operations
//! that write the result from the start to the end: copy bytes of the base, write bytes carried
//! in the patch, move in the base, and copy integers of the base plus a constant (how row
//! offsets move when a row before them grows). The operations know nothing of rows or
//! sections: `pocketrec diff` chooses them from the structure of the two files (row by row, with
//! offsets as copy-adds), and a device applies any patch with the same few hundred lines,
//! whatever layout or value encoding the model uses.
//!
//! [`apply`] streams the result, in order, into a [`Sink`] (a flash writer, a file, a buffer):
//! it uses a fixed amount of stack (a 64-byte buffer), no heap, and reads the base from a byte
//! slice (flash, a memory map). The patch is untrusted: every length and position is checked,
//! and nothing is written unless the base is the right one *and* the operations give exactly the
//! promised result (a first pass hashes the result without writing it; the second writes and
//! hashes again).
//!
//! ```
//! # fn main() -> Result<(), pocketrec::Error> {
//! use pocketrec::patch::{self, Op, SliceSink};
//! let base = b"users: 1 2 3; items: 4 5 6";
//! let result = b"users: 1 2 3 7; items: 4 9 6";
//! let ops = [Op::Copy { len: 12 }, Op::Insert(b" 7"), Op::Copy { len: 11 }, Op::Replace(b"9"),
//!            Op::Copy { len: 2 }, Op::End];
//! let bytes = patch::encode(base, result, &ops);
//! let mut out = [0u8; 64];
//! let mut sink = SliceSink::new(&mut out);
//! patch::apply(base, &bytes, &mut sink)?;
//! assert_eq!(sink.written(), result);
//! # Ok(()) }
//! ```

use core::borrow::BorrowMut;

use sha2::{Digest, Sha256};

use crate::derive;
use crate::error::{Error, Result};
use crate::format::crc32c;
use crate::le::{read_u32, read_u64};
use crate::range_coder;
use crate::score::MAX_STACK_DIM;
use crate::signature::{self, Trailer};

/// A patch file's first 8 bytes: `\x89PPAT\r\n\x1a`.
pub const PATCH_MAGIC: [u8; 8] = [0x89, b'P', b'P', b'A', b'T', 0x0D, 0x0A, 0x1A];

/// The patch format's major version: a reader refuses another.
pub const PATCH_MAJOR: u16 = 1;

/// The newest minor version of the patch format this runtime reads. A writer records the
/// smallest minor its patch needs (1 for [`Op::CopyNibbles`] or a coded body, 2 for
/// [`Op::Recompute`]), so that older readers still apply every patch they can; a reader refuses a
/// newer minor up front.
pub const PATCH_MINOR: u16 = 2;

/// Bytes in the patch header.
pub const PATCH_HEADER_SIZE: usize = 128;

/// Operation tags: the low two bits of an operation's first varint.
const TAG_COPY: u64 = 0;
const TAG_REPLACE: u64 = 1;
const TAG_INSERT: u64 = 2;
#[cfg(feature = "alloc")]
const TAG_EXTENDED: u64 = 3;
/// Extended operations: the rest of the first varint.
const EXT_END: u64 = 0;
const EXT_SEEK: u64 = 1;
const EXT_COPY_ADD: u64 = 2;
/// Minor 1.
const EXT_COPY_NIBBLES: u64 = 3;
/// Minor 2.
const EXT_RECOMPUTE: u64 = 4;

/// One operation of a patch. Each writes the next bytes of the result (none for `Seek` and
/// `End`); a cursor in the base starts at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// Copies `len` bytes of the base at the cursor; the cursor moves past them.
    Copy {
        /// Bytes copied.
        len: u64,
    },
    /// Writes these bytes in place of as many bytes of the base: the cursor moves past them.
    Replace(&'a [u8]),
    /// Writes these bytes; the cursor stays.
    Insert(&'a [u8]),
    /// Moves the cursor by this many bytes (negative: back).
    Seek(i64),
    /// Copies `count` little-endian unsigned integers of `width` bytes (2, 4 or 8) at the
    /// cursor, each plus `delta` (an integer that would leave its range is an error); the
    /// cursor moves past them.
    CopyAdd {
        /// Integers copied.
        count: u64,
        /// Bytes per integer: 2, 4 or 8.
        width: u8,
        /// Added to each.
        delta: i64,
    },
    /// Copies the base's nibbles shifted by one: writes `len` bytes, byte `j` being the high
    /// nibble of base byte `cursor + j` (as its low nibble) and the low nibble of base byte
    /// `cursor + j + 1` (as its high nibble); the cursor moves `len` bytes. It reads `len + 1`
    /// base bytes. This is what an int4 run of nibbles (FORMAT.md, *Column layout*) looks like
    /// after one entry was inserted or removed before it (minor 1).
    CopyNibbles {
        /// Bytes written.
        len: u64,
    },
    /// Writes `len` bytes that follow from the result written before them, computed from
    /// their table exactly as the writer computes them; the cursor stays. They are the body of
    /// the section whose header the result ends with (a fold-in section's Gramian after its 16
    /// bytes, a block-bounds section's scales, bias maxima and codes after its 24), or a whole
    /// column-layout section of a table that also stores row records. It needs a sink that
    /// gives back what it wrote ([`Sink::read_back`]: a buffer, or [`apply_file`]); the
    /// result's hash is then checked when it is complete (minor 2).
    Recompute {
        /// Bytes written (a multiple of 4 for a Gramian).
        len: u64,
    },
    /// [`Op::Replace`] in a patch with a coded body: its `len` bytes follow it in the coded
    /// stream, each XORed with the base byte it replaces.
    CodedReplace {
        /// Bytes written.
        len: u64,
    },
    /// [`Op::Insert`] in a patch with a coded body: its `len` bytes follow it in the coded
    /// stream.
    CodedInsert {
        /// Bytes written.
        len: u64,
    },
    /// The last operation.
    End,
}

/// How a patch's body is stored (header bytes 108 to 112).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LiteralCoding {
    /// As bytes: each operation's varints, a replace's or insert's bytes after its header
    /// (minor 0).
    #[default]
    Inline,
    /// Operations and their bytes in one range-coded stream (minor 1; [`crate::range_coder`]).
    Coded,
}

/// What a patch header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchHeader {
    /// Minor version of the patch format.
    pub minor: u16,
    /// Bytes of the patch (header and operations; a signature trailer comes after).
    pub patch_size: u64,
    /// Size of the file the patch applies to.
    pub base_size: u64,
    /// SHA-256 of the file the patch applies to (all of it, a signature trailer included).
    pub base_sha256: [u8; 32],
    /// Size of the file the patch makes.
    pub result_size: u64,
    /// SHA-256 of the file the patch makes.
    pub result_sha256: [u8; 32],
    /// Number of operations, `End` included.
    pub op_count: u64,
    /// How the body is stored.
    pub literal_coding: LiteralCoding,
}

/// A patch read from bytes: header checked, operations not yet run.
#[derive(Clone, Copy, Debug)]
pub struct Patch<'a> {
    header: PatchHeader,
    /// The operations (with [`LiteralCoding::Coded`], their range-coded stream).
    body: &'a [u8],
    trailer: Option<Trailer>,
}

impl<'a> Patch<'a> {
    /// Reads a patch (with or without a signature trailer): magic, version, header checksum,
    /// sizes and the operations' checksum. The operations themselves are checked as they run.
    pub fn parse(bytes: &'a [u8]) -> Result<Patch<'a>> {
        let (content, trailer) = signature::split(bytes)?;
        let header_bytes = content.get(..PATCH_HEADER_SIZE).ok_or(Error::Truncated {
            what: "patch header",
            needed: PATCH_HEADER_SIZE as u64,
            available: content.len() as u64,
        })?;
        if header_bytes[..8] != PATCH_MAGIC {
            return Err(Error::InvalidPatch(
                "not a pocketrec patch (bad magic bytes)",
            ));
        }
        let field = |at: usize| read_u64(header_bytes, at).unwrap_or(0);
        let word = |at: usize| read_u32(header_bytes, at).unwrap_or(0);
        let stored_crc = word(124);
        let computed = crc32c(&header_bytes[..124]);
        if stored_crc != computed {
            return Err(Error::InvalidPatch("the header checksum does not match"));
        }
        let major = u16::from_le_bytes([header_bytes[8], header_bytes[9]]);
        let minor = u16::from_le_bytes([header_bytes[10], header_bytes[11]]);
        if major != PATCH_MAJOR || minor > PATCH_MINOR {
            return Err(Error::UnsupportedVersion { major, minor });
        }
        if word(12) as usize != PATCH_HEADER_SIZE {
            return Err(Error::InvalidPatch("header_size is not 128"));
        }
        let mut header = PatchHeader {
            minor,
            patch_size: field(16),
            base_size: field(24),
            base_sha256: [0; 32],
            result_size: field(64),
            result_sha256: [0; 32],
            op_count: field(112),
            literal_coding: match word(108) {
                0 => LiteralCoding::Inline,
                1 if minor >= 1 => LiteralCoding::Coded,
                _ => return Err(Error::InvalidPatch("unknown literal coding")),
            },
        };
        header.base_sha256.copy_from_slice(&header_bytes[32..64]);
        header.result_sha256.copy_from_slice(&header_bytes[72..104]);
        if header.patch_size != content.len() as u64 {
            return Err(Error::Truncated {
                what: "patch (size recorded in its header)",
                needed: header.patch_size,
                available: content.len() as u64,
            });
        }
        let body = &content[PATCH_HEADER_SIZE..];
        let computed = crc32c(body);
        if computed != word(104) {
            return Err(Error::InvalidPatch(
                "the operations' checksum does not match (damaged patch)",
            ));
        }
        if header.literal_coding == LiteralCoding::Coded && body.len() < 5 {
            return Err(Error::InvalidPatch(
                "the coded operations are shorter than their first 5 bytes",
            ));
        }
        Ok(Patch {
            header,
            body,
            trailer,
        })
    }

    /// The header.
    pub fn header(&self) -> &PatchHeader {
        &self.header
    }

    /// The signature trailer, if the patch is signed (not checked here: see [`apply_signed`]).
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    /// The operations, in order, each decoded and checked for form (not against a base).
    pub fn ops(&self) -> Ops<'a> {
        self.ops_with(range_coder::ByteModels::default())
    }

    /// [`Patch::ops`] with the coder's models given: the runtime passes them by reference, so
    /// that their 7 KiB stay in one place on a device's stack.
    fn ops_with<M: BorrowMut<range_coder::ByteModels>>(&self, models: M) -> Ops<'a, M> {
        let coded = match self.header.literal_coding {
            LiteralCoding::Inline => None,
            LiteralCoding::Coded => range_coder::Decoder::new(self.body).map(|decoder| CodedOps {
                decoder,
                models,
                written: 0,
                pending: 0,
                pending_replace: false,
                previous_tag: 0,
            }),
        };
        Ops {
            rest: self.body,
            done: false,
            coded,
        }
    }
}

/// The operations of a patch ([`Patch::ops`]). `M` holds the models of a coded body's decoder.
#[derive(Clone, Debug)]
pub struct Ops<'a, M = range_coder::ByteModels> {
    /// The operations' bytes not yet read (a body stored as bytes).
    rest: &'a [u8],
    done: bool,
    /// With a coded body: its decoder.
    coded: Option<CodedOps<'a, M>>,
}

/// The state of a range-coded body: the decoder, its models, and what the contexts need.
#[derive(Clone, Debug)]
struct CodedOps<'a, M> {
    decoder: range_coder::Decoder<'a>,
    models: M,
    /// The result offset of the next byte written.
    written: u64,
    /// Literal bytes of the last replace or insert not yet read.
    pending: u64,
    pending_replace: bool,
    /// The tag of the previous operation (the context of the next one's first byte).
    previous_tag: u8,
}

impl<'a, M: BorrowMut<range_coder::ByteModels>> Iterator for Ops<'a, M> {
    type Item = Result<Op<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // Literals the caller did not read are skipped.
        while self.coded.as_ref().is_some_and(|c| c.pending > 0) {
            if let Err(e) = self.literal() {
                self.done = true;
                return Some(Err(e));
            }
        }
        let op = self.decode();
        match op {
            Ok(Op::End) => {
                self.done = true;
                if self.coded.is_none() && !self.rest.is_empty() {
                    return Some(Err(Error::InvalidPatch("bytes follow the end operation")));
                }
            }
            Err(_) => self.done = true,
            Ok(_) => {}
        }
        Some(op)
    }
}

impl<'a, M: BorrowMut<range_coder::ByteModels>> Ops<'a, M> {
    fn decode(&mut self) -> Result<Op<'a>> {
        if self.coded.is_none() && self.rest.is_empty() {
            return Err(Error::InvalidPatch(
                "the operations stop without an end operation (truncated patch)",
            ));
        }
        let previous = self.coded.as_ref().map_or(0, |c| c.previous_tag);
        let first = self.varint(
            range_coder::header_context(Some(previous)),
            range_coder::header_context(None),
        )?;
        let (tag, value) = (first & 3, first >> 2);
        let field = range_coder::field_context();
        let op = match tag {
            TAG_COPY => Op::Copy { len: value },
            TAG_REPLACE if self.coded.is_some() => Op::CodedReplace { len: value },
            TAG_INSERT if self.coded.is_some() => Op::CodedInsert { len: value },
            TAG_REPLACE => Op::Replace(self.bytes(value)?),
            TAG_INSERT => Op::Insert(self.bytes(value)?),
            // The two bits leave only TAG_EXTENDED.
            _ => match value {
                EXT_END => Op::End,
                EXT_SEEK => Op::Seek(unzigzag(self.varint(field, field)?)),
                EXT_COPY_ADD => {
                    let count = self.varint(field, field)?;
                    let width = self
                        .byte(field)
                        .map_err(|_| Error::InvalidPatch("a copy-add is cut short"))?;
                    if !matches!(width, 2 | 4 | 8) {
                        return Err(Error::InvalidPatch("a copy-add's width is not 2, 4 or 8"));
                    }
                    let delta = unzigzag(self.varint(field, field)?);
                    Op::CopyAdd {
                        count,
                        width,
                        delta,
                    }
                }
                EXT_COPY_NIBBLES => Op::CopyNibbles {
                    len: self.varint(field, field)?,
                },
                EXT_RECOMPUTE => Op::Recompute {
                    len: self.varint(field, field)?,
                },
                _ => return Err(Error::InvalidPatch("unknown operation")),
            },
        };
        if let Some(coded) = self.coded.as_mut() {
            coded.previous_tag = tag as u8;
            match op {
                Op::Copy { len } | Op::CopyNibbles { len } | Op::Recompute { len } => {
                    coded.written = coded.written.wrapping_add(len);
                }
                Op::CopyAdd { count, width, .. } => {
                    coded.written = coded
                        .written
                        .wrapping_add(count.wrapping_mul(u64::from(width)));
                }
                Op::CodedReplace { len } | Op::CodedInsert { len } => {
                    coded.pending = len;
                    coded.pending_replace = tag == TAG_REPLACE;
                }
                _ => {}
            }
        }
        Ok(op)
    }

    /// The next byte of the operations, coded in `context` when the body is coded.
    fn byte(&mut self, context: usize) -> Result<u8> {
        match self.coded.as_mut() {
            Some(coded) => coded
                .decoder
                .byte(coded.models.borrow_mut(), context)
                .ok_or(Error::InvalidPatch(
                    "the coded operations end early (truncated patch)",
                )),
            None => {
                let (&byte, rest) = self.rest.split_first().ok_or(Error::InvalidPatch(
                    "the operations are cut short (truncated patch)",
                ))?;
                self.rest = rest;
                Ok(byte)
            }
        }
    }

    /// An unsigned LEB128 varint of at most 10 bytes: its first byte coded in `first`, the
    /// others in `more`.
    fn varint(&mut self, first: usize, more: usize) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self
                .byte(if i == 0 { first } else { more })
                .map_err(|_| Error::InvalidPatch("a varint is cut short or too long"))?;
            if i == 9 && byte > 1 {
                return Err(Error::InvalidPatch("a varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::InvalidPatch("a varint is cut short or too long"))
    }

    fn bytes(&mut self, len: u64) -> Result<&'a [u8]> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= self.rest.len())
            .ok_or(Error::InvalidPatch(
                "literal bytes run past the end of the patch",
            ))?;
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    /// The next literal byte of the last [`Op::CodedReplace`] or [`Op::CodedInsert`] as coded:
    /// a replace's byte is still to be XORed with the base byte it replaces.
    fn literal(&mut self) -> Result<u8> {
        let coded = self.coded.as_mut().ok_or(Error::InvalidPatch(
            "a coded literal in a patch without a coded body",
        ))?;
        if coded.pending == 0 {
            return Err(Error::InvalidPatch(
                "more literal bytes read than the operation has",
            ));
        }
        let context = range_coder::literal_context(coded.pending_replace, coded.written);
        let byte = coded
            .decoder
            .byte(coded.models.borrow_mut(), context)
            .ok_or(Error::InvalidPatch(
                "the coded literals end early (truncated patch)",
            ))?;
        coded.pending -= 1;
        coded.written = coded.written.wrapping_add(1);
        Ok(byte)
    }
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(feature = "alloc")]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Where a patch writes its result: a flash writer, a file, a buffer. Bytes arrive in order,
/// each byte once.
pub trait Sink {
    /// Takes the next bytes of the result. An error stops the patch and is returned by
    /// [`apply`] (use [`Error::Sink`] for a sink's own failures).
    fn write(&mut self, bytes: &[u8]) -> Result<()>;

    /// The most bytes this sink can take, if it knows: [`apply`] refuses a result that does not
    /// fit before writing anything.
    fn capacity(&self) -> Option<u64> {
        None
    }

    /// The sink's bytes from the start of the result, if it can give them back: at least
    /// those written so far (a buffer gives all of itself; what lies past the written bytes is
    /// not read). A patch that recomputes a section from the result ([`Op::Recompute`]) needs
    /// it; a stream (the default) cannot, and such a patch is refused with [`Error::Sink`].
    fn read_back(&self) -> Option<&[u8]> {
        None
    }
}

/// A [`Sink`] into a caller's buffer (a second flash slot, a RAM buffer).
#[derive(Debug)]
pub struct SliceSink<'a> {
    buffer: &'a mut [u8],
    len: usize,
}

impl<'a> SliceSink<'a> {
    /// A sink that fills `buffer` from its start.
    pub fn new(buffer: &'a mut [u8]) -> Self {
        SliceSink { buffer, len: 0 }
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl Sink for SliceSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self
            .len
            .checked_add(bytes.len())
            .filter(|&end| end <= self.buffer.len())
            .ok_or(Error::Sink(
                "the output buffer is smaller than the patched file",
            ))?;
        self.buffer[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn capacity(&self) -> Option<u64> {
        Some((self.buffer.len() - self.len) as u64)
    }

    fn read_back(&self) -> Option<&[u8]> {
        Some(self.buffer)
    }
}

/// A [`Sink`] over any `std::io::Write` (a file, a socket).
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct IoSink<W>(pub W);

#[cfg(feature = "std")]
impl<W: std::io::Write> Sink for IoSink<W> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.0.write_all(bytes).map_err(Error::Io)
    }
}

/// What applying a patch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PatchSummary {
    /// Bytes of the result.
    pub result_size: u64,
    /// Of those, bytes copied from the base (copy and copy-add operations).
    pub copied: u64,
    /// Of those, bytes carried in the patch (replace and insert operations).
    pub carried: u64,
    /// Of those, bytes the device recomputed ([`Op::Recompute`]).
    pub derived: u64,
    /// Operations run, `End` included.
    pub ops: u64,
}

/// Hashes and counts what the operations write, and passes it on to a sink if there is one.
struct Output<'s, S: Sink + ?Sized> {
    hasher: Sha256,
    summary: PatchSummary,
    limit: u64,
    sink: Option<&'s mut S>,
    /// Bytes the first pass could not hash (recomputed from a result it does not keep).
    unhashed: bool,
}

impl<S: Sink + ?Sized> Output<'_, S> {
    fn emit(&mut self, bytes: &[u8], copied: bool) -> Result<()> {
        self.write(bytes)?;
        let n = bytes.len() as u64;
        if copied {
            self.summary.copied += n;
        } else {
            self.summary.carried += n;
        }
        Ok(())
    }

    /// Hashes, counts and passes on the next bytes of the result.
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let n = bytes.len() as u64;
        let total = self
            .summary
            .result_size
            .checked_add(n)
            .filter(|&t| t <= self.limit)
            .ok_or(Error::PatchResult(
                "the operations write more bytes than the result's size",
            ))?;
        self.hasher.update(bytes);
        self.summary.result_size = total;
        match self.sink.as_deref_mut() {
            Some(sink) => sink.write(bytes),
            None => Ok(()),
        }
    }
}

/// Runs the operations over `base` into `out`, and checks the result's size and SHA-256.
#[inline(never)]
fn run<S: Sink + ?Sized>(base: &[u8], patch: &Patch<'_>, out: &mut Output<'_, S>) -> Result<()> {
    let base_len = base.len() as u64;
    let mut cursor: u64 = 0;
    let mut models = range_coder::ByteModels::default();
    let mut ops = patch.ops_with(&mut models);
    let span = |cursor: u64, len: u64, what: &'static str| -> Result<(usize, usize)> {
        let end = cursor
            .checked_add(len)
            .filter(|&end| end <= base_len)
            .ok_or(Error::InvalidPatch(what))?;
        Ok((cursor as usize, end as usize))
    };
    while let Some(op) = ops.next() {
        out.summary.ops += 1;
        match op? {
            Op::Copy { len } => {
                let (start, end) = span(cursor, len, "a copy reads past the end of the base")?;
                out.emit(&base[start..end], true)?;
                cursor = end as u64;
            }
            Op::Replace(bytes) => {
                let (_, end) = span(
                    cursor,
                    bytes.len() as u64,
                    "a replace moves past the end of the base",
                )?;
                out.emit(bytes, false)?;
                cursor = end as u64;
            }
            Op::Insert(bytes) => out.emit(bytes, false)?,
            Op::Seek(delta) => {
                cursor = cursor
                    .checked_add_signed(delta)
                    .filter(|&c| c <= base_len)
                    .ok_or(Error::InvalidPatch("a seek leaves the base"))?;
            }
            Op::CopyAdd {
                count,
                width,
                delta,
            } => {
                let bytes = count
                    .checked_mul(u64::from(width))
                    .ok_or(Error::InvalidPatch("a copy-add's length overflows"))?;
                let (start, end) =
                    span(cursor, bytes, "a copy-add reads past the end of the base")?;
                copy_add(&base[start..end], usize::from(width), delta, out)?;
                cursor = end as u64;
            }
            Op::CodedReplace { len } => {
                let (start, end) = span(cursor, len, "a replace moves past the end of the base")?;
                decode_literals(&mut ops, Some(&base[start..end]), len, out)?;
                cursor = end as u64;
            }
            Op::CodedInsert { len } => decode_literals(&mut ops, None, len, out)?,
            Op::CopyNibbles { len } => {
                let reads = len
                    .checked_add(1)
                    .ok_or(Error::InvalidPatch("a nibble copy's length overflows"))?;
                let (start, end) = span(
                    cursor,
                    reads,
                    "a nibble copy reads past the end of the base",
                )?;
                copy_nibbles(&base[start..end], out)?;
                cursor = (end - 1) as u64;
            }
            Op::Recompute { len } => recompute(len, out)?,
            Op::End => {}
        }
    }
    if out.summary.ops != patch.header.op_count {
        return Err(Error::InvalidPatch(
            "the number of operations differs from the header's",
        ));
    }
    if out.summary.result_size != patch.header.result_size {
        return Err(Error::PatchResult(
            "the operations write fewer bytes than the result's size",
        ));
    }
    if out.unhashed {
        // The first pass of a patch with recomputed bytes: the second checks the hash.
        return Ok(());
    }
    let digest: [u8; 32] = out.hasher.clone().finalize().into();
    if digest != patch.header.result_sha256 {
        return Err(Error::PatchResult(
            "its SHA-256 differs from the one the patch names",
        ));
    }
    Ok(())
}

/// Writes `len` bytes recomputed from the result ([`Op::Recompute`]): the body of the fold-in
/// or block-bounds section whose header the result ends with, computed from the table the
/// sink gives back. The first pass (no sink) only counts them. Without the `alloc` feature,
/// [`derive::CHUNK_BYTES`] bytes per pass over the table, on the stack: one decoded row (2
/// KiB), 256 f64 sums (2 KiB) and the bytes (1 KiB), only while the operation runs; with it,
/// up to a d = 512 Gramian's bytes per pass (one pass at d = 64). Both give the same bits.
#[inline(never)]
fn recompute<S: Sink + ?Sized>(len: u64, out: &mut Output<'_, S>) -> Result<()> {
    let at = out.summary.result_size;
    let end = at
        .checked_add(len)
        .filter(|&end| end <= out.limit)
        .ok_or(Error::PatchResult(
            "the operations write more bytes than the result's size",
        ))?;
    if out.sink.is_none() {
        out.summary.result_size = end;
        out.summary.derived += len;
        out.unhashed = true;
        return Ok(());
    }
    let len_bytes =
        usize::try_from(len).map_err(|_| Error::InvalidPatch("recomputed bytes are too long"))?;
    let mut row = [0.0f32; MAX_STACK_DIM];
    #[cfg(feature = "alloc")]
    let (mut sums, mut bytes) = {
        // At most the largest Gramian's (d = 512), however long the patch says.
        let chunk = len_bytes.min(4 * crate::format::packed_len(MAX_STACK_DIM));
        (alloc::vec![0.0f64; chunk / 4], alloc::vec![0u8; chunk])
    };
    #[cfg(not(feature = "alloc"))]
    let (mut sums, mut bytes) = (
        [0.0f64; derive::CHUNK_BYTES / 4],
        [0u8; derive::CHUNK_BYTES],
    );
    let chunk = bytes.len().max(4);
    let mut done = 0usize;
    while done < len_bytes {
        let n = (len_bytes - done).min(chunk);
        let result = out
            .sink
            .as_deref()
            .and_then(|sink| sink.read_back())
            .ok_or(Error::Sink(
                "a patch that recomputes bytes from its result needs a sink that gives back what \
                 it wrote (a buffer, or apply_file)",
            ))?;
        derive::recompute_chunk(
            result,
            out.limit,
            at..end,
            done,
            &mut bytes[..n],
            &mut sums,
            &mut row,
        )?;
        out.write(&bytes[..n])?;
        out.summary.derived += n as u64;
        done += n;
    }
    Ok(())
}

/// Writes the integers of `source` (little-endian, `width` bytes each) plus `delta`, through a
/// 64-byte buffer.
fn copy_add<S: Sink + ?Sized>(
    source: &[u8],
    width: usize,
    delta: i64,
    out: &mut Output<'_, S>,
) -> Result<()> {
    let max = match width {
        2 => u64::from(u16::MAX),
        4 => u64::from(u32::MAX),
        _ => u64::MAX,
    };
    let mut buffer = [0u8; 64];
    for chunk in source.chunks(64) {
        for (from, to) in chunk
            .chunks_exact(width)
            .zip(buffer.chunks_exact_mut(width))
        {
            let mut raw = [0u8; 8];
            raw[..width].copy_from_slice(from);
            let value = u64::from_le_bytes(raw)
                .checked_add_signed(delta)
                .filter(|&v| v <= max)
                .ok_or(Error::InvalidPatch(
                    "a copy-add takes an integer out of its range",
                ))?;
            to.copy_from_slice(&value.to_le_bytes()[..width]);
        }
        out.emit(&buffer[..chunk.len()], true)?;
    }
    Ok(())
}

/// Writes the `len` coded literal bytes of the operation `ops` just gave (each XORed with the
/// base byte it replaces, for a replace), through a 64-byte buffer.
fn decode_literals<S: Sink + ?Sized, M: BorrowMut<range_coder::ByteModels>>(
    ops: &mut Ops<'_, M>,
    replaced: Option<&[u8]>,
    len: u64,
    out: &mut Output<'_, S>,
) -> Result<()> {
    let mut buffer = [0u8; 64];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(64) as usize;
        for (k, slot) in buffer[..n].iter_mut().enumerate() {
            let base_byte = replaced.map_or(0, |r| r[done as usize + k]);
            *slot = ops.literal()? ^ base_byte;
        }
        out.emit(&buffer[..n], false)?;
        done += n as u64;
    }
    Ok(())
}

/// Writes `source.len() - 1` bytes, each made of the high nibble of a source byte and the low
/// nibble of the next, through a 64-byte buffer.
fn copy_nibbles<S: Sink + ?Sized>(source: &[u8], out: &mut Output<'_, S>) -> Result<()> {
    let mut buffer = [0u8; 64];
    let mut start = 0;
    while start + 1 < source.len() {
        let end = (start + 64).min(source.len() - 1);
        for (to, pair) in buffer.iter_mut().zip(source[start..=end].windows(2)) {
            *to = (pair[0] >> 4) | (pair[1] << 4);
        }
        out.emit(&buffer[..end - start], true)?;
        start = end;
    }
    Ok(())
}

/// Checks that `patch` applies to `base` and gives the result it names, without writing
/// anything. Returns the patch's header. A patch that recomputes bytes from its result
/// ([`Op::Recompute`]) is checked in everything but its result's hash, which only [`apply`] can
/// check.
pub fn check(base: &[u8], patch: &[u8]) -> Result<PatchHeader> {
    let patch = Patch::parse(patch)?;
    check_parsed(base, &patch)?;
    Ok(patch.header)
}

fn check_parsed(base: &[u8], patch: &Patch<'_>) -> Result<PatchSummary> {
    let header = &patch.header;
    if base.len() as u64 != header.base_size || signature::sha256(base) != header.base_sha256 {
        return Err(Error::WrongBase {
            expected_size: header.base_size,
            actual_size: base.len() as u64,
        });
    }
    let mut dry: Output<'_, SliceSink<'_>> = Output {
        hasher: Sha256::new(),
        summary: PatchSummary::default(),
        limit: header.result_size,
        sink: None,
        unhashed: false,
    };
    run(base, patch, &mut dry)?;
    Ok(dry.summary)
}

/// Applies `patch` to `base`, streaming the result into `sink`.
///
/// Nothing reaches the sink unless the base is the one the patch names (size and SHA-256:
/// [`Error::WrongBase`]), the patch is well formed ([`Error::InvalidPatch`]) and its operations
/// give exactly the result it names ([`Error::PatchResult`]): a first pass runs them without
/// writing. The second pass writes and checks the result's SHA-256 again. Memory: a 64-byte
/// buffer and the SHA-256 state on the stack; no heap.
///
/// A patch that recomputes bytes from its result ([`Op::Recompute`], minor 2: the fold-in
/// Gramian, block bounds) needs a sink that
/// gives back what it wrote ([`Sink::read_back`]: [`SliceSink`]), and its first pass cannot
/// hash the recomputed bytes: such a result's SHA-256 is checked once, at the end, after the
/// sink received it (a refused result is then in the sink, and must not be used).
pub fn apply<S: Sink + ?Sized>(base: &[u8], patch: &[u8], sink: &mut S) -> Result<PatchSummary> {
    let patch = Patch::parse(patch)?;
    apply_parsed(base, &patch, sink)
}

fn apply_parsed<S: Sink + ?Sized>(
    base: &[u8],
    patch: &Patch<'_>,
    sink: &mut S,
) -> Result<PatchSummary> {
    if let Some(capacity) = sink.capacity()
        && capacity < patch.header.result_size
    {
        return Err(Error::Sink(
            "the output buffer is smaller than the patched file",
        ));
    }
    check_parsed(base, patch)?;
    write_checked(base, patch, sink)
}

/// The second pass: runs the operations into `sink`, hashing again. Only after
/// [`check_parsed`] succeeded.
fn write_checked<S: Sink + ?Sized>(
    base: &[u8],
    patch: &Patch<'_>,
    sink: &mut S,
) -> Result<PatchSummary> {
    let mut out = Output {
        hasher: Sha256::new(),
        summary: PatchSummary::default(),
        limit: patch.header.result_size,
        sink: Some(sink),
        unhashed: false,
    };
    run(base, patch, &mut out)?;
    Ok(out.summary)
}

/// [`apply`], for a patch that must be signed by `public_key`: an unsigned patch
/// ([`Error::Unsigned`]), one signed by another key ([`Error::WrongKey`]) or one changed after
/// signing ([`Error::Tampered`]) is refused before anything else is read.
#[cfg(feature = "signatures")]
pub fn apply_signed<S: Sink + ?Sized>(
    base: &[u8],
    patch: &[u8],
    public_key: &[u8; 32],
    sink: &mut S,
) -> Result<PatchSummary> {
    signature::verify(patch, public_key)?;
    apply(base, patch, sink)
}

/// Encodes operations as a patch from `base` to `result` (header, operations, no signature).
/// The operations are not checked here: [`check`] does that.
#[cfg(feature = "alloc")]
pub fn encode(base: &[u8], result: &[u8], ops: &[Op<'_>]) -> alloc::vec::Vec<u8> {
    let mut body = alloc::vec::Vec::new();
    for op in ops {
        encode_op(op, &mut body);
    }
    let minor = if ops.iter().any(|op| matches!(op, Op::Recompute { .. })) {
        2
    } else if ops.iter().any(|op| matches!(op, Op::CopyNibbles { .. })) {
        1
    } else {
        0
    };
    encode_header(
        base,
        result.len() as u64,
        &signature::sha256(result),
        ops.len() as u64,
        &body,
        minor,
        LiteralCoding::Inline,
    )
}

/// Encodes operations as a patch from `base` to `result` with a coded body (minor 1): the
/// operations and the bytes of every [`Op::Replace`] and [`Op::Insert`], range coded in one
/// stream (a replaced byte XORed with the base byte it replaces). Smaller than [`encode`]
/// wherever the literals are values that moved a little and the operations repeat their shapes.
/// The operations are not checked here: [`check`] does that.
#[cfg(feature = "alloc")]
pub fn encode_coded(base: &[u8], result: &[u8], ops: &[Op<'_>]) -> alloc::vec::Vec<u8> {
    let mut models = range_coder::ByteModels::default();
    let mut coder = range_coder::Encoder::default();
    let (mut cursor, mut written, mut previous_tag) = (0u64, 0u64, 0u8);
    let (mut header, mut fields) = (alloc::vec::Vec::new(), alloc::vec::Vec::new());
    for op in ops {
        let (first, _) = op_parts(op, &mut fields);
        header.clear();
        push_varint(first, &mut header);
        for (i, &byte) in header.iter().enumerate() {
            let previous = (i == 0).then_some(previous_tag);
            coder.byte(&mut models, range_coder::header_context(previous), byte);
        }
        for &byte in &fields {
            coder.byte(&mut models, range_coder::field_context(), byte);
        }
        previous_tag = (first & 3) as u8;
        match *op {
            Op::Replace(bytes) => {
                for (k, &byte) in bytes.iter().enumerate() {
                    let old = base.get(cursor as usize + k).copied().unwrap_or(0);
                    let context = range_coder::literal_context(true, written + k as u64);
                    coder.byte(&mut models, context, byte ^ old);
                }
                cursor += bytes.len() as u64;
                written += bytes.len() as u64;
            }
            Op::Insert(bytes) => {
                for (k, &byte) in bytes.iter().enumerate() {
                    let context = range_coder::literal_context(false, written + k as u64);
                    coder.byte(&mut models, context, byte);
                }
                written += bytes.len() as u64;
            }
            Op::Copy { len } | Op::CopyNibbles { len } => {
                cursor += len;
                written += len;
            }
            Op::Recompute { len } => written += len,
            Op::CopyAdd { count, width, .. } => {
                cursor += count * u64::from(width);
                written += count * u64::from(width);
            }
            Op::Seek(delta) => cursor = cursor.wrapping_add_signed(delta),
            Op::CodedReplace { .. } | Op::CodedInsert { .. } | Op::End => {}
        }
    }
    encode_header(
        base,
        result.len() as u64,
        &signature::sha256(result),
        ops.len() as u64,
        &coder.finish(),
        if ops.iter().any(|op| matches!(op, Op::Recompute { .. })) {
            2
        } else {
            1
        },
        LiteralCoding::Coded,
    )
}

/// Appends `v` as an unsigned LEB128 varint.
#[cfg(feature = "alloc")]
fn push_varint(mut v: u64, out: &mut alloc::vec::Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// An operation's first varint (tag and `n`), its further fields' bytes (into `fields`) and its
/// literal bytes.
#[cfg(feature = "alloc")]
fn op_parts<'o>(op: &Op<'o>, fields: &mut alloc::vec::Vec<u8>) -> (u64, &'o [u8]) {
    fields.clear();
    match *op {
        Op::Copy { len } => (len << 2 | TAG_COPY, &[]),
        Op::Replace(bytes) => ((bytes.len() as u64) << 2 | TAG_REPLACE, bytes),
        Op::Insert(bytes) => ((bytes.len() as u64) << 2 | TAG_INSERT, bytes),
        Op::CodedReplace { len } => (len << 2 | TAG_REPLACE, &[]),
        Op::CodedInsert { len } => (len << 2 | TAG_INSERT, &[]),
        Op::Seek(delta) => {
            push_varint(zigzag(delta), fields);
            (EXT_SEEK << 2 | TAG_EXTENDED, &[])
        }
        Op::CopyAdd {
            count,
            width,
            delta,
        } => {
            push_varint(count, fields);
            fields.push(width);
            push_varint(zigzag(delta), fields);
            (EXT_COPY_ADD << 2 | TAG_EXTENDED, &[])
        }
        Op::CopyNibbles { len } => {
            push_varint(len, fields);
            (EXT_COPY_NIBBLES << 2 | TAG_EXTENDED, &[])
        }
        Op::Recompute { len } => {
            push_varint(len, fields);
            (EXT_RECOMPUTE << 2 | TAG_EXTENDED, &[])
        }
        Op::End => (EXT_END << 2 | TAG_EXTENDED, &[]),
    }
}

/// A patch from encoded operations `body` (as bytes, or a coded body with
/// [`LiteralCoding::Coded`]): the header (sizes, hashes, checksums, the operation count as
/// given, minor [`PATCH_MINOR`]) followed by `body`. Nothing is checked; [`encode`] is the usual
/// way in, this one serves tools (the fuzz target) that make headers for arbitrary bodies.
#[cfg(feature = "alloc")]
pub fn encode_raw(
    base: &[u8],
    result_size: u64,
    result_sha256: &[u8; 32],
    op_count: u64,
    body: &[u8],
    coding: LiteralCoding,
) -> alloc::vec::Vec<u8> {
    encode_header(
        base,
        result_size,
        result_sha256,
        op_count,
        body,
        PATCH_MINOR,
        coding,
    )
}

/// The header for `body`, followed by `body`.
#[cfg(feature = "alloc")]
fn encode_header(
    base: &[u8],
    result_size: u64,
    result_sha256: &[u8; 32],
    op_count: u64,
    body: &[u8],
    minor: u16,
    coding: LiteralCoding,
) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::with_capacity(PATCH_HEADER_SIZE + body.len());
    out.extend_from_slice(&PATCH_MAGIC);
    out.extend_from_slice(&PATCH_MAJOR.to_le_bytes());
    out.extend_from_slice(&minor.to_le_bytes());
    out.extend_from_slice(&(PATCH_HEADER_SIZE as u32).to_le_bytes());
    out.extend_from_slice(&((PATCH_HEADER_SIZE + body.len()) as u64).to_le_bytes());
    out.extend_from_slice(&(base.len() as u64).to_le_bytes());
    out.extend_from_slice(&signature::sha256(base));
    out.extend_from_slice(&result_size.to_le_bytes());
    out.extend_from_slice(result_sha256);
    out.extend_from_slice(&crc32c(body).to_le_bytes());
    let coding_word: u32 = match coding {
        LiteralCoding::Inline => 0,
        LiteralCoding::Coded => 1,
    };
    out.extend_from_slice(&coding_word.to_le_bytes());
    out.extend_from_slice(&op_count.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len(), PATCH_HEADER_SIZE);
    out.extend_from_slice(body);
    out
}

/// Appends one operation's bytes.
#[cfg(feature = "alloc")]
pub fn encode_op(op: &Op<'_>, out: &mut alloc::vec::Vec<u8>) {
    let mut fields = alloc::vec::Vec::new();
    let (first, literal) = op_parts(op, &mut fields);
    push_varint(first, out);
    out.extend_from_slice(&fields);
    out.extend_from_slice(literal);
}

/// Applies the patch in `patch_path` to the file `base_path` and writes the result to
/// `target` atomically: into a new temporary file next to `target`, flushed to disk, then renamed
/// over it (the directory is synced too). On any error, or a crash at any point, `target` is
/// either untouched or the complete new file; `target` may be `base_path` itself. With
/// `public_key`, the patch must be signed by that key.
#[cfg(feature = "std")]
pub fn apply_file(
    base_path: &std::path::Path,
    patch_path: &std::path::Path,
    target: &std::path::Path,
    public_key: Option<&[u8; 32]>,
) -> Result<PatchSummary> {
    let base = std::fs::read(base_path)?;
    let patch_bytes = std::fs::read(patch_path)?;
    match public_key {
        #[cfg(feature = "signatures")]
        Some(key) => {
            signature::verify(&patch_bytes, key)?;
        }
        #[cfg(not(feature = "signatures"))]
        Some(_) => {
            return Err(Error::Unsupported {
                what: "signature check (built without the `signatures` feature)",
                code: 0,
            });
        }
        None => {}
    }
    let patch = Patch::parse(&patch_bytes)?;
    // Checked before the temporary file is created, so a refused patch leaves no file behind.
    let first = check_parsed(&base, &patch)?;
    if first.derived > 0 {
        // Recomputed bytes are read back from the result: build it in memory, then write it.
        let size = usize::try_from(patch.header.result_size)
            .map_err(|_| Error::Sink("the patched file does not fit in memory"))?;
        let mut buffer = alloc::vec![0u8; size];
        let summary = write_checked(&base, &patch, &mut SliceSink::new(&mut buffer))?;
        return crate::atomic::write_with(target, |file| {
            std::io::Write::write_all(file, &buffer)?;
            Ok(summary)
        });
    }
    crate::atomic::write_with(target, |file| {
        let mut sink = IoSink(std::io::BufWriter::new(file));
        let summary = write_checked(&base, &patch, &mut sink)?;
        std::io::Write::flush(&mut sink.0)?;
        Ok(summary)
    })
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn sample() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let base: Vec<u8> = (0..200u32).flat_map(|i| (i * 10).to_le_bytes()).collect();
        // The result: the first 50 integers + 3, a replaced byte run, an insert, a seek back.
        let mut result = Vec::new();
        let mut ops = Vec::new();
        for i in 0..50u32 {
            result.extend_from_slice(&(i * 10 + 3).to_le_bytes());
        }
        ops.push(Op::CopyAdd {
            count: 50,
            width: 4,
            delta: 3,
        });
        result.extend_from_slice(b"abcd");
        ops.push(Op::Replace(b"abcd"));
        result.extend_from_slice(b"xyz");
        ops.push(Op::Insert(b"xyz"));
        result.extend_from_slice(&base[204..600]);
        ops.push(Op::Copy { len: 396 });
        ops.push(Op::Seek(-596));
        result.extend_from_slice(&base[4..24]);
        ops.push(Op::Copy { len: 20 });
        // The next 70 bytes' nibbles, one nibble later (more than the 64-byte buffer).
        for j in 24..94 {
            result.push((base[j] >> 4) | (base[j + 1] << 4));
        }
        ops.push(Op::CopyNibbles { len: 70 });
        ops.push(Op::End);
        let patch = encode(&base, &result, &ops);
        (base, result, patch)
    }

    #[test]
    fn every_operation_applies() {
        let (base, result, patch) = sample();
        let mut out = alloc::vec![0u8; result.len()];
        let mut sink = SliceSink::new(&mut out);
        let summary = apply(&base, &patch, &mut sink).unwrap();
        assert_eq!(sink.written(), &result[..]);
        assert_eq!(summary.result_size, result.len() as u64);
        assert_eq!(summary.carried, 7);
        assert_eq!(summary.ops, 8);
        assert_eq!(Patch::parse(&patch).unwrap().header().minor, 1);
    }

    #[test]
    fn a_patch_without_nibble_copies_stays_minor_0_and_a_newer_minor_is_refused() {
        let base = [7u8; 8];
        let patch = encode(&base, &base, &[Op::Copy { len: 8 }, Op::End]);
        assert_eq!(Patch::parse(&patch).unwrap().header().minor, 0);
        let newer = encode_header(
            &base,
            8,
            &signature::sha256(&base),
            2,
            &patch[PATCH_HEADER_SIZE..],
            PATCH_MINOR + 1,
            LiteralCoding::Inline,
        );
        assert!(matches!(
            Patch::parse(&newer),
            Err(Error::UnsupportedVersion { major: 1, minor }) if minor == PATCH_MINOR + 1
        ));
    }

    #[test]
    fn coded_literals_give_the_same_result_and_damage_is_refused() {
        // The sample's operations, and a longer run of slightly changed floats.
        let base: Vec<u8> = (0..2_000u32)
            .flat_map(|i| (1.0f32 + i as f32 / 1_000.0).to_le_bytes())
            .collect();
        let changed: Vec<u8> = (0..2_000u32)
            .flat_map(|i| (1.0f32 + i as f32 / 1_000.0 + 0.000_3).to_le_bytes())
            .collect();
        let mut result = changed[..4_000].to_vec();
        result.extend_from_slice(b"new bytes");
        result.extend_from_slice(&base[4_000..]);
        let ops = [
            Op::Replace(&changed[..4_000]),
            Op::Insert(b"new bytes"),
            Op::Copy { len: 4_000 },
            Op::End,
        ];
        let inline = encode(&base, &result, &ops);
        let coded = encode_coded(&base, &result, &ops);
        let header = Patch::parse(&coded).unwrap().header;
        assert_eq!(header.literal_coding, LiteralCoding::Coded);
        assert_eq!(header.minor, 1);
        // XORed with the floats they replace, the new floats' high bytes are mostly zero.
        assert!(
            coded.len() < inline.len() * 3 / 4,
            "{} against {}",
            coded.len(),
            inline.len()
        );
        let mut out = alloc::vec![0u8; result.len()];
        let mut sink = SliceSink::new(&mut out);
        let summary = apply(&base, &coded, &mut sink).unwrap();
        assert_eq!(sink.written(), &result[..]);
        assert_eq!(summary.carried, 4_009);
        for len in (0..coded.len()).step_by(7) {
            assert!(check(&base, &coded[..len]).is_err(), "cut at {len}");
        }
        for at in 0..coded.len() {
            let mut bad = coded.clone();
            bad[at] ^= 0x10;
            let mut out = alloc::vec![0u8; result.len() + 64];
            let mut sink = SliceSink::new(&mut out);
            assert!(apply(&base, &bad, &mut sink).is_err(), "flip at {at}");
            assert!(sink.written().is_empty(), "wrote after a flip at {at}");
        }
        // A coded patch whose coded stream is cut short, resealed: refused, never a panic.
        let body = &coded[PATCH_HEADER_SIZE..coded.len() - 20];
        let short = encode_raw(
            &base,
            result.len() as u64,
            &signature::sha256(&result),
            header.op_count,
            body,
            LiteralCoding::Coded,
        );
        assert!(matches!(check(&base, &short), Err(Error::InvalidPatch(_))));
        // Inspecting the operations without reading the literals skips them.
        let kinds: Vec<Op<'_>> = Patch::parse(&coded)
            .unwrap()
            .ops()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            kinds,
            [
                Op::CodedReplace { len: 4_000 },
                Op::CodedInsert { len: 9 },
                Op::Copy { len: 4_000 },
                Op::End
            ]
        );
    }

    #[test]
    fn a_wrong_base_writes_nothing() {
        let (mut base, result, patch) = sample();
        base[100] ^= 1;
        let mut out = alloc::vec![0u8; result.len()];
        let mut sink = SliceSink::new(&mut out);
        let e = apply(&base, &patch, &mut sink).unwrap_err();
        assert!(matches!(e, Error::WrongBase { .. }), "{e}");
        assert!(sink.written().is_empty());
    }

    #[test]
    fn every_truncation_and_every_byte_flip_is_refused_before_writing() {
        let (base, result, patch) = sample();
        for len in 0..patch.len() {
            let mut out = alloc::vec![0u8; result.len() + 64];
            let mut sink = SliceSink::new(&mut out);
            assert!(
                apply(&base, &patch[..len], &mut sink).is_err(),
                "cut at {len}"
            );
            assert!(sink.written().is_empty());
        }
        for at in 0..patch.len() {
            for bit in [1u8, 0x80] {
                let mut bad = patch.clone();
                bad[at] ^= bit;
                let mut out = alloc::vec![0u8; result.len() + 64];
                let mut sink = SliceSink::new(&mut out);
                assert!(
                    apply(&base, &bad, &mut sink).is_err(),
                    "flip {bit:#x} at {at}"
                );
                assert!(sink.written().is_empty(), "wrote after a flip at {at}");
            }
        }
    }

    #[test]
    fn operations_that_break_the_rules_are_refused() {
        let base = [5u8; 16];
        let cases: [(&[Op<'_>], &[u8]); 7] = [
            (&[Op::Copy { len: 17 }, Op::End], &[5; 17]),
            // A nibble copy reads one byte more than it writes.
            (&[Op::CopyNibbles { len: 16 }, Op::End], &[0x55; 16]),
            (&[Op::CopyNibbles { len: u64::MAX }, Op::End], &[0x55; 16]),
            (&[Op::Seek(-1), Op::End], b""),
            (&[Op::Seek(17), Op::End], b""),
            (
                &[
                    Op::CopyAdd {
                        count: 8,
                        width: 2,
                        delta: 65_535,
                    },
                    Op::End,
                ],
                &[4; 16],
            ),
            (&[Op::Replace(&[1; 17]), Op::End], &[1; 17]),
        ];
        for (ops, result) in cases {
            let patch = encode(&base, result, ops);
            assert!(
                matches!(check(&base, &patch), Err(Error::InvalidPatch(_))),
                "{ops:?}"
            );
        }
        // A patch whose operations do not give the promised bytes.
        let patch = encode(&base, &[5; 4], &[Op::Copy { len: 3 }, Op::End]);
        assert!(matches!(check(&base, &patch), Err(Error::PatchResult(_))));
        let patch = encode(&base, &[5; 4], &[Op::Insert(&[6; 4]), Op::End]);
        assert!(matches!(check(&base, &patch), Err(Error::PatchResult(_))));
    }

    #[test]
    fn a_small_buffer_is_refused_up_front() {
        let (base, result, patch) = sample();
        let mut out = alloc::vec![0u8; result.len() - 1];
        let mut sink = SliceSink::new(&mut out);
        assert!(matches!(
            apply(&base, &patch, &mut sink),
            Err(Error::Sink(_))
        ));
        assert!(sink.written().is_empty());
    }

    #[test]
    fn tags_fit_in_two_bits() {
        assert_eq!(TAG_EXTENDED, 3);
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
