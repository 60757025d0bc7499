//! Status codes, the per-thread error message, and the panic boundary every entry point runs in.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pocketrec_runtime::Error;

/// The result of every fallible call. `POCKETREC_OK` is 0; every other value is a failure
/// whose message `pocketrec_last_error` returns on the same thread.
///
/// Values are never renumbered; new ones are only ever added at the end.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum pocketrec_status {
    /// Success.
    POCKETREC_OK = 0,
    /// A NULL or misaligned pointer, a handle that is not open (never opened, or closed), a
    /// length out of range, a user vector of the wrong dimension or with a NaN/infinity, a
    /// fold-in query that is invalid (a negative or non-finite weight or precision, nothing to
    /// solve from).
    POCKETREC_INVALID_ARGUMENT = 1,
    /// The operating system refused to open, stat or map the file.
    POCKETREC_IO = 2,
    /// The bytes are not a valid `.prec` model, or a part read by this call is corrupt.
    POCKETREC_FORMAT = 3,
    /// No user or item with that id.
    POCKETREC_NOT_FOUND = 4,
    /// A caller-given output buffer is shorter than the answer.
    POCKETREC_BUFFER_TOO_SMALL = 5,
    /// A bug in pocketrec: a Rust panic was caught at the C boundary. The handle stays usable.
    POCKETREC_PANIC = 6,
    /// The call cannot serve this model: the id-based calls decode the user's row on the stack
    /// and support dimensions up to 512 (use `pocketrec_user_embedding` and the `_vector`
    /// calls for larger ones), `pocketrec_fold_in` needs a model with a fold-in section
    /// (and a dimension up to 512), `pocketrec_item_id_str` a model that stores its item id
    /// strings, and `pocketrec_find_item_str` a model with string item ids.
    POCKETREC_UNSUPPORTED = 7,
    /// A signature was required (`pocketrec_open_signed`, a patch applied with a key) and the
    /// file carries none.
    POCKETREC_UNSIGNED = 8,
    /// The file is signed by another key than the one given.
    POCKETREC_WRONG_KEY = 9,
    /// The file (or its signature) was changed after signing.
    POCKETREC_TAMPERED = 10,
    /// The patch was made for another base file (its size or SHA-256 differs); nothing was
    /// written.
    POCKETREC_WRONG_BASE = 11,
    /// The bytes are not a valid patch, or applying it does not give the file it names; nothing
    /// was written (the target file, for `pocketrec_apply_patch`, is untouched).
    POCKETREC_BAD_PATCH = 12,
}

/// A failed call: its status and a message for `pocketrec_last_error`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: pocketrec_status,
    pub message: String,
}

impl Failure {
    /// A `POCKETREC_INVALID_ARGUMENT` failure.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            status: pocketrec_status::POCKETREC_INVALID_ARGUMENT,
            message: message.into(),
        }
    }

    /// A failure with status `status`.
    pub fn new(status: pocketrec_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }
}

/// The status a runtime error maps to.
pub(crate) fn status_of(error: &Error) -> pocketrec_status {
    use pocketrec_status::*;
    match error {
        Error::Io(_) => POCKETREC_IO,
        Error::IdNotFound { .. } | Error::RowOutOfRange { .. } => POCKETREC_NOT_FOUND,
        Error::BufferTooSmall { .. } => POCKETREC_BUFFER_TOO_SMALL,
        Error::DimensionMismatch { .. }
        | Error::InvalidInput { .. }
        | Error::DuplicateId { .. }
        | Error::InvalidQuery { .. } => POCKETREC_INVALID_ARGUMENT,
        Error::DimensionTooLarge { .. } | Error::RowsNotStored { .. } | Error::NoFoldIn => {
            POCKETREC_UNSUPPORTED
        }
        Error::Unsigned => POCKETREC_UNSIGNED,
        Error::WrongKey { .. } => POCKETREC_WRONG_KEY,
        Error::Tampered(_) => POCKETREC_TAMPERED,
        Error::WrongBase { .. } => POCKETREC_WRONG_BASE,
        Error::InvalidPatch(_) | Error::PatchResult(_) => POCKETREC_BAD_PATCH,
        Error::Sink(_) => POCKETREC_BUFFER_TOO_SMALL,
        // Everything else says the bytes are not a model this runtime can read: bad magic,
        // truncation, checksums, sections, metadata, corrupt rows, a missing table, a
        // non-finite score from corrupt values, and any variant added later.
        _ => POCKETREC_FORMAT,
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            status: status_of(&error),
            message: error.to_string(),
        }
    }
}

/// The result type of the functions behind the entry points.
pub(crate) type Outcome<T = ()> = Result<T, Failure>;

thread_local! {
    /// This thread's last error message; `None` after a call that succeeded.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Replaces this thread's last error message (`None`: the last call succeeded).
pub(crate) fn set_last_error(message: Option<String>) {
    let message = message.map(|m| {
        // An interior NUL would end the C string early; replace it rather than lose the text.
        CString::new(m.replace('\0', "\u{FFFD}")).unwrap_or_default()
    });
    // `try_with` fails only while this thread's locals are being destroyed; the message is
    // then dropped, which is all that can be done.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = message;
        }
    });
}

/// A pointer to this thread's last error message, or to "" when there is none.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| match slot.try_borrow() {
            Ok(slot) => slot.as_ref().map(|m| m.as_ptr()),
            Err(_) => None,
        })
        .ok()
        .flatten()
        .unwrap_or(c"".as_ptr())
}

/// Runs `body` as one entry point: clears the thread's error, catches panics, and turns the
/// outcome into a status, recording the failure's message.
pub(crate) fn guard(body: impl FnOnce() -> Outcome) -> pocketrec_status {
    set_last_error(None);
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => pocketrec_status::POCKETREC_OK,
        Ok(Err(failure)) => {
            set_last_error(Some(failure.message));
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_string());
            set_last_error(Some(format!("internal error (panic caught): {what}")));
            pocketrec_status::POCKETREC_PANIC
        }
    }
}

/// Like [`guard`] for the entry points that return a value instead of a status: `fallback` is
/// returned on failure or panic.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> Outcome<T>) -> T {
    let mut value = None;
    let status = guard(|| {
        value = Some(body()?);
        Ok(())
    });
    match (status, value) {
        (pocketrec_status::POCKETREC_OK, Some(v)) => v,
        _ => fallback,
    }
}
