//! Atomic file replacement (feature `std`), for every pocketrec writer: applying a patch to a
//! file here, and the exporter's and trainer's files (`pocketrec_export::atomic`). A new
//! temporary file next to the target, flushed to disk, renamed over the target, then the
//! directory synced. A crash at any point leaves the old file or the complete new one; a reader
//! (or a live memory map of the old file) never sees a partial file.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;

/// Distinguishes temporary files made by one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates a temporary file next to `target`, lets `fill` write it (and set its permissions),
/// syncs it and renames it over `target`. If `fill` fails (or anything after it), the temporary
/// file is removed and `target` is untouched.
///
/// ```
/// # fn main() -> Result<(), pocketrec::Error> {
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("pocketrec-atomic-{}.txt", std::process::id()));
/// pocketrec::atomic::write_with(&path, |file| Ok(file.write_all(b"new contents")?))?;
/// assert_eq!(std::fs::read(&path)?, b"new contents");
/// # std::fs::remove_file(&path)?;
/// # Ok(()) }
/// ```
pub fn write_with<T>(target: &Path, fill: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
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
