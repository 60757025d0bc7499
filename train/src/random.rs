//! Synthetic embedding tables with the structure of trained recommenders, for the demo and
//! benchmarks: latent taste clusters, a popularity skew, and magnitude sparsity.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pocketrec_export::prune;

/// Tables with a trained model's structure (taste clusters, popularity-driven norms, uneven
/// dimensions), fitted to a Gowalla-trained model: see [`crate::structured`].
pub use crate::structured::{StructuredTables, structured_tables};

/// A standard normal sample (Box-Muller).
pub fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// A Zipf-like draw in `0..n`: rank `r` with probability proportional to `1 / (r + 1)^s`,
/// by inverse-CDF on a precomputed table.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// Ranks `0..n` with exponent `s`.
    pub fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf = Vec::with_capacity(n);
        for r in 0..n {
            acc += 1.0 / ((r + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    /// The probability of rank `r`.
    pub fn probability(&self, r: usize) -> f64 {
        match r {
            0 => self.cdf[0],
            _ => self.cdf[r] - self.cdf[r - 1],
        }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// Dense user and item tables (row-major) plus item biases.
pub struct SyntheticTables {
    /// Embedding dimension.
    pub dim: usize,
    /// `users x dim`.
    pub users: Vec<f32>,
    /// `items x dim`.
    pub items: Vec<f32>,
    /// One per item: log-popularity.
    pub item_bias: Vec<f32>,
}

/// Generates tables whose users and items fall in `clusters` taste clusters (cluster sizes
/// Zipf-distributed), with item popularity following a Zipf law, then prunes each table by
/// magnitude to `density`.
pub fn clustered_tables(
    seed: u64,
    users: usize,
    items: usize,
    dim: usize,
    clusters: usize,
    density: f64,
) -> SyntheticTables {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centroids: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| normal(&mut rng)).collect())
        .collect();
    let cluster_of = Zipf::new(clusters, 0.8);
    let sample_table = |rows: usize, rng: &mut ChaCha8Rng| {
        let mut data = Vec::with_capacity(rows * dim);
        for _ in 0..rows {
            let c = &centroids[cluster_of.sample(rng)];
            let d = &centroids[cluster_of.sample(rng)];
            for j in 0..dim {
                data.push(0.8 * c[j] + 0.3 * d[j] + 0.4 * normal(rng));
            }
        }
        data
    };
    let mut user_table = sample_table(users, &mut rng);
    let mut item_table = sample_table(items, &mut rng);
    let popularity = Zipf::new(items, 1.0);
    let mut counts = vec![1u32; items];
    for _ in 0..items * 4 {
        counts[popularity.sample(&mut rng)] += 1;
    }
    let item_bias = counts.iter().map(|&c| 0.1 * (c as f32).ln()).collect();
    for table in [&mut user_table, &mut item_table] {
        let keep = prune::budget(table.len(), density);
        prune::keep_largest(table, keep);
    }
    SyntheticTables {
        dim,
        users: user_table,
        items: item_table,
        item_bias,
    }
}

/// A `rows x dim` table whose entries are independently non-zero with probability `density`,
/// with standard normal values: the "random normal tables" of the benchmarks.
pub fn random_normal_table(seed: u64, rows: usize, dim: usize, density: f64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * dim)
        .map(|_| {
            if rng.random_bool(density) {
                normal(&mut rng)
            } else {
                0.0
            }
        })
        .collect()
}

/// Changes exactly `round(fraction × rows)` rows of a `rows x dim` table, chosen at random
/// from `seed`, as a model update changes them: each non-zero scaled by `1 + 0.1 z` (z standard
/// normal), and in every other changed row one non-zero moved to a column that was zero. Returns
/// the changed rows, in increasing order.
///
/// ```
/// let mut table = pocketrec_train::random::random_normal_table(1, 100, 8, 0.5);
/// let before = table.clone();
/// let rows = pocketrec_train::random::change_rows(&mut table, 8, 0.05, 2);
/// assert_eq!(rows.len(), 5);
/// assert!(rows.iter().all(|&r| table[r * 8..r * 8 + 8] != before[r * 8..r * 8 + 8]));
/// ```
pub fn change_rows(table: &mut [f32], dim: usize, fraction: f64, seed: u64) -> Vec<usize> {
    let rows = table.len() / dim.max(1);
    let count = ((fraction * rows as f64).round() as usize).min(rows);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A partial Fisher-Yates shuffle picks `count` distinct rows.
    let mut order: Vec<usize> = (0..rows).collect();
    for i in 0..count {
        let j = rng.random_range(i..rows);
        order.swap(i, j);
    }
    let mut chosen = order[..count].to_vec();
    chosen.sort_unstable();
    for (k, &r) in chosen.iter().enumerate() {
        let row = &mut table[r * dim..(r + 1) * dim];
        let original = row.to_vec();
        for v in row.iter_mut().filter(|v| **v != 0.0) {
            *v *= 1.0 + 0.1 * normal(&mut rng);
        }
        if k % 2 == 1 {
            let nonzero: Vec<usize> = (0..dim).filter(|&c| row[c] != 0.0).collect();
            let zero: Vec<usize> = (0..dim).filter(|&c| row[c] == 0.0).collect();
            if !nonzero.is_empty() && !zero.is_empty() {
                let from = nonzero[rng.random_range(0..nonzero.len())];
                let to = zero[rng.random_range(0..zero.len())];
                row[to] = row[from];
                row[from] = 0.0;
            }
        }
        if *row == original[..] {
            // An empty row (or a scale of exactly 1): give it one value so that it changes.
            row[rng.random_range(0..dim)] += 1.0;
        }
    }
    chosen
}
