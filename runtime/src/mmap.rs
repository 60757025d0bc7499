//! Opening a model by memory-mapping its file (feature `mmap`).

use std::fs::File;
use std::path::Path;

use memmap2::{Mmap, MmapOptions};

use crate::error::Result;
use crate::model::Model;

impl Model<Mmap> {
    /// Maps the file at `path` read-only and opens it. Only the pages that are read become
    /// resident: opening reads the header, section table and metadata; a lookup reads one
    /// row's offsets and record.
    ///
    /// # Safety
    ///
    /// The file must not be modified or truncated while the model is alive: the model reads
    /// the mapped pages directly, and a change made through another handle (or a truncation,
    /// which makes later reads fault with `SIGBUS`) is undefined behaviour for the whole
    /// process. Files written by `pocketrec export` are replaced atomically (written to a
    /// temporary file, then renamed), which leaves an existing mapping intact; never rewrite a
    /// model file in place. When that cannot be guaranteed, use [`Model::read`], which copies
    /// the file into memory.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// // SAFETY: model files are only ever replaced by rename, never rewritten in place.
    /// let model = unsafe { pocketrec::Model::open("model.prec")? };
    /// # let _ = model;
    /// # Ok(()) }
    /// ```
    pub unsafe fn open(path: impl AsRef<Path>) -> Result<Self> {
        let file = File::open(path)?;
        // SAFETY: mapping is read-only; the caller guarantees the file is not modified or
        // truncated while the map lives (this function's contract).
        let map = unsafe { MmapOptions::new().map(&file)? };
        Model::new(map)
    }
}
