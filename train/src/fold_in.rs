//! Choosing the fold-in settings on validation interactions the item table was not trained on.
//!
//! The device folds a user in from their interactions by solving
//! `(α₀ G + Σ vᵢ vᵢᵀ + λ I) x = Σ vᵢ` against the fixed item table (`pocketrec::Model::fold_in`).
//! [`tune`] picks `α₀` and `λ` on validation users: each is folded in from their training
//! items and their validation items (held out of training, e.g. by `bench/split_validation.py`)
//! are ranked among all items (the training items excluded); the pair with the best mean
//! Recall@k wins. Validating on training items instead would reward settings that reproduce
//! what the table memorised (measured on Gowalla: it picks a tenth of the right unobserved
//! weight). The grid is in item units ([`pocketrec_export::fold_in`]): `α₀ = u / N` and
//! `λ = r · m`, so it suits tables of any size and scale.

use pocketrec::FoldInParams;
use pocketrec_export::fold_in::scaled_params;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::data::UserItems;
use crate::sample::mix;

/// Unobserved weights tried by default, in items (`α₀ = u / N`).
pub const UNOBSERVED_ITEMS_GRID: [f32; 5] = [4.0, 16.0, 64.0, 256.0, 1024.0];
/// Ridges tried by default, in items (`λ = r · m`).
pub const RIDGE_ITEMS_GRID: [f32; 4] = [10.0, 100.0, 1000.0, 10000.0];

/// How [`tune`] validates.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneOptions {
    /// Validation users drawn (those with validation items and at least
    /// [`TuneOptions::min_items`] training items).
    pub users: usize,
    /// Fewest training items a validation user has.
    pub min_items: usize,
    /// The cut-off of Recall@k.
    pub k: usize,
    /// Seed of the draw.
    pub seed: u64,
    /// Unobserved weights tried, in items.
    pub unobserved_items: Vec<f32>,
    /// Ridges tried, in items.
    pub ridge_items: Vec<f32>,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            users: 2000,
            min_items: 1,
            k: 20,
            seed: 42,
            unobserved_items: UNOBSERVED_ITEMS_GRID.to_vec(),
            ridge_items: RIDGE_ITEMS_GRID.to_vec(),
        }
    }
}

/// One grid point's result.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GridPoint {
    /// `u`: all items as unobserved targets weigh as much as `u` observed items.
    pub unobserved_items: f32,
    /// `r`: the ridge weighs as much as `r` observed items.
    pub ridge_items: f32,
    /// Mean validation Recall@k.
    pub recall: f64,
}

/// What [`tune`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tuned {
    /// The best grid point's settings, scaled to the table.
    #[serde(skip)]
    pub params: FoldInParams,
    /// The best grid point.
    pub best: GridPoint,
    /// Every grid point, in grid order.
    pub grid: Vec<GridPoint>,
    /// Validation users used.
    pub users: usize,
}

/// Picks the fold-in settings for the item table `items` (`rows × dim`, row-major, as trained):
/// users are folded in from their `train` items (user rows' item rows) and tested on their
/// `validation` items; `None` when no user has both.
pub fn tune(
    items: &[f32],
    dim: usize,
    train: &UserItems,
    validation: &UserItems,
    options: &TuneOptions,
) -> Option<Tuned> {
    let rows = items.len() / dim.max(1);
    let matrix = pocketrec::builder::SparseMatrix::from_dense(rows, dim, items).ok()?;
    let splits = validation_splits(rows, train, validation, options)?;
    let gram = gramian(items, dim);
    let mut grid = Vec::new();
    for &u in &options.unobserved_items {
        for &r in &options.ridge_items {
            let params = scaled_params(&matrix, u, r);
            let recall: f64 = splits
                .par_iter()
                .map_init(
                    || (vec![0.0f64; dim * dim], vec![0.0f32; rows]),
                    |(a, scores), (_, source, targets)| {
                        let x = solve(items, dim, &gram, params, source, a);
                        recall_at(items, dim, &x, source, targets, options.k, scores)
                    },
                )
                .sum::<f64>()
                / splits.len() as f64;
            grid.push(GridPoint {
                unobserved_items: u,
                ridge_items: r,
                recall,
            });
        }
    }
    let best = *grid
        .iter()
        .reduce(|best, p| if p.recall > best.recall { p } else { best })?;
    Some(Tuned {
        params: scaled_params(&matrix, best.unobserved_items, best.ridge_items),
        best,
        grid,
        users: splits.len(),
    })
}

/// A validation user: their user row, training items and validation items.
type ValidationUser = (usize, Vec<u32>, Vec<u32>);

/// The validation users [`tune`] and [`tune_softmax`] fold in: up to `options.users` of those
/// with at least `options.min_items` training items and a validation item in the table, drawn
/// with the options' seed, each as (user row, training items, validation items).
fn validation_splits(
    rows: usize,
    train: &UserItems,
    validation: &UserItems,
    options: &TuneOptions,
) -> Option<Vec<ValidationUser>> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(options.seed ^ 0x00F0_1D1A));
    let mut candidates: Vec<usize> = (0..train.users().min(validation.users()))
        .filter(|&u| train.items(u).len() >= options.min_items && !validation.items(u).is_empty())
        .collect();
    candidates.shuffle(&mut rng);
    candidates.truncate(options.users);
    candidates.sort_unstable();
    let splits: Vec<ValidationUser> = candidates
        .iter()
        .map(|&u| {
            let targets = validation
                .items(u)
                .iter()
                .copied()
                .filter(|&i| (i as usize) < rows)
                .collect();
            (u, train.items(u).to_vec(), targets)
        })
        .filter(|(_, _, targets): &ValidationUser| !targets.is_empty())
        .collect();
    (!splits.is_empty()).then_some(splits)
}

/// The softmax fold-in's temperatures tried by [`tune_softmax_for_loss`], in units of the
/// loss's temperature (for_loss's 1.4 and the pruned models' 1.7 among them; on the Gowalla
/// validation split a dense BSL model chose 1, one at density 0.1 chose 2 of a grid that
/// ended there, hence 2.5).
pub const SOFTMAX_TEMPERATURE_GRID: [f32; 5] = [1.0, 1.4, 1.7, 2.0, 2.5];
/// The softmax fold-in's powers tried by [`tune_softmax_for_loss`], in units of the loss's
/// power (1 for SSM).
pub const SOFTMAX_POWER_GRID: [f32; 2] = [1.0, 1.5];

/// What [`tune_softmax_for_loss`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoftmaxTuned {
    /// The best grid point (its settings are what the file gets).
    pub best: SoftmaxGridPoint,
    /// Every grid point, in grid order.
    pub grid: Vec<SoftmaxGridPoint>,
    /// Validation users used.
    pub users: usize,
}

/// What a validation of the fold-in settings found, for either objective.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "objective", rename_all = "snake_case")]
pub enum Tuning {
    /// The squared-error fold-in's unobserved weight and ridge ([`tune`]).
    Squared(Tuned),
    /// The softmax fold-in's temperature and power ([`tune_softmax_for_loss`]).
    Softmax(SoftmaxTuned),
}

/// Picks the softmax fold-in's temperature and power for a model trained with a softmax loss of
/// temperature `temperature` and power `power`: the grid [`SOFTMAX_TEMPERATURE_GRID`] ×
/// [`SOFTMAX_POWER_GRID`] (in the loss's units) around `base` (whose step, iterations and
/// clusters stay), each validated by [`tune_softmax`]; the first best point wins (ties keep
/// the lower temperature and power). `None` when no user has both training and validation
/// items.
pub fn tune_softmax_for_loss(
    items: &[f32],
    dim: usize,
    train: &UserItems,
    validation: &UserItems,
    options: &TuneOptions,
    base: pocketrec::SoftmaxFoldIn,
    (temperature, power): (f32, f32),
) -> Option<SoftmaxTuned> {
    let grid: Vec<pocketrec::SoftmaxFoldIn> = SOFTMAX_TEMPERATURE_GRID
        .iter()
        .flat_map(|&t| {
            SOFTMAX_POWER_GRID
                .iter()
                .map(move |&p| pocketrec::SoftmaxFoldIn {
                    temperature: grid_product(t, temperature),
                    power: grid_product(p, power),
                    ..base
                })
        })
        .collect();
    let (points, users) = tune_softmax(items, dim, train, validation, options, &grid)?;
    let best = *points
        .iter()
        .reduce(|best, p| if p.recall > best.recall { p } else { best })?;
    Some(SoftmaxTuned {
        best,
        grid: points,
        users,
    })
}

/// `factor × base` to six significant digits, so that a grid point written into a file reads
/// as the decimal it stands for (1.5 × 1.2 is 1.8, where the f32 product prints 1.8000001).
fn grid_product(factor: f32, base: f32) -> f32 {
    let product = f64::from(factor) * f64::from(base);
    if product == 0.0 || !product.is_finite() {
        return product as f32;
    }
    let digits = 10f64.powi(5 - product.abs().log10().floor() as i32);
    ((product * digits).round() / digits) as f32
}

/// One point of [`tune_softmax`]'s grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SoftmaxGridPoint {
    /// The settings tried.
    #[serde(serialize_with = "serialize_softmax")]
    pub settings: pocketrec::SoftmaxFoldIn,
    /// Mean validation Recall@k.
    pub recall: f64,
}

/// The softmax fold-in on validation users (drawn as [`tune`] draws them), for each of
/// `grid`'s settings: each user is folded in by the runtime ([`pocketrec::Model::fold_in`] on a
/// model of `items` with that softmax fold-in section, dot scoring: the rows as trained, unit
/// length for a cosine loss) from their training items, and their validation items are ranked
/// among all items (training items excluded). Returns the points in grid order and the users
/// counted.
pub fn tune_softmax(
    items: &[f32],
    dim: usize,
    train: &UserItems,
    validation: &UserItems,
    options: &TuneOptions,
    grid: &[pocketrec::SoftmaxFoldIn],
) -> Option<(Vec<SoftmaxGridPoint>, usize)> {
    use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
    let rows = items.len() / dim.max(1);
    let splits = validation_splits(rows, train, validation, options)?;
    let mut points = Vec::new();
    for &settings in grid {
        let bytes = ModelBuilder::new()
            .table(TableSpec::new(
                "users",
                pocketrec::Role::User,
                SparseMatrix::from_dense(1, dim, &vec![0.0; dim]).ok()?,
            ))
            .table(TableSpec::new(
                "items",
                pocketrec::Role::Item,
                SparseMatrix::from_dense(rows, dim, items).ok()?,
            ))
            .fold_in_softmax(settings)
            .build()
            .ok()?;
        let model = pocketrec::Model::from_bytes(&bytes).ok()?;
        let recall: f64 = splits
            .par_iter()
            .map_init(
                || (vec![0.0f32; dim], vec![0.0f32; rows]),
                |(x, scores), (_, source, targets)| {
                    let ids: Vec<u64> = source.iter().map(|&i| u64::from(i)).collect();
                    match model.fold_in(&ids, &[], None, x) {
                        Ok(_) => recall_at(items, dim, x, source, targets, options.k, scores),
                        Err(_) => 0.0,
                    }
                },
            )
            .sum::<f64>()
            / splits.len() as f64;
        points.push(SoftmaxGridPoint { settings, recall });
    }
    Some((points, splits.len()))
}

/// The settings as `{temperature, power, step, iterations, clusters}`.
fn serialize_softmax<S: serde::Serializer>(
    settings: &pocketrec::SoftmaxFoldIn,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut s = serializer.serialize_struct("SoftmaxFoldIn", 5)?;
    s.serialize_field("temperature", &settings.temperature)?;
    s.serialize_field("power", &settings.power)?;
    s.serialize_field("step", &settings.step)?;
    s.serialize_field("iterations", &settings.iterations)?;
    s.serialize_field("clusters", &settings.clusters)?;
    s.end()
}

/// Mean validation Recall@k of the users' own rows (`user_rows`, `dim` per user, in the data
/// set's user order) for the users [`tune`] and [`tune_softmax`] draw with `options`: the
/// yardstick of a fold-in grid.
pub fn trained_recall(
    items: &[f32],
    user_rows: &[f32],
    dim: usize,
    train: &UserItems,
    validation: &UserItems,
    options: &TuneOptions,
) -> Option<f64> {
    let rows = items.len() / dim.max(1);
    let splits = validation_splits(rows, train, validation, options)?;
    let recall: f64 = splits
        .par_iter()
        .map_init(
            || vec![0.0f32; rows],
            |scores, (user, source, targets)| {
                let x = user_rows.get(user * dim..(user + 1) * dim).unwrap_or(&[]);
                if x.len() == dim {
                    recall_at(items, dim, x, source, targets, options.k, scores)
                } else {
                    0.0
                }
            },
        )
        .sum::<f64>();
    Some(recall / splits.len() as f64)
}

/// `VᵀV` of the table, dense `dim × dim`, in f64.
pub fn gramian(items: &[f32], dim: usize) -> Vec<f64> {
    let mut g = vec![0.0f64; dim * dim];
    for row in items.chunks_exact(dim) {
        for (a, &va) in row.iter().enumerate() {
            if va == 0.0 {
                continue;
            }
            let va = f64::from(va);
            for (b, &vb) in row.iter().enumerate().take(a + 1) {
                g[a * dim + b] += va * f64::from(vb);
            }
        }
    }
    for a in 0..dim {
        for b in 0..a {
            g[b * dim + a] = g[a * dim + b];
        }
    }
    g
}

/// The fold-in of `source` (item rows, weight 1): `(α₀ G + Σ v vᵀ + λ I) x = Σ v`, by a dense
/// Cholesky in f64 (`a` is scratch of `dim²`).
pub fn solve(
    items: &[f32],
    dim: usize,
    gram: &[f64],
    params: FoldInParams,
    source: &[u32],
    a: &mut [f64],
) -> Vec<f32> {
    let alpha0 = f64::from(params.unobserved_weight);
    for (slot, g) in a.iter_mut().zip(gram) {
        *slot = alpha0 * g;
    }
    let mut b = vec![0.0f64; dim];
    for i in 0..dim {
        a[i * dim + i] += f64::from(params.regularization);
    }
    for &item in source {
        let v = &items[item as usize * dim..(item as usize + 1) * dim];
        for (p, &vp) in v.iter().enumerate() {
            if vp == 0.0 {
                continue;
            }
            let vp = f64::from(vp);
            b[p] += vp;
            for (q, &vq) in v.iter().enumerate() {
                a[p * dim + q] += vp * f64::from(vq);
            }
        }
    }
    // A = L Lᵀ in the lower triangle, then two triangular solves.
    for j in 0..dim {
        let mut s = a[j * dim + j];
        for k in 0..j {
            s -= a[j * dim + k] * a[j * dim + k];
        }
        let ljj = s.max(f64::MIN_POSITIVE).sqrt();
        a[j * dim + j] = ljj;
        for i in j + 1..dim {
            let mut s = a[i * dim + j];
            for k in 0..j {
                s -= a[i * dim + k] * a[j * dim + k];
            }
            a[i * dim + j] = s / ljj;
        }
    }
    for i in 0..dim {
        let s: f64 = (0..i).map(|k| a[i * dim + k] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * dim + i];
    }
    for i in (0..dim).rev() {
        let s: f64 = (i + 1..dim).map(|k| a[k * dim + i] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * dim + i];
    }
    b.into_iter().map(|x| x as f32).collect()
}

/// Recall@k of `targets` when every item but `exclude` is ranked by `x · v`.
fn recall_at(
    items: &[f32],
    dim: usize,
    x: &[f32],
    exclude: &[u32],
    targets: &[u32],
    k: usize,
    scores: &mut [f32],
) -> f64 {
    for (s, v) in scores.iter_mut().zip(items.chunks_exact(dim)) {
        *s = v.iter().zip(x).map(|(a, b)| a * b).sum();
    }
    for &e in exclude {
        scores[e as usize] = f32::NEG_INFINITY;
    }
    // The k-th best score; an item counts as retrieved when it beats it, or ties it and is
    // among the first rows that tie (ties to the lower row, as the runtime breaks them).
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    let k = k.min(order.len());
    if k == 0 {
        return 0.0;
    }
    order.select_nth_unstable_by(k - 1, |&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    let top = &order[..k];
    let hits = targets.iter().filter(|t| top.contains(t)).count();
    hits as f64 / targets.len() as f64
}

/// A random `fraction` of `0..users` (at least one when `fraction > 0`), sorted: the users
/// `train --holdout-users` keeps out of training.
pub fn holdout_users(users: usize, fraction: f64, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x0004_01D0_u64));
    let mut picked: Vec<u32> = (0..users as u32)
        .filter(|_| rng.random_bool(fraction.clamp(0.0, 1.0)))
        .collect();
    if picked.is_empty() && fraction > 0.0 && users > 0 {
        picked.push(rng.random_range(0..users as u32));
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The softmax grid's points read as the decimals they stand for.
    #[test]
    fn grid_points_are_the_decimals_they_stand_for() {
        assert_eq!((1.5f32 * 1.2f32).to_string(), "1.8000001");
        assert_eq!(grid_product(1.5, 1.2).to_string(), "1.8");
        assert_eq!(grid_product(1.4, 0.1).to_string(), "0.14");
        assert_eq!(grid_product(2.5, 0.08).to_string(), "0.2");
        assert_eq!(grid_product(1.7, 0.07).to_string(), "0.119");
        assert_eq!(grid_product(1.0, 1.0 / 3.0), 0.333_333);
        assert_eq!(grid_product(0.0, 5.0), 0.0);
    }

    #[test]
    fn the_solve_is_the_normal_equations_solution() {
        // Two items on two axes; one interaction with item 0.
        let items = [2.0f32, 0.0, 0.0, 1.0];
        let gram = gramian(&items, 2);
        assert_eq!(gram, vec![4.0, 0.0, 0.0, 1.0]);
        let params = FoldInParams {
            unobserved_weight: 0.5,
            regularization: 1.0,
        };
        let mut a = vec![0.0; 4];
        let x = solve(&items, 2, &gram, params, &[0], &mut a);
        // (0.5·4 + 4 + 1) x0 = 2; (0.5·1 + 1) x1 = 0.
        assert!((x[0] - 2.0 / 7.0).abs() < 1e-6, "{x:?}");
        assert_eq!(x[1], 0.0);
    }

    #[test]
    fn tuning_finds_the_planted_structure_and_is_deterministic() {
        // Items in four clusters on four axes; users like one cluster each.
        let dim = 4;
        let n = 200;
        let items: Vec<f32> = (0..n)
            .flat_map(|i| {
                let mut v = [0.0f32; 4];
                v[i % 4] = 1.0 + (i % 7) as f32 * 0.1;
                v
            })
            .collect();
        let pairs = |offset: u32| -> Vec<(u32, u32)> {
            (0..40u32)
                .flat_map(|u| (0..8u32).map(move |j| (u, (u % 4) + 4 * (j * 3 + offset))))
                .collect()
        };
        let train = UserItems::from_pairs(40, &pairs(0));
        let validation = UserItems::from_pairs(40, &pairs(1));
        let options = TuneOptions {
            users: 40,
            ..TuneOptions::default()
        };
        let a = tune(&items, dim, &train, &validation, &options).unwrap();
        let b = tune(&items, dim, &train, &validation, &options).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.grid.len(),
            UNOBSERVED_ITEMS_GRID.len() * RIDGE_ITEMS_GRID.len()
        );
        // Ranking within the right cluster: 20 of the 42 cluster items left, so recall is far
        // above the 20/192 of a random ranking.
        assert!(a.best.recall > 0.35, "{a:?}");
        // No validation items, no tuning.
        assert_eq!(
            tune(
                &items,
                dim,
                &train,
                &UserItems::from_pairs(40, &[]),
                &options
            ),
            None
        );
        assert!(a.params.unobserved_weight > 0.0 && a.params.regularization > 0.0);
    }

    #[test]
    fn holdout_users_are_a_seeded_fraction() {
        let a = holdout_users(1000, 0.1, 3);
        assert_eq!(a, holdout_users(1000, 0.1, 3));
        assert!((60..140).contains(&a.len()), "{}", a.len());
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(holdout_users(5, 0.0, 3), Vec::<u32>::new());
        assert_eq!(holdout_users(5, 0.01, 3).len(), 1);
    }
}
