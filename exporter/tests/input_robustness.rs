//! The readers on hostile input: every truncation of small real files, byte flips, random
//! corruption, crafted headers with huge shapes, and broken scipy sparse archives. Nothing may
//! panic; whatever is accepted must satisfy the documented invariants.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pocketrec_export::ExportError;
use pocketrec_export::input::{Matrix, Table2d, read_table, read_vector, tensor_names};
use zip::write::SimpleFileOptions;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// A `.npy` file (format 1.0) with the given header fields and raw data.
fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn le_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn le_i32(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn le_i64(values: &[i64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A zip archive of `.npy` members (stored or deflated), as `np.savez` writes.
fn npz(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in members {
        zip.start_file(format!("{name}.npy"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The members of a scipy `save_npz` archive, with `format` stored as `|S3`.
fn scipy_members(format: &str, shape: [i64; 2]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "format",
            npy(
                &format!("|S{}", format.len()),
                false,
                "()",
                format.as_bytes(),
            ),
        ),
        ("shape", npy("<i8", false, "(2,)", &le_i64(&shape))),
    ]
}

fn member_1d(
    name: &'static str,
    descr: &str,
    len: usize,
    bytes: Vec<u8>,
) -> (&'static str, Vec<u8>) {
    (name, npy(descr, false, &format!("({len},)"), &bytes))
}

/// A scipy CSR archive from its parts.
fn csr_npz(shape: [i64; 2], indptr: &[i32], indices: &[i32], data: &[f32]) -> Vec<u8> {
    let mut members = scipy_members("csr", shape);
    members.push(member_1d("indptr", "<i4", indptr.len(), le_i32(indptr)));
    members.push(member_1d("indices", "<i4", indices.len(), le_i32(indices)));
    members.push(member_1d("data", "<f4", data.len(), le_f32(data)));
    npz(&members, false)
}

/// A scratch directory: in memory (`/dev/shm`) where there is one, since these tests rewrite a
/// small file thousands of times, and that is slow on a busy disk.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pocketrec-input-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The invariants every accepted table satisfies.
fn check_table(t: &Table2d) {
    match &t.matrix {
        Matrix::Dense(m) => {
            assert_eq!(m.data.len(), m.rows * m.cols);
            assert!(m.cols > 0);
            assert!(m.data.iter().all(|v| v.is_finite()));
        }
        Matrix::Csr(m) => {
            assert!(m.cols > 0);
            assert_eq!(m.indptr.len(), m.rows + 1);
            assert_eq!(m.indptr[0], 0);
            assert_eq!(m.indptr[m.rows] as usize, m.indices.len());
            assert_eq!(m.indices.len(), m.values.len());
            assert!(m.indptr.windows(2).all(|w| w[0] <= w[1]));
            for r in 0..m.rows {
                let (cols, _) = m.row(r).unwrap();
                assert!(cols.windows(2).all(|w| w[0] < w[1]));
                assert!(cols.iter().all(|&c| (c as usize) < m.cols));
            }
            assert!(m.values.iter().all(|v| v.is_finite()));
        }
    }
}

/// Runs every public reader on `path`; none may panic. Returns whether `read_table(path, name)`
/// succeeded.
fn exercise(path: &Path, name: Option<&str>) -> bool {
    if let Ok(t) = read_table(path, None) {
        check_table(&t);
    }
    if let Ok(v) = read_vector(path, None) {
        assert!(v.iter().all(|x| x.is_finite()));
    }
    if let Ok(names) = tensor_names(path) {
        for n in names.iter().take(8) {
            if let Ok(t) = read_table(path, Some(n)) {
                check_table(&t);
            }
            let _ = read_vector(path, Some(n));
        }
    }
    match read_table(path, name) {
        Ok(t) => {
            check_table(&t);
            true
        }
        Err(e) => {
            // Every error message names the file (Usage carries it in its text).
            let text = e.to_string();
            let file = path.file_name().unwrap().to_string_lossy();
            assert!(text.contains(&*file), "{text}");
            false
        }
    }
}

/// Like [`exercise`], with fewer calls (for the tests that try thousands of variants).
fn exercise_light(path: &Path, name: Option<&str>) -> bool {
    if let Ok(t) = read_table(path, None) {
        check_table(&t);
    }
    let _ = tensor_names(path);
    match read_table(path, name) {
        Ok(t) => {
            check_table(&t);
            true
        }
        Err(_) => false,
    }
}

/// Small real files, with the tensor to read from each.
const SAMPLES: &[(&str, Option<&str>)] = &[
    ("dense_f32.npy", None),
    ("dense_fortran_f64_be.npy", None),
    ("dense_v3.npy", None),
    ("two_arrays_compressed.npz", Some("item")),
    ("csr_i32.npz", None),
    ("csr_i64_f64.npz", None),
    ("coo.npz", None),
    ("csc.npz", None),
    ("model.safetensors", Some("user_embedding")),
    ("half.safetensors", Some("user_bf16")),
];

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let dir = scratch();
    for &(file, name) in SAMPLES {
        let full = std::fs::read(fixture(file)).unwrap();
        let path = dir.path().join(file);
        for len in 0..full.len() {
            std::fs::write(&path, &full[..len]).unwrap();
            assert!(
                !exercise(&path, name),
                "{file} truncated to {len} bytes was accepted"
            );
        }
        std::fs::write(&path, &full).unwrap();
        assert!(exercise(&path, name), "{file} in full was rejected");
    }
}

#[test]
fn byte_flips_never_panic() {
    let dir = scratch();
    for &(file, name) in SAMPLES {
        let full = std::fs::read(fixture(file)).unwrap();
        let path = dir.path().join(file);
        let mut accepted = 0;
        for pos in 0..full.len() {
            for flip in [0xFFu8, 0x01, 0x80] {
                let mut bytes = full.clone();
                bytes[pos] ^= flip;
                std::fs::write(&path, &bytes).unwrap();
                accepted += usize::from(exercise_light(&path, name));
            }
        }
        // Flipped data bytes still make readable tables; flipped structure must not.
        assert!(accepted < full.len() * 3, "{file}: every flip was accepted");
    }
}

#[test]
fn random_corruption_never_panics() {
    let dir = scratch();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        // xorshift64*: deterministic, good enough to scatter corruption.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for &(file, name) in SAMPLES {
        let full = std::fs::read(fixture(file)).unwrap();
        let path = dir.path().join(file);
        for _ in 0..300 {
            let mut bytes = full.clone();
            let hits = 1 + next() % 8;
            for _ in 0..hits {
                let pos = (next() % bytes.len() as u64) as usize;
                bytes[pos] = match next() % 4 {
                    0 => 0,
                    1 => 0xFF,
                    2 => b'9',
                    _ => next() as u8,
                };
            }
            if next() % 4 == 0 {
                let cut = (next() % bytes.len() as u64) as usize;
                bytes.truncate(cut);
            }
            std::fs::write(&path, &bytes).unwrap();
            exercise(&path, name);
        }
    }
}

#[test]
fn garbage_files_are_errors() {
    let dir = scratch();
    let cases: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("zeros", &[0u8; 64]),
        ("magic_only.npy", b"\x93NUMPY"),
        ("zip_magic_only.npz", b"PK\x03\x04"),
        (
            "empty_zip.npz",
            b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ),
        ("text.txt", b"hello world\n"),
        ("st_len_only", &[2, 0, 0, 0, 0, 0, 0, 0]),
        ("st_bad_json", b"\x05\0\0\0\0\0\0\0{abcd"),
        ("st_not_object", b"\x02\0\0\0\0\0\0\0{]"),
    ];
    for &(name, bytes) in cases {
        let path = write(dir.path(), name, bytes);
        let err = read_table(&path, None).expect_err(name);
        assert!(err.to_string().contains(name), "{err}");
        assert!(
            tensor_names(&path).is_err() || tensor_names(&path).unwrap().is_empty(),
            "{name}"
        );
    }
}

/// Runs `f` and checks it took less than a second (no huge allocation or long loop).
fn quickly<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{what} took {:?}",
        start.elapsed()
    );
    out
}

#[test]
fn huge_claimed_shapes_fail_quickly() {
    let dir = scratch();
    let data = le_f32(&[1.0, 2.0, 3.0, 4.0]);
    for shape in [
        "(1099511627776, 1099511627776)",
        "(1099511627776, 4)",
        "(4, 1099511627776)",
        "(18446744073709551615, 2)",
        "(4294967296, 4294967296, 4294967296)",
        "(1, 4, 1099511627776)",
    ] {
        let path = write(dir.path(), "huge.npy", &npy("<f4", false, shape, &data));
        let err = quickly(shape, || read_table(&path, None)).unwrap_err();
        assert!(
            matches!(err, ExportError::Parse { .. } | ExportError::Shape { .. }),
            "{shape}: {err}"
        );
        // Same inside an archive.
        let path = write(
            dir.path(),
            "huge.npz",
            &npz(&[("a", npy("<f4", false, shape, &data))], true),
        );
        quickly(shape, || read_table(&path, None)).unwrap_err();
    }

    // A version 2.0 header claiming a 4 GiB header.
    let mut bytes = b"\x93NUMPY\x02\x00\xff\xff\xff\xff{".to_vec();
    bytes.extend_from_slice(&[b' '; 100]);
    let path = write(dir.path(), "huge_header.npy", &bytes);
    let err = quickly("header", || read_table(&path, None)).unwrap_err();
    assert!(err.to_string().contains("header"), "{err}");

    // safetensors claiming a huge shape.
    let header =
        br#"{"x":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&data);
    let path = write(dir.path(), "huge.safetensors", &bytes);
    quickly("safetensors", || read_table(&path, None)).unwrap_err();

    // safetensors whose offsets add up past usize::MAX.
    // Eight tensors of 2^61 - 1 bytes each: the last one ends at u64::MAX - 7, so adding the
    // header size to it overflows unless the offsets are checked against the file first.
    let size = (1u64 << 61) - 1;
    let entries: Vec<String> = (0..8u64)
        .map(|k| {
            format!(
                r#""t{k}":{{"dtype":"U8","shape":[{size}],"data_offsets":[{},{}]}}"#,
                k * size,
                (k + 1) * size
            )
        })
        .collect();
    let header = format!("{{{}}}", entries.join(","));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    let path = write(dir.path(), "offsets.safetensors", &bytes);
    quickly("offsets", || read_table(&path, None)).unwrap_err();
    quickly("offsets", || tensor_names(&path)).unwrap_err();

    // scipy archives whose shape alone is huge.
    let mut members = scipy_members("coo", [1 << 40, 1 << 40]);
    members.push(member_1d("row", "<i4", 0, vec![]));
    members.push(member_1d("col", "<i4", 0, vec![]));
    members.push(member_1d("data", "<f4", 0, vec![]));
    let path = write(dir.path(), "huge_coo.npz", &npz(&members, false));
    let err = quickly("coo", || read_table(&path, None)).unwrap_err();
    assert!(matches!(err, ExportError::Shape { .. }), "{err}");

    let mut members = scipy_members("csc", [1 << 40, 3]);
    members.push(member_1d("indptr", "<i4", 4, le_i32(&[0, 0, 0, 0])));
    members.push(member_1d("indices", "<i4", 0, vec![]));
    members.push(member_1d("data", "<f4", 0, vec![]));
    let path = write(dir.path(), "huge_csc.npz", &npz(&members, false));
    let err = quickly("csc", || read_table(&path, None)).unwrap_err();
    assert!(err.to_string().contains("rows"), "{err}");

    let path = write(
        dir.path(),
        "huge_csr.npz",
        &csr_npz([1 << 40, 3], &[0, 0], &[], &[]),
    );
    let err = quickly("csr", || read_table(&path, None)).unwrap_err();
    assert!(err.to_string().contains("indptr"), "{err}");
}

/// CRC-32 (IEEE), bit by bit: enough for a few bytes of test data.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A one-member stored zip written by hand, whose zip64 size fields claim `claimed_size`
/// uncompressed bytes while the member really holds `data`.
fn zip_with_claimed_size(name: &str, data: &[u8], claimed_size: u64, crc: u32) -> Vec<u8> {
    let name = name.as_bytes();
    let comp = data.len() as u64;
    let mut out = Vec::new();
    // Local file header, sizes in the zip64 extra field.
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&[45, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, stored, time, date
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(&claimed_size.to_le_bytes());
    out.extend_from_slice(&comp.to_le_bytes());
    out.extend_from_slice(data);
    // Central directory.
    let cd_start = out.len();
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name);
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(&claimed_size.to_le_bytes());
    out.extend_from_slice(&comp.to_le_bytes());
    let cd_len = out.len() - cd_start;
    // End of central directory.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&(cd_len as u32).to_le_bytes());
    out.extend_from_slice(&(cd_start as u32).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[test]
fn npz_member_claiming_a_huge_size_fails_without_allocating() {
    let dir = scratch();
    // The npy header and the zip both claim 1 TiB of data; the member holds 16 bytes. Reading
    // must fail on the size check, not try to reserve 1 TiB (which would abort the process).
    let member = npy(
        "<f4",
        false,
        "(68719476736, 4)",
        &le_f32(&[1.0, 2.0, 3.0, 4.0]),
    );
    let claimed = (1u64 << 40) + member.len() as u64;
    let path = write(
        dir.path(),
        "liar.npz",
        &zip_with_claimed_size("emb.npy", &member, claimed, crc32(&member)),
    );
    // The hand-made archive is a valid zip: its member is listed.
    assert_eq!(tensor_names(&path).unwrap(), vec!["emb".to_string()]);
    let err = quickly("liar", || read_table(&path, None)).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    // The same archive telling the truth reads fine, and its checksum is verified.
    let honest = npy("<f4", false, "(1, 4)", &le_f32(&[1.0, 2.0, 3.0, 4.0]));
    let size = honest.len() as u64;
    let path = write(
        dir.path(),
        "bad_crc.npz",
        &zip_with_claimed_size("emb.npy", &honest, size, crc32(&honest) ^ 1),
    );
    let err = read_table(&path, None).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let path = write(
        dir.path(),
        "honest.npz",
        &zip_with_claimed_size("emb.npy", &honest, size, crc32(&honest)),
    );
    assert_eq!(read_table(&path, None).unwrap().matrix.rows(), 1);
}

#[test]
fn deeply_nested_header_is_an_error() {
    let dir = scratch();
    let shape = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let path = write(dir.path(), "nested.npy", &npy("<f4", false, &shape, &[]));
    let err = read_table(&path, None).unwrap_err();
    assert!(err.to_string().contains("nests deeper"), "{err}");
}

fn table_err(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = write(dir, name, bytes);
    read_table(&path, None).unwrap_err().to_string()
}

#[test]
fn npy_header_variants() {
    let dir = scratch();
    let data = le_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let ok = |name: &str, bytes: &[u8]| {
        let path = write(dir.path(), name, bytes);
        read_table(&path, None).unwrap()
    };
    // Native order, Python 2 longs, trailing bytes (ignored, as np.load does).
    let t = ok("native.npy", &npy("=f4", false, "(2, 3)", &data));
    assert_eq!(t.matrix.rows(), 2);
    ok("longs.npy", &npy("<f4", false, "(2L, 3L)", &data));
    let mut trailing = npy("<f4", false, "(2, 3)", &data);
    trailing.extend_from_slice(b"extra");
    ok("trailing.npy", &trailing);

    let e = table_err(dir.path(), "v4.npy", &{
        let mut b = npy("<f4", false, "(2, 3)", &data);
        b[6] = 4;
        b
    });
    assert!(e.contains("version 4.0"), "{e}");
    let e = table_err(
        dir.path(),
        "short.npy",
        &npy("<f4", false, "(2, 3)", &data[..20]),
    );
    assert!(e.contains("truncated") && e.contains("(2, 3)"), "{e}");
    let e = table_err(
        dir.path(),
        "noorder.npy",
        &npy("|f4", false, "(2, 3)", &data),
    );
    assert!(e.contains("byte order"), "{e}");
    let e = table_err(
        dir.path(),
        "f128.npy",
        &npy("<f16", false, "(1, 1)", &[0; 16]),
    );
    assert!(e.contains("dtype <f16"), "{e}");
    let e = table_err(dir.path(), "neg.npy", &npy("<f4", false, "(-2, 3)", &data));
    assert!(e.contains("negative"), "{e}");
    let e = table_err(
        dir.path(),
        "extra_key.npy",
        &npy("<f4', 'extra': 'x", false, "(2, 3)", &data),
    );
    assert!(e.contains("unexpected key 'extra'"), "{e}");
    let e = table_err(
        dir.path(),
        "call.npy",
        &npy("<f4", false, "eval('1')", &data),
    );
    assert!(e.contains("unknown name 'eval'"), "{e}");
}

#[test]
fn scipy_structure_is_validated() {
    let dir = scratch();
    let d = dir.path();
    let data = [1.0f32, 2.0, 3.0, 4.0];

    // A good one first: 3x5, rows 0 and 2 filled.
    let path = write(
        d,
        "good.npz",
        &csr_npz([3, 5], &[0, 2, 2, 4], &[1, 4, 0, 3], &data),
    );
    let t = read_table(&path, None).unwrap();
    check_table(&t);

    let cases: &[(&str, Vec<u8>, &str)] = &[
        (
            "start.npz",
            csr_npz([3, 5], &[1, 2, 2, 4], &[1, 4, 0, 3], &data),
            "starts at 1, expected 0",
        ),
        (
            "decreasing.npz",
            csr_npz([3, 5], &[0, 3, 2, 4], &[1, 4, 0, 3], &data),
            "row 1 is broken",
        ),
        (
            "end.npz",
            csr_npz([3, 5], &[0, 2, 2, 3], &[1, 4, 0, 3], &data),
            "ends at 3 but there are 4 stored entries",
        ),
        (
            "past_end.npz",
            csr_npz([3, 5], &[0, 2, 9, 4], &[1, 4, 0, 3], &data),
            "row 1 is broken",
        ),
        (
            "rows.npz",
            csr_npz([4, 5], &[0, 2, 2, 4], &[1, 4, 0, 3], &data),
            "has 4 entries, expected 5",
        ),
        (
            "column.npz",
            csr_npz([3, 5], &[0, 2, 2, 4], &[1, 4, 0, 5], &data),
            "row 2 is broken: index 5 at position 3 is outside 0..5",
        ),
        (
            "negative_index.npz",
            csr_npz([3, 5], &[0, 2, 2, 4], &[-1, 4, 0, 3], &data),
            "row 0 is broken: index -1",
        ),
        (
            "data_len.npz",
            csr_npz([3, 5], &[0, 2, 2, 4], &[1, 4, 0, 3], &data[..3]),
            "has 3 values but the index arrays describe 4 entries",
        ),
        (
            "neg_shape.npz",
            csr_npz([-3, 5], &[0, 2, 2, 4], &[1, 4, 0, 3], &data),
            "negative",
        ),
        (
            "zero_cols.npz",
            csr_npz([3, 0], &[0, 0, 0, 0], &[], &[]),
            "0 columns",
        ),
    ];
    for (name, bytes, want) in cases {
        let e = table_err(d, name, bytes);
        assert!(e.contains(want), "{name}: {e:?} lacks {want:?}");
        assert!(e.contains(name), "{e}");
    }

    // Unknown format, three-entry shape, float indices.
    let mut m = scipy_members("xyz", [3, 5]);
    m.push(member_1d("data", "<f4", 0, vec![]));
    let e = table_err(d, "fmt.npz", &npz(&m, false));
    assert!(e.contains("unknown scipy sparse format 'xyz'"), "{e}");

    let mut m = vec![
        ("format", npy("|S3", false, "()", b"csr")),
        ("shape", npy("<i8", false, "(3,)", &le_i64(&[3, 5, 1]))),
    ];
    m.push(member_1d("data", "<f4", 0, vec![]));
    let e = table_err(d, "shape3.npz", &npz(&m, false));
    assert!(e.contains("3 entries, expected 2"), "{e}");

    let mut m = scipy_members("csr", [1, 2]);
    m.push(member_1d("indptr", "<i4", 2, le_i32(&[0, 1])));
    m.push(member_1d("indices", "<f4", 1, le_f32(&[0.0])));
    m.push(member_1d("data", "<f4", 1, le_f32(&[1.0])));
    let e = table_err(d, "float_idx.npz", &npz(&m, false));
    assert!(e.contains("expected an integer type"), "{e}");

    // Duplicates whose sum overflows f32.
    let path = write(
        d,
        "dup_overflow.npz",
        &csr_npz([1, 2], &[0, 2], &[1, 1], &[3e38, 3e38]),
    );
    let e = read_table(&path, None).unwrap_err();
    assert!(
        matches!(
            &e,
            ExportError::BadValue {
                row: 0,
                column: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("sum of duplicate entries"), "{e}");
}

#[test]
fn scipy_variants_are_read() {
    let dir = scratch();
    let d = dir.path();
    let want = read_table(
        &write(
            d,
            "ref.npz",
            &csr_npz([3, 5], &[0, 2, 2, 4], &[1, 4, 0, 3], &[1.0, 2.0, 3.0, 4.0]),
        ),
        None,
    )
    .unwrap()
    .matrix;

    // Unicode format (old scipy), int64 indices, uint16 indices.
    let mut m = vec![
        (
            "format",
            npy(
                "<U3",
                false,
                "()",
                &"csr"
                    .chars()
                    .flat_map(|c| (c as u32).to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
        ),
        ("shape", npy("<i8", false, "(2,)", &le_i64(&[3, 5]))),
    ];
    m.push(member_1d("indptr", "<i8", 4, le_i64(&[0, 2, 2, 4])));
    m.push(member_1d(
        "indices",
        "<u2",
        4,
        [1u16, 4, 0, 3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    ));
    m.push(member_1d("data", "<f4", 4, le_f32(&[1.0, 2.0, 3.0, 4.0])));
    let t = read_table(&write(d, "unicode.npz", &npz(&m, true)), None).unwrap();
    assert_eq!(t.matrix, want);

    // COO saved as `coords` (2, nnz), C and Fortran order, entries shuffled.
    let rows = [2i64, 0, 2, 0];
    let cols = [3i64, 4, 0, 1];
    let vals = [4.0f32, 2.0, 3.0, 1.0];
    let c_order: Vec<i64> = rows.iter().chain(&cols).copied().collect();
    let f_order: Vec<i64> = rows.iter().zip(&cols).flat_map(|(&r, &c)| [r, c]).collect();
    for (name, fortran, coords) in [
        ("coords_c.npz", false, c_order),
        ("coords_f.npz", true, f_order),
    ] {
        let mut m = scipy_members("coo", [3, 5]);
        m.push(("coords", npy("<i8", fortran, "(2, 4)", &le_i64(&coords))));
        m.push(member_1d("data", "<f4", 4, le_f32(&vals)));
        let t = read_table(&write(d, name, &npz(&m, false)), None).unwrap();
        assert_eq!(t.matrix, want, "{name}");
        assert_eq!(t.tensor, "scipy coo");
    }
}

#[test]
fn text_vectors() {
    let dir = scratch();
    let d = dir.path();
    let read = |name: &str, text: &[u8]| read_vector(&write(d, name, text), None);

    assert_eq!(
        read("crlf.txt", b"1.5\r\n-2\r\n\r\n").unwrap(),
        vec![1.5, -2.0]
    );
    assert_eq!(
        read("bom.txt", "\u{feff}0.25\n".as_bytes()).unwrap(),
        vec![0.25]
    );
    assert_eq!(read("empty.txt", b"").unwrap(), Vec::<f32>::new());
    assert_eq!(
        read("comments.txt", b"# only\n  # comments\n").unwrap(),
        Vec::<f32>::new()
    );

    let line = |r: Result<Vec<f32>, ExportError>| match r {
        Err(ExportError::Line { line, message, .. }) => (line, message),
        other => panic!("{other:?}"),
    };
    let (l, m) = line(read("big.txt", b"1\n1e39\n"));
    assert_eq!(l, 2);
    assert!(m.contains("does not fit in f32"), "{m}");
    let (l, m) = line(read("inf.txt", b"-inf\n"));
    assert_eq!(l, 1);
    assert!(m.contains("-inf is not finite"), "{m}");
    let (l, m) = line(read("two.txt", b"1\n\n2 3\n"));
    assert_eq!(l, 3);
    assert!(m.contains("2 fields"), "{m}");

    let e = read("binary.bin", &[0xC3, 0x28, 0xFF]).unwrap_err();
    assert!(matches!(e, ExportError::Parse { .. }), "{e}");
    // A text file is no table.
    let e = read_table(&write(d, "t.txt", b"1\n2\n"), None).unwrap_err();
    assert!(
        e.to_string()
            .contains("not a .npy, .npz or .safetensors file"),
        "{e}"
    );
}
