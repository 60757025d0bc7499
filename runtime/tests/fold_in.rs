//! Fold-in: both solvers against a dense f64 reference solve (every value encoding and layout,
//! with and without a prior and weights), the Gramian the builder writes, and every bad input
//! as its documented error.

#![allow(clippy::needless_range_loop)] // the reference solve reads as the textbook writes it

mod common;

use common::Inputs;
use pocketrec::builder::{FoldInParams, Layout, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{Error, Model, Prior, Recommendation, Role, SectionKind, Solver, ValueEncoding};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PARAMS: FoldInParams = FoldInParams {
    unobserved_weight: 0.05,
    regularization: 0.3,
};

/// A model of `items` random items at `dim`, with a fold-in section.
fn model_bytes(
    seed: u64,
    items: usize,
    dim: usize,
    values: ValueEncoding,
    layout: Layout,
) -> Vec<u8> {
    let mut inputs = Inputs::random(seed, 4, items, dim, 0.3);
    inputs.values = values;
    inputs.layout = layout;
    inputs.sliced = false;
    inputs.list_rows = pocketrec::ListRows::U16;
    let plain = inputs.build();
    // Rebuild with the section: the same tables through the builder with `fold_in`.
    let model = Model::from_bytes(&plain).unwrap();
    let table = |role: Role, name: &str| {
        let t = model.table(role).unwrap();
        let mut dense = vec![0.0f32; t.rows() * dim];
        for r in 0..t.rows() {
            t.decode_row(r, &mut dense[r * dim..(r + 1) * dim]).unwrap();
        }
        let ids: Vec<u64> = (0..t.rows()).map(|r| t.id(r).unwrap()).collect();
        TableSpec::new(
            name,
            role,
            SparseMatrix::from_dense(t.rows(), dim, &dense).unwrap(),
        )
        .values(values)
        .layout(if role == Role::Item {
            layout
        } else {
            Layout::Rows
        })
        .ids(ids, pocketrec::IdKind::Integer)
    };
    ModelBuilder::new()
        .table(table(Role::User, "users"))
        .table(table(Role::Item, "items"))
        .fold_in(PARAMS)
        .build()
        .unwrap()
}

/// The item rows as the runtime decodes them, and their ids.
fn decoded_items(model: &Model<&[u8]>) -> (Vec<Vec<f64>>, Vec<u64>) {
    let items = model.items().unwrap();
    let dim = items.dim();
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    let mut row = vec![0.0f32; dim];
    for r in 0..items.rows() {
        items.decode_row(r, &mut row).unwrap();
        rows.push(row.iter().map(|&v| f64::from(v)).collect());
        ids.push(items.id(r).unwrap());
    }
    (rows, ids)
}

/// Solves `A x = b` by Gaussian elimination with partial pivoting, in f64.
fn dense_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        b.swap(col, pivot);
        for r in col + 1..n {
            let f = a[r][col] / a[col][col];
            for c in col..n {
                a[r][c] -= f * a[col][c];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    x
}

/// The reference fold-in: the objective of the module docs, solved densely in f64.
fn reference(
    model: &Model<&[u8]>,
    items: &[u64],
    weights: &[f32],
    prior: Option<(&[f32], f32)>,
) -> Vec<f64> {
    let (rows, ids) = decoded_items(model);
    let dim = rows.first().map_or(0, Vec::len);
    let mut a = vec![vec![0.0f64; dim]; dim];
    for v in &rows {
        for i in 0..dim {
            for j in 0..dim {
                a[i][j] += f64::from(PARAMS.unobserved_weight) * v[i] * v[j];
            }
        }
    }
    let tau = prior.map_or(0.0, |p| f64::from(p.1));
    let mut b = vec![0.0f64; dim];
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += f64::from(PARAMS.regularization) + tau;
        if let Some((x0, _)) = prior {
            b[i] = tau * f64::from(x0[i]);
        }
    }
    for (k, id) in items.iter().enumerate() {
        let Some(r) = ids.iter().position(|i| i == id) else {
            continue;
        };
        let w = f64::from(weights.get(k).copied().unwrap_or(1.0));
        let v = &rows[r];
        for i in 0..dim {
            b[i] += w * v[i];
            for j in 0..dim {
                a[i][j] += w * v[i] * v[j];
            }
        }
    }
    dense_solve(a, b)
}

fn assert_close(got: &[f32], want: &[f64], tolerance: f64, what: &str) {
    let norm = want.iter().map(|x| x * x).sum::<f64>().sqrt();
    let err = got
        .iter()
        .zip(want)
        .map(|(g, w)| (f64::from(*g) - w).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        err <= tolerance * norm + 1e-6,
        "{what}: error {err:.3e} against |x| {norm:.3e}\n got {got:?}\nwant {want:?}"
    );
}

#[test]
fn both_solvers_agree_with_a_dense_reference_solve() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let cases = [
        (1, ValueEncoding::F32, Layout::Rows),
        (3, ValueEncoding::F32, Layout::Rows),
        (8, ValueEncoding::F16, Layout::Both),
        (16, ValueEncoding::I8, Layout::Columns),
        (64, ValueEncoding::F32, Layout::Rows),
        (64, ValueEncoding::Bf16, Layout::Rows),
        (65, ValueEncoding::F32, Layout::Rows),
        (130, ValueEncoding::F16, Layout::Rows),
    ];
    for (seed, (dim, values, layout)) in cases.into_iter().enumerate() {
        let bytes = model_bytes(seed as u64, 300, dim, values, layout);
        let model = Model::from_bytes(&bytes).unwrap();
        model.verify().unwrap();
        let n_items = model.items().unwrap().rows() as u64;
        for trial in 0..4 {
            let n = rng.random_range(1..60usize);
            let items: Vec<u64> = (0..n)
                .map(|_| {
                    model
                        .items()
                        .unwrap()
                        .id(rng.random_range(0..n_items as usize))
                        .unwrap()
                })
                .collect();
            let weights: Vec<f32> = if trial % 2 == 0 {
                Vec::new()
            } else {
                (0..n).map(|_| rng.random_range(0.0..3.0f32)).collect()
            };
            let x0: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0f32)).collect();
            let prior = (trial >= 2).then_some((x0.as_slice(), 0.7f32));
            let want = reference(&model, &items, &weights, prior);
            let solvers: &[Solver] = if dim <= pocketrec::MAX_CHOLESKY_DIM {
                &[Solver::Auto, Solver::Cholesky, Solver::ConjugateGradient]
            } else {
                &[Solver::Auto, Solver::ConjugateGradient]
            };
            for &solver in solvers {
                let mut x = vec![0.0f32; dim];
                let summary = model
                    .fold_in_with(
                        &items,
                        &weights,
                        prior.map(|(vector, precision)| Prior { vector, precision }),
                        &mut x,
                        solver,
                    )
                    .unwrap();
                assert_eq!(summary.used, n);
                assert_eq!(summary.unknown, 0);
                let expected_solver = match solver {
                    Solver::Auto if dim <= pocketrec::MAX_CHOLESKY_DIM => Solver::Cholesky,
                    Solver::Auto => Solver::ConjugateGradient,
                    s => s,
                };
                assert_eq!(summary.solver, expected_solver);
                assert_close(
                    &x,
                    &want,
                    1e-4,
                    &format!("d={dim} {values:?} {layout:?} trial {trial} {solver:?}"),
                );
            }
        }
    }
}

#[test]
fn the_stored_gramian_is_the_decoded_items_gramian() {
    for values in [ValueEncoding::F32, ValueEncoding::I8] {
        let bytes = model_bytes(3, 200, 12, values, Layout::Rows);
        let model = Model::from_bytes(&bytes).unwrap();
        let section = model.fold_in_section().unwrap();
        assert_eq!(section.params(), PARAMS);
        assert_eq!(section.dim(), 12);
        let (rows, _) = decoded_items(&model);
        for a in 0..12 {
            for b in 0..=a {
                let want: f64 = rows.iter().map(|v| v[a] * v[b]).sum();
                let got = section.gram(a * (a + 1) / 2 + b);
                assert!(
                    (f64::from(got) - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "G[{a}][{b}] = {got}, want {want}"
                );
            }
        }
    }
}

#[test]
fn folded_users_recommend_what_they_interacted_with() {
    // Two clusters of items on two axes: a user who liked cluster-0 items gets cluster-0 items.
    let dim = 2;
    let mut items = Vec::new();
    for i in 0..20 {
        let x = 1.0 + i as f32 * 0.01;
        let row = if i % 2 == 0 { [x, 0.0] } else { [0.0, x] };
        items.extend_from_slice(&row);
    }
    let bytes = ModelBuilder::new()
        .table(TableSpec::new(
            "users",
            Role::User,
            SparseMatrix::from_dense(1, dim, &[1.0, 1.0]).unwrap(),
        ))
        .table(TableSpec::new(
            "items",
            Role::Item,
            SparseMatrix::from_dense(20, dim, &items).unwrap(),
        ))
        .fold_in(PARAMS)
        .build()
        .unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut user = [0.0f32; 2];
    model.fold_in(&[1, 3, 5], &[], None, &mut user).unwrap();
    let mut top = [Recommendation::default(); 5];
    let n = model
        .recommend_vector(&user, 5, &[1, 3, 5], &mut top)
        .unwrap();
    assert_eq!(n, 5);
    assert!(top.iter().all(|r| r.id % 2 == 1), "{top:?}");
}

#[test]
fn unknown_items_are_skipped_and_counted() {
    let bytes = model_bytes(1, 100, 8, ValueEncoding::F32, Layout::Rows);
    let model = Model::from_bytes(&bytes).unwrap();
    let known: Vec<u64> = (0..3)
        .map(|r| model.items().unwrap().id(r).unwrap())
        .collect();
    let with_unknown = [known[0], u64::MAX, known[1], u64::MAX - 1, known[2]];
    let mut a = [0.0f32; 8];
    let mut b = [0.0f32; 8];
    let s = model.fold_in(&with_unknown, &[], None, &mut a).unwrap();
    assert_eq!((s.used, s.unknown), (3, 2));
    model.fold_in(&known, &[], None, &mut b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_input_gives_its_documented_error() {
    let bytes = model_bytes(2, 100, 8, ValueEncoding::F32, Layout::Rows);
    let model = Model::from_bytes(&bytes).unwrap();
    let id = model.items().unwrap().id(0).unwrap();
    let mut out = [0.0f32; 8];
    let invalid = |r: pocketrec::Result<_>| matches!(r, Err(Error::InvalidQuery { .. }));
    assert!(invalid(model.fold_in(&[id], &[f32::NAN], None, &mut out)));
    assert!(invalid(model.fold_in(&[id], &[-1.0], None, &mut out)));
    assert!(invalid(model.fold_in(
        &[id],
        &[f32::INFINITY],
        None,
        &mut out
    )));
    assert!(invalid(model.fold_in(&[id, id], &[1.0], None, &mut out)));
    assert!(invalid(model.fold_in(&[], &[], None, &mut out)));
    assert!(invalid(model.fold_in(&[u64::MAX], &[], None, &mut out)));
    let x0 = [0.5f32; 8];
    let prior = |precision| {
        Some(Prior {
            vector: &x0,
            precision,
        })
    };
    assert!(invalid(model.fold_in(&[], &[], prior(0.0), &mut out)));
    assert!(invalid(model.fold_in(&[id], &[], prior(-1.0), &mut out)));
    assert!(invalid(model.fold_in(
        &[id],
        &[],
        prior(f32::NAN),
        &mut out
    )));
    let nan_prior = [f32::NAN; 8];
    assert!(invalid(model.fold_in(
        &[id],
        &[],
        Some(Prior {
            vector: &nan_prior,
            precision: 1.0
        }),
        &mut out
    )));
    // An empty list with a prior is the prior shrunk toward what the items explain.
    model.fold_in(&[], &[], prior(1.0), &mut out).unwrap();
    assert!(out.iter().all(|x| x.is_finite()));
    let mut short = [0.0f32; 7];
    assert!(matches!(
        model.fold_in(&[id], &[], None, &mut short),
        Err(Error::DimensionMismatch {
            expected: 8,
            actual: 7
        })
    ));
    assert!(matches!(
        model.fold_in(
            &[id],
            &[],
            Some(Prior {
                vector: &x0[..4],
                precision: 1.0
            }),
            &mut out
        ),
        Err(Error::DimensionMismatch {
            expected: 8,
            actual: 4
        })
    ));
    // Cholesky refuses a dimension above its stack matrix.
    let wide = model_bytes(2, 50, 65, ValueEncoding::F32, Layout::Rows);
    let wide = Model::from_bytes(&wide).unwrap();
    let id = wide.items().unwrap().id(0).unwrap();
    let mut out = [0.0f32; 65];
    assert!(matches!(
        wide.fold_in_with(&[id], &[], None, &mut out, Solver::Cholesky),
        Err(Error::DimensionTooLarge { dim: 65, max: 64 })
    ));
}

#[test]
fn a_model_without_the_section_says_so() {
    let bytes = Inputs::random(5, 4, 30, 8, 0.3).build();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut out = [0.0f32; 8];
    assert!(matches!(
        model.fold_in(&[0], &[], None, &mut out),
        Err(Error::NoFoldIn)
    ));
    assert!(matches!(model.fold_in_params(), Err(Error::NoFoldIn)));
}

#[test]
fn a_damaged_section_is_refused_never_a_panic() {
    let bytes = model_bytes(4, 60, 6, ValueEncoding::F32, Layout::Rows);
    let (start, end) = common::section(&bytes, SectionKind::FoldIn);
    let id = Model::from_bytes(&bytes)
        .unwrap()
        .items()
        .unwrap()
        .id(0)
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for position in start..end {
        for _ in 0..3 {
            let mut damaged = bytes.clone();
            damaged[position] ^= 1u8 << rng.random_range(0..8);
            // Open still works (data sections are checked by verify), verify refuses.
            let model = Model::from_bytes(&damaged).unwrap();
            assert!(
                model.verify().is_err(),
                "byte {position} damage passed verify"
            );
            // A fold-in from a damaged file answers or errs, never panics.
            let mut out = [0.0f32; 6];
            let _ = model.fold_in(&[id], &[], None, &mut out);
        }
    }
    // Checksum fixed up (a writer that lies): the header fields are still checked.
    let mut lying = bytes.clone();
    lying[start + 4] = 7; // dim
    let fixed = fix_section_crc(&lying, SectionKind::FoldIn);
    let model = Model::from_bytes(&fixed).unwrap();
    assert!(matches!(
        model.fold_in_section(),
        Err(Error::CorruptTable {
            role: Role::Item,
            ..
        })
    ));
    assert!(model.verify().is_err());
    // A negative diagonal (not the Gramian of any table) is refused by verify.
    let mut lying = bytes.clone();
    let g00 = start + 16;
    lying[g00..g00 + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    let fixed = fix_section_crc(&lying, SectionKind::FoldIn);
    let model = Model::from_bytes(&fixed).unwrap();
    assert!(matches!(model.verify(), Err(Error::CorruptTable { .. })));
}

/// Rewrites the section table entry's CRC of the section of `kind` and the section table's
/// CRC and the header CRC, as a writer that lies would.
fn fix_section_crc(bytes: &[u8], kind: SectionKind) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let model = Model::from_bytes(bytes).unwrap();
    let s = model.sections().find(|s| s.kind == kind).unwrap();
    let crc = pocketrec::format::crc32c(&bytes[s.offset as usize..(s.offset + s.length) as usize]);
    let entry = model.header_size() + s.index as usize * 32;
    out[entry + 24..entry + 28].copy_from_slice(&crc.to_le_bytes());
    let table_len = model.section_count() as usize * 32;
    let header_size = model.header_size();
    let table_crc = pocketrec::format::crc32c(&out[header_size..header_size + table_len]);
    out[28..32].copy_from_slice(&table_crc.to_le_bytes());
    let header_crc = pocketrec::format::header_crc(&out[..header_size]);
    out[60..64].copy_from_slice(&header_crc.to_le_bytes());
    out
}

#[test]
fn the_builder_is_deterministic_and_refuses_bad_params() {
    let a = model_bytes(9, 50, 4, ValueEncoding::F16, Layout::Rows);
    let b = model_bytes(9, 50, 4, ValueEncoding::F16, Layout::Rows);
    assert_eq!(a, b);
    let items = SparseMatrix::from_dense(2, 2, &[1.0, 0.0, 0.0, 1.0]).unwrap();
    for params in [
        FoldInParams {
            unobserved_weight: -1.0,
            regularization: 0.1,
        },
        FoldInParams {
            unobserved_weight: 0.1,
            regularization: 0.0,
        },
        FoldInParams {
            unobserved_weight: f32::NAN,
            regularization: 0.1,
        },
        FoldInParams {
            unobserved_weight: 0.1,
            regularization: f32::INFINITY,
        },
    ] {
        let built = ModelBuilder::new()
            .table(TableSpec::new("items", Role::Item, items.clone()))
            .fold_in(params)
            .build();
        assert!(
            matches!(built, Err(Error::InvalidInput { .. })),
            "{params:?}"
        );
    }
}
