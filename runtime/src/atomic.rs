//! Atomic file replacement for the runtime's own writers (applying a patch to a file): a new
//! temporary file next to the target, flushed to disk, renamed over the target, then the
//! directory synced. A crash at any point leaves the old file or the complete new one.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;

/// Distinguishes temporary files made by one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates a temporary file next to `target`, lets `fill` write it, syncs it and renames it
/// over `target`. If `fill` fails (or anything after it), the temporary file is removed and
/// `target` is untouched.
pub(crate) fn write_with<T>(target: &Path, fill: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp: PathBuf = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let written = fill(&mut file).and_then(|value| {
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, target)?;
        Ok(value)
    });
    match written {
        Ok(value) => {
            // Make the rename durable; not every platform can open a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(value)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}
