//! Tests of the C ABI, calling the exported functions exactly as C does.

use std::ffi::{CStr, CString, c_char};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::ptr::{null, null_mut};

use pocketrec_runtime::builder::{FoldInParams, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec_runtime::{IdKind, Model, Prior, Recommendation, Role, ValueEncoding};

use crate::pocketrec_status::*;
use crate::*;

const DIM: usize = 16;
const USERS: usize = 40;
const ITEMS: usize = 300;

/// A small deterministic pseudo-random stream (no dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// A sparse table with roughly a third of the values zero.
fn table(rng: &mut Lcg, rows: usize) -> SparseMatrix {
    let data: Vec<f32> = (0..rows * DIM)
        .map(|_| {
            let v = rng.next();
            if v.abs() < 0.33 { 0.0 } else { v }
        })
        .collect();
    SparseMatrix::from_dense(rows, DIM, &data).unwrap()
}

/// A model with sparse ids (user 1000 + 7r, item 5000 + 3r), item biases and f16 values.
fn model_bytes() -> Vec<u8> {
    model_bytes_with(pocketrec_runtime::builder::Layout::Rows)
}

/// [`model_bytes`] with the item table stored with `layout`.
fn model_bytes_with(layout: pocketrec_runtime::builder::Layout) -> Vec<u8> {
    builder(layout).build().unwrap()
}

/// The fold-in settings of [`fold_in_model_bytes`].
const FOLD_IN: FoldInParams = FoldInParams {
    unobserved_weight: 0.25,
    regularization: 0.5,
};

/// [`model_bytes`] with a fold-in section.
fn fold_in_model_bytes() -> Vec<u8> {
    builder(pocketrec_runtime::builder::Layout::Rows)
        .fold_in(FOLD_IN)
        .build()
        .unwrap()
}

/// The builder of [`model_bytes_with`].
fn builder(layout: pocketrec_runtime::builder::Layout) -> ModelBuilder {
    let mut rng = Lcg(7);
    let users = table(&mut rng, USERS);
    let items = table(&mut rng, ITEMS);
    let bias: Vec<f32> = (0..ITEMS).map(|_| rng.next() * 0.1).collect();
    ModelBuilder::new()
        .table(TableSpec::new("user_embedding", Role::User, users).ids(
            (0..USERS as u64).map(|r| 1000 + 7 * r).collect(),
            IdKind::Integer,
        ))
        .table(
            TableSpec::new("item_embedding", Role::Item, items)
                .values(ValueEncoding::F16)
                .layout(layout)
                .ids(
                    (0..ITEMS as u64).map(|r| 5000 + 3 * r).collect(),
                    IdKind::Integer,
                )
                .bias(bias),
        )
}

fn user_id(r: usize) -> u64 {
    1000 + 7 * r as u64
}

fn item_id(r: usize) -> u64 {
    5000 + 3 * r as u64
}

fn last_error() -> String {
    // SAFETY: pocketrec_last_error returns a valid NUL-terminated string, never NULL.
    unsafe { CStr::from_ptr(pocketrec_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Leaks `bytes` so a handle may borrow them for the rest of the test process.
fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

fn open_bytes(bytes: &'static [u8]) -> *mut pocketrec_model {
    let mut model = null_mut();
    // SAFETY: `bytes` lives forever; `model` is writable.
    let status = unsafe { pocketrec_open_bytes(bytes.as_ptr(), bytes.len(), &mut model) };
    assert_eq!(status, POCKETREC_OK, "{}", last_error());
    assert!(!model.is_null());
    model
}

/// The C API's top-k for `user`.
fn recommend(
    model: *const pocketrec_model,
    user: u64,
    exclude: &[u64],
    k: usize,
) -> Vec<(u64, f32)> {
    let mut items = vec![0u64; k];
    let mut scores = vec![0f32; k];
    let mut len = usize::MAX;
    // SAFETY: every array has the length passed with it.
    let status = unsafe {
        pocketrec_recommend(
            model,
            user,
            exclude.as_ptr(),
            exclude.len(),
            k,
            items.as_mut_ptr(),
            scores.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(status, POCKETREC_OK, "{}", last_error());
    assert!(len <= k);
    items.into_iter().zip(scores).take(len).collect()
}

/// The runtime's own top-k, the reference.
fn reference(bytes: &[u8], user: u64, exclude: &[u64], k: usize) -> Vec<(u64, f32)> {
    let model = Model::from_bytes(bytes).unwrap();
    let mut out = vec![Recommendation::default(); k];
    let n = model.recommend(user, k, exclude, &mut out).unwrap();
    out[..n].iter().map(|r| (r.id, r.score)).collect()
}

fn close(model: *mut pocketrec_model) {
    pocketrec_close(model);
}

#[test]
fn versions() {
    assert_eq!(pocketrec_abi_version(), POCKETREC_ABI_VERSION);
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(pocketrec_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let parts: Vec<u32> = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        parts,
        [
            POCKETREC_VERSION_MAJOR,
            POCKETREC_VERSION_MINOR,
            POCKETREC_VERSION_PATCH
        ],
        "update the POCKETREC_VERSION_* constants (and regenerate the header)"
    );
}

#[test]
fn header_declares_every_entry_point_and_status() {
    let header = include_str!("../include/pocketrec.h");
    for name in [
        "pocketrec_abi_version(void)",
        "pocketrec_version(void)",
        "pocketrec_open(",
        "pocketrec_open_fd(",
        "pocketrec_open_bytes(",
        "pocketrec_open_copy(",
        "pocketrec_close(",
        "pocketrec_verify(",
        "pocketrec_dim(",
        "pocketrec_counts(",
        "pocketrec_user_embedding(",
        "pocketrec_item_embedding(",
        "pocketrec_score(",
        "pocketrec_recommend(",
        "pocketrec_recommend_vector(",
        "pocketrec_fold_in(",
        "pocketrec_fold_in_params(",
        "pocketrec_fold_in_softmax_params(",
        "pocketrec_id_from_str(",
        "pocketrec_item_id_str(",
        "pocketrec_find_item_str(",
        "pocketrec_recommend_batch(",
        "pocketrec_recommend_vector_batch(",
        "pocketrec_last_error(void)",
        "typedef struct pocketrec_model pocketrec_model;",
        "POCKETREC_OK = 0,",
        "POCKETREC_PANIC = 6,",
        "POCKETREC_UNSUPPORTED = 7,",
    ] {
        assert!(header.contains(name), "pocketrec.h lacks {name}");
    }
    let version = format!(
        "#define POCKETREC_VERSION_MAJOR {}",
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert!(header.contains(&version), "pocketrec.h lacks {version}");
}

#[test]
fn every_open_path_gives_the_runtimes_answers() {
    let bytes = model_bytes();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.prec");
    std::fs::write(&path, &bytes).unwrap();
    // The model inside a larger file at an offset that is not page-aligned (nor even 4-byte
    // aligned), as an uncompressed asset inside an APK.
    let container = dir.path().join("app.apk");
    let offset = 4096 + 4093;
    let mut file = std::fs::File::create(&container).unwrap();
    file.write_all(&vec![0xAB; offset]).unwrap();
    file.write_all(&bytes).unwrap();
    file.write_all(&[0xCD; 777]).unwrap();
    drop(file);

    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let mut handles = Vec::new();
    let mut model = null_mut();
    assert_eq!(
        // SAFETY: valid C string and out pointer.
        unsafe { pocketrec_open(c_path.as_ptr(), &mut model) },
        POCKETREC_OK
    );
    handles.push(model);
    assert_eq!(
        // SAFETY: every pointer passed is valid for the call.
        unsafe { pocketrec_open_copy(c_path.as_ptr(), &mut model) },
        POCKETREC_OK
    );
    handles.push(model);
    handles.push(open_bytes(leak(bytes.clone())));
    let apk = std::fs::File::open(&container).unwrap();
    // SAFETY: an open descriptor and a writable out pointer.
    let status = unsafe {
        pocketrec_open_fd(
            apk.as_raw_fd(),
            offset as u64,
            bytes.len() as u64,
            &mut model,
        )
    };
    assert_eq!(status, POCKETREC_OK, "{}", last_error());
    drop(apk); // the handle does not need the descriptor
    handles.push(model);

    for &model in &handles {
        let (mut dim, mut users, mut items) = (0u32, 0u64, 0u64);
        // SAFETY: writable out pointers.
        unsafe {
            assert_eq!(pocketrec_dim(model, &mut dim), POCKETREC_OK);
            assert_eq!(
                pocketrec_counts(model, &mut users, &mut items),
                POCKETREC_OK
            );
            assert_eq!(pocketrec_verify(model), POCKETREC_OK);
        }
        assert_eq!(
            (dim, users, items),
            (DIM as u32, USERS as u64, ITEMS as u64)
        );
        for r in [0, 17, USERS - 1] {
            let exclude = [item_id(3), item_id(200), 42];
            assert_eq!(
                recommend(model, user_id(r), &exclude, 10),
                reference(&bytes, user_id(r), &exclude, 10)
            );
        }
    }
    for model in handles {
        close(model);
    }
}

#[test]
fn embeddings_scores_and_vectors_match_the_runtime() {
    let bytes = leak(model_bytes());
    let reference_model = Model::from_bytes(bytes).unwrap();
    let model = open_bytes(bytes);
    let user = user_id(5);
    let mut vector = [0f32; DIM + 3];
    // SAFETY: `vector` holds DIM + 3 floats.
    let status =
        unsafe { pocketrec_user_embedding(model, user, vector.as_mut_ptr(), vector.len()) };
    assert_eq!(status, POCKETREC_OK);
    let users = reference_model.users().unwrap();
    let expected = users.row(5).unwrap().to_dense();
    assert_eq!(&vector[..DIM], &expected[..]);
    let mut item = [0f32; DIM];
    // SAFETY: `item` holds DIM floats.
    let status = unsafe { pocketrec_item_embedding(model, item_id(9), item.as_mut_ptr(), DIM) };
    assert_eq!(status, POCKETREC_OK);
    assert_eq!(
        &item[..],
        &reference_model.items().unwrap().row(9).unwrap().to_dense()[..]
    );

    let candidates = [item_id(0), item_id(299), item_id(150)];
    let mut scores = [0f32; 3];
    // SAFETY: three ids in, three floats out.
    let status =
        unsafe { pocketrec_score(model, user, candidates.as_ptr(), 3, scores.as_mut_ptr()) };
    assert_eq!(status, POCKETREC_OK);
    for (c, s) in candidates.iter().zip(scores) {
        assert_eq!(s, reference_model.score(user, *c).unwrap());
    }

    let k = 7;
    let (mut items, mut scores, mut len) = (vec![0u64; k], vec![0f32; k], 0usize);
    // SAFETY: arrays of the lengths passed.
    let status = unsafe {
        pocketrec_recommend_vector(
            model,
            expected.as_ptr(),
            DIM,
            null(),
            0,
            k,
            items.as_mut_ptr(),
            scores.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(status, POCKETREC_OK);
    let mut top = vec![Recommendation::default(); k];
    let n = reference_model
        .recommend_vector(&expected, k, &[], &mut top)
        .unwrap();
    assert_eq!(len, n);
    let got: Vec<(u64, f32)> = items.into_iter().zip(scores).take(len).collect();
    let want: Vec<(u64, f32)> = top[..n].iter().map(|r| (r.id, r.score)).collect();
    assert_eq!(got, want);

    // Scores are optional, and k may exceed the catalogue.
    let k = ITEMS + 50;
    let mut items = vec![0u64; k];
    let mut len = 0;
    // SAFETY: `items` holds k ids; no scores wanted.
    let status = unsafe {
        pocketrec_recommend(
            model,
            user,
            null(),
            0,
            k,
            items.as_mut_ptr(),
            null_mut(),
            &mut len,
        )
    };
    assert_eq!(status, POCKETREC_OK);
    assert_eq!(len, ITEMS);
    assert_eq!(
        items[..len],
        reference(bytes, user, &[], ITEMS)
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>()[..]
    );
    close(model);
}

#[test]
fn null_pointers_are_refused_everywhere() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let mut handle = null_mut();
    let (mut u32_out, mut u64_out, mut len) = (0u32, 0u64, 0usize);
    let mut floats = [0f32; DIM];
    let mut ids = [0u64; 4];
    let path = c"/nonexistent".as_ptr();
    // SAFETY: every non-NULL pointer below is valid; the NULL ones are what is tested.
    let statuses = unsafe {
        [
            pocketrec_open(null(), &mut handle),
            pocketrec_open(path, null_mut()),
            pocketrec_open_copy(null(), &mut handle),
            pocketrec_open_copy(path, null_mut()),
            pocketrec_open_bytes(null(), 100, &mut handle),
            pocketrec_open_bytes(bytes.as_ptr(), bytes.len(), null_mut()),
            pocketrec_open_fd(0, 0, 10, null_mut()),
            pocketrec_verify(null()),
            pocketrec_dim(null(), &mut u32_out),
            pocketrec_dim(model, null_mut()),
            pocketrec_counts(null(), &mut u64_out, &mut u64_out),
            pocketrec_user_embedding(null(), user_id(0), floats.as_mut_ptr(), DIM),
            pocketrec_user_embedding(model, user_id(0), null_mut(), DIM),
            pocketrec_item_embedding(null(), item_id(0), floats.as_mut_ptr(), DIM),
            pocketrec_item_embedding(model, item_id(0), null_mut(), DIM),
            pocketrec_score(null(), user_id(0), ids.as_ptr(), 1, floats.as_mut_ptr()),
            pocketrec_score(model, user_id(0), null(), 1, floats.as_mut_ptr()),
            pocketrec_score(model, user_id(0), ids.as_ptr(), 1, null_mut()),
            pocketrec_recommend(
                null(),
                user_id(0),
                null(),
                0,
                4,
                ids.as_mut_ptr(),
                null_mut(),
                &mut len,
            ),
            pocketrec_recommend(
                model,
                user_id(0),
                null(),
                3,
                4,
                ids.as_mut_ptr(),
                null_mut(),
                &mut len,
            ),
            pocketrec_recommend(
                model,
                user_id(0),
                null(),
                0,
                4,
                null_mut(),
                null_mut(),
                &mut len,
            ),
            pocketrec_recommend(
                model,
                user_id(0),
                null(),
                0,
                4,
                ids.as_mut_ptr(),
                null_mut(),
                null_mut(),
            ),
            pocketrec_recommend_vector(
                model,
                null(),
                DIM,
                null(),
                0,
                4,
                ids.as_mut_ptr(),
                null_mut(),
                &mut len,
            ),
            pocketrec_recommend_vector(
                null(),
                floats.as_ptr(),
                DIM,
                null(),
                0,
                4,
                ids.as_mut_ptr(),
                null_mut(),
                &mut len,
            ),
        ]
    };
    for (i, status) in statuses.iter().enumerate() {
        assert_eq!(*status, POCKETREC_INVALID_ARGUMENT, "call #{i}");
    }
    assert!(handle.is_null(), "a failed open leaves *out NULL");
    // The message names what was wrong.
    // SAFETY: NULL `out`.
    unsafe { pocketrec_dim(model, null_mut()) };
    assert_eq!(last_error(), "out is NULL");
    // NULL arrays are fine when their length is 0, and counts are optional.
    // SAFETY: nothing is read or written through the NULL pointers.
    unsafe {
        assert_eq!(
            pocketrec_score(model, user_id(0), null(), 0, null_mut()),
            POCKETREC_OK
        );
        assert_eq!(
            pocketrec_counts(model, null_mut(), &mut u64_out),
            POCKETREC_OK
        );
        assert_eq!(
            pocketrec_recommend(
                model,
                user_id(0),
                null(),
                0,
                0,
                null_mut(),
                null_mut(),
                &mut len
            ),
            POCKETREC_OK
        );
    }
    assert_eq!(len, 0);
    assert_eq!(last_error(), "");
    pocketrec_close(null_mut()); // harmless
    close(model);
}

#[test]
fn misaligned_short_and_wrong_arguments_are_errors() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let mut floats = [0f32; DIM + 1];
    // A float pointer off by one byte.
    let misaligned = floats
        .as_mut_ptr()
        .cast::<u8>()
        .wrapping_add(1)
        .cast::<f32>();
    // SAFETY: the misaligned pointer is refused before any access.
    let status = unsafe { pocketrec_user_embedding(model, user_id(0), misaligned, DIM) };
    assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
    assert!(last_error().contains("not aligned"), "{}", last_error());
    // SAFETY: `floats` holds DIM - 1 floats at least.
    let status =
        unsafe { pocketrec_user_embedding(model, user_id(0), floats.as_mut_ptr(), DIM - 1) };
    assert_eq!(status, POCKETREC_BUFFER_TOO_SMALL);
    assert_eq!(
        last_error(),
        format!("out holds {} floats, the dimension is {DIM}", DIM - 1)
    );
    // SAFETY: as above.
    let status = unsafe { pocketrec_user_embedding(model, 3, floats.as_mut_ptr(), DIM) };
    assert_eq!(status, POCKETREC_NOT_FOUND);
    assert_eq!(last_error(), "no user with id 3");
    let mut len = 9;
    let mut ids = [0u64; 2];
    // SAFETY: arrays of the lengths passed.
    unsafe {
        let status = pocketrec_recommend(
            model,
            4,
            null(),
            0,
            2,
            ids.as_mut_ptr(),
            null_mut(),
            &mut len,
        );
        assert_eq!(status, POCKETREC_NOT_FOUND);
        assert_eq!(len, 0, "out_len is 0 after a failure");
        let status = pocketrec_recommend_vector(
            model,
            floats.as_ptr(),
            DIM - 1,
            null(),
            0,
            2,
            ids.as_mut_ptr(),
            null_mut(),
            &mut len,
        );
        assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
        floats[3] = f32::NAN;
        let status = pocketrec_recommend_vector(
            model,
            floats.as_ptr(),
            DIM,
            null(),
            0,
            2,
            ids.as_mut_ptr(),
            null_mut(),
            &mut len,
        );
        assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
        let status = pocketrec_score(
            model,
            user_id(1),
            [item_id(1), 7].as_ptr(),
            2,
            floats.as_mut_ptr(),
        );
        assert_eq!(status, POCKETREC_NOT_FOUND);
        assert_eq!(last_error(), "no item with id 7");
    }
    close(model);
}

#[test]
fn closed_handles_are_refused_and_never_reused() {
    let bytes = leak(model_bytes());
    let first = open_bytes(bytes);
    close(first);
    close(first); // closing twice is harmless
    let second = open_bytes(bytes);
    assert_ne!(
        first, second,
        "a closed handle's value is not given to a new model"
    );
    let mut dim = 0;
    assert_eq!(
        // SAFETY: writable out pointer; `first` is a closed handle, which is what is tested.
        unsafe { pocketrec_dim(first, &mut dim) },
        POCKETREC_INVALID_ARGUMENT
    );
    assert!(
        last_error().contains("not an open model handle"),
        "{}",
        last_error()
    );
    // A made-up handle is refused the same way.
    let forged = std::ptr::without_provenance::<pocketrec_model>(0xdead_beef);
    assert_eq!(
        // SAFETY: every pointer passed is valid for the call.
        unsafe { pocketrec_dim(forged, &mut dim) },
        POCKETREC_INVALID_ARGUMENT
    );
    // SAFETY: as above.
    assert_eq!(unsafe { pocketrec_dim(second, &mut dim) }, POCKETREC_OK);
    close(second);
}

#[test]
fn truncated_and_corrupt_models_are_errors_not_crashes() {
    let bytes = model_bytes();
    let mut handle = null_mut();
    for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let prefix = leak(bytes[..len].to_vec());
        // SAFETY: `prefix` lives forever.
        let status = unsafe { pocketrec_open_bytes(prefix.as_ptr(), prefix.len(), &mut handle) };
        assert_eq!(status, POCKETREC_FORMAT, "prefix of {len} bytes");
        assert!(handle.is_null());
        assert!(!last_error().is_empty());
    }
    // Flip bytes all over the file: every call answers or fails with a status, and the full
    // check finds every flip.
    let mut rejected_at_open = 0;
    for at in (0..bytes.len()).step_by(61) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x5A;
        let damaged = leak(damaged);
        // SAFETY: `damaged` lives forever.
        let status = unsafe { pocketrec_open_bytes(damaged.as_ptr(), damaged.len(), &mut handle) };
        if status != POCKETREC_OK {
            assert_eq!(status, POCKETREC_FORMAT);
            rejected_at_open += 1;
            continue;
        }
        let mut ids = [0u64; 5];
        let mut len = 0;
        for r in [0, USERS / 2, USERS - 1] {
            // SAFETY: arrays of the lengths passed.
            let status = unsafe {
                pocketrec_recommend(
                    handle,
                    user_id(r),
                    null(),
                    0,
                    5,
                    ids.as_mut_ptr(),
                    null_mut(),
                    &mut len,
                )
            };
            assert!(
                matches!(
                    status,
                    POCKETREC_OK | POCKETREC_FORMAT | POCKETREC_NOT_FOUND
                ),
                "{status:?}"
            );
        }
        assert_eq!(pocketrec_verify(handle), POCKETREC_FORMAT, "flip at {at}");
        close(handle);
    }
    assert!(rejected_at_open > 0);
    // A file on disk that is not a model.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.prec");
    std::fs::write(&path, b"this is not a model").unwrap();
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(
        // SAFETY: valid C string and out pointer.
        unsafe { pocketrec_open(c_path.as_ptr(), &mut handle) },
        POCKETREC_FORMAT
    );
    std::fs::write(&path, b"").unwrap();
    assert_eq!(
        // SAFETY: every pointer passed is valid for the call.
        unsafe { pocketrec_open(c_path.as_ptr(), &mut handle) },
        POCKETREC_FORMAT
    );
    // SAFETY: as above.
    let status = unsafe { pocketrec_open(c"/nonexistent/model.prec".as_ptr(), &mut handle) };
    assert_eq!(status, POCKETREC_IO);
    assert!(
        last_error().starts_with("/nonexistent/model.prec: "),
        "{}",
        last_error()
    );
}

#[test]
fn open_fd_checks_its_range_and_descriptor() {
    let bytes = model_bytes();
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&bytes).unwrap();
    let fd = file.as_raw_fd();
    let size = bytes.len() as u64;
    let mut handle = null_mut();
    // SAFETY: `fd` is open or negative; `handle` is writable.
    unsafe {
        assert_eq!(
            pocketrec_open_fd(fd, 1, size, &mut handle),
            POCKETREC_INVALID_ARGUMENT
        );
        assert!(
            last_error().contains("past the end of the file"),
            "{}",
            last_error()
        );
        assert_eq!(
            pocketrec_open_fd(fd, u64::MAX, 2, &mut handle),
            POCKETREC_INVALID_ARGUMENT
        );
        assert_eq!(
            pocketrec_open_fd(fd, 0, 0, &mut handle),
            POCKETREC_INVALID_ARGUMENT
        );
        assert_eq!(
            pocketrec_open_fd(-1, 0, size, &mut handle),
            POCKETREC_INVALID_ARGUMENT
        );
        // A model cut short by its (fd, offset, len) window.
        assert_eq!(
            pocketrec_open_fd(fd, 0, size - 8, &mut handle),
            POCKETREC_FORMAT
        );
        assert_eq!(pocketrec_open_fd(fd, 0, size, &mut handle), POCKETREC_OK);
    }
    close(handle);
    drop(file);
    // A descriptor number that is not open (the one just closed, while no other test thread
    // can take it: tempfile descriptors are opened later by others, so use a large number).
    // SAFETY: as above.
    let status = unsafe { pocketrec_open_fd(1 << 20, 0, size, &mut handle) };
    assert_eq!(status, POCKETREC_IO, "{}", last_error());
}

#[test]
fn files_appended_to_or_replaced_by_rename_keep_working() {
    let bytes = model_bytes();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.prec");
    std::fs::write(&path, &bytes).unwrap();
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let mut handle = null_mut();
    assert_eq!(
        // SAFETY: valid C string and out pointer.
        unsafe { pocketrec_open(c_path.as_ptr(), &mut handle) },
        POCKETREC_OK
    );
    let before = recommend(handle, user_id(3), &[], 8);
    // Grow the file: the map keeps the length it had at open.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0u8; 100_000])
        .unwrap();
    assert_eq!(recommend(handle, user_id(3), &[], 8), before);
    // Replace it atomically, as the exporter does: the open map still sees the old inode.
    let other = dir.path().join("model.prec.tmp");
    std::fs::write(&other, b"a different file").unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert_eq!(recommend(handle, user_id(3), &[], 8), before);
    assert_eq!(pocketrec_verify(handle), POCKETREC_OK);
    close(handle);
}

#[test]
fn a_handle_serves_many_threads_with_identical_answers() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let expected: Vec<Vec<(u64, f32)>> = (0..USERS)
        .map(|r| reference(bytes, user_id(r), &[item_id(r)], 10))
        .collect();
    let handle = model.addr();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let expected = &expected;
            scope.spawn(move || {
                let model = std::ptr::without_provenance::<pocketrec_model>(handle);
                for i in 0..200 {
                    let r = (i * 7 + t * 13) % USERS;
                    assert_eq!(recommend(model, user_id(r), &[item_id(r)], 10), expected[r]);
                    // Each thread sees only its own errors.
                    let mut dim = 0;
                    // SAFETY: a writable out pointer.
                    let status = unsafe { pocketrec_dim(model, &mut dim) };
                    assert_eq!(status, POCKETREC_OK);
                    if i % 50 == t {
                        // SAFETY: as above.
                        unsafe { pocketrec_user_embedding(model, 1, null_mut(), 0) };
                        assert_eq!(last_error(), "out is NULL");
                    }
                }
            });
        }
    });
    close(model);
}

#[test]
fn closing_while_other_threads_query_is_safe() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let handle = model.addr();
    let expected = reference(bytes, user_id(1), &[], 5);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let expected = &expected;
            scope.spawn(move || {
                let model = std::ptr::without_provenance::<pocketrec_model>(handle);
                let mut ids = [0u64; 5];
                let mut scores = [0f32; 5];
                let mut len = 0;
                loop {
                    // SAFETY: arrays of the lengths passed.
                    let status = unsafe {
                        pocketrec_recommend(
                            model,
                            user_id(1),
                            null(),
                            0,
                            5,
                            ids.as_mut_ptr(),
                            scores.as_mut_ptr(),
                            &mut len,
                        )
                    };
                    match status {
                        POCKETREC_OK => {
                            let got: Vec<_> = ids.iter().copied().zip(scores).take(len).collect();
                            assert_eq!(&got, expected);
                        }
                        POCKETREC_INVALID_ARGUMENT => break, // closed meanwhile
                        other => panic!("{other:?}"),
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        close(model);
    });
    assert!(handle::lookup(model).is_err());
}

#[test]
fn panics_become_a_status() {
    let status = status::guard(|| panic!("deliberate"));
    assert_eq!(status, POCKETREC_PANIC);
    assert_eq!(last_error(), "internal error (panic caught): deliberate");
    let value = status::guard_value(5u64, || panic!("{}", String::from("owned")));
    assert_eq!(value, 5);
    assert_eq!(last_error(), "internal error (panic caught): owned");
}

#[test]
fn string_ids_hash_like_the_exporter() {
    for s in ["", "alice", "item-42", "ünïcødé"] {
        // SAFETY: `s` has `s.len()` readable bytes.
        let id = unsafe { pocketrec_id_from_str(s.as_ptr().cast::<c_char>(), s.len()) };
        assert_eq!(id, pocketrec_runtime::string_id(s));
        assert_eq!(last_error(), "");
    }
    // SAFETY: NULL with len 0 reads nothing; NULL with len 3 is refused.
    unsafe {
        assert_eq!(
            pocketrec_id_from_str(null(), 0),
            pocketrec_runtime::string_id("")
        );
        assert_eq!(pocketrec_id_from_str(null(), 3), 0);
    }
    assert_eq!(last_error(), "s is NULL");
    let invalid = [0xffu8, 0xfe];
    assert_eq!(
        // SAFETY: two readable bytes.
        unsafe { pocketrec_id_from_str(invalid.as_ptr().cast(), 2) },
        0
    );
    assert!(last_error().starts_with("the id is not UTF-8"));
}

#[test]
fn large_dimensions_are_unsupported_by_id_but_work_by_vector() {
    let dim = 600;
    let data: Vec<f32> = (0..2 * dim).map(|i| ((i % 7) as f32) - 3.0).collect();
    let matrix = SparseMatrix::from_dense(2, dim, &data).unwrap();
    let bytes = leak(
        ModelBuilder::new()
            .table(TableSpec::new("u", Role::User, matrix.clone()))
            .table(TableSpec::new("i", Role::Item, matrix))
            .build()
            .unwrap(),
    );
    let model = open_bytes(bytes);
    let (mut ids, mut len) = ([0u64; 2], 0);
    let mut user = vec![0f32; dim];
    // SAFETY: arrays of the lengths passed.
    unsafe {
        let status = pocketrec_recommend(
            model,
            0,
            null(),
            0,
            2,
            ids.as_mut_ptr(),
            null_mut(),
            &mut len,
        );
        assert_eq!(status, POCKETREC_UNSUPPORTED);
        assert_eq!(
            pocketrec_user_embedding(model, 0, user.as_mut_ptr(), dim),
            POCKETREC_OK
        );
        let status = pocketrec_recommend_vector(
            model,
            user.as_ptr(),
            dim,
            null(),
            0,
            2,
            ids.as_mut_ptr(),
            null_mut(),
            &mut len,
        );
        assert_eq!(status, POCKETREC_OK);
    }
    assert_eq!(len, 2);
    close(model);
}

#[test]
fn a_columns_only_model_recommends_scores_and_decodes_items() {
    let rows_bytes = model_bytes();
    let bytes = leak(model_bytes_with(
        pocketrec_runtime::builder::Layout::Columns,
    ));
    let reference_model = Model::from_bytes(bytes).unwrap();
    assert!(!reference_model.items().unwrap().has_rows());
    let model = open_bytes(bytes);
    for u in [0, 5, 39] {
        let user = user_id(u);
        assert_eq!(
            recommend(model, user, &[item_id(1)], 6),
            reference(bytes, user, &[item_id(1)], 6)
        );
        let mut scores = [0f32; 2];
        let candidates = [item_id(3), item_id(200)];
        // SAFETY: two ids in, two floats out.
        let status =
            unsafe { pocketrec_score(model, user, candidates.as_ptr(), 2, scores.as_mut_ptr()) };
        assert_eq!(status, POCKETREC_OK, "{}", last_error());
        for (c, s) in candidates.iter().zip(scores) {
            assert_eq!(s, reference_model.score(user, *c).unwrap());
        }
    }
    // An item's embedding comes back from the posting lists as the row records give it.
    let rows_model = Model::from_bytes(&rows_bytes).unwrap();
    let mut item = [0f32; DIM];
    for r in [0, 9, 299] {
        // SAFETY: `item` holds DIM floats.
        let status = unsafe { pocketrec_item_embedding(model, item_id(r), item.as_mut_ptr(), DIM) };
        assert_eq!(status, POCKETREC_OK, "{}", last_error());
        assert_eq!(
            &item[..],
            &rows_model.items().unwrap().row(r).unwrap().to_dense()[..]
        );
    }
    close(model);
}

/// A fold-in query: items, optional weights, an optional prior with its precision.
type FoldInQuery<'a> = (&'a [u64], Option<&'a [f32]>, Option<(&'a [f32], f32)>);

/// The C API's fold-in: the vector and the (used, unknown) counts, or the failure's status
/// (`out` then checked unchanged).
fn fold_in(
    model: *const pocketrec_model,
    items: &[u64],
    weights: Option<&[f32]>,
    prior: Option<(&[f32], f32)>,
    dim: usize,
) -> Result<(Vec<f32>, usize, usize), pocketrec_status> {
    const UNTOUCHED: f32 = -1234.5;
    let mut out = vec![UNTOUCHED; dim];
    let (mut used, mut unknown) = (usize::MAX, usize::MAX);
    if let Some(weights) = weights {
        assert_eq!(weights.len(), items.len());
    }
    // SAFETY: `items` and `weights` hold `items.len()` entries, `prior` and `out` `dim` floats
    // (a prior of another length is only passed with a matching `dim` by the callers).
    let status = unsafe {
        pocketrec_fold_in(
            model,
            if items.is_empty() {
                null()
            } else {
                items.as_ptr()
            },
            weights.map_or(null(), |w| w.as_ptr()),
            items.len(),
            prior.map_or(null(), |p| p.0.as_ptr()),
            prior.map_or(0.0, |p| p.1),
            out.as_mut_ptr(),
            dim,
            &mut used,
            &mut unknown,
        )
    };
    if status == POCKETREC_OK {
        assert_eq!(last_error(), "");
        Ok((out, used, unknown))
    } else {
        assert!(!last_error().is_empty());
        assert!(
            out.iter().all(|&x| x == UNTOUCHED),
            "out is written only on success"
        );
        assert_eq!((used, unknown), (0, 0), "the counts are 0 after a failure");
        Err(status)
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|x| x.to_bits()).collect()
}

/// The C API's top-k for a vector.
fn recommend_vector(
    model: *const pocketrec_model,
    vector: &[f32],
    exclude: &[u64],
    k: usize,
) -> Vec<(u64, f32)> {
    let (mut items, mut scores, mut len) = (vec![0u64; k], vec![0f32; k], usize::MAX);
    // SAFETY: every array has the length passed with it.
    let status = unsafe {
        pocketrec_recommend_vector(
            model,
            vector.as_ptr(),
            vector.len(),
            exclude.as_ptr(),
            exclude.len(),
            k,
            items.as_mut_ptr(),
            scores.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(status, POCKETREC_OK, "{}", last_error());
    items.into_iter().zip(scores).take(len).collect()
}

#[test]
fn fold_in_equals_the_runtime_bit_for_bit_and_recommends_like_it() {
    let bytes = leak(fold_in_model_bytes());
    let reference_model = Model::from_bytes(bytes).unwrap();
    let model = open_bytes(bytes);
    let mut own = vec![0f32; DIM];
    // SAFETY: `own` holds DIM floats.
    let status = unsafe { pocketrec_user_embedding(model, user_id(4), own.as_mut_ptr(), DIM) };
    assert_eq!(status, POCKETREC_OK);

    let few = [item_id(1), item_id(2), item_id(50)];
    let with_unknown = [item_id(10), 7, item_id(11), 9_999_999, item_id(10)];
    let many: Vec<u64> = (0..ITEMS).step_by(9).map(item_id).collect();
    let many_weights: Vec<f32> = (0..many.len()).map(|i| (i % 4) as f32 * 0.75).collect();
    let cases: [FoldInQuery<'_>; 7] = [
        (&few, None, None),
        (&few, Some(&[1.0, 2.5, 0.0]), None),
        (&with_unknown, None, None),
        (&many, Some(&many_weights), None),
        (&few, None, Some((&own, 3.0))),
        (&few, None, Some((&own, 0.0))),
        (&[], None, Some((&own, 2.0))), // a prior alone
    ];
    for (n, (items, weights, prior)) in cases.into_iter().enumerate() {
        let (vector, used, unknown) =
            fold_in(model, items, weights, prior, DIM).unwrap_or_else(|status| {
                panic!("case {n}: {status:?}: {}", last_error());
            });
        let mut want = vec![0f32; DIM];
        let summary = reference_model
            .fold_in(
                items,
                weights.unwrap_or(&[]),
                prior.map(|(vector, precision)| Prior { vector, precision }),
                &mut want,
            )
            .unwrap();
        assert_eq!(bits(&vector), bits(&want), "case {n}");
        assert_eq!((used, unknown), (summary.used, summary.unknown), "case {n}");
        assert!(vector.iter().any(|&x| x != 0.0), "case {n}");

        // The folded vector's top-k through the C API equals the runtime's.
        let mut top = vec![Recommendation::default(); 12];
        let k = reference_model
            .recommend_vector(&want, 12, items, &mut top)
            .unwrap();
        let want_top: Vec<(u64, f32)> = top[..k].iter().map(|r| (r.id, r.score)).collect();
        assert_eq!(recommend_vector(model, &vector, items, 12), want_top);
        for (id, _) in &want_top {
            assert!(!items.contains(id), "the folded-from items are excluded");
        }
    }
    let (_, used, unknown) = fold_in(model, &with_unknown, None, None, DIM).unwrap();
    assert_eq!(
        (used, unknown),
        (3, 2),
        "repeats count, unknown ids are skipped"
    );

    // In place: `prior` and `out` may be the same array.
    let mut vector = own.clone();
    let (want, _, _) = fold_in(model, &few, None, Some((&own, 1.5)), DIM).unwrap();
    // SAFETY: `few` holds 3 ids; `vector` DIM floats, read as the prior and then written.
    let status = unsafe {
        pocketrec_fold_in(
            model,
            few.as_ptr(),
            null(),
            few.len(),
            vector.as_ptr(),
            1.5,
            vector.as_mut_ptr(),
            DIM,
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(status, POCKETREC_OK, "{}", last_error());
    assert_eq!(bits(&vector), bits(&want));

    // The stored settings.
    let (mut unobserved, mut regularization) = (0f32, 0f32);
    // SAFETY: writable out pointers, or NULL.
    unsafe {
        assert_eq!(
            pocketrec_fold_in_params(model, &mut unobserved, &mut regularization),
            POCKETREC_OK
        );
        assert_eq!(
            pocketrec_fold_in_params(model, null_mut(), null_mut()),
            POCKETREC_OK
        );
    }
    assert_eq!((unobserved, regularization), (0.25, 0.5));
    assert_eq!(reference_model.fold_in_params().unwrap(), FOLD_IN);
    close(model);
}

#[test]
fn a_softmax_fold_in_equals_the_runtimes_and_reports_its_settings() {
    let settings = pocketrec_runtime::SoftmaxFoldIn::for_loss(0.1, 1.2, 0);
    for layout in [
        pocketrec_runtime::builder::Layout::Rows,
        pocketrec_runtime::builder::Layout::Columns,
    ] {
        let bytes = leak(builder(layout).fold_in_softmax(settings).build().unwrap());
        let reference_model = Model::from_bytes(bytes).unwrap();
        let model = open_bytes(bytes);
        let items = [item_id(1), item_id(4), item_id(9)];
        let prior = [0.25f32; DIM];
        for prior in [None, Some((&prior[..], 0.5f32))] {
            let (vector, used, unknown) = fold_in(model, &items, None, prior, DIM).unwrap();
            let mut want = vec![0f32; DIM];
            let summary = reference_model
                .fold_in(
                    &items,
                    &[],
                    prior.map(|(vector, precision)| Prior { vector, precision }),
                    &mut want,
                )
                .unwrap();
            assert_eq!(summary.solver, pocketrec_runtime::Solver::Softmax);
            assert_eq!(bits(&vector), bits(&want), "{layout:?}");
            assert_eq!((used, unknown), (3, 0));
        }
        let (mut t, mut p, mut s, mut i, mut c) = (0f32, 0f32, 0f32, 0u32, 7u32);
        // SAFETY: writable out pointers, or NULL.
        unsafe {
            assert_eq!(
                pocketrec_fold_in_softmax_params(model, &mut t, &mut p, &mut s, &mut i, &mut c),
                POCKETREC_OK
            );
            assert_eq!(
                pocketrec_fold_in_softmax_params(
                    model,
                    null_mut(),
                    null_mut(),
                    null_mut(),
                    null_mut(),
                    null_mut()
                ),
                POCKETREC_OK
            );
            assert_eq!(
                pocketrec_fold_in_params(model, null_mut(), null_mut()),
                POCKETREC_UNSUPPORTED
            );
        }
        assert_eq!(
            (t, p, s, i, c),
            (
                settings.temperature,
                settings.power,
                settings.step,
                settings.iterations,
                settings.clusters
            )
        );
        close(model);
    }
    // A model with the squared-error section has no softmax settings.
    let model = open_bytes(leak(fold_in_model_bytes()));
    // SAFETY: all NULL.
    let status = unsafe {
        pocketrec_fold_in_softmax_params(
            model,
            null_mut(),
            null_mut(),
            null_mut(),
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(status, POCKETREC_UNSUPPORTED);
    close(model);
}

#[test]
fn fold_in_errors_are_statuses() {
    let bytes = leak(fold_in_model_bytes());
    let model = open_bytes(bytes);
    let few = [item_id(1), item_id(2)];
    let prior = [0.5f32; DIM];
    let invalid = Err(POCKETREC_INVALID_ARGUMENT);
    // Bad queries.
    assert_eq!(
        fold_in(model, &few, Some(&[1.0, f32::NAN]), None, DIM),
        invalid
    );
    assert_eq!(
        last_error(),
        "invalid query at element 1: a weight is negative or not finite"
    );
    assert_eq!(fold_in(model, &few, Some(&[-1.0, 1.0]), None, DIM), invalid);
    assert_eq!(
        fold_in(model, &few, Some(&[1.0, f32::INFINITY]), None, DIM),
        invalid
    );
    assert_eq!(fold_in(model, &[7, 8], None, None, DIM), invalid);
    assert!(
        last_error().contains("nothing to solve from"),
        "{}",
        last_error()
    );
    assert_eq!(fold_in(model, &[], None, None, DIM), invalid);
    assert_eq!(
        fold_in(model, &[7], None, Some((&prior, 0.0)), DIM),
        invalid
    );
    assert_eq!(
        fold_in(model, &few, None, Some((&prior, -1.0)), DIM),
        invalid
    );
    assert_eq!(
        fold_in(model, &few, None, Some((&prior, f32::NAN)), DIM),
        invalid
    );
    let mut nan_prior = prior;
    nan_prior[3] = f32::NAN;
    assert_eq!(
        fold_in(model, &few, None, Some((&nan_prior, 1.0)), DIM),
        invalid
    );
    // `out_len` (and the prior's length) must be the dimension.
    let long_prior = [0.5f32; DIM + 1];
    assert_eq!(fold_in(model, &few, None, None, DIM - 1), invalid);
    assert!(last_error().contains("dimension"), "{}", last_error());
    assert_eq!(fold_in(model, &few, None, None, DIM + 1), invalid);
    assert_eq!(
        fold_in(model, &few, None, Some((&long_prior, 1.0)), DIM + 1),
        invalid
    );
    assert_eq!(fold_in(model, &few, None, None, 0), invalid);

    // NULL and misaligned pointers.
    let mut out = [0f32; DIM + 1];
    let (mut used, mut unknown) = (9usize, 9usize);
    let misaligned = out.as_mut_ptr().cast::<u8>().wrapping_add(1).cast::<f32>();
    let mut spare = [0usize; 2];
    let misaligned_count = spare
        .as_mut_ptr()
        .cast::<u8>()
        .wrapping_add(1)
        .cast::<usize>();
    let weights = [1.0f32; 3];
    let misaligned_weights = weights.as_ptr().cast::<u8>().wrapping_add(1).cast::<f32>();
    // SAFETY: every non-NULL pointer is valid for the lengths passed; the NULL and misaligned
    // ones are refused before any access, which is what is tested.
    let statuses = unsafe {
        [
            pocketrec_fold_in(
                null(),
                few.as_ptr(),
                null(),
                2,
                null(),
                0.0,
                out.as_mut_ptr(),
                DIM,
                &mut used,
                &mut unknown,
            ),
            pocketrec_fold_in(
                model,
                null(),
                null(),
                2,
                null(),
                0.0,
                out.as_mut_ptr(),
                DIM,
                &mut used,
                &mut unknown,
            ),
            pocketrec_fold_in(
                model,
                few.as_ptr(),
                null(),
                2,
                null(),
                0.0,
                null_mut(),
                DIM,
                &mut used,
                &mut unknown,
            ),
            pocketrec_fold_in(
                model,
                few.as_ptr(),
                null(),
                2,
                null(),
                1.0, // a precision without a prior
                out.as_mut_ptr(),
                DIM,
                &mut used,
                &mut unknown,
            ),
            pocketrec_fold_in(
                model,
                few.as_ptr(),
                null(),
                2,
                null(),
                0.0,
                misaligned,
                DIM,
                &mut used,
                &mut unknown,
            ),
            pocketrec_fold_in(
                model,
                few.as_ptr(),
                misaligned_weights,
                2,
                null(),
                0.0,
                out.as_mut_ptr(),
                DIM,
                &mut used,
                &mut unknown,
            ),
            pocketrec_fold_in(
                model,
                few.as_ptr(),
                null(),
                2,
                null(),
                0.0,
                out.as_mut_ptr(),
                DIM,
                misaligned_count,
                null_mut(),
            ),
            pocketrec_fold_in_params(null(), null_mut(), null_mut()),
            pocketrec_fold_in_params(model, misaligned, null_mut()),
        ]
    };
    for (i, status) in statuses.iter().enumerate() {
        assert_eq!(*status, POCKETREC_INVALID_ARGUMENT, "call #{i}");
    }
    assert_eq!(spare, [0, 0], "a misaligned count is not written");
    // SAFETY: NULL `out` with DIM: refused.
    let status = unsafe {
        pocketrec_fold_in(
            model,
            few.as_ptr(),
            null(),
            2,
            null(),
            0.0,
            null_mut(),
            DIM,
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
    assert_eq!(last_error(), "out is NULL");
    close(model);
    // A closed handle.
    assert_eq!(fold_in(model, &few, None, None, DIM), invalid);
    assert!(last_error().contains("not an open model handle"));

    // A model written without a fold-in section cannot fold in: POCKETREC_UNSUPPORTED.
    let plain = open_bytes(leak(model_bytes()));
    assert_eq!(
        fold_in(plain, &few, None, None, DIM),
        Err(POCKETREC_UNSUPPORTED)
    );
    assert!(
        last_error().contains("no fold-in section"),
        "{}",
        last_error()
    );
    let mut unobserved = 7f32;
    // SAFETY: a writable out pointer.
    let status = unsafe { pocketrec_fold_in_params(plain, &mut unobserved, null_mut()) };
    assert_eq!(status, POCKETREC_UNSUPPORTED);
    assert_eq!(unobserved, 7.0);
    close(plain);
}

#[test]
fn fold_in_serves_many_threads() {
    let bytes = leak(fold_in_model_bytes());
    let model = open_bytes(bytes);
    let queries: Vec<Vec<u64>> = (0..16)
        .map(|q| (0..1 + q % 5).map(|i| item_id(q * 17 + i * 31)).collect())
        .collect();
    let expected: Vec<Vec<f32>> = queries
        .iter()
        .map(|items| fold_in(model, items, None, None, DIM).unwrap().0)
        .collect();
    let handle = model.addr();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (queries, expected) = (&queries, &expected);
            scope.spawn(move || {
                let model = std::ptr::without_provenance::<pocketrec_model>(handle);
                for i in 0..100 {
                    let q = (i * 5 + t * 3) % queries.len();
                    let (vector, _, _) = fold_in(model, &queries[q], None, None, DIM).unwrap();
                    assert_eq!(bits(&vector), bits(&expected[q]));
                }
            });
        }
    });
    close(model);
}

#[test]
fn item_id_strings_are_given_back_into_caller_buffers() {
    let names: Vec<String> = (0..30).map(|i| format!("sku-{i:05}-é")).collect();
    let ids: Vec<u64> = names
        .iter()
        .map(|n| pocketrec_runtime::string_id(n))
        .collect();
    let mut rng = Lcg(7);
    let bytes = ModelBuilder::new()
        .table(TableSpec::new("users", Role::User, table(&mut rng, 5)))
        .table(
            TableSpec::new("items", Role::Item, table(&mut rng, 30))
                .ids(ids.clone(), IdKind::StringHash)
                .id_strings(names.clone()),
        )
        .build()
        .unwrap();
    let model = open_bytes(leak(bytes));
    for (name, &id) in names.iter().zip(&ids) {
        // Size query first, then the string.
        let mut len = 0usize;
        // SAFETY: NULL buffer with length 0, a valid out pointer.
        let status = unsafe { pocketrec_item_id_str(model, id, null_mut(), 0, &mut len) };
        assert_eq!(status, POCKETREC_BUFFER_TOO_SMALL);
        assert_eq!(len, name.len());
        let mut buf = vec![0 as c_char; len + 1];
        // SAFETY: a buffer of len + 1 bytes.
        let status =
            unsafe { pocketrec_item_id_str(model, id, buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(status, POCKETREC_OK, "{}", last_error());
        // SAFETY: the call wrote a NUL-terminated string into buf.
        let got = unsafe { CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(got.to_str().unwrap(), name);
        // One byte short: refused, buffer untouched.
        let mut short = vec![7 as c_char; len];
        // SAFETY: a buffer of len bytes.
        let status = unsafe {
            pocketrec_item_id_str(model, id, short.as_mut_ptr(), short.len(), null_mut())
        };
        assert_eq!(status, POCKETREC_BUFFER_TOO_SMALL);
        assert!(short.iter().all(|&c| c == 7));
    }
    let mut buf = [0 as c_char; 64];
    let mut len = 99usize;
    // SAFETY: a 64-byte buffer.
    let status = unsafe { pocketrec_item_id_str(model, 12345, buf.as_mut_ptr(), 64, &mut len) };
    assert_eq!(status, POCKETREC_NOT_FOUND);
    assert_eq!(len, 0, "out_len is 0 after a failure");
    assert_eq!(last_error(), "no item with id 12345");
    // SAFETY: NULL buffer with a non-zero length is refused, not dereferenced.
    let status = unsafe { pocketrec_item_id_str(model, ids[0], null_mut(), 8, null_mut()) };
    assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
    // SAFETY: a misaligned out_len is refused before any access.
    let status = unsafe {
        let mut lens = [0usize; 2];
        let misaligned = lens
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<usize>();
        pocketrec_item_id_str(model, ids[0], buf.as_mut_ptr(), 64, misaligned)
    };
    assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
    close(model);
    // SAFETY: a closed handle is refused.
    let status = unsafe { pocketrec_item_id_str(model, ids[0], buf.as_mut_ptr(), 64, &mut len) };
    assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
    // A model of integer ids has no strings: UNSUPPORTED, for a known id as for an unknown one.
    let model = open_bytes(leak(model_bytes()));
    for id in [item_id(0), 12345] {
        len = 99;
        // SAFETY: a 64-byte buffer.
        let status = unsafe { pocketrec_item_id_str(model, id, buf.as_mut_ptr(), 64, &mut len) };
        assert_eq!(status, POCKETREC_UNSUPPORTED);
        assert_eq!(len, 0);
        assert!(last_error().contains("no strings"), "{}", last_error());
    }
    close(model);
    // String ids written without their strings (`export --no-id-strings`): UNSUPPORTED too.
    let (bytes, _, ids) = string_id_model(false);
    let model = open_bytes(bytes);
    // SAFETY: a 64-byte buffer.
    let status = unsafe { pocketrec_item_id_str(model, ids[0], buf.as_mut_ptr(), 64, &mut len) };
    assert_eq!(status, POCKETREC_UNSUPPORTED);
    close(model);
}

/// A model of 5 users and 30 items whose item ids are the strings `sku-NNNNN-é`, with or
/// without the strings stored; with the strings and the ids.
fn string_id_model(with_strings: bool) -> (&'static [u8], Vec<String>, Vec<u64>) {
    let names: Vec<String> = (0..30).map(|i| format!("sku-{i:05}-é")).collect();
    let ids: Vec<u64> = names
        .iter()
        .map(|n| pocketrec_runtime::string_id(n))
        .collect();
    let mut rng = Lcg(7);
    let mut items = TableSpec::new("items", Role::Item, table(&mut rng, 30))
        .ids(ids.clone(), IdKind::StringHash);
    if with_strings {
        items = items.id_strings(names.clone());
    }
    let bytes = ModelBuilder::new()
        .table(TableSpec::new("users", Role::User, table(&mut rng, 5)))
        .table(items)
        .build()
        .unwrap();
    (leak(bytes), names, ids)
}

/// The C API's exact lookup of an item by its string id.
fn find_item(model: *const pocketrec_model, s: &str) -> Result<u64, pocketrec_status> {
    let mut id = 77u64;
    // SAFETY: `s` has `s.len()` readable bytes; `id` is writable.
    let status = unsafe { pocketrec_find_item_str(model, s.as_ptr().cast(), s.len(), &mut id) };
    if status == POCKETREC_OK {
        assert_eq!(last_error(), "");
        Ok(id)
    } else {
        assert_eq!(id, 0, "out_id is 0 after a failure");
        Err(status)
    }
}

#[test]
fn items_are_found_by_their_string_ids() {
    for with_strings in [true, false] {
        let (bytes, names, ids) = string_id_model(with_strings);
        let reference = Model::from_bytes(bytes).unwrap();
        let model = open_bytes(bytes);
        for (name, &id) in names.iter().zip(&ids) {
            assert_eq!(find_item(model, name), Ok(id), "{name}");
            assert_eq!(Ok(id), reference.find_str(Role::Item, name).map_err(|_| ()));
        }
        // Not a stored string: NOT_FOUND, the message names the string.
        assert_eq!(find_item(model, "sku-99999-é"), Err(POCKETREC_NOT_FOUND));
        assert_eq!(last_error(), "no item with string id \"sku-99999-é\"");
        // Whitespace is part of the string (the exporter trims id lines; the caller must too).
        assert_eq!(find_item(model, " sku-00001-é"), Err(POCKETREC_NOT_FOUND));
        assert_eq!(find_item(model, ""), Err(POCKETREC_NOT_FOUND));
        let mut id = 5u64;
        // SAFETY: every non-NULL pointer is valid for the length passed; the rest is refused.
        unsafe {
            let invalid = [0xffu8, 0xfe];
            let status = pocketrec_find_item_str(model, invalid.as_ptr().cast(), 2, &mut id);
            assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
            assert!(
                last_error().starts_with("the id is not UTF-8"),
                "{}",
                last_error()
            );
            assert_eq!(id, 0);
            let status = pocketrec_find_item_str(model, null(), 3, &mut id);
            assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
            assert_eq!(last_error(), "s is NULL");
            let name = &names[0];
            let status =
                pocketrec_find_item_str(model, name.as_ptr().cast(), name.len(), null_mut());
            assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
            assert_eq!(last_error(), "out_id is NULL");
            let status = pocketrec_find_item_str(null(), name.as_ptr().cast(), name.len(), &mut id);
            assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
            // NULL with length 0 is the empty string.
            let status = pocketrec_find_item_str(model, null(), 0, &mut id);
            assert_eq!(status, POCKETREC_NOT_FOUND);
        }
        close(model);
        assert_eq!(find_item(model, &names[0]), Err(POCKETREC_INVALID_ARGUMENT));
    }
    // Integer ids cannot be named by strings, not even the decimal string of an id.
    let model = open_bytes(leak(model_bytes()));
    assert_eq!(
        find_item(model, &item_id(0).to_string()),
        Err(POCKETREC_UNSUPPORTED)
    );
    assert!(last_error().contains("integers"), "{}", last_error());
    close(model);
}

/// Per-user exclusions in CSR form.
type Csr<'a> = (&'a [usize], &'a [u64]);

/// One user's answer of a batch, or of `pocketrec_recommend` (`None`: an unknown user).
type Answer = Option<Vec<(u64, f32)>>;

/// What a batch leaves in the slots it does not fill.
const UNWRITTEN: u64 = 0xDEAD_BEEF_0BAD_F00D;

/// The C API's batch: each user's answer (`None` for an unknown user, whose count is 0) and
/// the number of unknown users, or the failure's status (the counts then checked reset).
/// Also checks that the slots past each user's count are not written, and that the ids do
/// not depend on whether scores are wanted.
fn batch(
    model: *const pocketrec_model,
    users: &[u64],
    exclude: Option<Csr<'_>>,
    k: usize,
    threads: usize,
) -> Result<(Vec<Answer>, usize), pocketrec_status> {
    let n = users.len();
    let mut items = vec![UNWRITTEN; n * k];
    let mut scores = vec![f32::NAN; n * k];
    let mut counts = vec![usize::MAX; n];
    let mut unknown = usize::MAX;
    let (offsets, ids) = exclude.map_or((null(), null()), |(o, i)| (o.as_ptr(), i.as_ptr()));
    // SAFETY: every array has the length the call reads or writes.
    let status = unsafe {
        pocketrec_recommend_batch(
            model,
            users.as_ptr(),
            n,
            offsets,
            ids,
            k,
            threads,
            items.as_mut_ptr(),
            scores.as_mut_ptr(),
            counts.as_mut_ptr(),
            &mut unknown,
        )
    };
    if status != POCKETREC_OK {
        assert!(counts.iter().all(|&c| c == 0), "counts reset on failure");
        assert_eq!(unknown, 0, "unknown reset on failure");
        return Err(status);
    }
    assert_eq!(last_error(), "");
    // The same batch without scores gives the same ids.
    let mut ids_only = vec![UNWRITTEN; n * k];
    let mut counts_only = vec![usize::MAX; n];
    // SAFETY: as above, with no scores and no unknown count.
    let status = unsafe {
        pocketrec_recommend_batch(
            model,
            users.as_ptr(),
            n,
            offsets,
            ids,
            k,
            threads,
            ids_only.as_mut_ptr(),
            null_mut(),
            counts_only.as_mut_ptr(),
            null_mut(),
        )
    };
    assert_eq!(status, POCKETREC_OK, "{}", last_error());
    assert_eq!((&ids_only, &counts_only), (&items, &counts));
    let mut answers = Vec::with_capacity(n);
    let mut zero = 0;
    for (i, &count) in counts.iter().enumerate() {
        assert!(count <= k);
        let slots = i * k..(i + 1) * k;
        assert!(
            items[slots.clone()][count..]
                .iter()
                .all(|&id| id == UNWRITTEN),
            "user {i}: slots past the count are not written"
        );
        zero += usize::from(count == 0);
        answers.push(Some(
            items[slots.clone()]
                .iter()
                .copied()
                .zip(scores[slots].iter().copied())
                .take(count)
                .collect(),
        ));
    }
    assert!(unknown <= zero);
    Ok((answers, unknown))
}

/// `pocketrec_recommend` for each user, as a batch answers them: `None` for a user it
/// refuses with `POCKETREC_NOT_FOUND`; and the number of those.
fn one_by_one(
    model: *const pocketrec_model,
    users: &[u64],
    exclude: Option<Csr<'_>>,
    k: usize,
) -> (Vec<Answer>, usize) {
    let mut unknown = 0;
    let answers = users
        .iter()
        .enumerate()
        .map(|(i, &user)| {
            let excluded = exclude.map_or(&[][..], |(o, ids)| &ids[o[i]..o[i + 1]]);
            let mut items = vec![0u64; k];
            let mut scores = vec![0f32; k];
            let mut len = 0;
            // SAFETY: every array has the length passed with it.
            let status = unsafe {
                pocketrec_recommend(
                    model,
                    user,
                    excluded.as_ptr(),
                    excluded.len(),
                    k,
                    items.as_mut_ptr(),
                    scores.as_mut_ptr(),
                    &mut len,
                )
            };
            match status {
                POCKETREC_OK => Some(items.into_iter().zip(scores).take(len).collect()),
                POCKETREC_NOT_FOUND => {
                    unknown += 1;
                    None
                }
                other => panic!("user {user}: {other:?} {}", last_error()),
            }
        })
        .collect();
    (answers, unknown)
}

/// Compares a batch with `pocketrec_recommend` user by user (an unknown user: count 0).
fn assert_batch_equals_one_by_one(
    model: *const pocketrec_model,
    users: &[u64],
    exclude: Option<Csr<'_>>,
    k: usize,
    threads: usize,
) {
    let (got, unknown) = batch(model, users, exclude, k, threads).unwrap();
    let (want, want_unknown) = one_by_one(model, users, exclude, k);
    assert_eq!(unknown, want_unknown, "k {k}, threads {threads}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let w = w.clone().unwrap_or_default();
        assert_eq!(
            g.as_ref(),
            Some(&w),
            "user #{i} ({}), k {k}, threads {threads}",
            users[i]
        );
    }
}

/// The users of the batch tests: every user of [`model_bytes`], unknown ones (3, 4, the
/// largest id) and repeats, out of order.
fn batch_users() -> Vec<u64> {
    let mut users: Vec<u64> = (0..USERS).rev().map(user_id).collect();
    users.splice(7..7, [3, user_id(5), u64::MAX, user_id(0), 4]);
    users
}

#[test]
fn a_batch_answers_each_user_as_recommend_does() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let users = batch_users();
    for threads in [1, 2, 4, 0] {
        for k in [1, 10, ITEMS, ITEMS + 50] {
            assert_batch_equals_one_by_one(model, &users, None, k, threads);
        }
        // k = 0: nothing to write; unknown users are still counted.
        assert_batch_equals_one_by_one(model, &users, None, 0, threads);
    }
    // Against the runtime itself, as the other tests compare pocketrec_recommend.
    let (got, unknown) = batch(model, &users, None, 10, 2).unwrap();
    assert_eq!(unknown, 3);
    for (answer, &user) in got.iter().zip(&users) {
        let want = if [3, 4, u64::MAX].contains(&user) {
            Vec::new()
        } else {
            reference(bytes, user, &[], 10)
        };
        assert_eq!(answer.as_ref(), Some(&want));
    }
    // Per-user exclusions (CSR): known and unknown item ids, users with none.
    let mut offsets = vec![0usize];
    let mut excluded = Vec::new();
    for i in 0..users.len() {
        if i % 3 != 2 {
            excluded.extend([item_id(i % ITEMS), item_id((i * 7 + 1) % ITEMS), 12_345]);
        }
        if i % 5 == 0 {
            // The user's own top items: the answer must change.
            excluded.extend(
                reference(bytes, user_id(i % USERS), &[], 3)
                    .iter()
                    .map(|r| r.0),
            );
        }
        offsets.push(excluded.len());
    }
    for threads in [1, 2, 4] {
        for k in [10, ITEMS] {
            assert_batch_equals_one_by_one(model, &users, Some((&offsets, &excluded)), k, threads);
        }
    }
    // No users at all, every pointer NULL.
    let mut unknown = 9;
    // SAFETY: nothing is read or written through the NULL pointers.
    let status = unsafe {
        pocketrec_recommend_batch(
            model,
            null(),
            0,
            null(),
            null(),
            10,
            2,
            null_mut(),
            null_mut(),
            null_mut(),
            &mut unknown,
        )
    };
    assert_eq!(status, POCKETREC_OK, "{}", last_error());
    assert_eq!(unknown, 0);
    close(model);
}

#[test]
fn a_long_batch_is_answered_in_chunks_with_the_same_answers() {
    // k = 300 items: 218 users per chunk on one thread, so 1,000 users take several chunks
    // (and 64 per thread on more threads).
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let users: Vec<u64> = (0..1000)
        .map(|i| {
            if i % 97 == 13 {
                3
            } else {
                user_id(i * 11 % USERS)
            }
        })
        .collect();
    let offsets: Vec<usize> = (0..=users.len()).map(|i| i.div_ceil(2)).collect();
    let excluded: Vec<u64> = (0..users.len().div_ceil(2))
        .map(|i| item_id(i % ITEMS))
        .collect();
    let one: Vec<(Vec<Answer>, usize)> = [None, Some((&offsets[..], &excluded[..]))]
        .into_iter()
        .map(|exclude| one_by_one(model, &users, exclude, ITEMS))
        .collect();
    for threads in [1, 2, 4] {
        for (e, exclude) in [None, Some((&offsets[..], &excluded[..]))]
            .into_iter()
            .enumerate()
        {
            let (got, unknown) = batch(model, &users, exclude, ITEMS, threads).unwrap();
            let (want, want_unknown) = &one[e];
            assert_eq!(unknown, *want_unknown);
            assert_eq!(unknown, users.iter().filter(|&&u| u == 3).count());
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g.clone().unwrap(), w.clone().unwrap_or_default());
            }
        }
    }
    close(model);
}

#[test]
fn batches_run_on_many_threads_at_once() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let users = batch_users();
    let (want, _) = batch(model, &users, None, 7, 1).unwrap();
    let handle = model.addr();
    std::thread::scope(|scope| {
        for t in 0..3 {
            let (users, want) = (&users, &want);
            scope.spawn(move || {
                let model = std::ptr::without_provenance::<pocketrec_model>(handle);
                for _ in 0..10 {
                    assert_eq!(&batch(model, users, None, 7, 1 + t).unwrap().0, want);
                }
            });
        }
    });
    close(model);
}

#[test]
fn batch_errors_are_statuses() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let users = [user_id(0), user_id(1), 3];
    let k = 4;
    let (mut items, mut scores) = ([0u64; 12], [0f32; 13]);
    let (mut counts, mut unknown) = ([9usize; 3], 9usize);
    // Runs the batch on `users` with these exclusions and pointers; checks the counts reset.
    let mut call = |model: *const pocketrec_model,
                    users: *const u64,
                    offsets: *const usize,
                    exclude: *const u64,
                    k: usize,
                    items: *mut u64,
                    scores: *mut f32,
                    counts_ptr: Option<*mut usize>| {
        counts = [9; 3];
        unknown = 9;
        // SAFETY: every non-NULL pointer has room for what the call may touch (3 users, k
        // <= 4, offsets of 4 entries, at most 12 items and 13 floats); the rest is refused.
        let status = unsafe {
            pocketrec_recommend_batch(
                model,
                users,
                3,
                offsets,
                exclude,
                k,
                2,
                items,
                scores,
                counts_ptr.unwrap_or(counts.as_mut_ptr()),
                &mut unknown,
            )
        };
        if status != POCKETREC_OK && counts_ptr.is_none() {
            assert_eq!(counts, [0; 3], "counts reset");
            assert_eq!(unknown, 0, "unknown reset");
        }
        (status, last_error())
    };
    let (u, it, sc) = (users.as_ptr(), items.as_mut_ptr(), scores.as_mut_ptr());
    assert_eq!(
        call(model, u, null(), null(), k, it, sc, None).0,
        POCKETREC_OK
    );
    // NULL and misaligned arrays.
    let misaligned = sc.cast::<u8>().wrapping_add(1).cast::<f32>();
    for ((status, message), expected) in [
        call(null(), u, null(), null(), k, it, sc, None),
        call(model, null(), null(), null(), k, it, sc, None),
        call(model, u, null(), null(), k, null_mut(), sc, None),
        call(model, u, null(), null(), k, it, misaligned, None),
        call(model, u, null(), null(), k, it, sc, Some(null_mut())),
        call(model, u, null(), null(), usize::MAX, it, sc, None),
        call(model, u, null(), [5u64].as_ptr(), k, it, sc, None),
        call(
            model,
            u,
            [1usize, 1, 2, 3].as_ptr(),
            [5u64; 3].as_ptr(),
            k,
            it,
            sc,
            None,
        ),
        call(
            model,
            u,
            [0usize, 2, 1, 3].as_ptr(),
            [5u64; 3].as_ptr(),
            k,
            it,
            sc,
            None,
        ),
        call(
            model,
            u,
            [0usize, 1, 2, 3].as_ptr(),
            null(),
            k,
            it,
            sc,
            None,
        ),
    ]
    .into_iter()
    .zip([
        "the model handle is NULL",
        "users is NULL",
        "out_items is NULL",
        "out_scores (",
        "out_counts is NULL",
        "n_users 3 times k",
        "exclude is given without exclude_offsets",
        "exclude_offsets[0] is 1, not 0",
        "exclude_offsets decrease at user 1: 2 then 1",
        "exclude is NULL",
    ]) {
        assert_eq!(status, POCKETREC_INVALID_ARGUMENT, "{expected}");
        assert!(message.contains(expected), "{message} lacks {expected}");
    }
    // With offsets that are all 0, exclude may be NULL.
    let zeros = [0usize; 4];
    assert_eq!(
        call(model, u, zeros.as_ptr(), null(), k, it, sc, None).0,
        POCKETREC_OK
    );
    // k = 0 needs no output arrays but the counts.
    assert_eq!(
        call(model, u, null(), null(), 0, null_mut(), null_mut(), None).0,
        POCKETREC_OK
    );
    close(model);
    let (status, message) = call(model, u, null(), null(), k, it, sc, None);
    assert_eq!(status, POCKETREC_INVALID_ARGUMENT);
    assert!(message.contains("not an open model handle"), "{message}");
    // Above 512 dimensions the batch, like recommend, is unsupported.
    let dim = 600;
    let data: Vec<f32> = (0..2 * dim).map(|i| ((i % 5) as f32) - 2.0).collect();
    let matrix = SparseMatrix::from_dense(2, dim, &data).unwrap();
    let large = open_bytes(leak(
        ModelBuilder::new()
            .table(TableSpec::new("u", Role::User, matrix.clone()))
            .table(TableSpec::new("i", Role::Item, matrix))
            .build()
            .unwrap(),
    ));
    assert_eq!(
        batch(large, &[0, 1], None, 2, 1),
        Err(POCKETREC_UNSUPPORTED)
    );
    close(large);
}

/// The C API's vector batch: each vector's answer, or the failure's status (the counts then
/// checked reset). Also checks that the slots past each count are not written, and that the
/// ids do not depend on whether scores are wanted.
fn vector_batch(
    model: *const pocketrec_model,
    vectors: &[f32],
    dim: usize,
    exclude: Option<Csr<'_>>,
    k: usize,
    threads: usize,
) -> Result<Vec<Vec<(u64, f32)>>, pocketrec_status> {
    let n = vectors.len() / dim;
    let (offsets, ids) = exclude.map_or((null(), null()), |(o, i)| (o.as_ptr(), i.as_ptr()));
    let run = |items: &mut [u64], scores: Option<&mut [f32]>, counts: &mut [usize]| {
        // SAFETY: every array has the length the call reads or writes.
        unsafe {
            pocketrec_recommend_vector_batch(
                model,
                vectors.as_ptr(),
                n,
                dim,
                offsets,
                ids,
                k,
                threads,
                items.as_mut_ptr(),
                scores.map_or(null_mut(), <[f32]>::as_mut_ptr),
                counts.as_mut_ptr(),
            )
        }
    };
    let mut items = vec![UNWRITTEN; n * k];
    let mut scores = vec![f32::NAN; n * k];
    let mut counts = vec![usize::MAX; n];
    let status = run(&mut items, Some(&mut scores), &mut counts);
    if status != POCKETREC_OK {
        assert!(counts.iter().all(|&c| c == 0), "counts reset on failure");
        return Err(status);
    }
    assert_eq!(last_error(), "");
    let mut ids_only = vec![UNWRITTEN; n * k];
    let mut counts_only = vec![usize::MAX; n];
    assert_eq!(run(&mut ids_only, None, &mut counts_only), POCKETREC_OK);
    assert_eq!((&ids_only, &counts_only), (&items, &counts));
    Ok((0..n)
        .map(|i| {
            let slots = i * k..(i + 1) * k;
            assert!(
                items[slots.clone()][counts[i]..]
                    .iter()
                    .all(|&id| id == UNWRITTEN)
            );
            items[slots.clone()]
                .iter()
                .copied()
                .zip(scores[slots].iter().copied())
                .take(counts[i])
                .collect()
        })
        .collect())
}

/// Deterministic user vectors of `model_bytes`' dimension: dense, sparse, negative, one all
/// zero.
fn batch_vectors(n: usize) -> Vec<f32> {
    (0..n * DIM)
        .map(|j| {
            let (user, d) = (j / DIM, j % DIM);
            match user % 4 {
                0 => 0.0,
                1 if d % 5 != 0 => 0.0,
                _ => ((j * 37 % 101) as f32 - 50.0) / 25.0,
            }
        })
        .collect()
}

#[test]
fn a_vector_batch_answers_each_vector_as_recommend_vector_does() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    // 700 users at k = ITEMS: 218 a chunk on one thread, so several chunks.
    let vectors = batch_vectors(700);
    let users = vectors.len() / DIM;
    let offsets: Vec<usize> = (0..=users).map(|i| i.div_ceil(3)).collect();
    let excluded: Vec<u64> = (0..users.div_ceil(3))
        .map(|i| {
            if i % 4 == 0 {
                12_345
            } else {
                item_id(i * 7 % ITEMS)
            }
        })
        .collect();
    for exclude in [None, Some((&offsets[..], &excluded[..]))] {
        let want: Vec<Vec<(u64, f32)>> = (0..users)
            .map(|i| {
                let own = exclude.map_or(&[][..], |(o, ids)| &ids[o[i]..o[i + 1]]);
                recommend_vector(model, &vectors[i * DIM..(i + 1) * DIM], own, ITEMS)
            })
            .collect();
        for threads in [1, 3, 0] {
            let got = vector_batch(model, &vectors, DIM, exclude, ITEMS, threads).unwrap();
            assert_eq!(got, want, "threads {threads}");
        }
        let got = vector_batch(model, &vectors[..40 * DIM], DIM, exclude, 5, 2).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g[..], w[..5]);
        }
    }
    // No users.
    assert_eq!(vector_batch(model, &[], DIM, None, 10, 2), Ok(Vec::new()));
    close(model);
}

#[test]
fn vector_batch_errors_are_statuses() {
    let bytes = leak(model_bytes());
    let model = open_bytes(bytes);
    let vectors = batch_vectors(8);
    // Another dimension, even one whose multiple the values fill.
    assert_eq!(
        vector_batch(model, &vectors, DIM / 2, None, 5, 1),
        Err(POCKETREC_INVALID_ARGUMENT)
    );
    assert!(last_error().contains("dim is 8, the model's dimension is 16"));
    let mut bad = vectors.clone();
    bad[3 * DIM + 2] = f32::NAN;
    assert_eq!(
        vector_batch(model, &bad, DIM, None, 5, 2),
        Err(POCKETREC_INVALID_ARGUMENT)
    );
    // Two users of `dim` floats into two one-item slots, counts set to 7 first.
    let raw = |model: *const pocketrec_model, dim: usize| {
        let (mut counts, mut items) = ([7usize; 2], [0u64; 2]);
        // SAFETY: the status is all that is asked for: the calls below are refused before
        // `vectors` is read past its DIM * 8 floats, and the outputs hold two users of k = 1.
        let status = unsafe {
            pocketrec_recommend_vector_batch(
                model,
                vectors.as_ptr(),
                2,
                dim,
                null(),
                null(),
                1,
                1,
                items.as_mut_ptr(),
                null_mut(),
                counts.as_mut_ptr(),
            )
        };
        (status, counts)
    };
    // n_users * dim overflows.
    assert_eq!(raw(model, usize::MAX), (POCKETREC_INVALID_ARGUMENT, [0, 0]));
    assert!(last_error().contains("out of range"), "{}", last_error());
    // A NULL model handle.
    assert_eq!(raw(null(), DIM), (POCKETREC_INVALID_ARGUMENT, [0, 0]));
    close(model);
}
