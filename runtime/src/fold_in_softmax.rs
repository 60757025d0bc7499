//! Softmax fold-in: a user's vector solved on the device by the objective a model trained with
//! a sampled-softmax loss on unit vectors (SSM, BSL) was trained by, the item table fixed.
//!
//! The squared-error fold-in of [`crate::fold_in`] suits dot-product models trained by BPR or
//! least squares. A softmax-trained model ranks by the angle between unit vectors and was fitted
//! to push an interaction's item above *all* others; its users are best recovered by the same
//! objective. For interactions `(item iᵢ, weight wᵢ)` with item vectors `ṽ` (rows as stored for
//! dot scoring, divided by their norm for cosine scoring), `W = Σ wᵢ`, the temperature `τ`, the
//! power `P` (BSL's; 1 for a plain softmax) and an optional prior `(x₀, ρ)`, the folded unit
//! vector `x` maximises
//!
//! ```text
//! F(x) = Σᵢ wᵢ x·ṽᵢ  −  P·W·τ·log Σ_items exp(x·ṽ / τ)  +  ρ x·x₀      subject to |x| = 1
//! ```
//!
//! by projected gradient ascent from the normalised `Σ wᵢ ṽᵢ + ρ x₀`: each iteration computes the
//! softmax's mean `E[ṽ]` and steps `x ← normalise(x + η·g⊥)`,
//! `g = (Σ wᵢ ṽᵢ + ρ x₀ − P·W·E[ṽ]) / (W + ρ)`, `g⊥` its part orthogonal to `x`.
//!
//! Where the mean comes from:
//! - **A catalogue summary** (the writers' default from 1,024 items): `C` clusters of the item
//!   vectors, each taken as a Gaussian around its centroid `cₖ` with covariance `sₖ·Σ` (`nₖ`
//!   items; `Σ` pooled over the clusters), which gives the log-partition in closed form:
//!   logits `x·cₖ/τ + log nₖ + sₖ·x·Σx/(2τ²)` and `E[ṽ] = Σ pₖ cₖ + (Σ pₖ sₖ)·Σx/τ`. An
//!   iteration costs `C·2d + d²` multiply-adds (20,480 at 128 clusters, d = 64) whatever the
//!   catalogue's size. On the Gowalla validation split it keeps the whole-catalogue ascent's
//!   quality (`docs/QUALITY.md`).
//! - **The whole item table** (`clusters = 0`): one streaming pass over every row with a
//!   running maximum (no score buffer), in every layout. Exact, and `rows / C` times the work.
//!
//! The settings `τ`, `P`, `η`, the iteration count and the summary are stored in the file's
//! softmax fold-in section ([`SectionKind::FoldInSoftmax`]). Nothing is allocated: a few
//! vectors of the model's dimension on the stack, and for a column layout one block of scores
//! (the column scan's accumulator).

use crate::columns::ColumnView;
use crate::error::{Error, Result};
use crate::fold_in::{FoldInSummary, Prior, Solver, check_arguments};
use crate::format::{
    FOLD_IN_SOFTMAX_HEADER_SIZE, FoldInSoftmaxHeader, ListRows, MAX_FOLD_IN_SOFTMAX_CLUSTERS,
    MAX_FOLD_IN_SOFTMAX_ITERATIONS, Role, Scoring, SectionKind, fold_in_softmax_section_len,
};
use crate::kernels::scalar::{f16_to_f32, reduce8};
use crate::le;
use crate::model::Model;
use crate::row::sqrt;
use crate::scan::{MAX_STACK_BLOCK_ROWS, add_bitmap_lists, add_u16_lists, block_similarities};
use crate::score::{MAX_STACK_DIM, Query};
use crate::table::Table;

/// The softmax fold-in's settings, stored in the file's softmax fold-in section.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftmaxFoldIn {
    /// `τ > 0`: the softmax temperature (the training loss's).
    pub temperature: f32,
    /// `P > 0`: the weight of the log-partition term (BSL's power; 1 for a plain softmax).
    pub power: f32,
    /// `η > 0`: the step of each ascent iteration.
    pub step: f32,
    /// Ascent iterations, 1 to 64.
    pub iterations: u32,
    /// `C`: clusters of the catalogue summary the file stores, 1 to 4,096, or 0 for none.
    /// With a summary each iteration reads `C` centroids in place of the whole item table
    /// (the log-partition approximated by a mixture of Gaussians, see the module docs); without
    /// one it reads every item row (exact, and `rows / C` times the work).
    pub clusters: u32,
}

/// Clusters of the catalogue summary writers use by default ([`SoftmaxFoldIn::for_loss`]):
/// 128 (at d = 64 a 42,144-byte section, and about 20,000 multiply-adds per ascent iteration).
pub const DEFAULT_FOLD_IN_CLUSTERS: u32 = 128;

impl SoftmaxFoldIn {
    /// The settings writers use for a model trained with temperature `τ` and power `P`, whose
    /// item table has `items` rows: temperature `1.4·τ`, power `P`, step 1, 4 iterations, and a
    /// summary of [`DEFAULT_FOLD_IN_CLUSTERS`] clusters when the catalogue has at least eight
    /// times as many items (none for a smaller one, where reading every row costs about as
    /// much). Chosen on a Gowalla validation split carved from the training interactions, for
    /// BSL models at `τ = 0.1`, `P = 1.2`, dense and at density 0.1 (`docs/QUALITY.md`).
    pub fn for_loss(temperature: f32, power: f32, items: usize) -> Self {
        SoftmaxFoldIn {
            temperature: 1.4 * temperature,
            power,
            step: 1.0,
            iterations: 4,
            clusters: Self::default_clusters(items),
        }
    }

    /// The file properties that record these settings (`fold_in.objective` `softmax`,
    /// `fold_in.temperature`, `.power`, `.step`, `.iterations`, `.clusters`), which writers add
    /// beside the section.
    #[cfg(feature = "alloc")]
    pub fn properties(&self) -> [(&'static str, alloc::string::String); 6] {
        use alloc::string::ToString;
        [
            ("fold_in.objective", "softmax".to_string()),
            ("fold_in.temperature", self.temperature.to_string()),
            ("fold_in.power", self.power.to_string()),
            ("fold_in.step", self.step.to_string()),
            ("fold_in.iterations", self.iterations.to_string()),
            ("fold_in.clusters", self.clusters.to_string()),
        ]
    }

    /// The summary's clusters writers use for a catalogue of `items` rows:
    /// [`DEFAULT_FOLD_IN_CLUSTERS`] from eight times as many items, 0 (no summary: every row
    /// read) below.
    pub fn default_clusters(items: usize) -> u32 {
        if items >= 8 * DEFAULT_FOLD_IN_CLUSTERS as usize {
            DEFAULT_FOLD_IN_CLUSTERS
        } else {
            0
        }
    }

    /// `Ok` when `τ`, `P` and `η` are finite and above 0, the iterations 1 to 64 and the
    /// clusters at most 4,096.
    pub fn check(&self) -> Result<()> {
        let positive = |x: f32| x.is_finite() && x > 0.0;
        let invalid = |reason| Error::InvalidInput {
            role: Some(Role::Item),
            row: None,
            column: None,
            reason,
        };
        if !(positive(self.temperature) && positive(self.power) && positive(self.step)) {
            return Err(invalid(
                "softmax fold-in temperature, power and step must be finite and above 0",
            ));
        }
        if !(1..=MAX_FOLD_IN_SOFTMAX_ITERATIONS).contains(&self.iterations) {
            return Err(invalid("softmax fold-in iterations must be 1 to 64"));
        }
        if self.clusters > MAX_FOLD_IN_SOFTMAX_CLUSTERS {
            return Err(invalid("softmax fold-in clusters must be at most 4,096"));
        }
        Ok(())
    }

    /// Parses and checks a section's bytes against the item table (index and dimension): the
    /// settings, and the catalogue summary when it has one.
    fn parse(
        bytes: &[u8],
        item_table: u32,
        dim: usize,
    ) -> Result<(Self, Option<CatalogueSummary<'_>>)> {
        let corrupt = |reason| Error::CorruptTable {
            role: Role::Item,
            reason,
        };
        let (head, rest) = bytes
            .split_at_checked(FOLD_IN_SOFTMAX_HEADER_SIZE)
            .ok_or(corrupt("softmax fold-in section shorter than its header"))?;
        let header: &FoldInSoftmaxHeader = bytemuck::try_from_bytes(head)
            .map_err(|_| corrupt("softmax fold-in header is not 32 bytes"))?;
        if header.table.get() != item_table {
            return Err(corrupt("softmax fold-in section names another table"));
        }
        if header.dim.get() as usize != dim {
            return Err(corrupt(
                "softmax fold-in section's dimension differs from the item table's",
            ));
        }
        if header.reserved.get() != 0 {
            return Err(corrupt("softmax fold-in section's reserved field is not 0"));
        }
        let settings = SoftmaxFoldIn {
            temperature: header.temperature.get(),
            power: header.power.get(),
            step: header.step.get(),
            iterations: header.iterations.get(),
            clusters: header.clusters.get(),
        };
        settings
            .check()
            .map_err(|_| corrupt("softmax fold-in settings out of range"))?;
        let clusters = settings.clusters as usize;
        if fold_in_softmax_section_len(dim, clusters) != Some(bytes.len()) {
            return Err(corrupt(
                "softmax fold-in section's length does not match its clusters and dimension",
            ));
        }
        if clusters == 0 {
            return Ok((settings, None));
        }
        // The length matched, so these splits are in bounds.
        let (log_weights, rest) = rest.split_at(4 * clusters);
        let (spreads, rest) = rest.split_at(4 * clusters);
        let (centroids, covariance) = rest.split_at(4 * clusters * dim);
        let summary = CatalogueSummary {
            dim,
            log_weights,
            spreads,
            centroids,
            covariance,
        };
        Ok((settings, Some(summary)))
    }
}

/// A file's catalogue summary (module docs), read in place: `C` clusters of the item vectors
/// `ṽ`, each with `log nₖ` (its item count), its spread `sₖ` and its centroid `cₖ`, and the
/// packed covariance `Σ` of the items around their centroids, pooled over the clusters (all
/// little-endian f32).
#[derive(Clone, Copy)]
pub(crate) struct CatalogueSummary<'a> {
    dim: usize,
    log_weights: &'a [u8],
    spreads: &'a [u8],
    centroids: &'a [u8],
    covariance: &'a [u8],
}

impl CatalogueSummary<'_> {
    /// `Ok` when every value is finite, the spreads at least 0 and the covariance's diagonal at
    /// least 0 (`verify`; a fold-in reports what a bad value leads to instead).
    pub(crate) fn verify(&self) -> Result<()> {
        let corrupt = |reason| Error::CorruptTable {
            role: Role::Item,
            reason,
        };
        let all_finite = |bytes: &[u8]| f32_values(bytes).all(f32::is_finite);
        if !(all_finite(self.log_weights) && all_finite(self.centroids)) {
            return Err(corrupt(
                "softmax fold-in summary: a log-weight or centroid is not finite",
            ));
        }
        if !f32_values(self.spreads).all(|s| s.is_finite() && s >= 0.0) {
            return Err(corrupt(
                "softmax fold-in summary: a spread is negative or not finite",
            ));
        }
        let diagonal_ok = (0..self.dim)
            .all(|a| le::f32_at(self.covariance, a * (a + 1) / 2 + a).is_some_and(|d| d >= 0.0));
        if !(all_finite(self.covariance) && diagonal_ok) {
            return Err(corrupt(
                "softmax fold-in summary: the covariance is not finite or has a negative diagonal",
            ));
        }
        Ok(())
    }
}

/// The little-endian f32 values of `bytes` (a multiple of 4 long).
fn f32_values(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

impl<S: AsRef<[u8]>> Model<S> {
    /// The model's softmax fold-in settings, checked against the item table; `Ok(None)` when
    /// the file has no softmax fold-in section. A file with both fold-in sections, or two of
    /// this one, is refused.
    pub fn fold_in_softmax(&self) -> Result<Option<SoftmaxFoldIn>> {
        Ok(self.softmax_section()?.map(|(settings, _)| settings))
    }

    /// The softmax fold-in section's settings and catalogue summary (see
    /// [`Model::fold_in_softmax`]).
    pub(crate) fn softmax_section(
        &self,
    ) -> Result<Option<(SoftmaxFoldIn, Option<CatalogueSummary<'_>>)>> {
        let Some(bytes) =
            self.only_section(SectionKind::FoldInSoftmax, "second softmax fold-in section")?
        else {
            return Ok(None);
        };
        if let Some(squared) = self.sections().find(|s| s.kind == SectionKind::FoldIn) {
            return Err(Error::InvalidSection {
                index: squared.index,
                reason: "a softmax fold-in section beside a fold-in section: which objective?",
            });
        }
        SoftmaxFoldIn::parse(bytes, self.item_table_index()?, self.items()?.dim()).map(Some)
    }

    /// The softmax fold-in of [`Model::fold_in`] (module docs), by the file's softmax fold-in
    /// section (its settings and summary, [`Model::softmax_section`]). Never inlined: its vectors (and a
    /// column layout's block of scores) are on the stack only while it runs, not in the frame
    /// of the squared-error fold-in that shares [`Model::fold_in`].
    #[inline(never)]
    pub(crate) fn fold_in_by_softmax(
        &self,
        (settings, summary): (SoftmaxFoldIn, Option<CatalogueSummary<'_>>),
        items: &[u64],
        weights: &[f32],
        prior: Option<Prior<'_>>,
        out: &mut [f32],
    ) -> Result<FoldInSummary> {
        let table = self.items()?;
        let dim = table.dim();
        if out.len() != dim {
            return Err(Error::DimensionMismatch {
                expected: dim as u64,
                actual: out.len() as u64,
            });
        }
        if dim > MAX_STACK_DIM {
            return Err(Error::DimensionTooLarge {
                dim: dim as u64,
                max: MAX_STACK_DIM as u64,
            });
        }
        let used = check_arguments(dim, &table, items, weights, prior)?;
        let cosine = self.scoring() == Scoring::Cosine;
        let mut target = [0.0f32; MAX_STACK_DIM];
        let mut row = [0.0f32; MAX_STACK_DIM];
        let mut mean = [0.0f32; MAX_STACK_DIM];
        let (target, row, mean) = (&mut target[..dim], &mut row[..dim], &mut mean[..dim]);
        // Σ wᵢ ṽᵢ + ρ x₀, and W.
        let mut total_weight = 0.0f32;
        for (i, &id) in items.iter().enumerate() {
            let index = match table.find(id) {
                Ok(index) => index,
                Err(Error::IdNotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let w = weights.get(i).copied().unwrap_or(1.0);
            table.decode_row(index, row)?;
            if cosine {
                normalise(row);
            }
            for (t, &v) in target.iter_mut().zip(row.iter()) {
                *t += w * v;
            }
            total_weight += w;
        }
        let rho = prior.map_or(0.0, |p| p.precision);
        if let Some(p) = prior {
            for (t, &x) in target.iter_mut().zip(p.vector) {
                *t += rho * x;
            }
        }
        let x = out;
        x.copy_from_slice(target);
        if normalise(x) == 0.0 || !(total_weight + rho).is_finite() {
            return Err(Error::InvalidQuery {
                index: None,
                reason: "the interactions' item rows and the prior sum to zero (or overflow): \
                         no direction to fold in from",
            });
        }
        let columns = table
            .columns()
            .filter(|c| c.block_rows <= MAX_STACK_BLOCK_ROWS);
        let partition = settings.power * total_weight;
        let scale = 1.0 / (total_weight + rho);
        for _ in 0..settings.iterations {
            match (summary, columns) {
                (Some(summary), _) => summary_mean(&summary, x, settings.temperature, row, mean)?,
                (None, Some(columns)) if !table.has_rows() => {
                    softmax_mean_columns(&columns, x, settings.temperature, cosine, mean)?
                }
                _ => softmax_mean_rows(&table, x, settings.temperature, cosine, row, mean)?,
            }
            // g = (target − P·W·E[ṽ]) / (W + ρ), then its part orthogonal to x.
            let mut along = 0.0f32;
            for ((m, &t), &xi) in mean.iter_mut().zip(target.iter()).zip(x.iter()) {
                *m = (t - partition * *m) * scale;
                along += *m * xi;
            }
            for (xi, &g) in x.iter_mut().zip(mean.iter()) {
                *xi += settings.step * (g - along * *xi);
            }
            if normalise(x) == 0.0 || x.iter().any(|v| !v.is_finite()) {
                return Err(Error::CorruptTable {
                    role: Role::Item,
                    reason: "softmax fold-in diverged (item values too large)",
                });
            }
        }
        Ok(FoldInSummary {
            used,
            unknown: items.len() - used,
            solver: Solver::Softmax,
            iterations: settings.iterations,
        })
    }
}

/// The softmax mean `m` from the catalogue summary (module docs), with `covariance_x` as
/// scratch: `Σx`, then `q = x·Σx`; for each cluster `k` the logit
/// `lₖ = x·cₖ/τ + log nₖ + sₖ·q/(2τ²)` in one streaming softmax with a running maximum; then
/// `m = Σ pₖ cₖ + (Σ pₖ sₖ)·Σx/τ`. About `C·2d + d²` multiply-adds; no heap.
fn summary_mean(
    summary: &CatalogueSummary<'_>,
    x: &[f32],
    temperature: f32,
    covariance_x: &mut [f32],
    mean: &mut [f32],
) -> Result<()> {
    let dim = summary.dim;
    // Σx from the packed lower triangle: row a holds Σ[a][0..=a].
    covariance_x.fill(0.0);
    let mut start = 0;
    for a in 0..dim {
        let row = &summary.covariance[4 * start..4 * (start + a + 1)];
        let (below, diagonal) = row.split_at(4 * a);
        let dot = dot_le(below, &x[..a]);
        let xa = x[a];
        for (v, yb) in f32_values(below).zip(covariance_x[..a].iter_mut()) {
            *yb += v * xa;
        }
        // A length the parse did not check would make this NaN, and the logits say so.
        covariance_x[a] += dot + le::f32_at(diagonal, 0).unwrap_or(f32::NAN) * xa;
        start += a + 1;
    }
    let inverse_temperature = 1.0 / temperature;
    let quadratic: f32 = x.iter().zip(covariance_x.iter()).map(|(a, b)| a * b).sum();
    let spread_term = 0.5 * quadratic * inverse_temperature * inverse_temperature;
    mean.fill(0.0);
    let (mut max, mut sum, mut spread_sum) = (f32::NEG_INFINITY, 0.0f32, 0.0f32);
    let clusters = summary
        .centroids
        .chunks_exact(4 * dim)
        .zip(f32_values(summary.spreads))
        .zip(f32_values(summary.log_weights));
    for ((centroid, spread), log_weight) in clusters {
        let dot = dot_le(centroid, x);
        let logit = dot * inverse_temperature + log_weight + spread * spread_term;
        if !logit.is_finite() {
            return Err(Error::CorruptTable {
                role: Role::Item,
                reason: "softmax fold-in summary: a cluster's logit is not finite",
            });
        }
        if logit > max {
            if max.is_finite() {
                let factor = exp_nonpositive(max - logit);
                sum *= factor;
                spread_sum *= factor;
                for m in mean.iter_mut() {
                    *m *= factor;
                }
            }
            max = logit;
        }
        let e = exp_nonpositive(logit - max);
        sum += e;
        spread_sum += e * spread;
        for (m, c) in mean.iter_mut().zip(f32_values(centroid)) {
            *m += e * c;
        }
    }
    if !(sum > 0.0 && sum.is_finite() && spread_sum.is_finite()) {
        return Err(Error::CorruptTable {
            role: Role::Item,
            reason: "softmax fold-in summary: the cluster weights are not finite",
        });
    }
    let inverse = 1.0 / sum;
    let along = spread_sum * inverse * inverse_temperature;
    for (m, &y) in mean.iter_mut().zip(covariance_x.iter()) {
        *m = *m * inverse + along * y;
    }
    Ok(())
}

/// `Σ vᵢ·xᵢ` with `v` the little-endian f32 values of `bytes` (`4·x.len()` of them), summed in
/// eight interleaved partial sums: independent lanes that the compiler maps to the CPU's vector
/// registers (SSE/AVX, NEON) or keeps in flight on a scalar core, where one running sum would
/// wait for each addition in turn.
#[inline(always)]
fn dot_le(bytes: &[u8], x: &[f32]) -> f32 {
    let mut partial = [0.0f32; 8];
    let blocks = bytes.chunks_exact(32).zip(x.chunks_exact(8));
    for (block, xs) in blocks {
        for ((p, chunk), &xi) in partial.iter_mut().zip(block.chunks_exact(4)).zip(xs) {
            *p += xi * f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
    }
    let done = x.len() / 8 * 8;
    let mut tail = 0.0f32;
    let rest = bytes.get(4 * done..).unwrap_or(&[]);
    for (chunk, &xi) in rest.chunks_exact(4).zip(&x[done..]) {
        tail += xi * f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    reduce8(partial) + tail
}

/// `eˣ` for `x ≤ 0` (finite), to about 2 ulp, without branches: `x` is clamped at −87 (so
/// `eˣ ≥ 1.6·10⁻³⁸`, a normal f32: a weight that small adds nothing a sum of weights at least 1
/// can hold), split as `k·ln 2 + r` with `|r| ≤ ln 2 / 2`, and `eʳ` taken from its degree-6
/// Taylor polynomial (error below `r⁷/7! ≈ 1.2·10⁻⁷`), times `2ᵏ` built in the exponent bits.
/// Faster than `libm::expf`, which handles every input; the softmax needs only these.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 0.0);
    // k = round(x / ln 2) ≤ 0, computed on the positive side where `as` truncates = floors.
    let k = -(((-x) * LOG2_E + 0.5) as i32);
    let kf = k as f32;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // k ≥ −126 since x ≥ −87, so 2ᵏ is a normal number.
    p * f32::from_bits(((k + 127) as u32) << 23)
}

/// Scales `v` to unit length in place (an all-zero `v` stays zero); returns its former norm.
fn normalise(v: &mut [f32]) -> f32 {
    let norm = sqrt(v.iter().map(|x| x * x).sum::<f32>());
    if norm > 0.0 && norm.is_finite() {
        let inverse = 1.0 / norm;
        for x in v.iter_mut() {
            *x *= inverse;
        }
    }
    norm
}

/// A streaming softmax mean: `Σ exp(sⱼ/τ) ṽⱼ / Σ exp(sⱼ/τ)`, kept relative to the largest
/// score seen so far so that no exponential overflows.
struct StreamingMean<'m> {
    inverse_temperature: f32,
    max: f32,
    sum: f32,
    mean: &'m mut [f32],
}

impl<'m> StreamingMean<'m> {
    fn new(temperature: f32, mean: &'m mut [f32]) -> Self {
        mean.fill(0.0);
        StreamingMean {
            inverse_temperature: 1.0 / temperature,
            max: f32::NEG_INFINITY,
            sum: 0.0,
            mean,
        }
    }

    /// Raises the reference to `max` (when above the current one), rescaling the sums.
    fn raise(&mut self, max: f32) {
        if max > self.max {
            if self.max.is_finite() {
                let factor = exp_nonpositive((self.max - max) * self.inverse_temperature);
                self.sum *= factor;
                for m in self.mean.iter_mut() {
                    *m *= factor;
                }
            }
            self.max = max;
        }
    }

    /// `exp((score − max)/τ)`, added to the sum (the caller adds the vector).
    #[inline]
    fn weight(&mut self, score: f32) -> f32 {
        let e = exp_nonpositive((score - self.max) * self.inverse_temperature);
        self.sum += e;
        e
    }

    /// [`StreamingMean::weight`] of row `index`'s score after raising the reference to it;
    /// a non-finite score is an error.
    #[inline]
    fn offer(&mut self, score: f32, index: usize) -> Result<f32> {
        if !score.is_finite() {
            return Err(Error::NonFiniteScore {
                item_row: index as u64,
            });
        }
        self.raise(score);
        Ok(self.weight(score))
    }

    /// [`StreamingMean::weight`] of each score of a block, in place.
    fn weigh_block(&mut self, scores: &mut [f32]) {
        let (max, inverse) = (self.max, self.inverse_temperature);
        let mut sum = 0.0f32;
        for s in scores.iter_mut() {
            *s = exp_nonpositive((*s - max) * inverse);
            sum += *s;
        }
        self.sum += sum;
    }

    fn finish(self) -> Result<()> {
        if !(self.sum > 0.0 && self.sum.is_finite()) {
            return Err(Error::CorruptTable {
                role: Role::Item,
                reason: "softmax fold-in: the item scores are not finite",
            });
        }
        let inverse = 1.0 / self.sum;
        for m in self.mean.iter_mut() {
            *m *= inverse;
        }
        Ok(())
    }
}

/// A row's score from its dot product with `x` (`|x| = 1`) and its norm, and what its values
/// are multiplied by in the mean: `(dot, 1)` for dot scoring, `(dot/|v|, 1/|v|)` for cosine
/// (`(0, 0)` for an all-zero row).
#[inline(always)]
fn similarity(dot: f32, norm: f32, cosine: bool) -> (f32, f32) {
    match cosine {
        false => (dot, 1.0),
        true if norm > 0.0 => (dot / norm, 1.0 / norm),
        true => (0.0, 0.0),
    }
}

/// The softmax mean over a table with row records: each row's non-zeros read twice (its score
/// and norm, then its share of the mean); sliced rows, which have no record of their own, are
/// decoded one at a time.
fn softmax_mean_rows(
    table: &Table<'_>,
    x: &[f32],
    temperature: f32,
    cosine: bool,
    row: &mut [f32],
    mean: &mut [f32],
) -> Result<()> {
    let mut stream = StreamingMean::new(temperature, mean);
    let sliced = table.sliced().is_some();
    for index in 0..table.rows() {
        if sliced {
            table.decode_row(index, row)?;
            if cosine {
                normalise(row);
            }
            let score: f32 = x.iter().zip(row.iter()).map(|(a, b)| a * b).sum();
            let e = stream.offer(score, index)?;
            for (m, &v) in stream.mean.iter_mut().zip(row.iter()) {
                *m += e * v;
            }
        } else {
            let record = table.row(index)?;
            if let Some(values) = record.dense_f32_values() {
                // A dense f32 row (a dense model's): the same sums in the same order as the
                // general path below, over contiguous values.
                let (mut dot, mut square) = (0.0f32, 0.0f32);
                for (chunk, &xi) in values.chunks_exact(4).zip(x) {
                    let v = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                    dot += xi * v;
                    square += v * v;
                }
                let norm = sqrt(square);
                let (score, factor) = similarity(dot, norm, cosine);
                let e = stream.offer(score, index)? * factor;
                for (m, chunk) in stream.mean.iter_mut().zip(values.chunks_exact(4)) {
                    *m += e * f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                }
                continue;
            }
            let (dot, norm) = record.dot_and_norm(x);
            let (score, factor) = similarity(dot, norm, cosine);
            let e = stream.offer(score, index)? * factor;
            let mean = &mut *stream.mean;
            record.for_each_nonzero(|c, v| {
                if let Some(m) = mean.get_mut(c) {
                    *m += e * v;
                }
            });
        }
    }
    stream.finish()
}

/// The softmax mean over a table stored only as a column layout: for each block of rows, the
/// scores from the column scan's own kernels (every non-zero dimension of `x`), then for each
/// dimension the weighted sum of its posting list's values. Never inlined: its block of scores
/// (16 KiB) is on the stack only for a column layout.
#[inline(never)]
fn softmax_mean_columns(
    columns: &ColumnView<'_>,
    x: &[f32],
    temperature: f32,
    cosine: bool,
    mean: &mut [f32],
) -> Result<()> {
    let mut active_dims = [0u16; MAX_STACK_DIM];
    let mut n_active = 0;
    for (dim, &v) in x.iter().enumerate() {
        if v != 0.0 {
            // x has the table's dimension, at most MAX_STACK_DIM (checked by the caller).
            active_dims[n_active] = dim as u16;
            n_active += 1;
        }
    }
    let active_dims = &active_dims[..n_active];
    // |x| = 1: cosine similarities divide by the item norms only.
    let query = Query {
        vector: x,
        norm: 1.0,
        bias: 0.0,
    };
    let scoring = if cosine {
        Scoring::Cosine
    } else {
        Scoring::Dot
    };
    let mut stream = StreamingMean::new(temperature, mean);
    let mut block_scores = [0.0f32; MAX_STACK_BLOCK_ROWS];
    for block in 0..columns.blocks {
        let rows = columns.rows_in_block(block);
        let base = block * columns.block_rows;
        let scores = block_scores.get_mut(..rows).ok_or(Error::CorruptTable {
            role: columns.role,
            reason: "column block larger than the layout allows",
        })?;
        match columns.list_rows {
            ListRows::U16 => add_u16_lists(scores, columns, block, active_dims, &query)?,
            ListRows::Bitmap => add_bitmap_lists(scores, columns, block, active_dims, &query)?,
        }
        block_similarities(scores, base, columns, &query, scoring)?;
        let mut block_max = f32::NEG_INFINITY;
        for (local, &s) in scores.iter().enumerate() {
            if !s.is_finite() {
                return Err(Error::NonFiniteScore {
                    item_row: (base + local) as u64,
                });
            }
            block_max = block_max.max(s);
        }
        stream.raise(block_max);
        // Scores become weights times the row's factor: what each stored value is multiplied
        // by in the mean.
        stream.weigh_block(scores);
        for (local, s) in scores.iter_mut().enumerate() {
            *s *= row_factor(columns, base + local, cosine)?;
        }
        for (dim, m) in stream.mean.iter_mut().enumerate() {
            *m += columns.weighted_list_sum(block, dim, scores)?;
        }
    }
    stream.finish()
}

/// What row `row`'s stored values are multiplied by to give `ṽ`: its scale (int8, int4; 1
/// otherwise), divided by its stored norm under cosine scoring (0 for an all-zero row).
#[inline]
fn row_factor(columns: &ColumnView<'_>, row: usize, cosine: bool) -> Result<f32> {
    let scale = match columns.encoding.is_scaled() {
        false => 1.0,
        true => match columns.scale_bits(row).map(f16_to_f32) {
            // An all-zero row stores scale 0.
            Some(0.0) => return Ok(0.0),
            Some(s) if s.is_finite() && s > 0.0 => s,
            _ => {
                return Err(Error::CorruptRow {
                    role: columns.role,
                    row: row as u64,
                    reason: "int8 or int4 scale is not a finite number at least 0",
                });
            }
        },
    };
    if !cosine {
        return Ok(scale);
    }
    let norm = columns.norm(row)?;
    Ok(if norm > 0.0 { scale / norm } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::exp_nonpositive;

    #[test]
    fn exp_nonpositive_is_within_two_ulp_of_exp() {
        let mut x = 0.0f32;
        while x > -87.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp_nonpositive(x));
            assert!(
                ((got - want) / want).abs() < 2.5e-7,
                "exp({x}) = {got}, want {want}"
            );
            x -= 0.001_37;
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        // Clamped below: a tiny normal number, never 0, infinity or NaN.
        for x in [-87.0f32, -100.0, -1e30, f32::NEG_INFINITY] {
            let e = exp_nonpositive(x);
            assert!(e > 0.0 && e < 2e-38 && e.is_normal(), "exp({x}) = {e}");
        }
    }
}
