//! Structured synthetic tables whose statistics match a trained model's, and the statistics
//! themselves.
//!
//! [`random_normal_table`](crate::random::random_normal_table) draws i.i.d. normal values:
//! every row has about the same norm, every dimension the same share of non-zeros, and no two
//! rows are alike, so a block of items stored together shares nothing and a score bound over
//! the block is loose. Trained tables are not like that: item norms follow popularity, items
//! group into tastes that share their strong dimensions, and magnitude pruning leaves the
//! non-zeros unevenly spread over the dimensions. [`structured_tables`] draws tables with
//! those properties, fitted to a Gowalla-trained model (see the `GOWALLA_*` constants), and
//! [`TableStats`] / [`ScoreStats`] measure them (the `table_stats` example prints them for
//! `.prec` files).

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pocketrec_export::prune;

use crate::random::{Zipf, normal};

/// Statistics of one embedding table (rows of `dim` values), the figures that decide how a
/// retrieval over it behaves: norms, sparsity pattern, value magnitudes, signs and clustering.
#[derive(Clone, Debug, PartialEq)]
pub struct TableStats {
    /// Rows.
    pub rows: usize,
    /// Dimension.
    pub dim: usize,
    /// Non-zeros over `rows * dim`.
    pub density: f64,
    /// Median row L2 norm.
    pub norm_median: f64,
    /// Row L2 norm quantiles p1, p10, p50, p90, p99 and the maximum, divided by the median.
    pub norm_quantiles: [f64; 6],
    /// Non-zeros per row: quantiles p1, p10, p50, p90, p99 and the maximum (counts).
    pub nnz_quantiles: [f64; 6],
    /// Non-zeros per dimension divided by their mean over the dimensions: minimum, median,
    /// maximum (1, 1, 1 when every dimension holds as many).
    pub dim_share: [f64; 3],
    /// Median magnitude of the non-zero values.
    pub value_median: f64,
    /// Magnitude quantiles of the non-zero values p10, p90, p99 and the maximum, divided by
    /// their median.
    pub value_quantiles: [f64; 4],
    /// The share of the non-zero values that are positive.
    pub positive_share: f64,
    /// Per dimension, `|positive - negative| / non-zeros`, averaged over the dimensions: 0
    /// when each dimension has as many signs of each kind, 1 when each has one sign only.
    pub dim_sign_skew: f64,
    /// The rows' strongest dimension and its sign (the key the builder's clustered row order
    /// starts with): the entropy of its distribution over the `2 * dim` codes, divided by
    /// `ln(2 * dim)` (1: rows spread evenly over the codes).
    pub top_code_entropy: f64,
    /// The most frequent strongest code's share of the rows, times `2 * dim` (1: uniform).
    pub top_code_peak: f64,
    /// The strongest value's share of a row's squared norm, averaged over the non-empty rows
    /// (`1 / nnz` for equal magnitudes, 1 for one dominant dimension).
    pub top_energy: f64,
    /// The mean cosine of a row to the nearest of [`KMEANS_CENTROIDS`] spherical k-means
    /// centroids (fitted on up to [`KMEANS_SAMPLE`] evenly spaced non-empty rows, which are
    /// also the rows measured): how tightly rows group.
    pub centroid_cosine: f64,
    /// Blocks of [`BLOCK_ROWS`] rows in the clustered order (as
    /// `pocketrec::builder::cluster_order` orders them: strongest dimension and sign, second
    /// strongest, decreasing norm): the norm of the block's envelope (per dimension the
    /// largest magnitude in the block) over the mean row norm of the block, averaged over the
    /// blocks. 1 when a block's rows are equal; up to `sqrt(BLOCK_ROWS)` when they share no
    /// dimension. The looseness of a block bound that ignores the query's signs.
    pub block_envelope: f64,
    /// Spearman's rank correlation between a row's norm and its popularity (interactions),
    /// when popularity is known.
    pub popularity_spearman: Option<f64>,
}

/// Spherical k-means centroids of [`TableStats::centroid_cosine`].
pub const KMEANS_CENTROIDS: usize = 64;
/// At most this many rows fit and measure [`TableStats::centroid_cosine`].
pub const KMEANS_SAMPLE: usize = 8_192;
/// Lloyd iterations of [`TableStats::centroid_cosine`].
pub const KMEANS_ITERATIONS: usize = 8;
/// Rows per block of [`TableStats::block_envelope`] and [`ScoreStats::scored_fraction`] (the
/// exporter's default block bounds).
pub const BLOCK_ROWS: usize = 64;

/// Sorted copy's quantile `p` (nearest rank); 0 for an empty slice.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Ranks `0..n` (ties share their mean rank).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0;
        for &o in &order[i..=j] {
            out[o] = mean;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation of two equally long series (0 when either is constant).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "spearman: series of different lengths");
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// The clustered row order of [`pocketrec::builder::cluster_order`] (rows keyed by their
/// strongest dimension and its sign, then their second strongest, then decreasing squared
/// norm, empty rows last) of a dense row-major table: the order the builder stores an item
/// table with block bounds in.
pub fn cluster_order(table: &[f32], dim: usize) -> Vec<usize> {
    let rows = table.len().checked_div(dim).unwrap_or(0);
    match pocketrec::builder::SparseMatrix::from_dense(rows, dim, &table[..rows * dim]) {
        Ok(matrix) => pocketrec::builder::cluster_order(&matrix),
        // Only non-finite values are refused: keep the rows in order.
        Err(_) => (0..rows).collect(),
    }
}

/// Unit-length copies of `rows` of `table` (all-zero rows skipped).
fn normalised_rows(table: &[f32], dim: usize, rows: impl Iterator<Item = usize>) -> Vec<f32> {
    let mut out = Vec::new();
    for r in rows {
        let row = &table[r * dim..(r + 1) * dim];
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if n > 0.0 {
            out.extend(row.iter().map(|v| v / n));
        }
    }
    out
}

/// Mean cosine of the rows of `unit` (unit-length, row-major) to their nearest of `c`
/// spherical k-means centroids after `iterations` Lloyd steps (initial centroids: evenly
/// spaced rows). Deterministic.
fn kmeans_cosine(unit: &[f32], dim: usize, c: usize, iterations: usize) -> f64 {
    let n = unit.len() / dim;
    if n == 0 {
        return 0.0;
    }
    let c = c.min(n);
    let mut centroids: Vec<f32> = (0..c)
        .flat_map(|i| unit[i * n / c * dim..(i * n / c + 1) * dim].iter().copied())
        .collect();
    let mut assign = vec![0usize; n];
    let mut best_cos = vec![0.0f32; n];
    for it in 0..=iterations {
        for (r, row) in unit.chunks_exact(dim).enumerate() {
            let (mut best, mut best_c) = (f32::NEG_INFINITY, 0);
            for (k, cen) in centroids.chunks_exact(dim).enumerate() {
                let dot: f32 = row.iter().zip(cen).map(|(a, b)| a * b).sum();
                if dot > best {
                    best = dot;
                    best_c = k;
                }
            }
            assign[r] = best_c;
            best_cos[r] = best;
        }
        if it == iterations {
            break;
        }
        let mut sums = vec![0.0f32; c * dim];
        for (r, row) in unit.chunks_exact(dim).enumerate() {
            for (s, v) in sums[assign[r] * dim..(assign[r] + 1) * dim]
                .iter_mut()
                .zip(row)
            {
                *s += v;
            }
        }
        for (cen, sum) in centroids.chunks_exact_mut(dim).zip(sums.chunks_exact(dim)) {
            let n = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
            if n > 0.0 {
                for (x, s) in cen.iter_mut().zip(sum) {
                    *x = s / n;
                }
            }
        }
    }
    best_cos.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64
}

impl TableStats {
    /// Measures a dense row-major table of `dim` columns; `popularity` (one figure per row,
    /// e.g. interaction counts) adds [`TableStats::popularity_spearman`].
    ///
    /// ```
    /// let table = pocketrec_train::random::random_normal_table(1, 1_000, 16, 0.5);
    /// let stats = pocketrec_train::structured::TableStats::measure(&table, 16, None);
    /// assert_eq!(stats.rows, 1_000);
    /// assert!((stats.density - 0.5).abs() < 0.02);
    /// ```
    pub fn measure(table: &[f32], dim: usize, popularity: Option<&[f64]>) -> TableStats {
        assert!(dim > 0 && table.len().is_multiple_of(dim), "table shape");
        let rows = table.len() / dim;
        let mut norms = Vec::with_capacity(rows);
        let mut nnz_rows = Vec::with_capacity(rows);
        let mut per_dim = vec![0u64; dim];
        let mut pos_dim = vec![0u64; dim];
        let mut magnitudes = Vec::new();
        let mut codes = vec![0u64; 2 * dim];
        let mut top_energy = 0.0;
        let mut nonempty = 0usize;
        for row in table.chunks_exact(dim) {
            let (mut sq, mut nnz, mut top, mut code) = (0.0f64, 0usize, 0.0f64, 0usize);
            for (c, &v) in row.iter().enumerate() {
                if v == 0.0 {
                    continue;
                }
                let x = f64::from(v);
                sq += x * x;
                nnz += 1;
                per_dim[c] += 1;
                pos_dim[c] += u64::from(v > 0.0);
                magnitudes.push(x.abs());
                if x.abs() > top {
                    top = x.abs();
                    code = 2 * c + usize::from(v < 0.0);
                }
            }
            norms.push(sq.sqrt());
            nnz_rows.push(nnz as f64);
            if nnz > 0 {
                nonempty += 1;
                codes[code] += 1;
                top_energy += top * top / sq;
            }
        }
        let popularity_spearman = popularity.map(|p| spearman(&norms, p));
        let total_nnz: u64 = per_dim.iter().sum();
        let positive: u64 = pos_dim.iter().sum();
        let dim_sign_skew = per_dim
            .iter()
            .zip(&pos_dim)
            .map(|(&n, &p)| {
                if n == 0 {
                    0.0
                } else {
                    (2.0 * p as f64 - n as f64).abs() / n as f64
                }
            })
            .sum::<f64>()
            / dim as f64;
        let mean_dim = total_nnz as f64 / dim as f64;
        let shares = sorted(
            per_dim
                .iter()
                .map(|&n| {
                    if mean_dim > 0.0 {
                        n as f64 / mean_dim
                    } else {
                        0.0
                    }
                })
                .collect(),
        );
        let (mut entropy, mut peak) = (0.0, 0u64);
        for &n in &codes {
            if n > 0 {
                let p = n as f64 / nonempty as f64;
                entropy -= p * p.ln();
            }
            peak = peak.max(n);
        }
        let sorted_norms = sorted(norms);
        let norm_median = quantile(&sorted_norms, 0.5);
        let rel = |x: f64, m: f64| if m > 0.0 { x / m } else { 0.0 };
        let nq = |p| rel(quantile(&sorted_norms, p), norm_median);
        let nnz_sorted = sorted(nnz_rows);
        let mags = sorted(magnitudes);
        let value_median = quantile(&mags, 0.5);
        let vq = |p| rel(quantile(&mags, p), value_median);
        let step = (rows / KMEANS_SAMPLE).max(1);
        let unit = normalised_rows(table, dim, (0..rows).step_by(step).take(KMEANS_SAMPLE));
        TableStats {
            rows,
            dim,
            density: if rows == 0 {
                0.0
            } else {
                total_nnz as f64 / (rows * dim) as f64
            },
            norm_median,
            norm_quantiles: [nq(0.01), nq(0.1), nq(0.5), nq(0.9), nq(0.99), nq(1.0)],
            nnz_quantiles: [0.01, 0.1, 0.5, 0.9, 0.99, 1.0].map(|p| quantile(&nnz_sorted, p)),
            dim_share: [shares[0], quantile(&shares, 0.5), shares[dim - 1]],
            value_median,
            value_quantiles: [vq(0.1), vq(0.9), vq(0.99), vq(1.0)],
            positive_share: rel(positive as f64, total_nnz as f64),
            dim_sign_skew,
            top_code_entropy: if nonempty == 0 {
                0.0
            } else {
                entropy / ((2 * dim) as f64).ln()
            },
            top_code_peak: rel(peak as f64 * (2 * dim) as f64, nonempty as f64),
            top_energy: rel(top_energy, nonempty as f64),
            centroid_cosine: kmeans_cosine(&unit, dim, KMEANS_CENTROIDS, KMEANS_ITERATIONS),
            block_envelope: block_envelope(table, dim),
            popularity_spearman,
        }
    }
}

/// [`TableStats::block_envelope`].
fn block_envelope(table: &[f32], dim: usize) -> f64 {
    let order = cluster_order(table, dim);
    let (mut sum, mut blocks) = (0.0, 0usize);
    let mut envelope = vec![0.0f64; dim];
    for block in order.chunks(BLOCK_ROWS) {
        envelope.fill(0.0);
        let mut norms = 0.0;
        for &r in block {
            let row = &table[r * dim..(r + 1) * dim];
            let mut sq = 0.0;
            for (e, &v) in envelope.iter_mut().zip(row) {
                let x = f64::from(v);
                *e = e.max(x.abs());
                sq += x * x;
            }
            norms += sq.sqrt();
        }
        if norms > 0.0 {
            let env = envelope.iter().map(|e| e * e).sum::<f64>().sqrt();
            sum += env / (norms / block.len() as f64);
            blocks += 1;
        }
    }
    if blocks == 0 {
        0.0
    } else {
        sum / blocks as f64
    }
}

/// How the scores of users against all items are shaped, and how much of the item table a
/// block-bounded scan must score.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreStats {
    /// Users measured (evenly spaced non-empty rows of the user table).
    pub queries: usize,
    /// The `k` of the top-k.
    pub k: usize,
    /// `(k-th best score - median score) / standard deviation of the scores`, averaged over
    /// the users: how far the top `k` stand out of the crowd.
    pub kth_z: f64,
    /// The same for the best score.
    pub best_z: f64,
    /// `k-th best score / best score`, averaged over the users.
    pub kth_over_best: f64,
    /// The fraction of the item blocks ([`BLOCK_ROWS`] rows in the clustered order,
    /// [`cluster_order`]) whose bound (per dimension the block's largest or smallest value,
    /// whichever the user's sign favours) reaches the user's `k`-th best score, averaged over
    /// the users: what a block-bounded scan that knew the `k`-th score would still score.
    pub scored_fraction: f64,
}

impl ScoreStats {
    /// Scores up to `queries` users of `users` (evenly spaced, empty rows skipped) against
    /// every row of `items` by dot product (both dense, row-major, `dim` columns).
    pub fn measure(
        users: &[f32],
        items: &[f32],
        dim: usize,
        queries: usize,
        k: usize,
    ) -> ScoreStats {
        let item_rows = items.len() / dim;
        let user_rows = users.len() / dim;
        // Items as sparse rows in the clustered order, with per-block envelopes.
        let order = cluster_order(items, dim);
        let mut cols: Vec<u32> = Vec::new();
        let mut vals: Vec<f32> = Vec::new();
        let mut starts = vec![0usize];
        for &r in &order {
            for (c, &v) in items[r * dim..(r + 1) * dim].iter().enumerate() {
                if v != 0.0 {
                    cols.push(c as u32);
                    vals.push(v);
                }
            }
            starts.push(cols.len());
        }
        let blocks = item_rows.div_ceil(BLOCK_ROWS);
        // Per block and dimension the largest and smallest value, 0 included where a row of
        // the block has none (as the builder's block bounds).
        let mut high = vec![f64::NEG_INFINITY; blocks * dim];
        let mut low = vec![f64::INFINITY; blocks * dim];
        let mut count = vec![0usize; blocks * dim];
        for (i, &r) in order.iter().enumerate() {
            let b = i / BLOCK_ROWS;
            for (c, &v) in items[r * dim..(r + 1) * dim].iter().enumerate() {
                if v != 0.0 {
                    let (x, cell) = (f64::from(v), b * dim + c);
                    high[cell] = high[cell].max(x);
                    low[cell] = low[cell].min(x);
                    count[cell] += 1;
                }
            }
        }
        for b in 0..blocks {
            let in_block = BLOCK_ROWS.min(item_rows - b * BLOCK_ROWS);
            for cell in b * dim..(b + 1) * dim {
                if count[cell] < in_block {
                    high[cell] = high[cell].max(0.0);
                    low[cell] = low[cell].min(0.0);
                }
            }
        }
        let candidates: Vec<usize> = (0..user_rows)
            .filter(|&u| users[u * dim..(u + 1) * dim].iter().any(|&v| v != 0.0))
            .collect();
        let step = (candidates.len() / queries.max(1)).max(1);
        let mut stats = ScoreStats {
            queries: 0,
            k,
            kth_z: 0.0,
            best_z: 0.0,
            kth_over_best: 0.0,
            scored_fraction: 0.0,
        };
        if item_rows <= k || k == 0 {
            return stats;
        }
        let mut scores = vec![0.0f64; item_rows];
        for &u in candidates.iter().step_by(step).take(queries) {
            let user: Vec<f64> = users[u * dim..(u + 1) * dim]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            for (i, s) in scores.iter_mut().enumerate() {
                *s = (starts[i]..starts[i + 1])
                    .map(|e| user[cols[e] as usize] * f64::from(vals[e]))
                    .sum();
            }
            let mean = scores.iter().sum::<f64>() / item_rows as f64;
            let var =
                scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / item_rows as f64;
            let mut sorted_scores = scores.clone();
            sorted_scores.sort_by(|a, b| b.total_cmp(a));
            let (best, kth) = (sorted_scores[0], sorted_scores[k - 1]);
            let median = sorted_scores[item_rows / 2];
            let sd = var.sqrt();
            let scored = (0..blocks)
                .filter(|&b| {
                    let bound: f64 = (0..dim)
                        .map(|c| {
                            let q = user[c];
                            if q >= 0.0 {
                                q * high[b * dim + c]
                            } else {
                                q * low[b * dim + c]
                            }
                        })
                        .sum();
                    bound >= kth
                })
                .count();
            stats.queries += 1;
            if sd > 0.0 {
                stats.kth_z += (kth - median) / sd;
                stats.best_z += (best - median) / sd;
            }
            if best != 0.0 {
                stats.kth_over_best += kth / best;
            }
            stats.scored_fraction += scored as f64 / blocks as f64;
        }
        if stats.queries > 0 {
            let n = stats.queries as f64;
            stats.kth_z /= n;
            stats.best_z /= n;
            stats.kth_over_best /= n;
            stats.scored_fraction /= n;
        }
        stats
    }
}

/// The knobs of [`structured_tables_with`]. The defaults are fitted to the Gowalla-trained
/// model (see the `GOWALLA_*` targets and `docs/BENCHMARKS.md`, *Structured tables*).
#[derive(Clone, Debug, PartialEq)]
pub struct StructuredOptions {
    /// Taste clusters, as a multiple of the dimension (`clusters = ceil(factor * dim)`).
    pub clusters_per_dim: f64,
    /// Zipf exponent of the items' cluster sizes (0: equal sizes).
    pub item_cluster_zipf: f64,
    /// Zipf exponent of the users' cluster sizes (the same ranks as the items': big item
    /// clusters have many users).
    pub user_cluster_zipf: f64,
    /// Spread (sd of the log) of the dimensions' weights, which decide how often a dimension
    /// is a cluster's strong dimension or carries noise: the uneven non-zeros per dimension.
    pub dim_spread: f64,
    /// Secondary dimensions of a cluster (besides its strongest one).
    pub secondary: usize,
    /// Probability that a row keeps each of its cluster's secondary dimensions.
    pub secondary_keep: f64,
    /// Range of a secondary dimension's weight relative to the strongest (uniform).
    pub secondary_weight: (f64, f64),
    /// Probability that a cluster value takes its dimension's preferred sign (0.5: no
    /// preference): trained dimensions lean to one sign.
    pub sign_bias: f64,
    /// Sd of the log-normal jitter of a row's cluster values.
    pub value_jitter: f64,
    /// Sd of the noise values, relative to the strongest cluster value.
    pub noise: f64,
    /// Non-zeros drawn before the magnitude pruning, relative to the budget (above 1: the
    /// pruning removes the smallest).
    pub overfill: f64,
    /// Tail exponent of item popularity (Pareto: `popularity = U^(-1/alpha)`, 1 the least
    /// popular).
    pub popularity_alpha: f64,
    /// Tail exponent of user activity (as `popularity_alpha`).
    pub activity_alpha: f64,
    /// Item norms: `norm = (p / (p + half))^exponent * exp(jitter * Z - drop * E)` for
    /// relative popularity `p` (`Z` standard normal, `E` standard exponential); this is
    /// `half`.
    pub norm_half: f64,
    /// The `exponent` of the item norm law.
    pub norm_exponent: f64,
    /// Sd of the log-normal jitter of the item norms.
    pub norm_jitter: f64,
    /// Mean of an exponential drop of the items' log norms (`norm *= exp(-drop * E)`,
    /// `E ~ Exp(1)`): the long lower tail of trained item norms (items the training left
    /// small), which popularity alone does not give.
    pub norm_drop: f64,
    /// User norms: `norm = activity^exponent * jitter`; this is `exponent` (negative: active
    /// users have smaller norms, as in the trained sparse model).
    pub user_norm_exponent: f64,
    /// Sd of the log-normal jitter of the user norms.
    pub user_norm_jitter: f64,
}

impl Default for StructuredOptions {
    fn default() -> Self {
        StructuredOptions {
            clusters_per_dim: 3.0,
            item_cluster_zipf: 0.5,
            user_cluster_zipf: 0.9,
            dim_spread: 0.6,
            secondary: 3,
            secondary_keep: 0.7,
            secondary_weight: (0.3, 0.7),
            sign_bias: 0.75,
            value_jitter: 0.25,
            noise: 0.33,
            overfill: 1.15,
            popularity_alpha: 1.7,
            activity_alpha: 1.2,
            norm_half: 3.3,
            norm_exponent: 0.31,
            norm_jitter: 0.03,
            norm_drop: 0.21,
            user_norm_exponent: -0.05,
            user_norm_jitter: 0.08,
        }
    }
}

/// Structured user and item tables with each row's popularity.
#[derive(Clone, Debug)]
pub struct StructuredTables {
    /// Embedding dimension.
    pub dim: usize,
    /// `users x dim`, row-major.
    pub users: Vec<f32>,
    /// `items x dim`, row-major.
    pub items: Vec<f32>,
    /// One per item: its relative popularity (1 for the least popular; interaction counts
    /// up to a factor), which its norm follows.
    pub item_popularity: Vec<f64>,
    /// One per user: relative activity (as `item_popularity`).
    pub user_activity: Vec<f64>,
}

/// One taste cluster: its strongest dimension's code (`2 * dim + negative`) and its
/// secondary dimensions with signed weights.
struct Cluster {
    primary: (usize, f32),
    secondary: Vec<(usize, f32)>,
}

/// `dim` weights, log-normal by their quantiles (deterministic spread), shuffled, summing
/// to `dim`.
fn dim_weights(rng: &mut ChaCha8Rng, dim: usize, spread: f64) -> Vec<f64> {
    // Probit by the Acklam-free logistic approximation: enough for a spread of weights.
    let mut w: Vec<f64> = (0..dim)
        .map(|j| {
            let p = (j as f64 + 0.5) / dim as f64;
            let z = (p / (1.0 - p)).ln() / 1.702;
            (spread * z).exp()
        })
        .collect();
    for i in (1..dim).rev() {
        let j = rng.random_range(0..=i);
        w.swap(i, j);
    }
    let sum: f64 = w.iter().sum();
    w.iter().map(|x| x * dim as f64 / sum).collect()
}

/// Per dimension the probability of a noise value, `min(1, s * weight / dim)` with `s` chosen
/// so that they sum to `per_row` (or every dimension when `per_row >= dim`).
fn noise_probabilities(weights: &[f64], per_row: f64) -> Vec<f32> {
    let dim = weights.len() as f64;
    let total = |s: f64| weights.iter().map(|w| (s * w / dim).min(1.0)).sum::<f64>();
    if per_row >= dim {
        return vec![1.0; weights.len()];
    }
    let (mut lo, mut hi) = (0.0, per_row.max(1.0));
    while total(hi) < per_row {
        hi *= 2.0;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if total(mid) < per_row {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    weights
        .iter()
        .map(|w| (hi * w / dim).min(1.0) as f32)
        .collect()
}

/// Makes sure `table` has at least `keep` non-zeros (so that the pruning leaves exactly
/// `keep`): zero cells get tiny values (a thousandth of the smallest magnitude), drawn
/// uniformly, until there are enough. A no-op unless the rows came out too sparse.
fn top_up(rng: &mut ChaCha8Rng, table: &mut [f32], keep: usize) {
    let mut nonzero = table.iter().filter(|v| **v != 0.0).count();
    let keep = keep.min(table.len());
    let tiny = table
        .iter()
        .map(|v| v.abs())
        .filter(|a| *a > 0.0)
        .fold(1.0f32, f32::min)
        * 1e-3;
    while nonzero < keep {
        let p = (keep - nonzero) as f64 / (table.len() - nonzero) as f64;
        for v in table.iter_mut() {
            if *v == 0.0 && nonzero < keep && rng.random_bool(p.min(1.0)) {
                *v = if rng.random_bool(0.5) { tiny } else { -tiny };
                nonzero += 1;
            }
        }
    }
}

/// A draw from `weights` (summing to `total`).
fn weighted(rng: &mut impl Rng, weights: &[f64], total: f64) -> usize {
    let mut u = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// Draws one row into `out` (zeroed first): the cluster's values jittered, noise on
/// dimensions drawn by weight, scaled to `norm`.
#[allow(clippy::too_many_arguments)]
fn draw_row(
    rng: &mut ChaCha8Rng,
    out: &mut [f32],
    cluster: &Cluster,
    noise_prob: &[f32],
    options: &StructuredOptions,
    norm: f64,
) {
    out.fill(0.0);
    let jitter = options.value_jitter as f32;
    let noise = options.noise as f32;
    for (j, &p) in noise_prob.iter().enumerate() {
        if rng.random::<f32>() < p {
            out[j] = noise * normal(rng);
        }
    }
    let (j, v) = cluster.primary;
    out[j] += v * (jitter * normal(rng)).exp();
    for &(j, v) in &cluster.secondary {
        if rng.random_bool(options.secondary_keep) {
            out[j] += v * (jitter * normal(rng)).exp();
        }
    }
    let sq: f64 = out.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    if sq > 0.0 {
        let scale = (norm / sq.sqrt()) as f32;
        for v in out.iter_mut() {
            *v *= scale;
        }
    }
}

/// [`structured_tables_with`] with the default (Gowalla-fitted) [`StructuredOptions`].
///
/// ```
/// let t = pocketrec_train::structured::structured_tables(7, 100, 1_000, 32, 0.1);
/// assert_eq!((t.users.len(), t.items.len()), (100 * 32, 1_000 * 32));
/// assert_eq!(t.items.iter().filter(|v| **v != 0.0).count(), 3_200);
/// ```
pub fn structured_tables(
    seed: u64,
    users: usize,
    items: usize,
    dim: usize,
    density: f64,
) -> StructuredTables {
    structured_tables_with(
        seed,
        users,
        items,
        dim,
        density,
        &StructuredOptions::default(),
    )
}

/// Draws user and item tables with the structure of a trained model, deterministic per
/// `seed`:
///
/// - taste clusters (`options.clusters_per_dim * dim` of them, Zipf sizes), each a strongest
///   dimension with its sign plus a few weaker secondary dimensions, the dimensions drawn by
///   uneven weights (some dimensions carry many non-zeros, some almost none);
/// - every user and item a cluster's values, jittered, plus sparse noise;
/// - item norms growing with a Pareto popularity and saturating (rare items small), user
///   norms nearly flat;
/// - each table then pruned by magnitude to exactly `density`
///   ([`pocketrec_export::prune::keep_largest`] with [`prune::budget`]).
///
/// Single-threaded; about a second per million rows at `dim = 64` in a release build.
pub fn structured_tables_with(
    seed: u64,
    users: usize,
    items: usize,
    dim: usize,
    density: f64,
    options: &StructuredOptions,
) -> StructuredTables {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if dim == 0 {
        return StructuredTables {
            dim,
            users: Vec::new(),
            items: Vec::new(),
            item_popularity: vec![1.0; items],
            user_activity: vec![1.0; users],
        };
    }
    let weights = dim_weights(&mut rng, dim, options.dim_spread);
    let preferred: Vec<f32> = (0..dim)
        .map(|_| if rng.random_bool(0.5) { 1.0 } else { -1.0 })
        .collect();
    let bias = options.sign_bias.clamp(0.0, 1.0);
    // Strongest dimensions: each round of `dim` clusters takes every dimension once, in a
    // weighted random order (Efraimidis-Spirakis keys), so that the big clusters (the first
    // ones, Zipf ranks) fall on distinct, mostly heavy dimensions.
    let count = ((options.clusters_per_dim * dim as f64).ceil() as usize).max(1);
    let mut primaries = Vec::with_capacity(count + dim);
    while primaries.len() < count {
        let mut keys: Vec<(f64, usize)> = weights
            .iter()
            .enumerate()
            .map(|(j, &w)| (rng.random_range(f64::EPSILON..1.0).powf(1.0 / w), j))
            .collect();
        keys.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        primaries.extend(keys.into_iter().map(|(_, j)| j));
    }
    let clusters: Vec<Cluster> = primaries[..count]
        .iter()
        .map(|&p| {
            let sign = |rng: &mut ChaCha8Rng, j: usize| {
                if rng.random_bool(bias) {
                    preferred[j]
                } else {
                    -preferred[j]
                }
            };
            let primary = (p, sign(&mut rng, p));
            let (lo, hi) = options.secondary_weight;
            let secondary = (0..options.secondary.min(dim - 1))
                .map(|_| {
                    let mut j = weighted(&mut rng, &weights, dim as f64);
                    while j == primary.0 {
                        j = (j + 1) % dim;
                    }
                    let w = rng.random_range(lo..=hi.max(lo)) as f32;
                    (j, w * sign(&mut rng, j))
                })
                .collect();
            Cluster { primary, secondary }
        })
        .collect();
    // Noise per row: enough non-zeros that, with the cluster's, a row has `overfill` times
    // its budget before pruning; dimension `j` carries noise with probability ∝ its weight.
    let structural = 1.0 + options.secondary as f64 * options.secondary_keep;
    let noise_rows = (options.overfill * density * dim as f64 - structural).max(0.0);
    let noise_prob = noise_probabilities(&weights, noise_rows);
    let item_cluster = Zipf::new(clusters.len(), options.item_cluster_zipf);
    let user_cluster = Zipf::new(clusters.len(), options.user_cluster_zipf);
    let pareto = |rng: &mut ChaCha8Rng, alpha: f64| {
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        u.powf(-1.0 / alpha)
    };
    let mut item_table = vec![0.0f32; items * dim];
    let mut item_popularity = Vec::with_capacity(items);
    for row in item_table.chunks_exact_mut(dim) {
        let p = pareto(&mut rng, options.popularity_alpha);
        let drop = -rng.random_range(f64::EPSILON..1.0).ln();
        let norm = (p / (p + options.norm_half)).powf(options.norm_exponent)
            * (options.norm_jitter * f64::from(normal(&mut rng)) - options.norm_drop * drop).exp();
        let c = &clusters[item_cluster.sample(&mut rng)];
        draw_row(&mut rng, row, c, &noise_prob, options, norm);
        item_popularity.push(p);
    }
    let mut user_table = vec![0.0f32; users * dim];
    let mut user_activity = Vec::with_capacity(users);
    for row in user_table.chunks_exact_mut(dim) {
        let a = pareto(&mut rng, options.activity_alpha);
        let norm = a.powf(options.user_norm_exponent)
            * (options.user_norm_jitter * f64::from(normal(&mut rng))).exp();
        let c = &clusters[user_cluster.sample(&mut rng)];
        draw_row(&mut rng, row, c, &noise_prob, options, norm);
        user_activity.push(a);
    }
    for table in [&mut user_table, &mut item_table] {
        let keep = prune::budget(table.len(), density);
        top_up(&mut rng, table, keep);
        prune::keep_largest(table, keep);
    }
    StructuredTables {
        dim,
        users: user_table,
        items: item_table,
        item_popularity,
        user_activity,
    }
}

// The targets: statistics of the Gowalla-trained model at density 0.1, `/tmp/gw/d0.1-h0.prec`
// (`pocketrec train` on the LightGCN Gowalla split, d = 64, 29,858 users, 40,981 items, 40
// epochs, NMF mask, dense teacher; item table 8.8 % dense, user table 11.6 %), measured by
// `cargo run --release -p pocketrec-train --example table_stats -- --log
// ../shared/data/gowalla/train.txt /tmp/gw/d0.1-h0.prec` (popularity: interactions per item
// in `train.txt`, activity: items per user). The tests check `structured_tables` at d = 64
// and density 0.1 against them.

/// Gowalla items: row norm quantiles p1, p10, p50, p90, p99, max over the median
/// (`norm p1 p10 p50 p90 p99 max /med`: 0.430 0.748 1 1.198 1.432 1.923).
pub const GOWALLA_ITEM_NORM_QUANTILES: [f64; 6] = [0.430, 0.748, 1.0, 1.198, 1.432, 1.923];
/// Gowalla items: non-zeros per row p1, p10, p50, p90, p99, max (`nnz/row`: 2 3 6 8 10 18,
/// at 8.8 % density).
pub const GOWALLA_ITEM_NNZ_QUANTILES: [f64; 6] = [2.0, 3.0, 6.0, 8.0, 10.0, 18.0];
/// Gowalla items: non-zeros per dimension over their mean, min / median / max
/// (`nnz/dim`: 0.067 0.840 3.538).
pub const GOWALLA_ITEM_DIM_SHARE: [f64; 3] = [0.067, 0.840, 3.538];
/// Gowalla items: non-zero magnitude quantiles p10, p90, p99, max over the median
/// (`|value|`: 0.332 2.313 3.439 5.187).
pub const GOWALLA_ITEM_VALUE_QUANTILES: [f64; 4] = [0.332, 2.313, 3.439, 5.187];
/// Gowalla items: share of positive non-zeros (0.496).
pub const GOWALLA_ITEM_POSITIVE_SHARE: f64 = 0.496;
/// Gowalla items: [`TableStats::dim_sign_skew`] (0.193).
pub const GOWALLA_ITEM_SIGN_SKEW: f64 = 0.193;
/// Gowalla items: [`TableStats::top_code_entropy`] (0.923).
pub const GOWALLA_ITEM_TOP_CODE_ENTROPY: f64 = 0.923;
/// Gowalla items: [`TableStats::top_code_peak`] (4.363).
pub const GOWALLA_ITEM_TOP_CODE_PEAK: f64 = 4.363;
/// Gowalla items: [`TableStats::top_energy`] (0.540).
pub const GOWALLA_ITEM_TOP_ENERGY: f64 = 0.540;
/// Gowalla items: [`TableStats::centroid_cosine`] (0.726).
pub const GOWALLA_ITEM_CENTROID_COSINE: f64 = 0.726;
/// Gowalla items: [`TableStats::block_envelope`] (2.604).
pub const GOWALLA_ITEM_BLOCK_ENVELOPE: f64 = 2.604;
/// Gowalla items: Spearman correlation of norm and popularity (0.474).
pub const GOWALLA_ITEM_NORM_POPULARITY: f64 = 0.474;
/// Gowalla users: row norm quantiles over the median (0.757 0.902 1 1.113 1.187 1.293).
pub const GOWALLA_USER_NORM_QUANTILES: [f64; 6] = [0.757, 0.902, 1.0, 1.113, 1.187, 1.293];
/// Gowalla users: [`TableStats::dim_sign_skew`] (0.310).
pub const GOWALLA_USER_SIGN_SKEW: f64 = 0.310;
/// Gowalla users: [`TableStats::top_code_entropy`] (0.863).
pub const GOWALLA_USER_TOP_CODE_ENTROPY: f64 = 0.863;
/// Gowalla users: [`TableStats::top_energy`] (0.484).
pub const GOWALLA_USER_TOP_ENERGY: f64 = 0.484;
/// Gowalla users: [`TableStats::centroid_cosine`] (0.765).
pub const GOWALLA_USER_CENTROID_COSINE: f64 = 0.765;
/// Gowalla users: Spearman correlation of norm and activity (-0.371: in the sparse model,
/// active users have slightly smaller norms; +0.561 in the dense one).
pub const GOWALLA_USER_NORM_ACTIVITY: f64 = -0.371;
/// Gowalla scores (200 users, k = 20): [`ScoreStats::kth_z`] (6.483).
pub const GOWALLA_KTH_Z: f64 = 6.483;
/// Gowalla scores: [`ScoreStats::best_z`] (7.724).
pub const GOWALLA_BEST_Z: f64 = 7.724;
/// Gowalla scores: [`ScoreStats::kth_over_best`] (0.841).
pub const GOWALLA_KTH_OVER_BEST: f64 = 0.841;
/// Gowalla scores: [`ScoreStats::scored_fraction`] over 40,981 items, blocks of 64 (0.086).
pub const GOWALLA_SCORED_FRACTION: f64 = 0.086;
/// Gowalla's shape, the size the tests draw at (the scored fraction depends on the number of
/// items): users and items.
pub const GOWALLA_SHAPE: (usize, usize) = (29_858, 40_981);

#[cfg(test)]
mod tests {
    use super::*;

    fn close(name: &str, got: f64, want: f64, tolerance: f64) -> Option<String> {
        ((got - want).abs() > tolerance)
            .then(|| format!("{name}: {got:.3}, Gowalla {want:.3} (tolerance ±{tolerance})"))
    }

    #[test]
    fn same_seed_same_tables_other_seed_other_tables() {
        let a = structured_tables(3, 200, 2_000, 32, 0.1);
        let b = structured_tables(3, 200, 2_000, 32, 0.1);
        let c = structured_tables(4, 200, 2_000, 32, 0.1);
        assert_eq!(a.users, b.users);
        assert_eq!(a.items, b.items);
        assert_eq!(a.item_popularity, b.item_popularity);
        assert_ne!(a.items, c.items);
        assert_ne!(a.users, c.users);
    }

    #[test]
    fn shape_and_density_are_exact() {
        for (users, items, dim, density) in [
            (100, 1_000, 64, 0.1),
            (7, 333, 16, 0.05),
            (50, 500, 8, 0.5),
            (20, 300, 32, 1.0),
            (10, 100, 64, 0.0),
            (10, 100, 4, 0.01),
        ] {
            let t = structured_tables(1, users, items, dim, density);
            assert_eq!(t.dim, dim);
            assert_eq!(t.users.len(), users * dim);
            assert_eq!(t.items.len(), items * dim);
            assert_eq!(t.item_popularity.len(), items);
            assert_eq!(t.user_activity.len(), users);
            for table in [&t.users, &t.items] {
                let nnz = table.iter().filter(|v| **v != 0.0).count();
                assert_eq!(nnz, prune::budget(table.len(), density), "{dim} {density}");
                assert!(table.iter().all(|v| v.is_finite()));
            }
        }
    }

    /// The statistics at Gowalla's shape, d = 64, density 0.1, against the `GOWALLA_*`
    /// targets. The tolerances cover seeds 1 to 3.
    #[test]
    fn statistics_match_the_gowalla_model() {
        let (users, items) = GOWALLA_SHAPE;
        let t = structured_tables(1, users, items, 64, 0.1);
        let it = TableStats::measure(&t.items, 64, Some(&t.item_popularity));
        let ut = TableStats::measure(&t.users, 64, Some(&t.user_activity));
        let sc = ScoreStats::measure(&t.users, &t.items, 64, 100, 20);
        let mut failures = Vec::new();
        let mut check = |name: &str, got: f64, want: f64, tolerance: f64| {
            failures.extend(close(name, got, want, tolerance));
        };
        let labels = ["p1", "p10", "p50", "p90", "p99", "max"];
        let item_tol = [0.06, 0.06, 0.0, 0.06, 0.06, 0.3];
        let user_tol = [0.06, 0.06, 0.0, 0.06, 0.06, 0.15];
        for i in 0..6 {
            let (want, tol) = (GOWALLA_ITEM_NORM_QUANTILES[i], item_tol[i]);
            check(
                &format!("item norm {}", labels[i]),
                it.norm_quantiles[i],
                want,
                tol,
            );
            let (want, tol) = (GOWALLA_USER_NORM_QUANTILES[i], user_tol[i]);
            check(
                &format!("user norm {}", labels[i]),
                ut.norm_quantiles[i],
                want,
                tol,
            );
        }
        for (i, tol) in [(1, 1.0), (2, 1.0), (3, 1.5), (4, 2.0)] {
            check(
                "item nnz/row",
                it.nnz_quantiles[i],
                GOWALLA_ITEM_NNZ_QUANTILES[i],
                tol,
            );
        }
        for (i, tol) in [0.2, 0.1, 1.0].into_iter().enumerate() {
            check(
                "item nnz/dim",
                it.dim_share[i],
                GOWALLA_ITEM_DIM_SHARE[i],
                tol,
            );
        }
        for (i, tol) in [0.06, 0.3, 0.5, 1.5].into_iter().enumerate() {
            check(
                "item |value|",
                it.value_quantiles[i],
                GOWALLA_ITEM_VALUE_QUANTILES[i],
                tol,
            );
        }
        check(
            "item positive share",
            it.positive_share,
            GOWALLA_ITEM_POSITIVE_SHARE,
            0.03,
        );
        check(
            "item sign skew",
            it.dim_sign_skew,
            GOWALLA_ITEM_SIGN_SKEW,
            0.08,
        );
        check(
            "user sign skew",
            ut.dim_sign_skew,
            GOWALLA_USER_SIGN_SKEW,
            0.08,
        );
        check(
            "item top code entropy",
            it.top_code_entropy,
            GOWALLA_ITEM_TOP_CODE_ENTROPY,
            0.07,
        );
        check(
            "user top code entropy",
            ut.top_code_entropy,
            GOWALLA_USER_TOP_CODE_ENTROPY,
            0.05,
        );
        check(
            "item top code peak",
            it.top_code_peak,
            GOWALLA_ITEM_TOP_CODE_PEAK,
            4.0,
        );
        check(
            "item top energy",
            it.top_energy,
            GOWALLA_ITEM_TOP_ENERGY,
            0.05,
        );
        check(
            "user top energy",
            ut.top_energy,
            GOWALLA_USER_TOP_ENERGY,
            0.07,
        );
        check(
            "item k-means cosine",
            it.centroid_cosine,
            GOWALLA_ITEM_CENTROID_COSINE,
            0.04,
        );
        check(
            "user k-means cosine",
            ut.centroid_cosine,
            GOWALLA_USER_CENTROID_COSINE,
            0.04,
        );
        check(
            "item block envelope",
            it.block_envelope,
            GOWALLA_ITEM_BLOCK_ENVELOPE,
            0.5,
        );
        let spearman = it.popularity_spearman.unwrap_or(0.0);
        check(
            "item norm ~ popularity",
            spearman,
            GOWALLA_ITEM_NORM_POPULARITY,
            0.07,
        );
        let spearman = ut.popularity_spearman.unwrap_or(0.0);
        check(
            "user norm ~ activity",
            spearman,
            GOWALLA_USER_NORM_ACTIVITY,
            0.08,
        );
        check("(s_k - median) / sd", sc.kth_z, GOWALLA_KTH_Z, 0.6);
        check("(s_1 - median) / sd", sc.best_z, GOWALLA_BEST_Z, 1.0);
        check("s_k / s_1", sc.kth_over_best, GOWALLA_KTH_OVER_BEST, 0.06);
        // Relative: within a factor 1.5 either way.
        let ratio = sc.scored_fraction / GOWALLA_SCORED_FRACTION;
        if !(1.0 / 1.5..=1.5).contains(&ratio) {
            failures.push(format!(
                "scored fraction: {:.3}, Gowalla {GOWALLA_SCORED_FRACTION} (tolerance x1.5)",
                sc.scored_fraction
            ));
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn normal_tables_are_far_from_the_targets() {
        // The point of the structured tables: the i.i.d. tables miss the clustering and the
        // block bounds by a wide margin.
        let items = crate::random::random_normal_table(1, 20_000, 64, 0.1);
        let users = crate::random::random_normal_table(2, 2_000, 64, 0.1);
        let it = TableStats::measure(&items, 64, None);
        let sc = ScoreStats::measure(&users, &items, 64, 50, 20);
        let shown = format!("{it:?}\n{sc:?}");
        assert!(
            it.centroid_cosine < GOWALLA_ITEM_CENTROID_COSINE - 0.1,
            "{shown}"
        );
        assert!(
            it.block_envelope > GOWALLA_ITEM_BLOCK_ENVELOPE + 1.0,
            "{shown}"
        );
        assert!(it.top_code_peak < 2.0, "{shown}");
        assert!(it.dim_share[2] < 1.5, "{shown}");
        assert!(
            sc.scored_fraction > 4.0 * GOWALLA_SCORED_FRACTION,
            "{shown}"
        );
    }

    #[test]
    fn spearman_of_monotone_and_reversed_series() {
        let a = [1.0, 2.0, 2.0, 5.0];
        assert!((spearman(&a, &[10.0, 20.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[4.0, 3.0, 3.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&a, &[1.0; 4]), 0.0);
    }
}
