//! What a plain `pocketrec export` gives, against dense exact scans, in one criterion run:
//! `recommend` on the file the exporter writes with its defaults (`--layout auto`, block
//! bounds where they pay), on the same tables exported as a column layout without block bounds
//! (the column scan before block bounds), and two well-vectorised dense exact scans of the same
//! tables with the same top-k heap: f32 (AVX2 + FMA) and int8 with per-row scales (AVX2
//! integer multiply-adds, LiteRT's dynamic-range "hybrid" int8). 1M items, d = 64, 10 %, k = 20,
//! one thread; tables: structured (`pocketrec generate --structure structured`), i.i.d. normal,
//! and, with `POCKETREC_GOWALLA_MODEL=model.prec`, the tables of a trained model.
//!
//! `cargo bench -p pocketrec-train --bench fast_default` (`POCKETREC_BENCH_ITEMS=N` for another
//! catalogue size).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pocketrec::builder::Layout;
use pocketrec::{Model, Recommendation};
use pocketrec_export::arrays::{ArrayExport, ArrayTable, Values, export_arrays};
use pocketrec_export::storage::BoundsChoice;
use pocketrec_train::random::{random_normal_table, structured_tables};

#[path = "../../runtime/benches/support/baselines.rs"]
mod baselines;
use baselines::{DIM, K, dense, int8};

/// Users whose queries the benches cycle through.
const QUERY_USERS: usize = 32;

/// A user table and an item table, dense row-major, `DIM` wide.
struct Tables {
    name: String,
    users: Vec<f32>,
    items: Vec<f32>,
}

/// Exports `tables` in memory with the exporter's defaults, or as a column layout without
/// block bounds (`plain_columns`), and returns the file's bytes.
fn export(tables: &Tables, plain_columns: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("m.prec");
    let table = |name: &str, data: &[f32]| {
        ArrayTable::dense(name, data.len() / DIM, DIM, Values::F32(data)).expect("table")
    };
    let mut export = ArrayExport::new(
        table("users", &tables.users),
        table("items", &tables.items),
        &path,
    );
    if plain_columns {
        export.storage.layout = Some(Layout::Columns);
        export.storage.block_bounds = BoundsChoice::Off;
    }
    export_arrays(export).expect("export");
    std::fs::read(&path).expect("read the model")
}

/// The tables to measure.
fn tables() -> Vec<Tables> {
    let items: usize = std::env::var("POCKETREC_BENCH_ITEMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let users = 2_000;
    let structured = structured_tables(7, users, items, DIM, 0.1);
    let mut all = vec![
        Tables {
            name: "structured".into(),
            users: structured.users,
            items: structured.items,
        },
        Tables {
            name: "random".into(),
            users: random_normal_table(1, users, DIM, 0.1),
            items: random_normal_table(2, items, DIM, 0.1),
        },
    ];
    if let Some(path) = std::env::var_os("POCKETREC_GOWALLA_MODEL") {
        let bytes = std::fs::read(&path).expect("read POCKETREC_GOWALLA_MODEL");
        let model = Model::from_bytes(&bytes[..]).expect("open POCKETREC_GOWALLA_MODEL");
        let dense = |table: pocketrec::Table<'_>| {
            let mut out = vec![0.0f32; table.rows() * DIM];
            for (r, row) in out.chunks_exact_mut(DIM).enumerate() {
                table.decode_row(r, row).expect("row");
            }
            out
        };
        all.push(Tables {
            name: "gowalla-trained".into(),
            users: dense(model.users().expect("users")),
            items: dense(model.items().expect("items")),
        });
    }
    all
}

fn fast_default(c: &mut Criterion) {
    for tables in tables() {
        let n = tables.items.len() / DIM;
        let default = export(&tables, false);
        let columns = export(&tables, true);
        let (default, columns) = (
            Model::from_bytes(&default[..]).expect("default file"),
            Model::from_bytes(&columns[..]).expect("columns file"),
        );
        let quantised = int8::Table::new(&tables.items);
        let queries: Vec<&[f32]> = tables.users.chunks_exact(DIM).take(QUERY_USERS).collect();
        assert!(
            int8::simd_agrees(&quantised, queries[0]),
            "the int8 baseline's AVX2 kernel disagrees with its portable twin"
        );
        let mut group = c.benchmark_group(format!("fast-default/{}/{n}", tables.name));
        group.sample_size(10);
        group.throughput(Throughput::Elements(n as u64));
        let mut user = 0usize;
        let mut heap = Vec::with_capacity(K + 1);
        group.bench_function("dense-f32-avx2-scan", |b| {
            b.iter(|| {
                user = (user + 1) % queries.len();
                dense::top_k(&tables.items, queries[user], &mut heap);
                black_box(&heap);
            })
        });
        group.bench_function("dense-int8-avx2-scan", |b| {
            b.iter(|| {
                user = (user + 1) % queries.len();
                int8::top_k(&quantised, queries[user], &mut heap);
                black_box(&heap);
            })
        });
        let mut out = [Recommendation::default(); K];
        for (name, model) in [
            ("export-default", &default),
            ("columns-without-bounds", &columns),
        ] {
            group.bench_function(name, |b| {
                b.iter(|| {
                    user = (user + 1) % queries.len();
                    black_box(
                        model
                            .recommend_vector(queries[user], K, &[], &mut out)
                            .expect("recommend"),
                    )
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, fast_default);
criterion_main!(benches);
