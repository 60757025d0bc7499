//! `pocketrec demo`: the whole path on a built-in example, in a few seconds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pocketrec::{Model, ValueEncoding};

use crate::error::{ExportError, Result};
use crate::export::{ExportOptions, Source, export};
use crate::input::write_npy_f32;
use crate::inspect::{report, thousands};
use crate::recommend::recommend_for;
use crate::synth::clustered_tables;

/// Demo settings (the CLI's defaults make a Gowalla-sized catalogue).
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where to keep the generated files; a temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// Random seed.
    pub seed: u64,
    /// Number of users.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Density after pruning.
    pub density: f64,
}

/// Runs the demo, printing as it goes.
pub fn run(options: &DemoOptions) -> Result<()> {
    let temp;
    let dir: &Path = match &options.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| ExportError::io(d, e))?;
            d
        }
        None => {
            temp = tempfile::tempdir().map_err(|e| ExportError::io(std::env::temp_dir(), e))?;
            temp.path()
        }
    };
    let started = Instant::now();
    println!(
        "1. generating {} users and {} items, d = {}, taste clusters and a popularity skew, pruned to {:.0}% density",
        thousands(options.users as u64),
        thousands(options.items as u64),
        options.dim,
        100.0 * options.density
    );
    let tables = clustered_tables(
        options.seed,
        options.users,
        options.items,
        options.dim,
        32,
        options.density,
    );
    let users_npy = dir.join("users.npy");
    let items_npy = dir.join("items.npy");
    let bias_npy = dir.join("item_bias.npy");
    write_npy_f32(&users_npy, &[options.users, options.dim], &tables.users)?;
    write_npy_f32(&items_npy, &[options.items, options.dim], &tables.items)?;
    write_npy_f32(&bias_npy, &[options.items], &tables.item_bias)?;

    println!("2. exporting with each value encoding:");
    let mut chosen = None;
    for values in [
        ValueEncoding::F32,
        ValueEncoding::F16,
        ValueEncoding::Bf16,
        ValueEncoding::I8,
    ] {
        let output = dir.join(format!("demo-{values}.prec"));
        let mut opts =
            ExportOptions::new(Source::file(&users_npy), Source::file(&items_npy), &output);
        opts.values = values;
        opts.item_bias = Some(Source::file(&bias_npy));
        let summary = export(&opts)?;
        println!(
            "   {values:>4}: {:>12} bytes = {:5.1}% of dense f32 ({} bytes)   {}",
            thousands(summary.file_bytes),
            100.0 * summary.file_bytes as f64 / summary.dense_f32_bytes as f64,
            thousands(summary.dense_f32_bytes),
            output.display()
        );
        if values == ValueEncoding::F16 {
            chosen = Some(output);
        }
    }
    let path = chosen.unwrap_or_default();
    // SAFETY: the demo's files live in its own directory and are written only by rename.
    let model = unsafe { Model::open(&path) }.map_err(|source| ExportError::Model {
        path: path.clone(),
        source,
    })?;
    model.verify().map_err(|source| ExportError::Model {
        path: path.clone(),
        source,
    })?;
    println!("\n3. opened and verified {}:\n", path.display());
    print!("{}", report(&model).to_text(&path.display().to_string()));
    println!("\n4. recommendations (k = 5, full scan of the catalogue):");
    for user in [0usize, options.users / 2, options.users - 1] {
        let start = Instant::now();
        let recs = recommend_for(&model, &path, &user.to_string(), 5, &[])?;
        let took = start.elapsed();
        let items: Vec<String> = recs
            .items
            .iter()
            .map(|r| format!("{} ({:.3})", r.item, r.score))
            .collect();
        println!("   user {user:>6}: {}   [{:.2?}]", items.join(", "), took);
    }
    println!("\ndone in {:.1?}", started.elapsed());
    if options.dir.is_some() {
        println!("files kept in {}", dir.display());
    }
    Ok(())
}
