//! An experiment, not a kernel of the runtime: would posting lists stored as **bitmaps** (one
//! bit per row of a dimension, then the values packed) bring the column scan within 2x of its
//! bandwidth floor, where today's `u16` posting lists stay at 3.5 to 4.5x on an AMD Zen 4?
//!
//! Since format 1.3 the layout is in the runtime (`--list-rows bitmap`, `ListRows::Bitmap`),
//! and the `retrieval` bench times it beside the u16 lists (`columns-only-bitmap`): integrated,
//! it is a size option, 1.2 to 1.5 times slower than u16 lists at 10 % (docs/BENCHMARKS.md).
//! This file stays as the record of the experiment that led there.
//!
//! It times, on the same generated 1M-item table (d = 64, 10 %, users at 10 %), single thread:
//!
//! - `recommend` through the column scan of a real `.prec` file (`--layout columns`, f32): what
//!   the runtime does today, top-k included;
//! - the bitmap layout's fused scan: per 64 rows, per non-zero dimension of the user, the
//!   dimension's 64 bits pick which of the next packed values belong to which rows (AVX-512
//!   `vexpandps`), weighted and added in four registers, with no accumulator in memory and no
//!   read-modify-write per entry; it keeps only the best score (a top-1 stand-in, cheaper than
//!   the runtime's top-k pass, which costs the column scan about 10 %), and checks it against
//!   `recommend`'s (the same additions in the same order: equal bits).
//!
//! Each query runs twice in a row: cold (its data last read a query ago) and warm (its 3 to
//! 4 MB now in the last-level cache). The table gives each one's p50 beside the bytes it
//! reads and the floor: those bytes divided by a memory read bandwidth measured in the same run
//! (one 512 MiB streaming sum, best of five).
//!
//! `cargo bench -p pocketrec --bench posting_bitmaps` (x86_64 with AVX-512F and POPCNT only;
//! elsewhere it says so and stops).

fn main() {
    #[cfg(target_arch = "x86_64")]
    experiment::run();
    #[cfg(not(target_arch = "x86_64"))]
    println!("posting_bitmaps: needs x86_64 with AVX-512F and POPCNT; nothing measured");
}

#[cfg(target_arch = "x86_64")]
mod experiment {
    use std::arch::x86_64::*;
    use std::hint::black_box;
    use std::time::Instant;

    use pocketrec::builder::{Layout, ModelBuilder, SparseMatrix, TableSpec};
    use pocketrec::{Model, Recommendation, Retrieval, Role, ValueEncoding};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const ITEMS: usize = 1 << 20;
    const DIM: usize = 64;
    const DENSITY: f64 = 0.1;
    const QUERIES: usize = 100;

    /// One dimension of the bitmap layout: bit `r % 64` of word `r / 64` says whether row `r` has
    /// a value there; the values of the rows that do, in row order, then 16 zeros (padding for
    /// whole-vector loads).
    struct BitmapColumn {
        words: Vec<u64>,
        values: Vec<f32>,
    }

    pub fn run() {
        if !(std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("popcnt")) {
            println!("posting_bitmaps: needs AVX-512F and POPCNT; nothing measured");
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut table = |rows: usize| -> Vec<f32> {
            (0..rows * DIM)
                .map(|_| {
                    if rng.random_bool(DENSITY) {
                        rng.random_range(-1.0f32..1.0)
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let users = table(QUERIES);
        let items = table(ITEMS);
        let bytes = ModelBuilder::new()
            .table(TableSpec::new(
                "users",
                Role::User,
                SparseMatrix::from_dense(QUERIES, DIM, &users).unwrap(),
            ))
            .table(
                TableSpec::new(
                    "items",
                    Role::Item,
                    SparseMatrix::from_dense(ITEMS, DIM, &items).unwrap(),
                )
                .values(ValueEncoding::F32)
                .layout(Layout::Columns),
            )
            .build()
            .unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let columns: Vec<BitmapColumn> = (0..DIM)
            .map(|d| {
                let mut words = vec![0u64; ITEMS / 64];
                let mut values = Vec::new();
                for r in 0..ITEMS {
                    let v = items[r * DIM + d];
                    if v != 0.0 {
                        words[r / 64] |= 1 << (r % 64);
                        values.push(v);
                    }
                }
                let set_bits: usize = words.iter().map(|w| w.count_ones() as usize).sum();
                assert_eq!(set_bits, values.len());
                // So that the scan may load 16 values wherever it stands.
                values.extend([0.0; 16]);
                BitmapColumn { words, values }
            })
            .collect();
        drop(items);
        let bandwidth = read_bandwidth();

        // p50s of each layout's query, cold (its data last read a query ago: from memory) and
        // warm (run again at once: its 3 to 4 MB now in the last-level cache).
        let [
            mut today_cold,
            mut today_warm,
            mut bitmap_cold,
            mut bitmap_warm,
        ] = [(); 4].map(|_| Vec::new());
        let (mut today_bytes, mut bitmap_bytes) = (0u64, 0u64);
        let mut out = [Recommendation::default(); 20];
        for q in users.chunks_exact(DIM) {
            let mut n = 0;
            for times in [&mut today_cold, &mut today_warm] {
                let start = Instant::now();
                n = black_box(
                    model
                        .recommend_vector_with(black_box(q), 20, &[], &mut out, Retrieval::Columns)
                        .unwrap(),
                );
                times.push(start.elapsed().as_secs_f64());
            }
            today_bytes += model.plan(q).unwrap().column_bytes.unwrap();

            let active: Vec<(&BitmapColumn, f32)> = q
                .iter()
                .enumerate()
                .filter(|(_, w)| **w != 0.0)
                .map(|(d, &w)| (&columns[d], w))
                .collect();
            let mut best = 0.0;
            for times in [&mut bitmap_cold, &mut bitmap_warm] {
                let start = Instant::now();
                // SAFETY: AVX-512F and POPCNT were detected above.
                best = black_box(unsafe { fused_bitmap_scan(black_box(&active)) });
                times.push(start.elapsed().as_secs_f64());
            }
            bitmap_bytes += active
                .iter()
                .map(|(c, _)| (8 * c.words.len() + 4 * (c.values.len() - 16)) as u64)
                .sum::<u64>();
            // Both computed the same best score (the runtime's sums are the same additions in the
            // same order: dimension after dimension, products first).
            if n > 0 {
                assert_eq!(black_box(best), out[0].score, "the two layouts disagree");
            }
        }
        let p50 = |times: &mut Vec<f64>| {
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        };
        println!(
            "1M items, d = {DIM}, {}% items and users, {QUERIES} queries, read bandwidth {:.1} GB/s",
            DENSITY * 100.0,
            bandwidth / 1e9
        );
        println!(
            "layout                   bytes/query   floor us   cold p50 us  /floor   warm p50 us  /floor"
        );
        for (name, cold, warm, total) in [
            (
                "u16 lists (recommend)",
                &mut today_cold,
                &mut today_warm,
                today_bytes,
            ),
            (
                "bitmaps (fused expand)",
                &mut bitmap_cold,
                &mut bitmap_warm,
                bitmap_bytes,
            ),
        ] {
            let bytes = total as f64 / QUERIES as f64;
            let floor = bytes / bandwidth;
            let (cold, warm) = (p50(cold), p50(warm));
            println!(
                "{name:<22} {bytes:>13.0} {:>10.1} {:>12.1} {:>7.2} {:>13.1} {:>7.2}",
                floor * 1e6,
                cold * 1e6,
                cold / floor,
                warm * 1e6,
                warm / floor
            );
        }
    }

    /// Bytes per second of one streaming sum over 512 MiB, best of five.
    fn read_bandwidth() -> f64 {
        let data = vec![1u64; 64 << 20];
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            black_box(data.iter().fold(0u64, |a, &x| a.wrapping_add(x)));
            best = best.min(start.elapsed().as_secs_f64());
        }
        (data.len() * 8) as f64 / best
    }

    /// The best score over all rows of the bitmap layout for the user's non-zero dimensions
    /// `active` (each with its weight), rows 64 at a time in four 16-lane accumulators. One
    /// instance per number of dimensions (up to 16, the rest in groups), so that every
    /// dimension's position and weight stay in registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and POPCNT.
    #[target_feature(enable = "avx512f,popcnt")]
    unsafe fn fused_bitmap_scan(active: &[(&BitmapColumn, f32)]) -> f32 {
        macro_rules! by_count {
            ($($k:literal)*) => {
                match active.len() {
                    // SAFETY: this function's caller guarantees AVX-512F and POPCNT.
                    $($k => unsafe { fused::<$k>(active) },)*
                    _ => panic!("more than 16 non-zero dimensions: not measured here"),
                }
            };
        }
        by_count!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
    }

    /// [`fused_bitmap_scan`] for exactly `K` dimensions.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and POPCNT.
    #[target_feature(enable = "avx512f,popcnt")]
    unsafe fn fused<const K: usize>(active: &[(&BitmapColumn, f32)]) -> f32 {
        let words: [&[u64]; K] = core::array::from_fn(|i| &active[i].0.words[..ITEMS / 64]);
        let mut next: [*const f32; K] = core::array::from_fn(|i| active[i].0.values.as_ptr());
        let weights: [__m512; K] = core::array::from_fn(|i| _mm512_set1_ps(active[i].1));
        let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
        for word in 0..ITEMS / 64 {
            let mut acc = [_mm512_setzero_ps(); 4];
            for (i, column_words) in words.iter().enumerate() {
                let bits = column_words[word];
                let mut at = next[i];
                for (quarter, acc) in acc.iter_mut().enumerate() {
                    let mask = (bits >> (16 * quarter)) as u16;
                    // SAFETY: the values not yet read are at least the set bits not yet
                    // visited (one value per set bit), and 16 zeros follow the last value
                    // (both asserted where the column is built): the 16 floats loaded and the
                    // pointer moved past the `count` used stay within `values`.
                    let packed = unsafe {
                        let packed = _mm512_loadu_ps(at);
                        at = at.add(mask.count_ones() as usize);
                        packed
                    };
                    let spread = _mm512_maskz_expand_ps(mask, packed);
                    *acc = _mm512_add_ps(*acc, _mm512_mul_ps(spread, weights[i]));
                }
                next[i] = at;
            }
            for a in acc {
                best = _mm512_max_ps(best, a);
            }
        }
        _mm512_reduce_max_ps(best)
    }
}
