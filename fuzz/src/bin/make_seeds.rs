//! Writes small valid models (every value and index encoding, bitmap rows in blocks and with
//! per-row offsets, sliced rows, block bounds with
//! clustered rows, ids, biases, fold-in
//! sections) as the fuzzers' seed corpus: `make_seeds DIR` for `open_and_query`;
//! `make_seeds DIR fold_in` for `fold_in`: models with a fold-in section, each behind a few
//! query headers (the layout is documented in `fuzz_targets/fold_in.rs`); `make_seeds DIR
//! apply_patch` for `apply_patch`: small models and patches between them.

use pocketrec::builder::{FoldInParams, Layout, ModelBuilder, RowOrder, SparseMatrix, TableSpec};
use pocketrec::patch::{self, Op};
use pocketrec::{IdKind, ListRows, Role, Scoring, ValueEncoding};

fn table(rows: usize, dim: usize, density_per_mille: usize, salt: usize) -> SparseMatrix {
    table_with_empty_rows(rows, dim, density_per_mille, salt, usize::MAX)
}

/// [`table`] with every `empty_every`-th row (from row 3) all zero.
fn table_with_empty_rows(
    rows: usize,
    dim: usize,
    density_per_mille: usize,
    salt: usize,
    empty_every: usize,
) -> SparseMatrix {
    let data: Vec<f32> = (0..rows * dim)
        .map(|i| {
            let h = (i * 2_654_435_761 + salt * 97) % 1000;
            if (i / dim) % empty_every == 3 % empty_every && empty_every < rows {
                0.0
            } else if h < density_per_mille {
                (h as f32 - 500.0) / 100.0
            } else {
                0.0
            }
        })
        .collect();
    SparseMatrix::from_dense(rows, dim, &data).expect("valid seed table")
}

/// Models with a fold-in section: every value encoding and layout, the Cholesky solver's
/// widest dimension (64) and the conjugate gradient's beyond it (65, 100).
fn fold_in_models() -> Vec<Vec<u8>> {
    let mut models = Vec::new();
    for (n, &values) in ValueEncoding::ALL.iter().enumerate() {
        for (m, (dim, density)) in [
            (8usize, 300usize),
            (17, 600),
            (64, 100),
            (65, 100),
            (100, 50),
        ]
        .into_iter()
        .enumerate()
        {
            let users = TableSpec::new("u", Role::User, table(3, dim, density, 5)).values(values);
            let mut items = TableSpec::new("i", Role::Item, table(40, dim, density, 6))
                .values(values)
                .layout(match (n + m) % 3 {
                    0 => Layout::Rows,
                    1 => Layout::Both,
                    _ => Layout::Columns,
                })
                .bias((0..40).map(|i| i as f32 / 50.0).collect());
            if m % 2 == 1 {
                items = items.ids((0..40).map(|i| 7 + i * 5).collect(), IdKind::Integer);
            }
            let builder = ModelBuilder::new()
                .scoring(if (n + m) % 2 == 0 {
                    Scoring::Dot
                } else {
                    Scoring::Cosine
                })
                .table(users)
                .table(items);
            // Every other model folds in by the softmax objective (no Gramian).
            let builder = if (n + m) % 2 == 0 {
                builder.fold_in(FoldInParams {
                    unobserved_weight: [0.0, 0.05, 2.0][m % 3],
                    regularization: [0.01, 0.3, 10.0][(n + m) % 3],
                })
            } else {
                builder.fold_in_softmax(pocketrec::SoftmaxFoldIn {
                    temperature: [0.05, 0.1, 1.0][m % 3],
                    power: 1.2,
                    step: 1.0,
                    iterations: [1, 8][n % 2],
                    // Half with a catalogue summary of a few clusters.
                    clusters: [0, 3][m % 2],
                })
            };
            let bytes = builder.build().expect("fold-in seed model builds");
            models.push(bytes);
        }
    }
    models
}

/// Query headers for the `fold_in` target (56 bytes each): five known items; the same with
/// weights and a prior; one item and an unknown one with a wrong-length output; no item and
/// a prior only.
fn fold_in_headers() -> Vec<[u8; 56]> {
    let mut plain = [0u8; 56];
    plain[0] = 5;
    plain[2..7].copy_from_slice(&[0, 3, 9, 17, 33]);
    let mut weighted = plain;
    weighted[0] = 8 | 0x20 | 0x40;
    weighted[1] = 16; // precision 0.5
    weighted[2..10].copy_from_slice(&[1, 2, 2, 5, 8, 13, 21, 0xF3]);
    weighted[26..34].copy_from_slice(&[32, 64, 16, 0, 8, 96, 32, 32]);
    weighted[50..56].copy_from_slice(&[40, 24, 32, 0, 64, 8]);
    let mut odd = [0u8; 56];
    odd[0] = 2 | 0x80;
    odd[2..4].copy_from_slice(&[4, 0xF9]);
    let mut prior_only = [0u8; 56];
    prior_only[0] = 0x40;
    prior_only[1] = 32;
    prior_only[50..56].copy_from_slice(&[32, 16, 48, 8, 0, 40]);
    vec![plain, weighted, odd, prior_only]
}

/// Operations that make `new` from `old`: equal bytes copied, differing runs replaced in place
/// (same length), or a common prefix copied and the rest inserted.
fn simple_ops<'a>(old: &[u8], new: &'a [u8]) -> Vec<Op<'a>> {
    let mut ops = Vec::new();
    if old.len() == new.len() {
        let mut i = 0;
        while i < new.len() {
            let start = i;
            while i < new.len() && old[i] == new[i] {
                i += 1;
            }
            if i > start {
                ops.push(Op::Copy {
                    len: (i - start) as u64,
                });
            }
            let start = i;
            while i < new.len() && old[i] != new[i] {
                i += 1;
            }
            if i > start {
                ops.push(Op::Replace(&new[start..i]));
            }
        }
    } else {
        let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
        ops.push(Op::Copy { len: prefix as u64 });
        ops.push(Op::Insert(&new[prefix..]));
        ops.push(Op::Seek(-(prefix as i64) / 2));
    }
    ops.push(Op::End);
    ops
}

/// Seeds for `apply_patch`: (base, patch) pairs between small models, in place and not,
/// patches that recompute the fold-in Gramian, block bounds and column layouts, and one of copy-adds over offsets.
fn patch_seeds(dir: &str) -> usize {
    let models = fold_in_models();
    let mut pairs: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = Vec::new();
    for (m, old) in models.iter().enumerate().step_by(4) {
        let mut changed = old.clone();
        for at in (old.len() / 3..old.len()).step_by(97) {
            changed[at] ^= 0x21;
        }
        let ops = simple_ops(old, &changed);
        pairs.push((
            old.clone(),
            changed.clone(),
            patch::encode(old, &changed, &ops),
        ));
        pairs.push((
            old.clone(),
            changed.clone(),
            patch::encode_coded(old, &changed, &ops),
        ));
        let other = &models[(m + 1) % models.len()];
        let ops = simple_ops(old, other);
        pairs.push((old.clone(), other.clone(), patch::encode(old, other, &ops)));
    }
    // The fold-in Gramian and block bounds left to the device (minor 2): each model with
    // them, remade from itself.
    let with_bounds: Vec<Vec<u8>> = [ValueEncoding::I8, ValueEncoding::F16]
        .into_iter()
        .map(|values| {
            ModelBuilder::new()
                .table(TableSpec::new("u", Role::User, table(3, 16, 400, 5)))
                .table(
                    TableSpec::new("i", Role::Item, table(150, 16, 400, 6))
                        .values(values)
                        .layout(Layout::Columns)
                        .with_block_bounds(64)
                        .bias((0..150).map(|i| i as f32 / 90.0).collect()),
                )
                .fold_in(pocketrec::FoldInParams {
                    unobserved_weight: 0.1,
                    regularization: 0.5,
                })
                .build()
                .expect("a model with block bounds")
        })
        .collect();
    for old in models.iter().chain(&with_bounds) {
        let Ok(model) = pocketrec::Model::from_bytes(old) else {
            continue;
        };
        let both = model.items().is_ok_and(|t| t.has_rows() && t.has_columns())
            && model
                .users()
                .map_or(true, |t| !t.has_columns() || t.has_rows());
        let mut bodies: Vec<(u64, u64)> = model
            .sections()
            .filter_map(|s| match s.kind {
                pocketrec::SectionKind::FoldIn => Some((s.offset + 16, s.length - 16)),
                pocketrec::SectionKind::BlockBounds => Some((s.offset + 24, s.length - 24)),
                // Column sections follow from row records (Layout::Both).
                kind if both && kind.is_column_layout() => Some((s.offset, s.length)),
                _ => None,
            })
            .collect();
        if bodies.is_empty() {
            continue;
        }
        bodies.sort_unstable();
        let mut ops = Vec::new();
        let mut at = 0;
        for (start, len) in bodies {
            ops.push(Op::Copy { len: start - at });
            ops.push(Op::Recompute { len });
            ops.push(Op::Seek(len as i64));
            at = start + len;
        }
        ops.push(Op::Copy {
            len: old.len() as u64 - at,
        });
        ops.push(Op::End);
        pairs.push((old.clone(), old.clone(), patch::encode(old, old, &ops)));
        pairs.push((
            old.clone(),
            old.clone(),
            patch::encode_coded(old, old, &ops),
        ));
    }
    let offsets: Vec<u8> = (0..64u32).flat_map(|i| (i * 12).to_le_bytes()).collect();
    let moved: Vec<u8> = (0..64u32)
        .flat_map(|i| (i * 12 + if i > 20 { 3 } else { 0 }).to_le_bytes())
        .collect();
    let ops = [
        Op::Copy { len: 84 },
        Op::CopyAdd {
            count: 43,
            width: 4,
            delta: 3,
        },
        Op::End,
    ];
    // Int4 values one nibble later: a nibble copy.
    let shifted: Vec<u8> = offsets
        .windows(2)
        .map(|pair| (pair[0] >> 4) | (pair[1] << 4))
        .collect();
    pairs.push((
        offsets.clone(),
        shifted.clone(),
        patch::encode(
            &offsets,
            &shifted,
            &[
                Op::CopyNibbles {
                    len: shifted.len() as u64,
                },
                Op::End,
            ],
        ),
    ));
    pairs.push((
        offsets.clone(),
        moved.clone(),
        patch::encode(&offsets, &moved, &ops),
    ));
    // Bare operations over the offsets (mode 2 of the target): the body of the last patch, as
    // bytes and coded.
    let body = &pairs[pairs.len() - 1].2[128..];
    let mut seed = (offsets.len() as u32).to_le_bytes().to_vec();
    seed[3] = 2 | (31 << 3);
    seed.extend_from_slice(&offsets);
    seed.extend_from_slice(body);
    std::fs::write(format!("{dir}/patch-ops.bin"), seed).expect("write seed");
    let coded = patch::encode_coded(&offsets, &moved, &ops);
    let mut seed = (offsets.len() as u32).to_le_bytes().to_vec();
    seed[3] = 2 | 4 | (31 << 3);
    seed.extend_from_slice(&offsets);
    seed.extend_from_slice(&coded[128..]);
    std::fs::write(format!("{dir}/patch-ops-coded.bin"), seed).expect("write seed");
    for (n, (base, _, patch_bytes)) in pairs.iter().enumerate() {
        let mut seed = (base.len() as u32).to_le_bytes();
        seed[3] = (n % 2) as u8;
        let mut seed = seed.to_vec();
        seed.extend_from_slice(base);
        seed.extend_from_slice(patch_bytes);
        std::fs::write(format!("{dir}/patch-{n:02}.bin"), seed).expect("write seed");
    }
    pairs.len()
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_seeds DIR [fold_in]");
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    if std::env::args().nth(2).as_deref() == Some("apply_patch") {
        let n = patch_seeds(&dir);
        println!("wrote {n} patch seeds to {dir}");
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("fold_in") {
        let mut n = 0;
        for (m, model) in fold_in_models().iter().enumerate() {
            for (h, header) in fold_in_headers().iter().enumerate() {
                // Every model behind the plain header; the others by turns.
                if h != 0 && m % 3 != h % 3 {
                    continue;
                }
                let mut seed = header.to_vec();
                seed.extend_from_slice(model);
                std::fs::write(format!("{dir}/fold-in-{m:02}-{h}.bin"), seed).expect("write seed");
                n += 1;
            }
        }
        println!("wrote {n} fold-in seeds to {dir}");
        return;
    }
    let mut n = 0;
    for &values in ValueEncoding::ALL {
        // Index encodings (the writer's choice): 8 dims at 10 %, 17 at 60 % and 64 nearly dense
        // take bitmaps, 64 at 10 % u8 lists, 300 at 3 % u16 lists. Up to 64 dims, the AVX-512
        // row kernels serve the first four.
        for (dim, density) in [
            (8usize, 100usize),
            (17, 600),
            (64, 100),
            (64, 999),
            (300, 30),
        ] {
            let users = TableSpec::new("u", Role::User, table(5, dim, density, 1)).values(values);
            let items = TableSpec::new("i", Role::Item, table(12, dim, density, 2))
                .values(values)
                .layout(match n % 3 {
                    0 => Layout::Rows,
                    1 => Layout::Both,
                    _ => Layout::Columns,
                })
                // Every other pair of column layouts names its rows by bitmaps (format 1.3).
                .list_rows(if (n / 3) % 2 == 1 {
                    ListRows::Bitmap
                } else {
                    ListRows::U16
                })
                .ids((0..12).map(|i| 1000 + i * 3).collect(), IdKind::Integer)
                .bias((0..12).map(|i| i as f32 / 10.0).collect());
            let bytes = ModelBuilder::new()
                .scoring(if n % 2 == 0 {
                    Scoring::Dot
                } else {
                    Scoring::Cosine
                })
                .table(users)
                .table(items)
                .property("seed", n.to_string())
                .build()
                .expect("seed model builds");
            std::fs::write(format!("{dir}/seed-{n:02}.prec"), bytes).expect("write seed");
            n += 1;
        }
    }
    // Bitmap rows in blocks (format 1.7, the writer's default for bitmap rows) over several
    // blocks, the last one partial, with all-zero rows among them; and the same rows with one
    // offset a row (format 1.3 rows).
    for &values in ValueEncoding::ALL {
        for per_row in [false, true] {
            let users = TableSpec::new("u", Role::User, table_with_empty_rows(21, 24, 500, 5, 7))
                .values(values)
                .with_per_row_offsets(per_row);
            let items = TableSpec::new("i", Role::Item, table_with_empty_rows(40, 24, 500, 6, 7))
                .values(values)
                .with_per_row_offsets(per_row);
            let bytes = ModelBuilder::new()
                .table(users)
                .table(items)
                .build()
                .expect("bitmap seed model builds");
            std::fs::write(format!("{dir}/seed-{n:02}.prec"), bytes).expect("write seed");
            n += 1;
        }
    }
    // Int4 values (format 1.6) once more, rows of every count from 0 to 9 (odd counts end in
    // a padding nibble) and column layouts with an odd number of entries (whose values
    // section ends in one), u8 lists, bitmaps and u16 lists.
    for (dim, density) in [(9usize, 450usize), (33, 700), (300, 10)] {
        for layout in [Layout::Rows, Layout::Both, Layout::Columns] {
            let users = TableSpec::new("u", Role::User, table(3, dim, density, 7))
                .values(ValueEncoding::I4);
            let items = TableSpec::new("i", Role::Item, table(23, dim, density, 8))
                .values(ValueEncoding::I4)
                .layout(layout);
            let bytes = ModelBuilder::new()
                .table(users)
                .table(items)
                .build()
                .expect("int4 seed model builds");
            std::fs::write(format!("{dir}/seed-{n:02}.prec"), bytes).expect("write seed");
            n += 1;
        }
    }
    // Sliced rows (format 1.4): both tables, every value encoding but int4 (which sliced rows
    // do not take), a window and a half of items (two windows, the second partial, its last
    // slice partial too).
    for &values in ValueEncoding::ALL {
        if values == ValueEncoding::I4 {
            continue;
        }
        for (dim, density) in [(8usize, 300usize), (64, 100), (200, 20)] {
            let users = TableSpec::new("u", Role::User, table(5, dim, density, 3))
                .values(values)
                .with_sliced_rows(true);
            let items = TableSpec::new("i", Role::Item, table(300, dim, density, 4))
                .values(values)
                .with_sliced_rows(true)
                .bias((0..300).map(|i| i as f32 / 100.0).collect());
            let bytes = ModelBuilder::new()
                .scoring(if n % 2 == 0 {
                    Scoring::Dot
                } else {
                    Scoring::Cosine
                })
                .table(users)
                .table(items)
                .build()
                .expect("sliced seed model builds");
            std::fs::write(format!("{dir}/seed-{n:02}.prec"), bytes).expect("write seed");
            n += 1;
        }
    }
    // Block bounds (format 1.5): clustered item rows with an id index, bounds every 64 rows,
    // every value encoding, dot and cosine, with and without biases and row records.
    for &values in ValueEncoding::ALL {
        for (dim, density, bias) in [(8usize, 300usize, true), (64, 100, false)] {
            let users = TableSpec::new("u", Role::User, table(5, dim, density, 5)).values(values);
            let mut items = TableSpec::new("i", Role::Item, table(200, dim, density, 6))
                .values(values)
                .layout(if bias { Layout::Both } else { Layout::Columns })
                .row_order(RowOrder::Clustered)
                .with_block_bounds(64);
            if bias {
                items = items
                    .ids((0..200).map(|i| 7 * i + 3).collect(), IdKind::Integer)
                    .bias((0..200).map(|i| (i % 7) as f32 / 10.0).collect());
            }
            let bytes = ModelBuilder::new()
                .scoring(if n % 2 == 0 {
                    Scoring::Dot
                } else {
                    Scoring::Cosine
                })
                .table(users)
                .table(items)
                .build()
                .expect("bounded seed model builds");
            std::fs::write(format!("{dir}/seed-{n:02}.prec"), bytes).expect("write seed");
            n += 1;
        }
    }
    // Models with a fold-in section, so that opening and verifying them is fuzzed here too.
    for model in fold_in_models() {
        std::fs::write(format!("{dir}/seed-{n:02}.prec"), model).expect("write seed");
        n += 1;
    }
    println!("wrote {n} seeds to {dir}");
}
