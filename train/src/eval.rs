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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pocketrec::{Model, Recommendation};
use rayon::prelude::*;
use serde::Serialize;

use pocketrec_export::progress::{NoProgress, Progress};

use crate::data::{ReadOptions, read_external};
use crate::error::{Result, TrainError};
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
        )
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
    let train = read_external(&options.train, &options.read, user_kind, item_kind)?;
    let test = read_external(&options.test, &options.read, user_kind, item_kind)?;
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
    progress.start(todo.len() as u64, "ranking users");
    let done = AtomicU64::new(0);
    // Users in increasing order of training activity (ties by id), for the quartiles.
    let mut by_activity: Vec<usize> = (0..todo.len()).collect();
    by_activity.sort_by_key(|&k| (train.get(todo[k].0).len(), todo[k].0));
    let results: Vec<Result<Option<(f64, f64)>>> = pool.install(|| {
        todo.par_iter()
            .map_init(
                || vec![Recommendation::default(); options.k],
                |out, &(user, test_items)| {
                    let n = done.fetch_add(1, Ordering::Relaxed);
                    if n.is_multiple_of(256) {
                        progress.update(n);
                    }
                    let exclude = train.get(user);
                    match model.recommend(user, options.k, exclude, out) {
                        Ok(n) => {
                            let ranked: Vec<u64> = out[..n].iter().map(|r| r.id).collect();
                            Ok(Some(user_metrics(&ranked, test_items, options.k)))
                        }
                        Err(pocketrec::Error::IdNotFound {
                            role: pocketrec::Role::User,
                            ..
                        }) => Ok(None),
                        Err(e) => Err(to_export(e)),
                    }
                },
            )
            .collect()
    });
    progress.finish();
    let mut report = EvalReport {
        k: options.k,
        users: todo.len(),
        recall: 0.0,
        ndcg: 0.0,
        cold_users: 0,
        recall_by_activity: [0.0; 4],
        seconds: started.elapsed().as_secs_f64(),
    };
    let mut recalls = Vec::with_capacity(results.len());
    for r in results {
        match r? {
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
    Ok(report)
}
