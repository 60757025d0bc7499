//! Checked conversions of the raw pointers the C API receives.
//!
//! Every pointer is checked for NULL and for alignment before a reference is made from it; a
//! failed check is a `POCKETREC_INVALID_ARGUMENT`, never a dereference.

use std::ffi::{CStr, c_char};

use crate::status::{Failure, Outcome};

/// Refuses a NULL or misaligned pointer, or a length whose byte size exceeds `isize::MAX`.
pub(crate) fn check<T>(ptr: *const T, len: usize, what: &str) -> Outcome {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!(
            "{what} ({ptr:p}) is not aligned to {} bytes",
            align_of::<T>()
        )));
    }
    match len.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(()),
        _ => Err(Failure::invalid(format!(
            "{what}: length {len} is too large"
        ))),
    }
}

/// `len` elements at `ptr` as a slice; NULL is accepted when `len` is 0.
///
/// # Safety
/// When `len > 0` and `ptr` is not NULL, `ptr` must point to `len` initialised `T` that stay
/// valid and unmodified for `'a`.
pub(crate) unsafe fn input<'a, T>(ptr: *const T, len: usize, what: &str) -> Outcome<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    check(ptr, len, what)?;
    // SAFETY: non-NULL, aligned and of a size rustc accepts (checked above); valid for reads of
    // `len` elements for 'a by this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `len` writable elements at `ptr` as a slice; NULL is accepted when `len` is 0.
///
/// # Safety
/// When `len > 0` and `ptr` is not NULL, `ptr` must point to `len` writable `T`, not accessed
/// through any other pointer during `'a`.
pub(crate) unsafe fn output<'a, T: Copy>(
    ptr: *mut T,
    len: usize,
    what: &str,
) -> Outcome<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    check(ptr, len, what)?;
    // SAFETY: non-NULL, aligned and of an accepted size (checked above); writable and not
    // aliased for 'a by this function's contract. `T: Copy` types from C (integers, floats)
    // are valid for any bit pattern the caller's buffer holds.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// A reference to one writable `T` at `ptr`.
///
/// # Safety
/// When not NULL, `ptr` must point to a writable `T`, not accessed through any other pointer
/// during `'a`.
pub(crate) unsafe fn out_ref<'a, T: Copy>(ptr: *mut T, what: &str) -> Outcome<&'a mut T> {
    // SAFETY: forwarded contract; a one-element slice.
    let slice = unsafe { output(ptr, 1, what)? };
    Ok(&mut slice[0])
}

/// Like [`out_ref`], but NULL gives `None` (for optional outputs).
///
/// # Safety
/// As [`out_ref`].
pub(crate) unsafe fn optional_out<'a, T: Copy>(
    ptr: *mut T,
    what: &str,
) -> Outcome<Option<&'a mut T>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { out_ref(ptr, what) }.map(Some)
    }
}

/// The NUL-terminated string at `ptr`.
///
/// # Safety
/// When not NULL, `ptr` must point to a NUL-terminated string valid for reads during `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Outcome<&'a CStr> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL; NUL-terminated and valid for 'a by this function's contract.
    Ok(unsafe { CStr::from_ptr(ptr) })
}
