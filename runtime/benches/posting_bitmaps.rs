//! An experiment, not a kernel of the runtime: would posting lists stored as **bitmaps** (one
//! bit per row of a dimension, then the values packed) bring the column scan within 2x of its
//! bandwidth floor, where today's `u16` posting lists stay at 3.5 to 4.5x on an AMD Zen 4?
//!
//! It times, on the same generated 1M-item table (d = 64, 10 %, users at 10 %), single thread:
//!
//! - `recommend` through the column scan of a real `.prec` file (`--layout columns`, f32): what
//!   the runtime does today, top-k included;
//! - the bitmap layout's fused scan: per 64 rows, per non-zero dimension of the user, the
//!   dimension's 64 bits pick which of the next packed values belong to which rows (AVX-512
//!   `vexpandps`), weighted and added in four registers, with no accumulator in memory and no
//!   read-modify-write per entry; it keeps only the best score (a top-1 stand-in, cheaper than
//!   the runtime's top-k pass, which costs it about 10 %);
//!
//! and prints each one's p50 beside the bytes it reads and the floor: those bytes divided by a
//! memory read bandwidth measured in the same run (one 512 MiB streaming sum, best of five).
//!
//! `cargo bench -p pocketrec --bench posting_bitmaps` (x86_64 with AVX-512F and POPCNT only; elsewhere it
//! says so and stops).

fn main() {
    #[cfg(target_arch = "x86_64")]
    experiment::run();
    #[cfg(not(target_arch = "x86_64"))]
    println!("posting_bitmaps: needs x86_64 with AVX-512F; nothing measured");
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
    /// a value there; the values of the rows that do, in row order.
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
                BitmapColumn { words, values }
            })
            .collect();
        drop(items);
        let bandwidth = read_bandwidth();

        let (mut today, mut bitmap) = (Vec::new(), Vec::new());
        let (mut today_bytes, mut bitmap_bytes) = (0u64, 0u64);
        let mut out = [Recommendation::default(); 20];
        for q in users.chunks_exact(DIM) {
            let start = Instant::now();
            let n = model
                .recommend_vector_with(q, 20, &[], &mut out, Retrieval::Columns)
                .unwrap();
            today.push(start.elapsed().as_secs_f64());
            today_bytes += model.plan(q).unwrap().column_bytes.unwrap();

            let active: Vec<(&BitmapColumn, f32)> = q
                .iter()
                .enumerate()
                .filter(|(_, w)| **w != 0.0)
                .map(|(d, &w)| (&columns[d], w))
                .collect();
            let start = Instant::now();
            // SAFETY: AVX-512F and POPCNT were detected above.
            let best = unsafe { fused_bitmap_scan(&active) };
            bitmap.push(start.elapsed().as_secs_f64());
            bitmap_bytes += active
                .iter()
                .map(|(c, _)| (8 * c.words.len() + 4 * c.values.len()) as u64)
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
        println!("layout                        p50 us   bytes/query   floor us   p50/floor");
        for (name, times, total) in [
            ("u16 lists (recommend)", &mut today, today_bytes),
            ("bitmaps (fused expand)", &mut bitmap, bitmap_bytes),
        ] {
            let bytes = total as f64 / QUERIES as f64;
            let floor = bytes / bandwidth;
            let p50 = p50(times);
            println!(
                "{name:<26} {:>9.1} {bytes:>13.0} {:>10.1} {:>11.2}",
                p50 * 1e6,
                floor * 1e6,
                p50 / floor
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

    /// How far ahead the fused scan asks for each dimension's values and bitmap words.
    const AHEAD_VALUES: usize = 256;
    const AHEAD_WORDS: usize = 64;

    /// Where the fused scan is in one dimension of the bitmap layout.
    struct Cursor {
        words: *const u64,
        next_value: *const f32,
        weight: __m512,
    }

    /// The best score over all rows of the bitmap layout for the user's non-zero dimensions
    /// `active` (each with its weight), rows 64 at a time in four 16-lane accumulators.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and POPCNT.
    #[target_feature(enable = "avx512f,popcnt")]
    unsafe fn fused_bitmap_scan(active: &[(&BitmapColumn, f32)]) -> f32 {
        let mut cursors: Vec<Cursor> = active
            .iter()
            .map(|(c, w)| {
                // One value per set bit (checked where the column is built) and one word per
                // 64 rows.
                assert_eq!(c.words.len(), ITEMS / 64);
                Cursor {
                    words: c.words.as_ptr(),
                    next_value: c.values.as_ptr(),
                    weight: _mm512_set1_ps(*w),
                }
            })
            .collect();
        let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
        for word in 0..ITEMS / 64 {
            let mut acc = [_mm512_setzero_ps(); 4];
            for c in &mut cursors {
                // SAFETY: word < ITEMS / 64 == words.len() (asserted above).
                let bits = unsafe { *c.words.add(word) };
                // Ask for the bytes a few iterations ahead: a prefetch never faults, whatever
                // the address (wrapping_add: it may pass the end of the column).
                _mm_prefetch::<_MM_HINT_T0>(c.next_value.wrapping_add(AHEAD_VALUES).cast());
                _mm_prefetch::<_MM_HINT_T0>(c.words.wrapping_add(word + AHEAD_WORDS).cast());
                for (quarter, acc) in acc.iter_mut().enumerate() {
                    let mask = (bits >> (16 * quarter)) as u16;
                    let count = mask.count_ones() as usize;
                    // SAFETY: the values not yet read are at least the set bits not yet
                    // visited (one value per set bit, asserted where the column is built), so the `count` floats
                    // loaded, and the pointer moved past them, stay within `values`;
                    // masked-off lanes are not read.
                    let packed = unsafe {
                        let lanes = ((1u32 << count) - 1) as u16;
                        let packed = _mm512_maskz_loadu_ps(lanes, c.next_value);
                        c.next_value = c.next_value.add(count);
                        packed
                    };
                    let spread = _mm512_maskz_expand_ps(mask, packed);
                    *acc = _mm512_add_ps(*acc, _mm512_mul_ps(spread, c.weight));
                }
            }
            for a in acc {
                best = _mm512_max_ps(best, a);
            }
        }
        _mm512_reduce_max_ps(best)
    }
}
