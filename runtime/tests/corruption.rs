//! Corruption tests: truncations, byte flips and targeted structural damage always give an
//! error (or, where the damage is to a value and checksums were recomputed, valid answers),
//! never a panic.

mod common;

use common::Inputs;
use pocketrec::format::{self, reseal};
use pocketrec::{Error, IndexEncoding, Model, Recommendation, SectionKind, ValueEncoding};

/// A small model with every kind of section: ids, biases, two tables; bitmap rows (at
/// density 0.6) with one offset per row.
fn sample(values: ValueEncoding, density: f64) -> (Inputs, Vec<u8>) {
    sample_with(values, density, true)
}

/// [`sample`], bitmap rows with one offset per row or (format 1.7) one per block of 16.
fn sample_with(values: ValueEncoding, density: f64, per_row_offsets: bool) -> (Inputs, Vec<u8>) {
    let mut inputs = Inputs::random(3, 6, 30, 17, density);
    inputs.per_row_offsets = per_row_offsets;
    inputs.values = values;
    inputs.user_ids = Some((0..6).map(|i| 1000 + 7 * i).collect());
    inputs.item_ids = Some((0..30).map(|i| (i * 7919) % 1_000_003 + 5).collect());
    inputs.item_bias = Some((0..30).map(|i| i as f32 * 0.01).collect());
    let bytes = inputs.build();
    (inputs, bytes)
}

/// Exercises everything a client can call; returns the first error, if any.
fn exercise(bytes: &[u8]) -> Result<(), Error> {
    let model = Model::from_bytes(bytes)?;
    let _ = model.properties().count();
    let _ = model.sections().count();
    let mut first_error = model.verify().err();
    let mut out = [Recommendation::default(); 5];
    let mut dense = vec![0.0f32; model.dim().unwrap_or(0)];
    for table in [model.users(), model.items()] {
        let Ok(table) = table else { continue };
        for r in 0..table.rows() {
            let _ = table.id(r);
            let _ = table.bias(r);
            match table.row(r) {
                Ok(row) => {
                    let _ = row.iter().count();
                    let _ = row.decode_into(&mut dense);
                    let _ = row.dot(&dense);
                    let _ = row.norm();
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
            if let Ok(id) = table.id(r) {
                let _ = table.find(id);
                if table.role() == pocketrec::Role::User {
                    if let Err(e) = model.recommend(id, 5, &[1, 2], &mut out) {
                        first_error = first_error.or(Some(e));
                    }
                    let _ = model.score(id, 5);
                }
            }
        }
    }
    let _ = model.recommend_vector(&dense, 5, &[], &mut out);
    first_error.map_or(Ok(()), Err)
}

fn all_samples() -> Vec<(Inputs, Vec<u8>)> {
    let mut v = Vec::new();
    for &values in ValueEncoding::ALL {
        v.push(sample(values, 0.1)); // u8 lists
        v.push(sample(values, 0.6)); // bitmaps
        v.push(sample_with(values, 0.6, false)); // bitmaps in blocks
    }
    // Column layouts of scaled values (int8, int4: codes and per-row scales).
    for values in [ValueEncoding::I8, ValueEncoding::I4] {
        let (mut inputs, _) = sample(values, 0.2);
        inputs.layout = pocketrec::builder::Layout::Both;
        let bytes = inputs.build();
        v.push((inputs, bytes));
    }
    v
}

#[test]
fn samples_cover_both_index_encodings() {
    let encodings: Vec<IndexEncoding> = all_samples()
        .iter()
        .map(|(_, b)| {
            Model::from_bytes(b)
                .unwrap()
                .items()
                .unwrap()
                .index_encoding()
        })
        .collect();
    assert!(encodings.contains(&IndexEncoding::U8List));
    assert!(encodings.contains(&IndexEncoding::Bitmap));
    assert!(encodings.contains(&IndexEncoding::BitmapBlocks));
}

/// Bitmap rows in blocks (format 1.7): a block offset moved, a mask bit set or cleared, or a
/// mask bit past the last row, each makes the rows of its block errors (for `row`, the row
/// scan and `verify`), never a panic; rows of other blocks still read.
#[test]
fn damaged_block_offsets_and_masks_are_row_errors() {
    let (_, bytes) = sample_with(ValueEncoding::I8, 0.6, false);
    let model = Model::from_bytes(&bytes).unwrap();
    model.verify().unwrap();
    assert_eq!(model.format_minor(), format::FORMAT_MINOR_BITMAP_BLOCKS);
    let items = model.items().unwrap();
    assert_eq!(items.index_encoding(), IndexEncoding::BitmapBlocks);
    let rows = items.rows();
    assert_eq!(rows, 30);
    let blocks = rows.div_ceil(format::BITMAP_BLOCK_ROWS);
    let (offsets, end) = item_section(&bytes, SectionKind::RowOffsets);
    assert_eq!(end - offsets, 4 * (blocks + 1) + 2 * blocks);
    let masks = offsets + 4 * (blocks + 1);
    let mask = |b: &[u8], block: usize| {
        u16::from_le_bytes([b[masks + 2 * block], b[masks + 2 * block + 1]])
    };
    let check = |b: &[u8], block: usize, what: &str| {
        let damaged_model = Model::from_bytes(b).unwrap();
        let damaged_items = damaged_model.items().unwrap();
        let in_block = block * 16..(block * 16 + 16).min(rows);
        for r in 0..rows {
            let row = damaged_items.row(r);
            if in_block.contains(&r) {
                assert!(row.is_err(), "{what}: row {r} read");
            } else {
                assert!(row.is_ok(), "{what}: row {r} of another block refused");
            }
        }
        assert!(damaged_model.verify().is_err(), "{what}: verify passed");
        let mut out = [Recommendation::default(); 3];
        let scan = damaged_model.recommend_vector(&[1.0; 17], 3, &[], &mut out);
        assert!(scan.is_err(), "{what}: the row scan read past it");
    };
    // The middle offset (between blocks 0 and 1) one byte later or earlier.
    for delta in [1i64, -1] {
        let b = damaged(&bytes, |b| {
            let at = offsets + 4;
            let o = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            b[at..at + 4].copy_from_slice(&((o as i64 + delta) as u32).to_le_bytes());
        });
        // Block 0's records no longer end where block 1 starts; block 1 starts mid-record.
        let damaged_model = Model::from_bytes(&b).unwrap();
        assert!(damaged_model.items().unwrap().row(0).is_err());
        assert!(damaged_model.items().unwrap().row(16).is_err());
        assert!(damaged_model.verify().is_err());
    }
    for block in 0..blocks {
        let m = mask(&bytes, block);
        let in_block = (rows - block * 16).min(16);
        for bit in 0..in_block {
            // A row gained or lost its record: the block's records no longer fill it.
            let b = damaged(&bytes, |b| {
                b[masks + 2 * block..masks + 2 * block + 2]
                    .copy_from_slice(&(m ^ (1 << bit)).to_le_bytes())
            });
            check(&b, block, &format!("block {block} mask bit {bit}"));
        }
        if in_block < 16 {
            let b = damaged(&bytes, |b| {
                b[masks + 2 * block..masks + 2 * block + 2]
                    .copy_from_slice(&(m | 1 << 15).to_le_bytes())
            });
            check(
                &b,
                block,
                &format!("block {block}: a mask bit past the last row"),
            );
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    for (_, bytes) in all_samples() {
        exercise(&bytes).unwrap();
        for len in 0..bytes.len() {
            assert!(
                Model::from_bytes(&bytes[..len]).is_err(),
                "prefix of {len} bytes opened"
            );
        }
    }
}

#[test]
fn truncation_with_fixed_up_header_is_an_error() {
    for (_, bytes) in all_samples() {
        let model = Model::from_bytes(&bytes).unwrap();
        let mut cuts = Vec::new();
        for s in model.sections() {
            for edge in [s.offset, s.offset + s.length] {
                for delta in -2i64..=2 {
                    cuts.push((edge as i64 + delta).clamp(0, bytes.len() as i64 - 1) as usize);
                }
            }
        }
        for cut in cuts {
            let mut damaged = bytes[..cut].to_vec();
            if damaged.len() >= 40 {
                damaged[32..40].copy_from_slice(&(cut as u64).to_le_bytes());
            }
            reseal(&mut damaged);
            assert!(exercise(&damaged).is_err(), "cut at {cut} accepted");
        }
    }
}

#[test]
fn every_single_byte_change_is_detected() {
    for (_, bytes) in all_samples() {
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                let verdict = Model::from_bytes(&damaged).and_then(|m| m.verify());
                assert!(verdict.is_err(), "byte {i} ^ {flip:#x} not detected");
            }
        }
    }
}

#[test]
fn byte_changes_behind_recomputed_checksums_never_panic() {
    let mut caught = 0usize;
    let mut total = 0usize;
    for (_, bytes) in all_samples() {
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x10, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                reseal(&mut damaged);
                total += 1;
                if exercise(&damaged).is_err() {
                    caught += 1;
                }
            }
        }
    }
    // Most changes land in values or ids and stay well-formed; many do not.
    assert!(
        caught > total / 10,
        "only {caught} of {total} resealed changes were errors"
    );
}

/// Finds the byte range of the first section of `kind` that belongs to the item table.
fn item_section(bytes: &[u8], kind: SectionKind) -> (usize, usize) {
    let model = Model::from_bytes(bytes).unwrap();
    let mut found = model.sections().filter(|s| s.kind == kind);
    // Sections are written user table first, then item table.
    let s = found
        .nth(1)
        .or_else(|| model.sections().find(|s| s.kind == kind))
        .unwrap();
    (s.offset as usize, (s.offset + s.length) as usize)
}

fn damaged(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    edit(&mut b);
    reseal(&mut b);
    b
}

#[test]
fn offsets_past_the_end_or_out_of_order_are_row_errors() {
    let (_, bytes) = sample(ValueEncoding::F32, 0.3);
    let (start, _) = item_section(&bytes, SectionKind::RowOffsets);
    let data_len = Model::from_bytes(&bytes)
        .unwrap()
        .items()
        .unwrap()
        .data_bytes() as u32;
    for (row, value) in [(3usize, data_len + 100), (3, u32::MAX), (5, 0)] {
        let b = damaged(&bytes, |b| {
            b[start + 4 * row..start + 4 * row + 4].copy_from_slice(&value.to_le_bytes())
        });
        let model =
            Model::from_bytes(&b).expect("only the first and last offsets are checked at open");
        let items = model.items().unwrap();
        assert!(
            matches!(items.row(row), Err(Error::CorruptRow { .. }))
                || matches!(items.row(row - 1), Err(Error::CorruptRow { .. }))
        );
        assert!(model.verify().is_err());
    }
    // The last offset must equal the row-data length: checked at open.
    let rows = Model::from_bytes(&bytes).unwrap().items().unwrap().rows();
    let b = damaged(&bytes, |b| {
        b[start + 4 * rows..start + 4 * rows + 4].copy_from_slice(&(data_len - 1).to_le_bytes())
    });
    assert!(matches!(
        Model::from_bytes(&b),
        Err(Error::InvalidMetadata(_))
    ));
}

#[test]
fn bad_indices_bitmaps_and_scales_are_row_errors() {
    // u8 list: make a row's first two indices equal.
    let (_, bytes) = sample(ValueEncoding::F32, 0.1);
    let model = Model::from_bytes(&bytes).unwrap();
    let items = model.items().unwrap();
    assert_eq!(items.index_encoding(), IndexEncoding::U8List);
    let r = (0..items.rows())
        .find(|&r| items.row(r).unwrap().nnz() >= 2)
        .unwrap();
    let (data_start, _) = item_section(&bytes, SectionKind::RowData);
    let (offsets_start, _) = item_section(&bytes, SectionKind::RowOffsets);
    let record = data_start
        + u32::from_le_bytes(
            bytes[offsets_start + 4 * r..offsets_start + 4 * r + 4]
                .try_into()
                .unwrap(),
        ) as usize;
    let b = damaged(&bytes, |b| b[record + 1] = b[record]);
    let e = Model::from_bytes(&b)
        .unwrap()
        .items()
        .unwrap()
        .row(r)
        .unwrap_err();
    assert!(
        matches!(e, Error::CorruptRow { reason, .. } if reason.contains("increasing")),
        "{e}"
    );
    let b = damaged(&bytes, |b| b[record] = 200); // column 200 >= dim 17
    assert!(
        Model::from_bytes(&b)
            .unwrap()
            .items()
            .unwrap()
            .row(r)
            .is_err()
    );

    // Bitmap with dim 17: a bit past the dimension in the last bitmap byte.
    let (_, bytes) = sample(ValueEncoding::I8, 0.6);
    let model = Model::from_bytes(&bytes).unwrap();
    let items = model.items().unwrap();
    assert_eq!(items.index_encoding(), IndexEncoding::Bitmap);
    let r = (0..items.rows())
        .find(|&r| !items.row(r).unwrap().is_empty())
        .unwrap();
    let (data_start, _) = item_section(&bytes, SectionKind::RowData);
    let (offsets_start, _) = item_section(&bytes, SectionKind::RowOffsets);
    let record = data_start
        + u32::from_le_bytes(
            bytes[offsets_start + 4 * r..offsets_start + 4 * r + 4]
                .try_into()
                .unwrap(),
        ) as usize;
    let b = damaged(&bytes, |b| b[record + 2] |= 0x80);
    assert!(
        Model::from_bytes(&b)
            .unwrap()
            .items()
            .unwrap()
            .row(r)
            .is_err()
    );
    // int8 scale (after the 3-byte bitmap) set to NaN, then to a negative number.
    for scale in [f32::NAN, -1.0, 0.0, f32::INFINITY] {
        let b = damaged(&bytes, |b| {
            b[record + 3..record + 7].copy_from_slice(&scale.to_le_bytes())
        });
        assert!(
            Model::from_bytes(&b)
                .unwrap()
                .items()
                .unwrap()
                .row(r)
                .is_err(),
            "scale {scale}"
        );
    }
}

#[test]
fn unsorted_ids_and_non_finite_values_fail_verify() {
    let (_, bytes) = sample(ValueEncoding::F32, 0.3);
    let (ids_start, _) = item_section(&bytes, SectionKind::Ids);
    // Swap the first two ids: lookups may miss, verify must complain.
    let b = damaged(&bytes, |b| {
        let (x, y) = (
            b[ids_start..ids_start + 4].to_vec(),
            b[ids_start + 4..ids_start + 8].to_vec(),
        );
        b[ids_start..ids_start + 4].copy_from_slice(&y);
        b[ids_start + 4..ids_start + 8].copy_from_slice(&x);
    });
    assert!(matches!(
        Model::from_bytes(&b).unwrap().verify(),
        Err(Error::CorruptTable { .. })
    ));
    // A value replaced by NaN.
    let (data_start, data_end) = item_section(&bytes, SectionKind::RowData);
    let b = damaged(&bytes, |b| {
        b[data_end - 4..data_end].copy_from_slice(&f32::NAN.to_le_bytes())
    });
    assert!(data_end - 4 > data_start);
    assert!(matches!(
        Model::from_bytes(&b).unwrap().verify(),
        Err(Error::CorruptRow { .. })
    ));
    let (bias_start, _) = item_section(&bytes, SectionKind::Bias);
    let b = damaged(&bytes, |b| {
        b[bias_start..bias_start + 4].copy_from_slice(&f32::INFINITY.to_le_bytes())
    });
    assert!(Model::from_bytes(&b).unwrap().verify().is_err());
}

#[test]
fn header_fields_are_checked() {
    let (_, bytes) = sample(ValueEncoding::F16, 0.3);
    let big_endian = damaged(&bytes, |b| {
        b[8..12].copy_from_slice(&format::BYTE_ORDER_MARK.to_be_bytes())
    });
    assert!(matches!(
        Model::from_bytes(&big_endian),
        Err(Error::ByteOrder { .. })
    ));
    let major2 = damaged(&bytes, |b| b[12..14].copy_from_slice(&2u16.to_le_bytes()));
    assert!(matches!(
        Model::from_bytes(&major2),
        Err(Error::UnsupportedVersion { major: 2, .. })
    ));
    let minor7 = damaged(&bytes, |b| b[14..16].copy_from_slice(&7u16.to_le_bytes()));
    assert_eq!(Model::from_bytes(&minor7).unwrap().format_minor(), 7);
    let bad_align = damaged(&bytes, |b| b[24..28].copy_from_slice(&96u32.to_le_bytes()));
    assert!(Model::from_bytes(&bad_align).is_err());
    let many_sections = damaged(&bytes, |b| {
        b[20..24].copy_from_slice(&u32::MAX.to_le_bytes())
    });
    assert!(Model::from_bytes(&many_sections).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    let len = trailing.len() as u64;
    trailing[32..40].copy_from_slice(&len.to_le_bytes());
    reseal(&mut trailing);
    assert!(
        Model::from_bytes(&trailing).is_err(),
        "a trailing byte was accepted"
    );
}

#[test]
fn nonzero_padding_is_rejected_at_open() {
    let (_, bytes) = sample(ValueEncoding::F32, 0.3);
    let model = Model::from_bytes(&bytes).unwrap();
    let sections: Vec<_> = model.sections().collect();
    let mut tested = 0;
    for pair in sections.windows(2) {
        let end = (pair[0].offset + pair[0].length) as usize;
        if end < pair[1].offset as usize {
            let mut b = bytes.clone();
            b[end] = 1; // padding is not covered by a checksum: it must be checked directly
            assert!(matches!(
                Model::from_bytes(&b),
                Err(Error::InvalidSection { .. })
            ));
            tested += 1;
        }
    }
    assert!(tested > 0);
}

#[test]
fn sections_of_unknown_kinds_are_skipped_and_checked() {
    let (inputs, bytes) = sample(ValueEncoding::F32, 0.3);
    let model = Model::from_bytes(&bytes).unwrap();
    let mut sections: Vec<(SectionKind, Vec<u8>)> = model
        .sections()
        .map(|s| {
            (
                s.kind,
                bytes[s.offset as usize..(s.offset + s.length) as usize].to_vec(),
            )
        })
        .collect();
    sections.push((
        SectionKind::Unknown(999),
        b"from a later minor version".to_vec(),
    ));
    let refs: Vec<(SectionKind, &[u8])> =
        sections.iter().map(|(k, b)| (*k, b.as_slice())).collect();
    let extended = pocketrec::builder::assemble(&refs);
    let model = Model::from_bytes(&extended).unwrap();
    model.verify().unwrap();
    let mut out = [Recommendation::default(); 3];
    model
        .recommend(inputs.user_id(0), 3, &[], &mut out)
        .unwrap();
    // Its bytes are still covered by its checksum.
    let mut damaged = extended.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(Model::from_bytes(&damaged).unwrap().verify().is_err());
}

#[test]
fn sections_used_twice_or_of_the_wrong_kind_are_rejected() {
    let (_, bytes) = sample(ValueEncoding::F32, 0.3);
    let model = Model::from_bytes(&bytes).unwrap();
    let (kind_at, _) = {
        let s = model
            .sections()
            .find(|s| s.kind == SectionKind::Bias)
            .unwrap();
        (
            format::HEADER_SIZE_V1 + s.index as usize * format::SECTION_ENTRY_SIZE,
            (),
        )
    };
    let b = damaged(&bytes, |b| {
        b[kind_at..kind_at + 4].copy_from_slice(&SectionKind::Ids.code().to_le_bytes())
    });
    assert!(matches!(
        Model::from_bytes(&b),
        Err(Error::InvalidSection { .. })
    ));
}

/// The item row records of `bytes`: (row, record start, record end) in the file, for each
/// non-empty row.
fn item_records(bytes: &[u8]) -> Vec<(usize, usize, usize)> {
    let (data, _) = item_section(bytes, SectionKind::RowData);
    let (offsets, _) = item_section(bytes, SectionKind::RowOffsets);
    let rows = Model::from_bytes(bytes).unwrap().items().unwrap().rows();
    let offset = |r: usize| {
        u32::from_le_bytes(
            bytes[offsets + 4 * r..offsets + 4 * r + 4]
                .try_into()
                .unwrap(),
        )
    };
    (0..rows)
        .map(|r| (r, data + offset(r) as usize, data + offset(r + 1) as usize))
        .filter(|(_, s, e)| e > s)
        .collect()
}

/// Int4 rows (u8 lists and bitmaps): a padding nibble that is not zero, or a record whose
/// length fits no number of entries, is an error for that row, for `recommend` (the row scan
/// meets it) and for `verify`; never a panic.
#[test]
fn int4_rows_with_a_bad_padding_nibble_or_length_are_refused() {
    for (density, index) in [(0.1, IndexEncoding::U8List), (0.6, IndexEncoding::Bitmap)] {
        let (inputs, bytes) = sample(ValueEncoding::I4, density);
        let model = Model::from_bytes(&bytes).unwrap();
        model.verify().unwrap();
        assert_eq!(model.format_minor(), format::FORMAT_MINOR_INT4);
        let items = model.items().unwrap();
        assert_eq!(items.index_encoding(), index);
        let records = item_records(&bytes);
        // Every row of an odd count: its last high nibble is padding.
        let odd: Vec<_> = records
            .iter()
            .filter(|(r, _, _)| items.row(*r).unwrap().nnz() % 2 == 1)
            .collect();
        assert!(!odd.is_empty(), "{index}: no row of an odd count");
        for &&(r, _, end) in &odd {
            for bit in [0x10u8, 0x80] {
                let b = damaged(&bytes, |b| b[end - 1] |= bit);
                let damaged_model = Model::from_bytes(&b).unwrap();
                let err = damaged_model.items().unwrap().row(r).unwrap_err();
                assert!(
                    err.to_string().contains("padding nibble"),
                    "{index} row {r}: {err}"
                );
                assert!(damaged_model.verify().is_err());
                assert!(exercise(&b).is_err(), "{index} row {r}");
                let user = vec![1.0f32; inputs.dim];
                let mut out = [Recommendation::default(); 3];
                let scan = damaged_model.recommend_vector(&user, 3, &[], &mut out);
                assert!(scan.is_err(), "{index} row {r}: the row scan read past it");
            }
        }
        // A record one byte shorter or longer than its entries (the next row's start moved):
        // for bitmaps always a wrong length; for u8 lists a body of 3k + 1 bytes (no count of
        // entries fills it) whenever the row had 3k + 2 or 3k bytes.
        let (offsets, _) = item_section(&bytes, SectionKind::RowOffsets);
        for &(r, start, end) in &records {
            let body = end - start - 2;
            for delta in [-1i64, 1] {
                let new_body = body as i64 + delta;
                let b = damaged(&bytes, |b| {
                    let at = offsets + 4 * (r + 1);
                    let o = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
                    b[at..at + 4].copy_from_slice(&((o as i64 + delta) as u32).to_le_bytes());
                });
                // (The last row's end is the row data's length, checked at open.)
                let Ok(opened) = Model::from_bytes(&b) else {
                    continue;
                };
                let row = opened.items().unwrap().row(r).map(|_| ());
                let never_fits = index == IndexEncoding::Bitmap || new_body % 3 == 1;
                if never_fits {
                    assert!(row.is_err(), "{index} row {r}: body {new_body} accepted");
                }
                let _ = exercise(&b);
            }
        }
    }
}

/// An int4 column layout whose values section ends in a padding nibble that is not zero (an
/// odd number of entries) fails `verify`; a reader that does not know value encoding 5 (as
/// a 1.5 reader does not) refuses the file at open, naming the code.
#[test]
fn int4_column_padding_and_unknown_codes_are_refused() {
    let mut found_odd = false;
    for seed in 0..8 {
        let mut inputs = Inputs::random(seed, 4, 50, 17, 0.2);
        inputs.values = ValueEncoding::I4;
        inputs.layout = pocketrec::builder::Layout::Both;
        let bytes = inputs.build();
        let model = Model::from_bytes(&bytes).unwrap();
        model.verify().unwrap();
        if model.items().unwrap().nnz() % 2 == 1 {
            found_odd = true;
            let (_, end) = item_section(&bytes, SectionKind::ColumnValues);
            let b = damaged(&bytes, |b| b[end - 1] |= 0x40);
            let err = Model::from_bytes(&b).unwrap().verify().unwrap_err();
            assert!(err.to_string().contains("padding nibble"), "{err}");
            exercise(&b).unwrap_err();
        }
        // The item table's value encoding byte: after the name, the role and three varints
        // (rows, dim, nnz).
        let name = b"item_embedding";
        let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len() + 1;
        let mut i = at;
        for _ in 0..3 {
            while bytes[i] & 0x80 != 0 {
                i += 1;
            }
            i += 1;
        }
        assert_eq!(bytes[i], ValueEncoding::I4.code());
        let b = damaged(&bytes, |b| b[i] = 6);
        match Model::from_bytes(&b) {
            Err(Error::Unsupported { code: 6, .. }) => {}
            other => panic!("value encoding 6: {other:?}"),
        }
    }
    assert!(found_odd, "no sample with an odd number of entries");
}
