//! Fuzzes patches: the input is a 4-byte header, then a base file, then a patch. The patch is
//! parsed, its operations listed, and it is applied to the base into a buffer (of the size the
//! header says, or one byte less); the whole input is also read as a signed file. Any input must
//! give a result or an error, never a panic, an out-of-bounds read or a hang; a patch that
//! applies must give exactly the bytes its header names, and one that fails must write nothing
//! (unless it recomputes the fold-in Gramian, whose result is checked once it is written).
//!
//! The header: bytes 0..3, little-endian, the base's length (taken modulo the bytes that
//! follow); byte 3, bit 0: give a buffer one byte too small; bit 1: the bytes after the base are
//! not a patch but its operations, behind a header made here with the right checksums and base
//! hash (so the operations themselves are fuzzed, not only the checks before them; bit 2: as a
//! range-coded body; byte 3's upper five bits are the result's size). `make_seeds DIR
//! apply_patch` writes seeds in this shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketrec::patch::{self, LiteralCoding, Op, Patch, SliceSink};

/// The largest result a run allocates a buffer for.
const MAX_RESULT: u64 = 1 << 20;

/// A patch header with valid checksums and base hash (`patch::encode_raw`) in front of `body`;
/// the operation count and result hash match no run, so a run fails only at the end, after all
/// its operations.
fn seal(base: &[u8], result_size: u64, body: &[u8], coding: LiteralCoding) -> Vec<u8> {
    patch::encode_raw(base, result_size, &[0u8; 32], u64::MAX, body, coding)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let rest = &data[4..];
    let base_len = u32::from_le_bytes([data[0], data[1], data[2], 0]) as usize % (rest.len() + 1);
    let short = data[3] & 1 == 1;
    let (base, after) = rest.split_at(base_len);
    let _ = pocketrec::signature::split(rest);
    let sealed;
    let patch_bytes = if data[3] & 2 == 2 {
        let coding = if data[3] & 4 == 4 {
            LiteralCoding::Coded
        } else {
            LiteralCoding::Inline
        };
        sealed = seal(base, u64::from(data[3] >> 3), after, coding);
        &sealed[..]
    } else {
        after
    };
    let Ok(parsed) = Patch::parse(patch_bytes) else {
        return;
    };
    let mut recomputes = false;
    for op in parsed.ops() {
        match op {
            Ok(Op::Recompute { .. }) => recomputes = true,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let size = parsed.header().result_size;
    if size > MAX_RESULT {
        return;
    }
    let mut out = vec![0u8; size as usize + if short { 0 } else { 1 }];
    let capacity = if short { size.saturating_sub(1) } else { size } as usize;
    let mut sink = SliceSink::new(&mut out[..capacity]);
    match patch::apply(base, patch_bytes, &mut sink) {
        Ok(summary) => {
            assert_eq!(summary.result_size, size);
            assert_eq!(sink.written().len() as u64, size);
            assert_eq!(
                pocketrec::signature::sha256(sink.written()),
                parsed.header().result_sha256
            );
        }
        Err(_) => assert!(
            sink.written().is_empty() || recomputes,
            "a failed patch wrote bytes"
        ),
    }
});
