//! Criterion benches of the runtime's hot paths, each beside a dense f32 baseline measured in
//! the same run: row decode, dot, `recommend` (k = 20) over 100k and 1M items per value
//! encoding, and the cost of opening a small and a large file.
//!
//! `cargo bench -p pocketrec --bench runtime` (set `POCKETREC_BENCH_QUICK=1` to skip the 1M
//! tables).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{Model, Recommendation, Role, ValueEncoding};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 64;
const DENSITY: f64 = 0.1;
const K: usize = 20;

/// A dense `rows x DIM` table with i.i.d. normal values at `DENSITY`.
fn table(seed: u64, rows: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * DIM)
        .map(|_| {
            if rng.random_bool(DENSITY) {
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random();
                ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
            } else {
                0.0
            }
        })
        .collect()
}

fn model_bytes(users: &[f32], items: &[f32], values: ValueEncoding) -> Vec<u8> {
    let u = SparseMatrix::from_dense(users.len() / DIM, DIM, users).unwrap();
    let i = SparseMatrix::from_dense(items.len() / DIM, DIM, items).unwrap();
    ModelBuilder::new()
        .table(TableSpec::new("users", Role::User, u).values(values))
        .table(TableSpec::new("items", Role::Item, i).values(values))
        .build()
        .unwrap()
}

/// The baseline: an exact scan of a dense row-major f32 table with a bounded top-k (sorted
/// insertion into a k-array, the usual hand-written form).
fn dense_top_k(items: &[f32], query: &[f32], out: &mut Vec<(f32, usize)>) {
    out.clear();
    for (i, row) in items.chunks_exact(DIM).enumerate() {
        let mut s = 0.0f32;
        for (a, b) in row.iter().zip(query) {
            s += a * b;
        }
        if out.len() < K || s > out[K - 1].0 {
            let at = out.partition_point(|&(t, _)| t >= s);
            out.insert(at, (s, i));
            out.truncate(K);
        }
    }
}

const ENCODINGS: [ValueEncoding; 5] = [
    ValueEncoding::F32,
    ValueEncoding::F16,
    ValueEncoding::Bf16,
    ValueEncoding::I8,
    ValueEncoding::I4,
];

fn rows_and_dot(c: &mut Criterion) {
    let users = table(1, 64);
    let items = table(2, 4096);
    let mut group = c.benchmark_group("row");
    group.throughput(Throughput::Elements(4096));
    let query = &users[..DIM];
    group.bench_function("dense-f32/dot", |b| {
        b.iter(|| {
            let mut total = 0.0f32;
            for row in items.chunks_exact(DIM) {
                let mut s = 0.0f32;
                for (a, q) in row.iter().zip(query) {
                    s += a * q;
                }
                total += s;
            }
            black_box(total)
        })
    });
    for values in ENCODINGS {
        let bytes = model_bytes(&users, &items, values);
        let model = Model::from_bytes(&bytes).unwrap();
        let table = model.items().unwrap();
        let mut dense = vec![0.0f32; DIM];
        group.bench_function(BenchmarkId::new("decode_into", values), |b| {
            b.iter(|| {
                for r in 0..table.rows() {
                    table.row(r).unwrap().decode_into(&mut dense).unwrap();
                }
                black_box(&dense);
            })
        });
        group.bench_function(BenchmarkId::new("dot", values), |b| {
            b.iter(|| {
                let mut total = 0.0f32;
                for r in 0..table.rows() {
                    total += table.row(r).unwrap().dot(query).unwrap();
                }
                black_box(total)
            })
        });
    }
    group.finish();
}

fn recommend(c: &mut Criterion) {
    let quick = std::env::var_os("POCKETREC_BENCH_QUICK").is_some();
    let sizes: &[usize] = if quick {
        &[100_000]
    } else {
        &[100_000, 1_000_000]
    };
    let users = table(3, 16);
    for &n in sizes {
        let items = table(4, n);
        let mut group = c.benchmark_group(format!("recommend/{n}"));
        group.sample_size(if n >= 1_000_000 { 10 } else { 20 });
        group.throughput(Throughput::Elements(n as u64));
        let mut top = Vec::with_capacity(K + 1);
        let mut user = 0usize;
        group.bench_function("dense-f32-scan", |b| {
            b.iter(|| {
                user = (user + 1) % 16;
                dense_top_k(&items, &users[user * DIM..(user + 1) * DIM], &mut top);
                black_box(&top);
            })
        });
        for values in ENCODINGS {
            let bytes = model_bytes(&users, &items, values);
            let model = Model::from_bytes(&bytes).unwrap();
            let mut out = [Recommendation::default(); K];
            group.bench_function(BenchmarkId::new("prec", values), |b| {
                b.iter(|| {
                    user = (user + 1) % 16;
                    black_box(model.recommend(user as u64, K, &[], &mut out).unwrap())
                })
            });
        }
        group.finish();
    }
}

fn open(c: &mut Criterion) {
    let quick = std::env::var_os("POCKETREC_BENCH_QUICK").is_some();
    let users = table(5, 1_000);
    let mut group = c.benchmark_group("open");
    let sizes: &[usize] = if quick {
        &[40_000]
    } else {
        &[40_000, 1_000_000]
    };
    for &n in sizes {
        let bytes = model_bytes(&users, &table(6, n), ValueEncoding::F16);
        group.bench_function(BenchmarkId::new("from_bytes", format!("{n}-items")), |b| {
            b.iter(|| black_box(Model::from_bytes(black_box(&bytes)).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, rows_and_dot, recommend, open);
criterion_main!(benches);
