//! The step of the cosine losses ([`crate::loss`]): a batch of `B` (user, positive) pairs and
//! `N` negatives shared by the batch.
//!
//! 1. **Normalise** the batch's user rows `Û` (`B x d`), positive rows `P̂` (`B x d`) and the
//!    negatives' rows `N̂` (`N x d`); a row of zeros stays zero.
//! 2. **Scores and loss**, in blocks of [`BLOCK`] pairs: `S = Û N̂ᵀ` (one GEMM per block), the
//!    positive scores `s⁺_b = û_b · p̂_b`, then [`LossConfig::pair`] turns each row of `S` into
//!    the loss's derivatives `G` and gives `∂L/∂s⁺_b`; `∂L/∂Û = G N̂ + diag(∂L/∂s⁺) P̂` (a
//!    second GEMM per block).
//! 3. `∂L/∂N̂ = Gᵀ Û`, in blocks of [`BLOCK`] negatives (a GEMM each), and
//!    `∂L/∂p̂_b = ∂L/∂s⁺_b û_b`.
//! 4. **Through the normalisation**: `∂L/∂x = (∂L/∂x̂ - x̂ (x̂ · ∂L/∂x̂)) / |x|`, then each
//!    distinct row's gradient is summed in a fixed order (users in batch order; items:
//!    positives in batch order, then negatives), with `l2 / B · x` per occurrence as BPR does.
//! 5. **Adam** on those rows, exactly as the BPR step ([`Mf::step`]).
//!
//! Every block is one single-threaded GEMM and the blocks do not depend on the thread count, so
//! the result depends on the seed only (on one machine: the GEMM's micro-kernel, FMA or not,
//! follows the CPU).

use rayon::prelude::*;

use super::{DistillConfig, Mf, NO_SLOT, Table, slot};
use crate::gemm::{View, gemm};
use crate::kernels::dot;
use crate::loss::{LossConfig, LossKind};
use crate::sample::Sample;

/// Pairs (or negatives) per GEMM block.
pub const BLOCK: usize = 64;

/// The contrastive step's buffers, reused across steps.
#[derive(Clone, Debug, Default)]
pub(super) struct Work {
    users: Vec<f32>,
    user_inv: Vec<f32>,
    pos: Vec<f32>,
    pos_inv: Vec<f32>,
    neg: Vec<f32>,
    neg_inv: Vec<f32>,
    scores: Vec<f32>,
    pos_grad: Vec<f32>,
    loss: Vec<f32>,
    d_users: Vec<f32>,
    d_pos: Vec<f32>,
    d_neg: Vec<f32>,
    teacher_users: Vec<f32>,
    teacher_pos: Vec<f32>,
    teacher_neg: Vec<f32>,
}

/// `1 / |x|` for normalising `x`, or 1 for a row of zeros (which stays zero, and whose
/// gradient passes through unchanged so that it can leave zero).
#[inline]
fn inverse_norm(x: &[f32]) -> f32 {
    let n = dot(x, x).sqrt();
    if n > 1e-12 { 1.0 / n } else { 1.0 }
}

/// Writes the normalised rows `rows` of `table` to `out` (`rows.len() x dim`) and their
/// inverse norms to `inv`.
fn normalise(table: &Table, rows: &[u32], out: &mut [f32], inv: &mut [f32]) {
    let dim = table.dim;
    out.par_chunks_mut(dim)
        .zip(inv.par_iter_mut())
        .zip(rows.par_iter())
        .for_each(|((o, i), &r)| {
            let x = table.row(r as usize);
            *i = inverse_norm(x);
            for (o, &x) in o.iter_mut().zip(x) {
                *o = x * *i;
            }
        });
}

/// Turns gradients in normalised rows `grad` into gradients in the raw rows, in place.
fn through_normalisation(grad: &mut [f32], unit: &[f32], inv: &[f32], dim: usize) {
    grad.par_chunks_mut(dim)
        .zip(unit.par_chunks(dim))
        .zip(inv.par_iter())
        .for_each(|((g, x), &i)| {
            let along = dot(x, g);
            for (g, &x) in g.iter_mut().zip(x) {
                *g = (*g - x * along) * i;
            }
        });
}

/// Adds `grad` (one row per occurrence) and `l2 * x` to the slot of each occurrence's row.
#[allow(clippy::too_many_arguments)]
fn add_to_slots(
    table: &Table,
    rows: impl Iterator<Item = u32>,
    grad: &[f32],
    l2: f32,
    slot_of: &mut [u32],
    slot_rows: &mut Vec<u32>,
    slot_grad: &mut Vec<f32>,
) {
    let dim = table.dim;
    for (row, g) in rows.zip(grad.chunks_exact(dim)) {
        let s = slot(slot_of, slot_rows, row) as usize;
        if slot_grad.len() < (s + 1) * dim {
            slot_grad.resize((s + 1) * dim, 0.0);
        }
        let x = table.row(row as usize);
        for ((acc, &g), &x) in slot_grad[s * dim..(s + 1) * dim].iter_mut().zip(g).zip(x) {
            *acc += g + l2 * x;
        }
    }
}

/// The temperature of the softmax that distillation compares student and teacher with: the
/// loss's own for `ssm` and `bsl`, 0.1 for `ccl`, times the distillation's temperature.
fn distill_temperature(loss: &LossConfig, config: &DistillConfig) -> f32 {
    let base = match loss.kind {
        LossKind::Ccl | LossKind::Bpr => 0.1,
        LossKind::Ssm | LossKind::Bsl => loss.temperature,
    };
    base * config.temperature
}

/// Softmax of `(first, rest)` scaled by `inv` into `(p_first, rest)`; returns `p_first` and the
/// log of the normaliser.
fn softmax(first: f32, rest: &mut [f32], inv: f32) -> (f32, f32) {
    let max = rest.iter().fold(first * inv, |m, &s| m.max(s * inv));
    let e0 = (first * inv - max).exp();
    let mut sum = e0;
    for s in rest.iter_mut() {
        *s = (*s * inv - max).exp();
        sum += *s;
    }
    for s in rest.iter_mut() {
        *s /= sum;
    }
    (e0 / sum, max + sum.ln())
}

/// A pair's loss with distillation: `alpha` times the loss's own plus `1 - alpha` times the
/// cross-entropy of the student's softmax over (positive, negatives) against the teacher's,
/// both at [`distill_temperature`], given the teacher's positive and negative scores. Same
/// contract as [`LossConfig::pair`]; the last two slices are scratch of the negatives' length.
fn distilled_pair(
    loss: &LossConfig,
    config: &DistillConfig,
    pos: f32,
    scores: &mut [f32],
    (teacher_pos, teacher_scores): (f32, &[f32]),
    (kd, student): (&mut [f32], &mut [f32]),
) -> (f32, f32) {
    let tau = distill_temperature(loss, config);
    let inv = 1.0 / tau;
    let (alpha, rest) = (config.alpha, 1.0 - config.alpha);
    // Teacher's distribution q into kd, the student's p alongside.
    kd.copy_from_slice(teacher_scores);
    let (q0, _) = softmax(teacher_pos, kd, inv);
    student.copy_from_slice(scores);
    let (p0, log_z) = softmax(pos, student, inv);
    // Cross-entropy -Σ q log p, with log p_j = s_j / tau - log_z.
    let mut ce = -q0 * (pos * inv - log_z);
    for (&q, &s) in kd.iter().zip(scores.iter()) {
        ce -= q * (s * inv - log_z);
    }
    let (own, own_pos) = loss.pair(pos, scores);
    for ((g, &p), &q) in scores.iter_mut().zip(student.iter()).zip(kd.iter()) {
        *g = alpha * *g + rest * (p - q) * inv;
    }
    (
        alpha * own + rest * ce,
        alpha * own_pos + rest * (p0 - q0) * inv,
    )
}

impl Mf {
    /// One step of a cosine loss on the pairs `batch` (their `neg` is not used) against the
    /// shared `negatives` (item rows); see the module docs. Adds the gradients to the regrowth
    /// accumulators when `accumulate` (sparse tables only). Returns the batch's summed loss
    /// without L2.
    pub fn step_contrastive(
        &mut self,
        batch: &[Sample],
        negatives: &[u32],
        loss: &LossConfig,
        accumulate: bool,
    ) -> f64 {
        let (b, n, dim) = (batch.len(), negatives.len(), self.dim());
        if b == 0 || n == 0 {
            return 0.0;
        }
        let scale = 1.0 / b as f32;
        let c = &mut self.contrastive;
        c.users.resize(b * dim, 0.0);
        c.pos.resize(b * dim, 0.0);
        c.neg.resize(n * dim, 0.0);
        c.user_inv.resize(b, 0.0);
        c.pos_inv.resize(b, 0.0);
        c.neg_inv.resize(n, 0.0);
        c.scores.resize(b * n, 0.0);
        c.pos_grad.resize(b, 0.0);
        c.loss.resize(b, 0.0);
        c.d_users.resize(b * dim, 0.0);
        c.d_pos.resize(b * dim, 0.0);
        c.d_neg.resize(n * dim, 0.0);

        // 1. Normalised rows.
        let user_rows: Vec<u32> = batch.iter().map(|s| s.user).collect();
        let pos_rows: Vec<u32> = batch.iter().map(|s| s.pos).collect();
        normalise(&self.users, &user_rows, &mut c.users, &mut c.user_inv);
        normalise(&self.items, &pos_rows, &mut c.pos, &mut c.pos_inv);
        normalise(&self.items, negatives, &mut c.neg, &mut c.neg_inv);

        let teacher = self.teacher.as_ref();
        if let Some(t) = teacher {
            let gather = |table: &[f32], rows: &[u32], out: &mut Vec<f32>| {
                out.clear();
                for &r in rows {
                    out.extend_from_slice(&table[r as usize * dim..][..dim]);
                }
            };
            gather(&t.users, &user_rows, &mut c.teacher_users);
            gather(&t.items, &pos_rows, &mut c.teacher_pos);
            gather(&t.items, negatives, &mut c.teacher_neg);
        }
        let (t_users, t_pos, t_neg) = (&c.teacher_users, &c.teacher_pos, &c.teacher_neg);

        // 2. Scores, the loss's derivatives, and the users' gradients, block by block.
        let (users, pos, neg) = (&c.users, &c.pos, &c.neg);
        let negs = View::rows(neg, n, dim);
        c.scores
            .par_chunks_mut(BLOCK * n)
            .zip(c.d_users.par_chunks_mut(BLOCK * dim))
            .zip(c.loss.par_chunks_mut(BLOCK))
            .zip(c.pos_grad.par_chunks_mut(BLOCK))
            .enumerate()
            .for_each(|(k, (((scores, d_users), loss_out), pos_grad))| {
                let first = k * BLOCK;
                let rows = loss_out.len();
                let u = &users[first * dim..(first + rows) * dim];
                let p = &pos[first * dim..(first + rows) * dim];
                gemm(1.0, View::rows(u, rows, dim), negs.t(), 0.0, scores);
                let mut taught = teacher.map(|t| {
                    let mut t_scores = vec![0.0f32; rows * n];
                    let tu = &t_users[first * dim..(first + rows) * dim];
                    gemm(
                        1.0,
                        View::rows(tu, rows, dim),
                        View::rows(t_neg, n, dim).t(),
                        0.0,
                        &mut t_scores,
                    );
                    let tp = &t_pos[first * dim..(first + rows) * dim];
                    let t_pos: Vec<f32> = (0..rows)
                        .map(|r| dot(&tu[r * dim..(r + 1) * dim], &tp[r * dim..(r + 1) * dim]))
                        .collect();
                    (t.config, t_pos, t_scores, vec![0.0f32; n], vec![0.0f32; n])
                });
                for r in 0..rows {
                    let s_pos = dot(&u[r * dim..(r + 1) * dim], &p[r * dim..(r + 1) * dim]);
                    let row = &mut scores[r * n..(r + 1) * n];
                    let (l, g) = match taught.as_mut() {
                        None => loss.pair(s_pos, row),
                        Some((config, t_pos, t_scores, kd, student)) => distilled_pair(
                            loss,
                            config,
                            s_pos,
                            row,
                            (t_pos[r], &t_scores[r * n..(r + 1) * n]),
                            (kd, student),
                        ),
                    };
                    loss_out[r] = l;
                    pos_grad[r] = g * scale;
                }
                gemm(scale, View::rows(scores, rows, n), negs, 0.0, d_users);
                for r in 0..rows {
                    let g = pos_grad[r];
                    for (d, &x) in d_users[r * dim..(r + 1) * dim]
                        .iter_mut()
                        .zip(&p[r * dim..(r + 1) * dim])
                    {
                        *d += g * x;
                    }
                }
            });

        // 3. The negatives' and positives' gradients.
        let grads = View::rows(&c.scores, b, n);
        let unit_users = View::rows(users, b, dim);
        c.d_neg
            .par_chunks_mut(BLOCK * dim)
            .enumerate()
            .for_each(|(k, d_neg)| {
                let count = d_neg.len() / dim;
                gemm(
                    scale,
                    grads.columns(k * BLOCK, count).t(),
                    unit_users,
                    0.0,
                    d_neg,
                );
            });
        c.d_pos
            .par_chunks_mut(dim)
            .zip(users.par_chunks(dim))
            .zip(c.pos_grad.par_iter())
            .for_each(|((d, u), &g)| {
                for (d, &u) in d.iter_mut().zip(u) {
                    *d = g * u;
                }
            });

        // 4. Through the normalisation, then into one gradient per distinct row.
        through_normalisation(&mut c.d_users, &c.users, &c.user_inv, dim);
        through_normalisation(&mut c.d_pos, &c.pos, &c.pos_inv, dim);
        through_normalisation(&mut c.d_neg, &c.neg, &c.neg_inv, dim);
        let l2 = self.config.l2 * scale;
        let w = &mut self.work;
        w.user_grad.clear();
        w.item_grad.clear();
        debug_assert!(w.user_rows.is_empty() && w.item_rows.is_empty());
        add_to_slots(
            &self.users,
            user_rows.iter().copied(),
            &c.d_users,
            l2,
            &mut w.user_slot,
            &mut w.user_rows,
            &mut w.user_grad,
        );
        add_to_slots(
            &self.items,
            pos_rows.iter().copied(),
            &c.d_pos,
            l2,
            &mut w.item_slot,
            &mut w.item_rows,
            &mut w.item_grad,
        );
        add_to_slots(
            &self.items,
            negatives.iter().copied(),
            &c.d_neg,
            l2,
            &mut w.item_slot,
            &mut w.item_rows,
            &mut w.item_grad,
        );
        debug_assert!(w.user_slot.iter().filter(|&&s| s != NO_SLOT).count() == w.user_rows.len());
        let total = c.loss.iter().map(|&l| f64::from(l)).sum();

        // 5. Adam.
        self.apply_adam(accumulate);
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{StepConfig, Teacher};

    fn table(rows: usize, dim: usize, seed: u32) -> Table {
        let w = (0..rows * dim)
            .map(|k| (((k as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 5000.0 - 0.1)
            .collect();
        Table::dense(rows, dim, w)
    }

    /// The batch's loss in f64 from the formulas, L2 included.
    fn reference(mf: &Mf, batch: &[Sample], negatives: &[u32], c: &LossConfig) -> f64 {
        let unit = |x: &[f32]| -> Vec<f64> {
            let n = x.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
            x.iter().map(|&a| f64::from(a) / n).collect()
        };
        let cos = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let l2 = f64::from(mf.config.l2);
        let sq = |r: &[f32]| r.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>();
        let t = f64::from(c.temperature);
        batch
            .iter()
            .map(|s| {
                let u = unit(mf.users.row(s.user as usize));
                let sp = cos(&u, &unit(mf.items.row(s.pos as usize)));
                let sn: Vec<f64> = negatives
                    .iter()
                    .map(|&j| cos(&u, &unit(mf.items.row(j as usize))))
                    .collect();
                let own = match c.kind {
                    LossKind::Ssm => {
                        -sp / t
                            + ((sp / t).exp() + sn.iter().map(|x| (x / t).exp()).sum::<f64>()).ln()
                    }
                    LossKind::Bsl => {
                        -sp / t
                            + f64::from(c.power)
                                * sn.iter().map(|x| (x / t).exp()).sum::<f64>().ln()
                    }
                    LossKind::Ccl => {
                        1.0 - sp
                            + f64::from(c.negative_weight) / sn.len() as f64
                                * sn.iter()
                                    .map(|x| (x - f64::from(c.margin)).max(0.0))
                                    .sum::<f64>()
                    }
                    LossKind::Bpr => unreachable!(),
                };
                let fit = match &mf.teacher {
                    None => own,
                    Some(teacher) => {
                        let d = teacher.dim;
                        let row = |t: &[f32], r: u32| unit(&t[r as usize * d..][..d]);
                        let tu = row(&teacher.users, s.user);
                        let mut t_scores = vec![cos(&tu, &row(&teacher.items, s.pos))];
                        let mut s_scores = vec![sp];
                        for (&j, &x) in negatives.iter().zip(&sn) {
                            t_scores.push(cos(&tu, &row(&teacher.items, j)));
                            s_scores.push(x);
                        }
                        let tau = f64::from(distill_temperature(c, &teacher.config));
                        let log_softmax = |v: &[f64]| -> Vec<f64> {
                            let z = v.iter().map(|x| (x / tau).exp()).sum::<f64>().ln();
                            v.iter().map(|x| x / tau - z).collect()
                        };
                        let q: Vec<f64> = log_softmax(&t_scores).iter().map(|x| x.exp()).collect();
                        let ce: f64 = q
                            .iter()
                            .zip(log_softmax(&s_scores))
                            .map(|(q, lp)| -q * lp)
                            .sum();
                        let a = f64::from(teacher.config.alpha);
                        a * own + (1.0 - a) * ce
                    }
                };
                let occ = sq(mf.users.row(s.user as usize)) + sq(mf.items.row(s.pos as usize));
                fit + l2 / 2.0 * occ
            })
            .sum::<f64>()
            / batch.len() as f64
            + l2 / 2.0
                * negatives
                    .iter()
                    .map(|&j| sq(mf.items.row(j as usize)))
                    .sum::<f64>()
                / batch.len() as f64
    }

    /// The gradient the step accumulates equals finite differences of [`reference`], for every
    /// cosine loss, with a user and an item repeated in the batch and a positive among the
    /// negatives.
    #[test]
    fn gradient_matches_finite_differences() {
        let batch = [
            Sample {
                user: 0,
                pos: 1,
                neg: 0,
            },
            Sample {
                user: 2,
                pos: 3,
                neg: 0,
            },
            Sample {
                user: 0,
                pos: 2,
                neg: 0,
            },
        ];
        let negatives = [0u32, 3, 4];
        let teachers = [
            None,
            Some(DistillConfig {
                alpha: 0.3,
                temperature: 1.5,
                ..DistillConfig::default()
            }),
        ];
        for (kind, config) in [LossKind::Ssm, LossKind::Bsl, LossKind::Ccl]
            .into_iter()
            .flat_map(|k| teachers.iter().map(move |t| (k, *t)))
        {
            let c = LossConfig {
                temperature: 0.3,
                power: 1.4,
                margin: -0.2,
                negative_weight: 2.0,
                ..LossConfig::defaults(kind)
            };
            let users = table(3, 5, 1).with_mask(vec![1; 15]);
            let items = table(5, 5, 2).with_mask(vec![1; 25]);
            let teacher_config = config;
            let config = StepConfig {
                lr: 0.0,
                l2: 0.05,
                ..StepConfig::default()
            };
            let mut mf = Mf::new(users, items, config, 2);
            mf.teacher = teacher_config.map(|config| Teacher {
                dim: 5,
                users: crate::trainer::normalised(&table(3, 5, 7).w, 5),
                items: crate::trainer::normalised(&table(5, 5, 8).w, 5),
                config,
            });
            let start = mf.clone();
            mf.step_contrastive(&batch, &negatives, &c, true);
            let h = 1e-3f32;
            for (is_user, acc) in [
                (true, mf.users.acc.clone().unwrap()),
                (false, mf.items.acc.clone().unwrap()),
            ] {
                for (k, &got) in acc.iter().enumerate() {
                    let mut up = start.clone();
                    let mut down = start.clone();
                    let (u, d) = if is_user {
                        (&mut up.users.w[k], &mut down.users.w[k])
                    } else {
                        (&mut up.items.w[k], &mut down.items.w[k])
                    };
                    *u += h;
                    *d -= h;
                    let fd = (reference(&up, &batch, &negatives, &c)
                        - reference(&down, &batch, &negatives, &c))
                        / (2.0 * f64::from(h));
                    assert!(
                        (f64::from(got) - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                        "{kind:?} {teacher_config:?} {} weight {k}: {got} vs {fd}",
                        if is_user { "user" } else { "item" }
                    );
                }
            }
        }
    }

    /// The step gives the same tables with one thread or several.
    #[test]
    fn threads_do_not_change_the_result() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut mf = Mf::new(
                    table(300, 16, 1),
                    table(400, 16, 2),
                    StepConfig::default(),
                    threads,
                );
                let batch: Vec<Sample> = (0..200u32)
                    .map(|k| Sample {
                        user: (k * 7) % 300,
                        pos: (k * 13) % 400,
                        neg: 0,
                    })
                    .collect();
                let negatives: Vec<u32> = (0..150u32).map(|k| (k * 31) % 400).collect();
                let c = LossConfig::defaults(LossKind::Ssm);
                let l = mf.step_contrastive(&batch, &negatives, &c, false);
                (l, mf.users.w, mf.items.w)
            })
        };
        assert_eq!(run(1), run(3));
    }
}
