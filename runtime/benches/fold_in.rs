//! Criterion bench of `Model::fold_in`: a user folded in from 50 interactions at d = 64 on
//! 20,000 random items at 10 % density (f32 and f16 values), with each solver, beside a dense
//! reference measured in the same run: the same system built densely in f32 from the dense
//! item table and a dense Gramian (`A = α₀ G + Σ vᵢ vᵢᵀ + λ I`, `b = Σ vᵢ`), solved by a
//! textbook dense Cholesky factorisation (`dense-f32/build+solve`), and that solve alone
//! (`dense-f32/solve-only`, `A` given).
//!
//! `cargo bench -p pocketrec --bench fold_in -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::needless_range_loop)] // the dense reference reads as the textbook writes it

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pocketrec::builder::{FoldInParams, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{Model, Role, Solver, ValueEncoding};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 64;
const ITEMS: usize = 20_000;
const DENSITY: f64 = 0.1;
const INTERACTIONS: usize = 50;

/// A dense `rows x DIM` table with i.i.d. normal values at `DENSITY`.
fn table(seed: u64, rows: usize) -> Vec<f32> {
    table_at(seed, rows, DENSITY)
}

/// A dense `rows x DIM` table with i.i.d. normal values at `density`.
fn table_at(seed: u64, rows: usize, density: f64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * DIM)
        .map(|_| {
            if rng.random_bool(density) {
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random();
                ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
            } else {
                0.0
            }
        })
        .collect()
}

/// The settings `pocketrec export` writes by default (`pocketrec_export::fold_in`): all items
/// weigh as much as 256 observed ones as unobserved targets, the ridge as much as 1,000.
fn default_params(items: &[f32]) -> FoldInParams {
    let mean_square = items
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        / items.len() as f64;
    FoldInParams {
        unobserved_weight: 256.0 / (items.len() / DIM) as f32,
        regularization: (1000.0 * mean_square) as f32,
    }
}

fn model_bytes(users: &[f32], items: &[f32], values: ValueEncoding, p: FoldInParams) -> Vec<u8> {
    let u = SparseMatrix::from_dense(users.len() / DIM, DIM, users).unwrap();
    let i = SparseMatrix::from_dense(items.len() / DIM, DIM, items).unwrap();
    ModelBuilder::new()
        .table(TableSpec::new("users", Role::User, u).values(values))
        .table(TableSpec::new("items", Role::Item, i).values(values))
        .fold_in(p)
        .build()
        .unwrap()
}

/// The dense Gramian `Σ v vᵀ` of the dense table, row-major `DIM x DIM` (the file stores it
/// too, so neither side computes it per fold-in).
fn dense_gramian(items: &[f32]) -> Vec<f32> {
    let mut g = vec![0.0f64; DIM * DIM];
    for v in items.chunks_exact(DIM) {
        for i in 0..DIM {
            for j in 0..DIM {
                g[i * DIM + j] += f64::from(v[i]) * f64::from(v[j]);
            }
        }
    }
    g.into_iter().map(|x| x as f32).collect()
}

/// Builds the system densely in f32: `A`'s lower triangle and `b` from the dense rows of the
/// interacted items (ids are row numbers).
fn dense_build(
    items: &[f32],
    gramian: &[f32],
    p: FoldInParams,
    interacted: &[u64],
    a: &mut [f32],
    b: &mut [f32],
) {
    for i in 0..DIM {
        for j in 0..=i {
            a[i * DIM + j] = p.unobserved_weight * gramian[i * DIM + j];
        }
        a[i * DIM + i] += p.regularization;
    }
    b.fill(0.0);
    for &id in interacted {
        let v = &items[id as usize * DIM..(id as usize + 1) * DIM];
        for i in 0..DIM {
            // Slices zipped, no bounds checks: the compiler vectorises this update.
            let vi = v[i];
            for (a, &vj) in a[i * DIM..=i * DIM + i].iter_mut().zip(&v[..=i]) {
                *a += vi * vj;
            }
            b[i] += vi;
        }
    }
}

/// Solves `A x = b` in place (`x` holds `b`), `A` symmetric positive definite, its lower
/// triangle overwritten by `L`.
fn dense_cholesky_solve(a: &mut [f32], x: &mut [f32]) {
    for j in 0..DIM {
        let (row_j, below) = a[j * DIM..].split_at_mut(DIM);
        let mut s = row_j[j];
        for &l in &row_j[..j] {
            s -= l * l;
        }
        let ljj = s.sqrt();
        row_j[j] = ljj;
        for row_i in below.chunks_exact_mut(DIM) {
            let mut s = row_i[j];
            for (&l, &m) in row_i[..j].iter().zip(&row_j[..j]) {
                s -= l * m;
            }
            row_i[j] = s / ljj;
        }
    }
    for i in 0..DIM {
        let mut s = x[i];
        for k in 0..i {
            s -= a[i * DIM + k] * x[k];
        }
        x[i] = s / a[i * DIM + i];
    }
    for i in (0..DIM).rev() {
        let mut s = x[i];
        for k in i + 1..DIM {
            s -= a[k * DIM + i] * x[k];
        }
        x[i] = s / a[i * DIM + i];
    }
}

/// `INTERACTIONS` distinct item ids (row numbers), the same in every group.
fn interactions() -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut interacted: Vec<u64> = Vec::with_capacity(INTERACTIONS);
    while interacted.len() < INTERACTIONS {
        let id = rng.random_range(0..ITEMS as u64);
        if !interacted.contains(&id) {
            interacted.push(id);
        }
    }
    interacted
}

fn fold_in(c: &mut Criterion) {
    let users = table(1, 16);
    let items = table(2, ITEMS);
    let params = default_params(&items);
    let gramian = dense_gramian(&items);
    let interacted = interactions();

    let mut group = c.benchmark_group(format!("fold_in/{ITEMS}-items/d{DIM}/{INTERACTIONS}"));
    let mut a = vec![0.0f32; DIM * DIM];
    let mut reference = vec![0.0f32; DIM];
    group.bench_function("dense-f32/build+solve", |b| {
        b.iter(|| {
            dense_build(
                &items,
                &gramian,
                params,
                black_box(&interacted),
                &mut a,
                &mut reference,
            );
            dense_cholesky_solve(&mut a, &mut reference);
            black_box(&reference);
        })
    });
    // The solve alone: A and b built once, copied in before each factorisation.
    let (mut built, mut rhs) = (vec![0.0f32; DIM * DIM], vec![0.0f32; DIM]);
    dense_build(&items, &gramian, params, &interacted, &mut built, &mut rhs);
    let mut x = vec![0.0f32; DIM];
    group.bench_function("dense-f32/solve-only", |b| {
        b.iter(|| {
            a.copy_from_slice(&built);
            x.copy_from_slice(&rhs);
            dense_cholesky_solve(&mut a, &mut x);
            black_box(&x);
        })
    });
    // The reference answer, for the check below.
    dense_build(
        &items,
        &gramian,
        params,
        &interacted,
        &mut a,
        &mut reference,
    );
    dense_cholesky_solve(&mut a, &mut reference);

    for values in [ValueEncoding::F32, ValueEncoding::F16] {
        let bytes = model_bytes(&users, &items, values, params);
        let model = Model::from_bytes(&bytes).unwrap();
        for solver in [Solver::Cholesky, Solver::ConjugateGradient] {
            let mut out = vec![0.0f32; DIM];
            // The answer first: close to the dense reference (f16 values are rounded, so
            // their system differs from the f32 one by about 2⁻¹¹ relative).
            let summary = model
                .fold_in_with(&interacted, &[], None, &mut out, solver)
                .unwrap();
            assert_eq!(summary.used, INTERACTIONS);
            let norm = reference.iter().map(|v| v * v).sum::<f32>().sqrt();
            let error = out
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            let allowed = if values == ValueEncoding::F32 {
                1e-4
            } else {
                5e-3
            };
            assert!(
                error <= allowed * norm,
                "{values} {solver:?}: |x - reference| = {error}, |reference| = {norm}"
            );
            eprintln!(
                "{values} {solver:?}: {} CG iterations, |x - dense reference| / |reference| = {:.1e}",
                summary.iterations,
                error / norm
            );
            let name = match solver {
                Solver::Cholesky => "cholesky",
                _ => "conjugate-gradient",
            };
            group.bench_function(BenchmarkId::new(format!("prec-{values}"), name), |b| {
                b.iter(|| {
                    black_box(
                        model
                            .fold_in_with(black_box(&interacted), &[], None, &mut out, solver)
                            .unwrap(),
                    )
                })
            });
        }
    }
    group.finish();
}

/// The softmax fold-in ([`pocketrec::SoftmaxFoldIn`]: 8 ascent iterations) on the same items
/// and interactions: over the whole catalogue (each iteration a pass over the item table),
/// stored as row records (f32, f16) and as a column layout (f32), and on a dense table of the
/// same shape (f32 rows, a dense model's); and over the default catalogue summary of 128
/// clusters; beside one `recommend_vector` of each file (one pass, top 20) in the same run.
fn fold_in_softmax(c: &mut Criterion) {
    use pocketrec::builder::Layout;
    use pocketrec::{Recommendation, SoftmaxFoldIn};
    let users = table(1, 16);
    let items = table(2, ITEMS);
    let interacted = interactions();
    // Whole-catalogue ascents (no summary).
    let exact = SoftmaxFoldIn::for_loss(0.1, 1.2, 0);
    let mut group = c.benchmark_group(format!(
        "fold_in_softmax/{ITEMS}-items/d{DIM}/{INTERACTIONS}"
    ));
    let dense_items = table_at(2, ITEMS, 1.0);
    let summary = SoftmaxFoldIn::for_loss(0.1, 1.2, ITEMS);
    for (values, layout, name, items, settings) in [
        (ValueEncoding::F32, Layout::Rows, "rows-f32", &items, exact),
        (ValueEncoding::F16, Layout::Rows, "rows-f16", &items, exact),
        (
            ValueEncoding::F32,
            Layout::Columns,
            "columns-f32",
            &items,
            exact,
        ),
        (
            ValueEncoding::F32,
            Layout::Rows,
            "dense-rows-f32",
            &dense_items,
            exact,
        ),
        // The writers' default: a summary of 128 clusters, whatever the layout.
        (
            ValueEncoding::F16,
            Layout::Rows,
            "rows-f16-summary-128",
            &items,
            summary,
        ),
        (
            ValueEncoding::F32,
            Layout::Rows,
            "dense-rows-f32-summary-128",
            &dense_items,
            summary,
        ),
    ] {
        let u = SparseMatrix::from_dense(16, DIM, &users).unwrap();
        let i = SparseMatrix::from_dense(ITEMS, DIM, items).unwrap();
        let bytes = ModelBuilder::new()
            .scoring(pocketrec::Scoring::Cosine)
            .table(TableSpec::new("users", Role::User, u).values(values))
            .table(
                TableSpec::new("items", Role::Item, i)
                    .values(values)
                    .layout(layout),
            )
            .fold_in_softmax(settings)
            .build()
            .unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let mut out = vec![0.0f32; DIM];
        group.bench_function(BenchmarkId::new(name, "fold-in"), |b| {
            b.iter(|| {
                black_box(
                    model
                        .fold_in(black_box(&interacted), &[], None, &mut out)
                        .unwrap(),
                )
            })
        });
        let mut top = [Recommendation::default(); 20];
        group.bench_function(BenchmarkId::new(name, "recommend_vector"), |b| {
            b.iter(|| {
                black_box(
                    model
                        .recommend_vector(black_box(&out), 20, &[], &mut top)
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fold_in, fold_in_softmax);
criterion_main!(benches);
