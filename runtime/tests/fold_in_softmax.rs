//! Softmax fold-in: the runtime's streaming ascent against an f64 reference of the same
//! iterations (every value encoding, row and column layouts, dot and cosine scoring, weights and
//! a prior), that it recovers a planted user, and every bad input as its documented error.

use pocketrec::builder::{FoldInParams, Layout, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{
    Error, ListRows, Model, Prior, Role, Scoring, SectionKind, SoftmaxFoldIn, Solver, ValueEncoding,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SETTINGS: SoftmaxFoldIn = SoftmaxFoldIn {
    temperature: 0.2,
    power: 1.2,
    step: 1.0,
    iterations: 6,
};

/// Item rows at `dim`: a fifth all zero, the rest about `density` non-zero.
fn random_items(rng: &mut ChaCha8Rng, rows: usize, dim: usize, density: f64) -> Vec<f32> {
    let mut data = vec![0.0f32; rows * dim];
    for r in 0..rows {
        if r % 5 == 3 {
            continue;
        }
        for c in 0..dim {
            if rng.random_bool(density) || c == r % dim {
                data[r * dim + c] = rng.random_range(-1.0..1.0f32);
            }
        }
    }
    data
}

struct Case {
    values: ValueEncoding,
    layout: Layout,
    list_rows: ListRows,
    sliced: bool,
    scoring: Scoring,
}

impl Case {
    /// `u16` posting lists, no sliced rows.
    fn plain(values: ValueEncoding, layout: Layout, scoring: Scoring) -> Case {
        Case {
            values,
            layout,
            list_rows: ListRows::U16,
            sliced: false,
            scoring,
        }
    }
}

fn model_bytes(
    seed: u64,
    items: &[f32],
    dim: usize,
    case: &Case,
    settings: SoftmaxFoldIn,
) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let users: Vec<f32> = (0..2 * dim)
        .map(|_| rng.random_range(-1.0..1.0f32))
        .collect();
    let rows = items.len() / dim;
    let ids: Vec<u64> = (0..rows as u64).map(|r| 1000 + 3 * r).collect();
    ModelBuilder::new()
        .scoring(case.scoring)
        .table(TableSpec::new(
            "users",
            Role::User,
            SparseMatrix::from_dense(2, dim, &users).unwrap(),
        ))
        .table(
            TableSpec::new(
                "items",
                Role::Item,
                SparseMatrix::from_dense(rows, dim, items).unwrap(),
            )
            .values(case.values)
            .layout(case.layout)
            .list_rows(case.list_rows)
            .with_sliced_rows(case.sliced)
            .ids(ids, pocketrec::IdKind::Integer),
        )
        .fold_in_softmax(settings)
        .build()
        .unwrap()
}

/// The item vectors the objective uses (decoded; unit length under cosine scoring), by row.
fn item_vectors(model: &Model<&[u8]>) -> Vec<Vec<f64>> {
    let items = model.items().unwrap();
    let dim = items.dim();
    let mut row = vec![0.0f32; dim];
    (0..items.rows())
        .map(|r| {
            items.decode_row(r, &mut row).unwrap();
            let mut v: Vec<f64> = row.iter().map(|&x| f64::from(x)).collect();
            if model.scoring() == Scoring::Cosine {
                let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                if n > 0.0 {
                    v.iter_mut().for_each(|x| *x /= n);
                }
            }
            v
        })
        .collect()
}

fn unit(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// The module docs' ascent in f64, the full softmax computed directly.
fn reference(
    model: &Model<&[u8]>,
    rows: &[usize],
    weights: &[f32],
    prior: Option<(&[f32], f32)>,
    s: SoftmaxFoldIn,
) -> Vec<f64> {
    let v = item_vectors(model);
    let dim = v[0].len();
    let mut target = vec![0.0f64; dim];
    let mut total = 0.0f64;
    for (i, &r) in rows.iter().enumerate() {
        let w = weights.get(i).map_or(1.0, |&w| f64::from(w));
        for c in 0..dim {
            target[c] += w * v[r][c];
        }
        total += w;
    }
    let rho = prior.map_or(0.0, |(_, p)| f64::from(p));
    if let Some((x0, p)) = prior {
        for c in 0..dim {
            target[c] += f64::from(p) * f64::from(x0[c]);
        }
    }
    let mut x = target.clone();
    unit(&mut x);
    let t = f64::from(s.temperature);
    for _ in 0..s.iterations {
        let scores: Vec<f64> = v
            .iter()
            .map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() / t)
            .collect();
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let z: f64 = e.iter().sum();
        let mut g = vec![0.0f64; dim];
        for c in 0..dim {
            let mean: f64 = v.iter().zip(&e).map(|(row, e)| e * row[c]).sum::<f64>() / z;
            g[c] = (target[c] - f64::from(s.power) * total * mean) / (total + rho);
        }
        let along: f64 = g.iter().zip(&x).map(|(a, b)| a * b).sum();
        for c in 0..dim {
            x[c] += f64::from(s.step) * (g[c] - along * x[c]);
        }
        unit(&mut x);
    }
    x
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    for (c, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() < 2e-4,
            "{what}: dimension {c}: got {g}, want {w}"
        );
    }
}

#[test]
fn the_streaming_ascent_equals_an_f64_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut cases = Vec::new();
    for values in [
        ValueEncoding::F32,
        ValueEncoding::F16,
        ValueEncoding::Bf16,
        ValueEncoding::I8,
        ValueEncoding::I4,
    ] {
        for scoring in [Scoring::Dot, Scoring::Cosine] {
            for (layout, list_rows, sliced) in [
                (Layout::Rows, ListRows::U16, false),
                (Layout::Rows, ListRows::U16, true),
                (Layout::Columns, ListRows::U16, false),
                (Layout::Columns, ListRows::Bitmap, false),
                (Layout::Both, ListRows::U16, false),
            ] {
                if sliced && values == ValueEncoding::I4 {
                    continue; // sliced rows do not take int4 values
                }
                cases.push(Case {
                    values,
                    layout,
                    list_rows,
                    sliced,
                    scoring,
                });
            }
        }
    }
    for (n, case) in cases.iter().enumerate() {
        let dim = [3, 8, 16, 33][n % 4];
        // Row records at density 1 too (every fifth case): a dense model's rows.
        let density = if n % 5 == 0 { 1.0 } else { 0.35 };
        let items = random_items(&mut rng, 150, dim, density);
        let bytes = model_bytes(n as u64, &items, dim, case, SETTINGS);
        let model = Model::from_bytes(&bytes).unwrap();
        model.verify().unwrap();
        assert_eq!(model.fold_in_softmax().unwrap(), Some(SETTINGS));
        let table = model.items().unwrap();
        for trial in 0..3 {
            let k = rng.random_range(1..20usize);
            // Rows with something in them (an all-zero row alone gives no direction).
            let rows: Vec<usize> = (0..k)
                .map(|_| {
                    let r = rng.random_range(0..150usize);
                    if r % 5 == 3 { r + 1 } else { r }
                })
                .collect();
            let ids: Vec<u64> = rows.iter().map(|&r| table.id(r).unwrap()).collect();
            let weights: Vec<f32> = if trial == 1 {
                (0..k).map(|_| rng.random_range(0.1..3.0f32)).collect()
            } else {
                Vec::new()
            };
            let x0: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0f32)).collect();
            let prior = (trial == 2).then_some((x0.as_slice(), 0.8f32));
            let want = reference(&model, &rows, &weights, prior, SETTINGS);
            let mut x = vec![0.0f32; dim];
            let summary = model
                .fold_in(
                    &ids,
                    &weights,
                    prior.map(|(vector, precision)| Prior { vector, precision }),
                    &mut x,
                )
                .unwrap();
            assert_eq!(summary.solver, Solver::Softmax);
            assert_eq!(summary.iterations, SETTINGS.iterations);
            assert_eq!((summary.used, summary.unknown), (k, 0));
            let what = format!(
                "d={dim} {:?} {:?} {:?} sliced {} {:?} trial {trial}",
                case.values, case.layout, case.list_rows, case.sliced, case.scoring
            );
            assert_close(&x, &want, &what);
            let norm: f32 = x.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{what}: |x| = {norm}");
        }
    }
}

#[test]
fn a_planted_user_is_recovered_from_their_top_items() {
    // Unit item vectors, a unit user; the user "interacts" with its 15 best items. The fold-in
    // must point near the user: the plain mean of the items does worse.
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (rows, dim) = (2000, 16);
    let mut items: Vec<f32> = (0..rows * dim)
        .map(|_| rng.random_range(-1.0..1.0f32))
        .collect();
    for r in items.chunks_mut(dim) {
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        r.iter_mut().for_each(|x| *x /= n);
    }
    let case = Case::plain(ValueEncoding::F32, Layout::Rows, Scoring::Dot);
    let settings = SoftmaxFoldIn::for_loss(0.1, 1.0);
    let bytes = model_bytes(1, &items, dim, &case, settings);
    let model = Model::from_bytes(&bytes).unwrap();
    let table = model.items().unwrap();
    let mut worse = 0;
    for _ in 0..20 {
        let mut user: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0f32)).collect();
        let n = user.iter().map(|x| x * x).sum::<f32>().sqrt();
        user.iter_mut().for_each(|x| *x /= n);
        let mut by_score: Vec<(f32, usize)> = items
            .chunks(dim)
            .enumerate()
            .map(|(r, v)| (v.iter().zip(&user).map(|(a, b)| a * b).sum(), r))
            .collect();
        by_score.sort_by(|a, b| b.0.total_cmp(&a.0));
        let ids: Vec<u64> = by_score[..15]
            .iter()
            .map(|&(_, r)| table.id(r).unwrap())
            .collect();
        let mut x = vec![0.0f32; dim];
        model.fold_in(&ids, &[], None, &mut x).unwrap();
        let cos_fold: f32 = x.iter().zip(&user).map(|(a, b)| a * b).sum();
        let mut mean = vec![0.0f32; dim];
        for &(_, r) in &by_score[..15] {
            for c in 0..dim {
                mean[c] += items[r * dim + c];
            }
        }
        let n = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cos_mean: f32 = mean.iter().zip(&user).map(|(a, b)| a / n * b).sum();
        assert!(
            cos_fold > 0.9,
            "folded user at cosine {cos_fold} from the planted one"
        );
        if cos_fold < cos_mean {
            worse += 1;
        }
    }
    assert!(
        worse <= 2,
        "the fold-in was further than the plain mean {worse} times in 20"
    );
}

#[test]
fn bad_input_gives_its_documented_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let dim = 4;
    let items = random_items(&mut rng, 40, dim, 0.5);
    let case = Case::plain(ValueEncoding::F16, Layout::Columns, Scoring::Cosine);
    let bytes = model_bytes(2, &items, dim, &case, SETTINGS);
    let model = Model::from_bytes(&bytes).unwrap();
    let id = model.items().unwrap().id(0).unwrap();
    let zero_row = model.items().unwrap().id(3).unwrap(); // row 3 is all zero
    let mut out = [0.0f32; 4];
    let invalid = |r: pocketrec::Result<pocketrec::FoldInSummary>| {
        matches!(r, Err(Error::InvalidQuery { .. }))
    };
    assert!(invalid(model.fold_in(&[], &[], None, &mut out)));
    assert!(invalid(model.fold_in(&[77], &[], None, &mut out))); // unknown only
    assert!(invalid(model.fold_in(&[id], &[f32::NAN], None, &mut out)));
    assert!(invalid(model.fold_in(&[id], &[-1.0], None, &mut out)));
    assert!(invalid(model.fold_in(&[id, id], &[1.0], None, &mut out)));
    assert!(invalid(model.fold_in(&[zero_row], &[], None, &mut out)));
    let prior = |vector: &'static [f32], precision| Some(Prior { vector, precision });
    assert!(invalid(model.fold_in(
        &[id],
        &[],
        prior(&[1.0, f32::INFINITY, 0.0, 0.0], 1.0),
        &mut out
    )));
    assert!(invalid(model.fold_in(
        &[id],
        &[],
        prior(&[1.0, 0.0, 0.0, 0.0], -1.0),
        &mut out
    )));
    assert!(matches!(
        model.fold_in(&[id], &[], prior(&[1.0, 0.0], 1.0), &mut out),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        model.fold_in(&[id], &[], None, &mut [0.0f32; 3]),
        Err(Error::DimensionMismatch { .. })
    ));
    // A prior alone keeps its direction.
    let summary = model
        .fold_in(&[], &[], prior(&[0.0, 2.0, 0.0, 0.0], 1.0), &mut out)
        .unwrap();
    assert_eq!(summary.used, 0);
    assert!(
        (out[1] - 1.0).abs() < 1e-6 && out[0].abs() < 1e-6,
        "{out:?}"
    );
    // The squared-error solvers need the Gramian this file does not have.
    assert!(matches!(
        model.fold_in_with(&[id], &[], None, &mut out, Solver::Cholesky),
        Err(Error::NoFoldIn)
    ));
    // A model with the Gramian section only: no softmax objective.
    let squared = ModelBuilder::new()
        .table(TableSpec::new(
            "items",
            Role::Item,
            SparseMatrix::from_dense(40, dim, &items).unwrap(),
        ))
        .fold_in(FoldInParams {
            unobserved_weight: 0.1,
            regularization: 0.1,
        })
        .build()
        .unwrap();
    let squared = Model::from_bytes(&squared).unwrap();
    assert_eq!(squared.fold_in_softmax().unwrap(), None);
    assert!(matches!(
        squared.fold_in_with(&[0], &[], None, &mut out, Solver::Softmax),
        Err(Error::NoFoldIn)
    ));
}

#[test]
fn the_builder_refuses_bad_settings_and_two_objectives() {
    let items = SparseMatrix::from_dense(2, 2, &[1.0, 0.0, 0.0, 1.0]).unwrap();
    let build = |settings: SoftmaxFoldIn| {
        ModelBuilder::new()
            .table(TableSpec::new("items", Role::Item, items.clone()))
            .fold_in_softmax(settings)
            .build()
    };
    for bad in [
        SoftmaxFoldIn {
            temperature: 0.0,
            ..SETTINGS
        },
        SoftmaxFoldIn {
            temperature: f32::NAN,
            ..SETTINGS
        },
        SoftmaxFoldIn {
            power: -1.0,
            ..SETTINGS
        },
        SoftmaxFoldIn {
            step: f32::INFINITY,
            ..SETTINGS
        },
        SoftmaxFoldIn {
            iterations: 0,
            ..SETTINGS
        },
        SoftmaxFoldIn {
            iterations: 65,
            ..SETTINGS
        },
    ] {
        assert!(
            matches!(build(bad), Err(Error::InvalidInput { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(build(SETTINGS).unwrap(), build(SETTINGS).unwrap());
    let both = ModelBuilder::new()
        .table(TableSpec::new("items", Role::Item, items.clone()))
        .fold_in(FoldInParams {
            unobserved_weight: 0.1,
            regularization: 0.1,
        })
        .fold_in_softmax(SETTINGS)
        .build();
    assert!(matches!(both, Err(Error::InvalidInput { .. })));
}

#[test]
fn a_damaged_section_is_refused_never_a_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let dim = 5;
    let items = random_items(&mut rng, 30, dim, 0.5);
    let case = Case::plain(ValueEncoding::F32, Layout::Rows, Scoring::Dot);
    let bytes = model_bytes(3, &items, dim, &case, SETTINGS);
    let model = Model::from_bytes(&bytes).unwrap();
    let section = model
        .sections()
        .find(|s| s.kind == SectionKind::FoldInSoftmax)
        .unwrap();
    let id = model.items().unwrap().id(0).unwrap();
    let (start, end) = (
        section.offset as usize,
        (section.offset + section.length) as usize,
    );
    assert_eq!(end - start, 24);
    for position in start..end {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[position] ^= 1 << bit;
            let model = Model::from_bytes(&damaged).unwrap();
            assert!(
                model.verify().is_err(),
                "byte {position} bit {bit} passed verify"
            );
            let mut out = [0.0f32; 5];
            let _ = model.fold_in(&[id], &[], None, &mut out);
        }
    }
}
