//! Softmax fold-in: the runtime's streaming ascent against an f64 reference of the same
//! iterations (every value encoding, row and column layouts, dot and cosine scoring, weights and
//! a prior), that it recovers a planted user, and every bad input as its documented error.

// The references index vectors as the formulas in docs/FORMAT.md do.
#![allow(clippy::needless_range_loop)]

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
    clusters: 0,
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

/// A random unit user and the rows of its `n` best items by inner product (`items` holds the
/// rows, `dim` wide), best first.
fn planted_user(
    rng: &mut ChaCha8Rng,
    items: &[f32],
    dim: usize,
    n: usize,
) -> (Vec<f32>, Vec<usize>) {
    let mut user: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0f32)).collect();
    let norm = user.iter().map(|x| x * x).sum::<f32>().sqrt();
    user.iter_mut().for_each(|x| *x /= norm);
    let mut by_score: Vec<(f32, usize)> = items
        .chunks(dim)
        .enumerate()
        .map(|(r, v)| (v.iter().zip(&user).map(|(a, b)| a * b).sum(), r))
        .collect();
    by_score.sort_by(|a, b| b.0.total_cmp(&a.0));
    (user, by_score[..n].iter().map(|&(_, r)| r).collect())
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
    let settings = SoftmaxFoldIn {
        clusters: 0,
        ..SoftmaxFoldIn::for_loss(0.1, 1.0, rows)
    };
    let bytes = model_bytes(1, &items, dim, &case, settings);
    let model = Model::from_bytes(&bytes).unwrap();
    let table = model.items().unwrap();
    let mut worse = 0;
    for _ in 0..20 {
        let (user, best) = planted_user(&mut rng, &items, dim, 15);
        let ids: Vec<u64> = best.iter().map(|&r| table.id(r).unwrap()).collect();
        let mut x = vec![0.0f32; dim];
        model.fold_in(&ids, &[], None, &mut x).unwrap();
        let cos_fold: f32 = x.iter().zip(&user).map(|(a, b)| a * b).sum();
        let mut mean = vec![0.0f32; dim];
        for &r in &best {
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
        SoftmaxFoldIn {
            clusters: 4097,
            ..SETTINGS
        },
        // More clusters than the two items.
        SoftmaxFoldIn {
            clusters: 3,
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
    assert_eq!(end - start, 32);
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

/// A file's catalogue summary as `docs/FORMAT.md` lays it out, in f64.
struct StoredSummary {
    log_weights: Vec<f64>,
    spreads: Vec<f64>,
    centroids: Vec<Vec<f64>>,
    /// Full (unpacked) covariance.
    covariance: Vec<Vec<f64>>,
}

fn stored_summary(model: &Model<&[u8]>, bytes: &[u8]) -> StoredSummary {
    let section = model
        .sections()
        .find(|s| s.kind == SectionKind::FoldInSoftmax)
        .unwrap();
    let body = &bytes[section.offset as usize..(section.offset + section.length) as usize];
    let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap());
    let value = |at: usize| f64::from(f32::from_bits(word(at)));
    let (dim, clusters) = (word(4) as usize, word(24) as usize);
    assert_eq!(word(28), 0, "reserved");
    let packed = dim * (dim + 1) / 2;
    assert_eq!(body.len(), 32 + 4 * (clusters * (dim + 2) + packed));
    let mut at = 32;
    let mut take = |n: usize| {
        let out: Vec<f64> = (0..n).map(|k| value(at + 4 * k)).collect();
        at += 4 * n;
        out
    };
    let log_weights = take(clusters);
    let spreads = take(clusters);
    let centroids: Vec<Vec<f64>> = take(clusters * dim)
        .chunks(dim)
        .map(<[f64]>::to_vec)
        .collect();
    let packed = take(packed);
    let mut covariance = vec![vec![0.0; dim]; dim];
    let mut k = 0;
    for a in 0..dim {
        for b in 0..=a {
            covariance[a][b] = packed[k];
            covariance[b][a] = packed[k];
            k += 1;
        }
    }
    StoredSummary {
        log_weights,
        spreads,
        centroids,
        covariance,
    }
}

/// FORMAT.md's ascent with the summary's mean, in f64.
fn summary_reference(
    summary: &StoredSummary,
    target: &[f64],
    total: f64,
    s: SoftmaxFoldIn,
) -> Vec<f64> {
    let dim = target.len();
    let t = f64::from(s.temperature);
    let mut x = target.to_vec();
    unit(&mut x);
    for _ in 0..s.iterations {
        let sx: Vec<f64> = (0..dim)
            .map(|a| (0..dim).map(|b| summary.covariance[a][b] * x[b]).sum())
            .collect();
        let q: f64 = x.iter().zip(&sx).map(|(a, b)| a * b).sum();
        let logits: Vec<f64> = summary
            .centroids
            .iter()
            .enumerate()
            .map(|(k, c)| {
                c.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() / t
                    + summary.log_weights[k]
                    + summary.spreads[k] * q / (2.0 * t * t)
            })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f64 = e.iter().sum();
        let spread: f64 = e
            .iter()
            .zip(&summary.spreads)
            .map(|(e, s)| e * s)
            .sum::<f64>()
            / z;
        let mut g = vec![0.0f64; dim];
        for c in 0..dim {
            let mean = summary
                .centroids
                .iter()
                .zip(&e)
                .map(|(row, e)| e * row[c])
                .sum::<f64>()
                / z
                + spread * sx[c] / t;
            g[c] = (target[c] - f64::from(s.power) * total * mean) / total;
        }
        let along: f64 = g.iter().zip(&x).map(|(a, b)| a * b).sum();
        for c in 0..dim {
            x[c] += f64::from(s.step) * (g[c] - along * x[c]);
        }
        unit(&mut x);
    }
    x
}

/// Items in `k` tight groups on the unit sphere (dimension `dim`), `rows` of them.
fn clustered_items(rng: &mut ChaCha8Rng, rows: usize, dim: usize, k: usize) -> Vec<f32> {
    // Centres ±e₀, ±e₁, …: far apart.
    let centres: Vec<Vec<f32>> = (0..k)
        .map(|g| {
            let mut c = vec![0.0f32; dim];
            c[(g / 2) % dim] = if g % 2 == 0 { 1.0 } else { -1.0 };
            c
        })
        .collect();
    let mut items = Vec::with_capacity(rows * dim);
    for r in 0..rows {
        let centre = &centres[r % k];
        let mut v: Vec<f32> = centre
            .iter()
            .map(|c| c + rng.random_range(-0.15..0.15f32))
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        items.extend(v);
    }
    items
}

#[test]
fn the_summary_is_the_documented_clustering_of_the_item_vectors() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    for (dim, scoring, values) in [
        (8, Scoring::Dot, ValueEncoding::F32),
        (16, Scoring::Cosine, ValueEncoding::I8),
        (5, Scoring::Cosine, ValueEncoding::F16),
    ] {
        let (rows, groups) = (600, 6);
        let items = clustered_items(&mut rng, rows, dim, groups);
        let case = Case::plain(values, Layout::Rows, scoring);
        let settings = SoftmaxFoldIn {
            clusters: groups as u32,
            ..SETTINGS
        };
        let bytes = model_bytes(4, &items, dim, &case, settings);
        // Deterministic: the same tables give the same bytes.
        assert_eq!(bytes, model_bytes(4, &items, dim, &case, settings));
        let model = Model::from_bytes(&bytes).unwrap();
        model.verify().unwrap();
        assert_eq!(model.fold_in_softmax().unwrap(), Some(settings));
        let summary = stored_summary(&model, &bytes);
        let v = item_vectors(&model);
        // Each item to its nearest stored centroid; the groups are found exactly.
        let nearest: Vec<usize> = v
            .iter()
            .map(|row| {
                let distance = |c: &Vec<f64>| -> f64 {
                    row.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum()
                };
                (0..groups)
                    .min_by(|&a, &b| {
                        distance(&summary.centroids[a]).total_cmp(&distance(&summary.centroids[b]))
                    })
                    .unwrap()
            })
            .collect();
        let mut counts = vec![0usize; groups];
        let mut squared = vec![0.0f64; groups];
        let mut covariance = vec![vec![0.0f64; dim]; dim];
        for (r, &k) in nearest.iter().enumerate() {
            assert_eq!(k, nearest[r % groups], "row {r} left its group");
            counts[k] += 1;
            let residual: Vec<f64> = (0..dim)
                .map(|c| v[r][c] - summary.centroids[k][c])
                .collect();
            squared[k] += residual.iter().map(|x| x * x).sum::<f64>();
            for a in 0..dim {
                for b in 0..dim {
                    covariance[a][b] += residual[a] * residual[b] / rows as f64;
                }
            }
        }
        let pooled: f64 = squared.iter().sum::<f64>() / rows as f64;
        for k in 0..groups {
            assert_eq!(counts[k], rows / groups);
            assert!((summary.log_weights[k] - (counts[k] as f64).ln()).abs() < 1e-5);
            let spread = squared[k] / counts[k] as f64 / pooled;
            assert!((summary.spreads[k] - spread).abs() < 1e-4, "spread {k}");
            // Converged: each centroid is the mean of its items.
            for c in 0..dim {
                let mean: f64 = (0..rows)
                    .filter(|&r| nearest[r] == k)
                    .map(|r| v[r][c])
                    .sum::<f64>()
                    / counts[k] as f64;
                assert!(
                    (summary.centroids[k][c] - mean).abs() < 1e-5,
                    "centroid {k}"
                );
            }
        }
        for a in 0..dim {
            for b in 0..dim {
                assert!((summary.covariance[a][b] - covariance[a][b]).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn the_summary_ascent_equals_an_f64_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let layouts = [
        (Layout::Rows, ValueEncoding::F32, Scoring::Dot),
        (Layout::Rows, ValueEncoding::I8, Scoring::Cosine),
        (Layout::Columns, ValueEncoding::F16, Scoring::Cosine),
        (Layout::Both, ValueEncoding::I4, Scoring::Dot),
    ];
    for (n, &(layout, values, scoring)) in layouts.iter().enumerate() {
        let dim = [3, 16, 33, 8][n];
        let items = random_items(&mut rng, 400, dim, 0.5);
        let case = Case::plain(values, layout, scoring);
        let settings = SoftmaxFoldIn {
            clusters: 12,
            ..SETTINGS
        };
        let bytes = model_bytes(n as u64, &items, dim, &case, settings);
        let model = Model::from_bytes(&bytes).unwrap();
        model.verify().unwrap();
        let summary = stored_summary(&model, &bytes);
        assert_eq!(summary.centroids.len(), 12);
        let v = item_vectors(&model);
        let table = model.items().unwrap();
        for trial in 0..3 {
            let k = rng.random_range(1..30usize);
            let rows: Vec<usize> = (0..k)
                .map(|_| {
                    let r = rng.random_range(0..400usize);
                    if r % 5 == 3 { r + 1 } else { r }
                })
                .collect();
            let ids: Vec<u64> = rows.iter().map(|&r| table.id(r).unwrap()).collect();
            let weights: Vec<f32> = if trial == 1 {
                (0..k).map(|_| rng.random_range(0.1..3.0f32)).collect()
            } else {
                vec![1.0; k]
            };
            let mut target = vec![0.0f64; dim];
            for (&r, &w) in rows.iter().zip(&weights) {
                for c in 0..dim {
                    target[c] += f64::from(w) * v[r][c];
                }
            }
            let total: f64 = weights.iter().map(|&w| f64::from(w)).sum();
            let want = summary_reference(&summary, &target, total, settings);
            let mut x = vec![0.0f32; dim];
            let result = model.fold_in(&ids, &weights, None, &mut x).unwrap();
            assert_eq!(result.solver, Solver::Softmax);
            assert_close(
                &x,
                &want,
                &format!("{layout:?} {values:?} {scoring:?} d={dim} trial {trial}"),
            );
        }
    }
}

#[test]
fn the_summary_folds_in_near_the_exact_ascent() {
    // Clustered unit items; a user interacting with their best items. The summary's fold-in
    // lands near the whole-catalogue one and near the planted user.
    let mut rng = ChaCha8Rng::seed_from_u64(35);
    let (rows, dim) = (4000, 16);
    let items = clustered_items(&mut rng, rows, dim, 40);
    let case = Case::plain(ValueEncoding::F32, Layout::Rows, Scoring::Dot);
    let exact = SoftmaxFoldIn::for_loss(0.1, 1.2, 0);
    let summarised = SoftmaxFoldIn::for_loss(0.1, 1.2, rows);
    assert_eq!(summarised.clusters, 128);
    let exact_bytes = model_bytes(1, &items, dim, &case, exact);
    let summary_bytes = model_bytes(1, &items, dim, &case, summarised);
    let exact_model = Model::from_bytes(&exact_bytes).unwrap();
    let summary_model = Model::from_bytes(&summary_bytes).unwrap();
    let table = exact_model.items().unwrap();
    for _ in 0..20 {
        let (user, best) = planted_user(&mut rng, &items, dim, 20);
        let ids: Vec<u64> = best.iter().map(|&r| table.id(r).unwrap()).collect();
        let (mut a, mut b) = (vec![0.0f32; dim], vec![0.0f32; dim]);
        exact_model.fold_in(&ids, &[], None, &mut a).unwrap();
        summary_model.fold_in(&ids, &[], None, &mut b).unwrap();
        let agree: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let planted: f32 = b.iter().zip(&user).map(|(x, y)| x * y).sum();
        assert!(agree > 0.95, "summary and exact fold-ins at cosine {agree}");
        assert!(
            planted > 0.85,
            "summary fold-in at cosine {planted} from the user"
        );
    }
}

#[test]
fn a_damaged_summary_is_an_error_never_a_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(37);
    let dim = 6;
    let items = clustered_items(&mut rng, 200, dim, 5);
    let case = Case::plain(ValueEncoding::F32, Layout::Rows, Scoring::Dot);
    let settings = SoftmaxFoldIn {
        clusters: 5,
        ..SETTINGS
    };
    let bytes = model_bytes(3, &items, dim, &case, settings);
    let model = Model::from_bytes(&bytes).unwrap();
    let section = model
        .sections()
        .find(|s| s.kind == SectionKind::FoldInSoftmax)
        .unwrap();
    let id = model.items().unwrap().id(0).unwrap();
    let start = section.offset as usize;
    // A NaN, an infinity and a huge value in each part of the summary (log-weights, spreads,
    // centroids, covariance). The section's CRC is fixed up so that only the values are wrong;
    // verify refuses each and a fold-in gives an error or a finite unit vector, never a panic.
    let parts = [32, 32 + 4 * 5, 32 + 8 * 5, 32 + 4 * (5 * (dim + 2))];
    for &part in &parts {
        for bad in [f32::NAN, f32::INFINITY, -3.0e38] {
            let mut damaged = bytes.clone();
            damaged[start + part..start + part + 4].copy_from_slice(&bad.to_le_bytes());
            pocketrec::format::reseal(&mut damaged);
            let model = Model::from_bytes(&damaged).unwrap();
            let negative_spread = part == 32 + 4 * 5 && bad < 0.0;
            let negative_diagonal = part == 32 + 4 * (5 * (dim + 2)) && bad < 0.0;
            if bad.is_finite() && !negative_spread && !negative_diagonal {
                continue;
            }
            assert!(
                model.verify().is_err(),
                "part {part} value {bad} passed verify"
            );
            let mut out = [0.0f32; 6];
            if model.fold_in(&[id], &[], None, &mut out).is_ok() {
                assert!(out.iter().all(|v| v.is_finite()));
            }
        }
    }
}
