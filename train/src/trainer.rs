//! The trainer: matrix factorisation with the BPR loss, Adam, and dynamic sparse training at a
//! fixed parameter budget, optionally distilled from a dense teacher (see `docs/TRAINING.md`).

use std::time::Instant;

use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{Role, ValueEncoding};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pocketrec::{FoldInParams, SoftmaxFoldIn};
use pocketrec_export::fold_in::{DEFAULT_RIDGE_ITEMS, DEFAULT_UNOBSERVED_ITEMS, scaled_params};
use pocketrec_export::storage::{
    self, ITEMS_ONLY_NEEDS_FOLD_IN, ItemStorage, USERS_FOLDED_IN, UserRows,
};

use crate::error::{Result, TrainError};
use crate::fold_in::{TuneOptions, Tuning, tune, tune_softmax_for_loss};
use crate::random::normal;

use crate::data::{self, Dataset, IdSpace};
use crate::loss::{LossConfig, LossKind};
use crate::lottery::{self, RoundLog, Sparsify};
use crate::mask::{self, Regrow, RegrowConfig, UpdateStats};
use crate::model::{DistillConfig, Mf, StepConfig, Table, Teacher};
use crate::nmf;
use crate::sample::{CHUNK, Sample, Sampler, mix};
use crate::schedule::Schedule;
use crate::validate::{self, Metrics};

/// How the initial mask is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskInit {
    /// Random columns in every row (DSL).
    Random,
    /// The largest entries of a non-negative factorisation of the interaction matrix
    /// (SparseRec).
    Nmf,
}

impl MaskInit {
    /// Parses `random` or `nmf`.
    pub fn from_name(name: &str) -> Option<MaskInit> {
        match name {
            "random" => Some(MaskInit::Random),
            "nmf" => Some(MaskInit::Nmf),
            _ => None,
        }
    }

    /// The name [`MaskInit::from_name`] reads.
    pub fn name(self) -> &'static str {
        match self {
            MaskInit::Random => "random",
            MaskInit::Nmf => "nmf",
        }
    }
}

/// Whether the written files carry a fold-in section, and with which settings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum FoldIn {
    /// No fold-in section.
    Off,
    /// The export's defaults scaled to the trained item table
    /// ([`pocketrec_export::fold_in::scaled_params`]); [`Trained::tune_fold_in`] replaces them
    /// by settings chosen on validation interactions.
    #[default]
    Default,
    /// These settings.
    Given(FoldInParams),
}

/// The fold-in settings a trained model's files carry, and how they were chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldInChoice {
    /// The objective and its settings.
    pub objective: FoldInObjective,
    /// `validation`, `given` or `default`.
    pub chosen_by: &'static str,
    /// The validation, when there was one.
    pub tuned: Option<Tuning>,
}

/// How a trained model's files fold users in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FoldInObjective {
    /// Squared error against the item Gramian (implicit ALS's step; BPR models), with these
    /// settings: the fold-in section ([`pocketrec::SectionKind::FoldIn`]).
    Squared(FoldInParams),
    /// The training loss's softmax on unit vectors (SSM and BSL models): the softmax fold-in
    /// section ([`pocketrec::SectionKind::FoldInSoftmax`]).
    Softmax(SoftmaxFoldIn),
}

/// Everything `train` needs; [`TrainOptions::default`] gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Embedding width.
    pub dim: usize,
    /// Whether and how the written files get a fold-in section.
    pub fold_in: FoldIn,
    /// Fraction of the two tables' weights that are active (1.0: dense).
    pub density: f64,
    /// Passes over the data (each draws as many triples as there are training interactions).
    pub epochs: usize,
    /// Random seed (initial values, masks, triples).
    pub seed: u64,
    /// Triples per step.
    pub batch_size: usize,
    /// Adam and L2 settings.
    pub step: StepConfig,
    /// The loss (BPR, or a cosine loss with shared negatives; see [`crate::loss`]).
    pub loss: LossConfig,
    /// Standard deviation of the initial weights.
    pub init_std: f32,
    /// Initial mask.
    pub mask_init: MaskInit,
    /// Gradient used for regrowth.
    pub regrow: Regrow,
    /// Steps between mask updates (ΔT).
    pub update_interval: u64,
    /// Fraction of the budget moved by the first update.
    pub update_fraction: f64,
    /// Fraction of training after which the mask stays fixed.
    pub update_end: f64,
    /// Fewest active weights a row keeps through pruning.
    pub row_floor: usize,
    /// Regrowth balance between rows (see [`mask::RegrowConfig::balance`]).
    pub balance: f32,
    /// Pruning balance between rows (see [`mask::RegrowConfig::prune_balance`]).
    pub prune_balance: f32,
    /// Prune and regrow within each row, keeping every row's count (see
    /// [`mask::RegrowConfig::per_row`]).
    pub per_row: bool,
    /// Learning rate at the end of training, as a fraction of `step.lr` (1: constant).
    pub lr_end: f32,
    /// Fraction of training after which the learning rate decays (on a cosine) to `lr_end`.
    pub lr_decay_start: f64,
    /// Adam's bias correction from each weight's own update count (sparse tables only).
    pub local_adam: bool,
    /// Share of the budget given to the user table at the start (0: in proportion to rows).
    pub user_share: f64,
    /// Initial budget of a row in proportion to `(1 + its training degree)^degree_power`
    /// within its table (0: the same for every row).
    pub degree_power: f64,
    /// Gradual pruning (Zhu and Gupta, 2017): when above `density`, training starts at this
    /// density (1.0: dense) and the mask updates shrink it to `density` on a cubic schedule,
    /// the last update reaching it; at or below `density` (the default, 0), the budget is fixed
    /// from the first step.
    pub start_density: f64,
    /// Knowledge distillation (sparse models only; `None`, the default: plain BPR): train the
    /// dense model first, with [`TrainOptions::for_density`]`(1.0)`'s settings and this run's
    /// data, width, epochs, batch size and seed, then train this model with the dense model's
    /// scores softening the labels (see [`crate::model`]).
    pub distill: Option<DistillConfig>,
    /// NMF iterations for `MaskInit::Nmf`.
    pub nmf_iterations: usize,
    /// Worker threads (results do not depend on it).
    pub threads: usize,
    /// Validate every this many epochs (0: never); needs a test set.
    pub eval_every: usize,
    /// Users drawn for validation (0: all users with test items).
    pub eval_users: usize,
    /// Cut-off of the validation metrics.
    pub k: usize,
    /// How a sparse model reaches its budget: dynamic sparse training (the default) or
    /// lottery tickets (see [`crate::lottery`]).
    pub sparsify: Sparsify,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            dim: 64,
            density: 0.1,
            epochs: 40,
            seed: 42,
            batch_size: 2048,
            step: StepConfig::default(),
            loss: LossConfig::BPR,
            init_std: 0.1,
            mask_init: MaskInit::Nmf,
            regrow: Regrow::Accumulated,
            update_interval: 0,
            update_fraction: 0.5,
            update_end: 0.75,
            row_floor: 0,
            balance: 1.0,
            prune_balance: 0.0,
            per_row: false,
            lr_end: 0.1,
            lr_decay_start: 0.5,
            local_adam: false,
            user_share: 0.0,
            degree_power: 0.0,
            start_density: 0.0,
            distill: None,
            nmf_iterations: 10,
            threads: default_threads(),
            eval_every: 0,
            eval_users: 0,
            k: 20,
            fold_in: FoldIn::Default,
            sparsify: Sparsify::Dst,
        }
    }
}

impl TrainOptions {
    /// The defaults for `density` with the default loss ([`DEFAULT_LOSS`]): see
    /// [`TrainOptions::for_loss`].
    pub fn for_density(density: f64) -> Self {
        TrainOptions::for_loss(density, LossConfig::defaults(DEFAULT_LOSS))
    }

    /// The defaults for `density` and `loss` (all tuned on a validation split carved out of
    /// Gowalla's training set, see `docs/TRAINING.md`). BPR: the dense model (1.0) uses
    /// Adam's learning rate 0.005 and L2 0.01, sparse models 0.01 and 0.02, 40 epochs.
    /// Cosine losses: learning rate 0.02 and no L2 dense or sparse, 80 epochs sparse and 160
    /// dense ([`COSINE_DENSE_EPOCHS`]; a sparse model's teacher trains the student's epochs),
    /// and sparse models prune relative to each row's norm (`prune_balance` 1). All decay the learning
    /// rate on a cosine from half-way to a tenth of it at the last step. Sparse models are
    /// distilled from the dense one ([`DistillConfig::default`] for BPR,
    /// [`DistillConfig::for_cosine`] for the cosine losses).
    pub fn for_loss(density: f64, loss: LossConfig) -> Self {
        let mut options = TrainOptions {
            density,
            loss,
            ..TrainOptions::default()
        };
        if loss.kind.is_cosine() {
            options.step.lr = 2e-2;
            options.step.l2 = 0.0;
            options.epochs = if density >= 1.0 {
                COSINE_DENSE_EPOCHS
            } else {
                COSINE_EPOCHS
            };
            if density < 1.0 {
                options.distill = Some(DistillConfig::for_cosine());
                // Cosine scores ignore a row's norm: prune the weights smallest against their
                // own row's norm, not the smallest overall.
                options.prune_balance = 1.0;
            }
        } else if density >= 1.0 {
            options.step.lr = 5e-3;
            options.step.l2 = 1e-2;
        } else {
            options.distill = Some(DistillConfig::default());
        }
        options
    }
}

/// The loss `train` uses unless told otherwise (chosen on validation, see `docs/TRAINING.md`).
pub const DEFAULT_LOSS: LossKind = LossKind::Bsl;

/// Epochs of the cosine losses by default for a sparse model (the student; its dense teacher
/// trains as many, [`teacher_options`]).
pub const COSINE_EPOCHS: usize = 80;

/// Epochs of the cosine losses by default for a dense model trained on its own (`--density
/// 1`): on the Gowalla validation split, 160 epochs gave Recall@20 0.1933 and 0.1926 against
/// 80 epochs' 0.1914 and 0.1906 (seeds 42 and 43), for twice the time (docs/TRAINING.md).
pub const COSINE_DENSE_EPOCHS: usize = 160;

/// The number of threads used when none is given: the machine's parallelism, at most 8.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

/// One epoch's record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean BPR loss (without L2) over the epoch's triples.
    pub loss: f64,
    /// Wall time of the epoch's steps and mask updates (validation excluded).
    pub seconds: f64,
    /// Validation metrics, when measured after this epoch.
    pub validation: Option<Metrics>,
}

/// What the training loop reports as it goes.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// Setup finished (e.g. the NMF); training starts with `total_steps` steps.
    Start {
        /// Steps in the whole run.
        total_steps: u64,
    },
    /// A step finished.
    Step {
        /// Steps taken so far.
        done: u64,
        /// 1-based epoch.
        epoch: usize,
        /// Running mean loss of the epoch.
        loss: f64,
    },
    /// The mask changed.
    MaskUpdate(&'a UpdateStats),
    /// Lottery tickets only: round `round` of `rounds` starts (0: the dense round) with
    /// `active` weights in both tables; its `Start`, `Step` and `Epoch` events follow.
    Round {
        /// 0 for the dense round.
        round: usize,
        /// Pruning rounds after the dense one.
        rounds: usize,
        /// Active weights in the round.
        active: usize,
    },
    /// An epoch finished.
    Epoch(&'a EpochLog),
    /// Distillation only: the dense teacher starts training (its `Start`, `Step` and `Epoch`
    /// events follow, then [`Event::TeacherDone`]).
    TeacherStart,
    /// Distillation only: the teacher is trained; the student's `Start` follows.
    TeacherDone(&'a TeacherLog),
}

/// The record of a distillation run's dense teacher.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherLog {
    /// Wall seconds of the teacher's whole run: setup, steps and validation.
    pub seconds: f64,
    /// The teacher's last validation, when measured.
    pub validation: Option<Metrics>,
    /// The teacher's settings.
    pub options: TrainOptions,
}

/// A trained model: tables, ids and the record of the run.
#[derive(Clone, Debug)]
pub struct Trained {
    /// Width.
    pub dim: usize,
    /// User ids in row order.
    pub users: IdSpace,
    /// Item ids in row order.
    pub items: IdSpace,
    /// `users x dim`, zeros outside the mask.
    pub user_table: Vec<f32>,
    /// `items x dim`.
    pub item_table: Vec<f32>,
    /// One record per epoch.
    pub log: Vec<EpochLog>,
    /// Seconds spent in setup (NMF, initial mask).
    pub setup_seconds: f64,
    /// Seconds spent in training steps and mask updates.
    pub train_seconds: f64,
    /// The dense teacher of a distillation run (its time is not in `train_seconds`).
    pub teacher: Option<TeacherLog>,
    /// Triples trained on.
    pub samples: u64,
    /// The options used.
    pub options: TrainOptions,
    /// The fold-in settings the files get (`None` with [`FoldIn::Off`] or `dim > 512`).
    pub fold_in: Option<FoldInChoice>,
    /// Lottery tickets only: one record per round, the dense round 0 first (empty for dynamic
    /// sparse training and dense models).
    pub rounds: Vec<RoundLog>,
    /// The model's tables as trained (before the cosine losses' scaling to unit rows), with
    /// their masks and optimiser state: what a checkpoint keeps.
    pub raw: Box<RawState>,
    /// The dense teacher's, for a run that trained its teacher: the dense master of
    /// incremental training.
    pub master: Option<Box<RawState>>,
}

/// Tables as the trainer holds them (weights, masks, Adam moments, regrowth accumulators) and
/// Adam's step count.
#[derive(Clone, Debug)]
pub struct RawState {
    /// The user table.
    pub users: Table,
    /// The item table.
    pub items: Table,
    /// Adam steps taken.
    pub steps: u64,
}

impl Trained {
    /// Non-zero weights in both tables.
    pub fn nnz(&self) -> usize {
        self.user_table
            .iter()
            .chain(&self.item_table)
            .filter(|&&x| x != 0.0)
            .count()
    }

    /// Mean non-zero weights per row for the four quartiles of rows by training degree (least
    /// active first), for users and for items: where the budget went.
    pub fn nnz_by_degree(&self, train: &data::UserItems) -> [[f64; 4]; 2] {
        let user_degree: Vec<u32> = (0..train.users())
            .map(|u| train.items(u).len() as u32)
            .collect();
        let item_degree = train.item_degrees(self.items.len());
        let mut out = [[0.0; 4]; 2];
        for (t, (table, degree)) in [
            (&self.user_table, &user_degree),
            (&self.item_table, &item_degree),
        ]
        .into_iter()
        .enumerate()
        {
            let mut rows: Vec<usize> = (0..degree.len()).collect();
            rows.sort_by_key(|&r| (degree[r], r));
            for (q, slot) in out[t].iter_mut().enumerate() {
                let group = &rows[q * rows.len() / 4..(q + 1) * rows.len() / 4];
                let nnz: usize = group
                    .iter()
                    .map(|&r| {
                        table[r * self.dim..(r + 1) * self.dim]
                            .iter()
                            .filter(|&&x| x != 0.0)
                            .count()
                    })
                    .sum();
                *slot = nnz as f64 / group.len().max(1) as f64;
            }
        }
        out
    }

    /// Training triples per second of training time.
    pub fn samples_per_second(&self) -> f64 {
        self.samples as f64 / self.train_seconds.max(1e-9)
    }

    /// The builder of the `.prec` file: both tables with `values`, the item table stored as
    /// `storage` says (chosen from the trained tables by default, see
    /// [`pocketrec_export::storage::plan`]; the user table by rows: it is read by id),
    /// original ids, dot scoring, and the training settings as properties.
    pub fn builder(&self, values: ValueEncoding, storage: &ItemStorage) -> Result<ModelBuilder> {
        self.builder_as_update(values, storage, None)
    }

    /// [`Trained::builder`], writing the model as an update of an earlier one: with block
    /// bounds, the item rows whose ids are in `previous_order` (the earlier file's item ids in
    /// its row order: [`pocketrec_export::storage::previous_item_order`]) keep that order, so
    /// that a patch from it carries only the changed rows.
    pub fn builder_as_update(
        &self,
        values: ValueEncoding,
        storage: &ItemStorage,
        previous_order: Option<Vec<u64>>,
    ) -> Result<ModelBuilder> {
        if storage.user_rows == UserRows::FoldedIn && self.fold_in.is_none() {
            return Err(TrainError::Options(ITEMS_ONLY_NEEDS_FOLD_IN.into()));
        }
        let model_error = |source| TrainError::Model {
            path: "<trained model>".into(),
            source,
        };
        let matrix = |rows: usize, data: &[f32]| {
            SparseMatrix::from_dense(rows, self.dim, data).map_err(model_error)
        };
        let with_strings = |spec: TableSpec, ids: &IdSpace| match &ids.strings {
            Some(strings) => spec.id_strings(strings.clone()),
            None => spec,
        };
        let user_spec = storage
            .user_rows
            .apply(with_strings(
                TableSpec::new(
                    "user_embedding",
                    Role::User,
                    matrix(self.users.len(), &self.user_table)?,
                )
                .values(values)
                .ids(self.users.ids.clone(), self.users.kind),
                &self.users,
            ))
            .map_err(model_error)?;
        let items = matrix(self.items.len(), &self.item_table)?;
        let o = &self.options;
        let mut builder = ModelBuilder::new()
            .property(
                "created_by",
                format!("{} train", pocketrec_export::export::CREATED_BY),
            )
            .property("train.model", format!("mf-{}", o.loss.kind.name()))
            .property("train.loss", loss_description(&o.loss))
            .property("train.dim", o.dim.to_string())
            .property("train.density", o.density.to_string())
            .property("train.epochs", o.epochs.to_string())
            .property("train.seed", o.seed.to_string())
            .property("train.threads", o.threads.to_string())
            .property("values", values.name());
        if storage.user_rows == UserRows::FoldedIn {
            builder = builder.property("users", USERS_FOLDED_IN);
        }
        let tables = storage::Tables {
            users: &user_spec.matrix,
            items: &items,
            item_bias: None,
            cosine: false,
        };
        let mut plan =
            storage::plan(storage, &tables).map_err(|e| TrainError::Options(e.to_string()))?;
        plan.keep_order = previous_order;
        for (key, value) in plan.properties() {
            builder = builder.property(key, value);
        }
        match o.sparsify {
            _ if o.density >= 1.0 => {}
            Sparsify::Dst => {
                builder = builder
                    .property("train.sparsify", "dst")
                    .property("train.mask_init", o.mask_init.name())
                    .property("train.regrow", o.regrow.name());
            }
            Sparsify::Lottery(config) => {
                let rewind = match config.rewind_step {
                    Some(step) => format!("step {step}"),
                    None => "the end of epoch 1".into(),
                };
                builder = builder.property(
                    "train.sparsify",
                    format!(
                        "lottery, {} rounds, rewound to {rewind}, global magnitude (prune balance {})",
                        config.rounds, o.prune_balance
                    ),
                );
            }
        }
        if let Some(choice) = &self.fold_in {
            builder = match choice.objective {
                FoldInObjective::Squared(params) => builder
                    .fold_in(params)
                    .property(
                        "fold_in.unobserved_weight",
                        params.unobserved_weight.to_string(),
                    )
                    .property("fold_in.regularization", params.regularization.to_string()),
                FoldInObjective::Softmax(settings) => settings
                    .properties()
                    .into_iter()
                    .fold(builder.fold_in_softmax(settings), |b, (key, value)| {
                        b.property(key, value)
                    }),
            }
            .property("fold_in.chosen_by", choice.chosen_by);
        }
        if let Some(d) = o.distill {
            builder = builder.property(
                "train.distill",
                format!(
                    "dense teacher, alpha {}, temperature {}, beta {}, negatives {}",
                    d.alpha, d.temperature, d.beta, d.negatives
                ),
            );
        }
        Ok(builder.table(user_spec).table(
            plan.apply(with_strings(
                TableSpec::new("item_embedding", Role::Item, items)
                    .values(values)
                    .ids(self.items.ids.clone(), self.items.kind),
                &self.items,
            )),
        ))
    }

    /// Chooses the fold-in settings on `validation` interactions (user rows' item rows, held
    /// out of `train`, the interactions the model was trained on): the squared-error fold-in's
    /// unobserved weight and ridge ([`crate::fold_in::tune`]), or the softmax fold-in's
    /// temperature and power around the loss's ([`crate::fold_in::tune_softmax_for_loss`]).
    /// Keeps the current choice when no user has both, when the model has no fold-in, or when
    /// `d` is beyond the runtime's stack limit; returns the tuning's result.
    pub fn tune_fold_in(
        &mut self,
        train: &data::UserItems,
        validation: &data::UserItems,
    ) -> Option<&Tuning> {
        let objective = self.fold_in.as_ref()?.objective;
        if self.dim > pocketrec::MAX_STACK_DIM {
            return None;
        }
        let options = TuneOptions {
            seed: self.options.seed,
            k: self.options.k,
            ..TuneOptions::default()
        };
        let (objective, tuning) = match objective {
            FoldInObjective::Squared(_) => {
                let tuned = tune(&self.item_table, self.dim, train, validation, &options)?;
                (
                    FoldInObjective::Squared(tuned.params),
                    Tuning::Squared(tuned),
                )
            }
            FoldInObjective::Softmax(current) => {
                // The grid replaces the temperature and power; step, iterations and clusters
                // stay the current choice's.
                let tuned = tune_softmax_for_loss(
                    &self.item_table,
                    self.dim,
                    train,
                    validation,
                    &options,
                    current,
                    self.options.loss.softmax_temperature_power(),
                )?;
                (
                    FoldInObjective::Softmax(tuned.best.settings),
                    Tuning::Softmax(tuned),
                )
            }
        };
        self.fold_in = Some(FoldInChoice {
            objective,
            chosen_by: "validation",
            tuned: Some(tuning),
        });
        self.fold_in.as_ref().and_then(|c| c.tuned.as_ref())
    }

    /// The `.prec` file's bytes (see [`Trained::builder`]).
    pub fn build(&self, values: ValueEncoding, storage: &ItemStorage) -> Result<Vec<u8>> {
        self.build_as_update(values, storage, None)
    }

    /// The `.prec` file's bytes, as an update of an earlier model (see
    /// [`Trained::builder_as_update`]).
    pub fn build_as_update(
        &self,
        values: ValueEncoding,
        storage: &ItemStorage,
        previous_order: Option<Vec<u64>>,
    ) -> Result<Vec<u8>> {
        self.builder_as_update(values, storage, previous_order)?
            .build()
            .map_err(|source| TrainError::Model {
                path: "<trained model>".into(),
                source,
            })
    }
}

/// The loss and its settings in words (the file's `train.loss` property).
pub fn loss_description(loss: &LossConfig) -> String {
    match loss.kind {
        LossKind::Bpr => "bpr".into(),
        LossKind::Ssm => format!(
            "ssm on cosine scores, temperature {}, {} shared negatives",
            loss.temperature, loss.negatives
        ),
        LossKind::Bsl => format!(
            "bsl on cosine scores, temperature {}, power {}, {} shared negatives",
            loss.temperature, loss.power, loss.negatives
        ),
        LossKind::Ccl => format!(
            "ccl on cosine scores, margin {}, negative weight {}, {} shared negatives",
            loss.margin, loss.negative_weight, loss.negatives
        ),
    }
}

/// Checks the options against each other and the data.
pub(crate) fn check(options: &TrainOptions) -> Result<()> {
    let usage = |m: String| Err(TrainError::Options(m));
    if options.dim == 0 || options.dim > pocketrec::MAX_STACK_DIM {
        return usage(format!(
            "--dim must be between 1 and {}, got {}",
            pocketrec::MAX_STACK_DIM,
            options.dim
        ));
    }
    if !(options.density > 0.0 && options.density <= 1.0) {
        return usage(format!(
            "--density must be in (0, 1], got {}",
            options.density
        ));
    }
    options.loss.check().map_err(TrainError::Options)?;
    if options.batch_size == 0 {
        return usage("--batch-size must be at least 1".into());
    }
    if !(options.step.lr > 0.0 && options.step.lr.is_finite()) {
        return usage(format!("--lr must be positive, got {}", options.step.lr));
    }
    if !(options.step.l2 >= 0.0 && options.step.l2.is_finite()) {
        return usage(format!("--l2 must be >= 0, got {}", options.step.l2));
    }
    if !(0.0..=1.0).contains(&options.update_fraction) || !(0.0..=1.0).contains(&options.update_end)
    {
        return usage("--update-fraction and --update-end must be in [0, 1]".into());
    }
    if options.k == 0 {
        return usage("-k must be at least 1".into());
    }
    let unit = |x: f64| (0.0..=1.0).contains(&x);
    if !(unit(options.lr_decay_start) && options.lr_end > 0.0 && options.lr_end <= 1.0) {
        return usage(format!(
            "--lr-decay-start must be in [0, 1] and --lr-end in (0, 1], got {} and {}",
            options.lr_decay_start, options.lr_end
        ));
    }
    if !(unit(options.user_share) && (0.0..=4.0).contains(&options.degree_power)) {
        return usage(format!(
            "--user-share must be in [0, 1] and --degree-power in [0, 4], got {} and {}",
            options.user_share, options.degree_power
        ));
    }
    if !unit(options.start_density) {
        return usage(format!(
            "--start-density must be in [0, 1], got {}",
            options.start_density
        ));
    }
    if options.per_row && options.start_density > options.density {
        return usage("--per-row keeps every row's count, so it cannot prune gradually".into());
    }
    if !(options.init_std > 0.0 && options.init_std.is_finite()) {
        return usage(format!(
            "--init-std must be positive, got {}",
            options.init_std
        ));
    }
    if !unit(f64::from(options.prune_balance)) {
        return usage(format!(
            "--prune-balance must be in [0, 1], got {}",
            options.prune_balance
        ));
    }
    if let Sparsify::Lottery(lottery) = options.sparsify {
        if !(1..=lottery::MAX_ROUNDS).contains(&lottery.rounds) {
            return usage(format!(
                "--rounds must be between 1 and {}, got {}",
                lottery::MAX_ROUNDS,
                lottery.rounds
            ));
        }
        let dst_only = [
            (options.start_density > options.density, "--start-density"),
            (options.per_row, "--per-row"),
            (options.row_floor > 0, "--row-floor"),
            (options.local_adam, "--local-adam"),
        ];
        if let Some((_, flag)) = dst_only.iter().find(|(set, _)| *set) {
            return usage(format!(
                "{flag} belongs to dynamic sparse training; lottery tickets prune by magnitude \
                 between rounds (drop it, or use --sparsify dst)"
            ));
        }
    }
    if let Some(d) = options.distill {
        if options.density >= 1.0 {
            return usage(
                "distillation trains a sparse model from the dense one: it needs --density below 1"
                    .into(),
            );
        }
        if !unit(f64::from(d.alpha)) {
            return usage(format!(
                "--distill-alpha must be in [0, 1], got {}",
                d.alpha
            ));
        }
        if !(d.temperature > 0.0 && d.temperature.is_finite()) {
            return usage(format!(
                "--distill-temperature must be positive, got {}",
                d.temperature
            ));
        }
        if !(d.beta >= 0.0 && d.beta.is_finite()) {
            return usage(format!("--distill-beta must be >= 0, got {}", d.beta));
        }
        if !(1..=64).contains(&d.negatives) {
            return usage(format!(
                "--distill-negatives must be between 1 and 64, got {}",
                d.negatives
            ));
        }
    }
    Ok(())
}

/// Normal initial weights for a `rows x dim` table.
fn initial_weights(rows: usize, dim: usize, std: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..rows * dim).map(|_| std * normal(rng)).collect()
}

/// The initial masks of both tables at `density` (every weight active at 1.0).
fn initial_masks(data: &Dataset, options: &TrainOptions, density: f64) -> (Vec<u8>, Vec<u8>) {
    let (nu, ni, dim) = (data.users.len(), data.items.len(), options.dim);
    if density >= 1.0 {
        return (vec![1; nu * dim], vec![1; ni * dim]);
    }
    let budget = budget(nu, ni, dim, density);
    let counts = if options.user_share == 0.0 && options.degree_power == 0.0 {
        mask::uniform_counts(nu + ni, dim, budget, options.seed)
    } else {
        let user_budget = if options.user_share == 0.0 {
            (budget as f64 * nu as f64 / (nu + ni).max(1) as f64).round() as usize
        } else {
            (budget as f64 * options.user_share).round() as usize
        };
        let weights = |degrees: Vec<u32>| -> Vec<f64> {
            degrees
                .into_iter()
                .map(|d| (1.0 + f64::from(d)).powf(options.degree_power))
                .collect()
        };
        let user_degrees = (0..nu).map(|u| data.train.items(u).len() as u32).collect();
        let mut counts = mask::weighted_counts(&weights(user_degrees), dim, user_budget);
        counts.extend(mask::weighted_counts(
            &weights(data.train.item_degrees(ni)),
            dim,
            budget - user_budget.min(budget),
        ));
        counts
    };
    let (user_counts, item_counts) = counts.split_at(nu);
    match options.mask_init {
        MaskInit::Random => (
            mask::random_mask(dim, user_counts, options.seed),
            mask::random_mask(dim, item_counts, mix(options.seed)),
        ),
        MaskInit::Nmf => {
            let f = nmf::factorise(&data.train, ni, dim, options.nmf_iterations, options.seed);
            (
                mask::top_mask(dim, user_counts, &f.users),
                mask::top_mask(dim, item_counts, &f.items),
            )
        }
    }
}

/// The learning rate of step `step` (1-based) of `total`, as a fraction of the base rate:
/// 1 until `lr_decay_start` of training, then a cosine down to `lr_end` at the last step.
pub fn lr_factor(options: &TrainOptions, step: u64, total: u64) -> f32 {
    let start = options.lr_decay_start.clamp(0.0, 1.0) * total as f64;
    let x = (step as f64 - start) / (total as f64 - start).max(1.0);
    if options.lr_end == 1.0 || x <= 0.0 {
        return 1.0;
    }
    let end = f64::from(options.lr_end);
    let c = 0.5 * (1.0 + (std::f64::consts::PI * x.min(1.0)).cos());
    (end + (1.0 - end) * c) as f32
}

/// The dense teacher's options for a distillation run: the dense defaults
/// ([`TrainOptions::for_density`]`(1.0)`) with the run's width, epochs, batch size, seed,
/// threads and validation settings, exactly what `--density 1.0` with those flags trains.
pub fn teacher_options(options: &TrainOptions) -> TrainOptions {
    TrainOptions {
        dim: options.dim,
        epochs: options.epochs,
        seed: options.seed,
        batch_size: options.batch_size,
        threads: options.threads,
        eval_every: options.eval_every,
        eval_users: options.eval_users,
        k: options.k,
        ..TrainOptions::for_loss(1.0, options.loss)
    }
}

/// Active weights for `users + items` rows of width `dim` at `density`.
pub fn budget(users: usize, items: usize, dim: usize, density: f64) -> usize {
    pocketrec_export::prune::budget((users + items) * dim, density)
}

/// The active-weight target after mask update `done` of `updates` under gradual pruning: from
/// `start` down to `end` on Zhu and Gupta's cubic, `end + (start - end) * (1 - done/updates)^3`,
/// exactly `end` at the last update.
fn gradual_target(start: usize, end: usize, done: usize, updates: usize) -> usize {
    if done >= updates || start <= end {
        return end;
    }
    let left = 1.0 - done as f64 / updates as f64;
    end + ((start - end) as f64 * left * left * left).round() as usize
}

/// The users validated during training: those with test items, or a seeded sample of them.
fn validation_users(data: &Dataset, options: &TrainOptions) -> Vec<u32> {
    let Some(test) = &data.test else {
        return Vec::new();
    };
    let mut users: Vec<u32> = (0..test.users())
        .filter(|&u| !test.items(u).is_empty())
        .map(|u| u as u32)
        .collect();
    if options.eval_users > 0 && options.eval_users < users.len() {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(options.seed ^ 0x0076_616c));
        for k in 0..options.eval_users {
            let pick = rng.random_range(k..users.len());
            users.swap(k, pick);
        }
        users.truncate(options.eval_users);
        users.sort_unstable();
    }
    users
}

/// The negatives shared by step `step`'s batch: uniform item rows from a stream of their own
/// (`seed`, `step`), with repeats.
fn draw_negatives(seed: u64, step: u64, items: usize, out: &mut [u32]) {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ mix(step ^ 0x6e65_6773)));
    for j in out {
        *j = rng.random_range(0..items as u32);
    }
}

/// Rows of `table` (`dim` wide) scaled to unit length (rows of zeros stay zero).
pub fn normalised(table: &[f32], dim: usize) -> Vec<f32> {
    let mut out = table.to_vec();
    for row in out.chunks_exact_mut(dim) {
        let norm = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for x in row {
                *x = (f64::from(*x) / norm) as f32;
            }
        }
    }
    out
}

/// The teacher of a distillation run read from a written model (a dense model trained on the
/// same interactions, e.g. by `train --density 1.0`), so that several sparse runs share one
/// teacher: every user and item of `data` is looked up by id in `model`'s tables and decoded
/// to f32. Errors name an id the model lacks or a width that differs.
pub fn teacher_from_model(
    model: &pocketrec::Model<impl AsRef<[u8]>>,
    data: &Dataset,
    dim: usize,
    config: DistillConfig,
) -> Result<Teacher> {
    let read = |role: pocketrec::Role, ids: &IdSpace, what: &str| -> Result<Vec<f32>> {
        let fail = |m: String| TrainError::Options(format!("the teacher model: {m}"));
        let table = model
            .table(role)
            .map_err(|e| fail(format!("no {what} table ({e})")))?;
        if table.dim() != dim {
            return Err(fail(format!(
                "its {what} table is {} wide, this run is --dim {dim}",
                table.dim()
            )));
        }
        let mut out = vec![0.0f32; ids.len() * dim];
        for (row, (&id, slot)) in ids.ids.iter().zip(out.chunks_exact_mut(dim)).enumerate() {
            let found = table.find(id).map_err(|_| {
                let shown = match &ids.strings {
                    Some(s) => s[row].clone(),
                    None => id.to_string(),
                };
                fail(format!(
                    "no {what} with id {shown} (train it on the same interactions)"
                ))
            })?;
            table
                .decode_row(found, slot)
                .map_err(|e| fail(format!("{what} row {found}: {e}")))?;
        }
        Ok(out)
    };
    Ok(Teacher {
        dim,
        users: read(pocketrec::Role::User, &data.users, "user")?,
        items: read(pocketrec::Role::Item, &data.items, "item")?,
        config,
    })
}

/// Trains a model on `data` (see the module docs), reporting progress to `observe`.
pub fn train(
    data: &Dataset,
    options: &TrainOptions,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Trained> {
    train_with_teacher(data, options, None, observe)
}

/// [`train`] with a given teacher for a distillation run (see [`teacher_from_model`]) instead
/// of training the dense one first; its `config` replaces `options.distill`'s. Without
/// `options.distill` the teacher is not used.
pub fn train_with_teacher(
    data: &Dataset,
    options: &TrainOptions,
    teacher: Option<Teacher>,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Trained> {
    check(options)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .build()
        .map_err(|e| {
            TrainError::Options(format!("cannot start {} threads: {e}", options.threads))
        })?;
    pool.install(|| {
        let mut trained = train_in_pool(data, options, teacher, observe)?;
        trained.fold_in = choose_fold_in(&trained);
        Ok(trained)
    })
}

fn train_in_pool(
    data: &Dataset,
    options: &TrainOptions,
    given: Option<Teacher>,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Trained> {
    if let (Sparsify::Lottery(config), true) = (options.sparsify, options.density < 1.0) {
        return lottery::train(data, options, config, given, observe);
    }
    let mut master = None;
    let teacher = match (options.distill, given) {
        (Some(_), Some(teacher)) => {
            let record = TeacherLog {
                seconds: 0.0,
                validation: None,
                options: teacher_options(options),
            };
            Some((teacher, record))
        }
        (Some(config), None) => {
            observe(Event::TeacherStart);
            let started = Instant::now();
            let teacher_options = teacher_options(options);
            let dense = train_in_pool(data, &teacher_options, None, observe)?;
            let record = TeacherLog {
                seconds: started.elapsed().as_secs_f64(),
                validation: dense.log.iter().rev().find_map(|l| l.validation),
                options: teacher_options,
            };
            observe(Event::TeacherDone(&record));
            master = Some(dense.raw);
            Some((
                Teacher {
                    dim: dense.dim,
                    users: dense.user_table,
                    items: dense.item_table,
                    config,
                },
                record,
            ))
        }
        (None, _) => None,
    };
    let (teacher, teacher_log) = teacher.unzip();
    let setup = Instant::now();
    let (nu, ni, dim) = (data.users.len(), data.items.len(), options.dim);
    let mut mf = initial_model(data, options)?;
    mf.teacher = teacher;
    let setup_seconds = setup.elapsed().as_secs_f64();
    let sparse = options.density < 1.0;
    let gradual = sparse && options.start_density > options.density;

    let per_epoch = data.train.len();
    let steps_per_epoch = per_epoch.div_ceil(options.batch_size) as u64;
    let total_steps = steps_per_epoch * options.epochs as u64;
    let dst = if sparse {
        let interval = if options.update_interval == 0 {
            steps_per_epoch
        } else {
            options.update_interval
        };
        let schedule = Schedule::new(
            total_steps,
            interval,
            options.update_end,
            options.update_fraction,
        );
        let budget_start = mf.users.active_count() + mf.items.active_count();
        let budget_end = if gradual {
            budget(nu, ni, dim, options.density)
        } else {
            budget_start
        };
        if gradual && schedule.update_count() == 0 {
            return Err(TrainError::Options(format!(
                "--start-density {} needs at least one mask update to reach --density {}: \
                 train for more steps or update more often (--update-interval, --update-end)",
                options.start_density, options.density
            )));
        }
        Some(DstPlan {
            schedule,
            regrow: RegrowConfig {
                floor: options.row_floor,
                balance: options.balance,
                prune_balance: options.prune_balance,
                per_row: options.per_row,
            },
            accumulated: options.regrow == Regrow::Accumulated,
            budget_start,
            budget_end,
            gradual,
            within: None,
        })
    } else {
        None
    };
    observe(Event::Start { total_steps });
    let run = run_steps(
        &mut mf,
        &StepPlan {
            dst: dst.as_ref(),
            ..StepPlan::new(data, options)
        },
        observe,
    );
    Ok(Trained {
        train_seconds: run.train_seconds,
        samples: run.samples,
        master,
        ..finish(
            data,
            options,
            mf.into(),
            run.log,
            setup_seconds,
            teacher_log,
        )
    })
}

/// The model before its first step: initial weights drawn with the seed and, for a sparse run,
/// the initial masks (at `start_density` for gradual pruning).
pub(crate) fn initial_model(data: &Dataset, options: &TrainOptions) -> Result<Mf> {
    let (nu, ni, dim) = (data.users.len(), data.items.len(), options.dim);
    if Sampler::new(&data.train, ni, options.seed).is_empty() {
        return Err(TrainError::Options(
            "no user has both an item and an item to contrast it with; nothing to train".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(mix(options.seed ^ 0x696e_6974));
    let mut users = Table::dense(
        nu,
        dim,
        initial_weights(nu, dim, options.init_std, &mut rng),
    );
    let mut items = Table::dense(
        ni,
        dim,
        initial_weights(ni, dim, options.init_std, &mut rng),
    );
    let sparse = options.density < 1.0;
    let gradual = sparse && options.start_density > options.density;
    if sparse {
        let density = if gradual {
            options.start_density
        } else {
            options.density
        };
        let (user_mask, item_mask) = initial_masks(data, options, density);
        users = users.with_mask(user_mask);
        items = items.with_mask(item_mask);
    }
    if sparse && options.local_adam {
        users.count = Some(vec![0; users.w.len()]);
        items.count = Some(vec![0; items.w.len()]);
    }
    Ok(Mf::new(users, items, options.step, options.threads))
}

/// Dynamic sparse training's mask updates during a run.
pub(crate) struct DstPlan {
    schedule: Schedule,
    regrow: RegrowConfig,
    accumulated: bool,
    /// Active weights at the start.
    budget_start: usize,
    /// Active weights at the end (below `budget_start` only for gradual pruning).
    budget_end: usize,
    gradual: bool,
    /// Only these rows of each table change their masks (an incremental update's rows with
    /// new interactions); `None`: every row.
    within: Option<[Vec<bool>; 2]>,
}

impl DstPlan {
    /// Mask updates on `schedule` over the rows `within` marks, moving `schedule.fraction`
    /// of `movable` active weights each time (an incremental update's).
    pub(crate) fn within(
        schedule: Schedule,
        regrow: RegrowConfig,
        movable: usize,
        within: [Vec<bool>; 2],
    ) -> Self {
        DstPlan {
            schedule,
            regrow,
            accumulated: true,
            budget_start: movable,
            budget_end: movable,
            gradual: false,
            within: Some(within),
        }
    }
}

/// What [`run_steps`] runs: the data, the options, and which of the run's steps.
pub(crate) struct StepPlan<'a> {
    pub(crate) data: &'a Dataset,
    pub(crate) options: &'a TrainOptions,
    /// The first step taken (1-based): earlier steps of the run's schedule are skipped without
    /// drawing their samples (a lottery round resumes at its rewind step + 1). The model's
    /// `steps` must be `first_step - 1 + adam_offset`.
    pub(crate) first_step: u64,
    /// The last step taken (`None`: the schedule's last).
    pub(crate) last_step: Option<u64>,
    /// Add every step's gradients to the sparse tables' accumulators (a mask update follows).
    pub(crate) accumulate: bool,
    /// Adam steps the model took before this schedule began (a resumed model's).
    pub(crate) adam_offset: u64,
    /// The mask updates (`None`: the masks stay as they are).
    pub(crate) dst: Option<&'a DstPlan>,
    /// Copy both tables (weights and Adam moments) after this step (0: before the first).
    pub(crate) snapshot_at: Option<u64>,
}

impl<'a> StepPlan<'a> {
    /// The whole schedule of `options` on `data` for a model that has taken no step, masks
    /// fixed, nothing accumulated or copied.
    pub(crate) fn new(data: &'a Dataset, options: &'a TrainOptions) -> Self {
        StepPlan {
            data,
            options,
            first_step: 1,
            last_step: None,
            accumulate: false,
            adam_offset: 0,
            dst: None,
            snapshot_at: None,
        }
    }
}

/// What [`run_steps`] did.
pub(crate) struct StepsDone {
    pub(crate) log: Vec<EpochLog>,
    pub(crate) train_seconds: f64,
    pub(crate) samples: u64,
    /// The tables at `StepPlan::snapshot_at`, when that step was reached.
    pub(crate) snapshot: Option<[Table; 2]>,
}

/// Runs the steps of `plan` on `mf`: draws each step's samples (the same ones at the same step
/// of any run with the same seed), steps, updates the masks on DST's schedule, validates, and
/// reports events.
pub(crate) fn run_steps(
    mf: &mut Mf,
    plan: &StepPlan<'_>,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> StepsDone {
    let (data, options) = (plan.data, plan.options);
    let (ni, dim) = (data.items.len(), options.dim);
    let sampler = Sampler::new(&data.train, ni, options.seed);
    let per_epoch = data.train.len();
    let steps_per_epoch = per_epoch.div_ceil(options.batch_size) as u64;
    let total_steps = steps_per_epoch * options.epochs as u64;
    let eval_users = validation_users(data, options);
    let mut snapshot = None;
    if plan.snapshot_at == Some(mf.steps - plan.adam_offset) {
        snapshot = Some([mf.users.clone(), mf.items.clone()]);
    }
    let mut updates_done = 0usize;
    if let Some(dst) = plan.dst {
        updates_done = (1..plan.first_step)
            .filter(|&s| dst.schedule.updates_after(s))
            .count();
    }

    // Batches are whole chunks of triples so that each is drawn from its own streams.
    let batch = options.batch_size.div_ceil(CHUNK) * CHUNK;
    let mut samples = vec![Sample::default(); batch];
    let mut negatives = vec![0u32; options.loss.negatives];
    let mut log = Vec::with_capacity(options.epochs);
    let mut train_seconds = 0.0;
    let mut trained_samples = 0u64;
    for epoch in 1..=options.epochs {
        if (epoch as u64) * steps_per_epoch < plan.first_step {
            continue;
        }
        if plan
            .last_step
            .is_some_and(|last| (epoch as u64 - 1) * steps_per_epoch >= last)
        {
            break;
        }
        let started = Instant::now();
        let mut loss_sum = 0.0f64;
        let mut done = 0usize;
        let mut trained = 0usize;
        let mut first = 0usize;
        let mut step = (epoch as u64 - 1) * steps_per_epoch;
        while done < per_epoch {
            let n = options.batch_size.min(per_epoch - done);
            let drawn_len = n.div_ceil(CHUNK) * CHUNK;
            step += 1;
            if plan.last_step.is_some_and(|last| step > last) {
                break;
            }
            if step < plan.first_step {
                done += n;
                first += drawn_len;
                continue;
            }
            debug_assert_eq!(mf.steps + 1, step + plan.adam_offset);
            let drawn = &mut samples[..drawn_len];
            match &mf.teacher {
                Some(t) if t.config.negatives > 1 && !options.loss.kind.is_cosine() => sampler
                    .fill_hardest(epoch as u64, first, drawn, t.config.negatives, |u, i| {
                        t.score(u, i)
                    }),
                _ => sampler.fill(epoch as u64, first, drawn),
            }
            first += drawn_len;
            mf.config.lr = options.step.lr * lr_factor(options, step, total_steps);
            let need = plan.accumulate
                || plan
                    .dst
                    .is_some_and(|d| d.schedule.gradient_needed(step, d.accumulated));
            loss_sum += if options.loss.kind.is_cosine() {
                draw_negatives(options.seed, step, ni, &mut negatives);
                mf.step_contrastive(&drawn[..n], &negatives, &options.loss, need)
            } else {
                mf.step(&drawn[..n], need)
            };
            done += n;
            trained += n;
            if let Some(dst) = plan.dst.filter(|d| d.schedule.updates_after(step)) {
                let k = (dst.schedule.fraction(step) * dst.budget_end as f64).round() as usize;
                updates_done += 1;
                let stats = if dst.gradual {
                    let active = mf.users.active_count() + mf.items.active_count();
                    let target = gradual_target(
                        dst.budget_start,
                        dst.budget_end,
                        updates_done,
                        dst.schedule.update_count(),
                    );
                    let drop = active.saturating_sub(target) + k;
                    mask::prune_and_regrow_unequal(
                        [&mut mf.users, &mut mf.items],
                        drop,
                        k,
                        dst.regrow,
                    )
                } else if let Some([users, items]) = &dst.within {
                    mask::prune_and_regrow_within(
                        [&mut mf.users, &mut mf.items],
                        k,
                        dst.regrow,
                        [users, items],
                    )
                } else {
                    mask::prune_and_regrow([&mut mf.users, &mut mf.items], k, dst.regrow)
                };
                observe(Event::MaskUpdate(&stats));
            }
            if plan.snapshot_at == Some(step) {
                snapshot = Some([mf.users.clone(), mf.items.clone()]);
            }
            observe(Event::Step {
                done: step,
                epoch,
                loss: loss_sum / trained as f64,
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        trained_samples += trained as u64;
        let validate_now = !eval_users.is_empty()
            && options.eval_every > 0
            && (epoch % options.eval_every == 0 || epoch == options.epochs);
        let validation = match (&data.test, validate_now) {
            (Some(test), true) if options.loss.kind.is_cosine() => Some(validate::evaluate(
                &normalised(&mf.users.w, dim),
                &normalised(&mf.items.w, dim),
                dim,
                &data.train,
                test,
                &eval_users,
                options.k,
            )),
            (Some(test), true) => Some(validate::evaluate(
                &mf.users.w,
                &mf.items.w,
                dim,
                &data.train,
                test,
                &eval_users,
                options.k,
            )),
            _ => None,
        };
        let record = EpochLog {
            epoch,
            loss: loss_sum / trained.max(1) as f64,
            seconds,
            validation,
        };
        observe(Event::Epoch(&record));
        log.push(record);
    }
    StepsDone {
        log,
        train_seconds,
        samples: trained_samples,
        snapshot,
    }
}

/// A table as the files hold it: a cosine loss's rows scaled to unit length (so that files score
/// by inner product), other losses' as trained.
pub(crate) fn written(table: &Table, cosine: bool) -> Vec<f32> {
    if cosine {
        normalised(&table.w, table.dim)
    } else {
        table.w.clone()
    }
}

impl From<Mf> for RawState {
    fn from(mf: Mf) -> Self {
        RawState {
            users: mf.users,
            items: mf.items,
            steps: mf.steps,
        }
    }
}

/// The trained model from a run's final state and epoch log (tables as [`written`]); its time
/// and sample counts are zero, for the caller to fill in.
pub(crate) fn finish(
    data: &Dataset,
    options: &TrainOptions,
    state: RawState,
    log: Vec<EpochLog>,
    setup_seconds: f64,
    teacher: Option<TeacherLog>,
) -> Trained {
    let cosine = options.loss.kind.is_cosine();
    Trained {
        dim: options.dim,
        users: data.users.clone(),
        items: data.items.clone(),
        user_table: written(&state.users, cosine),
        item_table: written(&state.items, cosine),
        log,
        setup_seconds,
        train_seconds: 0.0,
        teacher,
        samples: 0,
        options: options.clone(),
        fold_in: None,
        rounds: Vec::new(),
        raw: Box::new(state),
        master: None,
    }
}

/// The softmax fold-in's temperature for a pruned model (density below 1), in units of the
/// loss's: 1.7 (for_loss's 1.4 for a dense one). Chosen on the Gowalla validation split.
pub const SPARSE_FOLD_IN_TEMPERATURE: f32 = 1.7;

/// The softmax fold-in's power for a pruned model, in units of the loss's: 1.5 (for_loss's 1
/// for a dense one). Chosen on the Gowalla validation split.
pub const SPARSE_FOLD_IN_POWER: f32 = 1.5;

/// The fold-in settings for a trained item table (see [`FoldIn`]).
pub(crate) fn choose_fold_in(trained: &Trained) -> Option<FoldInChoice> {
    if trained.dim > pocketrec::MAX_STACK_DIM {
        return None;
    }
    let defaults = || {
        let matrix =
            SparseMatrix::from_dense(trained.items.len(), trained.dim, &trained.item_table).ok()?;
        Some(scaled_params(
            &matrix,
            DEFAULT_UNOBSERVED_ITEMS,
            DEFAULT_RIDGE_ITEMS,
        ))
    };
    match trained.options.fold_in {
        FoldIn::Off => None,
        FoldIn::Given(params) => Some(FoldInChoice {
            objective: FoldInObjective::Squared(params),
            chosen_by: "given",
            tuned: None,
        }),
        // A softmax-trained model folds users in by its own loss: on the Gowalla validation
        // split the squared-error fold-in kept 82 % of a BSL model's Recall@20, this 100-103 %.
        FoldIn::Default if matches!(trained.options.loss.kind, LossKind::Ssm | LossKind::Bsl) => {
            let (temperature, power) = trained.options.loss.softmax_temperature_power();
            let settings = SoftmaxFoldIn::for_loss(temperature, power, trained.items.len());
            // A pruned model's users fold in best with a softer softmax and a heavier partition
            // term: on the Gowalla validation split (every user) the density-0.1 model kept
            // 102.8 % of its trained users' Recall@20 at 1.7τ and 1.5P, 101.2 % at for_loss's
            // 1.4τ and P; the dense model preferred for_loss's (100.2 % against 96.8 %).
            let settings = if trained.options.density < 1.0 {
                SoftmaxFoldIn {
                    temperature: SPARSE_FOLD_IN_TEMPERATURE * temperature,
                    power: SPARSE_FOLD_IN_POWER * power,
                    ..settings
                }
            } else {
                settings
            };
            Some(FoldInChoice {
                objective: FoldInObjective::Softmax(settings),
                chosen_by: "default",
                tuned: None,
            })
        }
        FoldIn::Default => defaults().map(|params| FoldInChoice {
            objective: FoldInObjective::Squared(params),
            chosen_by: "default",
            tuned: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gradual_target_falls_on_a_cubic_to_the_final_budget() {
        let targets: Vec<usize> = (1..=4).map(|j| gradual_target(1000, 100, j, 4)).collect();
        // 100 + 900 * (3/4)^3, (1/2)^3, (1/4)^3, 0.
        assert_eq!(targets, vec![480, 213, 114, 100]);
        assert_eq!(gradual_target(1000, 100, 9, 4), 100);
        assert_eq!(gradual_target(100, 100, 1, 4), 100);
    }

    use super::*;

    #[test]
    fn learning_rate_is_constant_then_decays_on_a_cosine() {
        let options = TrainOptions {
            lr_end: 0.1,
            lr_decay_start: 0.5,
            ..TrainOptions::default()
        };
        assert_eq!(lr_factor(&options, 1, 100), 1.0);
        assert_eq!(lr_factor(&options, 50, 100), 1.0);
        assert!((lr_factor(&options, 75, 100) - 0.55).abs() < 1e-6);
        assert!((lr_factor(&options, 100, 100) - 0.1).abs() < 1e-6);
        let constant = TrainOptions {
            lr_end: 1.0,
            ..options
        };
        assert_eq!(lr_factor(&constant, 90, 100), 1.0);
    }
}
