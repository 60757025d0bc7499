//! `pocketrec generate`: random sparse tables as `users.npy` and `items.npy`.

use std::path::Path;

use pocketrec_export::input::write_npy_f32;
use pocketrec_train::random::{change_rows, random_normal_table};
use pocketrec_train::structured::structured_tables;

use crate::error::{CliError, Result};

/// What `pocketrec generate` draws (`--structure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Structure {
    /// Every entry independently non-zero with probability --density, standard normal
    /// values: no structure.
    Normal,
    /// Taste clusters, popularity-driven item norms and uneven dimensions, fitted to a
    /// Gowalla-trained model, pruned by magnitude to --density.
    Structured,
}

/// What `pocketrec generate` draws.
#[derive(Clone, Copy, Debug)]
pub struct Tables {
    /// User rows.
    pub users: usize,
    /// Item rows.
    pub items: usize,
    /// Dimension.
    pub dim: usize,
    /// Fraction of non-zeros.
    pub density: f64,
    /// Random seed.
    pub seed: u64,
    /// Independent normal values, or a trained model's structure.
    pub structure: Structure,
    /// Then change this fraction of each table's rows, with this seed.
    pub change: Option<(f64, u64)>,
}

/// Runs `pocketrec generate`: tables of `structure` at `density`, written into `dir`.
pub fn run(dir: &Path, tables: &Tables) -> Result<()> {
    let Tables {
        users,
        items,
        dim,
        density,
        seed,
        structure,
        change,
    } = *tables;
    if !(0.0..=1.0).contains(&density) {
        return Err(CliError::Usage("--density must be in [0, 1]".into()));
    }
    if let Some((fraction, _)) = change
        && !(0.0..=1.0).contains(&fraction)
    {
        return Err(CliError::Usage("--change-rows must be in [0, 1]".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
    let (mut user_table, mut item_table) = match structure {
        Structure::Normal => {
            let table = |rows, salt| {
                random_normal_table(seed.wrapping_mul(2).wrapping_add(salt), rows, dim, density)
            };
            (table(users, 0), table(items, 1))
        }
        Structure::Structured => {
            let tables = structured_tables(seed, users, items, dim, density);
            (tables.users, tables.items)
        }
    };
    if let Some((fraction, change_seed)) = change {
        let users_changed = change_rows(&mut user_table, dim, fraction, change_seed);
        let items_changed = change_rows(&mut item_table, dim, fraction, change_seed ^ 0x5EED);
        eprintln!(
            "changed {} user rows and {} item rows (seed {change_seed})",
            users_changed.len(),
            items_changed.len()
        );
    }
    for (name, rows, table) in [
        ("users.npy", users, user_table),
        ("items.npy", items, item_table),
    ] {
        write_npy_f32(&dir.join(name), &[rows, dim], &table)?;
    }
    let kind = match structure {
        Structure::Normal => "normal",
        Structure::Structured => "structured",
    };
    eprintln!(
        "wrote {0}/users.npy ({users} x {dim}) and {0}/items.npy ({items} x {dim}), {kind}, density {density}",
        dir.display()
    );
    Ok(())
}
