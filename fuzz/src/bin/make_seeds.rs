//! Writes small valid models (every value and index encoding, sliced rows, ids, biases) as the
//! fuzzer's seed corpus: `make_seeds DIR`.

use pocketrec::builder::{Layout, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{IdKind, ListRows, Role, Scoring, ValueEncoding};

fn table(rows: usize, dim: usize, density_per_mille: usize, salt: usize) -> SparseMatrix {
    let data: Vec<f32> = (0..rows * dim)
        .map(|i| {
            let h = (i * 2_654_435_761 + salt * 97) % 1000;
            if h < density_per_mille {
                (h as f32 - 500.0) / 100.0
            } else {
                0.0
            }
        })
        .collect();
    SparseMatrix::from_dense(rows, dim, &data).expect("valid seed table")
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: make_seeds DIR");
    std::fs::create_dir_all(&dir).expect("create corpus dir");
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
    // Sliced rows (format 1.4): both tables, every value encoding, a window and a half of
    // items (two windows, the second partial, its last slice partial too).
    for &values in ValueEncoding::ALL {
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
    println!("wrote {n} seeds to {dir}");
}
