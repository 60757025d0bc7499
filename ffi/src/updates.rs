//! Signed models and patches through the C ABI: `pocketrec_open_signed`,
//! `pocketrec_open_bytes_signed`, `pocketrec_apply_patch` (files, atomically) and
//! `pocketrec_apply_patch_bytes` (into a caller's buffer).

use std::ffi::c_char;

use pocketrec_runtime::Model;
use pocketrec_runtime::patch::{self, SliceSink};

use crate::handle::{OpenModel, Storage, register};
use crate::status::{Failure, Outcome, guard, pocketrec_status};
use crate::{args, handle_out, map_path, path_of, pocketrec_model};

/// The 32-byte Ed25519 public key at `key`.
///
/// # Safety
/// `key` is NULL or points to 32 readable bytes.
unsafe fn public_key<'a>(key: *const u8) -> Outcome<&'a [u8; 32]> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { args::input(key, 32, "public_key") }?;
    bytes
        .try_into()
        .map_err(|_| Failure::invalid("public_key is NULL"))
}

/// Opens a model over `storage` only if it is signed by `key`.
fn open_signed_storage(storage: Storage, key: &[u8; 32]) -> Outcome<OpenModel> {
    Ok(Model::new_signed(storage, key)?)
}

/// Opens the model file at `path` (memory-mapped, as `pocketrec_open`) only if it is signed by
/// the Ed25519 public key `public_key` (32 bytes; `pocketrec keygen` prints it as a C array).
/// The signature is checked over the SHA-256 of the whole file before the model is trusted, so
/// this reads every byte once.
///
/// Ownership of `*out`, and the mmap contract, are those of `pocketrec_open`.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (NULL `path`, `public_key` or `out`; a key that is not an
/// Ed25519 point), `POCKETREC_IO`, `POCKETREC_UNSIGNED` (no signature), `POCKETREC_WRONG_KEY`
/// (signed by another key), `POCKETREC_TAMPERED` (changed after signing), `POCKETREC_FORMAT`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `public_key` is NULL or points to 32 readable
/// bytes; `out` is NULL or points to a writable `pocketrec_model *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_open_signed(
    path: *const c_char,
    public_key: *const u8,
    out: *mut *mut pocketrec_model,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out` as documented.
        let out = unsafe { handle_out(out) }?;
        // SAFETY: `public_key` as documented.
        let key = unsafe { self::public_key(public_key) }?;
        // SAFETY: `path` as documented; the mmap contract is `pocketrec_open`'s.
        let map = unsafe { map_path(path) }?;
        *out = register(open_signed_storage(map, key)?);
        Ok(())
    })
}

/// Opens a model over `len` bytes at `data` (zero-copy, as `pocketrec_open_bytes`) only if it is
/// signed by `public_key` (32 bytes).
///
/// The lifetime rule for `data` and the ownership of `*out` are those of
/// `pocketrec_open_bytes`. Errors as `pocketrec_open_signed`, without `POCKETREC_IO`.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes that obey `pocketrec_open_bytes`'s lifetime
/// rule; `public_key` is NULL or points to 32 readable bytes; `out` is NULL or points to a
/// writable `pocketrec_model *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_open_bytes_signed(
    data: *const u8,
    len: usize,
    public_key: *const u8,
    out: *mut *mut pocketrec_model,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out` as documented.
        let out = unsafe { handle_out(out) }?;
        // SAFETY: `public_key` as documented.
        let key = unsafe { self::public_key(public_key) }?;
        if data.is_null() {
            return Err(Failure::invalid("data is NULL"));
        }
        // SAFETY: `data` points to `len` readable bytes that outlive the handle (the documented
        // contract), so treating them as 'static for the handle's life is sound.
        let bytes: &'static [u8] = unsafe { args::input(data, len, "data") }?;
        *out = register(open_signed_storage(Storage::Borrowed(bytes), key)?);
        Ok(())
    })
}

/// Applies the patch file `patch_path` (written by `pocketrec diff`) to the model file
/// `base_path` and writes the result to `target_path` atomically: a temporary file in the
/// target's directory, flushed to disk, renamed over the target. On any error, or if the process
/// dies at any point, `target_path` is either untouched or the complete new file.
/// `target_path` may be `base_path`. With a non-NULL `public_key` (32 bytes), the patch must be
/// signed by that key; NULL accepts an unsigned patch. Nothing is written unless the base is
/// the one the patch names and the patch gives exactly the file it names.
///
/// A handle open on `base_path` stays valid: the old file's data lives until it is closed
/// (rename replaces the directory entry, not the mapped file).
///
/// Errors: `POCKETREC_INVALID_ARGUMENT` (NULL paths), `POCKETREC_IO`, `POCKETREC_UNSIGNED`,
/// `POCKETREC_WRONG_KEY`, `POCKETREC_TAMPERED` (with a key), `POCKETREC_WRONG_BASE`,
/// `POCKETREC_BAD_PATCH`.
///
/// # Safety
/// The three paths are NULL or NUL-terminated strings; `public_key` is NULL or points to 32
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_apply_patch(
    base_path: *const c_char,
    patch_path: *const c_char,
    target_path: *const c_char,
    public_key: *const u8,
) -> pocketrec_status {
    guard(|| {
        let key = if public_key.is_null() {
            None
        } else {
            // SAFETY: `public_key` as documented.
            Some(unsafe { self::public_key(public_key) }?)
        };
        // SAFETY: the paths as documented.
        let base = path_of(unsafe { args::c_str(base_path, "base_path") }?)?;
        // SAFETY: as above.
        let patch_file = path_of(unsafe { args::c_str(patch_path, "patch_path") }?)?;
        // SAFETY: as above.
        let target = path_of(unsafe { args::c_str(target_path, "target_path") }?)?;
        patch::apply_file(base, patch_file, target, key)?;
        Ok(())
    })
}

/// Applies a patch held in memory to a base held in memory, writing the result into `out`
/// (`out_capacity` bytes). `*out_len` receives the result's size in every case where the patch
/// header could be read: call with `out` NULL and `out_capacity` 0 to learn the size needed
/// (`POCKETREC_BUFFER_TOO_SMALL`), then again with a buffer. With a non-NULL `public_key` (32
/// bytes) the patch must be signed by that key. Nothing is written to `out` unless the base is
/// the right one and the patch is well formed; the result's SHA-256 is checked before anything
/// is written too, except for a patch that leaves bytes to the device (the fold-in Gramian,
/// block bounds, the column layout of a table with row records: patch minor 2, read back from
/// `out` as it is written), whose hash is checked once it is complete: on any error, do not
/// use `out`. No heap memory is used.
///
/// Errors: `POCKETREC_INVALID_ARGUMENT`, `POCKETREC_BUFFER_TOO_SMALL`, `POCKETREC_UNSIGNED`,
/// `POCKETREC_WRONG_KEY`, `POCKETREC_TAMPERED`, `POCKETREC_WRONG_BASE`, `POCKETREC_BAD_PATCH`.
///
/// # Safety
/// `base` points to `base_len` readable bytes and `patch` to `patch_len` (either may be NULL
/// when its length is 0); `public_key` is NULL or points to 32 readable bytes; `out` is NULL or
/// points to `out_capacity` writable bytes that do not overlap the inputs; `out_len` is NULL or
/// points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pocketrec_apply_patch_bytes(
    base: *const u8,
    base_len: usize,
    patch: *const u8,
    patch_len: usize,
    public_key: *const u8,
    out: *mut u8,
    out_capacity: usize,
    out_len: *mut usize,
) -> pocketrec_status {
    guard(|| {
        // SAFETY: `out_len` as documented.
        let out_len = unsafe { args::optional_out(out_len, "out_len") }?;
        // SAFETY: `base` and `patch` as documented.
        let base = unsafe { args::input(base, base_len, "base") }?;
        // SAFETY: as above.
        let patch_bytes = unsafe { args::input(patch, patch_len, "patch") }?;
        if !public_key.is_null() {
            // SAFETY: `public_key` as documented.
            let key = unsafe { self::public_key(public_key) }?;
            pocketrec_runtime::signature::verify(patch_bytes, key)?;
        }
        let size = patch::Patch::parse(patch_bytes)?.header().result_size;
        let size = usize::try_from(size)
            .map_err(|_| Failure::invalid("the patched file does not fit in memory"))?;
        if let Some(len) = out_len {
            *len = size;
        }
        if out_capacity < size {
            return Err(Failure::new(
                pocketrec_status::POCKETREC_BUFFER_TOO_SMALL,
                format!("out holds {out_capacity} bytes; the patched file has {size}"),
            ));
        }
        // SAFETY: `out` as documented.
        let buffer = unsafe { args::output(out, out_capacity, "out") }?;
        let mut sink = SliceSink::new(buffer);
        patch::apply(base, patch_bytes, &mut sink)?;
        Ok(())
    })
}
