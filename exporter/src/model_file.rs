//! Opening a `.prec` file from a path, with an error that names the file.

use std::path::Path;

use pocketrec::Model;

use crate::error::{ExportError, Result};

/// Opens the model at `path` read-only by memory map. Errors name the file; an unreadable file
/// is [`ExportError::Model`] with a [`pocketrec::Error::Io`] source.
///
/// ```no_run
/// let model = pocketrec_export::open_model(std::path::Path::new("model.prec"))?;
/// println!("{} bytes", model.bytes().len());
/// # Ok::<(), pocketrec_export::ExportError>(())
/// ```
pub fn open_model(path: &Path) -> Result<Model<pocketrec::Mmap>> {
    // SAFETY: the tools map a model for the length of one command or call. pocketrec only ever
    // replaces model files by rename, which leaves this mapping intact; a file rewritten in place
    // by another program while it is mapped is outside the contract (see `Model::open`).
    unsafe { Model::open(path) }.map_err(|source| ExportError::Model {
        path: path.to_path_buf(),
        source,
    })
}
