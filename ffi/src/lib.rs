//! # pocketrec-ffi
//!
//! The C ABI of pocketrec: `libpocketrec.so` / `libpocketrec.a` and the header
//! `include/pocketrec.h`, generated from this file by a pinned cbindgen (`scripts/ffi-header.sh`).
//! It wraps the device runtime (`pocketrec`) alone, never the workstation crates, so that what
//! an app links is the runtime and this glue.
//! The conventions (ownership, threads, errors, the mmap contract, closed handles) are in the
//! header's preamble (`cbindgen.toml`) and in `docs/FFI.md`.
//!
//! With the `jni` feature the same library also carries the JNI glue of the Java class
//! `org.pocketrec.PocketRec` (`java/`).
//!
//! Every entry point is a panic boundary (`std::panic::catch_unwind`; the libraries are built
//! with `panic = "unwind"`), checks every pointer, and reports failures through its status and
//! `pocketrec_last_error`.

mod args;
mod handle;
#[cfg(feature = "jni")]
mod jni_glue;
mod status;
#[cfg(test)]
mod tests;
mod updates;
pub use updates::{
    pocketrec_apply_patch, pocketrec_apply_patch_bytes, pocketrec_open_bytes_signed,
    pocketrec_open_signed,
};

use std::ffi::{CStr, c_char, c_int};
use std::fs::File;
use std::path::Path;

use memmap2::MmapOptions;
use pocketrec_runtime::{IdKind, Model, Prior, Recommendation, Role};

pub use handle::pocketrec_model;
use handle::{OpenModel, Storage, lookup, register, unregister};
pub use status::pocketrec_status;
use status::{Failure, Outcome, guard, guard_value, last_error_ptr};

/// The version of this C ABI. It changes only when an existing function or type changes in an
/// incompatible way; adding functions or status codes does not change it. Compare it with
/// `pocketrec_abi_version()` to detect a header/library mismatch.
pub const POCKETREC_ABI_VERSION: u32 = 1;
/// Major version of the pocketrec release the header comes from.
pub const POCKETREC_VERSION_MAJOR: u32 = 0;
/// Minor version of the pocketrec release the header comes from.
pub const POCKETREC_VERSION_MINOR: u32 = 1;
/// Patch version of the pocketrec release the header comes from.
pub const POCKETREC_VERSION_PATCH: u32 = 0;

/// The release, as a NUL-terminated string.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version contains a NUL byte"),
    };

/// The ABI version of the library (`POCKETREC_ABI_VERSION` of the header it was built with).
/// Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn pocketrec_abi_version() -> u32 {
    POCKETREC_ABI_VERSION
}

/// The library's release as a static NUL-terminated string, e.g. "0.1.0". The string is owned
/// by the library and lives as long as it is loaded: do not free it. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn pocketrec_version() -> *const c_char {
    VERSION.as_ptr()
}

/// This thread's last error message, "" if the last call on this thread succeeded. Never NULL.
///
/// Every function that returns a `pocketrec_status` (and `pocketrec_id_from_str`) first clears
/// the message, and sets it when it fails. The string is owned by the library and stays valid
/// until the next call into the library on the same thread (or the thread's exit): copy it to
/// keep it. Other threads' calls never change it.
#[unsafe(no_mangle)]
pub extern "C" fn pocketrec_last_error() -> *const c_char {
    last_error_ptr()
}

/// Sets `*out` to NULL (when `out` is not NULL) and returns it as a checked reference.
///
/// # Safety
/// `out` is NULL or points to a writable `pocketrec_model *`.
unsafe fn handle_out<'a>(out: *mut *mut pocketrec_model) -> Outcome<&'a mut *mut pocketrec_model> {
    // SAFETY: forwarded contract.
    let out = unsafe { args::out_ref(out, "out") }?;
    *out = std::ptr::null_mut();
    Ok(out)
}

/// The path of a C string (bytes on Unix, UTF-8 elsewhere).
fn path_of(path: &CStr) -> Outcome<&Path> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(Path::new(std::ffi::OsStr::from_bytes(path.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        path.to_str()
            .map(Path::new)
            .map_err(|_| Failure::invalid("path is not UTF-8"))
    }
}

/// An I/O failure about `what`.
fn io_failure(what: &str, error: std::io::Error) -> Failure {
    Failure::new(pocketrec_status::POCKETREC_IO, format!("{what}: {error}"))
}

/// Opens the model file at `path` by memory-mapping it read-only (zero-copy: only the pages a
/// query touches are read).
///
/// On success `*out` is a new handle that the caller owns and must release with
/// `pocketrec_close`; on failure `*out` is set to NULL. `path` is borrowed for the call only.
/// Opening checks the header, section table and metadata with their checksums; rows are
/// checked as they are read (`pocketrec_verify` checks everything).
///
/// mmap contract: the file must not be modified in place or truncated while the handle is
/// open (a truncated mapping faults with SIGBUS on access, which no library can turn into an
/// error). Appending to it is harmless (the mapping keeps the length it had at open), and so
/// is replacing it by rename, which is how `pocketrec export` writes. When the contract cannot
/// be guaranteed, use `pocketrec_open_copy`.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (NULL `path` or `out`), `POCKETREC_IO` (cannot open or
/// map), `POCKETREC_FORMAT` (not a valid model).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or points to a writable
/// `pocketrec_model *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_open(
    path: *const c_char,
    out: *mut *mut pocketrec_model,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out` as documented.
        let out = unsafe { handle_out(out) }?;
        // SAFETY: `path` as documented.
        let map = unsafe { map_path(path) }?;
        *out = register(open_storage(map)?);
        Ok(())
    })
}

/// The file at the C string `path`, memory-mapped read-only.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; the caller accepts `pocketrec_open`'s mmap
/// contract (the file is not modified or truncated while the map lives) for its handle.
pub(crate) unsafe fn map_path(path: *const c_char) -> Outcome<Storage> {
    // SAFETY: `path` as this function requires.
    let path = path_of(unsafe { args::c_str(path, "path") }?)?;
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| io_failure(&shown, e))?;
    // SAFETY: a read-only map; that the file is not modified or truncated while the handle is
    // open is the documented contract of the entry points that call this.
    let map = unsafe { MmapOptions::new().map(&file) }.map_err(|e| io_failure(&shown, e))?;
    Ok(Storage::Map(map))
}

/// Opens a model from `len` bytes at byte `offset` of the open file descriptor `fd`, mapped
/// read-only: the (fd, offset, length) of an Android `AssetFileDescriptor` (the asset must be
/// stored uncompressed in the APK). `offset` need not be page-aligned: the page-aligned range
/// around it is mapped and the model reads from `offset`.
///
/// `fd` is borrowed for the call: the library duplicates it to read the file size and map it,
/// and does not close it; the caller may close it as soon as this function returns. `len` must
/// be at least 1 and `offset + len` at most the file's size. Ownership of `*out` and the mmap
/// contract are those of `pocketrec_open`, for the mapped range.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (NULL `out`, negative `fd`, `len` 0, a range past the
/// end of the file), `POCKETREC_IO` (not an open descriptor, cannot map), `POCKETREC_FORMAT`.
///
/// # Safety
/// `out` is NULL or points to a writable `pocketrec_model *`; `fd` is an open descriptor or a
/// negative number (a closed descriptor number is refused with `POCKETREC_IO`, unless another
/// thread reuses it concurrently).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_open_fd(
    fd: c_int,
    offset: u64,
    len: u64,
    out: *mut *mut pocketrec_model,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out` as documented.
        let out = unsafe { handle_out(out) }?;
        *out = register(open_fd(fd, offset, len)?);
        Ok(())
    })
}

/// The body of `pocketrec_open_fd`.
#[cfg(unix)]
fn open_fd(fd: c_int, offset: u64, len: u64) -> Outcome<OpenModel> {
    use std::os::fd::BorrowedFd;

    if fd < 0 {
        return Err(Failure::invalid(format!(
            "fd {fd} is not a file descriptor"
        )));
    }
    if len == 0 {
        return Err(Failure::invalid("len is 0"));
    }
    let what = format!("fd {fd}");
    // SAFETY: `fd` is not -1 (checked), and the borrow lasts only for the duplication below.
    // A number that is not an open descriptor makes the duplication fail with EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let file = File::from(
        borrowed
            .try_clone_to_owned()
            .map_err(|e| io_failure(&what, e))?,
    );
    let size = file.metadata().map_err(|e| io_failure(&what, e))?.len();
    let end = offset.checked_add(len).filter(|&end| end <= size);
    if end.is_none() {
        return Err(Failure::invalid(format!(
            "offset {offset} + len {len} is past the end of the file ({size} bytes)"
        )));
    }
    let len = usize::try_from(len)
        .map_err(|_| Failure::invalid(format!("len {len} does not fit in the address space")))?;
    // SAFETY: a read-only map of a range inside the file (checked above); that the range is not
    // modified or truncated while the handle is open is the documented contract. memmap2 maps
    // from the page boundary below `offset` and returns the slice starting at `offset`.
    let map = unsafe { MmapOptions::new().offset(offset).len(len).map(&file) }
        .map_err(|e| io_failure(&what, e))?;
    open_storage(Storage::Map(map))
}

/// The body of `pocketrec_open_fd` where there are no file descriptors.
#[cfg(not(unix))]
fn open_fd(_fd: c_int, _offset: u64, _len: u64) -> Outcome<OpenModel> {
    Err(Failure::new(
        pocketrec_status::POCKETREC_UNSUPPORTED,
        "file descriptors are only supported on Unix",
    ))
}

/// Opens a model over `len` bytes at `data`, zero-copy (any alignment).
///
/// The bytes stay owned by the caller, who must keep them alive and unchanged until
/// `pocketrec_close` has returned and every call using the handle has returned; the library
/// never writes to them and never frees them. On success `*out` is a new handle that the
/// caller owns and must release with `pocketrec_close`; on failure `*out` is set to NULL.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (NULL `data` or `out`), `POCKETREC_FORMAT`.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes that obey the lifetime rule above; `out` is
/// NULL or points to a writable `pocketrec_model *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_open_bytes(
    data: *const u8,
    len: usize,
    out: *mut *mut pocketrec_model,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out` as documented.
        let out = unsafe { handle_out(out) }?;
        if data.is_null() {
            return Err(Failure::invalid("data is NULL"));
        }
        // SAFETY: `data` points to `len` readable bytes that outlive the handle (the documented
        // contract), so treating them as 'static for the handle's life is sound.
        let bytes: &'static [u8] = unsafe { args::input(data, len, "data") }?;
        *out = register(open_storage(Storage::Borrowed(bytes))?);
        Ok(())
    })
}

/// Opens the model file at `path` by reading it into memory owned by the handle. Costs the
/// file's size in memory, but the file may then change or disappear freely: the alternative to
/// `pocketrec_open` when its mmap contract cannot be guaranteed.
///
/// Ownership and errors as `pocketrec_open`.
///
/// # Safety
/// As `pocketrec_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_open_copy(
    path: *const c_char,
    out: *mut *mut pocketrec_model,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out` as documented.
        let out = unsafe { handle_out(out) }?;
        // SAFETY: `path` as documented.
        let path = path_of(unsafe { args::c_str(path, "path") }?)?;
        let bytes = std::fs::read(path).map_err(|e| io_failure(&path.display().to_string(), e))?;
        *out = register(open_storage(Storage::Owned(bytes))?);
        Ok(())
    })
}

/// Validates the storage as a model.
fn open_storage(storage: Storage) -> Outcome<OpenModel> {
    Ok(Model::new(storage)?)
}

/// Closes `model`. NULL, and a handle that is already closed, are ignored.
///
/// After this call the handle is dead: every function given it returns
/// `POCKETREC_INVALID_ARGUMENT` ("not an open model handle"); handle values are never reused
/// for another model. Calls already running on other threads finish normally; the memory map
/// (or the caller's bytes, for `pocketrec_open_bytes`) is released when the last of them
/// returns. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn pocketrec_close(model: *mut pocketrec_model) {
    guard(|| {
        if !model.is_null() {
            unregister(model);
        }
        Ok(())
    });
}

/// Checks every byte of the model: all checksums, every row, ids sorted, values and biases
/// finite (opening checks only the header, section table and metadata). Reads the whole file.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open), `POCKETREC_FORMAT`.
#[unsafe(no_mangle)]
pub extern "C" fn pocketrec_verify(model: *const pocketrec_model) -> pocketrec_status {
    guard(|| Ok(lookup(model)?.verify()?))
}

/// Writes the embedding dimension to `*out`.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, NULL `out`),
/// `POCKETREC_FORMAT` (the model has no table).
///
/// # Safety
/// `out` is NULL or points to a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_dim(
    model: *const pocketrec_model,
    out: *mut u32,
) -> pocketrec_status {
    guard(|| {
        let model = lookup(model)?;
        // SAFETY: `out` as documented.
        let out = unsafe { args::out_ref(out, "out") }?;
        let dim = model.dim().ok_or_else(|| {
            Failure::new(pocketrec_status::POCKETREC_FORMAT, "the model has no table")
        })?;
        *out = u32::try_from(dim).map_err(|_| {
            Failure::new(pocketrec_status::POCKETREC_FORMAT, "dimension out of range")
        })?;
        Ok(())
    })
}

/// Writes the number of users to `*users` and of items to `*items` (0 for a missing table).
/// Either pointer may be NULL when that count is not wanted.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, a misaligned pointer).
///
/// # Safety
/// `users` and `items` are each NULL or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_counts(
    model: *const pocketrec_model,
    users: *mut u64,
    items: *mut u64,
) -> pocketrec_status {
    guard(|| {
        let model = lookup(model)?;
        // SAFETY: `users` and `items` as documented.
        let (users, items) = unsafe {
            (
                args::optional_out(users, "users")?,
                args::optional_out(items, "items")?,
            )
        };
        if let Some(users) = users {
            *users = model.users().map_or(0, |t| t.rows() as u64);
        }
        if let Some(items) = items {
            *items = model.items().map_or(0, |t| t.rows() as u64);
        }
        Ok(())
    })
}

/// Which table an embedding call reads.
#[derive(Clone, Copy)]
enum Side {
    User,
    Item,
}

/// The body of the embedding calls.
///
/// # Safety
/// `out` is NULL or points to `len` writable floats.
unsafe fn embedding(
    model: *const pocketrec_model,
    side: Side,
    id: u64,
    out: *mut f32,
    len: usize,
) -> pocketrec_status {
    guard(|| {
        let model = lookup(model)?;
        let table = match side {
            Side::User => model.users()?,
            Side::Item => model.items()?,
        };
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        let dim = table.dim();
        if len < dim {
            return Err(Failure::new(
                pocketrec_status::POCKETREC_BUFFER_TOO_SMALL,
                format!("out holds {len} floats, the dimension is {dim}"),
            ));
        }
        // SAFETY: `out` points to `len >= dim` writable floats (documented contract).
        let out = unsafe { args::output(out, dim, "out") }?;
        table.decode_row(table.find(id)?, out)?;
        Ok(())
    })
}

/// Writes the dense embedding of user `user` (an external id of the file) to `out[0..dim)`.
/// `len` is the number of floats `out` holds; it must be at least the dimension
/// (`pocketrec_dim`). `out` is borrowed for the call.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, NULL `out`),
/// `POCKETREC_BUFFER_TOO_SMALL` (`len` < dim), `POCKETREC_NOT_FOUND`, `POCKETREC_FORMAT`.
///
/// # Safety
/// `out` is NULL or points to `len` writable floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_user_embedding(
    model: *const pocketrec_model,
    user: u64,
    out: *mut f32,
    len: usize,
) -> pocketrec_status {
    // SAFETY: forwarded contract.
    unsafe { embedding(model, Side::User, user, out, len) }
}

/// Writes the dense embedding of item `item` to `out[0..dim)`; as `pocketrec_user_embedding`.
///
/// # Safety
/// `out` is NULL or points to `len` writable floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_item_embedding(
    model: *const pocketrec_model,
    item: u64,
    out: *mut f32,
    len: usize,
) -> pocketrec_status {
    // SAFETY: forwarded contract.
    unsafe { embedding(model, Side::Item, item, out, len) }
}

/// Scores the `n` items `items[0..n)` for user `user` into `out_scores[0..n)` (similarity plus
/// biases, as `pocketrec recommend` computes it). Both arrays are borrowed for the call and may
/// be NULL when `n` is 0. On failure the contents of `out_scores` are unspecified.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, a NULL array with `n` > 0),
/// `POCKETREC_NOT_FOUND` (the user or one of the items), `POCKETREC_UNSUPPORTED` (dimension
/// above 512), `POCKETREC_FORMAT`.
///
/// # Safety
/// `items` is NULL or points to `n` readable `uint64_t`; `out_scores` is NULL or points to `n`
/// writable floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_score(
    model: *const pocketrec_model,
    user: u64,
    items: *const u64,
    n: usize,
    out_scores: *mut f32,
) -> pocketrec_status {
    guard(|| {
        let model = lookup(model)?;
        // SAFETY: `items` and `out_scores` as documented.
        let (items, out) = unsafe {
            (
                args::input(items, n, "items")?,
                args::output(out_scores, n, "out_scores")?,
            )
        };
        model.score_candidates(user, items, out)?;
        Ok(())
    })
}

/// The output arrays of a recommend call.
struct TopKOut<'a> {
    items: &'a mut [u64],
    scores: Option<&'a mut [f32]>,
    len: &'a mut usize,
}

impl<'a> TopKOut<'a> {
    /// Checks the output pointers and sets `*out_len` to 0.
    ///
    /// # Safety
    /// `out_items` is NULL or points to `k` writable `uint64_t`; `out_scores` is NULL or points
    /// to `k` writable floats; `out_len` is NULL or points to a writable `size_t`.
    unsafe fn new(
        k: usize,
        out_items: *mut u64,
        out_scores: *mut f32,
        out_len: *mut usize,
    ) -> Outcome<Self> {
        // SAFETY: forwarded contract.
        let len = unsafe { args::out_ref(out_len, "out_len") }?;
        *len = 0;
        // SAFETY: forwarded contract.
        let items = unsafe { args::output(out_items, k, "out_items") }?;
        let scores = if out_scores.is_null() {
            None
        } else {
            // SAFETY: forwarded contract.
            Some(unsafe { args::output(out_scores, k, "out_scores") }?)
        };
        Ok(TopKOut { items, scores, len })
    }

    /// Runs `query` with a buffer of `min(k, items in the model)` entries and copies its
    /// answer out.
    fn fill(
        self,
        model: &OpenModel,
        query: impl FnOnce(&mut [Recommendation]) -> pocketrec_runtime::Result<usize>,
    ) -> Outcome {
        // No more than the catalogue can be returned, so a huge `k` costs no memory.
        let rows = model.items()?.rows();
        let mut top = vec![Recommendation::default(); self.items.len().min(rows)];
        let n = query(&mut top)?;
        for (slot, rec) in self.items.iter_mut().zip(&top[..n]) {
            *slot = rec.id;
        }
        if let Some(scores) = self.scores {
            for (slot, rec) in scores.iter_mut().zip(&top[..n]) {
                *slot = rec.score;
            }
        }
        *self.len = n;
        Ok(())
    }
}

/// The `k` best items for user `user`, best first: their ids go to `out_items[0..*out_len)` and
/// their scores to `out_scores[0..*out_len)`, where `*out_len <= k` (smaller when the catalogue
/// minus `exclude` has fewer items). Scans every item; ties go to the item stored first. The
/// answer equals `pocketrec recommend MODEL --user USER -k K --exclude ...`.
///
/// `exclude[0..n_exclude)` are item ids never to return (e.g. the user's history; unknown ids
/// are ignored). `out_scores` may be NULL when scores are not wanted; `out_items` and `exclude`
/// may be NULL when `k`, respectively `n_exclude`, is 0; `out_len` is required and is set to 0
/// on failure. All arrays are borrowed for the call.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT`, `POCKETREC_NOT_FOUND` (no such user),
/// `POCKETREC_UNSUPPORTED` (dimension above 512: use `pocketrec_recommend_vector`),
/// `POCKETREC_FORMAT`.
///
/// # Safety
/// `exclude` is NULL or points to `n_exclude` readable `uint64_t`; `out_items` is NULL or points
/// to `k` writable `uint64_t`; `out_scores` is NULL or points to `k` writable floats; `out_len`
/// is NULL or points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_recommend(
    model: *const pocketrec_model,
    user: u64,
    exclude: *const u64,
    n_exclude: usize,
    k: usize,
    out_items: *mut u64,
    out_scores: *mut f32,
    out_len: *mut usize,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: the output pointers as documented.
        let out = unsafe { TopKOut::new(k, out_items, out_scores, out_len) }?;
        let model = lookup(model)?;
        // SAFETY: `exclude` as documented.
        let exclude = unsafe { args::input(exclude, n_exclude, "exclude") }?;
        out.fill(&model, |top| model.recommend(user, top.len(), exclude, top))
    })
}

/// As `pocketrec_recommend`, for a caller-given dense user vector `user_vec[0..dim)` of the
/// model's dimension (no user bias applies): for new users (e.g. folded in from their
/// interactions by `pocketrec_fold_in`; exclude those items), or models above 512 dimensions.
/// `user_vec` is borrowed for the call.
///
/// Errors: as `pocketrec_recommend`, and `POCKETREC_INVALID_ARGUMENT` when `dim` is not the
/// model's dimension or a value is NaN or infinite.
///
/// # Safety
/// `user_vec` is NULL or points to `dim` readable floats; the other arrays as
/// `pocketrec_recommend`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_recommend_vector(
    model: *const pocketrec_model,
    user_vec: *const f32,
    dim: usize,
    exclude: *const u64,
    n_exclude: usize,
    k: usize,
    out_items: *mut u64,
    out_scores: *mut f32,
    out_len: *mut usize,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: the output pointers as documented.
        let out = unsafe { TopKOut::new(k, out_items, out_scores, out_len) }?;
        let model = lookup(model)?;
        if user_vec.is_null() {
            return Err(Failure::invalid("user_vec is NULL"));
        }
        // SAFETY: `user_vec` and `exclude` as documented.
        let (vector, exclude) = unsafe {
            (
                args::input(user_vec, dim, "user_vec")?,
                args::input(exclude, n_exclude, "exclude")?,
            )
        };
        out.fill(&model, |top| {
            model.recommend_vector(vector, top.len(), exclude, top)
        })
    })
}

/// At most this many threads run a batch (`pocketrec_recommend_batch`).
const MAX_BATCH_THREADS: usize = 256;

/// Recommendations a batch holds in its scratch buffer at a time (16 bytes each): users are
/// answered in chunks of about this many entries, so a batch's memory does not grow with it.
const BATCH_CHUNK_ENTRIES: usize = 1 << 16;

/// The `k` best items for each of the `n_users` users `users[0..n_users)`, on `threads`
/// threads: user `i`'s items go to `out_items[i*k .. i*k + out_counts[i])` and their scores to
/// the same places of `out_scores`, best first, exactly as `pocketrec_recommend` answers that
/// user with the same `k` and exclusions, whatever the number of threads. Entries past
/// `out_counts[i]` in user `i`'s `k` slots are not written.
///
/// A user the model does not have is not an error here (as it is for `pocketrec_recommend`):
/// their `out_counts[i]` is 0, and `*out_unknown_users` counts them. Any other failure stops
/// the batch, sets every `out_counts[i]` and `*out_unknown_users` to 0, and leaves the
/// contents of `out_items` and `out_scores` unspecified.
///
/// Exclusions, optional, are per user in CSR form: user `i` excludes
/// `exclude[exclude_offsets[i] .. exclude_offsets[i+1])` (unknown ids are ignored), where
/// `exclude_offsets` holds `n_users + 1` nondecreasing offsets starting at 0 and `exclude`
/// holds `exclude_offsets[n_users]` ids. With `exclude_offsets` NULL no user excludes
/// anything, and `exclude` must be NULL too.
///
/// `threads`: 0 runs one thread per available core; the batch runs at most 256 threads and
/// at most one per 64 users (threads are started and joined inside the call, and users are
/// handed out 16 at a time). Users are answered a chunk at a time through a scratch buffer
/// of 16 bytes per entry: at most max(65,536, 64 x threads x k) entries (about 1 MiB for
/// small `k`), never more than `n_users * k`, and `k` counts as the number of items when
/// it is larger; the threads' stacks come on top.
///
/// `out_items` and `out_counts` are required (NULL is accepted only with `n_users * k`,
/// respectively `n_users`, 0); `out_scores` and `out_unknown_users` may be NULL when not
/// wanted; `users` may be NULL when `n_users` is 0. All arrays are borrowed for the call, and
/// the outputs must not overlap the inputs or each other.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, a NULL or misaligned
/// array that is needed, `n_users * k` or `n_users + 1` out of range, offsets that do not
/// start at 0 or decrease, `exclude` without `exclude_offsets`), `POCKETREC_UNSUPPORTED`
/// (dimension above 512), `POCKETREC_FORMAT`.
///
/// # Safety
/// `users` is NULL or points to `n_users` readable `uint64_t`; `exclude_offsets` is NULL or
/// points to `n_users + 1` readable `size_t`; `exclude` is NULL or points to
/// `exclude_offsets[n_users]` readable `uint64_t`; `out_items` is NULL or points to
/// `n_users * k` writable `uint64_t`; `out_scores` is NULL or points to `n_users * k` writable
/// floats; `out_counts` is NULL or points to `n_users` writable `size_t`; `out_unknown_users`
/// is NULL or points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_recommend_batch(
    model: *const pocketrec_model,
    users: *const u64,
    n_users: usize,
    exclude_offsets: *const usize,
    exclude: *const u64,
    k: usize,
    threads: usize,
    out_items: *mut u64,
    out_scores: *mut f32,
    out_counts: *mut usize,
    out_unknown_users: *mut usize,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out_counts` and `out_unknown_users` as documented.
        let (counts, mut unknown) = unsafe {
            (
                args::output(out_counts, n_users, "out_counts")?,
                args::optional_out(out_unknown_users, "out_unknown_users")?,
            )
        };
        counts.fill(0);
        if let Some(unknown) = unknown.as_deref_mut() {
            *unknown = 0;
        }
        let result = (|| {
            // SAFETY: the arrays as documented.
            let (batch, users) = unsafe {
                (
                    BatchOut::new(k, out_items, out_scores, &mut *counts)?,
                    args::input(users, n_users, "users")?,
                )
            };
            // SAFETY: `exclude_offsets` and `exclude` as documented.
            let exclusions = unsafe { Exclusions::new(n_users, exclude_offsets, exclude) }?;
            let model = lookup(model)?;
            batch.fill(&model, BatchUsers::Ids(users), &exclusions, threads)
        })();
        match result {
            Ok(n_unknown) => {
                if let Some(unknown) = unknown {
                    *unknown = n_unknown;
                }
                Ok(())
            }
            Err(failure) => {
                counts.fill(0);
                Err(failure)
            }
        }
    })
}

/// The `k` best items for each of the `n_users` user vectors in `user_vecs` (one after
/// another, `dim` floats each, `dim` the model's dimension: users folded in with
/// `pocketrec_fold_in`, for example), on `threads` threads: user `i`'s items go to
/// `out_items[i*k .. i*k + out_counts[i])` and their scores to the same places of
/// `out_scores`, best first, exactly as `pocketrec_recommend_vector` answers that vector with
/// the same `k` and exclusions, whatever the number of threads. Entries past `out_counts[i]`
/// in user `i`'s `k` slots are not written. On failure every `out_counts[i]` is set to 0 and
/// the contents of `out_items` and `out_scores` are unspecified.
///
/// Exclusions, threads and memory as for `pocketrec_recommend_batch`.
///
/// `out_items` and `out_counts` are required (NULL is accepted only with `n_users * k`,
/// respectively `n_users`, 0); `out_scores` may be NULL when not wanted; `user_vecs` may be
/// NULL when `n_users` is 0. All arrays are borrowed for the call, and the outputs must not
/// overlap the inputs or each other.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, a NULL or misaligned
/// array that is needed, `dim` not the model's dimension, a value of a vector that is not
/// finite, `n_users * dim`, `n_users * k` or `n_users + 1` out of range, offsets that do not
/// start at 0 or decrease, `exclude` without `exclude_offsets`), `POCKETREC_UNSUPPORTED`
/// (dimension above 512), `POCKETREC_FORMAT`.
///
/// # Safety
/// `user_vecs` is NULL or points to `n_users * dim` readable floats; `exclude_offsets` is NULL
/// or points to `n_users + 1` readable `size_t`; `exclude` is NULL or points to
/// `exclude_offsets[n_users]` readable `uint64_t`; `out_items` is NULL or points to
/// `n_users * k` writable `uint64_t`; `out_scores` is NULL or points to `n_users * k` writable
/// floats; `out_counts` is NULL or points to `n_users` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_recommend_vector_batch(
    model: *const pocketrec_model,
    user_vecs: *const f32,
    n_users: usize,
    dim: usize,
    exclude_offsets: *const usize,
    exclude: *const u64,
    k: usize,
    threads: usize,
    out_items: *mut u64,
    out_scores: *mut f32,
    out_counts: *mut usize,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out_counts` as documented.
        let counts = unsafe { args::output(out_counts, n_users, "out_counts") }?;
        counts.fill(0);
        let result = (|| {
            let values = n_users.checked_mul(dim).ok_or_else(|| {
                Failure::invalid(format!("n_users {n_users} times dim {dim} is out of range"))
            })?;
            let model = lookup(model)?;
            let model_dim = model.dim().ok_or_else(|| {
                Failure::new(pocketrec_status::POCKETREC_FORMAT, "the model has no table")
            })?;
            if dim != model_dim {
                return Err(Failure::invalid(format!(
                    "dim is {dim}, the model's dimension is {model_dim}"
                )));
            }
            // SAFETY: the arrays as documented.
            let (batch, vectors) = unsafe {
                (
                    BatchOut::new(k, out_items, out_scores, &mut *counts)?,
                    args::input(user_vecs, values, "user_vecs")?,
                )
            };
            // SAFETY: `exclude_offsets` and `exclude` as documented.
            let exclusions = unsafe { Exclusions::new(n_users, exclude_offsets, exclude) }?;
            let users = BatchUsers::Vectors {
                values: vectors,
                dim,
            };
            batch.fill(&model, users, &exclusions, threads).map(|_| ())
        })();
        if result.is_err() {
            counts.fill(0);
        }
        result
    })
}

/// The per-user exclusions of a batch, in CSR form (empty when not given).
struct Exclusions<'a> {
    offsets: &'a [usize],
    ids: &'a [u64],
}

impl<'a> Exclusions<'a> {
    /// Checks the CSR arrays of `n_users` users.
    ///
    /// # Safety
    /// `offsets` is NULL or points to `n_users + 1` readable `size_t`; `ids` is NULL or points
    /// to `offsets[n_users]` readable `uint64_t`.
    unsafe fn new(n_users: usize, offsets: *const usize, ids: *const u64) -> Outcome<Self> {
        if offsets.is_null() {
            if !ids.is_null() {
                return Err(Failure::invalid("exclude is given without exclude_offsets"));
            }
            return Ok(Exclusions {
                offsets: &[],
                ids: &[],
            });
        }
        let len = n_users
            .checked_add(1)
            .ok_or_else(|| Failure::invalid(format!("n_users {n_users} is out of range")))?;
        // SAFETY: `offsets` points to `n_users + 1` readable values (documented contract).
        let offsets = unsafe { args::input(offsets, len, "exclude_offsets") }?;
        if offsets[0] != 0 {
            return Err(Failure::invalid(format!(
                "exclude_offsets[0] is {}, not 0",
                offsets[0]
            )));
        }
        if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
            return Err(Failure::invalid(format!(
                "exclude_offsets decrease at user {i}: {} then {}",
                offsets[i],
                offsets[i + 1]
            )));
        }
        // SAFETY: `ids` points to `offsets[n_users]` readable ids (documented contract).
        let ids = unsafe { args::input(ids, offsets[n_users], "exclude") }?;
        Ok(Exclusions { offsets, ids })
    }

    /// User `i`'s excluded ids.
    fn of(&self, i: usize) -> &'a [u64] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&start), Some(&end)) => self.ids.get(start..end).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// The output arrays of a batch.
struct BatchOut<'a> {
    k: usize,
    items: &'a mut [u64],
    scores: Option<&'a mut [f32]>,
    counts: &'a mut [usize],
}

impl<'a> BatchOut<'a> {
    /// The batch's `k` slots a user in `out_items` and `out_scores` (NULL: not wanted), one
    /// user per entry of `counts`.
    ///
    /// # Safety
    /// `out_items` is NULL or points to `counts.len() * k` writable `uint64_t`, `out_scores`
    /// NULL or to as many writable floats, neither overlapping the other or `counts`.
    unsafe fn new(
        k: usize,
        out_items: *mut u64,
        out_scores: *mut f32,
        counts: &'a mut [usize],
    ) -> Outcome<Self> {
        let n_users = counts.len();
        let entries = n_users.checked_mul(k).ok_or_else(|| {
            Failure::invalid(format!("n_users {n_users} times k {k} is out of range"))
        })?;
        // SAFETY: as this function's contract says.
        let (items, scores) = unsafe {
            (
                args::output(out_items, entries, "out_items")?,
                if out_scores.is_null() {
                    None
                } else {
                    Some(args::output(out_scores, entries, "out_scores")?)
                },
            )
        };
        Ok(BatchOut {
            k,
            items,
            scores,
            counts,
        })
    }
}

/// The users of a batch: ids of the file, or vectors of the model's dimension.
#[derive(Clone, Copy)]
enum BatchUsers<'a> {
    Ids(&'a [u64]),
    Vectors { values: &'a [f32], dim: usize },
}

impl BatchUsers<'_> {
    fn len(&self) -> usize {
        match *self {
            BatchUsers::Ids(ids) => ids.len(),
            BatchUsers::Vectors { values, dim } => values.len() / dim.max(1),
        }
    }
}

impl BatchOut<'_> {
    /// Answers `users` through `Model::recommend_batch` or `Model::recommend_vector_batch`, a
    /// chunk of users at a time, and returns the number of unknown users.
    fn fill(
        mut self,
        model: &OpenModel,
        users: BatchUsers<'_>,
        exclusions: &Exclusions<'_>,
        threads: usize,
    ) -> Outcome<usize> {
        let k = self.k;
        let n_users = users.len();
        // No more than the catalogue can be returned, as in `pocketrec_recommend`.
        let kept = k.min(model.items()?.rows());
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
        .min(MAX_BATCH_THREADS);
        let chunk = (BATCH_CHUNK_ENTRIES / kept.max(1))
            .max(64 * threads)
            .min(n_users)
            .max(1);
        let mut top = vec![Recommendation::default(); chunk * kept];
        let mut counts = vec![0usize; chunk];
        let mut unknown = 0;
        for first in (0..n_users).step_by(chunk) {
            let n = chunk.min(n_users - first);
            let exclude = |i: usize| exclusions.of(first + i);
            let (out, out_counts) = (&mut top[..n * kept], &mut counts[..n]);
            let summary = match users {
                BatchUsers::Ids(ids) => model.recommend_batch(
                    &ids[first..first + n],
                    kept,
                    exclude,
                    threads,
                    out,
                    out_counts,
                )?,
                BatchUsers::Vectors { values, dim } => model.recommend_vector_batch(
                    &values[first * dim..(first + n) * dim],
                    kept,
                    exclude,
                    threads,
                    out,
                    out_counts,
                )?,
            };
            unknown += summary.unknown_users;
            for (j, &count) in counts[..n].iter().enumerate() {
                let user = first + j;
                let answer = &top[j * kept..j * kept + count];
                let slots = user * k..user * k + count;
                for (slot, rec) in self.items[slots.clone()].iter_mut().zip(answer) {
                    *slot = rec.id;
                }
                if let Some(scores) = self.scores.as_deref_mut() {
                    for (slot, rec) in scores[slots].iter_mut().zip(answer) {
                        *slot = rec.score;
                    }
                }
                self.counts[user] = count;
            }
        }
        Ok(unknown)
    }
}

/// Folds a user in on the device: solves the user's vector from the items they interacted
/// with, the item table fixed, and writes it to `out[0..dim)`; `pocketrec_recommend_vector`
/// then recommends for it. The model must carry a fold-in section (`pocketrec export` writes
/// one unless given `--no-fold-in`; `pocketrec_fold_in_params` tells whether it has one, or
/// `pocketrec_fold_in_softmax_params` for a model that folds in by its softmax loss).
///
/// The interactions are `items[0..n_items)` (item ids of the file) with
/// `weights[0..n_items)` (each finite and at least 0; `weights` NULL: all 1). Item ids the
/// model does not have are skipped and counted (e.g. items dropped from the catalogue since
/// the app recorded them); a repeated id counts each time. `prior[0..dim)` is optional: the
/// user's current vector, kept close to with precision `prior_precision` (finite, at least 0;
/// 0 ignores the prior). With `prior` NULL, `prior_precision` must be 0.
///
/// With the item rows `v_i`, the Gramian `G` of all items and the section's unobserved weight
/// `a0` and regularisation `l` (`pocketrec_fold_in_params`), the vector `x` minimises
/// `sum_i w_i (v_i.x - 1)^2 + a0 sum_all (v.x)^2 + l |x|^2 + t |x - prior|^2` (`t` the
/// precision): the per-user step of implicit ALS. A model trained with a sampled-softmax loss
/// instead solves its loss against the whole catalogue by projected gradient ascent on unit
/// vectors (`pocketrec_fold_in_softmax_params`; docs/FORMAT.md, *Softmax fold-in*), reading
/// the file's catalogue summary (or, without one, the item table) once per iteration. It equals the runtime's `Model::fold_in` bit for bit. Up to 64 dimensions it is solved by a Cholesky factorisation, above by a
/// conjugate gradient; nothing is kept between calls.
///
/// `dim` is the length of `out` and of `prior`, and must be the model's dimension
/// (`pocketrec_dim`). `out` is written only on success, and may be the same array as `prior`
/// (to update a vector in place). `*out_used` receives the number of interactions with a
/// known item and `*out_unknown` the number skipped; either may be NULL, and both are set to 0
/// on failure. `items` may be NULL when `n_items` is 0 (a prior alone). All arrays are
/// borrowed for the call.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, a NULL or misaligned array
/// that is needed, `dim` not the model's dimension, a negative or non-finite weight or
/// precision, a non-finite prior value, a precision other than 0 without a prior, no known
/// item and no prior: nothing to solve from), `POCKETREC_UNSUPPORTED` (the model has no
/// fold-in section, or a dimension above 512), `POCKETREC_FORMAT` (a corrupt fold-in section
/// or item row).
///
/// # Safety
/// `items` is NULL or points to `n_items` readable `uint64_t`; `weights` is NULL or points to
/// `n_items` readable floats; `prior` is NULL or points to `dim` readable floats; `out` is NULL
/// or points to `dim` writable floats; `out_used` and `out_unknown` are each NULL or point to a
/// writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_fold_in(
    model: *const pocketrec_model,
    items: *const u64,
    weights: *const f32,
    n_items: usize,
    prior: *const f32,
    prior_precision: f32,
    out: *mut f32,
    dim: usize,
    out_used: *mut usize,
    out_unknown: *mut usize,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out_used` and `out_unknown` as documented.
        let (mut used, mut unknown) = unsafe {
            (
                args::optional_out(out_used, "out_used")?,
                args::optional_out(out_unknown, "out_unknown")?,
            )
        };
        for count in [used.as_deref_mut(), unknown.as_deref_mut()]
            .into_iter()
            .flatten()
        {
            *count = 0;
        }
        let model = lookup(model)?;
        // SAFETY: `items` and `weights` as documented.
        let (items, weights) = unsafe {
            (
                args::input(items, n_items, "items")?,
                if weights.is_null() {
                    &[]
                } else {
                    args::input(weights, n_items, "weights")?
                },
            )
        };
        args::check(out.cast_const(), dim, "out")?;
        let model_dim = model.items()?.dim();
        if dim != model_dim {
            return Err(pocketrec_runtime::Error::DimensionMismatch {
                expected: model_dim as u64,
                actual: dim as u64,
            }
            .into());
        }
        // The prior is copied before `out` is borrowed: the two may be the same array.
        let prior = if prior.is_null() {
            if prior_precision != 0.0 {
                return Err(Failure::invalid(format!(
                    "prior_precision is {prior_precision} but prior is NULL"
                )));
            }
            None
        } else {
            // SAFETY: `prior` points to `dim` readable floats (documented contract); the
            // borrow ends with the copy.
            Some(unsafe { args::input(prior, dim, "prior") }?.to_vec())
        };
        let prior = prior.as_deref().map(|vector| Prior {
            vector,
            precision: prior_precision,
        });
        let mut vector = vec![0f32; dim];
        let summary = model.fold_in(items, weights, prior, &mut vector)?;
        // SAFETY: `out` points to `dim` writable floats (documented contract), not otherwise
        // borrowed any more (the prior was copied).
        unsafe { args::output(out, dim, "out") }?.copy_from_slice(&vector);
        if let Some(used) = used {
            *used = summary.used;
        }
        if let Some(unknown) = unknown {
            *unknown = summary.unknown;
        }
        Ok(())
    })
}

/// Writes the fold-in settings stored in the model: the weight of every item as an
/// unobserved interaction to `*out_unobserved_weight` and the regularisation to
/// `*out_regularization` (see `pocketrec_fold_in`). Either pointer may be NULL; with both
/// NULL the call only tells whether the model can fold users in.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, a misaligned pointer),
/// `POCKETREC_UNSUPPORTED` (the model has no fold-in section), `POCKETREC_FORMAT` (a corrupt
/// section).
///
/// # Safety
/// `out_unobserved_weight` and `out_regularization` are each NULL or point to a writable
/// float.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_fold_in_params(
    model: *const pocketrec_model,
    out_unobserved_weight: *mut f32,
    out_regularization: *mut f32,
) -> pocketrec_status {
    guard(|| {
        let model = lookup(model)?;
        // SAFETY: both pointers as documented.
        let (unobserved, regularization) = unsafe {
            (
                args::optional_out(out_unobserved_weight, "out_unobserved_weight")?,
                args::optional_out(out_regularization, "out_regularization")?,
            )
        };
        let params = model.fold_in_params()?;
        if let Some(unobserved) = unobserved {
            *unobserved = params.unobserved_weight;
        }
        if let Some(regularization) = regularization {
            *regularization = params.regularization;
        }
        Ok(())
    })
}

/// Writes the softmax fold-in settings stored in a model trained with a sampled-softmax loss
/// (`pocketrec train --loss bsl`, the default, or `ssm`; `pocketrec export --fold-in-softmax`):
/// the temperature to `*out_temperature`, the power of the log-partition term to `*out_power`,
/// the ascent step to `*out_step`, the iterations to `*out_iterations` and the clusters of its
/// catalogue summary to `*out_clusters`. Such a model folds users in (`pocketrec_fold_in`) by
/// its own loss: each iteration reads the summary's clusters (or, with 0 clusters, the whole
/// item table); see docs/FORMAT.md, *Softmax fold-in*. Any pointer may be NULL; with all NULL the call only
/// tells whether the model folds in this way (`pocketrec_fold_in_params` answers
/// `POCKETREC_UNSUPPORTED` for it: it has no Gramian).
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, a misaligned pointer),
/// `POCKETREC_UNSUPPORTED` (the model has no softmax fold-in section), `POCKETREC_FORMAT` (a
/// corrupt section).
///
/// # Safety
/// Each pointer is NULL or points to a writable value of its type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_fold_in_softmax_params(
    model: *const pocketrec_model,
    out_temperature: *mut f32,
    out_power: *mut f32,
    out_step: *mut f32,
    out_iterations: *mut u32,
    out_clusters: *mut u32,
) -> pocketrec_status {
    guard(|| {
        let model = lookup(model)?;
        // SAFETY: every pointer as documented.
        let (temperature, power, step, iterations, clusters) = unsafe {
            (
                args::optional_out(out_temperature, "out_temperature")?,
                args::optional_out(out_power, "out_power")?,
                args::optional_out(out_step, "out_step")?,
                args::optional_out(out_iterations, "out_iterations")?,
                args::optional_out(out_clusters, "out_clusters")?,
            )
        };
        let settings = model
            .fold_in_softmax()?
            .ok_or(pocketrec_runtime::Error::NoFoldIn)?;
        if let Some(t) = temperature {
            *t = settings.temperature;
        }
        if let Some(p) = power {
            *p = settings.power;
        }
        if let Some(s) = step {
            *s = settings.step;
        }
        if let Some(i) = iterations {
            *i = settings.iterations;
        }
        if let Some(c) = clusters {
            *c = settings.clusters;
        }
        Ok(())
    })
}

/// Writes the original string of the item whose external id is `id` (the 64-bit hash of a
/// string id) to `buf`, UTF-8 and NUL-terminated, and its length in bytes (without the NUL) to
/// `*out_len` when `out_len` is not NULL. Models exported with string ids store the strings by
/// default (`pocketrec export --item-ids`; `--no-id-strings` keeps only the hashes), so an app
/// gets `"sku-10442"` back where recommend gives its hash.
///
/// To size the buffer, call with `buf_len` 0 (`buf` may then be NULL): the call fails with
/// `POCKETREC_BUFFER_TOO_SMALL` and `*out_len` says how many bytes the string takes (plus one
/// for the NUL). `*out_len` is set to 0 on any other failure.
///
/// Errors: `POCKETREC_UNSUPPORTED` (the model stores no strings for its item ids: integer
/// ids, or string ids exported with `--no-id-strings`; checked first, whatever the id, so
/// that an app can tell "print the number instead" from a wrong id, as for a model without
/// a fold-in section), `POCKETREC_NOT_FOUND` (no item has this id),
/// `POCKETREC_BUFFER_TOO_SMALL` (`buf_len` below the length plus one; `buf` untouched),
/// `POCKETREC_INVALID_ARGUMENT` (a handle that is not open, `buf` NULL with `buf_len` > 0, a
/// misaligned `out_len`), `POCKETREC_FORMAT` (a damaged strings section). Thread-safe.
///
/// # Safety
/// `buf` is NULL with `buf_len` 0 or points to `buf_len` writable bytes; `out_len` is NULL or
/// points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_item_id_str(
    model: *const pocketrec_model,
    id: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out_len` as documented.
        let mut out_len = unsafe { args::optional_out(out_len, "out_len") }?;
        if let Some(out_len) = out_len.as_deref_mut() {
            *out_len = 0;
        }
        let model = lookup(model)?;
        if buf_len > 0 {
            args::check(buf.cast_const(), buf_len, "buf")?;
        }
        if model.id_strings(Role::Item)?.is_none() {
            return Err(no_item_strings());
        }
        let text = model.id_str(Role::Item, id)?.ok_or_else(no_item_strings)?;
        if let Some(out_len) = out_len {
            *out_len = text.len();
        }
        if buf_len <= text.len() {
            return Err(Failure::new(
                pocketrec_status::POCKETREC_BUFFER_TOO_SMALL,
                format!(
                    "the id string takes {} bytes and a NUL; buf_len is {buf_len}",
                    text.len()
                ),
            ));
        }
        // SAFETY: `buf` points to `buf_len` writable bytes (documented contract).
        let out = unsafe { args::output(buf.cast::<u8>(), buf_len, "buf") }?;
        out[..text.len()].copy_from_slice(text.as_bytes());
        out[text.len()] = 0;
        Ok(())
    })
}

/// The failure of the string calls on a model without item id strings.
fn no_item_strings() -> Failure {
    Failure::new(
        pocketrec_status::POCKETREC_UNSUPPORTED,
        "the model stores no strings for its item ids (integer ids, or exported with \
         --no-id-strings)",
    )
}

/// Finds the item whose string id is the `len` bytes at `s` (UTF-8, need not be
/// NUL-terminated; borrowed for the call) and writes its 64-bit id to `*out_id`: the exact
/// counterpart of `pocketrec_id_from_str`, which only hashes. When the model stores the item
/// id strings (the default of `pocketrec export --item-ids` with string ids), the stored
/// string is compared, so only the very string finds the item; a model of string ids exported
/// with `--no-id-strings` is searched by the hash alone. `*out_id` is set to 0 on failure.
/// The exporter trims surrounding whitespace from id lines; pass the trimmed string.
///
/// Errors: `POCKETREC_NOT_FOUND` (no item has this string id), `POCKETREC_UNSUPPORTED` (the
/// model's item ids are integers), `POCKETREC_INVALID_ARGUMENT` (a handle that is not open,
/// `s` NULL with `len` > 0, bytes that are not UTF-8, NULL or misaligned `out_id`),
/// `POCKETREC_FORMAT` (a damaged strings section). Thread-safe.
///
/// # Safety
/// `s` is NULL or points to `len` readable bytes; `out_id` is NULL or points to a writable
/// `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_find_item_str(
    model: *const pocketrec_model,
    s: *const c_char,
    len: usize,
    out_id: *mut u64,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out_id` as documented.
        let out_id = unsafe { args::out_ref(out_id, "out_id") }?;
        *out_id = 0;
        let model = lookup(model)?;
        // SAFETY: `s` as documented.
        let bytes = unsafe { args::input(s.cast::<u8>(), len, "s") }?;
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Failure::invalid(format!("the id is not UTF-8: {e}")))?;
        if model.items()?.id_kind() != IdKind::StringHash {
            return Err(Failure::new(
                pocketrec_status::POCKETREC_UNSUPPORTED,
                "the model's item ids are integers, not strings",
            ));
        }
        *out_id = model.find_str(Role::Item, text).map_err(|e| match e {
            pocketrec_runtime::Error::IdNotFound { .. } => Failure::new(
                pocketrec_status::POCKETREC_NOT_FOUND,
                format!("no item with string id {text:?}"),
            ),
            e => e.into(),
        })?;
        Ok(())
    })
}

/// The 64-bit id of a string id, as the exporter stores it: FNV-1a 64 of the `len` bytes at `s`
/// (which need not be NUL-terminated; `s` is borrowed for the call). The exporter trims
/// surrounding whitespace from id lines, so pass the trimmed string.
///
/// Returns 0 and sets `pocketrec_last_error` when `s` is NULL with `len` > 0 or the bytes are
/// not UTF-8 (no exported id can match them). Thread-safe.
///
/// # Safety
/// `s` is NULL or points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_id_from_str(s: *const c_char, len: usize) -> u64 {
    guard_value(0, || {
        // SAFETY: `s` as documented.
        let bytes = unsafe { args::input(s.cast::<u8>(), len, "s") }?;
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Failure::invalid(format!("the id is not UTF-8: {e}")))?;
        Ok(pocketrec_runtime::string_id(text))
    })
}
