//! JNI glue for the Java class `org.pocketrec.PocketRec` (`java/`), feature `jni`.
//!
//! Each native method calls the C API of this crate, so the Java binding has the same checks,
//! handle registry and panic boundary as C. A failed call throws
//! `org.pocketrec.PocketRecException(status, message)`; a Java exception already pending (a
//! `null` array, say) is left to propagate. Every method body also runs under `catch_unwind`,
//! so no Rust panic unwinds into the JVM.
//!
//! Java has no unsigned 64-bit integer: ids travel as `long` with the same bits, so ids of
//! 2^63 and above (string-id hashes, typically) are negative in Java.

use std::ffi::{CStr, CString};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{null, null_mut};

use jni::JNIEnv;
use jni::objects::{
    JByteArray, JByteBuffer, JClass, JFloatArray, JIntArray, JLongArray, JObject, JString,
    JThrowable, JValue,
};
use jni::sys::{jboolean, jfloat, jint, jlong, jsize};

use crate::pocketrec_status::{self as status, *};
use crate::*;

/// The exception class thrown for a failed call.
const EXCEPTION: &str = "org/pocketrec/PocketRecException";

/// Why a native method did not return normally.
enum Thrown {
    /// A C API failure, or a bad argument found by the glue.
    Status(pocketrec_status, String),
    /// A JNI call failed (a Java exception may be pending).
    Jni(jni::errors::Error),
}

impl From<jni::errors::Error> for Thrown {
    fn from(error: jni::errors::Error) -> Self {
        Thrown::Jni(error)
    }
}

type JResult<T> = Result<T, Thrown>;

/// A `POCKETREC_INVALID_ARGUMENT` failure found by the glue.
fn invalid(message: impl Into<String>) -> Thrown {
    Thrown::Status(POCKETREC_INVALID_ARGUMENT, message.into())
}

/// `Ok` for `POCKETREC_OK`, else the status with this thread's error message.
fn check(status: pocketrec_status) -> JResult<()> {
    if status == POCKETREC_OK {
        return Ok(());
    }
    // SAFETY: pocketrec_last_error returns a valid NUL-terminated string, never NULL.
    let message = unsafe { CStr::from_ptr(pocketrec_last_error()) };
    Err(Thrown::Status(
        status,
        message.to_string_lossy().into_owned(),
    ))
}

/// The handle a Java `long` carries.
fn handle(h: jlong) -> *mut pocketrec_model {
    std::ptr::without_provenance_mut(h as usize)
}

/// A non-negative Java length or count as a `usize`.
fn count(value: jint, what: &str) -> JResult<usize> {
    usize::try_from(value).map_err(|_| invalid(format!("{what} is negative ({value})")))
}

/// Throws `thrown` as a Java exception unless one is already pending.
fn throw(env: &mut JNIEnv<'_>, thrown: Thrown) {
    if env.exception_check().unwrap_or(true) {
        return;
    }
    let (code, message) = match thrown {
        Thrown::Status(status, message) => (status as jint, message),
        Thrown::Jni(error) => (POCKETREC_INVALID_ARGUMENT as jint, error.to_string()),
    };
    let Ok(message) = env.new_string(message) else {
        return;
    };
    let exception = env.new_object(
        EXCEPTION,
        "(ILjava/lang/String;)V",
        &[JValue::Int(code), JValue::Object(&message)],
    );
    if let Ok(exception) = exception {
        let _ = env.throw(JThrowable::from(exception));
    }
}

/// Runs a native method's body: returns its value, or throws and returns `fallback`.
fn entry<'local, T>(
    env: &mut JNIEnv<'local>,
    fallback: T,
    body: impl FnOnce(&mut JNIEnv<'local>) -> JResult<T>,
) -> T {
    let thrown = match catch_unwind(AssertUnwindSafe(|| body(env))) {
        Ok(Ok(value)) => return value,
        Ok(Err(thrown)) => thrown,
        Err(_) => Thrown::Status(
            POCKETREC_PANIC,
            "internal error (panic caught) in the JNI glue".into(),
        ),
    };
    throw(env, thrown);
    fallback
}

/// The elements of a Java `long[]` as ids; `null` gives no ids when `nullable`.
fn ids(env: &mut JNIEnv<'_>, array: &JLongArray<'_>, nullable: bool) -> JResult<Vec<u64>> {
    if array.is_null() {
        return if nullable {
            Ok(Vec::new())
        } else {
            Err(invalid("the id array is null"))
        };
    }
    let len = env.get_array_length(array)?;
    let mut values = vec![0i64; count(len, "array length")?];
    env.get_long_array_region(array, 0, &mut values)?;
    Ok(values.into_iter().map(|v| v as u64).collect())
}

/// The elements of a Java `float[]`; `None` for `null`.
fn floats(env: &mut JNIEnv<'_>, array: &JFloatArray<'_>) -> JResult<Option<Vec<f32>>> {
    if array.is_null() {
        return Ok(None);
    }
    let len = env.get_array_length(array)?;
    let mut values = vec![0f32; count(len, "array length")?];
    env.get_float_array_region(array, 0, &mut values)?;
    Ok(Some(values))
}

/// A new Java `float[]` holding `values`.
fn float_array<'local>(env: &mut JNIEnv<'local>, values: &[f32]) -> JResult<JFloatArray<'local>> {
    let len = jsize::try_from(values.len()).map_err(|_| invalid("answer too large for Java"))?;
    let array = env.new_float_array(len)?;
    env.set_float_array_region(&array, 0, values)?;
    Ok(array)
}

/// `static native int nativeAbiVersion()`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeAbiVersion(
    _env: JNIEnv<'_>,
    _class: JClass<'_>,
) -> jint {
    pocketrec_abi_version() as jint
}

/// `static native String nativeVersion()`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeVersion<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
) -> JString<'local> {
    entry(&mut env, JString::default(), |env| {
        // SAFETY: pocketrec_version returns a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(pocketrec_version()) };
        Ok(env.new_string(version.to_string_lossy())?)
    })
}

/// `static native long nativeOpenPath(String path)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeOpenPath<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    path: JString<'local>,
) -> jlong {
    entry(&mut env, 0, |env| {
        if path.is_null() {
            return Err(invalid("path is null"));
        }
        let path: String = env.get_string(&path)?.into();
        let path = CString::new(path).map_err(|_| invalid("path contains a NUL character"))?;
        let mut model = null_mut();
        // SAFETY: a NUL-terminated path and a writable out pointer.
        check(unsafe { pocketrec_open(path.as_ptr(), &mut model) })?;
        Ok(model.addr() as jlong)
    })
}

/// `static native long nativeOpenFd(int fd, long offset, long length)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeOpenFd<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    fd: jint,
    offset: jlong,
    length: jlong,
) -> jlong {
    entry(&mut env, 0, |_env| {
        let offset = u64::try_from(offset).map_err(|_| invalid("offset is negative"))?;
        let length = u64::try_from(length).map_err(|_| invalid("length is negative"))?;
        let mut model = null_mut();
        // SAFETY: a writable out pointer; `fd` is checked by pocketrec_open_fd.
        check(unsafe { pocketrec_open_fd(fd, offset, length, &mut model) })?;
        Ok(model.addr() as jlong)
    })
}

/// `static native int nativeFdOf(FileDescriptor fd)`: the descriptor number inside a
/// `java.io.FileDescriptor` (field `descriptor` on Android, `fd` on OpenJDK).
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeFdOf<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    fd: JObject<'local>,
) -> jint {
    entry(&mut env, -1, |env| {
        if fd.is_null() {
            return Err(invalid("the FileDescriptor is null"));
        }
        for field in ["descriptor", "fd"] {
            match env.get_field(&fd, field, "I").and_then(|v| v.i()) {
                Ok(number) => return Ok(number),
                // NoSuchFieldError: try the other runtime's name.
                Err(_) => env.exception_clear()?,
            }
        }
        Err(invalid(
            "cannot read the descriptor number of this FileDescriptor",
        ))
    })
}

/// `static native long nativeOpenBuffer(ByteBuffer buffer, int position, int length)`: a
/// direct buffer, read from `position` for `length` bytes.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeOpenBuffer<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    buffer: JByteBuffer<'local>,
    position: jint,
    length: jint,
) -> jlong {
    entry(&mut env, 0, |env| {
        let (start, length) = direct_range(env, &buffer, position, length)?;
        let mut model = null_mut();
        // SAFETY: [start, start + length) lies inside the direct buffer (direct_range). The
        // Java object keeps the buffer reachable for as long as the handle is open, and its
        // native methods are instance methods, which keep it reachable during each call.
        check(unsafe { pocketrec_open_bytes(start, length, &mut model) })?;
        Ok(model.addr() as jlong)
    })
}

/// The bytes `[position, position + length)` of a direct buffer: their address and length,
/// checked to lie inside the buffer.
fn direct_range(
    env: &mut JNIEnv<'_>,
    buffer: &JByteBuffer<'_>,
    position: jint,
    length: jint,
) -> JResult<(*const u8, usize)> {
    if buffer.is_null() {
        return Err(invalid("the ByteBuffer is null"));
    }
    let address = env
        .get_direct_buffer_address(buffer)
        .map_err(|_| invalid("the ByteBuffer is not direct"))?;
    let capacity = env.get_direct_buffer_capacity(buffer)?;
    let (position, length) = (count(position, "position")?, count(length, "length")?);
    if position
        .checked_add(length)
        .is_none_or(|end| end > capacity)
    {
        return Err(invalid(format!(
            "position {position} + length {length} exceeds the capacity {capacity}"
        )));
    }
    Ok((address.wrapping_add(position).cast_const(), length))
}

/// `native void nativeClose(long handle)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeClose<'local>(
    _env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
) {
    pocketrec_close(handle(model));
}

/// `native void nativeVerify(long handle)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeVerify<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
) {
    entry(&mut env, (), |_env| check(pocketrec_verify(handle(model))))
}

/// `native int nativeDim(long handle)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeDim<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
) -> jint {
    entry(&mut env, 0, |_env| {
        let mut dim = 0u32;
        // SAFETY: a writable out pointer.
        check(unsafe { pocketrec_dim(handle(model), &mut dim) })?;
        jint::try_from(dim).map_err(|_| invalid("dimension too large for Java"))
    })
}

/// `native long nativeCount(long handle, boolean users)`: users or items.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeCount<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    users: jboolean,
) -> jlong {
    entry(&mut env, 0, |_env| {
        let (mut n_users, mut n_items) = (0u64, 0u64);
        // SAFETY: writable out pointers.
        check(unsafe { pocketrec_counts(handle(model), &mut n_users, &mut n_items) })?;
        Ok((if users != 0 { n_users } else { n_items }) as jlong)
    })
}

/// `native float[] nativeEmbedding(long handle, boolean user, long id)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeEmbedding<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    user: jboolean,
    id: jlong,
) -> JFloatArray<'local> {
    entry(&mut env, JFloatArray::default(), |env| {
        let model = handle(model);
        let mut dim = 0u32;
        // SAFETY: a writable out pointer.
        check(unsafe { pocketrec_dim(model, &mut dim) })?;
        let mut vector = vec![0f32; dim as usize];
        let (out, len) = (vector.as_mut_ptr(), vector.len());
        // SAFETY: `out` holds `len` floats.
        check(unsafe {
            if user != 0 {
                pocketrec_user_embedding(model, id as u64, out, len)
            } else {
                pocketrec_item_embedding(model, id as u64, out, len)
            }
        })?;
        float_array(env, &vector)
    })
}

/// `native float[] nativeScore(long handle, long user, long[] items)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeScore<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    user: jlong,
    items: JLongArray<'local>,
) -> JFloatArray<'local> {
    entry(&mut env, JFloatArray::default(), |env| {
        let items = ids(env, &items, false)?;
        let mut scores = vec![0f32; items.len()];
        // SAFETY: `items.len()` ids in, as many floats out.
        check(unsafe {
            pocketrec_score(
                handle(model),
                user as u64,
                items.as_ptr(),
                items.len(),
                scores.as_mut_ptr(),
            )
        })?;
        float_array(env, &scores)
    })
}

/// The common part of the two recommend methods: runs `query` with output arrays of `k`
/// entries, writes the scores to the Java `float[]` and returns the ids as a new `long[]`.
fn recommend_into<'local>(
    env: &mut JNIEnv<'local>,
    k: jint,
    scores_out: &JFloatArray<'local>,
    query: impl FnOnce(usize, *mut u64, *mut f32, *mut usize) -> pocketrec_status,
) -> JResult<JLongArray<'local>> {
    let k = count(k, "k")?;
    if scores_out.is_null() || count(env.get_array_length(scores_out)?, "length")? < k {
        return Err(invalid("the scores array is null or shorter than k"));
    }
    // The Java side caps `k` at the number of items before allocating its array.
    let mut items = vec![0u64; k];
    let mut scores = vec![0f32; items.len()];
    let mut len = 0usize;
    check(query(
        items.len(),
        items.as_mut_ptr(),
        scores.as_mut_ptr(),
        &mut len,
    ))?;
    env.set_float_array_region(scores_out, 0, &scores[..len])?;
    let ids: Vec<i64> = items[..len].iter().map(|&id| id as i64).collect();
    let array = env.new_long_array(len as jsize)?;
    env.set_long_array_region(&array, 0, &ids)?;
    Ok(array)
}

/// `native long[] nativeRecommend(long handle, long user, long[] exclude, int k, float[] scores)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeRecommend<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    user: jlong,
    exclude: JLongArray<'local>,
    k: jint,
    scores: JFloatArray<'local>,
) -> JLongArray<'local> {
    entry(&mut env, JLongArray::default(), |env| {
        let exclude = ids(env, &exclude, true)?;
        recommend_into(env, k, &scores, |k, items, scores, len| {
            // SAFETY: `items` and `scores` hold `k` entries, `exclude` its length, `len` one.
            unsafe {
                pocketrec_recommend(
                    handle(model),
                    user as u64,
                    exclude.as_ptr(),
                    exclude.len(),
                    k,
                    items,
                    scores,
                    len,
                )
            }
        })
    })
}

/// `native long[] nativeRecommendVector(long handle, float[] vector, long[] exclude, int k,
/// float[] scores)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeRecommendVector<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    vector: JFloatArray<'local>,
    exclude: JLongArray<'local>,
    k: jint,
    scores: JFloatArray<'local>,
) -> JLongArray<'local> {
    entry(&mut env, JLongArray::default(), |env| {
        if vector.is_null() {
            return Err(invalid("the user vector is null"));
        }
        let dim = count(env.get_array_length(&vector)?, "vector length")?;
        let mut user = vec![0f32; dim];
        env.get_float_array_region(&vector, 0, &mut user)?;
        let exclude = ids(env, &exclude, true)?;
        recommend_into(env, k, &scores, |k, items, scores, len| {
            // SAFETY: `user` holds `dim` floats, `items` and `scores` `k` entries, `exclude`
            // its length, `len` one.
            unsafe {
                pocketrec_recommend_vector(
                    handle(model),
                    user.as_ptr(),
                    user.len(),
                    exclude.as_ptr(),
                    exclude.len(),
                    k,
                    items,
                    scores,
                    len,
                )
            }
        })
    })
}

/// `native float[] nativeFoldIn(long handle, long[] items, float[] weights, float[] prior,
/// float precision)`: `weights` and `prior` may be `null`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeFoldIn<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    items: JLongArray<'local>,
    weights: JFloatArray<'local>,
    prior: JFloatArray<'local>,
    precision: jfloat,
) -> JFloatArray<'local> {
    entry(&mut env, JFloatArray::default(), |env| {
        let model = handle(model);
        let items = ids(env, &items, false)?;
        let weights = floats(env, &weights)?;
        if let Some(weights) = &weights
            && weights.len() != items.len()
        {
            return Err(invalid(format!(
                "{} weights for {} items: give one weight per item, or null for all 1",
                weights.len(),
                items.len()
            )));
        }
        let prior = floats(env, &prior)?;
        let mut dim = 0u32;
        // SAFETY: a writable out pointer.
        check(unsafe { pocketrec_dim(model, &mut dim) })?;
        let mut vector = vec![0f32; dim as usize];
        if let Some(prior) = &prior
            && prior.len() != vector.len()
        {
            return Err(invalid(format!(
                "the prior has {} floats, the dimension is {dim}",
                prior.len()
            )));
        }
        // SAFETY: `items` and `weights` (when given) hold `items.len()` entries, `prior` (when
        // given) and `vector` `vector.len()` floats; the counts are not wanted.
        check(unsafe {
            pocketrec_fold_in(
                model,
                items.as_ptr(),
                weights.as_ref().map_or(null(), |w| w.as_ptr()),
                items.len(),
                prior.as_ref().map_or(null(), |p| p.as_ptr()),
                precision,
                vector.as_mut_ptr(),
                vector.len(),
                null_mut(),
                null_mut(),
            )
        })?;
        float_array(env, &vector)
    })
}

/// `static native long nativeIdFromUtf8(byte[] utf8)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeIdFromUtf8<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    utf8: JByteArray<'local>,
) -> jlong {
    entry(&mut env, 0, |env| {
        if utf8.is_null() {
            return Err(invalid("the id is null"));
        }
        let bytes = env.convert_byte_array(&utf8)?;
        let ptr = if bytes.is_empty() {
            null()
        } else {
            bytes.as_ptr()
        };
        // SAFETY: `bytes.len()` readable bytes (or NULL with length 0).
        let id = unsafe { pocketrec_id_from_str(ptr.cast(), bytes.len()) };
        check(if id == 0 && !last_error_is_empty() {
            status::POCKETREC_INVALID_ARGUMENT
        } else {
            POCKETREC_OK
        })?;
        Ok(id as jlong)
    })
}

/// `native long[] nativeRecommendBatch(long handle, long[] users, int k, int threads,
/// float[] scores, int[] counts)`: user `i`'s items at `[i*k, i*k + counts[i])` of the
/// returned array (of `users.length * k` ids), their scores at the same places of `scores`.
/// The Java side caps `k` at the number of items and allocates `scores` and `counts`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeRecommendBatch<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    users: JLongArray<'local>,
    k: jint,
    threads: jint,
    scores_out: JFloatArray<'local>,
    counts_out: JIntArray<'local>,
) -> JLongArray<'local> {
    entry(&mut env, JLongArray::default(), |env| {
        let users = ids(env, &users, false)?;
        let (k, threads) = (count(k, "k")?, count(threads, "threads")?);
        let entries = users
            .len()
            .checked_mul(k)
            .and_then(|n| jsize::try_from(n).ok())
            .ok_or_else(|| invalid("users.length * k is too large for a Java array"))?;
        if scores_out.is_null() || env.get_array_length(&scores_out)? < entries {
            return Err(invalid(
                "the scores array is null or shorter than users.length * k",
            ));
        }
        if counts_out.is_null()
            || count(env.get_array_length(&counts_out)?, "length")? < users.len()
        {
            return Err(invalid("the counts array is null or shorter than users"));
        }
        let mut items = vec![0u64; entries as usize];
        let mut scores = vec![0f32; items.len()];
        let mut counts = vec![0usize; users.len()];
        // SAFETY: `users` holds `users.len()` ids, `items` and `scores` `users.len() * k`
        // entries, `counts` `users.len()`; no exclusions; the unknown count is not wanted.
        check(unsafe {
            pocketrec_recommend_batch(
                handle(model),
                users.as_ptr(),
                users.len(),
                null(),
                null(),
                k,
                threads,
                items.as_mut_ptr(),
                scores.as_mut_ptr(),
                counts.as_mut_ptr(),
                null_mut(),
            )
        })?;
        // Counts are at most k, which is a jint.
        let counts: Vec<jint> = counts.iter().map(|&c| c as jint).collect();
        env.set_int_array_region(&counts_out, 0, &counts)?;
        env.set_float_array_region(&scores_out, 0, &scores)?;
        let ids: Vec<i64> = items.iter().map(|&id| id as i64).collect();
        let array = env.new_long_array(entries)?;
        env.set_long_array_region(&array, 0, &ids)?;
        Ok(array)
    })
}

/// `native long nativeFindItem(long handle, byte[] utf8)`: the item's id, by its string id.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeFindItem<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    utf8: JByteArray<'local>,
) -> jlong {
    entry(&mut env, 0, |env| {
        if utf8.is_null() {
            return Err(invalid("the id is null"));
        }
        let bytes = env.convert_byte_array(&utf8)?;
        let mut id = 0u64;
        // SAFETY: `bytes.len()` readable bytes (a Vec's pointer is never NULL), a writable
        // out pointer.
        check(unsafe {
            pocketrec_find_item_str(handle(model), bytes.as_ptr().cast(), bytes.len(), &mut id)
        })?;
        Ok(id as jlong)
    })
}

/// `native String nativeItemIdString(long handle, long id)`: the item's original string id;
/// `null` when the model stores no strings for its item ids.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeItemIdString<'local>(
    mut env: JNIEnv<'local>,
    _this: JObject<'local>,
    model: jlong,
    id: jlong,
) -> JString<'local> {
    entry(&mut env, JString::default(), |env| {
        let mut len = 0usize;
        // SAFETY: a size query: NULL buffer of length 0, a writable out pointer.
        let sized =
            unsafe { pocketrec_item_id_str(handle(model), id as u64, null_mut(), 0, &mut len) };
        if sized == status::POCKETREC_UNSUPPORTED {
            return Ok(JString::default());
        }
        if sized != status::POCKETREC_BUFFER_TOO_SMALL {
            check(sized)?;
        }
        let mut buf = vec![0u8; len + 1];
        // SAFETY: `buf` holds `len + 1` writable bytes.
        check(unsafe {
            pocketrec_item_id_str(
                handle(model),
                id as u64,
                buf.as_mut_ptr().cast(),
                buf.len(),
                null_mut(),
            )
        })?;
        let text =
            std::str::from_utf8(&buf[..len]).map_err(|_| invalid("id string is not UTF-8"))?;
        Ok(env.new_string(text)?)
    })
}

/// True when this thread's last call succeeded.
fn last_error_is_empty() -> bool {
    // SAFETY: pocketrec_last_error returns a valid NUL-terminated string, never NULL.
    unsafe { CStr::from_ptr(pocketrec_last_error()) }.is_empty()
}

/// A Java `String` as a C string.
fn c_string(env: &mut JNIEnv<'_>, value: &JString<'_>, what: &str) -> JResult<CString> {
    if value.is_null() {
        return Err(invalid(format!("{what} is null")));
    }
    let value: String = env.get_string(value)?.into();
    CString::new(value).map_err(|_| invalid(format!("{what} contains a NUL character")))
}

/// The bytes of a Java `byte[]`; `None` for `null`.
fn bytes(env: &mut JNIEnv<'_>, array: &JByteArray<'_>) -> JResult<Option<Vec<u8>>> {
    if array.is_null() {
        return Ok(None);
    }
    Ok(Some(env.convert_byte_array(array)?))
}

/// A 32-byte public key from a Java `byte[]` (`None` for `null`).
fn key(env: &mut JNIEnv<'_>, array: &JByteArray<'_>) -> JResult<Option<[u8; 32]>> {
    match bytes(env, array)? {
        None => Ok(None),
        Some(b) => b
            .try_into()
            .map(Some)
            .map_err(|_| invalid("the public key is not 32 bytes")),
    }
}

/// `static native long nativeOpenPathSigned(String path, byte[] publicKey)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeOpenPathSigned<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    path: JString<'local>,
    public_key: JByteArray<'local>,
) -> jlong {
    entry(&mut env, 0, |env| {
        let path = c_string(env, &path, "path")?;
        let key = key(env, &public_key)?.ok_or_else(|| invalid("publicKey is null"))?;
        let mut model = null_mut();
        // SAFETY: a NUL-terminated path, a 32-byte key and a writable out pointer.
        check(unsafe { pocketrec_open_signed(path.as_ptr(), key.as_ptr(), &mut model) })?;
        Ok(model.addr() as jlong)
    })
}

/// `static native long nativeOpenBufferSigned(ByteBuffer buffer, int position, int length,
/// byte[] publicKey)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeOpenBufferSigned<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    buffer: JByteBuffer<'local>,
    position: jint,
    length: jint,
    public_key: JByteArray<'local>,
) -> jlong {
    entry(&mut env, 0, |env| {
        let key = key(env, &public_key)?.ok_or_else(|| invalid("publicKey is null"))?;
        let (start, length) = direct_range(env, &buffer, position, length)?;
        let mut model = null_mut();
        // SAFETY: as in nativeOpenBuffer: the range lies inside the direct buffer, which the
        // Java object keeps reachable while the handle is open; the key has 32 bytes.
        check(unsafe { pocketrec_open_bytes_signed(start, length, key.as_ptr(), &mut model) })?;
        Ok(model.addr() as jlong)
    })
}

/// `static native void nativeApplyPatch(String base, String patch, String target,
/// byte[] publicKey)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeApplyPatch<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    base: JString<'local>,
    patch: JString<'local>,
    target: JString<'local>,
    public_key: JByteArray<'local>,
) {
    entry(&mut env, (), |env| {
        let base = c_string(env, &base, "base")?;
        let patch = c_string(env, &patch, "patch")?;
        let target = c_string(env, &target, "target")?;
        let key = key(env, &public_key)?;
        let key_ptr = key.as_ref().map_or(null(), |k| k.as_ptr());
        // SAFETY: NUL-terminated paths; the key is NULL or 32 readable bytes.
        check(unsafe {
            pocketrec_apply_patch(base.as_ptr(), patch.as_ptr(), target.as_ptr(), key_ptr)
        })
    })
}

/// `static native byte[] nativeApplyPatchBytes(byte[] base, byte[] patch, byte[] publicKey)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_pocketrec_PocketRec_nativeApplyPatchBytes<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    base: JByteArray<'local>,
    patch: JByteArray<'local>,
    public_key: JByteArray<'local>,
) -> JByteArray<'local> {
    entry(&mut env, JByteArray::default(), |env| {
        let base = bytes(env, &base)?.ok_or_else(|| invalid("base is null"))?;
        let patch = bytes(env, &patch)?.ok_or_else(|| invalid("patch is null"))?;
        let key = key(env, &public_key)?;
        let key_ptr = key.as_ref().map_or(null(), |k| k.as_ptr());
        let mut needed = 0usize;
        // SAFETY: the inputs are live vectors of the lengths given; a size query (NULL out).
        let status = unsafe {
            pocketrec_apply_patch_bytes(
                base.as_ptr(),
                base.len(),
                patch.as_ptr(),
                patch.len(),
                key_ptr,
                null_mut(),
                0,
                &mut needed,
            )
        };
        if status != POCKETREC_BUFFER_TOO_SMALL {
            check(status)?;
        }
        let mut out = vec![0u8; needed];
        // SAFETY: as above, and `out` holds `needed` writable bytes.
        check(unsafe {
            pocketrec_apply_patch_bytes(
                base.as_ptr(),
                base.len(),
                patch.as_ptr(),
                patch.len(),
                key_ptr,
                out.as_mut_ptr(),
                out.len(),
                &mut needed,
            )
        })?;
        Ok(env.byte_array_from_slice(&out)?)
    })
}
