//! Atomic file writes through the runtime's one mechanism ([`pocketrec::atomic::write_with`]):
//! a temporary file in the target's directory, fsync, rename, fsync of the directory. A reader
//! (or a live memory map of the old file) never sees a partial file, and a crash leaves either
//! the old file or the new one.

use std::io::Write;
use std::path::Path;

use crate::error::{ExportError, Result};

/// Writes `bytes` to `path` atomically (see the module docs). The file gets mode 0644 on Unix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with the file's Unix permission bits (ignored elsewhere), set before the
/// file takes its name: a secret key written with 0o600 is never readable by others.
pub fn write_atomic_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    pocketrec::atomic::write_with(path, |file| {
        file.write_all(bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        Ok(())
    })
    .map_err(|e| match e {
        pocketrec::Error::Io(e) => ExportError::io(path, e),
        source => ExportError::Model {
            path: path.to_path_buf(),
            source,
        },
    })
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
