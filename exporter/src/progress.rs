//! Progress of long work, reported to an observer that the caller chooses.
//!
//! The libraries never draw anything: a front end (the CLI's progress bar, a Python callback, a
//! log line) implements [`Progress`], and work that takes long calls it. [`NoProgress`] ignores
//! every report.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use pocketrec_export::progress::Progress;
//!
//! /// Remembers how far the work got.
//! #[derive(Default)]
//! struct Counter(AtomicU64);
//!
//! impl Progress for Counter {
//!     fn update(&self, done: u64) {
//!         self.0.store(done, Ordering::Relaxed);
//!     }
//! }
//!
//! let counter = Counter::default();
//! counter.start(10, "encoding rows");
//! counter.update(7);
//! counter.finish();
//! assert_eq!(counter.0.load(Ordering::Relaxed), 7);
//! ```

/// Receives reports of long work. Every method has an empty default, so an observer implements
/// only what it shows. Reports may come from several threads at once, hence `Sync`.
pub trait Progress: Sync {
    /// Work of `total` steps, named `what` (e.g. "encoding rows"), begins.
    fn start(&self, total: u64, what: &str) {
        let _ = (total, what);
    }

    /// `done` of the steps are done (reports may be sparse, and may come out of order from
    /// several threads).
    fn update(&self, done: u64) {
        let _ = done;
    }

    /// The work ended (successfully or not).
    fn finish(&self) {}
}

/// An observer that ignores every report.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
