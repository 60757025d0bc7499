//! `pocketrec generate`: random sparse tables as `users.npy` and `items.npy`.

use std::path::Path;

use pocketrec_export::input::write_npy_f32;
use pocketrec_train::random::random_normal_table;

use crate::error::{CliError, Result};

/// Runs `pocketrec generate`: i.i.d. normal values at `density`, written into `dir`.
pub fn run(
    dir: &Path,
    users: usize,
    items: usize,
    dim: usize,
    density: f64,
    seed: u64,
) -> Result<()> {
    if !(0.0..=1.0).contains(&density) {
        return Err(CliError::Usage("--density must be in [0, 1]".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
    for (name, rows, salt) in [("users.npy", users, 0u64), ("items.npy", items, 1)] {
        let table =
            random_normal_table(seed.wrapping_mul(2).wrapping_add(salt), rows, dim, density);
        write_npy_f32(&dir.join(name), &[rows, dim], &table)?;
    }
    eprintln!(
        "wrote {0}/users.npy ({users} x {dim}) and {0}/items.npy ({items} x {dim}), density {density}",
        dir.display()
    );
    Ok(())
}
