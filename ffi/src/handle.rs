//! Model handles: what a `pocketrec_model *` stands for, and the registry of open handles.
//!
//! A handle is not an address: it is a number drawn from a counter and looked up in a registry
//! of open models. So a closed (or never opened) handle is recognised and refused with
//! `POCKETREC_INVALID_ARGUMENT` instead of being dereferenced, closing twice is harmless, and
//! numbers are not reused while the process lives (on 32-bit targets, not before 2^32 opens).
//! Each call takes a reference-counted clone of the model under a read lock and releases the
//! lock before working, so queries on one handle run in parallel, and `pocketrec_close` while
//! other threads are still querying lets those calls finish on the model, which is freed when
//! the last of them returns.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use memmap2::Mmap;
use pocketrec_runtime::Model;

use crate::status::{Failure, Outcome};

/// The opaque model handle of the C API (`typedef struct pocketrec_model pocketrec_model;`).
///
/// Never dereferenced: a `pocketrec_model *` carries a registry number, not an address.
#[allow(non_camel_case_types)]
pub struct pocketrec_model {
    _opaque: [u8; 0],
}

/// The bytes a model reads.
pub(crate) enum Storage {
    /// A read-only memory map of (part of) a file (`pocketrec_open`, `pocketrec_open_fd`).
    Map(Mmap),
    /// Caller memory (`pocketrec_open_bytes`): the caller keeps it alive and unchanged until
    /// the handle is closed and every call using it has returned.
    Borrowed(&'static [u8]),
    /// A copy in the heap (`pocketrec_open_copy`).
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Storage {
    fn as_ref(&self) -> &[u8] {
        match self {
            Storage::Map(map) => map,
            Storage::Borrowed(bytes) => bytes,
            Storage::Owned(bytes) => bytes,
        }
    }
}

/// An open model as the C API holds it.
pub(crate) type OpenModel = Model<Storage>;

/// The open handles, by number.
struct Registry {
    next: usize,
    open: BTreeMap<usize, Arc<OpenModel>>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    next: 1,
    open: BTreeMap::new(),
});

/// Registers `model` and returns its handle.
pub(crate) fn register(model: OpenModel) -> *mut pocketrec_model {
    // Nothing panics while the lock is held, so a poisoned lock still holds a sound registry.
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let mut number = registry.next;
    // 0 would be NULL; skip numbers still open after a wrap-around (32-bit targets).
    while number == 0 || registry.open.contains_key(&number) {
        number = number.wrapping_add(1);
    }
    registry.next = number.wrapping_add(1);
    registry.open.insert(number, Arc::new(model));
    std::ptr::without_provenance_mut(number)
}

/// The open model behind `handle`.
pub(crate) fn lookup(handle: *const pocketrec_model) -> Outcome<Arc<OpenModel>> {
    if handle.is_null() {
        return Err(Failure::invalid("the model handle is NULL"));
    }
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    registry.open.get(&handle.addr()).cloned().ok_or_else(|| {
        Failure::invalid(format!(
            "{handle:p} is not an open model handle (already closed, or never opened)"
        ))
    })
}

/// Removes `handle` from the registry; the model is freed when the last call using it
/// returns. Returns false when it was not open.
pub(crate) fn unregister(handle: *const pocketrec_model) -> bool {
    let removed = {
        let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
        registry.open.remove(&handle.addr())
    };
    // Dropped here, outside the lock: unmapping or freeing a large model takes a while.
    removed.is_some()
}
