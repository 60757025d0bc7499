//! Criterion benches of the retrieval kernels (each beside its scalar twin) and of
//! `recommend` per path (row scan, column scan) on 100k and 1M items, d = 64, densities 5, 10
//! and 20 %, users at the same density, k = 20, beside a well-vectorised dense f32 exact scan
//! with the same top-k heap, all in the same run.
//!
//! Also re-ranking 100 candidates on row records and on tables stored only as columns.
//!
//! `rows` is the row scan of the default file (bitmap rows in blocks of 16 above about 7 %
//! density, format 1.7; u8 lists below), `rows-per-row-offsets` the same rows with one offset
//! each (format 1.6's choice: u8 lists up to 12.5 %, then bitmaps).
//!
//! `cargo bench -p pocketrec --bench retrieval` (`POCKETREC_BENCH_QUICK=1`: 100k items and
//! 10 % density only).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pocketrec::bench_kernels as k;
use pocketrec::builder::{Layout, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{ListRows, Model, Recommendation, Retrieval, Role, ValueEncoding};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 64;
const K: usize = 20;
const USERS: usize = 32;

fn table(seed: u64, rows: usize, density: f64) -> Vec<f32> {
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

fn model(users: &[f32], items: &[f32], values: ValueEncoding) -> Vec<u8> {
    model_with(users, items, values, Layout::Both, ListRows::U16)
}

fn model_with(
    users: &[f32],
    items: &[f32],
    values: ValueEncoding,
    layout: Layout,
    list_rows: ListRows,
) -> Vec<u8> {
    build(users, items, values, layout, list_rows, false, false)
}

/// Items stored as sliced rows (format 1.4).
fn sliced_model(users: &[f32], items: &[f32], values: ValueEncoding) -> Vec<u8> {
    build(
        users,
        items,
        values,
        Layout::Rows,
        ListRows::U16,
        true,
        false,
    )
}

/// Items with one row offset per row (bitmap rows as format 1.3 stored them; the default
/// stores them in blocks of 16, format 1.7).
fn per_row_offsets_model(users: &[f32], items: &[f32], values: ValueEncoding) -> Vec<u8> {
    build(
        users,
        items,
        values,
        Layout::Both,
        ListRows::U16,
        false,
        true,
    )
}

fn build(
    users: &[f32],
    items: &[f32],
    values: ValueEncoding,
    layout: Layout,
    list_rows: ListRows,
    sliced: bool,
    per_row_offsets: bool,
) -> Vec<u8> {
    let u = SparseMatrix::from_dense(users.len() / DIM, DIM, users).unwrap();
    let i = SparseMatrix::from_dense(items.len() / DIM, DIM, items).unwrap();
    ModelBuilder::new()
        .table(TableSpec::new("users", Role::User, u))
        .table(
            TableSpec::new("items", Role::Item, i)
                .values(values)
                .layout(layout)
                .list_rows(list_rows)
                .with_sliced_rows(sliced)
                .with_per_row_offsets(per_row_offsets),
        )
        .build()
        .unwrap()
}

/// The dense baselines (f32 AVX2 + FMA, int8 per-row scales), shared with the benches of the
/// default layouts (`train/benches/fast_default.rs`).
#[path = "support/baselines.rs"]
mod baselines;
use baselines::dense;

/// A batch row kernel as the benches call it.
type RowKernel = fn(&[f32], &pocketrec::Table<'_>, &mut [f32]) -> bool;

/// The ways to time a batch row kernel: the dispatcher (`simd`), the AVX2 kernel on its own
/// where there is one, and the scalar reference.
fn kernel_ways(
    simd: RowKernel,
    avx2: Option<RowKernel>,
    scalar: RowKernel,
) -> Vec<(&'static str, RowKernel)> {
    let mut ways = vec![("simd", simd)];
    ways.extend(avx2.map(|kernel| ("avx2", kernel)));
    ways.push(("scalar", scalar));
    ways
}

/// The AVX2 u8-list row kernel on its own (x86_64 only).
fn row_dots_avx2() -> Option<RowKernel> {
    #[cfg(target_arch = "x86_64")]
    return Some(k::row_dots_avx2);
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// The AVX2 bitmap row kernel on its own (x86_64 only).
fn bitmap_dots_avx2() -> Option<RowKernel> {
    #[cfg(target_arch = "x86_64")]
    return Some(k::bitmap_dots_avx2);
    #[cfg(not(target_arch = "x86_64"))]
    None
}

fn kernels(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut group = c.benchmark_group("kernel");
    // A posting list as the column scan meets it at 10 % density: about 410 sorted rows of a
    // 4096-row block.
    let block = 4096;
    let rows: Vec<u16> = (0..block as u16).filter(|_| rng.random_bool(0.1)).collect();
    let n = rows.len();
    let items: Vec<u8> = rows.iter().flat_map(|i| i.to_le_bytes()).collect();
    let f16: Vec<u8> = (0..n)
        .flat_map(|_| {
            half::f16::from_f32(rng.random_range(-1.0f32..1.0))
                .to_bits()
                .to_le_bytes()
        })
        .collect();
    let mut acc = vec![0.0f32; block];
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("scatter-add/f16/simd", |b| {
        b.iter(|| k::scatter_add(&mut acc, 0.5, &items, &f16, ValueEncoding::F16))
    });
    #[cfg(target_arch = "x86_64")]
    for way in ["gather", "stash"] {
        if k::scatter_add_avx512(way, &mut acc, 0.5, &items, &f16, ValueEncoding::F16).is_some() {
            group.bench_function(format!("scatter-add/f16/avx512-{way}"), |b| {
                b.iter(|| {
                    k::scatter_add_avx512(way, &mut acc, 0.5, &items, &f16, ValueEncoding::F16)
                })
            });
        }
    }
    group.bench_function("scatter-add/f16/scalar", |b| {
        b.iter(|| k::scatter_add_scalar(&mut acc, 0.5, &items, &f16, ValueEncoding::F16))
    });
    // The floor of any scatter-add on this machine: the bare `acc[row] += product` over rows
    // and products already decoded (what is left once decoding and checks cost nothing).
    let rows32: Vec<u32> = rows.iter().map(|&r| u32::from(r)).collect();
    let products: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let mut floor_acc = [0.0f32; 4096];
    group.bench_function("scatter-add/read-modify-write-floor", |b| {
        b.iter(|| {
            let acc = black_box(&mut floor_acc);
            for (&row, &p) in black_box(&rows32).iter().zip(black_box(&products)) {
                // The mask keeps the index in bounds without a check (rows are < 4096).
                acc[row as usize & 4095] += p;
            }
        })
    });
    group.bench_function("f16-decode/scalar", |b| {
        b.iter(|| {
            let mut s = 0.0f32;
            for c in f16.chunks_exact(2) {
                s += k::f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
            black_box(s)
        })
    });
    // Row kernels on 100k rows at 10 %, f16 (eight-lane sums) and f32 (sequential sums).
    let rows = 100_000;
    let users = table(1, USERS, 0.1);
    let itemt = table(2, rows, 0.1);
    let query = &users[..DIM];
    let mut dots = vec![0.0f32; rows];
    group.throughput(Throughput::Elements(rows as u64));
    for values in [ValueEncoding::F16, ValueEncoding::F32] {
        // One offset per row: the kernels' own input (u8 lists at 10 % then).
        let bytes = per_row_offsets_model(&users, &itemt, values);
        let list_model = Model::from_bytes(&bytes).unwrap();
        let t = list_model.items().unwrap();
        assert_eq!(t.index_encoding(), pocketrec::IndexEncoding::U8List);
        let ways = kernel_ways(k::row_dots, row_dots_avx2(), k::row_dots_scalar);
        for (way, kernel) in ways {
            group.bench_function(format!("row-dots/{values}/{way}"), |b| {
                b.iter(|| kernel(query, &t, &mut dots))
            });
        }
        // The same rows sliced (format 1.4): one lane per row, sequential sums.
        let sliced_bytes = sliced_model(&users, &itemt, values);
        let sliced = Model::from_bytes(&sliced_bytes).unwrap();
        let st = sliced.items().unwrap();
        let mut ways: Vec<(&str, RowKernel)> = vec![("simd", k::sliced_dots)];
        #[cfg(target_arch = "x86_64")]
        ways.push(("avx2", k::sliced_dots_avx2));
        ways.push(("scalar", k::sliced_dots_scalar));
        for (way, kernel) in ways {
            group.bench_function(format!("sliced-dots/{values}/{way}"), |b| {
                b.iter(|| assert!(kernel(query, &st, &mut dots)))
            });
        }
    }
    // Bitmap rows on 100k rows: f16 and f32 at 20 % density, and a dense f32 table (every
    // entry non-zero: a dense model's rows, as `eval` scans them).
    for (values, density) in [
        (ValueEncoding::F16, 0.2),
        (ValueEncoding::F32, 0.2),
        (ValueEncoding::F32, 1.0),
    ] {
        let bitmap_items = table(5, rows, density);
        let bitmap_bytes = per_row_offsets_model(&users, &bitmap_items, values);
        let bitmap_model = Model::from_bytes(&bitmap_bytes).unwrap();
        let bt = bitmap_model.items().unwrap();
        assert_eq!(bt.index_encoding(), pocketrec::IndexEncoding::Bitmap);
        let name = format!("bitmap-dots/{values}-{}%", (density * 100.0) as u32);
        let ways = kernel_ways(k::bitmap_dots, bitmap_dots_avx2(), k::bitmap_dots_scalar);
        for (way, kernel) in ways {
            group.bench_function(format!("{name}/{way}"), |b| {
                b.iter(|| kernel(query, &bt, &mut dots))
            });
        }
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
    let densities: &[f64] = if quick { &[0.1] } else { &[0.05, 0.1, 0.2] };
    for &n in sizes {
        for &density in densities {
            let users = table(3, USERS, density);
            let items = table(4, n, density);
            let mut group =
                c.benchmark_group(format!("recommend/{n}/{}%", (density * 100.0) as u32));
            group.sample_size(if n >= 1_000_000 { 10 } else { 20 });
            group.throughput(Throughput::Elements(n as u64));
            let mut user = 0usize;
            let mut heap = Vec::with_capacity(K + 1);
            group.bench_function("dense-f32-avx2-scan", |b| {
                b.iter(|| {
                    user = (user + 1) % USERS;
                    dense::top_k(&items, &users[user * DIM..(user + 1) * DIM], &mut heap);
                    black_box(&heap);
                })
            });
            for values in [ValueEncoding::F32, ValueEncoding::F16] {
                let both = model(&users, &items, values);
                let only = model_with(&users, &items, values, Layout::Columns, ListRows::U16);
                let bitmaps = model_with(&users, &items, values, Layout::Columns, ListRows::Bitmap);
                let sliced = sliced_model(&users, &items, values);
                let per_row = per_row_offsets_model(&users, &items, values);
                let (both, only, bitmaps, sliced, per_row) = (
                    Model::from_bytes(&both).unwrap(),
                    Model::from_bytes(&only).unwrap(),
                    Model::from_bytes(&bitmaps).unwrap(),
                    Model::from_bytes(&sliced).unwrap(),
                    Model::from_bytes(&per_row).unwrap(),
                );
                let mut out = [Recommendation::default(); K];
                // The column layout of a `both` file (block-major lists) and of a `columns`
                // file (dimension-major lists, no row records), the latter also with bitmap
                // list rows (format 1.3).
                for (name, m, how) in [
                    ("rows", &both, Retrieval::Rows),
                    ("rows-per-row-offsets", &per_row, Retrieval::Rows),
                    ("rows-sliced", &sliced, Retrieval::Rows),
                    ("columns", &both, Retrieval::Columns),
                    ("columns-only", &only, Retrieval::Columns),
                    ("columns-only-bitmap", &bitmaps, Retrieval::Columns),
                ] {
                    group.bench_function(BenchmarkId::new(name, values), |b| {
                        b.iter(|| {
                            user = (user + 1) % USERS;
                            let q = &users[user * DIM..(user + 1) * DIM];
                            black_box(m.recommend_vector_with(q, K, &[], &mut out, how).unwrap())
                        })
                    });
                }
            }
            group.finish();
        }
    }
}

/// Re-ranking 100 candidates (`score_candidates_vector`, what a two-stage recommender does
/// after a first retrieval) on 1M items, d = 64, 10 %, f16: row records against a table stored
/// only as its column layout (each candidate's row gathered by a binary search per dimension),
/// with its rows in id order and clustered (block bounds, ids through the id index).
fn rerank(c: &mut Criterion) {
    let quick = std::env::var_os("POCKETREC_BENCH_QUICK").is_some();
    let n = if quick { 100_000 } else { 1_000_000 };
    let users = table(3, USERS, 0.1);
    let items = table(4, n, 0.1);
    let u = SparseMatrix::from_dense(USERS, DIM, &users).unwrap();
    let i = SparseMatrix::from_dense(n, DIM, &items).unwrap();
    let file = |spec: TableSpec| {
        ModelBuilder::new()
            .table(TableSpec::new("users", Role::User, u.clone()))
            .table(spec.values(ValueEncoding::F16))
            .build()
            .unwrap()
    };
    let rows = file(TableSpec::new("items", Role::Item, i.clone()));
    let columns = file(TableSpec::new("items", Role::Item, i.clone()).layout(Layout::Columns));
    let clustered = file(
        TableSpec::new("items", Role::Item, i)
            .layout(Layout::Columns)
            .row_order(pocketrec::builder::RowOrder::Clustered)
            .with_block_bounds(256),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let candidates: Vec<Vec<u64>> = (0..USERS)
        .map(|_| (0..100).map(|_| rng.random_range(0..n as u64)).collect())
        .collect();
    let mut group = c.benchmark_group(format!("rerank-100/{n}/10%/f16"));
    group.throughput(Throughput::Elements(100));
    let mut user = 0usize;
    let mut scores = [0.0f32; 100];
    for (name, bytes) in [
        ("rows", &rows),
        ("columns-only", &columns),
        ("columns-only-clustered", &clustered),
    ] {
        let model = Model::from_bytes(&bytes[..]).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                user = (user + 1) % USERS;
                let q = &users[user * DIM..(user + 1) * DIM];
                model
                    .score_candidates_vector(q, &candidates[user], &mut scores)
                    .unwrap();
                black_box(&scores);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kernels, recommend, rerank);
criterion_main!(benches);
