//! Patches that leave the fold-in Gramian to the device (`Op::Gramian`, patch minor 2): the
//! device's recomputation gives the writer's bytes, in every layout and value encoding the
//! builder writes; a sink that cannot give back what it wrote, a Gramian at the wrong place and
//! a wrong result are refused.

use pocketrec::builder::{FoldInParams, Layout, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::patch::{self, Op, Sink, SliceSink};
use pocketrec::{Error, Model, Role, SectionKind, ValueEncoding};

const DIM: usize = 64;

/// Deterministic sparse values: about a third of the entries non-zero.
fn values(rows: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..rows * DIM)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state % 3 == 0 {
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

/// A patch that carries every byte of `new` but the Gramian (at `at`, `len` bytes).
fn patch_recomputing(old: &[u8], new: &[u8], at: usize, len: usize, coded: bool) -> Vec<u8> {
    let ops = [
        Op::Insert(&new[..at]),
        Op::Gramian { len: len as u64 },
        Op::Insert(&new[at + len..]),
        Op::End,
    ];
    if coded {
        patch::encode_coded(old, new, &ops)
    } else {
        patch::encode(old, new, &ops)
    }
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
        for encoding in [
            ValueEncoding::F32,
            ValueEncoding::F16,
            ValueEncoding::Bf16,
            ValueEncoding::I8,
            ValueEncoding::I4,
        ] {
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
    let ops = [Op::Gramian { len: 64 }, Op::Insert(&new[64..]), Op::End];
    let misplaced = patch::encode(&old, &new, &ops);
    assert!(matches!(
        apply_to_buffer(&old, &misplaced, new.len()),
        Err(Error::PatchResult(_))
    ));
    // A length that is not whole f32s, refused by the first pass.
    let ops = [
        Op::Insert(&new[..range.start]),
        Op::Gramian { len: 3 },
        Op::End,
    ];
    let ragged = patch::encode(&old, &new, &ops);
    assert!(matches!(
        patch::check(&old, &ragged),
        Err(Error::InvalidPatch(_))
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
        Op::Gramian {
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
