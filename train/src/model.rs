//! Matrix factorisation trained with the BPR loss and a sparse (lazy) Adam; the cosine losses'
//! step, which shares the tables, the slots and the Adam pass, is in [`contrastive`].
//!
//! For a batch of `B` triples `(u, i, j)` the loss is
//!
//! ```text
//! L = 1/B * sum over the batch of [ softplus(-(x_ui - x_uj)) + l2/2 * (|u|^2 + |v_i|^2 + |v_j|^2) ]
//! x_ui = dot(u, v_i)
//! ```
//!
//! (LightGCN's MF-BPR: the L2 term covers the embeddings in the batch). One step:
//!
//! 1. **Forward**, in parallel over triples: `x = dot(u, v_i - v_j)`, the loss, and the scalar
//!    `c = -sigmoid(-x) / B` that every gradient of the triple is a multiple of.
//! 2. **Backward**: each distinct row of the batch gets a slot, and its gradient is summed in
//!    triple order (`g_u += c (v_i - v_j) + l2/B u`, `g_i += c u + l2/B v_i`,
//!    `g_j += -c u + l2/B v_j`). Slots are split among threads by range, each thread scanning
//!    the batch for its own slots, so every sum has the same order whatever the thread count.
//!    Only rows in the batch have a gradient; nothing of the size of a table is computed.
//! 3. **Adam**, in parallel over row ranges, for the rows of the batch only (lazy Adam, as
//!    `torch.optim.SparseAdam`: moments of other rows are left as they are; the bias correction
//!    uses the global step). With a mask, only active weights move; the full row gradient is
//!    also added to the regrowth accumulator when asked.
//!
//! The result depends on the seed and the data only, not on the number of threads.
//!
//! **Distillation** (optional, [`Mf::teacher`]): a trained teacher's score difference
//! `t = t_ui - t_uj` softens each triple's label to
//! `y = alpha + (1 - alpha) * sigmoid(t / tau)` and may add a score-matching term, so the loss
//! of a triple becomes
//!
//! ```text
//! softplus(-x) + (1 - y) x + beta/2 (x - t)^2      (= -y ln sigmoid(x) - (1 - y) ln sigmoid(-x) + ...)
//! ```
//!
//! and `c = ((1 - y) - sigmoid(-x) + beta (x - t)) / B`. With `alpha = 1` and `beta = 0` this is
//! BPR, bit for bit. The teacher is read at the batch's rows only.

use rayon::prelude::*;

use crate::kernels::{self, AdamStep, dot};
use crate::sample::Sample;

pub mod contrastive;

/// Adam and loss settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConfig {
    /// Learning rate.
    pub lr: f32,
    /// Adam's first-moment decay.
    pub beta1: f32,
    /// Adam's second-moment decay.
    pub beta2: f32,
    /// Adam's epsilon.
    pub eps: f32,
    /// L2 coefficient on the batch's embeddings.
    pub l2: f32,
}

impl Default for StepConfig {
    fn default() -> Self {
        StepConfig {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            l2: 2e-2,
        }
    }
}

/// How a teacher's scores enter the loss (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistillConfig {
    /// Weight of the observed label: `y = alpha + (1 - alpha) * sigmoid(t / tau)` (1: plain
    /// BPR labels, 0: the teacher's alone).
    pub alpha: f32,
    /// Temperature `tau` of the teacher's pairwise probability.
    pub temperature: f32,
    /// Weight of the score-matching term `beta/2 (x - t)^2` (0: none).
    pub beta: f32,
    /// Negatives drawn per triple, of which the one the teacher scores highest is kept (1:
    /// uniform negatives, as without a teacher).
    pub negatives: usize,
}

impl Default for DistillConfig {
    /// The distillation defaults (chosen on a Gowalla validation split, see
    /// `docs/TRAINING.md`): a quarter of the observed label (`alpha` 0.25, which keeps a student
    /// from following a teacher weaker than itself too far) at temperature 1, no score matching,
    /// the teacher's hardest of 8 negatives.
    fn default() -> Self {
        DistillConfig {
            alpha: 0.25,
            temperature: 1.0,
            beta: 0.0,
            negatives: 8,
        }
    }
}

impl DistillConfig {
    /// The distillation defaults of the cosine losses (see [`crate::model::Mf::step_contrastive`]):
    /// a quarter the loss's own, three quarters the cross-entropy against the teacher's softmax
    /// over the batch's positive and negatives at the loss's temperature (`negatives` and
    /// `beta` are not used). Chosen on the Gowalla validation split: `alpha` 0.25, 0.5 and 0.8
    /// gave Recall@20 0.1447, 0.1418 and 0.1305 at density 0.1 (`docs/TRAINING.md`).
    pub fn for_cosine() -> Self {
        DistillConfig {
            alpha: 0.25,
            temperature: 1.0,
            beta: 0.0,
            negatives: 1,
        }
    }
}

/// The tables of a trained model whose scores guide the training of another (knowledge
/// distillation), with the way they enter the loss.
#[derive(Clone, Debug)]
pub struct Teacher {
    /// Width of both tables.
    pub dim: usize,
    /// User table, row-major.
    pub users: Vec<f32>,
    /// Item table, row-major.
    pub items: Vec<f32>,
    /// How the teacher's score differences enter the loss.
    pub config: DistillConfig,
}

impl Teacher {
    /// The teacher's score difference `t_ui - t_uj` for a triple.
    #[inline]
    pub fn difference(&self, s: &Sample) -> f32 {
        let d = self.dim;
        let u = &self.users[s.user as usize * d..][..d];
        dot(u, &self.items[s.pos as usize * d..][..d])
            - dot(u, &self.items[s.neg as usize * d..][..d])
    }

    /// The teacher's score of `item` for `user`.
    #[inline]
    pub fn score(&self, user: u32, item: u32) -> f32 {
        let d = self.dim;
        dot(
            &self.users[user as usize * d..][..d],
            &self.items[item as usize * d..][..d],
        )
    }
}

/// One triple's loss and the derivative of the loss in `x = x_ui - x_uj`, without the L2 term
/// or the `1/B` factor: BPR's `softplus(-x)` and `-sigmoid(-x)` without a teacher; with teacher
/// score difference `t`, the cross-entropy against the softened label plus score matching (see
/// the module docs). `alpha = 1, beta = 0` gives BPR's values bit for bit.
#[inline]
pub fn triple_loss(x: f32, teacher: Option<(f32, DistillConfig)>) -> (f32, f32) {
    let Some((t, c)) = teacher else {
        return (softplus_neg(x), -sigmoid_neg(x));
    };
    // 1 - y = (1 - alpha) * (1 - sigmoid(t / tau)) = (1 - alpha) * sigmoid(-t / tau): exactly 0
    // for alpha = 1.
    let miss = (1.0 - c.alpha) * sigmoid_neg(t / c.temperature);
    let mut loss = softplus_neg(x) + miss * x;
    let mut grad = -(sigmoid_neg(x) - miss);
    if c.beta != 0.0 {
        let r = x - t;
        loss += 0.5 * c.beta * r * r;
        grad += c.beta * r;
    }
    (loss, grad)
}

/// One embedding table with its Adam moments and, for sparse training, its mask and the
/// gradient accumulated for regrowth.
#[derive(Clone, Debug)]
pub struct Table {
    /// Number of rows.
    pub rows: usize,
    /// Width of each row.
    pub dim: usize,
    /// Weights, row-major; inactive weights are exactly zero.
    pub w: Vec<f32>,
    /// Adam's first moments.
    pub m: Vec<f32>,
    /// Adam's second moments.
    pub v: Vec<f32>,
    /// 1 for an active weight, 0 for an inactive one; `None` for a dense table.
    pub active: Option<Vec<u8>>,
    /// Sum of the gradients since the last mask update (sparse tables only).
    pub acc: Option<Vec<f32>>,
    /// Adam updates each weight has had since it became active, for its own bias correction
    /// (sparse tables with `local_adam` only; `None`: the global step's correction).
    pub count: Option<Vec<u32>>,
}

impl Table {
    /// A dense table with weights `w` (`rows x dim`) and zero moments.
    pub fn dense(rows: usize, dim: usize, w: Vec<f32>) -> Self {
        assert_eq!(w.len(), rows * dim);
        Table {
            rows,
            dim,
            m: vec![0.0; w.len()],
            v: vec![0.0; w.len()],
            w,
            active: None,
            acc: None,
            count: None,
        }
    }

    /// Turns the table sparse with mask `active` (same shape; weights outside it are zeroed).
    pub fn with_mask(mut self, active: Vec<u8>) -> Self {
        assert_eq!(active.len(), self.w.len());
        for (w, &a) in self.w.iter_mut().zip(&active) {
            if a == 0 {
                *w = 0.0;
            }
        }
        self.acc = Some(vec![0.0; self.w.len()]);
        self.active = Some(active);
        self
    }

    /// Row `r`'s weights.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.w[r * self.dim..(r + 1) * self.dim]
    }

    /// Number of active weights (all of them for a dense table).
    pub fn active_count(&self) -> usize {
        match &self.active {
            Some(a) => a.iter().filter(|&&x| x != 0).count(),
            None => self.w.len(),
        }
    }
}

/// `softplus(-x) = ln(1 + e^-x)`, stable for large `|x|`.
#[inline]
fn softplus_neg(x: f32) -> f32 {
    if x > 0.0 {
        (-x).exp().ln_1p()
    } else {
        -x + x.exp().ln_1p()
    }
}

/// `sigmoid(-x)`, stable.
#[inline]
fn sigmoid_neg(x: f32) -> f32 {
    if x >= 0.0 {
        let e = (-x).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + x.exp())
    }
}

const NO_SLOT: u32 = u32::MAX;

/// Per-batch buffers, reused across steps.
#[derive(Clone, Debug, Default)]
struct Workspace {
    user_slot: Vec<u32>,
    item_slot: Vec<u32>,
    user_rows: Vec<u32>,
    item_rows: Vec<u32>,
    slots: Vec<[u32; 3]>,
    coef: Vec<f32>,
    loss: Vec<f32>,
    user_grad: Vec<f32>,
    item_grad: Vec<f32>,
    buckets: Vec<Vec<(u32, u32)>>,
}

/// The two tables, the optimiser's step count and the batch buffers.
#[derive(Clone, Debug)]
pub struct Mf {
    /// User table.
    pub users: Table,
    /// Item table.
    pub items: Table,
    /// Optimiser and loss settings.
    pub config: StepConfig,
    /// Steps taken.
    pub steps: u64,
    /// Distillation: the teacher whose scores soften the labels (`None`: plain BPR).
    pub teacher: Option<Teacher>,
    /// Incremental training: which rows may move and what they are pulled back to (`None`:
    /// every row of a batch moves freely).
    pub anchor: Option<Anchor>,
    threads: usize,
    work: Workspace,
    contrastive: contrastive::Work,
    bias: BiasCorrection,
}

/// One table's side of an [`Anchor`].
#[derive(Clone, Debug, PartialEq)]
pub struct TableAnchor {
    /// The previous weights of the first `previous.len() / dim` rows (rows after them are new:
    /// not anchored).
    pub previous: Vec<f32>,
    /// The curvature estimate of each previous weight (same shape as `previous`).
    pub curvature: Vec<f32>,
    /// Per row of the table: whether the row may move (rows with new interactions); the
    /// others keep their weights and optimiser state bit for bit.
    pub open: Vec<bool>,
}

/// Incremental training (see `docs/INCREMENTAL.md`): a quadratic prior centred on the previous
/// weights, `strength/2 * sum curvature * (w - previous)^2` over the open, previous rows of a
/// batch (the sequential Bayesian update of Lambda Learner with a diagonal curvature), and rows
/// that may not move at all.
#[derive(Clone, Debug, PartialEq)]
pub struct Anchor {
    /// The user table's side.
    pub users: TableAnchor,
    /// The item table's side.
    pub items: TableAnchor,
    /// The prior's weight (`--prior-strength`; 0: the previous weights are only the start).
    pub strength: f32,
}

/// Drops the batch rows of `rows` (gradients in `grads`, slots in `slot_of`) that `anchor`
/// keeps still, and adds the prior's gradient to the others.
fn anchor_rows(
    rows: &mut Vec<u32>,
    grads: &mut Vec<f32>,
    slot_of: &mut [u32],
    table: &Table,
    anchor: &TableAnchor,
    strength: f32,
) {
    let dim = table.dim;
    let anchored = anchor.previous.len() / dim;
    let mut kept = 0;
    for k in 0..rows.len() {
        let r = rows[k] as usize;
        if !anchor.open.get(r).copied().unwrap_or(false) {
            slot_of[r] = NO_SLOT;
            continue;
        }
        if kept != k {
            rows[kept] = rows[k];
            grads.copy_within(k * dim..(k + 1) * dim, kept * dim);
        }
        if r < anchored && strength > 0.0 {
            let g = &mut grads[kept * dim..(kept + 1) * dim];
            let w = table.row(r);
            let previous = &anchor.previous[r * dim..(r + 1) * dim];
            let curvature = &anchor.curvature[r * dim..(r + 1) * dim];
            for c in 0..dim {
                g[c] += strength * curvature[c] * (w[c] - previous[c]);
            }
        }
        kept += 1;
    }
    rows.truncate(kept);
    grads.truncate(kept * dim);
}

/// Slot of `row` in a batch, allocating one on first sight.
#[inline]
fn slot(slot_of: &mut [u32], rows: &mut Vec<u32>, row: u32) -> u32 {
    let s = &mut slot_of[row as usize];
    if *s == NO_SLOT {
        *s = rows.len() as u32;
        rows.push(row);
    }
    *s
}

/// Disjoint mutable views of a table's rows `first_row ..`.
struct RowsMut<'a> {
    first_row: usize,
    w: &'a mut [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    active: Option<&'a [u8]>,
    acc: Option<&'a mut [f32]>,
    count: Option<&'a mut [u32]>,
}

/// What the Adam pass needs besides the rows.
#[derive(Clone, Copy)]
struct AdamPass<'a> {
    step: AdamStep,
    /// The uncorrected learning rate and the bias corrections by update count, for weights
    /// with their own count.
    local: (f32, &'a BiasCorrection),
    accumulate: bool,
}

/// Adam's bias corrections `1 / (1 - beta^n)` for update counts `n` below [`BIAS_STEPS`]
/// (beyond it both are 1 to f32 precision for the default betas).
#[derive(Clone, Debug)]
pub struct BiasCorrection {
    /// `1 / (1 - beta1^n)`.
    pub first: Vec<f32>,
    /// `1 / (1 - beta2^n)`.
    pub second: Vec<f32>,
}

/// Length of the [`BiasCorrection`] tables.
pub const BIAS_STEPS: usize = 1 << 15;

impl BiasCorrection {
    /// The tables for `beta1` and `beta2`.
    pub fn new(beta1: f32, beta2: f32) -> Self {
        let table = |beta: f32| {
            (0..BIAS_STEPS)
                .map(|n| {
                    if n == 0 {
                        1.0
                    } else {
                        (1.0 / (1.0 - f64::from(beta).powi(n as i32))) as f32
                    }
                })
                .collect()
        };
        BiasCorrection {
            first: table(beta1),
            second: table(beta2),
        }
    }
}

impl Mf {
    /// A model over two tables (same width) with `threads` worker threads' worth of
    /// partitioning (results do not depend on it).
    pub fn new(users: Table, items: Table, config: StepConfig, threads: usize) -> Self {
        assert_eq!(users.dim, items.dim);
        let work = Workspace {
            user_slot: vec![NO_SLOT; users.rows],
            item_slot: vec![NO_SLOT; items.rows],
            ..Workspace::default()
        };
        Mf {
            users,
            items,
            bias: BiasCorrection::new(config.beta1, config.beta2),
            config,
            steps: 0,
            teacher: None,
            anchor: None,
            threads: threads.max(1),
            work,
            contrastive: contrastive::Work::default(),
        }
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.users.dim
    }

    /// One step on `batch`; adds the batch's gradients to the regrowth accumulators when
    /// `accumulate` (sparse tables only). Returns the batch's summed loss without L2 (BPR's,
    /// or with a teacher the distillation loss of [`triple_loss`]). Runs on the current rayon
    /// pool.
    pub fn step(&mut self, batch: &[Sample], accumulate: bool) -> f64 {
        if batch.is_empty() {
            return 0.0;
        }
        let dim = self.dim();
        let scale = 1.0 / batch.len() as f32;
        let l2 = self.config.l2 * scale;
        let w = &mut self.work;

        // Slots for the distinct rows of the batch.
        w.slots.clear();
        for s in batch {
            let su = slot(&mut w.user_slot, &mut w.user_rows, s.user);
            let si = slot(&mut w.item_slot, &mut w.item_rows, s.pos);
            let sj = slot(&mut w.item_slot, &mut w.item_rows, s.neg);
            w.slots.push([su, si, sj]);
        }

        // Forward.
        let (users, items, teacher) = (&self.users, &self.items, self.teacher.as_ref());
        w.coef.resize(batch.len(), 0.0);
        w.loss.resize(batch.len(), 0.0);
        const FORWARD_CHUNK: usize = 256;
        batch
            .par_chunks(FORWARD_CHUNK)
            .zip(w.coef.par_chunks_mut(FORWARD_CHUNK))
            .zip(w.loss.par_chunks_mut(FORWARD_CHUNK))
            .for_each(|((samples, coef), loss)| {
                for ((s, c), l) in samples.iter().zip(coef).zip(loss) {
                    let u = users.row(s.user as usize);
                    let x = dot(u, items.row(s.pos as usize)) - dot(u, items.row(s.neg as usize));
                    let soft = teacher.map(|t| (t.difference(s), t.config));
                    let (loss, grad) = triple_loss(x, soft);
                    *c = grad * scale;
                    *l = loss;
                }
            });

        // Backward into slots: users, then items, each split by slot range.
        let parts = if self.threads == 1 {
            1
        } else {
            2 * self.threads
        };
        let (slots, coef) = (&w.slots, &w.coef);
        w.user_grad.clear();
        w.user_grad.resize(w.user_rows.len() * dim, 0.0);
        let per = w.user_rows.len().div_ceil(parts).max(1);
        w.user_grad
            .par_chunks_mut(per * dim)
            .enumerate()
            .for_each(|(k, grad)| {
                let lo = (k * per) as u32;
                let hi = lo + (grad.len() / dim) as u32;
                for ((s, sl), &c) in batch.iter().zip(slots).zip(coef) {
                    if sl[0] < lo || sl[0] >= hi {
                        continue;
                    }
                    let g = &mut grad[(sl[0] - lo) as usize * dim..][..dim];
                    kernels::user_grad(
                        g,
                        c,
                        items.row(s.pos as usize),
                        items.row(s.neg as usize),
                        users.row(s.user as usize),
                        l2,
                    );
                }
            });
        w.item_grad.clear();
        w.item_grad.resize(w.item_rows.len() * dim, 0.0);
        let per = w.item_rows.len().div_ceil(parts).max(1);
        w.item_grad
            .par_chunks_mut(per * dim)
            .enumerate()
            .for_each(|(k, grad)| {
                let lo = (k * per) as u32;
                let hi = lo + (grad.len() / dim) as u32;
                for ((s, sl), &c) in batch.iter().zip(slots).zip(coef) {
                    let u = users.row(s.user as usize);
                    for (slot, row, sign) in [(sl[1], s.pos, c), (sl[2], s.neg, -c)] {
                        if slot < lo || slot >= hi {
                            continue;
                        }
                        let g = &mut grad[(slot - lo) as usize * dim..][..dim];
                        kernels::item_grad(g, sign, u, items.row(row as usize), l2);
                    }
                }
            });

        self.apply_adam(accumulate);
        self.work.loss.iter().map(|&l| f64::from(l)).sum()
    }

    /// Adam on the rows of the batch whose gradients sit in the workspace's slots, then the
    /// slots released.
    fn apply_adam(&mut self, accumulate: bool) {
        let w = &mut self.work;
        if let Some(anchor) = &self.anchor {
            let strength = anchor.strength;
            anchor_rows(
                &mut w.user_rows,
                &mut w.user_grad,
                &mut w.user_slot,
                &self.users,
                &anchor.users,
                strength,
            );
            anchor_rows(
                &mut w.item_rows,
                &mut w.item_grad,
                &mut w.item_slot,
                &self.items,
                &anchor.items,
                strength,
            );
        }
        self.steps += 1;
        let t = self.steps as i32;
        let c = self.config;
        let pass = AdamPass {
            step: AdamStep {
                lr_t: c.lr * (1.0 - c.beta2.powi(t)).sqrt() / (1.0 - c.beta1.powi(t)),
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
            },
            local: (c.lr, &self.bias),
            accumulate,
        };
        let chunks = if self.threads == 1 {
            1
        } else {
            4 * self.threads
        };
        adam_rows(
            &mut self.users,
            &w.user_rows,
            &w.user_grad,
            &mut w.buckets,
            chunks,
            pass,
        );
        adam_rows(
            &mut self.items,
            &w.item_rows,
            &w.item_grad,
            &mut w.buckets,
            chunks,
            pass,
        );
        for &r in &w.user_rows {
            w.user_slot[r as usize] = NO_SLOT;
        }
        for &r in &w.item_rows {
            w.item_slot[r as usize] = NO_SLOT;
        }
        w.user_rows.clear();
        w.item_rows.clear();
    }
}

/// Applies Adam to the rows `rows` of `table` (row `rows[k]` has gradient slot `k`), in
/// parallel over `chunks` row ranges.
fn adam_rows(
    table: &mut Table,
    rows: &[u32],
    grads: &[f32],
    buckets: &mut Vec<Vec<(u32, u32)>>,
    chunks: usize,
    pass: AdamPass<'_>,
) {
    let dim = table.dim;
    let rows_per = table.rows.div_ceil(chunks).max(1);
    let chunks = table.rows.div_ceil(rows_per).max(1);
    buckets.resize_with(chunks, Vec::new);
    for b in buckets.iter_mut() {
        b.clear();
    }
    for (slot, &row) in rows.iter().enumerate() {
        buckets[row as usize / rows_per].push((row, slot as u32));
    }
    let span = rows_per * dim;
    let mut views: Vec<RowsMut<'_>> = Vec::with_capacity(chunks);
    let mut w = table.w.chunks_mut(span);
    let mut m = table.m.chunks_mut(span);
    let mut v = table.v.chunks_mut(span);
    let mut active = table.active.as_deref().map(|a| a.chunks(span));
    let mut acc = table.acc.as_deref_mut().map(|a| a.chunks_mut(span));
    let mut count = table.count.as_deref_mut().map(|a| a.chunks_mut(span));
    for k in 0..chunks {
        let (Some(w), Some(m), Some(v)) = (w.next(), m.next(), v.next()) else {
            break;
        };
        views.push(RowsMut {
            first_row: k * rows_per,
            w,
            m,
            v,
            active: active.as_mut().and_then(Iterator::next),
            acc: acc.as_mut().and_then(Iterator::next),
            count: count.as_mut().and_then(Iterator::next),
        });
    }
    views
        .into_par_iter()
        .zip(buckets.par_iter())
        .for_each(|(view, bucket)| {
            let RowsMut {
                first_row,
                w,
                m,
                v,
                active,
                mut acc,
                mut count,
            } = view;
            for &(row, slot) in bucket {
                let base = (row as usize - first_row) * dim;
                let g = &grads[slot as usize * dim..][..dim];
                let w = &mut w[base..base + dim];
                let m = &mut m[base..base + dim];
                let v = &mut v[base..base + dim];
                if pass.accumulate
                    && let Some(acc) = acc.as_deref_mut()
                {
                    kernels::add(&mut acc[base..base + dim], g);
                }
                match (active, count.as_deref_mut()) {
                    (None, _) => kernels::adam(w, m, v, g, pass.step),
                    (Some(active), None) => {
                        kernels::adam_masked(w, m, v, g, &active[base..base + dim], pass.step)
                    }
                    (Some(active), Some(count)) => kernels::adam_counted(
                        w,
                        m,
                        v,
                        g,
                        &active[base..base + dim],
                        &mut count[base..base + dim],
                        kernels::CountedStep {
                            lr: pass.local.0,
                            bias: pass.local.1,
                            step: pass.step,
                        },
                    ),
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize, dim: usize, seed: u32) -> Table {
        let w = (0..rows * dim)
            .map(|k| (((k as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 5000.0 - 0.1)
            .collect();
        Table::dense(rows, dim, w)
    }

    /// The loss of a batch computed directly from the formula (in f64): BPR, or with the
    /// model's teacher the cross-entropy against the softened label plus score matching.
    fn loss(mf: &Mf, batch: &[Sample]) -> f64 {
        let b = batch.len() as f64;
        let l2 = f64::from(mf.config.l2);
        let dot64 = |a: &[f32], vi: &[f32], vj: &[f32]| -> f64 {
            (0..a.len())
                .map(|d| f64::from(a[d]) * (f64::from(vi[d]) - f64::from(vj[d])))
                .sum()
        };
        batch
            .iter()
            .map(|s| {
                let u = mf.users.row(s.user as usize);
                let (vi, vj) = (mf.items.row(s.pos as usize), mf.items.row(s.neg as usize));
                let x = dot64(u, vi, vj);
                let sq = |r: &[f32]| r.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>();
                let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
                let fit = match &mf.teacher {
                    None => -sigmoid(x).ln(),
                    Some(t) => {
                        let d = t.dim;
                        let row = |table: &[f32], r: u32| table[r as usize * d..][..d].to_vec();
                        let td = dot64(
                            &row(&t.users, s.user),
                            &row(&t.items, s.pos),
                            &row(&t.items, s.neg),
                        );
                        let c = t.config;
                        let alpha = f64::from(c.alpha);
                        let y = alpha + (1.0 - alpha) * sigmoid(td / f64::from(c.temperature));
                        -y * sigmoid(x).ln() - (1.0 - y) * sigmoid(-x).ln()
                            + f64::from(c.beta) / 2.0 * (x - td).powi(2)
                    }
                };
                fit + l2 / 2.0 * (sq(u) + sq(vi) + sq(vj))
            })
            .sum::<f64>()
            / b
    }

    /// A dense teacher of the fixture's shape (3 users, 4 items, width 5).
    fn teacher(config: DistillConfig) -> Teacher {
        // Larger weights than the student's, so that the teacher's differences are not small.
        Teacher {
            dim: 5,
            users: table(3, 5, 7).w.iter().map(|w| 8.0 * w).collect(),
            items: table(4, 5, 8).w.iter().map(|w| 8.0 * w).collect(),
            config,
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        gradient_check(None);
    }

    #[test]
    fn distillation_gradient_matches_finite_differences() {
        for config in [
            DistillConfig::default(),
            DistillConfig {
                alpha: 0.5,
                temperature: 0.5,
                beta: 0.0,
                negatives: 1,
            },
            DistillConfig {
                alpha: 0.3,
                temperature: 2.0,
                beta: 0.7,
                negatives: 1,
            },
        ] {
            gradient_check(Some(teacher(config)));
        }
    }

    /// Checks the gradient one step accumulates against finite differences of [`loss`], and
    /// the returned loss against [`loss`] without its L2 term.
    fn gradient_check(teacher: Option<Teacher>) {
        // With plain SGD-like small Adam steps the first step moves each weight by about
        // -lr * sign(g); check the accumulated gradient against finite differences instead.
        let users = table(3, 5, 1);
        let items = table(4, 5, 2);
        let mask = vec![1u8; 20];
        let mut mf = Mf::new(
            users.clone().with_mask(vec![1u8; 15]),
            items.clone().with_mask(mask),
            StepConfig {
                lr: 0.0,
                ..StepConfig::default()
            },
            1,
        );
        mf.teacher = teacher;
        let batch = [
            Sample {
                user: 0,
                pos: 1,
                neg: 2,
            },
            Sample {
                user: 2,
                pos: 1,
                neg: 3,
            },
            Sample {
                user: 0,
                pos: 0,
                neg: 1,
            },
        ];
        let reference = mf.clone();
        let summed = mf.step(&batch, true);
        let no_l2 = Mf {
            config: StepConfig {
                l2: 0.0,
                ..reference.config
            },
            ..reference.clone()
        };
        let direct = loss(&no_l2, &batch) * batch.len() as f64;
        assert!(
            (summed - direct).abs() < 1e-5,
            "summed loss {summed}, direct {direct}"
        );
        let h = 1e-3f32;
        for (which, r, d) in [(0, 0, 2), (0, 2, 4), (1, 1, 0), (1, 3, 3), (1, 0, 1)] {
            let mut plus = reference.clone();
            let mut minus = reference.clone();
            let k = r * 5 + d;
            if which == 0 {
                plus.users.w[k] += h;
                minus.users.w[k] -= h;
            } else {
                plus.items.w[k] += h;
                minus.items.w[k] -= h;
            }
            let numeric = (loss(&plus, &batch) - loss(&minus, &batch)) / (2.0 * f64::from(h));
            let analytic = if which == 0 {
                mf.users.acc.as_ref().unwrap()[k]
            } else {
                mf.items.acc.as_ref().unwrap()[k]
            };
            assert!(
                (numeric - f64::from(analytic)).abs() < 1e-4,
                "table {which} row {r} col {d}: numeric {numeric} analytic {analytic}"
            );
        }
    }

    #[test]
    fn steps_lower_the_loss_and_do_not_depend_on_threads() {
        let batch: Vec<Sample> = (0..300u32)
            .map(|k| Sample {
                user: k % 20,
                pos: (k * 7) % 30,
                neg: (k * 7 + 11) % 30,
            })
            .collect();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut mf = Mf::new(
                table(20, 16, 3),
                table(30, 16, 4),
                StepConfig {
                    lr: 0.01,
                    ..StepConfig::default()
                },
                threads,
            );
            let before = loss(&mf, &batch);
            pool.install(|| {
                for _ in 0..20 {
                    mf.step(&batch, false);
                }
            });
            (before, loss(&mf, &batch), mf.users.w, mf.items.w)
        };
        let (before, after, u1, i1) = run(1);
        assert!(after < before * 0.9, "{before} -> {after}");
        let (_, _, u3, i3) = run(3);
        assert_eq!(u1, u3);
        assert_eq!(i1, i3);
    }

    #[test]
    fn distillation_with_alpha_one_is_plain_bpr_bit_for_bit() {
        let batch: Vec<Sample> = (0..300u32)
            .map(|k| Sample {
                user: k % 3,
                pos: (k * 7) % 4,
                neg: (k * 7 + 1) % 4,
            })
            .collect();
        let run = |teacher: Option<Teacher>| {
            let mut mask = vec![1u8; 20];
            mask[3] = 0;
            mask[17] = 0;
            let mut mf = Mf::new(
                table(3, 5, 1).with_mask(vec![1; 15]),
                table(4, 5, 2).with_mask(mask),
                StepConfig::default(),
                2,
            );
            mf.teacher = teacher;
            let losses: Vec<u64> = (0..10).map(|_| mf.step(&batch, true).to_bits()).collect();
            (losses, mf.users.w, mf.items.w, mf.items.acc)
        };
        let plain = run(None);
        for temperature in [1.0, 0.1] {
            let hard = run(Some(teacher(DistillConfig {
                alpha: 1.0,
                temperature,
                beta: 0.0,
                negatives: 1,
            })));
            let bits = |w: &[f32]| w.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(plain.0, hard.0);
            assert_eq!(bits(&plain.1), bits(&hard.1));
            assert_eq!(bits(&plain.2), bits(&hard.2));
            assert_eq!(
                bits(plain.3.as_deref().unwrap()),
                bits(hard.3.as_deref().unwrap())
            );
        }
        // A soft label does change the steps.
        let soft = run(Some(teacher(DistillConfig::default())));
        assert_ne!(plain.1, soft.1);
    }

    #[test]
    fn inactive_weights_stay_zero() {
        let mut mask = vec![0u8; 30 * 8];
        for k in (0..mask.len()).step_by(3) {
            mask[k] = 1;
        }
        let mut mf = Mf::new(
            table(10, 8, 5).with_mask(vec![1; 80]),
            table(30, 8, 6).with_mask(mask.clone()),
            StepConfig::default(),
            2,
        );
        let batch: Vec<Sample> = (0..64u32)
            .map(|k| Sample {
                user: k % 10,
                pos: k % 30,
                neg: (k + 1) % 30,
            })
            .collect();
        for _ in 0..5 {
            mf.step(&batch, true);
        }
        for (k, &a) in mask.iter().enumerate() {
            if a == 0 {
                assert_eq!(mf.items.w[k], 0.0);
                assert_eq!(mf.items.m[k], 0.0);
            }
        }
        assert!(mf.items.acc.as_ref().unwrap().iter().any(|&g| g != 0.0));
    }
}
