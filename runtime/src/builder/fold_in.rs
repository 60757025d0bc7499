//! The fold-in section's bytes: the header and the item table's Gramian, computed from the
//! item rows exactly as a reader decodes them (quantized values included).

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::fold_in::FoldInParams;
use crate::format::{self, F32Le, FoldInHeader, Role, Scoring, U32Le};
use crate::model::Model;
use crate::score::MAX_STACK_DIM;

/// The item table's index in the metadata's tables and its dimension, which a fold-in section
/// needs to be at most 512 (`MAX_STACK_DIM`).
fn item_table(model: &Model<&[u8]>) -> Result<(u32, usize)> {
    let dim = model.items()?.dim();
    if dim > MAX_STACK_DIM {
        return Err(Error::InvalidInput {
            role: Some(Role::Item),
            row: None,
            column: None,
            reason: "a fold-in section needs a dimension of at most 512 (MAX_STACK_DIM)",
        });
    }
    Ok((model.item_table_index()?, dim))
}

/// Most item rows the catalogue summary's clusters are fitted on: a larger table is sampled
/// at evenly spaced rows (and the cluster sizes scaled up to the whole table).
const MAX_SUMMARY_SAMPLE: usize = 65_536;

/// Most Lloyd iterations of the clustering (it stops earlier when no row changes cluster).
const MAX_LLOYD_ITERATIONS: usize = 16;

/// The softmax fold-in section for the item table of the file `bytes` (written without one):
/// the header and, when `settings.clusters > 0`, the catalogue summary (`docs/FORMAT.md`,
/// *Softmax fold-in*): k-means (k-means++ seeding from a fixed seed, then Lloyd's iterations)
/// of the item vectors as a reader decodes them (unit length under cosine scoring), on at most
/// 65,536 evenly spaced rows; empty clusters are dropped. Deterministic: the same file gives
/// the same bytes.
pub(crate) fn softmax_section(bytes: &[u8], settings: crate::SoftmaxFoldIn) -> Result<Vec<u8>> {
    settings.check()?;
    let model = Model::from_bytes(bytes)?;
    let (table, dim) = item_table(&model)?;
    let summary = match settings.clusters {
        0 => None,
        clusters => Some(summarise(&model, dim, clusters as usize)?),
    };
    let clusters = summary.as_ref().map_or(0, |s| s.log_weights.len());
    let header = format::FoldInSoftmaxHeader {
        table: U32Le::new(table),
        dim: U32Le::new(dim as u32),
        temperature: F32Le::new(settings.temperature),
        power: F32Le::new(settings.power),
        step: F32Le::new(settings.step),
        iterations: U32Le::new(settings.iterations),
        clusters: U32Le::new(clusters as u32),
        reserved: U32Le::new(0),
    };
    let mut out =
        Vec::with_capacity(format::fold_in_softmax_section_len(dim, clusters).unwrap_or(0));
    out.extend_from_slice(bytemuck::bytes_of(&header));
    if let Some(summary) = summary {
        let values = summary
            .log_weights
            .iter()
            .chain(&summary.spreads)
            .chain(&summary.centroids)
            .chain(&summary.covariance);
        push_f32(
            &mut out,
            values.copied(),
            "the catalogue summary overflows f32 (item values too large)",
        )?;
    }
    Ok(out)
}

/// Appends `values` to `out` as little-endian f32, refusing (with `reason`) one that is not
/// finite as an f32.
fn push_f32(
    out: &mut Vec<u8>,
    values: impl IntoIterator<Item = f64>,
    reason: &'static str,
) -> Result<()> {
    for v in values {
        let v = v as f32;
        if !v.is_finite() {
            return Err(Error::InvalidInput {
                role: Some(Role::Item),
                row: None,
                column: None,
                reason,
            });
        }
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(())
}

/// A catalogue summary before it is written (f64, see [`softmax_section`]).
struct Summary {
    log_weights: Vec<f64>,
    spreads: Vec<f64>,
    centroids: Vec<f64>,
    covariance: Vec<f64>,
}

/// Clusters the item vectors (see [`softmax_section`]) and summarises each cluster: `log n`
/// (its share of the whole table), its mean squared distance to its centroid over that of all
/// clusters (the spread), the centroid; and the covariance around the centroids, pooled.
fn summarise(model: &Model<&[u8]>, dim: usize, clusters: usize) -> Result<Summary> {
    let items = model.items()?;
    let rows = items.rows();
    if clusters > rows {
        return Err(Error::InvalidInput {
            role: Some(Role::Item),
            row: None,
            column: None,
            reason: "softmax fold-in: more clusters than item rows",
        });
    }
    let cosine = model.scoring() == Scoring::Cosine;
    let sample = rows.min(MAX_SUMMARY_SAMPLE);
    let mut points = vec![0.0f32; sample * dim];
    for (k, point) in points.chunks_exact_mut(dim).enumerate() {
        // Evenly spaced rows: k·rows/sample < rows, in u128 so that it cannot overflow.
        let row = (k as u128 * rows as u128 / sample as u128) as usize;
        items.decode_row(row, point)?;
        if cosine {
            let norm = libm::sqrt(
                point
                    .iter()
                    .map(|v| f64::from(*v) * f64::from(*v))
                    .sum::<f64>(),
            );
            if norm > 0.0 {
                for v in point.iter_mut() {
                    *v = (f64::from(*v) / norm) as f32;
                }
            }
        }
    }
    let mut centroids = seed_centroids(&points, dim, clusters);
    let mut assignment = vec![usize::MAX; sample];
    // Ends with every point assigned to its nearest final centroid.
    for iteration in 0.. {
        let changed = assign(&points, &centroids, dim, &mut assignment);
        if !changed || iteration == MAX_LLOYD_ITERATIONS {
            break;
        }
        update_centroids(&points, &assignment, dim, &mut centroids);
    }
    // Per-cluster counts and squared distances; the pooled covariance of the residuals.
    let mut counts = vec![0usize; clusters];
    let mut squared = vec![0.0f64; clusters];
    let mut covariance = vec![0.0f64; format::packed_len(dim)];
    let mut residual = vec![0.0f64; dim];
    for (point, &k) in points.chunks_exact(dim).zip(&assignment) {
        let centroid = &centroids[k * dim..(k + 1) * dim];
        for ((r, &p), &c) in residual.iter_mut().zip(point).zip(centroid) {
            *r = f64::from(p) - f64::from(c);
        }
        counts[k] += 1;
        squared[k] += residual.iter().map(|r| r * r).sum::<f64>();
        let mut start = 0;
        for a in 0..dim {
            for b in 0..=a {
                covariance[start + b] += residual[a] * residual[b];
            }
            start += a + 1;
        }
    }
    for c in covariance.iter_mut() {
        *c /= sample as f64;
    }
    let pooled_spread: f64 = squared.iter().sum::<f64>() / sample as f64;
    let scale_up = rows as f64 / sample as f64;
    let mut summary = Summary {
        log_weights: Vec::with_capacity(clusters),
        spreads: Vec::with_capacity(clusters),
        centroids: Vec::with_capacity(clusters * dim),
        covariance,
    };
    for k in (0..clusters).filter(|&k| counts[k] > 0) {
        summary
            .log_weights
            .push(libm::log(counts[k] as f64 * scale_up));
        let spread = squared[k] / counts[k] as f64;
        summary.spreads.push(if pooled_spread > 0.0 {
            spread / pooled_spread
        } else {
            0.0
        });
        summary.centroids.extend(
            centroids[k * dim..(k + 1) * dim]
                .iter()
                .map(|&c| f64::from(c)),
        );
    }
    Ok(summary)
}

/// k-means++ seeding from a fixed seed: the first centroid a pseudo-random point, each next
/// one a point drawn with probability proportional to its squared distance to the nearest
/// centroid so far.
fn seed_centroids(points: &[f32], dim: usize, clusters: usize) -> Vec<f32> {
    let n = points.len() / dim;
    let mut random = SplitMix64(0x706f_636b_6574_7265); // "pocketre"
    let mut centroids = Vec::with_capacity(clusters * dim);
    let first = (random.next_f64() * n as f64) as usize % n;
    centroids.extend_from_slice(&points[first * dim..(first + 1) * dim]);
    let mut nearest = vec![f64::INFINITY; n];
    for k in 1..clusters {
        let last = &centroids[(k - 1) * dim..k * dim];
        let mut total = 0.0f64;
        for (d, point) in nearest.iter_mut().zip(points.chunks_exact(dim)) {
            let distance = squared_distance(point, last);
            if distance < *d {
                *d = distance;
            }
            total += *d;
        }
        let mut target = random.next_f64() * total;
        let mut chosen = n - 1;
        if total > 0.0 {
            for (i, &d) in nearest.iter().enumerate() {
                if target < d {
                    chosen = i;
                    break;
                }
                target -= d;
            }
        } else {
            // Every point is already a centroid: any will do (the cluster stays empty).
            chosen = k % n;
        }
        centroids.extend_from_slice(&points[chosen * dim..(chosen + 1) * dim]);
    }
    centroids
}

/// Assigns each point to its nearest centroid; returns whether any assignment changed.
fn assign(points: &[f32], centroids: &[f32], dim: usize, assignment: &mut [usize]) -> bool {
    let half_norms: Vec<f32> = centroids
        .chunks_exact(dim)
        .map(|c| 0.5 * c.iter().map(|v| v * v).sum::<f32>())
        .collect();
    let mut changed = false;
    for (point, slot) in points.chunks_exact(dim).zip(assignment.iter_mut()) {
        // argmin |p − c|² = argmax p·c − |c|²/2; ties go to the lower cluster.
        let mut best = (f32::NEG_INFINITY, 0usize);
        for (k, (centroid, &half)) in centroids.chunks_exact(dim).zip(&half_norms).enumerate() {
            let dot: f32 = point.iter().zip(centroid).map(|(a, b)| a * b).sum();
            let value = dot - half;
            if value > best.0 {
                best = (value, k);
            }
        }
        if *slot != best.1 {
            *slot = best.1;
            changed = true;
        }
    }
    changed
}

/// Each centroid becomes the mean of its points (summed in f64 in point order); a cluster
/// without points keeps its centroid.
fn update_centroids(points: &[f32], assignment: &[usize], dim: usize, centroids: &mut [f32]) {
    let clusters = centroids.len() / dim;
    let mut sums = vec![0.0f64; clusters * dim];
    let mut counts = vec![0usize; clusters];
    for (point, &k) in points.chunks_exact(dim).zip(assignment) {
        counts[k] += 1;
        for (s, &p) in sums[k * dim..(k + 1) * dim].iter_mut().zip(point) {
            *s += f64::from(p);
        }
    }
    for (k, &count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        for (c, &s) in centroids[k * dim..(k + 1) * dim]
            .iter_mut()
            .zip(&sums[k * dim..(k + 1) * dim])
        {
            *c = (s / count as f64) as f32;
        }
    }
}

fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum()
}

/// SplitMix64 (Steele, Lea and Flood 2014): the seeding's fixed pseudo-random stream.
struct SplitMix64(u64);

impl SplitMix64 {
    /// A uniform number in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The section for the item table of the file `bytes` (written without one): `G = Σ v vᵀ`
/// over the decoded item rows, summed in f64 in row order (deterministic, and the same bits a
/// device gets when it recomputes the section: [`crate::fold_in::gramian_entries`]), stored as
/// f32.
pub(crate) fn section(bytes: &[u8], params: FoldInParams) -> Result<Vec<u8>> {
    params.check()?;
    let model = Model::from_bytes(bytes)?;
    let items = model.items()?;
    let (table, dim) = item_table(&model)?;
    let mut gram = vec![0.0f64; format::packed_len(dim)];
    let mut row = vec![0.0f32; dim];
    crate::fold_in::gramian_entries(&items, 0, &mut gram, &mut row)?;
    let header = FoldInHeader {
        table: U32Le::new(table),
        dim: U32Le::new(dim as u32),
        unobserved_weight: F32Le::new(params.unobserved_weight),
        regularization: F32Le::new(params.regularization),
    };
    let mut out = Vec::with_capacity(format::fold_in_section_len(dim).unwrap_or(0));
    out.extend_from_slice(bytemuck::bytes_of(&header));
    push_f32(
        &mut out,
        gram,
        "the item table's Gramian overflows f32 (values too large)",
    )?;
    Ok(out)
}
