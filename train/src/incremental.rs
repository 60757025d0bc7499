//! Incremental training (`train --resume`): a checkpointed model continued on new interactions
//! only, in the way of Meta's *Adaptive Dense-to-Sparse* and LinkedIn's sequential Bayesian
//! updates (*Lambda Learner*), see `docs/INCREMENTAL.md`.
//!
//! 1. **Rows.** The new log's users and items keep their rows; ids the model has never seen get
//!    new rows at the end ([`align`]), so row numbers of a file's earlier version stay valid.
//! 2. **Dense master.** The dense master (for a dense model, the model itself) keeps training,
//!    on the new interactions (and, with [`with_replay`], a sample of the earlier ones of the
//!    users who came back), from its weights and Adam state; only rows with new
//!    interactions move: every other row, and its optimiser state, stays bit for bit. An
//!    optional quadratic prior centred on the previous weights, weighted by a diagonal
//!    curvature (Adam's second moments over their mean) and `prior_strength`, holds them near
//!    what the old data taught (off by default: see [`ResumeOptions`]).
//! 3. **Masks.** The sparse model's masks adapt in its own space, to its own weights and the
//!    gradients of the new interactions: new rows open in full for the first half of the
//!    update and are then pruned to the budget the larger tables add; in the earlier rows with
//!    new interactions, dynamic sparse training runs over the update as in a first training
//!    (`mask_fraction` of their active weights pruned and regrown after the first epoch,
//!    decaying on a cosine), and at the middle up to `churn` of them are swapped once more.
//! 4. **Sparse model.** The sparse model trains on the new interactions, distilled from the
//!    updated master, under the same prior and row rule.
//!
//! The seed of an update is derived from the first run's seed and the update's number: the
//! same checkpoint and log give the same result on any number of threads.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use pocketrec::IdKind;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{Checkpoint, curvature};
use crate::data::{Dataset, IdSpace, UserItems};
use crate::error::{Result, TrainError};
use crate::mask::{self, RegrowConfig};
use crate::model::{Anchor, Mf, StepConfig, Table, TableAnchor, Teacher};
use crate::random::normal;
use crate::sample::mix;
use crate::schedule::Schedule;
use crate::trainer::{
    self, DstPlan, Event, RawState, StepPlan, TeacherLog, TrainOptions, Trained, budget, run_steps,
    teacher_options, written,
};

/// The learning rate of an update that replays earlier interactions, as a multiple of the
/// first run's ([`ResumeOptions::lr_scale`]; `train --resume --replay` uses it unless `--lr`
/// is given). Chosen on the two validation logs (`docs/INCREMENTAL.md`): with the history in
/// every batch, a larger step moves the warm start further without forgetting: on Gowalla's
/// validation log, updates of 10 epochs went from 80.5 % of retraining's Recall@20 at the
/// first run's rate to 83.0 % at twice it, 85.0 % at 4 times and 85.1 % at 8 times.
pub const REPLAY_LR_SCALE: f32 = 4.0;

/// The settings of an update; the rest comes from the checkpoint. The defaults (20 epochs, no
/// prior, churn 0.05, mask fraction 0.5) were chosen with `bench/incremental.py` on two
/// validation logs, a drifting one of seed 7 and Gowalla's training interactions in a random
/// order of seed 11, for the best worst case of the two (`docs/INCREMENTAL.md`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResumeOptions {
    /// Passes over the new interactions.
    pub epochs: usize,
    /// Weight of the quadratic prior on the previous weights (0: none).
    pub prior_strength: f32,
    /// Most mask swaps in one update, as a fraction of the active weights of the earlier rows
    /// with new interactions.
    pub churn: f64,
    /// Dynamic sparse training over the update, restricted to the earlier rows with new
    /// interactions: the fraction of their active weights that the first mask update (after
    /// the first epoch) prunes and regrows, decaying on a cosine to none at the run's
    /// `update_end`, as a first training does (0: the masks move only by the churn swap).
    pub mask_fraction: f64,
    /// Learning rate as a fraction of the first run's (the model's and its dense master's).
    pub lr_scale: f32,
    /// Learning rate at the update's last step, as a fraction of its first.
    pub lr_end: f32,
    /// Fraction of the update after which the learning rate decays (on a cosine) to `lr_end`.
    pub lr_decay_start: f64,
    /// Worker threads (results do not depend on it).
    pub threads: usize,
    /// Validate every this many epochs (0: never); needs a test set.
    pub eval_every: usize,
    /// Users drawn for validation (0: all).
    pub eval_users: usize,
    /// Cut-off of the validation metrics.
    pub k: usize,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        ResumeOptions {
            epochs: 20,
            prior_strength: 0.0,
            churn: 0.05,
            mask_fraction: 0.5,
            lr_scale: 1.0,
            lr_end: TrainOptions::default().lr_end,
            lr_decay_start: TrainOptions::default().lr_decay_start,
            threads: trainer::default_threads(),
            eval_every: 0,
            eval_users: 0,
            k: 20,
        }
    }
}

impl ResumeOptions {
    /// The defaults of an update that replays earlier interactions: [`Default`]'s, at
    /// [`REPLAY_LR_SCALE`] times the first run's learning rate.
    pub fn replaying() -> Self {
        ResumeOptions {
            lr_scale: REPLAY_LR_SCALE,
            ..ResumeOptions::default()
        }
    }
}

/// What an update changed, for the report (and the size of a patch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowChanges {
    /// User rows before the update.
    pub old_users: usize,
    /// Item rows before the update.
    pub old_items: usize,
    /// Users new in this update (rows at the end).
    pub new_users: usize,
    /// Items new in this update.
    pub new_items: usize,
    /// Earlier user rows whose written weights changed.
    pub changed_users: usize,
    /// Earlier item rows whose written weights changed.
    pub changed_items: usize,
    /// Mask swaps (each drops one weight and activates another).
    pub mask_swaps: usize,
}

impl RowChanges {
    /// Rows an update ships (changed and new) over all rows after it.
    pub fn changed_fraction(&self) -> f64 {
        let changed = self.changed_users + self.changed_items + self.new_users + self.new_items;
        let total = self.old_users + self.old_items + self.new_users + self.new_items;
        changed as f64 / total.max(1) as f64
    }
}

/// The result of [`resume`].
#[derive(Clone, Debug)]
pub struct Resumed {
    /// The updated model. As for a model trained from scratch, a sparse model's
    /// `train_seconds` and `samples` are its own; its dense master's time is `teacher.seconds`.
    pub trained: Trained,
    /// The checkpoint after the update.
    pub checkpoint: Checkpoint,
    /// What changed.
    pub changes: RowChanges,
}

/// `data` re-rowed to continue a model over `users` and `items`: their rows first, in their
/// order, then the ids new to them, sorted. Integer ids joining a model with string ids are
/// read as strings; string ids joining a model with integer ids are refused (`path` names the
/// log).
pub fn align(data: &Dataset, users: &IdSpace, items: &IdSpace, path: &Path) -> Result<Dataset> {
    let (user_space, user_row) = extend_ids(&data.users, users, "user", path)?;
    let (item_space, item_row) = extend_ids(&data.items, items, "item", path)?;
    let remap = |lists: &UserItems| {
        let pairs: Vec<(u32, u32)> = lists
            .pairs()
            .map(|(u, i)| (user_row[u as usize], item_row[i as usize]))
            .collect();
        UserItems::from_pairs(user_space.len(), &pairs)
    };
    Ok(Dataset {
        train: remap(&data.train),
        test: data.test.as_ref().map(remap),
        users: user_space,
        items: item_space,
    })
}

/// `data` (new interactions aligned to `checkpoint` by [`align`]) with earlier interactions
/// to train on again beside them (`--replay`): those of `replay` (a log read as any) whose
/// users have new interactions in `data`, re-rowed to `data`'s rows. With `share`, only
/// `share` times as many of them as `data` has (all of them if there are fewer), drawn
/// without replacement from the checkpoint's seed and the update's number, so that the same
/// update replays the same sample. `path` names the replayed log in messages.
///
/// Replay keeps what the earlier periods taught, at the cost of more steps per epoch. Only
/// returning users' interactions are replayed: their rows move in the update anyway, so the
/// rows that change are theirs and the items they name; replaying every user's changed
/// nearly every row and did worse on a drifting log (docs/INCREMENTAL.md measures both).
pub fn with_replay(
    data: &Dataset,
    replay: &Dataset,
    share: Option<f64>,
    checkpoint: &Checkpoint,
    path: &Path,
) -> Result<Dataset> {
    let replay = align(replay, &data.users, &data.items, path)?;
    // The earlier interactions of the users who came back (rows with new interactions): an
    // update moves their rows anyway, and the others' stay as they were.
    let returning =
        |u: u32| (u as usize) < data.train.users() && !data.train.items(u as usize).is_empty();
    let mut old: Vec<(u32, u32)> = replay
        .train
        .pairs()
        .filter(|&(u, _)| returning(u))
        .collect();
    if let Some(share) = share {
        if !(share > 0.0 && share.is_finite()) {
            return Err(TrainError::Options(format!(
                "--replay-share must be a positive number, got {share}"
            )));
        }
        let want = ((share * data.train.len() as f64).round() as usize).min(old.len());
        let seed = mix(checkpoint.info.seed ^ mix((checkpoint.info.updates + 1) ^ 0x7265_706c));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // A partial Fisher-Yates shuffle: the first `want` are a uniform sample.
        for k in 0..want {
            let j = rng.random_range(k..old.len());
            old.swap(k, j);
        }
        old.truncate(want);
    }
    // Returning users have rows in `data`; items that only the replayed log names keep rows
    // after `data`'s (in `align`'s order) if a replayed interaction names them.
    let mut kept = vec![false; replay.items.len()];
    kept[..data.items.len()].fill(true);
    for &(_, i) in &old {
        kept[i as usize] = true;
    }
    let rows: Vec<u32> = (0..kept.len() as u32)
        .filter(|&r| kept[r as usize])
        .collect();
    let mut item_row = vec![u32::MAX; kept.len()];
    for (new, &r) in rows.iter().enumerate() {
        item_row[r as usize] = new as u32;
    }
    let pairs: Vec<(u32, u32)> = data
        .train
        .pairs()
        .chain(old.into_iter().map(|(u, i)| (u, item_row[i as usize])))
        .collect();
    Ok(Dataset {
        train: UserItems::from_pairs(data.users.len(), &pairs),
        test: data.test.clone(),
        users: data.users.clone(),
        items: replay.items.select(&rows),
    })
}

/// `known`'s ids followed by `read`'s new ones (sorted), and the row of each of `read`'s rows.
fn extend_ids(
    read: &IdSpace,
    known: &IdSpace,
    what: &str,
    path: &Path,
) -> Result<(IdSpace, Vec<u32>)> {
    // `read`'s ids (and strings) in `known`'s kind.
    let (ids, strings): (Vec<u64>, Option<Vec<String>>) = match (known.kind, read.kind) {
        (a, b) if a == b => (read.ids.clone(), read.strings.clone()),
        (IdKind::StringHash, IdKind::Integer) => {
            let strings: Vec<String> = read.ids.iter().map(u64::to_string).collect();
            let ids = strings.iter().map(|s| pocketrec::string_id(s)).collect();
            (ids, Some(strings))
        }
        _ => {
            let example = read
                .strings
                .as_ref()
                .and_then(|s| s.first().cloned())
                .unwrap_or_default();
            return Err(TrainError::parse(
                path,
                format!(
                    "{what} ids are strings (such as {example:?}), but the model's are integers"
                ),
            ));
        }
    };
    let index: HashMap<u64, u32> = known
        .ids
        .iter()
        .enumerate()
        .map(|(r, &id)| (id, r as u32))
        .collect();
    let mut new: Vec<usize> = (0..ids.len())
        .filter(|&r| !index.contains_key(&ids[r]))
        .collect();
    new.sort_by_key(|&r| ids[r]);
    let mut space = known.clone();
    let mut row_of: Vec<u32> = ids
        .iter()
        .map(|id| index.get(id).copied().unwrap_or(u32::MAX))
        .collect();
    for r in new {
        row_of[r] = space.ids.len() as u32;
        space.ids.push(ids[r]);
        if let (Some(all), Some(read)) = (space.strings.as_mut(), strings.as_ref()) {
            all.push(read[r].clone());
        }
    }
    Ok((space, row_of))
}

/// `table` grown to `rows` rows: new rows from `init` (a sparse table's new rows get an empty
/// mask), with zero optimiser state.
fn grow(table: &Table, rows: usize, mut init: impl FnMut() -> f32) -> Table {
    let dim = table.dim;
    let extra = (rows - table.rows) * dim;
    let mut out = table.clone();
    out.rows = rows;
    out.w.extend((0..extra).map(|_| init()));
    out.m.resize(rows * dim, 0.0);
    out.v.resize(rows * dim, 0.0);
    if let Some(active) = out.active.as_mut() {
        active.resize(rows * dim, 0);
        let start = table.rows * dim;
        out.w[start..].fill(0.0);
    }
    if let Some(acc) = out.acc.as_mut() {
        acc.resize(rows * dim, 0.0);
    }
    if let Some(count) = out.count.as_mut() {
        count.resize(rows * dim, 0);
    }
    out
}

/// Rows of `lists` (users) and of the items they name that have an interaction.
fn open_rows(lists: &UserItems, items: usize) -> (Vec<bool>, Vec<bool>) {
    let users: Vec<bool> = (0..lists.users())
        .map(|u| !lists.items(u).is_empty())
        .collect();
    let mut open_items = vec![false; items];
    for (_, i) in lists.pairs() {
        open_items[i as usize] = true;
    }
    (users, open_items)
}

/// The prior of one table: its weights before the update, their curvature, its open rows.
fn table_anchor(table: &Table, open: Vec<bool>) -> TableAnchor {
    TableAnchor {
        previous: table.w.clone(),
        curvature: curvature(&table.v),
        open,
    }
}

/// Opens the rows after `old_rows` of a sparse table pair in full (every weight active, normal
/// initial weights of `init_std`) for the first half of an update, so that their gradients
/// show which columns matter: the sparse model's space is its own, so new rows can start
/// neither from the master's columns nor from random ones (a random column rarely meets the
/// few active columns of the rows it must score against). [`prune_new_rows`] then keeps their
/// share of the budget.
fn open_new_rows(tables: [&mut Table; 2], old_rows: [usize; 2], init_std: f32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x0069_6e69_7473));
    for (t, table) in tables.into_iter().enumerate() {
        let start = old_rows[t] * table.dim;
        if let Some(active) = table.active.as_mut() {
            active[start..].fill(1);
        }
        for w in &mut table.w[start..] {
            *w = init_std * normal(&mut rng);
        }
    }
}

/// Keeps, in the rows after `old_rows`, the budget the larger tables add (`target` active
/// weights in all), spread evenly over them, on each row's largest weights; the others are
/// zeroed with their optimiser state.
fn prune_new_rows(tables: [&mut Table; 2], old_rows: [usize; 2], target: usize, seed: u64) {
    let dim = tables[0].dim;
    let new_rows = [tables[0].rows - old_rows[0], tables[1].rows - old_rows[1]];
    let old_active: usize = tables
        .iter()
        .zip(old_rows)
        .map(|(t, old)| {
            t.active
                .as_deref()
                .map_or(0, |a| a[..old * dim].iter().filter(|&&x| x != 0).count())
        })
        .sum();
    let extra = target.saturating_sub(old_active);
    let counts = mask::uniform_counts(new_rows[0] + new_rows[1], dim, extra, seed);
    let mut next = 0;
    for (t, table) in tables.into_iter().enumerate() {
        let start = old_rows[t] * dim;
        let magnitudes: Vec<f32> = table.w[start..].iter().map(|x| x.abs()).collect();
        let mask = mask::top_mask(dim, &counts[next..next + new_rows[t]], &magnitudes);
        next += new_rows[t];
        for (k, &a) in mask.iter().enumerate() {
            if a == 0 {
                table.w[start + k] = 0.0;
                table.m[start + k] = 0.0;
                table.v[start + k] = 0.0;
            }
        }
        if let Some(active) = table.active.as_mut() {
            active[start..].copy_from_slice(&mask);
        }
    }
}

/// Trains one model of an update: `mf` on `data` under its prior, `epochs` passes. With
/// `swap`, the first half of the steps also accumulates the gradients, `swap` is called with
/// the model in the middle (the mask update), and the second half follows.
fn train_update(
    mf: &mut Mf,
    data: &Dataset,
    options: &TrainOptions,
    swap: Option<&mut dyn FnMut(&mut Mf)>,
    dst: Option<&DstPlan>,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> trainer::StepsDone {
    let steps_per_epoch = data.train.len().div_ceil(options.batch_size) as u64;
    let total = steps_per_epoch * options.epochs as u64;
    observe(Event::Start { total_steps: total });
    let adam_offset = mf.steps;
    let plan = |first_step, last_step, accumulate| StepPlan {
        first_step,
        last_step,
        accumulate,
        adam_offset,
        dst,
        ..StepPlan::new(data, options)
    };
    match swap {
        Some(swap) if total >= 2 => {
            let half = total / 2;
            let first = run_steps(mf, &plan(1, Some(half), true), observe);
            swap(mf);
            let second = run_steps(mf, &plan(half + 1, None, false), observe);
            trainer::StepsDone {
                log: first.log.into_iter().chain(second.log).collect(),
                train_seconds: first.train_seconds + second.train_seconds,
                samples: first.samples + second.samples,
                snapshot: None,
            }
        }
        Some(swap) => {
            let run = run_steps(mf, &plan(1, None, false), observe);
            swap(mf);
            run
        }
        None => run_steps(mf, &plan(1, None, false), observe),
    }
}

/// Rows of two written tables (`dim` wide) that differ, among the first `rows`.
fn differing_rows(old: &[f32], new: &[f32], dim: usize, rows: usize) -> usize {
    (0..rows)
        .filter(|&r| {
            let a = &old[r * dim..(r + 1) * dim];
            let b = &new[r * dim..(r + 1) * dim];
            a.iter().zip(b).any(|(x, y)| x.to_bits() != y.to_bits())
        })
        .count()
}

/// Continues `checkpoint` on `data` (aligned to it by [`align`]; `data.train` holds the new
/// interactions, and any replayed ones) as the module docs say.
pub fn resume(
    checkpoint: &Checkpoint,
    data: &Dataset,
    resume: &ResumeOptions,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Resumed> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(resume.threads.max(1))
        .build()
        .map_err(|e| {
            TrainError::Options(format!("cannot start {} threads: {e}", resume.threads))
        })?;
    pool.install(|| resume_in_pool(checkpoint, data, resume, observe))
}

fn resume_in_pool(
    checkpoint: &Checkpoint,
    data: &Dataset,
    resume: &ResumeOptions,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Resumed> {
    let info = &checkpoint.info;
    let (dim, old_users, old_items) = (info.dim, checkpoint.users.len(), checkpoint.items.len());
    if data.users.ids.get(..old_users) != Some(&checkpoint.users.ids[..])
        || data.items.ids.get(..old_items) != Some(&checkpoint.items.ids[..])
    {
        return Err(TrainError::Options(
            "the new interactions are not aligned to the checkpoint's rows (see incremental::align)"
                .into(),
        ));
    }
    if !(resume.prior_strength >= 0.0 && resume.prior_strength.is_finite()) {
        return Err(TrainError::Options(format!(
            "--prior-strength must be >= 0, got {}",
            resume.prior_strength
        )));
    }
    if !(0.0..=1.0).contains(&resume.mask_fraction) {
        return Err(TrainError::Options(format!(
            "--mask-fraction must be in [0, 1], got {}",
            resume.mask_fraction
        )));
    }
    if !(0.0..=1.0).contains(&resume.churn) {
        return Err(TrainError::Options(format!(
            "--churn must be in [0, 1], got {}",
            resume.churn
        )));
    }
    if resume.epochs == 0 || !(resume.lr_scale > 0.0 && resume.lr_scale.is_finite()) {
        return Err(TrainError::Options(
            "--epochs must be at least 1 and the learning rate positive".into(),
        ));
    }
    let update = info.updates + 1;
    let seed = mix(info.seed ^ mix(update ^ 0x7570_6461_7465));
    let loss = info
        .loss
        .config()
        .ok_or_else(|| TrainError::Options(format!("unknown loss {:?}", info.loss.kind)))?;
    let options = TrainOptions {
        dim,
        density: info.density,
        epochs: resume.epochs,
        seed,
        step: StepConfig {
            lr: info.lr * resume.lr_scale,
            l2: info.l2,
            ..StepConfig::default()
        },
        loss,
        init_std: info.init_std,
        prune_balance: info.prune_balance,
        distill: info.distill.map(Into::into),
        threads: resume.threads,
        eval_every: resume.eval_every,
        eval_users: resume.eval_users,
        k: resume.k,
        lr_end: resume.lr_end,
        lr_decay_start: resume.lr_decay_start,
        ..TrainOptions::for_loss(info.density, loss)
    };
    // The checks of a first training (the schedule given, and the checkpoint's settings).
    trainer::check(&options)?;
    let sparse = info.density < 1.0;
    let (nu, ni) = (data.users.len(), data.items.len());
    let (open_users, open_items) = open_rows(&data.train, ni);
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x0000_6772_6f77));
    let started = Instant::now();

    // The dense master (the model itself when dense).
    let master_before = match &checkpoint.master {
        Some(master) => master,
        None => &checkpoint.model,
    };
    let master_options = if sparse {
        TrainOptions {
            step: StepConfig {
                lr: teacher_options(&options).step.lr * resume.lr_scale,
                ..teacher_options(&options).step
            },
            lr_end: resume.lr_end,
            lr_decay_start: resume.lr_decay_start,
            ..teacher_options(&options)
        }
    } else {
        options.clone()
    };
    let std = info.init_std;
    let mut master = Mf::new(
        grow(&master_before.users, nu, || std * normal(&mut rng)),
        grow(&master_before.items, ni, || std * normal(&mut rng)),
        master_options.step,
        resume.threads,
    );
    master.steps = master_before.steps;
    master.anchor = Some(Anchor {
        users: table_anchor(&master_before.users, open_users.clone()),
        items: table_anchor(&master_before.items, open_items.clone()),
        strength: resume.prior_strength,
    });
    if sparse {
        observe(Event::TeacherStart);
    }
    let master_run = train_update(&mut master, data, &master_options, None, None, observe);
    master.anchor = None;
    let master_seconds = started.elapsed().as_secs_f64();

    let cosine = loss.kind.is_cosine();
    // The model's own run (as in a first training, a sparse model's steps and time are its
    // own; its master's time is the teacher's).
    let (model, model_run, teacher_log, swaps, master_state) = if sparse {
        let record = TeacherLog {
            seconds: master_seconds,
            validation: master_run.log.iter().rev().find_map(|l| l.validation),
            options: master_options.clone(),
        };
        observe(Event::TeacherDone(&record));
        let before = &checkpoint.model;
        let mut users = grow(&before.users, nu, || 0.0);
        let mut items = grow(&before.items, ni, || 0.0);
        for table in [&mut users, &mut items] {
            if let Some(acc) = table.acc.as_mut() {
                acc.fill(0.0);
            }
        }
        open_new_rows(
            [&mut users, &mut items],
            [old_users, old_items],
            info.init_std,
            seed,
        );
        let target = budget(nu, ni, dim, info.density);
        let mut student = Mf::new(users, items, options.step, resume.threads);
        student.steps = before.steps;
        student.anchor = Some(Anchor {
            users: table_anchor(&before.users, open_users.clone()),
            items: table_anchor(&before.items, open_items.clone()),
            strength: resume.prior_strength,
        });
        student.teacher = options.distill.map(|config| Teacher {
            dim,
            users: written(&master.users, cosine),
            items: written(&master.items, cosine),
            config,
        });
        // Mask swaps: a share of the active weights of the earlier rows with new interactions.
        let movable = |open: &[bool], old: usize| -> Vec<bool> {
            open.iter()
                .enumerate()
                .map(|(r, &o)| o && r < old)
                .collect()
        };
        let (movable_users, movable_items) = (
            movable(&open_users, old_users),
            movable(&open_items, old_items),
        );
        let open_active: usize = [
            (&student.users, &movable_users),
            (&student.items, &movable_items),
        ]
        .iter()
        .map(|&(t, movable)| {
            let active = t.active.as_deref().unwrap_or_default();
            active
                .chunks_exact(dim)
                .zip(movable)
                .filter(|&(_, &m)| m)
                .map(|(row, _)| row.iter().filter(|&&a| a != 0).count())
                .sum::<usize>()
        })
        .sum();
        let limit = (resume.churn * open_active as f64).floor() as usize;
        let regrow = RegrowConfig {
            prune_balance: info.prune_balance,
            ..RegrowConfig::default()
        };
        let mut swaps = 0;
        let mut swap = |mf: &mut Mf| {
            prune_new_rows(
                [&mut mf.users, &mut mf.items],
                [old_users, old_items],
                target,
                seed,
            );
            swaps = mask::prune_and_regrow_within(
                [&mut mf.users, &mut mf.items],
                limit,
                regrow,
                [&movable_users, &movable_items],
            )
            .moved;
        };
        let steps = data.train.len().div_ceil(options.batch_size) as u64;
        let dst = (resume.mask_fraction > 0.0).then(|| {
            DstPlan::within(
                Schedule::new(
                    steps * options.epochs as u64,
                    steps,
                    options.update_end,
                    resume.mask_fraction,
                ),
                regrow,
                open_active,
                [movable_users.clone(), movable_items.clone()],
            )
        });
        let run = train_update(
            &mut student,
            data,
            &options,
            Some(&mut swap as &mut dyn FnMut(&mut Mf)),
            dst.as_ref(),
            observe,
        );
        student.anchor = None;
        student.teacher = None;
        (
            RawState::from(student),
            run,
            Some(record),
            swaps,
            Some(RawState::from(master)),
        )
    } else {
        (RawState::from(master), master_run, None, 0, None)
    };
    let mut trained = Trained {
        train_seconds: model_run.train_seconds,
        samples: model_run.samples,
        ..trainer::finish(data, &options, model, model_run.log, 0.0, teacher_log)
    };
    trained.master = master_state.clone().map(Box::new);
    // The update folds users in as a model trained from scratch does: its files carry the
    // fold-in section, so that the device folds in new and changing users with the new items.
    trained.fold_in = trainer::choose_fold_in(&trained);

    // What changed, as written: the files' rows of the model before and after.
    let changes = RowChanges {
        old_users,
        old_items,
        new_users: nu - old_users,
        new_items: ni - old_items,
        changed_users: differing_rows(
            &written(&checkpoint.model.users, cosine),
            &trained.user_table,
            dim,
            old_users,
        ),
        changed_items: differing_rows(
            &written(&checkpoint.model.items, cosine),
            &trained.item_table,
            dim,
            old_items,
        ),
        mask_swaps: swaps,
    };
    let mut next_info = info.clone();
    next_info.updates = update;
    next_info.interactions += data.train.len() as u64;
    next_info.model_steps = trained.raw.steps;
    next_info.master_steps = master_state.as_ref().map(|m| m.steps);
    let next = Checkpoint {
        info: next_info,
        users: data.users.clone(),
        items: data.items.clone(),
        model: (*trained.raw).clone(),
        master: master_state,
    };
    Ok(Resumed {
        trained,
        checkpoint: next,
        changes,
    })
}

/// The checkpoint of a model trained from scratch ([`crate::train`]); errors when the run does
/// not keep what an update needs (a sparse model needs its dense master: lottery tickets and
/// a teacher read from a file are refused).
pub fn checkpoint_of(trained: &Trained, interactions: usize) -> Result<Checkpoint> {
    let options = &trained.options;
    let sparse = options.density < 1.0;
    if sparse && trained.master.is_none() {
        return Err(TrainError::Options(
            "a checkpoint of a sparse model keeps its dense master: train with distillation, \
             without --teacher and with --sparsify dst"
                .into(),
        ));
    }
    let mut info = crate::checkpoint::info_for(options, &trained.users, &trained.items);
    info.interactions = interactions as u64;
    info.model_steps = trained.raw.steps;
    info.master_steps = trained.master.as_ref().map(|m| m.steps);
    Ok(Checkpoint {
        info,
        users: trained.users.clone(),
        items: trained.items.clone(),
        model: (*trained.raw).clone(),
        master: trained.master.as_deref().cloned(),
    })
}
