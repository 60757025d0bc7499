//! `pocketrec._native.train` and `evaluate`: the trainer and the evaluation over the
//! `pocketrec-train` library, the way `pocketrec train` and `pocketrec eval` run them (read the
//! log, train, build each value encoding, write atomically, evaluate the written file through
//! the runtime). Both run with the GIL released and return their summary as a JSON string.

use std::path::{Path, PathBuf};

use pocketrec::ValueEncoding;
use pocketrec_export::atomic::write_atomic;
use pocketrec_train::data::{ReadOptions, read_dataset};
use pocketrec_train::eval::{EvalOptions, EvalReport, evaluate as evaluate_model};
use pocketrec_train::incremental::{
    ResumeOptions, align, checkpoint_of, resume as resume_model, with_replay,
};
use pocketrec_train::loss::{LossConfig, LossKind};
use pocketrec_train::{
    Event, FoldIn, LotteryConfig, Sparsify, TrainOptions, default_threads, train as train_model,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{export_error, train_error, usage};

/// Where encoding number `k` of `values` is written: `output` for the first, else
/// `<stem>.<encoding>.prec` beside it (as `pocketrec train --values a,b` names them).
fn output_path(output: &Path, values: &[ValueEncoding], k: usize) -> PathBuf {
    if k == 0 {
        return output.to_path_buf();
    }
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    output.with_file_name(format!("{stem}.{}.prec", values[k]))
}

fn threads_or_default(threads: usize) -> usize {
    if threads == 0 {
        default_threads()
    } else {
        threads
    }
}

/// Trains a model on an interaction log and writes it; returns the summary as JSON (the
/// object `pocketrec train --json` prints).
#[pyfunction]
#[pyo3(signature = (
    train_path, output, *, dim, density, epochs, seed, values, threads, test_path, layout,
    loss, distill, k, fold_in, min_rating, final_eval, eval_every, on_epoch, block_bounds,
    sparsify, rounds, rewind_step, checkpoint, resume, prior_strength, churn, mask_fraction, replay, replay_share,
    items_only,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn train(
    py: Python<'_>,
    train_path: PathBuf,
    output: PathBuf,
    dim: usize,
    density: f64,
    epochs: Option<usize>,
    seed: u64,
    values: Vec<String>,
    threads: usize,
    test_path: Option<PathBuf>,
    layout: &str,
    loss: &str,
    distill: Option<bool>,
    k: usize,
    fold_in: bool,
    min_rating: Option<f64>,
    final_eval: bool,
    eval_every: usize,
    on_epoch: Option<Py<PyAny>>,
    block_bounds: &str,
    sparsify: &str,
    rounds: Option<usize>,
    rewind_step: Option<u64>,
    checkpoint: Option<PathBuf>,
    resume: Option<PathBuf>,
    prior_strength: Option<f32>,
    churn: Option<f64>,
    mask_fraction: Option<f64>,
    replay: Option<PathBuf>,
    replay_share: Option<f64>,
    items_only: bool,
) -> PyResult<String> {
    let values = values
        .iter()
        .map(|v| {
            ValueEncoding::from_name(v).ok_or_else(|| {
                usage(format!(
                    "values must be among f32, f16, bf16, i8, i4, got {v:?}"
                ))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    if values.is_empty() {
        return Err(usage("values needs at least one encoding"));
    }
    if items_only && !fold_in {
        return Err(usage(
            "items_only writes no user rows, so users must be folded in on the device: it needs \
             fold_in=True",
        ));
    }
    let storage = crate::export::storage_arg(layout, block_bounds, false, items_only)?;
    let kind = LossKind::from_name(loss).ok_or_else(|| {
        usage(format!(
            "loss must be one of bsl, ssm, ccl, bpr, got {loss:?}"
        ))
    })?;
    let mut options = TrainOptions::for_loss(density, LossConfig::defaults(kind));
    options.dim = dim;
    if let Some(epochs) = epochs {
        options.epochs = epochs;
    }
    options.seed = seed;
    options.threads = threads_or_default(threads);
    options.k = k;
    options.eval_every = eval_every;
    options.fold_in = if fold_in {
        FoldIn::Default
    } else {
        FoldIn::Off
    };
    options.sparsify = match (sparsify, rounds, rewind_step) {
        ("lottery", _, _) if density >= 1.0 => {
            return Err(usage(
                "sparsify=\"lottery\" prunes the dense model to density: it needs density below 1",
            ));
        }
        ("lottery", rounds, rewind_step) => Sparsify::Lottery(LotteryConfig {
            rounds: rounds.unwrap_or(LotteryConfig::default().rounds),
            rewind_step,
        }),
        ("dst", None, None) => Sparsify::Dst,
        ("dst", _, _) => {
            return Err(usage(
                "rounds and rewind_step are lottery tickets' settings: they need sparsify=\"lottery\"",
            ));
        }
        (other, _, _) => {
            return Err(usage(format!(
                "sparsify must be dst or lottery, got {other:?}"
            )));
        }
    };
    match distill {
        Some(true) if density >= 1.0 => {
            return Err(usage(
                "distill=True distils a sparse model from the dense one: it needs density below 1",
            ));
        }
        Some(false) => options.distill = None,
        _ => {}
    }
    let read = ReadOptions {
        min_rating,
        ..ReadOptions::default()
    };
    let update = match &resume {
        Some(path) => {
            let ckpt = pocketrec_train::checkpoint::read(path).map_err(train_error)?;
            let info = &ckpt.info;
            // An update that replays steps at `REPLAY_LR_SCALE` times the first run's rate.
            let defaults = if replay.is_some() {
                ResumeOptions::replaying()
            } else {
                ResumeOptions::default()
            };
            let resume_options = ResumeOptions {
                epochs: epochs.unwrap_or(defaults.epochs),
                prior_strength: prior_strength.unwrap_or(defaults.prior_strength),
                churn: churn.unwrap_or(defaults.churn),
                mask_fraction: mask_fraction.unwrap_or(defaults.mask_fraction),
                threads: options.threads,
                eval_every,
                k,
                ..defaults
            };
            options.dim = info.dim;
            options.density = info.density;
            options.epochs = resume_options.epochs;
            if let Some(loss) = info.loss.config() {
                options.loss = loss;
            }
            Some((path.clone(), ckpt, resume_options))
        }
        None => {
            if prior_strength.is_some()
                || churn.is_some()
                || mask_fraction.is_some()
                || replay.is_some()
                || replay_share.is_some()
            {
                return Err(usage(
                    "prior_strength, churn, mask_fraction, replay and replay_share are settings \
                     of an update: they need resume=",
                ));
            }
            None
        }
    };
    if replay_share.is_some() && replay.is_none() {
        return Err(usage(
            "replay_share samples the replay= log: it needs replay=",
        ));
    }
    if checkpoint.is_some()
        && update.is_none()
        && options.density < 1.0
        && (options.distill.is_none() || options.sparsify != Sparsify::Dst)
    {
        return Err(usage(
            "checkpoint= keeps a sparse model's dense master: it needs distillation and sparsify=\"dst\"",
        ));
    }
    py.detach(|| {
        let mut data =
            read_dataset(&train_path, test_path.as_deref(), &read).map_err(train_error)?;
        if let Some((_, ckpt, _)) = &update {
            data = align(&data, &ckpt.users, &ckpt.items, &train_path).map_err(train_error)?;
            if let Some(path) = &replay {
                let old = read_dataset(path, None, &read).map_err(train_error)?;
                data = with_replay(&data, &old, replay_share, ckpt, path).map_err(train_error)?;
            }
        }
        let mut callback_error: Option<PyErr> = None;
        let mut stage = "model";
        let mut on_event = |event: Event<'_>| match event {
            Event::TeacherStart => stage = "teacher",
            Event::TeacherDone(_) => stage = "model",
            Event::Epoch(log) => {
                let Some(callback) = &on_epoch else { return };
                if callback_error.is_some() {
                    return;
                }
                Python::attach(|py| {
                    let call = || -> PyResult<()> {
                        let record = PyDict::new(py);
                        record.set_item("stage", stage)?;
                        record.set_item("epoch", log.epoch)?;
                        record.set_item("epochs", options.epochs)?;
                        record.set_item("loss", log.loss)?;
                        record.set_item("seconds", log.seconds)?;
                        if let Some(v) = &log.validation {
                            record.set_item(format!("recall@{}", v.k), v.recall)?;
                            record.set_item(format!("ndcg@{}", v.k), v.ndcg)?;
                        }
                        callback.call1(py, (record,))?;
                        Ok(())
                    };
                    if let Err(e) = call() {
                        callback_error = Some(e);
                    }
                });
            }
            _ => {}
        };
        let (trained, updated) = match &update {
            Some((_, ckpt, resume_options)) => {
                let r = resume_model(ckpt, &data, resume_options, &mut on_event)
                    .map_err(train_error)?;
                (r.trained, Some((r.checkpoint, r.changes)))
            }
            None => (
                train_model(&data, &options, &mut on_event).map_err(train_error)?,
                None,
            ),
        };
        if let Some(e) = callback_error {
            return Err(e);
        }
        let update_json = updated.as_ref().map(|(c, changes)| {
            serde_json::json!({
                "update": c.info.updates,
                "new_users": changes.new_users,
                "new_items": changes.new_items,
                "changed_users": changes.changed_users,
                "changed_items": changes.changed_items,
                "changed_fraction": changes.changed_fraction(),
                "mask_swaps": changes.mask_swaps,
            })
        });
        if let Some(path) = &checkpoint {
            let state = match updated {
                Some((c, _)) => c,
                None => checkpoint_of(&trained, data.train.len()).map_err(train_error)?,
            };
            pocketrec_train::checkpoint::write(path, &state).map_err(train_error)?;
        }
        let dense_f32_bytes =
            4 * (trained.users.len() + trained.items.len()) as u64 * options.dim as u64;
        let mut files = Vec::new();
        for (i, &encoding) in values.iter().enumerate() {
            let path = output_path(&output, &values, i);
            let bytes = trained.build(encoding, &storage).map_err(train_error)?;
            write_atomic(&path, &bytes).map_err(export_error)?;
            let eval = match (&test_path, final_eval) {
                (Some(test), true) => {
                    let model = pocketrec_export::open_model(&path).map_err(export_error)?;
                    let report = evaluate_model(
                        &model,
                        &path,
                        &EvalOptions {
                            train: train_path.clone(),
                            test: test.clone(),
                            k: options.k,
                            read,
                            threads: options.threads,
                            fold_in: items_only,
                        },
                    )
                    .map_err(train_error)?;
                    Some(report.to_json())
                }
                _ => None,
            };
            files.push(serde_json::json!({
                "path": path,
                "values": encoding.name(),
                "bytes": bytes.len(),
                "eval": eval,
            }));
        }
        let summary = serde_json::json!({
            "output": output,
            "file_bytes": files[0]["bytes"],
            "dense_f32_bytes": dense_f32_bytes,
            "users": trained.users.len(),
            "user_rows": storage.user_rows.name(),
            "items": trained.items.len(),
            "interactions": data.train.len(),
            "nnz": trained.nnz(),
            "setup_seconds": trained.setup_seconds,
            "train_seconds": trained.train_seconds,
            "samples_per_second": trained.samples_per_second(),
            "teacher_seconds": trained.teacher.as_ref().map(|t| t.seconds),
            "loss": trained.options.loss.kind.name(),
            "sparsify": if trained.options.density >= 1.0 {
                "dense"
            } else {
                trained.options.sparsify.name()
            },
            "rounds": trained.rounds.iter().map(|r| serde_json::json!({
                "round": r.round,
                "active": r.active,
                "density": r.density,
                "seconds": r.seconds,
                "validation_recall": r.validation.map(|v| v.recall),
            })).collect::<Vec<_>>(),
            "update": update_json,
            "density": trained.options.density,
            "final_loss": trained.log.last().map(|l| l.loss),
            "eval": files[0]["eval"],
            "files": files,
        });
        Ok(summary.to_string())
    })
}

/// Full-ranking Recall@k and NDCG@k of a model file on a test log, through the runtime;
/// returns the report as JSON (the object `pocketrec eval --json` prints).
#[pyfunction]
#[pyo3(signature = (model_path, train_path, test_path, *, k, fold_in, threads, min_rating))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    py: Python<'_>,
    model_path: PathBuf,
    train_path: PathBuf,
    test_path: PathBuf,
    k: usize,
    fold_in: bool,
    threads: usize,
    min_rating: Option<f64>,
) -> PyResult<String> {
    py.detach(|| {
        let model = pocketrec_export::open_model(&model_path).map_err(export_error)?;
        let report: EvalReport = evaluate_model(
            &model,
            &model_path,
            &EvalOptions {
                train: train_path,
                test: test_path,
                k,
                read: ReadOptions {
                    min_rating,
                    ..ReadOptions::default()
                },
                threads: threads_or_default(threads),
                fold_in,
            },
        )
        .map_err(train_error)?;
        Ok(report.to_json().to_string())
    })
}
