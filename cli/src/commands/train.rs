//! `pocketrec train`: read the log, train with a progress bar, write the `.prec` files, and
//! evaluate the written files when a test set is given.

use std::path::{Path, PathBuf};

use pocketrec::ValueEncoding;
use pocketrec_export::storage::{ITEMS_ONLY_NEEDS_FOLD_IN, ItemStorage, UserRows};
use serde::Serialize;

use pocketrec_export::atomic::write_atomic;
use pocketrec_export::inspect::thousands;
use pocketrec_export::open_model;
use pocketrec_export::progress::Progress;
use pocketrec_train::checkpoint::Checkpoint;
use pocketrec_train::data::{Dataset, ReadOptions, read_dataset};
use pocketrec_train::eval::{EvalOptions, EvalReport, evaluate_reporting};
use pocketrec_train::fold_in::{Tuning, holdout_users};
use pocketrec_train::incremental::{ResumeOptions, align, checkpoint_of, resume, with_replay};
use pocketrec_train::loss::LossConfig;
use pocketrec_train::model::{DistillConfig, StepConfig};
use pocketrec_train::trainer::DEFAULT_LOSS;
use pocketrec_train::{
    Event, FoldIn, LotteryConfig, Sparsify, TrainOptions, Trained, teacher_from_model,
    teacher_options, train_with_teacher,
};

use crate::args::TrainArgs;
use crate::error::{CliError, Result};
use crate::output::print_json;
use crate::progress::Bar;

/// Everything `pocketrec train` does.
#[derive(Clone, Debug)]
pub struct TrainCommand {
    /// Training interactions.
    pub train: PathBuf,
    /// Test interactions (validation during training, and the final evaluation).
    pub test: Option<PathBuf>,
    /// The model file to write.
    pub output: PathBuf,
    /// Value encodings to write: the first to `output`, each further one to
    /// `<output stem>.<encoding>.prec` beside it (from the same trained tables).
    pub values: Vec<ValueEncoding>,
    /// How the item table is stored (chosen from the tables by default).
    pub storage: ItemStorage,
    /// Write the model as an update of this earlier model (`--update-of`).
    pub update_of: Option<PathBuf>,
    /// How the files are read.
    pub read: ReadOptions,
    /// Training settings.
    pub options: TrainOptions,
    /// Evaluate the written file through the runtime at the end (needs `test`).
    pub final_eval: bool,
    /// Show a progress bar and per-epoch lines.
    pub progress: bool,
    /// Fraction of users kept out of training (drawn with the seed).
    pub holdout_users: f64,
    /// Validation interactions to choose the fold-in settings on.
    pub fold_in_validation: Option<PathBuf>,
    /// A written dense model to distil from instead of training the teacher first.
    pub teacher: Option<PathBuf>,
    /// Where to write a checkpoint after training.
    pub checkpoint: Option<PathBuf>,
    /// An update of a checkpointed model instead of a first training.
    pub resume: Option<ResumeCommand>,
}

/// What `train --resume` continues, and how.
#[derive(Clone, Debug)]
pub struct ResumeCommand {
    /// The checkpoint's path (for messages).
    pub path: PathBuf,
    /// The checkpoint, read and checked.
    pub checkpoint: Box<Checkpoint>,
    /// The update's settings.
    pub options: ResumeOptions,
    /// A log of earlier interactions: the returning users' are trained on again beside the
    /// new ones (`incremental::with_replay`).
    pub replay: Option<PathBuf>,
    /// Replay only this many earlier interactions per new one, a sample (`None`: all).
    pub replay_share: Option<f64>,
}

/// What an update changed, as `train --resume --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct UpdateSummary {
    /// The update's number since the first training.
    pub update: u64,
    /// Users and items new in this update (rows at the end).
    pub new_users: usize,
    /// Items new in this update.
    pub new_items: usize,
    /// Earlier user rows whose written weights changed.
    pub changed_users: usize,
    /// Earlier item rows whose written weights changed.
    pub changed_items: usize,
    /// Changed and new rows over all rows: what an update ships.
    pub changed_fraction: f64,
    /// Mask swaps of a sparse model.
    pub mask_swaps: usize,
}

/// One written file.
#[derive(Clone, Debug, Serialize)]
pub struct WrittenFile {
    /// Where.
    pub path: PathBuf,
    /// Value encoding.
    pub values: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Its evaluation through the runtime, when a test set was given.
    pub eval: Option<serde_json::Value>,
}

/// What a training run produced, as `train --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    /// The (first) file written.
    pub output: PathBuf,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// Every file written, the first one included.
    pub files: Vec<WrittenFile>,
    /// The two tables as dense f32 (`(users + items) x dim x 4`).
    pub dense_f32_bytes: u64,
    /// Users (rows).
    pub users: usize,
    /// Items (rows).
    pub items: usize,
    /// Training interactions.
    pub interactions: usize,
    /// Non-zero weights written (before quantization drops any).
    pub nnz: usize,
    /// Seconds of setup (NMF, masks).
    pub setup_seconds: f64,
    /// Seconds of training steps and mask updates.
    pub train_seconds: f64,
    /// Training triples per second.
    pub samples_per_second: f64,
    /// Seconds of the dense teacher's training, for a distillation run.
    pub teacher_seconds: Option<f64>,
    /// The loss (`bpr`, `ssm`, `bsl`, `ccl`).
    pub loss: String,
    /// How the sparse model reached its budget (`dst` or `lottery`; `dense` at density 1).
    pub sparsify: String,
    /// Lottery tickets: one record per round, the dense round 0 first.
    pub rounds: Vec<RoundSummary>,
    /// `--resume`: what the update changed.
    pub update: Option<UpdateSummary>,
    /// Fraction of active weights asked for.
    pub density: f64,
    /// Mean loss of the last epoch.
    pub final_loss: f64,
    /// Whether the files store the user rows (`stored`) or leave users to be folded in on the
    /// device (`folded-in`, `--items-only`; their evaluation then folds every user in).
    pub user_rows: String,
    /// The first file's evaluation, when a test set was given.
    pub eval: Option<serde_json::Value>,
    /// `--fold-in-validation`: the grid of fold-in settings tried and the one chosen.
    pub fold_in_tuning: Option<Tuning>,
}

/// One lottery round, as `train --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct RoundSummary {
    /// 0 for the dense round.
    pub round: usize,
    /// Active weights in both tables.
    pub active: usize,
    /// Their fraction of all weights.
    pub density: f64,
    /// Seconds of the round's steps.
    pub seconds: f64,
    /// The round's last validation Recall, when measured.
    pub validation_recall: Option<f64>,
}

/// Where encoding number `k` of `values` is written: `output` for the first, else
/// `<stem>.<encoding>.prec` in the same directory.
pub fn output_path(output: &Path, values: &[ValueEncoding], k: usize) -> PathBuf {
    if k == 0 {
        return output.to_path_buf();
    }
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    output.with_file_name(format!("{stem}.{}.prec", values[k]))
}

/// Trains, prints progress to stderr, writes the files; returns the model, the summary and the
/// first file's evaluation.
pub fn run(command: &TrainCommand) -> Result<(Trained, TrainSummary, Option<EvalReport>)> {
    if command.values.is_empty() {
        return Err(CliError::Usage(
            "--values needs at least one encoding".into(),
        ));
    }
    let mut data = read_dataset(&command.train, command.test.as_deref(), &command.read)?;
    if !(0.0..1.0).contains(&command.holdout_users) {
        return Err(CliError::Usage("--holdout-users must be in [0, 1)".into()));
    }
    if command.holdout_users > 0.0 {
        let held = holdout_users(
            data.users.len(),
            command.holdout_users,
            command.options.seed,
        );
        if command.progress {
            eprintln!(
                "holding {} of {} users out of training (--holdout-users {})",
                thousands(held.len() as u64),
                thousands(data.users.len() as u64),
                command.holdout_users
            );
        }
        data = data.without_users(&held);
    }
    if let Some(r) = &command.resume {
        data = aligned_update(data, r, command)?;
        if command.progress {
            let (users, items) = (r.checkpoint.users.len(), r.checkpoint.items.len());
            eprintln!(
                "resuming {} (update {}): {} new users, {} new items",
                r.path.display(),
                r.checkpoint.info.updates + 1,
                thousands((data.users.len() - users) as u64),
                thousands((data.items.len() - items) as u64)
            );
        }
    }
    let o = &command.options;
    if command.progress {
        eprintln!(
            "read {} users, {} items, {} training interactions{}",
            thousands(data.users.len() as u64),
            thousands(data.items.len() as u64),
            thousands(data.train.len() as u64),
            data.test
                .as_ref()
                .map(|t| format!(", {} test interactions", thousands(t.len() as u64)))
                .unwrap_or_default()
        );
        eprintln!(
            "training MF-{}: d = {}, density {}, {} epochs, seed {}, {} thread{}{}",
            o.loss.kind.name().to_uppercase(),
            o.dim,
            o.density,
            o.epochs,
            o.seed,
            o.threads,
            if o.threads == 1 { "" } else { "s" },
            match o.sparsify {
                _ if o.density >= 1.0 => String::new(),
                Sparsify::Dst => format!(
                    ", mask init {}, regrowth by {} gradient",
                    o.mask_init.name(),
                    o.regrow.name()
                ),
                Sparsify::Lottery(c) => format!(
                    ", lottery tickets: {} rounds, rewound to {}",
                    c.rounds,
                    c.rewind_step
                        .map(|s| format!("step {s}"))
                        .unwrap_or_else(|| "the end of epoch 1".into())
                ),
            }
        );
        if o.loss.kind.is_cosine() {
            eprintln!(
                "loss: {}",
                pocketrec_train::trainer::loss_description(&o.loss)
            );
        }
        if let Some(d) = o.distill
            && o.loss.kind.is_cosine()
        {
            let t = teacher_options(o);
            eprintln!(
                "distillation: the dense model (lr {}, L2 {}) first, then {} of the loss plus {} \
                 of the cross-entropy against the teacher's softmax over each pair's positive and \
                 negatives",
                t.step.lr,
                t.step.l2,
                d.alpha,
                1.0 - d.alpha
            );
        } else if let Some(d) = o.distill {
            let t = teacher_options(o);
            eprintln!(
                "distillation: the dense model (lr {}, L2 {}) first, then labels \
                 y = {} + {} sigmoid(t / {}){}{}",
                t.step.lr,
                t.step.l2,
                d.alpha,
                1.0 - d.alpha,
                d.temperature,
                if d.beta > 0.0 {
                    format!(", score matching {}/2 (x - t)^2", d.beta)
                } else {
                    String::new()
                },
                if d.negatives > 1 {
                    format!(", the teacher's hardest of {} negatives", d.negatives)
                } else {
                    String::new()
                }
            );
        }
    }
    let mut bar = Bar::new(false);
    let print_every = o.epochs.div_ceil(10).max(1);
    let mut last_recall = String::new();
    // "teacher " while a distillation run trains its dense teacher.
    let mut stage = "";
    let teacher = match (&command.teacher, o.distill) {
        (Some(path), Some(config)) => {
            let model = open_model(path)?;
            let teacher = teacher_from_model(&model, &data, o.dim, config)?;
            if command.progress {
                eprintln!("teacher: {} (not trained again)", path.display());
            }
            Some(teacher)
        }
        (Some(_), None) => {
            return Err(CliError::Usage(
                "--teacher distils a sparse model: it needs --density below 1 and no --no-distill"
                    .into(),
            ));
        }
        (None, _) => None,
    };
    let mut on_event = |event: Event<'_>| match event {
        Event::Start { total_steps } => {
            let label = if stage.is_empty() {
                "training"
            } else {
                "teacher"
            };
            bar = Bar::started(command.progress, total_steps, label);
        }
        Event::Step { done, epoch, loss } => {
            if done % 16 == 0 {
                bar.update(done);
                bar.set_status(format!(
                    "epoch {epoch}/{} loss {loss:.4}{last_recall}",
                    o.epochs
                ));
            }
        }
        Event::MaskUpdate(_) => {}
        Event::Round {
            round,
            rounds,
            active,
        } => {
            bar.finish();
            last_recall.clear();
            if command.progress {
                eprintln!(
                    "lottery round {round}/{rounds}: {} active weights{}",
                    thousands(active as u64),
                    if round == 0 { " (dense)" } else { " (rewound)" }
                );
            }
        }
        Event::TeacherStart => stage = "teacher ",
        Event::TeacherDone(record) => {
            bar.finish();
            stage = "";
            last_recall.clear();
            if command.progress {
                eprintln!(
                    "teacher trained in {:.1} s{}",
                    record.seconds,
                    record
                        .validation
                        .map(|v| format!(
                            ", validation Recall@{k} {:.4}  NDCG@{k} {:.4}",
                            v.recall,
                            v.ndcg,
                            k = v.k
                        ))
                        .unwrap_or_default()
                );
            }
        }
        Event::Epoch(record) => {
            if let Some(v) = &record.validation {
                last_recall = format!(" R@{} {:.4}", v.k, v.recall);
            }
            if command.progress && (record.validation.is_some() || record.epoch % print_every == 0)
            {
                let line = format!(
                    "{stage}epoch {:>4}/{}  loss {:.4}  {:.2} s{}",
                    record.epoch,
                    o.epochs,
                    record.loss,
                    record.seconds,
                    record
                        .validation
                        .map(|v| format!(
                            "  {stage}validation Recall@{k} {:.4}  NDCG@{k} {:.4} ({} users)",
                            v.recall,
                            v.ndcg,
                            v.users,
                            k = v.k
                        ))
                        .unwrap_or_default()
                );
                bar.println(&line);
            }
        }
    };
    let (trained, update) = match &command.resume {
        Some(r) => {
            let resumed = resume(&r.checkpoint, &data, &r.options, &mut on_event)?;
            (resumed.trained, Some((resumed.checkpoint, resumed.changes)))
        }
        None => (train_with_teacher(&data, o, teacher, &mut on_event)?, None),
    };
    bar.finish();
    let dense_f32_bytes = 4 * (trained.users.len() + trained.items.len()) as u64 * o.dim as u64;
    if command.progress {
        eprintln!(
            "trained in {:.1} s ({:.0} interactions/s; setup {:.1} s{})",
            trained.train_seconds,
            trained.samples_per_second(),
            trained.setup_seconds,
            trained
                .teacher
                .as_ref()
                .map(|t| format!("; dense teacher {:.1} s", t.seconds))
                .unwrap_or_default()
        );
    }
    if command.progress && o.density < 1.0 {
        let [u, i] = trained.nnz_by_degree(&data.train);
        eprintln!(
            "non-zeros per row by activity quartile (least active first): users {:.1} {:.1} {:.1} {:.1}, items {:.1} {:.1} {:.1} {:.1}",
            u[0], u[1], u[2], u[3], i[0], i[1], i[2], i[3]
        );
    }
    let mut trained = trained;
    if let Some(path) = &command.fold_in_validation {
        // The validation lists in `data`'s rows (held-out users have none there).
        let (validation, _) = pocketrec_train::data::read_held_out(&data, path, &command.read)?;
        let has_fold_in = trained.fold_in.is_some();
        match trained.tune_fold_in(&data.train, &validation) {
            Some(Tuning::Squared(tuned)) if command.progress => eprintln!(
                "fold-in settings chosen on {} validation users: {} items unobserved, ridge {} \
                 items (validation Recall@{} {:.4})",
                thousands(tuned.users as u64),
                tuned.best.unobserved_items,
                tuned.best.ridge_items,
                o.k,
                tuned.best.recall
            ),
            Some(Tuning::Softmax(tuned)) if command.progress => eprintln!(
                "softmax fold-in settings chosen on {} validation users: temperature {}, power \
                 {} (validation Recall@{} {:.4}; {} settings tried)",
                thousands(tuned.users as u64),
                tuned.best.settings.temperature,
                tuned.best.settings.power,
                o.k,
                tuned.best.recall,
                tuned.grid.len()
            ),
            Some(_) => {}
            None if !has_fold_in => {
                return Err(CliError::Usage(
                    "--fold-in-validation: this model writes no fold-in section (d beyond the \
                     runtime's stack limit)"
                        .into(),
                ));
            }
            None => {
                return Err(CliError::Usage(format!(
                    "{}: no user has both training and validation items",
                    path.display()
                )));
            }
        }
    }
    let mut files = Vec::new();
    let mut first_report = None;
    let previous_order = match &command.update_of {
        Some(path) => pocketrec_export::storage::previous_item_order(path)?,
        None => None,
    };
    for (k, &values) in command.values.iter().enumerate() {
        let path = output_path(&command.output, &command.values, k);
        let bytes = trained.build_as_update(values, &command.storage, previous_order.clone())?;
        write_atomic(&path, &bytes)?;
        if command.progress {
            eprintln!(
                "wrote {}: {} bytes, {:.1}% of the dense f32 tables ({} bytes)",
                path.display(),
                thousands(bytes.len() as u64),
                100.0 * bytes.len() as f64 / dense_f32_bytes.max(1) as f64,
                thousands(dense_f32_bytes),
            );
        }
        let report = match (&command.test, command.final_eval) {
            (Some(test), true) => {
                let model = open_model(&path)?;
                let report = evaluate_reporting(
                    &model,
                    &path,
                    &EvalOptions {
                        train: command.train.clone(),
                        test: test.clone(),
                        k: o.k,
                        read: command.read,
                        threads: o.threads,
                        fold_in: command.storage.user_rows == UserRows::FoldedIn,
                    },
                    &Bar::new(command.progress),
                )?;
                if command.progress {
                    eprintln!("{}: {}", path.display(), report.to_text());
                }
                Some(report)
            }
            _ => None,
        };
        files.push(WrittenFile {
            path,
            values: values.name().to_string(),
            bytes: bytes.len() as u64,
            eval: report.as_ref().map(EvalReport::to_json),
        });
        if k == 0 {
            first_report = report;
        }
    }
    let mut update_summary = None;
    let checkpoint = match update {
        Some((checkpoint, changes)) => {
            update_summary = Some(UpdateSummary {
                update: checkpoint.info.updates,
                new_users: changes.new_users,
                new_items: changes.new_items,
                changed_users: changes.changed_users,
                changed_items: changes.changed_items,
                changed_fraction: changes.changed_fraction(),
                mask_swaps: changes.mask_swaps,
            });
            if command.progress {
                eprintln!(
                    "update {}: {} of {} earlier user rows and {} of {} item rows changed, {} \
                     users and {} items new: {:.1} % of the rows to ship; {} mask swaps",
                    checkpoint.info.updates,
                    thousands(changes.changed_users as u64),
                    thousands(changes.old_users as u64),
                    thousands(changes.changed_items as u64),
                    thousands(changes.old_items as u64),
                    thousands(changes.new_users as u64),
                    thousands(changes.new_items as u64),
                    100.0 * changes.changed_fraction(),
                    changes.mask_swaps
                );
            }
            Some(checkpoint)
        }
        None => None,
    };
    if let Some(path) = &command.checkpoint {
        let checkpoint = match checkpoint {
            Some(c) => c,
            None => checkpoint_of(&trained, data.train.len())?,
        };
        pocketrec_train::checkpoint::write(path, &checkpoint)?;
        if command.progress {
            eprintln!("wrote the checkpoint {}", path.display());
        }
    }
    let summary = TrainSummary {
        output: command.output.clone(),
        file_bytes: files[0].bytes,
        dense_f32_bytes,
        users: trained.users.len(),
        items: trained.items.len(),
        interactions: data.train.len(),
        nnz: trained.nnz(),
        setup_seconds: trained.setup_seconds,
        train_seconds: trained.train_seconds,
        samples_per_second: trained.samples_per_second(),
        teacher_seconds: trained.teacher.as_ref().map(|t| t.seconds),
        loss: trained.options.loss.kind.name().into(),
        sparsify: if trained.options.density >= 1.0 {
            "dense".into()
        } else {
            trained.options.sparsify.name().into()
        },
        rounds: trained
            .rounds
            .iter()
            .map(|r| RoundSummary {
                round: r.round,
                active: r.active,
                density: r.density,
                seconds: r.seconds,
                validation_recall: r.validation.map(|v| v.recall),
            })
            .collect(),
        update: update_summary,
        density: trained.options.density,
        final_loss: trained.log.last().map(|l| l.loss).unwrap_or(f64::NAN),
        fold_in_tuning: trained.fold_in.as_ref().and_then(|c| c.tuned.clone()),
        user_rows: command.storage.user_rows.name().into(),
        eval: first_report.as_ref().map(EvalReport::to_json),
        files,
    };
    Ok((trained, summary, first_report))
}

/// The new interactions (and `--replay`'s) re-rowed to continue the checkpoint: its rows
/// first, new ids at the end.
fn aligned_update(data: Dataset, r: &ResumeCommand, command: &TrainCommand) -> Result<Dataset> {
    let (users, items) = (&r.checkpoint.users, &r.checkpoint.items);
    let data = align(&data, users, items, &command.train)?;
    match &r.replay {
        Some(path) => {
            let replay = read_dataset(path, None, &command.read)?;
            Ok(with_replay(
                &data,
                &replay,
                r.replay_share,
                &r.checkpoint,
                path,
            )?)
        }
        None => Ok(data),
    }
}

/// Runs `pocketrec train` from its arguments: the defaults for the density, then [`run`].
pub fn run_args(args: TrainArgs) -> Result<()> {
    if let Some(path) = args.resume.clone() {
        return run_resume_args(args, &path);
    }
    if args.prior_strength.is_some()
        || args.churn.is_some()
        || args.mask_fraction.is_some()
        || args.replay.is_some()
        || args.replay_share.is_some()
    {
        return Err(CliError::Usage(
            "--prior-strength, --churn, --mask-fraction, --replay and --replay-share are settings \
             of an update: they need --resume"
                .into(),
        ));
    }
    if args.storage.items_only && args.no_fold_in {
        return Err(CliError::Usage(ITEMS_ONLY_NEEDS_FOLD_IN.into()));
    }
    let defaults_all = TrainOptions::default();
    let dim = args.dim.unwrap_or(defaults_all.dim);
    let density = args.density.unwrap_or(defaults_all.density);
    let kind = args.loss.unwrap_or(DEFAULT_LOSS);
    let defaults = TrainOptions::for_loss(density, LossConfig::defaults(kind));
    let distill = if density < 1.0 && !args.no_distill {
        let d = defaults.distill.unwrap_or_default();
        Some(DistillConfig {
            alpha: args.distill_alpha.unwrap_or(d.alpha),
            temperature: args.distill_temperature.unwrap_or(d.temperature),
            beta: args.distill_beta.unwrap_or(d.beta),
            negatives: args.distill_negatives.unwrap_or(d.negatives),
        })
    } else {
        if args.distill_alpha.is_some()
            || args.distill_temperature.is_some()
            || args.distill_beta.is_some()
            || args.distill_negatives.is_some()
        {
            return Err(CliError::Usage(
                "--distill-alpha, --distill-temperature, --distill-beta and --distill-negatives \
                 tune the distillation of a sparse model: they need --density below 1 and no \
                 --no-distill"
                    .into(),
            ));
        }
        None
    };
    let sparsify = match (args.sparsify.as_str(), args.rounds, args.rewind_step) {
        ("lottery", rounds, rewind_step) => Sparsify::Lottery(LotteryConfig {
            rounds: rounds.unwrap_or(LotteryConfig::default().rounds),
            rewind_step,
        }),
        (_, None, None) => Sparsify::Dst,
        _ => {
            return Err(CliError::Usage(
                "--rounds and --rewind-step are lottery tickets' settings: they need \
                 --sparsify lottery"
                    .into(),
            ));
        }
    };
    if args.checkpoint.is_some()
        && density < 1.0
        && (args.teacher.is_some() || args.no_distill || sparsify != Sparsify::Dst)
    {
        return Err(CliError::Usage(
            "--checkpoint keeps a sparse model's dense master, trained in the same run: it \
             needs distillation (no --no-distill), no --teacher and --sparsify dst"
                .into(),
        ));
    }
    if density >= 1.0 && sparsify != Sparsify::Dst {
        return Err(CliError::Usage(
            "--sparsify lottery prunes the dense model to --density: it needs --density below 1"
                .into(),
        ));
    }
    let command = TrainCommand {
        train: args.train,
        test: args.test,
        output: args.output,
        values: args.values,
        storage: args.storage.storage(false),
        update_of: args.storage.update_of.clone(),
        read: args.read.options(),
        options: TrainOptions {
            dim,
            density,
            epochs: args.epochs.unwrap_or(defaults.epochs),
            seed: args.seed,
            batch_size: args.batch_size.unwrap_or(defaults.batch_size),
            loss: {
                let base = defaults.loss;
                LossConfig {
                    negatives: args.negatives.unwrap_or(base.negatives),
                    temperature: args.temperature.unwrap_or(base.temperature),
                    power: args.bsl_power.unwrap_or(base.power),
                    margin: args.margin.unwrap_or(base.margin),
                    negative_weight: args.negative_weight.unwrap_or(base.negative_weight),
                    ..base
                }
            },
            step: StepConfig {
                lr: args.lr.unwrap_or(defaults.step.lr),
                l2: args.l2.unwrap_or(defaults.step.l2),
                ..defaults.step
            },
            mask_init: args.mask_init,
            regrow: args.regrow,
            update_interval: args.update_interval,
            update_fraction: args.update_fraction,
            update_end: args.update_end,
            row_floor: args.row_floor,
            balance: args.balance,
            prune_balance: args.prune_balance.unwrap_or(defaults.prune_balance),
            per_row: args.per_row || defaults.per_row,
            lr_end: args.lr_end.unwrap_or(defaults.lr_end),
            lr_decay_start: args.lr_decay_start.unwrap_or(defaults.lr_decay_start),
            local_adam: args.local_adam || defaults.local_adam,
            init_std: args.init_std.unwrap_or(defaults.init_std),
            user_share: args.user_share.unwrap_or(defaults.user_share),
            degree_power: args.degree_power.unwrap_or(defaults.degree_power),
            start_density: args.start_density.unwrap_or(defaults.start_density),
            distill,
            sparsify,
            threads: args.threads,
            eval_every: args.eval_every,
            eval_users: args.eval_users,
            k: args.k,
            fold_in: match (
                args.no_fold_in,
                args.fold_in_unobserved_weight,
                args.fold_in_regularization,
            ) {
                (true, _, _) => FoldIn::Off,
                (false, Some(unobserved_weight), Some(regularization)) => {
                    FoldIn::Given(pocketrec::FoldInParams {
                        unobserved_weight,
                        regularization,
                    })
                }
                _ => FoldIn::Default,
            },
            ..defaults
        },
        final_eval: !args.no_final_eval,
        progress: !args.quiet,
        holdout_users: args.holdout_users,
        fold_in_validation: args.fold_in_validation,
        teacher: args.teacher,
        checkpoint: args.checkpoint,
        resume: None,
    };
    let (_, summary, _) = run(&command)?;
    if args.json {
        print_json(&summary)?;
    }
    Ok(())
}

/// `pocketrec train --resume CKPT`: the settings from the checkpoint, the update's from the
/// flags; flags that contradict the checkpoint or belong to a first training are refused.
fn run_resume_args(args: TrainArgs, path: &Path) -> Result<()> {
    let checkpoint = pocketrec_train::checkpoint::read(path)?;
    let info = &checkpoint.info;
    let loss = info.loss.config().ok_or_else(|| {
        CliError::Usage(format!(
            "{}: unknown loss {:?}",
            path.display(),
            info.loss.kind
        ))
    })?;
    let mismatch = |what: &str, given: String, theirs: String| {
        Err(CliError::Usage(format!(
            "{}: the checkpoint was trained with {what} {theirs}, not {given}; an update keeps \
             its model's settings (drop {what}, or train from scratch)",
            path.display()
        )))
    };
    if let Some(dim) = args.dim.filter(|&d| d != info.dim) {
        return mismatch("--dim", dim.to_string(), info.dim.to_string());
    }
    if let Some(density) = args.density.filter(|&d| d != info.density) {
        return mismatch("--density", density.to_string(), info.density.to_string());
    }
    if let Some(kind) = args.loss.filter(|&k| k != loss.kind) {
        return mismatch("--loss", kind.name().into(), info.loss.kind.clone());
    }
    let first_run_only = [
        (args.teacher.is_some(), "--teacher"),
        (args.holdout_users > 0.0, "--holdout-users"),
        (args.sparsify != "dst", "--sparsify"),
        (args.no_distill, "--no-distill"),
        (args.start_density.is_some(), "--start-density"),
        (args.rounds.is_some(), "--rounds"),
        (args.rewind_step.is_some(), "--rewind-step"),
        (args.init_std.is_some(), "--init-std"),
        (args.user_share.is_some(), "--user-share"),
        (args.degree_power.is_some(), "--degree-power"),
    ];
    let first_given =
        |flags: &[(bool, &'static str)]| flags.iter().find(|(set, _)| *set).map(|&(_, flag)| flag);
    if let Some(flag) = first_given(&first_run_only) {
        return Err(CliError::Usage(format!(
            "{flag} shapes a first training; an update (--resume) keeps the checkpoint's model"
        )));
    }
    // Settings the checkpoint records: an update keeps them, so giving one is a mistake to
    // report, not a wish to ignore.
    let kept_settings = [
        (args.negatives.is_some(), "--negatives"),
        (args.temperature.is_some(), "--temperature"),
        (args.bsl_power.is_some(), "--bsl-power"),
        (args.margin.is_some(), "--margin"),
        (args.negative_weight.is_some(), "--negative-weight"),
        (args.batch_size.is_some(), "--batch-size"),
        (args.l2.is_some(), "--l2"),
        (args.prune_balance.is_some(), "--prune-balance"),
        (args.distill_alpha.is_some(), "--distill-alpha"),
        (args.distill_temperature.is_some(), "--distill-temperature"),
        (args.distill_beta.is_some(), "--distill-beta"),
        (args.distill_negatives.is_some(), "--distill-negatives"),
    ];
    if let Some(flag) = first_given(&kept_settings) {
        return Err(CliError::Usage(format!(
            "{}: an update (--resume) trains with the checkpoint's {flag}; drop it (or train \
             from scratch to change it)",
            path.display()
        )));
    }
    // An update that replays the history steps further by default (`REPLAY_LR_SCALE`).
    let defaults = if args.replay.is_some() {
        ResumeOptions::replaying()
    } else {
        ResumeOptions::default()
    };
    // `--lr` sets the update's learning rate; the dense master's is scaled alike.
    let lr_scale = match args.lr {
        Some(lr) if lr > 0.0 && lr.is_finite() => lr / info.lr,
        Some(lr) => {
            return Err(CliError::Usage(format!(
                "--lr must be a positive number, got {lr}"
            )));
        }
        None => defaults.lr_scale,
    };
    let resume = ResumeOptions {
        epochs: args.epochs.unwrap_or(defaults.epochs),
        prior_strength: args.prior_strength.unwrap_or(defaults.prior_strength),
        churn: args.churn.unwrap_or(defaults.churn),
        mask_fraction: args.mask_fraction.unwrap_or(defaults.mask_fraction),
        lr_scale,
        lr_end: args.lr_end.unwrap_or(defaults.lr_end),
        lr_decay_start: args.lr_decay_start.unwrap_or(defaults.lr_decay_start),
        threads: args.threads,
        eval_every: args.eval_every,
        eval_users: args.eval_users,
        k: args.k,
    };
    let options = TrainOptions {
        dim: info.dim,
        density: info.density,
        epochs: resume.epochs,
        seed: info.seed,
        loss,
        step: StepConfig {
            lr: info.lr * lr_scale,
            l2: info.l2,
            ..StepConfig::default()
        },
        distill: info.distill.map(Into::into),
        prune_balance: info.prune_balance,
        lr_end: resume.lr_end,
        lr_decay_start: resume.lr_decay_start,
        threads: args.threads,
        eval_every: args.eval_every,
        eval_users: args.eval_users,
        k: args.k,
        fold_in: if args.no_fold_in {
            FoldIn::Off
        } else {
            FoldIn::Default
        },
        ..TrainOptions::for_loss(info.density, loss)
    };
    let command = TrainCommand {
        train: args.train,
        test: args.test,
        output: args.output,
        values: args.values,
        storage: args.storage.storage(false),
        update_of: args.storage.update_of.clone(),
        read: args.read.options(),
        options,
        final_eval: !args.no_final_eval,
        progress: !args.quiet,
        holdout_users: 0.0,
        fold_in_validation: args.fold_in_validation,
        teacher: None,
        checkpoint: args.checkpoint,
        resume: Some(ResumeCommand {
            path: path.to_path_buf(),
            checkpoint: Box::new(checkpoint),
            options: resume,
            replay: args.replay,
            replay_share: args.replay_share,
        }),
    };
    let (_, summary, _) = run(&command)?;
    if args.json {
        print_json(&summary)?;
    }
    Ok(())
}
