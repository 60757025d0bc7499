//! # pocketrec-train
//!
//! The training library of pocketrec: it reads interaction logs (the LightGCN split format and
//! `user item [rating] [timestamp]` logs), trains sparse (or dense) matrix-factorisation
//! embeddings (the bilateral softmax loss on cosine scores by default, or BPR) at a fixed
//! parameter budget with dynamic sparse training and distillation,
//! evaluates a `.prec` file through the runtime's own `recommend` (full-ranking Recall@k and
//! NDCG@k), and generates synthetic interaction sets and tables. It builds files through the
//! runtime's builder and uses the exporter's magnitude pruning; it never depends on a
//! command-line parser or a progress-bar crate: training reports [`Event`]s to a callback and
//! evaluation reports to a [`pocketrec_export::progress::Progress`] observer.
//!
//! ```no_run
//! use pocketrec_train::{TrainOptions, data, train};
//! use std::path::Path;
//! # fn main() -> pocketrec_train::Result<()> {
//! let data = data::read_dataset(Path::new("train.txt"), None, &Default::default())?;
//! let options = TrainOptions { density: 0.1, epochs: 20, ..TrainOptions::default() };
//! let trained = train(&data, &options, &mut |_| {})?;
//! let storage = pocketrec_export::storage::ItemStorage::default(); // chosen from the tables
//! let bytes = trained.build(pocketrec::ValueEncoding::I8, &storage)?;
//! # let _ = bytes;
//! # Ok(()) }
//! ```
//!
//! The modules, one job each: [`data`] reads logs and keeps ids, [`sample`] draws BPR triples
//! (and the cosine losses' pairs), [`loss`] defines the losses (BPR; BSL, SSM and CCL on
//! cosine scores with shared negatives), [`model`] is the training step with sparse Adam (the
//! BPR step, and the cosine losses' step built on [`gemm`], a checked view of
//! `matrixmultiply`), [`mask`] initialises masks and prunes and
//! regrows, [`lottery`] finds lottery tickets (iterative magnitude pruning with rewinding), [`nmf`] factorises the interaction matrix for the NMF mask, [`schedule`] says when
//! and how much the mask moves, [`validate`] measures Recall@k during training, and
//! [`synthetic`] makes the demo's interaction set, [`random`] draws random tables,
//! [`structured`] draws tables with a trained model's statistics and measures them, [`trainer`]
//! runs the training loop, and [`eval`] measures a written file.

pub mod checkpoint;
pub mod data;
pub mod drift;
pub mod error;
pub mod eval;
pub mod fold_in;
pub mod gemm;
pub mod incremental;
pub mod kernels;
pub mod loss;
pub mod lottery;
pub mod mask;
pub mod model;
pub mod nmf;
pub mod periods;
pub mod random;
pub mod sample;
pub mod schedule;
pub mod structured;
pub mod synthetic;
pub mod time;
pub mod trainer;
pub mod validate;

pub use error::{Result, TrainError};
pub use lottery::{LotteryConfig, Sparsify};
pub use trainer::{
    EpochLog, Event, FoldIn, FoldInChoice, MaskInit, TeacherLog, TrainOptions, Trained, budget,
    default_threads, lr_factor, teacher_from_model, teacher_options, train, train_with_teacher,
};
