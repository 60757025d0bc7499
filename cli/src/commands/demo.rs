//! `pocketrec demo`: the whole path on a built-in interaction set, in about a minute: generate a
//! log with taste clusters and a popularity skew and its held-out split, train the dense model
//! and a sparse one distilled from it (the default loss), export them, evaluate the written
//! files through the runtime, and recommend.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pocketrec::ValueEncoding;
use pocketrec::builder::Layout;

use pocketrec_export::atomic::write_atomic;
use pocketrec_export::inspect::thousands;
use pocketrec_export::open_model;
use pocketrec_export::storage::ItemStorage;
use pocketrec_train::data::{ReadOptions, read_dataset};
use pocketrec_train::drift::{DriftSpec, generate_drifting, to_log_text};
use pocketrec_train::eval::{EvalOptions, EvalReport, evaluate};
use pocketrec_train::incremental::{ResumeOptions, align, checkpoint_of, resume};
use pocketrec_train::model::Teacher;
use pocketrec_train::synthetic::{SyntheticSpec, generate, to_lightgcn_text};
use pocketrec_train::{TrainOptions, Trained, default_threads, train, train_with_teacher};

use crate::error::{CliError, Result};
use crate::recommendations::recommend_for;

/// Demo settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoOptions {
    /// Where to keep the generated files; a temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// Random seed (data and training).
    pub seed: u64,
    /// Number of users.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// Embedding width.
    pub dim: usize,
    /// Density of the sparse model.
    pub density: f64,
    /// Epochs for each model.
    pub epochs: usize,
    /// Worker threads.
    pub threads: usize,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            dir: None,
            seed: 42,
            users: 6000,
            items: 4000,
            dim: 64,
            density: 0.1,
            epochs: 40,
            threads: default_threads(),
        }
    }
}

/// One exported file and its measurements.
struct Row {
    label: String,
    values: ValueEncoding,
    path: PathBuf,
    bytes: u64,
    report: EvalReport,
    train_seconds: f64,
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    Ok(write_atomic(path, text.as_bytes())?)
}

/// Runs the demo, printing as it goes.
pub fn run(options: &DemoOptions) -> Result<()> {
    let started = Instant::now();
    let temp;
    let dir: &Path = match &options.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| CliError::io(d, e))?;
            d
        }
        None => {
            temp = tempfile::tempdir().map_err(|e| CliError::io(std::env::temp_dir(), e))?;
            temp.path()
        }
    };

    let spec = SyntheticSpec {
        users: options.users,
        items: options.items,
        seed: options.seed,
        ..SyntheticSpec::default()
    };
    let generated = generate(&spec);
    let train_path = dir.join("train.txt");
    let test_path = dir.join("test.txt");
    let test = generated.test.as_ref().map(|t| t.len()).unwrap_or(0);
    write_text(
        &train_path,
        &to_lightgcn_text(&generated.train, &generated.users, &generated.items),
    )?;
    if let Some(t) = &generated.test {
        write_text(
            &test_path,
            &to_lightgcn_text(t, &generated.users, &generated.items),
        )?;
    }
    println!(
        "1. generated an interaction log: {} users, {} items in {} taste clusters, Zipf popularity,\n   {} training and {} held-out interactions ({} and {})",
        thousands(options.users as u64),
        thousands(options.items as u64),
        spec.clusters,
        thousands(generated.train.len() as u64),
        thousands(test as u64),
        train_path.display(),
        test_path.display()
    );
    // Train from the files, as `pocketrec train` does.
    let read = ReadOptions::default();
    let data = read_dataset(&train_path, Some(&test_path), &read)?;

    let settings = |density| TrainOptions {
        dim: options.dim,
        epochs: options.epochs,
        seed: options.seed,
        threads: options.threads,
        ..TrainOptions::for_density(density)
    };
    let sparse_options = settings(options.density);
    let dense_options = settings(1.0);
    println!(
        "2. training MF-{}, d = {}, {} epochs: dense, then sparse at {:.0}% density (NMF mask, \
         prune + regrow) distilled from the dense model",
        sparse_options.loss.kind.name().to_uppercase(),
        options.dim,
        options.epochs,
        100.0 * options.density
    );
    // The dense model is also the sparse one's teacher (trained once, as `--teacher` does).
    let dense = train(&data, &dense_options, &mut |_| {})?;
    let teacher = sparse_options.distill.map(|config| Teacher {
        dim: dense.dim,
        users: dense.user_table.clone(),
        items: dense.item_table.clone(),
        config,
    });
    let mut sparse = train_with_teacher(&data, &sparse_options, teacher, &mut |_| {})?;
    if let Some(record) = sparse.teacher.as_mut() {
        record.seconds = dense.train_seconds + dense.setup_seconds;
    }

    println!(
        "3. exported, and evaluated through the runtime (Recall@20 / NDCG@20, training items excluded):\n"
    );
    let eval_options = EvalOptions {
        train: train_path.clone(),
        test: test_path.clone(),
        k: 20,
        read,
        threads: options.threads,
        fold_in: false,
    };
    let mut rows = Vec::new();
    let mut export = |label: &str, model: &Trained, values: ValueEncoding| -> Result<()> {
        let path = dir.join(format!("demo-{label}-{values}.prec"));
        let storage = ItemStorage {
            layout: Some(Layout::Rows),
            ..ItemStorage::default()
        };
        let bytes = model.build(values, &storage)?;
        write_atomic(&path, &bytes)?;
        let opened = open_model(&path)?;
        let report = evaluate(&opened, &path, &eval_options)?;
        rows.push(Row {
            label: label.to_string(),
            values,
            path,
            bytes: bytes.len() as u64,
            report,
            // A distilled model's time includes its dense teacher's.
            train_seconds: model.train_seconds + model.teacher.as_ref().map_or(0.0, |t| t.seconds),
        });
        Ok(())
    };
    export("dense", &dense, ValueEncoding::F32)?;
    for values in [
        ValueEncoding::F32,
        ValueEncoding::F16,
        ValueEncoding::I8,
        ValueEncoding::I4,
    ] {
        export("sparse", &sparse, values)?;
    }
    let dense_bytes = 4 * (options.users + options.items) as u64 * options.dim as u64;
    let dense_recall = rows[0].report.recall;
    println!(
        "   {:<7} {:>7} {:>6} {:>12} {:>9} {:>10} {:>8} {:>8} {:>9}",
        "model",
        "density",
        "values",
        "bytes",
        "of dense",
        "Recall@20",
        "kept",
        "NDCG@20",
        "trained"
    );
    for row in &rows {
        println!(
            "   {:<7} {:>6.0}% {:>6} {:>12} {:>8.1}% {:>10.4} {:>7.0}% {:>8.4} {:>8.1}s",
            row.label,
            if row.label == "dense" {
                100.0
            } else {
                100.0 * options.density
            },
            row.values.name(),
            thousands(row.bytes),
            100.0 * row.bytes as f64 / dense_bytes as f64,
            row.report.recall,
            100.0 * row.report.recall / dense_recall.max(1e-12),
            row.report.ndcg,
            row.train_seconds,
        );
    }
    println!(
        "   (dense f32 tables: {} bytes; \"kept\" is Recall@20 relative to the dense model)",
        thousands(dense_bytes)
    );

    let chosen = rows.last().map(|r| r.path.clone()).unwrap_or_default();
    let model = open_model(&chosen)?;
    model.verify().map_err(|source| CliError::Model {
        path: chosen.clone(),
        source,
    })?;
    println!(
        "\n4. recommendations from {} (verified), k = 5, training items excluded; * = held out:",
        chosen.display()
    );
    let test_lists = data.test.as_ref();
    for user in [0usize, options.users / 2, options.users.saturating_sub(1)] {
        let exclude: Vec<String> = data
            .train
            .items(user)
            .iter()
            .map(|&i| data.items.ids[i as usize].to_string())
            .collect();
        let user_id = data.users.ids[user];
        let start = Instant::now();
        let recs = recommend_for(&model, &chosen, &user_id.to_string(), 5, &exclude)?;
        let took = start.elapsed();
        let held: Vec<u64> = test_lists
            .map(|t| {
                t.items(user)
                    .iter()
                    .map(|&i| data.items.ids[i as usize])
                    .collect()
            })
            .unwrap_or_default();
        let items: Vec<String> = recs
            .items
            .iter()
            .map(|r| {
                let held_out = match &r.item {
                    crate::recommendations::ExternalId::Integer(id) => held.contains(id),
                    crate::recommendations::ExternalId::Text(_) => false,
                };
                let mark = if held_out { "*" } else { "" };
                format!("{}{mark} ({:.2})", r.item, r.score)
            })
            .collect();
        println!(
            "   user {user_id:>5}: {}   [{:.2?}]",
            items.join(", "),
            took
        );
    }
    keeps_learning(dir, options, &sparse_options)?;
    println!("\ndone in {:.1?}", started.elapsed());
    if options.dir.is_some() {
        println!("files kept in {}", dir.display());
    }
    Ok(())
}

/// Step 5: a model that keeps learning. A drifting log of three weeks (new users and items,
/// popularity moving): the sparse model trained on week 1, then updated with week 2 from its
/// checkpoint; both tested on week 3 (weeks 1 and 2 excluded from the rankings).
fn keeps_learning(dir: &Path, options: &DemoOptions, settings: &TrainOptions) -> Result<()> {
    let log = generate_drifting(&DriftSpec {
        periods: 3,
        users: 1000,
        items: 800,
        seed: options.seed,
        ..DriftSpec::default()
    });
    let week = |k: u32| -> Vec<_> { log.iter().copied().filter(|e| e.period == k).collect() };
    let paths: Vec<PathBuf> = (1..=3).map(|k| dir.join(format!("week-{k}.tsv"))).collect();
    for (k, path) in paths.iter().enumerate() {
        write_text(path, &to_log_text(&week(k as u32)))?;
    }
    let history = dir.join("weeks-1-2.tsv");
    write_text(&history, &to_log_text(&[week(0), week(1)].concat()))?;
    let read = ReadOptions::default();
    let first_data = read_dataset(&paths[0], None, &read)?;
    let first = train(&first_data, settings, &mut |_| {})?;
    let checkpoint = checkpoint_of(&first, first_data.train.len())?;
    let new = read_dataset(&paths[1], None, &read)?;
    let new = align(&new, &checkpoint.users, &checkpoint.items, &paths[1])?;
    let update = ResumeOptions {
        threads: options.threads,
        ..ResumeOptions::default()
    };
    let updated = resume(&checkpoint, &new, &update, &mut |_| {})?;
    let eval_options = EvalOptions {
        train: history,
        test: paths[2].clone(),
        k: 20,
        read,
        threads: options.threads,
        fold_in: false,
    };
    let storage = ItemStorage::default();
    let mut recall = Vec::new();
    for (name, model) in [("week-1", &first), ("updated", &updated.trained)] {
        let path = dir.join(format!("demo-{name}.prec"));
        write_atomic(&path, &model.build(ValueEncoding::F16, &storage)?)?;
        recall.push(evaluate(&open_model(&path)?, &path, &eval_options)?.recall);
    }
    let first_seconds = first.train_seconds + first.teacher.as_ref().map_or(0.0, |t| t.seconds);
    let update_seconds =
        updated.trained.train_seconds + updated.trained.teacher.as_ref().map_or(0.0, |t| t.seconds);
    println!(
        "\n5. a model that keeps learning (docs/INCREMENTAL.md): a drifting log of 3 weeks ({} \
         interactions;\n   new users and items, popularity moving), the sparse model trained on \
         week 1 ({:.1} s), then updated\n   with week 2 from its checkpoint ({:.1} s, {} new users, \
         {} new items, {:.0}% of the rows changed).\n   Recall@20 on week 3: week-1 model {:.4}, \
         updated {:.4}",
        thousands(log.len() as u64),
        first_seconds,
        update_seconds,
        updated.changes.new_users,
        updated.changes.new_items,
        100.0 * updated.changes.changed_fraction(),
        recall[0],
        recall[1]
    );
    Ok(())
}
