//! `pocketrec diff`: the patch that turns one `.prec` file into another (format in
//! `docs/FORMAT.md`, *Patches*; the device side is [`pocketrec::patch`]).
//!
//! The patch's operations are generic (copy, replace, insert, seek, copy-add); what makes them
//! small is choosing them from the files' structure. Each section of the new file is diffed
//! against the section of the same kind and rank in the old file:
//! - offsets sections (row offsets, posting-list offsets) as integer arrays: a run of offsets
//!   that all moved by the same amount (every row after a row that grew by 3 bytes) is one
//!   copy-add of a few bytes;
//! - every other section byte by byte: equal bytes at the same place are copied, changed bytes
//!   replaced in place, and where a section's bytes moved (a row record grew, rows were added)
//!   the next equal run is found through an index of the old section's 16-byte windows.
//!
//! Files that are not models (or that the runtime cannot open) are diffed as one byte string.
//! The result is checked before it is returned: applying it to the old file must give the new
//! one.

use std::collections::HashMap;

use pocketrec::patch::{self, Op};
use pocketrec::{Model, SectionKind};

use crate::error::{ExportError, Result};

/// Bytes of a window in the index of moved bytes.
const WINDOW: usize = 16;
/// The index keeps windows starting at multiples of this (any moved run of at least
/// `WINDOW + STRIDE - 1` bytes is found).
const STRIDE: usize = 4;
/// Equal bytes at the expected place shorter than this stay inside a replace (a copy costs a
/// byte or two of operation headers).
const MIN_IN_PLACE: usize = 4;

/// An operation whose literal bytes are owned (the patch is built before it is encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
enum OwnedOp {
    Copy(u64),
    Replace(Vec<u8>),
    Insert(Vec<u8>),
    Seek(i64),
    CopyAdd { count: u64, width: u8, delta: i64 },
    CopyNibbles(u64),
    Recompute(u64),
}

impl OwnedOp {
    fn as_op(&self) -> Op<'_> {
        match self {
            OwnedOp::Copy(len) => Op::Copy { len: *len },
            OwnedOp::Replace(b) => Op::Replace(b),
            OwnedOp::Insert(b) => Op::Insert(b),
            OwnedOp::Seek(d) => Op::Seek(*d),
            OwnedOp::CopyAdd {
                count,
                width,
                delta,
            } => Op::CopyAdd {
                count: *count,
                width: *width,
                delta: *delta,
            },
            OwnedOp::CopyNibbles(len) => Op::CopyNibbles { len: *len },
            OwnedOp::Recompute(len) => Op::Recompute { len: *len },
        }
    }
}

/// Collects operations, keeping track of the cursor in the old file and merging neighbours.
#[derive(Clone, Debug, Default)]
struct Emitter {
    ops: Vec<OwnedOp>,
    cursor: u64,
}

impl Emitter {
    fn at(cursor: u64) -> Self {
        Emitter {
            ops: Vec::new(),
            cursor,
        }
    }

    fn seek_to(&mut self, pos: u64) {
        if pos != self.cursor {
            let delta = pos as i64 - self.cursor as i64;
            if let Some(OwnedOp::Seek(d)) = self.ops.last_mut() {
                *d += delta;
                if *d == 0 {
                    self.ops.pop();
                }
            } else {
                self.ops.push(OwnedOp::Seek(delta));
            }
            self.cursor = pos;
        }
    }

    /// Copies `len` old bytes from `pos`.
    fn copy(&mut self, pos: u64, len: u64) {
        self.copy_from(Source::Bytes, pos, len);
    }

    /// Copies `len` bytes from `pos` of the old bytes, or of the old nibbles shifted by one
    /// (which reads `len + 1` old bytes), merged into the previous copy of the same source.
    fn copy_from(&mut self, source: Source, pos: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.seek_to(pos);
        match (source, self.ops.last_mut()) {
            (Source::Bytes, Some(OwnedOp::Copy(n)))
            | (Source::Nibbles, Some(OwnedOp::CopyNibbles(n))) => *n += len,
            (Source::Bytes, _) => self.ops.push(OwnedOp::Copy(len)),
            (Source::Nibbles, _) => self.ops.push(OwnedOp::CopyNibbles(len)),
        }
        self.cursor += len;
    }

    /// Writes `bytes` where the old bytes from `pos` to `next` were (replace what fits, insert
    /// the rest; what is left of the old range is skipped by the next copy's seek).
    fn literal(&mut self, bytes: &[u8], pos: u64, next: u64) {
        if bytes.is_empty() {
            return;
        }
        let room = next.saturating_sub(pos);
        let replaced = room.min(bytes.len() as u64) as usize;
        if replaced > 0 {
            self.seek_to(pos);
            match self.ops.last_mut() {
                Some(OwnedOp::Replace(b)) => b.extend_from_slice(&bytes[..replaced]),
                _ => self.ops.push(OwnedOp::Replace(bytes[..replaced].to_vec())),
            }
            self.cursor += replaced as u64;
        }
        let rest = &bytes[replaced..];
        if !rest.is_empty() {
            match self.ops.last_mut() {
                Some(OwnedOp::Insert(b)) => b.extend_from_slice(rest),
                _ => self.ops.push(OwnedOp::Insert(rest.to_vec())),
            }
        }
    }

    fn copy_add(&mut self, pos: u64, count: u64, width: u8, delta: i64) {
        if count == 0 {
            return;
        }
        if delta == 0 {
            self.copy(pos, count * u64::from(width));
            return;
        }
        self.seek_to(pos);
        match self.ops.last_mut() {
            Some(OwnedOp::CopyAdd {
                count: c,
                width: w,
                delta: d,
            }) if *w == width && *d == delta => *c += count,
            _ => self.ops.push(OwnedOp::CopyAdd {
                count,
                width,
                delta,
            }),
        }
        self.cursor += count * u64::from(width);
    }

    fn append(&mut self, other: Emitter) {
        for op in other.ops {
            match op {
                OwnedOp::Copy(len) => {
                    let pos = self.cursor;
                    self.copy(pos, len);
                }
                OwnedOp::Seek(d) => {
                    let pos = (self.cursor as i64 + d) as u64;
                    self.seek_to(pos);
                }
                OwnedOp::Replace(b) => {
                    let pos = self.cursor;
                    self.literal(&b, pos, pos + b.len() as u64);
                }
                OwnedOp::Insert(b) => {
                    let pos = self.cursor;
                    self.literal(&b, pos, pos);
                }
                OwnedOp::CopyAdd {
                    count,
                    width,
                    delta,
                } => {
                    let pos = self.cursor;
                    self.copy_add(pos, count, width, delta);
                }
                OwnedOp::CopyNibbles(len) => {
                    let pos = self.cursor;
                    self.copy_from(Source::Nibbles, pos, len);
                }
                OwnedOp::Recompute(len) => self.ops.push(OwnedOp::Recompute(len)),
            }
        }
        self.cursor = other.cursor;
    }

    /// Bytes these operations take in a patch.
    fn encoded_len(&self) -> usize {
        let mut out = Vec::new();
        for op in &self.ops {
            patch::encode_op(&op.as_op(), &mut out);
        }
        out.len()
    }
}

/// What a diff found, besides the patch.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiffStats {
    /// Bytes of the patch.
    pub patch_bytes: u64,
    /// Bytes of the new file.
    pub new_bytes: u64,
    /// Bytes of the new file the patch carries (replace and insert operations).
    pub carried_bytes: u64,
    /// Operations in the patch.
    pub ops: u64,
    /// Whether the two files were diffed section by section (both open as models).
    pub by_section: bool,
}

/// The patch from `old` to `new` (both whole files, signature trailers included), checked:
/// applying it to `old` gives `new`.
///
/// ```
/// # fn main() -> pocketrec_export::Result<()> {
/// let old = pocketrec::builder::tiny_example_model().unwrap();
/// let patch = pocketrec_export::diff::diff(&old, &old)?;
/// let mut out = vec![0u8; old.len()];
/// let mut sink = pocketrec::patch::SliceSink::new(&mut out);
/// pocketrec::patch::apply(&old, &patch, &mut sink).unwrap();
/// assert_eq!(sink.written(), &old[..]);
/// # Ok(()) }
/// ```
pub fn diff(old: &[u8], new: &[u8]) -> Result<Vec<u8>> {
    Ok(diff_with_stats(old, new)?.0)
}

/// [`diff`], with what it found.
pub fn diff_with_stats(old: &[u8], new: &[u8]) -> Result<(Vec<u8>, DiffStats)> {
    let (Some(old_regions), Some(new_regions)) = (sections(old), sections(new)) else {
        let mut e = Emitter::default();
        diff_bytes(old, 0..old.len(), new, &mut e);
        return encode_checked(old, new, e, false);
    };
    // What the device can recompute: a fold-in Gramian and block bounds; and the column
    // layout of tables that also store row records. Tried from the most to the least; a
    // level whose patch does not check (a file from another writer, whose bytes are not
    // this writer's) falls back to the next.
    let columns = columns_follow_from_rows(new);
    let mut levels = vec![
        Recompute {
            derived: true,
            columns,
        },
        Recompute {
            derived: true,
            columns: false,
        },
        Recompute {
            derived: false,
            columns: false,
        },
    ];
    levels.dedup();
    let mut last = None;
    for level in levels {
        let emitter = diff_sections(old, new, &old_regions, &new_regions, level);
        match encode_checked(old, new, emitter, true) {
            Ok(done) => return Ok(done),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one level was tried"))
}

/// What a patch leaves to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Recompute {
    /// The bodies of fold-in and block-bounds sections.
    derived: bool,
    /// The column layouts of tables that also store row records.
    columns: bool,
}

/// Whether every table of `file` with a column layout also stores its rows as records (then
/// every column-layout section follows from the rows).
fn columns_follow_from_rows(file: &[u8]) -> bool {
    let Ok(model) = Model::from_bytes(file) else {
        return false;
    };
    let mut any = false;
    for role in pocketrec::Role::ALL {
        if let Ok(table) = model.table(*role)
            && table.has_columns()
        {
            if !table.has_rows() {
                return false;
            }
            any = true;
        }
    }
    any
}

/// The patch of `emitter`'s operations, encoded as bytes or with a coded body (the smaller),
/// and checked against `new`.
fn encode_checked(
    old: &[u8],
    new: &[u8],
    emitter: Emitter,
    by_section: bool,
) -> Result<(Vec<u8>, DiffStats)> {
    let mut ops: Vec<Op<'_>> = emitter.ops.iter().map(OwnedOp::as_op).collect();
    ops.push(Op::End);
    // The body as bytes or range coded, whichever is smaller.
    let inline = patch::encode(old, new, &ops);
    let coded = patch::encode_coded(old, new, &ops);
    let bytes = if coded.len() < inline.len() {
        coded
    } else {
        inline
    };
    let summary = check(old, new, &bytes)?;
    let stats = DiffStats {
        patch_bytes: bytes.len() as u64,
        new_bytes: new.len() as u64,
        carried_bytes: summary.carried,
        ops: summary.ops,
        by_section,
    };
    Ok((bytes, stats))
}

/// Applies the patch in memory and compares with `new` (a bug in the diff must never ship).
fn check(old: &[u8], new: &[u8], patch_bytes: &[u8]) -> Result<pocketrec::patch::PatchSummary> {
    let mut out = vec![0u8; new.len()];
    let mut sink = patch::SliceSink::new(&mut out);
    let summary = patch::apply(old, patch_bytes, &mut sink).map_err(|e| {
        ExportError::Patch(format!("internal error: the patch does not apply ({e})"))
    })?;
    if sink.written() != new {
        return Err(ExportError::Patch(
            "internal error: the patch does not give the new file".into(),
        ));
    }
    Ok(summary)
}

/// A section as a region of the file: its kind, its rank among sections of that kind, and the
/// bytes from the end of the previous section (its padding included) to its end.
#[derive(Clone, Debug)]
struct Region {
    kind: SectionKind,
    rank: usize,
    start: usize,
    /// Where the section's own bytes start (after its padding).
    data: usize,
    end: usize,
}

/// The regions of a model file, or `None` if it does not open as one. The first region (kind
/// `Metadata`, rank `usize::MAX`) is the header and section table; the last (same kind, rank
/// `usize::MAX - 1`) is whatever follows the last section (a signature trailer).
fn sections(bytes: &[u8]) -> Option<Vec<Region>> {
    let model = Model::from_bytes(bytes).ok()?;
    let mut regions = Vec::new();
    let mut infos: Vec<_> = model.sections().collect();
    infos.sort_by_key(|s| s.offset);
    let mut previous = 0usize;
    let mut first = true;
    let mut ranks: HashMap<u32, usize> = HashMap::new();
    for info in infos {
        let start = info.offset as usize;
        if first {
            regions.push(Region {
                kind: SectionKind::Metadata,
                rank: usize::MAX,
                start: 0,
                data: 0,
                end: start,
            });
            first = false;
            previous = start;
        }
        let rank = ranks.entry(info.kind.code()).or_default();
        regions.push(Region {
            kind: info.kind,
            rank: *rank,
            start: previous,
            data: start,
            end: start + info.length as usize,
        });
        *rank += 1;
        previous = start + info.length as usize;
    }
    regions.push(Region {
        kind: SectionKind::Metadata,
        rank: usize::MAX - 1,
        start: previous,
        data: previous,
        end: bytes.len(),
    });
    Some(regions)
}

/// Operations for `new`, section by section, leaving to the device ([`Op::Recompute`]) what
/// `recompute` says: the bodies of fold-in and block-bounds sections (after their headers),
/// whole column-layout sections.
fn diff_sections(
    old: &[u8],
    new: &[u8],
    old_regions: &[Region],
    new_regions: &[Region],
    recompute: Recompute,
) -> Emitter {
    let mut emitter = Emitter::default();
    for region in new_regions {
        let mut region = region.clone();
        let header = match region.kind {
            SectionKind::FoldIn if recompute.derived => pocketrec::format::FOLD_IN_HEADER_SIZE,
            SectionKind::BlockBounds if recompute.derived => {
                pocketrec::format::BLOCK_BOUNDS_HEADER_SIZE
            }
            kind if recompute.columns && kind.is_column_layout() => 0,
            _ => usize::MAX,
        };
        let mut body = 0;
        if region.end - region.data > header {
            body = region.end - region.data - header;
            region.end -= body;
        }
        diff_region(old, new, old_regions, &region, &mut emitter);
        if body > 0 {
            emitter.ops.push(OwnedOp::Recompute(body as u64));
        }
    }
    emitter
}

/// Operations for one region of `new`, from its counterpart in `old` if it has one.
fn diff_region(
    old: &[u8],
    new: &[u8],
    old_regions: &[Region],
    region: &Region,
    emitter: &mut Emitter,
) {
    let new_bytes = &new[region.start..region.end];
    let counterpart = old_regions
        .iter()
        .find(|o| o.kind == region.kind && o.rank == region.rank);
    let Some(old_region) = counterpart else {
        let pos = emitter.cursor;
        emitter.literal(new_bytes, pos, pos);
        return;
    };
    let old_range = old_region.start..old_region.end;
    let mut best = Emitter::at(emitter.cursor);
    diff_bytes(old, old_range.clone(), new_bytes, &mut best);
    let mut best_len = best.encoded_len();
    if matches!(
        region.kind,
        SectionKind::RowOffsets | SectionKind::ColumnOffsets
    ) {
        for width in [4u8, 8] {
            let mut candidate = Emitter::at(emitter.cursor);
            let pad = region.data - region.start;
            diff_bytes(
                old,
                old_region.start..old_region.data,
                &new_bytes[..pad],
                &mut candidate,
            );
            if diff_integers(
                old,
                old_region.data..old_region.end,
                &new_bytes[pad..],
                width,
                &mut candidate,
            ) && candidate.encoded_len() < best_len
            {
                best_len = candidate.encoded_len();
                best = candidate;
            }
        }
    }
    emitter.append(best);
}

/// Diffs an offsets section as integers of `width` bytes, the first with the first: runs of
/// integers that moved by one amount become copy-adds. `false` if the lengths are not multiples
/// of `width`.
fn diff_integers(
    old: &[u8],
    old_range: std::ops::Range<usize>,
    new: &[u8],
    width: u8,
    out: &mut Emitter,
) -> bool {
    let w = usize::from(width);
    let old_ints = &old[old_range.clone()];
    if !new.len().is_multiple_of(w) || !old_ints.len().is_multiple_of(w) {
        return false;
    }
    let read = |bytes: &[u8], i: usize| {
        let mut raw = [0u8; 8];
        raw[..w].copy_from_slice(&bytes[i * w..(i + 1) * w]);
        u64::from_le_bytes(raw)
    };
    let new_ints = new;
    let (n_new, n_old) = (new_ints.len() / w, old_ints.len() / w);
    let base = old_range.start as u64;
    let mut i = 0usize;
    while i < n_new.min(n_old) {
        let delta = (read(new_ints, i) as i128) - (read(old_ints, i) as i128);
        let Ok(delta) = i64::try_from(delta) else {
            return false;
        };
        let mut j = i + 1;
        while j < n_new.min(n_old)
            && (read(new_ints, j) as i128) - (read(old_ints, j) as i128) == delta as i128
        {
            j += 1;
        }
        out.copy_add(base + (i * w) as u64, (j - i) as u64, width, delta);
        i = j;
    }
    if n_new > i {
        let pos = base + (i * w) as u64;
        out.literal(&new_ints[i * w..], pos, pos);
    }
    true
}

/// The length of the common prefix of two byte strings.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

fn window_hash(bytes: &[u8]) -> u64 {
    let lo = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    let hi = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0; 8]));
    (lo.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ hi).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// Where the bytes of a match come from: the old bytes themselves, or the old nibbles shifted by
/// one (an int4 run of nibbles after an entry was inserted or removed before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Bytes,
    Nibbles,
}

/// An index of a byte string's `WINDOW`-byte windows at every `STRIDE`-th byte.
fn window_index(bytes: &[u8]) -> HashMap<u64, u32> {
    let mut map = HashMap::with_capacity(bytes.len() / STRIDE + 1);
    let mut p = 0;
    while p + WINDOW <= bytes.len() {
        map.entry(window_hash(&bytes[p..p + WINDOW]))
            .or_insert(p as u32);
        p += STRIDE;
    }
    map
}

/// Diffs `new` against the old bytes in `old_range` (positions in `old` are absolute).
///
/// Bytes are matched against the old bytes, and, where that fails, against the old nibbles
/// shifted by one (byte `j` of the shifted string is the high nibble of old byte `j` and the low
/// nibble of old byte `j + 1`): in an int4 run of nibbles, one entry inserted or removed shifts
/// every later value by half a byte, which a nibble copy restores.
fn diff_bytes(old: &[u8], old_range: std::ops::Range<usize>, new: &[u8], out: &mut Emitter) {
    let region = &old[old_range.clone()];
    let origin = old_range.start;
    // The shifted nibbles, made the first time the bytes do not line up.
    let shifted: std::cell::OnceCell<Vec<u8>> = std::cell::OnceCell::new();
    let source_bytes = |source: Source| match source {
        Source::Bytes => region,
        Source::Nibbles => shifted
            .get_or_init(|| {
                region
                    .windows(2)
                    .map(|pair| (pair[0] >> 4) | (pair[1] << 4))
                    .collect()
            })
            .as_slice(),
    };
    // Windows of the old region, built only when the bytes do not simply line up.
    let mut byte_index: Option<HashMap<u64, u32>> = None;
    let mut nibble_index: Option<HashMap<u64, u32>> = None;
    let mut n = 0usize; // next new byte
    let mut literal_start = 0usize; // new position where the pending literal began
    let mut literal_old = 0usize; // old position (in region) the pending literal replaces from
    let mut mode = Source::Bytes; // where the last match came from
    while n < new.len() {
        // Equal bytes where they would be if the pending literal replaced as many old bytes:
        // first in the last match's source, then in the other.
        let expected = literal_old + (n - literal_start);
        let other = match mode {
            Source::Bytes => Source::Nibbles,
            Source::Nibbles => Source::Bytes,
        };
        let mut found = None;
        for source in [mode, other] {
            let bytes = source_bytes(source);
            let in_place = if expected < bytes.len() {
                common_prefix(&bytes[expected..], &new[n..])
            } else {
                0
            };
            if in_place >= MIN_IN_PLACE || (in_place > 0 && n + in_place == new.len()) {
                found = Some((source, expected, in_place));
                break;
            }
        }
        if found.is_none() && n + WINDOW <= new.len() {
            let key = window_hash(&new[n..n + WINDOW]);
            for source in [Source::Bytes, Source::Nibbles] {
                let bytes = source_bytes(source);
                if bytes.len() < WINDOW {
                    continue;
                }
                let index = match source {
                    Source::Bytes => &mut byte_index,
                    Source::Nibbles => &mut nibble_index,
                };
                let map = index.get_or_insert_with(|| window_index(bytes));
                if let Some(&p) = map.get(&key) {
                    let p = p as usize;
                    let len = common_prefix(&bytes[p..], &new[n..]);
                    if len >= WINDOW {
                        found = Some((source, p, len));
                        break;
                    }
                }
            }
        }
        match found {
            Some((source, p, len)) => {
                out.literal(
                    &new[literal_start..n],
                    (origin + literal_old) as u64,
                    (origin + p) as u64,
                );
                out.copy_from(source, (origin + p) as u64, len as u64);
                mode = source;
                n += len;
                literal_start = n;
                literal_old = p + len;
            }
            None => n += 1,
        }
    }
    let end = (origin + region.len()) as u64;
    out.literal(
        &new[literal_start..],
        (origin + literal_old) as u64,
        end.max((origin + literal_old) as u64),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(old: &[u8], new: &[u8]) -> usize {
        let (patch, _) = diff_with_stats(old, new).unwrap();
        patch.len()
    }

    #[test]
    fn byte_strings_round_trip_whatever_changed() {
        let old: Vec<u8> = (0..5_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut changed = old.clone();
        changed[100] ^= 1;
        changed[3_000] ^= 0xFF;
        assert!(round_trip(&old, &changed) < 128 + 40);
        let mut grown = old.clone();
        grown.splice(2_000..2_000, [1, 2, 3, 4, 5]);
        assert!(round_trip(&old, &grown) < 128 + 40);
        let mut shrunk = old.clone();
        shrunk.drain(1_000..1_300);
        assert!(round_trip(&old, &shrunk) < 128 + 40);
        round_trip(&old, b"");
        round_trip(b"", &old);
        round_trip(&old[..10], &old);
    }

    #[test]
    fn nibbles_shifted_by_one_are_nibble_copies() {
        // A run of 4-bit values; one value inserted at 1,000, one removed at 3,000.
        let values: Vec<u8> = (0..8_000u32)
            .map(|i| ((i * 7 + i / 13) % 16) as u8)
            .collect();
        let pack = |v: &[u8]| -> Vec<u8> {
            v.chunks(2)
                .map(|c| c[0] | (c.get(1).copied().unwrap_or(0) << 4))
                .collect()
        };
        let mut changed = values.clone();
        changed.insert(1_000, 9);
        changed.remove(3_001);
        let (old, new) = (pack(&values), pack(&changed));
        let (patch, stats) = diff_with_stats(&old, &new).unwrap();
        assert!(patch.len() < 128 + 40, "{} bytes", patch.len());
        assert!(stats.carried_bytes <= 4, "{stats:?}");
        let parsed = pocketrec::patch::Patch::parse(&patch).unwrap();
        assert_eq!(parsed.header().minor, 1);
        assert!(
            parsed
                .ops()
                .any(|op| matches!(op, Ok(Op::CopyNibbles { len }) if len > 900))
        );
    }

    #[test]
    fn moved_offsets_are_copy_adds() {
        let old: Vec<u8> = (0..1_000u32).flat_map(|i| (i * 10).to_le_bytes()).collect();
        let new: Vec<u8> = (0..1_000u32)
            .flat_map(|i| (if i > 500 { i * 10 + 3 } else { i * 10 }).to_le_bytes())
            .collect();
        let mut e = Emitter::default();
        assert!(diff_integers(&old, 0..old.len(), &new, 4, &mut e));
        assert_eq!(
            e.ops,
            vec![
                OwnedOp::Copy(501 * 4),
                OwnedOp::CopyAdd {
                    count: 499,
                    width: 4,
                    delta: 3
                }
            ]
        );
    }
}

/// How one table changed between two models (rows matched by id, or by row number in a table
/// without ids).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableChange {
    /// `users` or `items`.
    pub role: String,
    /// Rows in the new table.
    pub rows: u64,
    /// Rows whose values or bias differ.
    pub changed: u64,
    /// Rows of the new table with no counterpart in the old one.
    pub added: u64,
    /// Rows of the old table with no counterpart in the new one.
    pub removed: u64,
    /// What the changed and added rows take in the new file (see [`changed_rows`]).
    pub bytes: u64,
}

/// Which rows differ between two models, and what they take in the new file: for each changed
/// or added row, its record in the table's index and value encodings (column part, values, an
/// int8/int4 scale), plus its share of the per-row arrays (an offset when the table stores row
/// records, an id, a bias, a norm in a cosine column layout). This is the yardstick for a
/// patch's size: a patch cannot be much smaller than the rows it carries.
pub fn changed_rows(old: &[u8], new: &[u8]) -> Result<Vec<TableChange>> {
    let model_error = |source| ExportError::Model {
        path: "(diff input)".into(),
        source,
    };
    let (old, new) = (
        Model::from_bytes(old).map_err(model_error)?,
        Model::from_bytes(new).map_err(model_error)?,
    );
    let mut out = Vec::new();
    for role in pocketrec::Role::ALL {
        let Ok(table) = new.table(*role) else {
            continue;
        };
        let previous = old.table(*role).ok();
        let dim = table.dim();
        let mut change = TableChange {
            role: role.name().to_string(),
            rows: table.rows() as u64,
            ..TableChange::default()
        };
        let (mut now, mut before) = (vec![0f32; dim], vec![0f32; dim]);
        let mut matched = 0u64;
        for row in 0..table.rows() {
            let counterpart = previous.as_ref().and_then(|p| {
                if table.id_encoding() == pocketrec::IdEncoding::RowNumber {
                    (row < p.rows() && p.dim() == dim).then_some(row)
                } else {
                    let id = table.id(row).ok()?;
                    p.find(id).ok().filter(|_| p.dim() == dim)
                }
            });
            table.decode_row(row, &mut now).map_err(model_error)?;
            let same = match (counterpart, previous.as_ref()) {
                (Some(r), Some(p)) => {
                    matched += 1;
                    p.decode_row(r, &mut before).map_err(model_error)?;
                    let bias = |t: &pocketrec::Table<'_>, r| t.bias(r).ok().map(f32::to_bits);
                    now.iter()
                        .map(|v| v.to_bits())
                        .eq(before.iter().map(|v| v.to_bits()))
                        && bias(&table, row) == bias(p, r)
                }
                _ => {
                    change.added += 1;
                    change.bytes += row_bytes(&new, &table, &now);
                    continue;
                }
            };
            if !same {
                change.changed += 1;
                change.bytes += row_bytes(&new, &table, &now);
            }
        }
        change.removed = previous.map_or(0, |p| p.rows() as u64 - matched);
        out.push(change);
    }
    Ok(out)
}

/// A row's bytes in the new file (see [`changed_rows`]).
fn row_bytes(model: &Model<&[u8]>, table: &pocketrec::Table<'_>, values: &[f32]) -> u64 {
    use pocketrec::{IndexEncoding, ValueEncoding};
    let nnz = values.iter().filter(|v| **v != 0.0).count() as u64;
    if nnz == 0 {
        return 0;
    }
    let dim = table.dim() as u64;
    let index = match table.index_encoding() {
        IndexEncoding::U16List => 2 * nnz,
        IndexEncoding::Bitmap | IndexEncoding::BitmapBlocks => dim.div_ceil(8),
        _ => nnz,
    };
    let value = match table.value_encoding() {
        ValueEncoding::F32 => 4 * nnz,
        ValueEncoding::F16 | ValueEncoding::Bf16 => 2 * nnz,
        ValueEncoding::I8 => 2 + nnz,
        ValueEncoding::I4 => 2 + nnz.div_ceil(2),
    };
    // Bitmap rows in blocks: no offset of their own (a block's offset and mask are shared).
    let offset = if table.has_rows() && !table.has_bitmap_blocks() {
        match table.offset_width() {
            pocketrec::OffsetWidth::U32 => 4,
            pocketrec::OffsetWidth::U64 => 8,
        }
    } else {
        0
    };
    let id = table.id_encoding().width() as u64;
    let bias = if table.has_bias() { 4 } else { 0 };
    let norm = if table.has_columns() && model.scoring() == pocketrec::Scoring::Cosine {
        4
    } else {
        0
    };
    index + value + offset + id + bias + norm
}
