//! Atomic file writes: a temporary file in the target's directory, fsync, rename, fsync of the
//! directory. A reader (or a live memory map of the old file) never sees a partial file, and a
//! crash leaves either the old file or the new one.

use std::io::Write;
use std::path::Path;

use crate::error::{ExportError, Result};

/// Writes `bytes` to `path` atomically (see the module docs). The file gets mode 0644 on Unix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ExportError::io(dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| ExportError::io(&tmp_path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| ExportError::io(&tmp_path, e))?;
    }
    tmp.persist(path)
        .map_err(|e| ExportError::io(path, e.error))?;
    // Make the rename itself durable. Not every platform can open a directory; that is not an
    // error for the write.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prec");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn missing_directory_is_an_error_naming_it() {
        let e = write_atomic(Path::new("/nonexistent-dir-pocketrec/m.prec"), b"x").unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir-pocketrec"), "{e}");
    }
}
