//! End to end: tables written as files, exported by `pocketrec-export`, opened by the
//! `pocketrec` runtime (from bytes and by mmap), and checked against the inputs.

use std::path::Path;

use pocketrec::builder::Layout;
use pocketrec::{IndexEncoding, Model, Recommendation, ValueEncoding};
use pocketrec_export::export::{ExportOptions, Source, export};
use pocketrec_export::input::write_npy_f32;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A `rows x dim` table with i.i.d. normal values at the given density (Box-Muller).
fn random_table(seed: u64, rows: usize, dim: usize, density: f64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * dim)
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

fn export_file(
    dir: &Path,
    name: &str,
    users: &Path,
    items: &Path,
    values: ValueEncoding,
) -> (u64, Vec<u8>) {
    let out = dir.join(name);
    let mut options = ExportOptions::new(Source::file(users), Source::file(items), &out);
    options.values = values;
    options.fold_in = false;
    options.storage.layout = Some(Layout::Rows);
    let summary = export(&options).unwrap();
    (summary.dense_f32_bytes, std::fs::read(&out).unwrap())
}

/// The size targets at d = 64 and density 10 %, for the row layout (`--layout rows`;
/// the default for 16,000 items is the column layout, a little larger and much faster): the
/// whole file (header, metadata, offsets, indices, values, and id maps when present) against
/// the dense f32 tables. The
/// fold-in section (a fixed 8,336 bytes at d = 64, whatever the rows) is left out so that the
/// figures are the tables' encoding; it is measured on its own below.
#[test]
fn file_size_targets_at_d64_density_10_percent() {
    let dir = tempfile::tempdir().unwrap();
    let (users, items, dim) = (8_000, 16_000, 64);
    let u = dir.path().join("u.npy");
    let v = dir.path().join("v.npy");
    write_npy_f32(&u, &[users, dim], &random_table(1, users, dim, 0.1)).unwrap();
    write_npy_f32(&v, &[items, dim], &random_table(2, items, dim, 0.1)).unwrap();
    for (values, limit) in [
        (ValueEncoding::F16, 0.12),
        (ValueEncoding::F32, 0.18),
        (ValueEncoding::I8, 0.09),
        (ValueEncoding::Bf16, 0.12),
        (ValueEncoding::I4, 0.07),
    ] {
        let (dense, bytes) = export_file(dir.path(), "m.prec", &u, &v, values);
        let ratio = bytes.len() as f64 / dense as f64;
        println!(
            "{values}: {} bytes = {:.2}% of dense f32",
            bytes.len(),
            100.0 * ratio
        );
        assert!(ratio <= limit, "{values}: {ratio:.4} > {limit}");
        let model = Model::from_bytes(&bytes).unwrap();
        // 6.4 non-zeros a row: u8 lists (a bitmap takes 8 bytes; in blocks it would save 1.6
        // bytes a row with its offsets, not worth its slower row scan).
        assert_eq!(
            model.items().unwrap().index_encoding(),
            IndexEncoding::U8List
        );
    }
    // The default export adds the fold-in section, 16 + 2·64·65 = 8,336 bytes, its three
    // properties in the metadata and the alignment.
    let out = dir.path().join("fold-in.prec");
    let mut options = ExportOptions::new(Source::file(&u), Source::file(&v), &out);
    options.values = ValueEncoding::F16;
    options.storage.layout = Some(Layout::Rows);
    let with = export(&options).unwrap().file_bytes;
    let (_, without) = export_file(dir.path(), "m.prec", &u, &v, ValueEncoding::F16);
    let extra = with - without.len() as u64;
    println!("fold-in section: +{extra} bytes");
    assert!(
        (8_336..8_336 + 256).contains(&extra),
        "fold-in section took {extra} bytes"
    );

    // With explicit integer id maps (not 0..n, so they are stored as u32).
    let uid = dir.path().join("uid.txt");
    let iid = dir.path().join("iid.txt");
    let ids = |n: usize| {
        (0..n)
            .map(|i| (1_000_000 + 7 * i).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::fs::write(&uid, ids(users)).unwrap();
    std::fs::write(&iid, ids(items)).unwrap();
    for (values, limit) in [
        (ValueEncoding::F16, 0.12),
        (ValueEncoding::F32, 0.18),
        (ValueEncoding::I8, 0.09),
        (ValueEncoding::I4, 0.08),
    ] {
        let out = dir.path().join("ids.prec");
        let mut options = ExportOptions::new(Source::file(&u), Source::file(&v), &out);
        options.values = values;
        options.fold_in = false;
        options.storage.layout = Some(Layout::Rows);
        options.user_ids = Some(uid.clone());
        options.item_ids = Some(iid.clone());
        let summary = export(&options).unwrap();
        let ratio = summary.file_bytes as f64 / summary.dense_f32_bytes as f64;
        println!(
            "{values} with u32 id maps: {:.2}% of dense f32",
            100.0 * ratio
        );
        assert!(ratio <= limit, "{values} with ids: {ratio:.4} > {limit}");
    }
}

/// Every input format reaches the runtime with the same values: the safetensors, npz and
/// scipy-sparse fixtures (made by real numpy/scipy) against their expected values.
#[test]
fn fixtures_of_every_format_round_trip_through_the_runtime() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../exporter/tests/fixtures");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for case in expected["tables"].as_array().unwrap() {
        let (rows, cols) = (
            case["rows"].as_u64().unwrap() as usize,
            case["cols"].as_u64().unwrap() as usize,
        );
        if rows == 0 {
            continue;
        }
        let file = fixtures.join(case["file"].as_str().unwrap());
        let source = Source {
            path: file.clone(),
            tensor: case["tensor"].as_str().map(str::to_string),
        };
        let out = dir.path().join("m.prec");
        export(&ExportOptions::new(source.clone(), source, &out)).unwrap();
        let model = Model::read(&out).unwrap();
        model.verify().unwrap();
        let items = model.items().unwrap();
        assert_eq!(
            (items.rows(), items.dim()),
            (rows, cols),
            "{}",
            file.display()
        );
        let numbers = |key: &str| -> Vec<f64> {
            case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let values: Vec<f32> = numbers("values").iter().map(|&v| v as f32).collect();
        // Dense cases list every value; sparse ones are CSR (indptr, indices, values).
        let want: Vec<f32> = if case["kind"] == "csr" {
            let (indptr, indices) = (numbers("indptr"), numbers("indices"));
            let mut dense = vec![0.0f32; rows * cols];
            for r in 0..rows {
                for k in indptr[r] as usize..indptr[r + 1] as usize {
                    dense[r * cols + indices[k] as usize] += values[k];
                }
            }
            dense
        } else {
            values
        };
        let mut row = vec![0.0f32; cols];
        for r in 0..rows {
            items.row(r).unwrap().decode_into(&mut row).unwrap();
            for c in 0..cols {
                // -0.0 is stored as an absent zero.
                assert_eq!(
                    row[c],
                    want[r * cols + c] + 0.0,
                    "{} [{r}, {c}]",
                    file.display()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures checked");
}

/// The same model through `Model::from_bytes`, `Model::read` and the mmap `Model::open`
/// gives identical answers, and `recommend` equals a dense brute force.
#[test]
fn exported_model_answers_like_a_dense_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let (users, items, dim) = (20, 3_000, 32);
    let ut = random_table(5, users, dim, 0.2);
    let it = random_table(6, items, dim, 0.2);
    let u = dir.path().join("u.npy");
    let v = dir.path().join("v.npy");
    write_npy_f32(&u, &[users, dim], &ut).unwrap();
    write_npy_f32(&v, &[items, dim], &it).unwrap();
    let (_, bytes) = export_file(dir.path(), "m.prec", &u, &v, ValueEncoding::F32);
    let from_bytes = Model::from_bytes(&bytes).unwrap();
    // SAFETY: the file is private to this test and not modified while mapped.
    let mapped = unsafe { Model::open(dir.path().join("m.prec")) }.unwrap();
    let read = Model::read(dir.path().join("m.prec")).unwrap();
    let k = 10;
    for user in 0..users {
        let q = &ut[user * dim..(user + 1) * dim];
        let mut scored: Vec<(usize, f32)> = (0..items)
            .map(|i| {
                let mut s = 0.0f32;
                for c in 0..dim {
                    s += q[c] * it[i * dim + c];
                }
                (i, s)
            })
            .collect();
        scored.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
        let want: Vec<(u64, f32)> = scored[..k].iter().map(|&(i, s)| (i as u64, s)).collect();
        let mut out = [Recommendation::default(); 10];
        for model in [
            &from_bytes
                .recommend(user as u64, k, &[], &mut out)
                .map(|n| out[..n].to_vec())
                .unwrap(),
            &mapped
                .recommend(user as u64, k, &[], &mut out)
                .map(|n| out[..n].to_vec())
                .unwrap(),
            &read
                .recommend(user as u64, k, &[], &mut out)
                .map(|n| out[..n].to_vec())
                .unwrap(),
        ] {
            let got: Vec<(u64, f32)> = model.iter().map(|r| (r.id, r.score)).collect();
            assert_eq!(got, want, "user {user}");
        }
    }
}
