//! `pocketrec eval`: full-ranking Recall@k and NDCG@k of a `.prec` file, computed through the
//! runtime's own [`pocketrec::Model::recommend`], so it measures exactly what ships.
//!
//! The protocol is LightGCN's: for every user with at least one test item, rank every item of
//! the model except the user's training items (passed as `exclude`), take the top `k`, and
//! average `Recall@k = hits / |test items|` and `NDCG@k = DCG / IDCG` (binary relevance, a
//! `1 / log2(rank + 1)` discount, IDCG over `min(k, |test items|)` hits). Users without test
//! items are skipped. A test user the model has no row for scores zero and is counted in
//! `cold_users`. Users are evaluated in parallel; the sums are taken in user order, so the
//! result does not depend on the thread count.
//!
//! With [`EvalOptions::fold_in`], each test user's vector is not read from the model but
//! folded in on the spot from their training items ([`pocketrec::Model::fold_in`], the model's
//! fold-in section), then ranked with [`pocketrec::Model::recommend_vector`]: what a device that
//! keeps only the item table would get. Test users the model has no row for (e.g. held out of
//! training by `train --holdout-users`) are then evaluated as **new users**: their training
//! and test items pooled, split in two halves at random (seeded by the user id), folded in from
//! the first half and tested on the second (the first half excluded), reported apart in
//! [`EvalReport::new_users`] beside a popularity ranking of the same halves (items ranked by
//! their number of training interactions). A model that stores no user rows (`--items-only`)
//! is evaluated only this way: every test user with training items is folded in from them,
//! and only those without any are new users.

use std::path::{Path, PathBuf};

use pocketrec::{Model, Recommendation, Table};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use pocketrec_export::progress::{NoProgress, Progress};

use crate::data::{ExternalLists, ReadOptions, read_external};
use crate::error::{Result, TrainError};

/// Users ranked per call of the runtime's batch (between two progress reports).
const BATCH_USERS: usize = 2048;
use crate::validate::user_metrics;

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// The cut-off.
    pub k: usize,
    /// Users evaluated (those with at least one test item).
    pub users: usize,
    /// Mean Recall@k.
    pub recall: f64,
    /// Mean NDCG@k.
    pub ndcg: f64,
    /// Evaluated users that have no row in the model (they score zero).
    pub cold_users: usize,
    /// Mean Recall@k of the evaluated users split into four equal groups by their number of
    /// training items, least active first (where the loss of a sparse model shows).
    pub recall_by_activity: [f64; 4],
    /// Wall time of the ranking, in seconds.
    pub seconds: f64,
    /// Users' vectors were folded in from their training items ([`EvalOptions::fold_in`]).
    pub fold_in: bool,
    /// The new users' figures, with [`EvalOptions::fold_in`] (see the module docs).
    pub new_users: Option<NewUsersReport>,
}

/// New users (no row in the model) folded in from half of their interactions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NewUsersReport {
    /// New users evaluated (those with at least two interactions).
    pub users: usize,
    /// Mean Recall@k of the folded-in vectors on the held-back half.
    pub recall: f64,
    /// Mean NDCG@k.
    pub ndcg: f64,
    /// Mean Recall@k of the popularity ranking on the same halves.
    pub popularity_recall: f64,
    /// Mean NDCG@k of the popularity ranking.
    pub popularity_ndcg: f64,
}

impl EvalReport {
    /// The JSON object printed by `eval --json`, e.g.
    /// `{"k":20,"users":29858,"recall@20":0.1234,"ndcg@20":0.1011,...}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("k".into(), self.k.into());
        object.insert("users".into(), self.users.into());
        object.insert(format!("recall@{}", self.k), self.recall.into());
        object.insert(format!("ndcg@{}", self.k), self.ndcg.into());
        object.insert("cold_users".into(), self.cold_users.into());
        object.insert(
            format!("recall@{}_by_activity_quartile", self.k),
            self.recall_by_activity.to_vec().into(),
        );
        object.insert("seconds".into(), self.seconds.into());
        if self.fold_in {
            object.insert("fold_in".into(), true.into());
            if let Some(n) = &self.new_users {
                object.insert(
                    "new_users".into(),
                    serde_json::json!({
                        "users": n.users,
                        format!("recall@{}", self.k): n.recall,
                        format!("ndcg@{}", self.k): n.ndcg,
                        format!("popularity_recall@{}", self.k): n.popularity_recall,
                        format!("popularity_ndcg@{}", self.k): n.popularity_ndcg,
                    }),
                );
            }
        }
        serde_json::Value::Object(object)
    }

    /// One line of text.
    pub fn to_text(&self) -> String {
        format!(
            "Recall@{k} = {:.4}   NDCG@{k} = {:.4}   over {} users{}; Recall@{k} by activity quartile {:.4} {:.4} {:.4} {:.4}   ({:.1} s)",
            self.recall,
            self.ndcg,
            self.users,
            if self.cold_users > 0 {
                format!(" ({} without a row in the model)", self.cold_users)
            } else {
                String::new()
            },
            self.recall_by_activity[0],
            self.recall_by_activity[1],
            self.recall_by_activity[2],
            self.recall_by_activity[3],
            self.seconds,
            k = self.k
        ) + &self.new_users_text()
    }

    /// The fold-in lines of [`EvalReport::to_text`] (empty without fold-in).
    fn new_users_text(&self) -> String {
        let k = self.k;
        match (self.fold_in, &self.new_users) {
            (false, _) => String::new(),
            (true, None) => "\n  (users folded in from their training items)".into(),
            (true, Some(n)) => format!(
                "\n  (users folded in from their training items)\n  new users folded in from half \
                 of their interactions: Recall@{k} = {:.4}   NDCG@{k} = {:.4}   over {} users; \
                 popularity Recall@{k} = {:.4}   NDCG@{k} = {:.4}",
                n.recall, n.ndcg, n.users, n.popularity_recall, n.popularity_ndcg
            ),
        }
    }
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Training interactions (excluded from the ranking).
    pub train: PathBuf,
    /// Test interactions.
    pub test: PathBuf,
    /// The cut-off.
    pub k: usize,
    /// How the interaction files are read.
    pub read: ReadOptions,
    /// Worker threads.
    pub threads: usize,
    /// Fold each user in from their training items instead of reading their row, and
    /// evaluate users without a row as new users (see the module docs).
    pub fold_in: bool,
}

/// Evaluates `model` (read from `model_path`, for messages) on the files in `options`.
pub fn evaluate<S: AsRef<[u8]> + Sync>(
    model: &Model<S>,
    model_path: &Path,
    options: &EvalOptions,
) -> Result<EvalReport> {
    evaluate_reporting(model, model_path, options, &NoProgress)
}

/// [`evaluate`], reporting the users ranked to `progress`.
pub fn evaluate_reporting<S: AsRef<[u8]> + Sync>(
    model: &Model<S>,
    model_path: &Path,
    options: &EvalOptions,
    progress: &dyn Progress,
) -> Result<EvalReport> {
    let to_export = |source| TrainError::Model {
        path: model_path.to_path_buf(),
        source,
    };
    if options.k == 0 {
        return Err(TrainError::Options("-k must be at least 1".into()));
    }
    let users = model.users().map_err(to_export)?;
    let items = model.items().map_err(to_export)?;
    let (user_kind, item_kind) = (users.id_kind(), items.id_kind());
    if users.rows() == 0 && !options.fold_in {
        return Err(TrainError::Options(format!(
            "{} stores no user rows (users are folded in on the device): evaluate it with \
             --fold-in",
            model_path.display()
        )));
    }
    let train = read_external(&options.train, &options.read, user_kind, item_kind)?;
    let test = read_external(&options.test, &options.read, user_kind, item_kind)?;
    let known = |user: u64| is_known(&users, &train, user);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .build()
        .map_err(|e| TrainError::Options(format!("cannot start threads: {e}")))?;
    let started = std::time::Instant::now();
    let todo: Vec<(u64, &[u64])> = test
        .users
        .iter()
        .zip(&test.lists)
        .filter(|(_, list)| !list.is_empty())
        .map(|(&u, l)| (u, l.as_slice()))
        .collect();
    let mut todo = todo;
    if options.fold_in {
        // Users without a row are the new users, evaluated apart below.
        todo.retain(|&(user, _)| known(user));
    }
    progress.start(todo.len() as u64, "ranking users");
    // Users in increasing order of training activity (ties by id), for the quartiles.
    let mut by_activity: Vec<usize> = (0..todo.len()).collect();
    by_activity.sort_by_key(|&k| (train.get(todo[k].0).len(), todo[k].0));
    let dim = items.dim();
    // Recall and NDCG of a user whose answer is `answer`.
    let metrics = |answer: &[Recommendation], test_items: &[u64]| {
        let ranked: Vec<u64> = answer.iter().map(|r| r.id).collect();
        user_metrics(&ranked, test_items, options.k)
    };
    // Each user's (Recall, NDCG), or `None` for a cold user.
    let results: Vec<Option<(f64, f64)>> = if !options.fold_in {
        // The users' own rows: the runtime's batch, a chunk at a time for the progress report.
        let mut results = Vec::with_capacity(todo.len());
        let mut out = vec![Recommendation::default(); BATCH_USERS * options.k];
        let mut counts = vec![0usize; BATCH_USERS];
        for (c, chunk) in todo.chunks(BATCH_USERS).enumerate() {
            let ids: Vec<u64> = chunk.iter().map(|&(user, _)| user).collect();
            model
                .recommend_batch(
                    &ids,
                    options.k,
                    |i| train.get(ids[i]),
                    options.threads.max(1),
                    &mut out,
                    &mut counts,
                )
                .map_err(to_export)?;
            for (i, &(user, test_items)) in chunk.iter().enumerate() {
                let answer = &out[i * options.k..i * options.k + counts[i]];
                results.push(
                    users
                        .find(user)
                        .is_ok()
                        .then(|| metrics(answer, test_items)),
                );
            }
            progress.update(((c + 1) * BATCH_USERS).min(todo.len()) as u64);
        }
        results
    } else {
        // Each user folded in from their training items (on the pool), then ranked with the
        // others of their chunk by the runtime's vector batch, a chunk at a time.
        let mut results = Vec::with_capacity(todo.len());
        let mut vectors = vec![0.0f32; BATCH_USERS * dim];
        let mut out = vec![Recommendation::default(); BATCH_USERS * options.k];
        let mut counts = vec![0usize; BATCH_USERS];
        for (c, chunk) in todo.chunks(BATCH_USERS).enumerate() {
            let vectors = &mut vectors[..chunk.len() * dim];
            // Whether each user was folded in (false: cold, their vector left zero).
            let folded: Vec<bool> = pool.install(|| {
                vectors
                    .par_chunks_mut(dim)
                    .zip(chunk.par_iter())
                    .map(|(vector, &(user, _))| {
                        // A user without training items is cold: nothing to fold in from.
                        let exclude = train.get(user);
                        let folded = if exclude.is_empty() {
                            Err(pocketrec::Error::IdNotFound {
                                role: pocketrec::Role::User,
                                id: user,
                            })
                        } else {
                            model.fold_in(exclude, &[], None, vector)
                        };
                        match folded {
                            Ok(_) => Ok(true),
                            Err(pocketrec::Error::IdNotFound {
                                role: pocketrec::Role::User,
                                ..
                            }) => {
                                vector.fill(0.0);
                                Ok(false)
                            }
                            Err(e) => Err(to_export(e)),
                        }
                    })
                    .collect::<Result<_>>()
            })?;
            model
                .recommend_vector_batch(
                    vectors,
                    options.k,
                    |i| train.get(chunk[i].0),
                    options.threads.max(1),
                    &mut out,
                    &mut counts,
                )
                .map_err(to_export)?;
            for (i, (&(_, test_items), folded)) in chunk.iter().zip(folded).enumerate() {
                let answer = &out[i * options.k..i * options.k + counts[i]];
                results.push(folded.then(|| metrics(answer, test_items)));
            }
            progress.update(((c + 1) * BATCH_USERS).min(todo.len()) as u64);
        }
        results
    };
    progress.finish();
    let mut report = EvalReport {
        k: options.k,
        users: todo.len(),
        recall: 0.0,
        ndcg: 0.0,
        cold_users: 0,
        recall_by_activity: [0.0; 4],
        seconds: 0.0,
        fold_in: options.fold_in,
        new_users: None,
    };
    let mut recalls = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Some((recall, ndcg)) => {
                report.recall += recall;
                report.ndcg += ndcg;
                recalls.push(recall);
            }
            None => {
                report.cold_users += 1;
                recalls.push(0.0);
            }
        }
    }
    for (q, slot) in report.recall_by_activity.iter_mut().enumerate() {
        let group = &by_activity[q * todo.len() / 4..(q + 1) * todo.len() / 4];
        *slot = group.iter().map(|&k| recalls[k]).sum::<f64>() / group.len().max(1) as f64;
    }
    let n = report.users.max(1) as f64;
    report.recall /= n;
    report.ndcg /= n;
    if options.fold_in {
        report.new_users = pool.install(|| new_users(model, &train, &test, options.k))?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Whether `user` is a known user of a model whose user table is `users`: one with a row, or,
/// in a model that stores no user rows, one with training items (folded in from them as every
/// user of such a model is).
fn is_known(users: &Table<'_>, train: &ExternalLists, user: u64) -> bool {
    if users.rows() == 0 {
        !train.get(user).is_empty()
    } else {
        users.find(user).is_ok()
    }
}

/// The new-user protocol (see the module docs); `None` when every test user is known.
fn new_users<S: AsRef<[u8]> + Sync>(
    model: &Model<S>,
    train: &ExternalLists,
    test: &ExternalLists,
    k: usize,
) -> Result<Option<NewUsersReport>> {
    let users = model.users().map_err(|e| TrainError::Model {
        path: "<model>".into(),
        source: e,
    })?;
    let dim = model.dim().unwrap_or(0);
    let mut pooled: Vec<(u64, Vec<u64>)> = Vec::new();
    for (&user, list) in test.users.iter().zip(&test.lists) {
        if list.is_empty() || is_known(&users, train, user) {
            continue;
        }
        let mut all: Vec<u64> = train.get(user).iter().chain(list).copied().collect();
        all.sort_unstable();
        all.dedup();
        if all.len() >= 2 {
            pooled.push((user, all));
        }
    }
    if pooled.is_empty() {
        return Ok(None);
    }
    // Popularity: training interactions per item, ties to the lower id.
    let mut counts: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    for list in &train.lists {
        for &item in list {
            *counts.entry(item).or_default() += 1;
        }
    }
    let mut popular: Vec<(u64, u64)> = counts.into_iter().collect();
    popular.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let results: Vec<Result<[f64; 4]>> = pooled
        .par_iter()
        .map_init(
            || (vec![Recommendation::default(); k], vec![0.0f32; dim]),
            |(out, vector), (user, all)| {
                let mut shuffled = all.clone();
                shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(*user ^ 0x4E45_5755));
                let (source, held) = shuffled.split_at(shuffled.len().div_ceil(2));
                let mut source = source.to_vec();
                let mut held = held.to_vec();
                source.sort_unstable();
                held.sort_unstable();
                let (recall, ndcg) = match model.fold_in(&source, &[], None, vector) {
                    Ok(_) => {
                        let n = model
                            .recommend_vector(vector, k, &source, out)
                            .map_err(|e| TrainError::Model {
                                path: "<model>".into(),
                                source: e,
                            })?;
                        let ranked: Vec<u64> = out[..n].iter().map(|r| r.id).collect();
                        user_metrics(&ranked, &held, k)
                    }
                    // No item of the first half is in the model: nothing to fold in from.
                    Err(pocketrec::Error::InvalidQuery { .. }) => (0.0, 0.0),
                    Err(e) => {
                        return Err(TrainError::Model {
                            path: "<model>".into(),
                            source: e,
                        });
                    }
                };
                let popular_top: Vec<u64> = popular
                    .iter()
                    .map(|&(item, _)| item)
                    .filter(|item| source.binary_search(item).is_err())
                    .take(k)
                    .collect();
                let (p_recall, p_ndcg) = user_metrics(&popular_top, &held, k);
                Ok([recall, ndcg, p_recall, p_ndcg])
            },
        )
        .collect();
    let mut sums = [0.0f64; 4];
    for r in results {
        for (s, v) in sums.iter_mut().zip(r?) {
            *s += v;
        }
    }
    let n = pooled.len() as f64;
    Ok(Some(NewUsersReport {
        users: pooled.len(),
        recall: sums[0] / n,
        ndcg: sums[1] / n,
        popularity_recall: sums[2] / n,
        popularity_ndcg: sums[3] / n,
    }))
}
