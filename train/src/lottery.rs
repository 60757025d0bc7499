//! Lottery tickets: iterative magnitude pruning with rewinding (Frankle and Carbin, ICLR 2019;
//! rewinding to an early step rather than to the initial weights, Frankle et al., *Linear Mode
//! Connectivity and the Lottery Ticket Hypothesis*, ICML 2020), beside dynamic sparse training.
//!
//! Round 0 trains the dense model with the loss's dense settings (exactly what `--density 1`
//! trains) and keeps a copy of both tables, weights and Adam moments, at the rewind step. Each
//! of the `rounds` rounds that follow keeps the largest weights of the previous round's
//! result, over both tables together (one global ranking, each weight's magnitude divided by
//! its row's norm to the power `prune_balance`, as dynamic sparse training prunes), so that
//! round `r` keeps `density^(r / rounds)` of the weights and the last exactly the budget of
//! `density` ([`crate::budget`]). A round rewinds the survivors to the copy (everything else is
//! zero) and trains from the rewind step to the end of the schedule with the mask fixed: the
//! same samples, negatives and learning rates as the dense run at the same steps. With
//! distillation, round 0's model is the teacher of every round (unless one is given).

use std::time::Instant;

use crate::data::Dataset;
use crate::error::{Result, TrainError};
use crate::mask::divisor;
use crate::model::{Mf, Table, Teacher};
use crate::trainer::{
    self, Event, RawState, StepPlan, TeacherLog, TrainOptions, Trained, budget, run_steps,
    teacher_options, written,
};
use crate::validate::Metrics;

/// How a sparse model reaches its budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sparsify {
    /// Dynamic sparse training: a fixed budget from the first step, pruned and regrown
    /// (see [`crate::mask`]).
    #[default]
    Dst,
    /// Lottery tickets: train dense, prune by magnitude, rewind, retrain, over several rounds
    /// (see the module docs).
    Lottery(LotteryConfig),
}

impl Sparsify {
    /// `dst` or `lottery`.
    pub fn name(self) -> &'static str {
        match self {
            Sparsify::Dst => "dst",
            Sparsify::Lottery(_) => "lottery",
        }
    }
}

/// The settings of lottery tickets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LotteryConfig {
    /// Pruning rounds after the dense round 0 (each prunes the same fraction).
    pub rounds: usize,
    /// The step whose weights the survivors are rewound to (0: the initial weights; `None`:
    /// the end of the first epoch).
    pub rewind_step: Option<u64>,
}

impl Default for LotteryConfig {
    fn default() -> Self {
        LotteryConfig {
            rounds: 3,
            rewind_step: None,
        }
    }
}

/// Most rounds [`LotteryConfig::rounds`] may ask for.
pub const MAX_ROUNDS: usize = 30;

/// The record of one round.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundLog {
    /// 0 for the dense round.
    pub round: usize,
    /// Active weights in both tables during the round.
    pub active: usize,
    /// Their fraction of all weights.
    pub density: f64,
    /// Wall seconds of the round's steps.
    pub seconds: f64,
    /// The round's last validation, when measured.
    pub validation: Option<Metrics>,
}

/// The active weights of each round after the dense one, for `users + items` rows of width
/// `dim` and a final `density`: `density^(r / rounds)` of them in round `r`, the last exactly
/// [`budget`]`(.., density)`; never increasing.
pub fn round_budgets(
    users: usize,
    items: usize,
    dim: usize,
    density: f64,
    rounds: usize,
) -> Vec<usize> {
    let last = budget(users, items, dim, density);
    let mut out: Vec<usize> = (1..=rounds)
        .map(|r| budget(users, items, dim, density.powf(r as f64 / rounds as f64)).max(last))
        .collect();
    if let Some(end) = out.last_mut() {
        *end = last;
    }
    for r in 1..out.len() {
        out[r] = out[r].min(out[r - 1]);
    }
    out
}

/// The masks that keep the `keep` largest active weights of two tables together: a weight's
/// score is its magnitude divided by its row's norm to the power `balance` (0: plain
/// magnitude, 1: relative to its row), ties broken by table, row and column. Keeps every
/// active weight when there are no more than `keep`.
pub fn magnitude_masks(tables: [&Table; 2], keep: usize, balance: f32) -> [Vec<u8>; 2] {
    // (score, table, position in the table)
    let mut candidates: Vec<(f32, u8, usize)> = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        let dim = table.dim;
        for r in 0..table.rows {
            let row = table.row(r);
            let div = divisor(row.iter().map(|x| x * x).sum(), balance);
            for (c, &w) in row.iter().enumerate() {
                let k = r * dim + c;
                if table.active.as_ref().is_none_or(|a| a[k] != 0) {
                    candidates.push((w.abs() / div, t as u8, k));
                }
            }
        }
    }
    if candidates.len() > keep {
        if keep == 0 {
            candidates.clear();
        } else {
            candidates.select_nth_unstable_by(keep - 1, |a, b| {
                b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2)))
            });
            candidates.truncate(keep);
        }
    }
    let mut masks = [vec![0u8; tables[0].w.len()], vec![0u8; tables[1].w.len()]];
    for (_, t, k) in candidates {
        masks[t as usize][k] = 1;
    }
    masks
}

/// `snapshot` (weights and Adam moments) with the mask `active`: every weight outside it, and
/// its moments, zero.
pub fn rewound(snapshot: &Table, active: Vec<u8>) -> Table {
    let mut table = Table {
        active: None,
        acc: None,
        count: None,
        ..snapshot.clone()
    };
    for (k, &a) in active.iter().enumerate() {
        if a == 0 {
            table.m[k] = 0.0;
            table.v[k] = 0.0;
        }
    }
    table.with_mask(active)
}

/// Trains a sparse model by lottery tickets (see the module docs); `given` is the teacher of
/// a distillation run, when one was read from a file.
pub(crate) fn train(
    data: &Dataset,
    options: &TrainOptions,
    config: LotteryConfig,
    given: Option<Teacher>,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Trained> {
    let (nu, ni, dim) = (data.users.len(), data.items.len(), options.dim);
    let dense_options = TrainOptions {
        sparsify: Sparsify::Dst,
        ..teacher_options(options)
    };
    let steps_per_epoch = data.train.len().div_ceil(options.batch_size) as u64;
    let total_steps = steps_per_epoch * options.epochs as u64;
    let rewind = config.rewind_step.unwrap_or(steps_per_epoch);
    if rewind >= total_steps {
        return Err(TrainError::Options(format!(
            "--rewind-step {rewind} must come before the last step ({total_steps}: {} epochs of \
             {steps_per_epoch} steps)",
            options.epochs
        )));
    }
    let setup = Instant::now();
    let mut dense = trainer::initial_model(data, &dense_options)?;
    let setup_seconds = setup.elapsed().as_secs_f64();
    let all = (nu + ni) * dim;
    observe(Event::Round {
        round: 0,
        rounds: config.rounds,
        active: all,
    });
    observe(Event::Start { total_steps });
    let run = run_steps(
        &mut dense,
        &StepPlan {
            snapshot_at: Some(rewind),
            ..StepPlan::new(data, &dense_options)
        },
        observe,
    );
    let Some([user_snapshot, item_snapshot]) = run.snapshot else {
        return Err(TrainError::Options(format!(
            "--rewind-step {rewind} was not reached"
        )));
    };
    let mut rounds = vec![RoundLog {
        round: 0,
        active: all,
        density: 1.0,
        seconds: run.train_seconds,
        validation: run.log.iter().rev().find_map(|l| l.validation),
    }];
    let mut train_seconds = run.train_seconds;
    let mut samples = run.samples;
    let cosine = options.loss.kind.is_cosine();
    let (mut teacher, teacher_log) = match (options.distill, given) {
        (Some(_), Some(teacher)) => (
            Some(teacher),
            Some(TeacherLog {
                seconds: 0.0,
                validation: None,
                options: dense_options.clone(),
            }),
        ),
        (Some(distill), None) => {
            let teacher = Teacher {
                dim,
                users: written(&dense.users, cosine),
                items: written(&dense.items, cosine),
                config: distill,
            };
            (Some(teacher), None)
        }
        (None, _) => (None, None),
    };
    let dense_steps = dense.steps;
    let mut previous = [dense.users, dense.items];
    let mut last_log = run.log;
    let mut last_steps = dense_steps;
    for (r, &keep) in round_budgets(nu, ni, dim, options.density, config.rounds)
        .iter()
        .enumerate()
    {
        let [user_mask, item_mask] =
            magnitude_masks([&previous[0], &previous[1]], keep, options.prune_balance);
        let mut mf = Mf::new(
            rewound(&user_snapshot, user_mask),
            rewound(&item_snapshot, item_mask),
            options.step,
            options.threads,
        );
        mf.steps = rewind;
        mf.teacher = teacher.take();
        observe(Event::Round {
            round: r + 1,
            rounds: config.rounds,
            active: keep,
        });
        observe(Event::Start { total_steps });
        let run = run_steps(
            &mut mf,
            &StepPlan {
                first_step: rewind + 1,
                ..StepPlan::new(data, options)
            },
            observe,
        );
        train_seconds += run.train_seconds;
        samples += run.samples;
        rounds.push(RoundLog {
            round: r + 1,
            active: mf.users.active_count() + mf.items.active_count(),
            density: keep as f64 / all.max(1) as f64,
            seconds: run.train_seconds,
            validation: run.log.iter().rev().find_map(|l| l.validation),
        });
        teacher = mf.teacher.take();
        last_steps = mf.steps;
        previous = [mf.users, mf.items];
        last_log = run.log;
    }
    let [users, items] = previous;
    let last = RawState {
        users,
        items,
        steps: last_steps,
    };
    Ok(Trained {
        train_seconds,
        samples,
        rounds,
        ..trainer::finish(data, options, last, last_log, setup_seconds, teacher_log)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{LossConfig, LossKind};
    use crate::synthetic::{SyntheticSpec, generate};

    #[test]
    fn round_budgets_fall_geometrically_to_the_exact_budget() {
        let b = round_budgets(300, 200, 16, 0.1, 3);
        assert_eq!(b.len(), 3);
        assert_eq!(b[2], budget(300, 200, 16, 0.1));
        // 0.1^(1/3) = 0.464, 0.1^(2/3) = 0.215.
        assert_eq!(b[0], budget(300, 200, 16, 0.1f64.powf(1.0 / 3.0)));
        assert_eq!(b[1], budget(300, 200, 16, 0.1f64.powf(2.0 / 3.0)));
        assert!(b[0] > b[1] && b[1] > b[2]);
        assert_eq!(round_budgets(300, 200, 16, 0.05, 1), vec![400]);
    }

    fn table(rows: usize, dim: usize, w: &[f32], active: Option<Vec<u8>>) -> Table {
        let t = Table::dense(rows, dim, w.to_vec());
        match active {
            Some(a) => t.with_mask(a),
            None => t,
        }
    }

    #[test]
    fn magnitude_masks_keep_the_largest_active_weights_of_both_tables() {
        let users = table(2, 2, &[0.5, -3.0, 0.1, 2.0], None);
        // The item table's 9.0 is inactive: never kept.
        let items = table(1, 2, &[9.0, -1.0], Some(vec![0, 1]));
        let [u, i] = magnitude_masks([&users, &items], 3, 0.0);
        assert_eq!((u, i), (vec![0, 1, 0, 1], vec![0, 1]));
        let [u, i] = magnitude_masks([&users, &items], 0, 0.0);
        assert_eq!(u.iter().chain(&i).filter(|&&a| a != 0).count(), 0);
        // More room than active weights: every active one stays.
        let [u, i] = magnitude_masks([&users, &items], 10, 0.0);
        assert_eq!((u, i), (vec![1, 1, 1, 1], vec![0, 1]));
        // Relative to the row's norm the item row's -1.0 (norm 1) comes first, then the second
        // user row's 2.0 (0.9988 of its norm) before the first row's -3.0 (0.986).
        let [u, i] = magnitude_masks([&users, &items], 2, 1.0);
        assert_eq!((u, i), (vec![0, 0, 0, 1], vec![0, 1]));
    }

    #[test]
    fn rewinding_restores_the_copy_on_surviving_weights_and_zeroes_the_rest() {
        let mut copy = table(1, 3, &[0.25, -0.5, 0.75], None);
        copy.m = vec![1.0, 2.0, 3.0];
        copy.v = vec![4.0, 5.0, 6.0];
        let t = rewound(&copy, vec![1, 0, 1]);
        assert_eq!(t.w, vec![0.25, 0.0, 0.75]);
        assert_eq!(t.m, vec![1.0, 0.0, 3.0]);
        assert_eq!(t.v, vec![4.0, 0.0, 6.0]);
        assert_eq!(t.active, Some(vec![1, 0, 1]));
    }

    fn options(epochs: usize) -> TrainOptions {
        let mut o = TrainOptions {
            dim: 16,
            epochs,
            seed: 7,
            threads: 1,
            lr_end: 1.0,
            ..TrainOptions::for_loss(
                1.0,
                LossConfig {
                    negatives: 64,
                    ..LossConfig::defaults(LossKind::Bsl)
                },
            )
        };
        o.batch_size = 512;
        o
    }

    /// The copy taken at the rewind step is the dense run at that step, bit for bit (weights and
    /// moments): a run of exactly that many steps ends there (with a constant learning rate,
    /// so that the schedules agree). A round that keeps every weight and resumes from the copy
    /// ends where the dense run ends: the same samples, negatives and learning rates.
    #[test]
    fn the_copy_is_the_dense_run_at_the_rewind_step_and_a_round_resumes_its_schedule() {
        let data = generate(&SyntheticSpec {
            users: 200,
            items: 150,
            ..SyntheticSpec::default()
        });
        let steps_per_epoch = data.train.len().div_ceil(512) as u64;
        let long = options(3);
        let mut mf = trainer::initial_model(&data, &long).unwrap();
        let plan = |o, first_step, snapshot_at| StepPlan {
            first_step,
            snapshot_at,
            ..StepPlan::new(&data, o)
        };
        let run = run_steps(&mut mf, &plan(&long, 1, Some(steps_per_epoch)), &mut |_| {});
        let [users, items] = run.snapshot.expect("copy taken");
        let short = options(1);
        let mut first = trainer::initial_model(&data, &short).unwrap();
        run_steps(&mut first, &plan(&short, 1, None), &mut |_| {});
        for (copy, reference) in [(&users, &first.users), (&items, &first.items)] {
            assert!(copy.w == reference.w && copy.m == reference.m && copy.v == reference.v);
        }
        assert!(users.w != mf.users.w, "training went on after the copy");

        let all = |t: &Table| vec![1u8; t.w.len()];
        let mut resumed = Mf::new(
            rewound(&users, all(&users)),
            rewound(&items, all(&items)),
            long.step,
            1,
        );
        resumed.steps = steps_per_epoch;
        let run = run_steps(
            &mut resumed,
            &plan(&long, steps_per_epoch + 1, None),
            &mut |_| {},
        );
        assert_eq!(run.log.len(), 2, "epochs 2 and 3");
        assert_eq!(resumed.steps, mf.steps);
        assert!(resumed.users.w == mf.users.w && resumed.items.w == mf.items.w);
    }
}
