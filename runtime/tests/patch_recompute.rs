//! Patches that leave the fold-in Gramian and the block bounds to the device (`Op::Recompute`,
//! patch minor 2): the device's recomputation gives the writer's bytes, in every layout and
//! value encoding the builder writes, with biases and cosine scoring; a sink that cannot give
//! back what it wrote, recomputed bytes at the wrong place and a wrong result are refused.

use pocketrec::Scoring;
use pocketrec::builder::{FoldInParams, Layout, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::patch::{self, Op, Sink, SliceSink};
use pocketrec::{Error, ListRows, Model, Role, SectionKind, ValueEncoding};

const DIM: usize = 64;

/// Deterministic sparse values: about a third of the entries non-zero.
fn values(rows: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..rows * DIM)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state.is_multiple_of(3) {
                ((state >> 11) % 2001) as f32 / 1000.0 - 1.0
            } else {
                0.0
            }
        })
        .collect()
}

fn model(items: &[f32], layout: Layout, encoding: ValueEncoding) -> Vec<u8> {
    let users = SparseMatrix::from_dense(20, DIM, &values(20, 99)).unwrap();
    let items = SparseMatrix::from_dense(items.len() / DIM, DIM, items).unwrap();
    ModelBuilder::new()
        .table(TableSpec::new("users", Role::User, users).values(encoding))
        .table(
            TableSpec::new("items", Role::Item, items)
                .layout(layout)
                .values(encoding),
        )
        .fold_in(FoldInParams {
            unobserved_weight: 0.05,
            regularization: 0.5,
        })
        .build()
        .unwrap()
}

/// Two versions of a model: the second with three item rows changed.
fn pair(layout: Layout, encoding: ValueEncoding) -> (Vec<u8>, Vec<u8>) {
    let old_items = values(300, 7);
    let mut new_items = old_items.clone();
    let changed = values(3, 8);
    for (k, row) in [5usize, 140, 299].into_iter().enumerate() {
        new_items[row * DIM..(row + 1) * DIM].copy_from_slice(&changed[k * DIM..(k + 1) * DIM]);
    }
    (
        model(&old_items, layout, encoding),
        model(&new_items, layout, encoding),
    )
}

/// Where the new file's Gramian lies: after the fold-in section's 16-byte header.
fn gramian_range(file: &[u8]) -> std::ops::Range<usize> {
    let model = Model::from_bytes(file).unwrap();
    let section = model
        .sections()
        .find(|s| s.kind == SectionKind::FoldIn)
        .unwrap();
    let start = section.offset as usize + 16;
    start..(section.offset + section.length) as usize
}

/// A patch that carries every byte of `new` but those of `recomputed` (ranges in order).
fn patch_recomputing_all(
    old: &[u8],
    new: &[u8],
    recomputed: &[std::ops::Range<usize>],
    coded: bool,
) -> Vec<u8> {
    let mut ops = Vec::new();
    let mut at = 0;
    for range in recomputed {
        ops.push(Op::Insert(&new[at..range.start]));
        ops.push(Op::Recompute {
            len: range.len() as u64,
        });
        at = range.end;
    }
    ops.push(Op::Insert(&new[at..]));
    ops.push(Op::End);
    if coded {
        patch::encode_coded(old, new, &ops)
    } else {
        patch::encode(old, new, &ops)
    }
}

/// A patch that carries every byte of `new` but the Gramian (at `at`, `len` bytes).
fn patch_recomputing(old: &[u8], new: &[u8], at: usize, len: usize, coded: bool) -> Vec<u8> {
    patch_recomputing_all(old, new, std::slice::from_ref(&(at..at + len)), coded)
}

fn apply_to_buffer(old: &[u8], patch: &[u8], size: usize) -> Result<Vec<u8>, Error> {
    let mut out = vec![0xA5u8; size];
    let mut sink = SliceSink::new(&mut out);
    patch::apply(old, patch, &mut sink)?;
    Ok(sink.written().to_vec())
}

#[test]
fn the_device_recomputes_the_writers_gramian_in_every_layout_and_encoding() {
    for layout in [Layout::Rows, Layout::Both, Layout::Columns] {
        for &encoding in ValueEncoding::ALL {
            let (old, new) = pair(layout, encoding);
            let range = gramian_range(&new);
            // d = 64: 2,080 entries, more than one chunk of the device's sums.
            assert_eq!(range.len(), 4 * 2080);
            assert_ne!(old[gramian_range(&old)], new[range.clone()]);
            for coded in [false, true] {
                let bytes = patch_recomputing(&old, &new, range.start, range.len(), coded);
                assert_eq!(patch::Patch::parse(&bytes).unwrap().header().minor, 2);
                let mut out = vec![0u8; new.len()];
                let mut sink = SliceSink::new(&mut out);
                let summary = patch::apply(&old, &bytes, &mut sink).unwrap();
                assert_eq!(sink.written(), &new[..], "{layout:?} {encoding:?}");
                assert_eq!(summary.derived, range.len() as u64);
                assert_eq!(summary.carried, (new.len() - range.len()) as u64);
            }
        }
    }
}

/// A sink that only streams.
struct Stream(Vec<u8>);

impl Sink for Stream {
    fn write(&mut self, bytes: &[u8]) -> pocketrec::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

#[test]
fn a_sink_that_cannot_read_back_is_refused() {
    let (old, new) = pair(Layout::Columns, ValueEncoding::I8);
    let range = gramian_range(&new);
    let bytes = patch_recomputing(&old, &new, range.start, range.len(), true);
    let mut stream = Stream(Vec::new());
    assert!(matches!(
        patch::apply(&old, &bytes, &mut stream),
        Err(Error::Sink(_))
    ));
}

#[test]
fn a_gramian_elsewhere_or_a_wrong_result_is_refused() {
    let (old, new) = pair(Layout::Rows, ValueEncoding::F32);
    let range = gramian_range(&new);
    // Four bytes early: inside the fold-in header.
    let early = patch_recomputing(&old, &new, range.start - 4, range.len(), false);
    assert!(matches!(
        apply_to_buffer(&old, &early, new.len()),
        Err(Error::PatchResult(_))
    ));
    // Before the item table is complete (the whole file recomputed as a Gramian is not).
    let ops = [Op::Recompute { len: 64 }, Op::Insert(&new[64..]), Op::End];
    let misplaced = patch::encode(&old, &new, &ops);
    assert!(matches!(
        apply_to_buffer(&old, &misplaced, new.len()),
        Err(Error::PatchResult(_))
    ));
    // A length that is not the section's body.
    let ops = [
        Op::Insert(&new[..range.start]),
        Op::Recompute { len: 3 },
        Op::Insert(&new[range.start + 3..]),
        Op::End,
    ];
    let ragged = patch::encode(&old, &new, &ops);
    assert!(matches!(
        apply_to_buffer(&old, &ragged, new.len()),
        Err(Error::PatchResult(_))
    ));
    // The item rows before the Gramian are another model's: the device computes their
    // Gramian, and the result's hash refuses it at the end.
    let mut forged = new.clone();
    let row_data = Model::from_bytes(&new)
        .unwrap()
        .sections()
        .find(|s| s.kind == SectionKind::RowData)
        .unwrap();
    forged[row_data.offset as usize + 8] ^= 0x40;
    let ops = [
        Op::Insert(&forged[..range.start]),
        Op::Recompute {
            len: range.len() as u64,
        },
        Op::End,
    ];
    let wrong = patch::encode(&old, &new, &ops);
    assert!(
        patch::check(&old, &wrong).is_ok(),
        "the first pass cannot tell"
    );
    assert!(matches!(
        apply_to_buffer(&old, &wrong, new.len()),
        Err(Error::PatchResult(_))
    ));
}

/// Items with block bounds (a column layout, rows clustered), biases and the given scoring;
/// the second version with three rows changed.
fn bounds_pair(encoding: ValueEncoding, scoring: Scoring) -> (Vec<u8>, Vec<u8>) {
    let build = |items: &[f32]| {
        let rows = items.len() / DIM;
        let matrix = SparseMatrix::from_dense(rows, DIM, items).unwrap();
        let bias: Vec<f32> = (0..rows).map(|r| (r % 17) as f32 / 8.0 - 1.0).collect();
        ModelBuilder::new()
            .scoring(scoring)
            .table(TableSpec::new(
                "users",
                Role::User,
                SparseMatrix::from_dense(20, DIM, &values(20, 99)).unwrap(),
            ))
            .table(
                TableSpec::new("items", Role::Item, matrix)
                    .layout(Layout::Columns)
                    .values(encoding)
                    .bias(bias)
                    .with_block_bounds(64),
            )
            .fold_in(FoldInParams {
                unobserved_weight: 0.05,
                regularization: 0.5,
            })
            .build()
            .unwrap()
    };
    let old_items = values(300, 11);
    let mut new_items = old_items.clone();
    let changed = values(3, 12);
    for (k, row) in [0usize, 150, 299].into_iter().enumerate() {
        new_items[row * DIM..(row + 1) * DIM].copy_from_slice(&changed[k * DIM..(k + 1) * DIM]);
    }
    (build(&old_items), build(&new_items))
}

/// The body of the file's block-bounds section (after its 24-byte header).
fn bounds_range(file: &[u8]) -> std::ops::Range<usize> {
    let section = Model::from_bytes(file)
        .unwrap()
        .sections()
        .find(|s| s.kind == SectionKind::BlockBounds)
        .unwrap();
    section.offset as usize + 24..(section.offset + section.length) as usize
}

#[test]
fn the_device_recomputes_the_writers_block_bounds() {
    for scoring in [Scoring::Dot, Scoring::Cosine] {
        for &encoding in ValueEncoding::ALL {
            let (old, new) = bounds_pair(encoding, scoring);
            let (bounds, gramian) = (bounds_range(&new), gramian_range(&new));
            assert!(bounds.end <= gramian.start);
            assert_ne!(old[bounds_range(&old)], new[bounds.clone()]);
            for coded in [false, true] {
                let bytes =
                    patch_recomputing_all(&old, &new, &[bounds.clone(), gramian.clone()], coded);
                let out = apply_to_buffer(&old, &bytes, new.len())
                    .unwrap_or_else(|e| panic!("{encoding:?} {scoring:?}: {e}"));
                assert_eq!(out, new, "{encoding:?} {scoring:?}");
            }
            // The bounds alone, the Gramian carried.
            let bytes = patch_recomputing_all(&old, &new, std::slice::from_ref(&bounds), true);
            assert_eq!(apply_to_buffer(&old, &bytes, new.len()).unwrap(), new);
            // Recomputed bytes that stop one byte short of the section's end are refused.
            let short = bounds.start..bounds.end - 1;
            let bytes = patch_recomputing_all(&old, &new, &[short], false);
            assert!(matches!(
                apply_to_buffer(&old, &bytes, new.len()),
                Err(Error::PatchResult(_))
            ));
        }
    }
}

/// The column-layout sections of a table that also stores row records (`Layout::Both`).
fn column_ranges(file: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges: Vec<_> = Model::from_bytes(file)
        .unwrap()
        .sections()
        .filter(|s| s.kind.is_column_layout())
        .map(|s| s.offset as usize..(s.offset + s.length) as usize)
        .collect();
    ranges.sort_by_key(|r| r.start);
    ranges
}

#[test]
fn the_device_recomputes_the_column_layout_of_a_table_with_row_records() {
    for (scoring, list_rows) in [
        (Scoring::Dot, ListRows::U16),
        (Scoring::Cosine, ListRows::U16),
        (Scoring::Dot, ListRows::Bitmap),
    ] {
        for &encoding in ValueEncoding::ALL {
            let (old, new) = {
                let build = |items: &[f32]| {
                    let rows = items.len() / DIM;
                    ModelBuilder::new()
                        .scoring(scoring)
                        .table(
                            TableSpec::new(
                                "items",
                                Role::Item,
                                SparseMatrix::from_dense(rows, DIM, items).unwrap(),
                            )
                            .layout(Layout::Both)
                            .list_rows(list_rows)
                            .values(encoding)
                            .bias((0..rows).map(|r| r as f32 / 300.0).collect()),
                        )
                        .build()
                        .unwrap()
                };
                let old_items = values(300, 21);
                let mut new_items = old_items.clone();
                new_items[7 * DIM..8 * DIM].copy_from_slice(&values(1, 22));
                (build(&old_items), build(&new_items))
            };
            let ranges = column_ranges(&new);
            assert!(ranges.len() >= 3, "{encoding:?} {scoring:?}");
            // The changed row moves entries of the column values: they are recomputed, not copied.
            let values = Model::from_bytes(&new)
                .unwrap()
                .sections()
                .find(|s| s.kind == SectionKind::ColumnValues)
                .unwrap();
            let at = values.offset as usize..(values.offset + values.length) as usize;
            assert!(old.len() != new.len() || old[at.clone()] != new[at]);
            let bytes = patch_recomputing_all(&old, &new, &ranges, true);
            let out = apply_to_buffer(&old, &bytes, new.len())
                .unwrap_or_else(|e| panic!("{encoding:?} {scoring:?}: {e}"));
            assert_eq!(out, new, "{encoding:?} {scoring:?}");
        }
    }
}

/// A patch that recomputes is damaged like any other: every truncation and every single-byte
/// change is refused before anything is written (by the header's and the body's checksums).
#[test]
fn every_truncation_and_byte_change_of_a_recomputing_patch_is_refused_up_front() {
    let (old, new) = bounds_pair(ValueEncoding::I8, Scoring::Dot);
    let (bounds, gramian) = (bounds_range(&new), gramian_range(&new));
    let bytes = patch_recomputing_all(&old, &new, &[bounds, gramian], true);
    assert_eq!(apply_to_buffer(&old, &bytes, new.len()).unwrap(), new);
    let untouched = |patch: &[u8]| {
        let mut out = vec![0xA5u8; new.len()];
        let mut sink = SliceSink::new(&mut out);
        let refused = patch::apply(&old, patch, &mut sink).is_err();
        refused && sink.written().is_empty()
    };
    for len in 0..bytes.len() {
        assert!(untouched(&bytes[..len]), "truncated to {len} bytes");
    }
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        assert!(untouched(&damaged), "byte {at} changed");
    }
}
