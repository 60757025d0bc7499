//! `write_npy_f32`: byte-identical to `np.save` for the same array, round-trips through the
//! reader, rejects a shape that does not match; and the reader's speed on a large table.

use std::path::PathBuf;
use std::time::Instant;

use pocketrec_export::ExportError;
use pocketrec_export::input::{Matrix, read_table, read_vector, tensor_names, write_npy_f32};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

#[test]
fn writes_what_numpy_writes() {
    let dir = tempfile::tempdir().unwrap();
    // dense_f32.npy, empty_rows.npy, one_row.npy are np.save output for float32 arrays.
    for file in ["dense_f32.npy", "empty_rows.npy", "one_row.npy"] {
        let t = read_table(&fixture(file), None).unwrap();
        let Matrix::Dense(m) = t.matrix else {
            panic!("dense")
        };
        let out = dir.path().join(file);
        write_npy_f32(&out, &[m.rows, m.cols], &m.data).unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(fixture(file)).unwrap(),
            "{file}"
        );
    }
    let bias = read_vector(&fixture("bias.npy"), None).unwrap();
    let out = dir.path().join("bias.npy");
    write_npy_f32(&out, &[bias.len()], &bias).unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(fixture("bias.npy")).unwrap()
    );
}

#[test]
fn round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<f32> = (0..21)
        .map(|i| f32::from_bits(0x3F80_0000 ^ (i * 0x0101_0101)))
        .map(|v| if v.is_finite() { v } else { 0.0 })
        .collect();
    let path = dir.path().join("t.npy");
    write_npy_f32(&path, &[7, 3], &data).unwrap();
    let t = read_table(&path, None).unwrap();
    assert_eq!(t.tensor, "t");
    assert_eq!(tensor_names(&path).unwrap(), vec!["t".to_string()]);
    match t.matrix {
        Matrix::Dense(m) => {
            assert_eq!((m.rows, m.cols), (7, 3));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&m.data), bits(&data));
        }
        Matrix::Csr(_) => panic!("dense expected"),
    }
    // The data starts on a 64-byte boundary, as NumPy's own files do.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes.len() - data.len() * 4) % 64, 0);

    write_npy_f32(&path, &[0, 5], &[]).unwrap();
    assert_eq!(read_table(&path, None).unwrap().matrix.rows(), 0);
    write_npy_f32(&path, &[4], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(read_vector(&path, None).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn mismatched_shape_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npy");
    let err = write_npy_f32(&path, &[2, 3], &[1.0; 5]).unwrap_err();
    assert!(matches!(err, ExportError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("(2, 3)"), "{err}");
    let err = write_npy_f32(&path, &[usize::MAX, 2], &[]).unwrap_err();
    assert!(matches!(err, ExportError::Shape { .. }), "{err}");
    assert!(!path.exists());
    let err = write_npy_f32(&dir.path().join("no/such/dir.npy"), &[1], &[1.0]).unwrap_err();
    assert!(matches!(err, ExportError::Io { .. }), "{err}");
}

/// 1,000,000 x 64 f32 (256 MB): run with
/// `cargo test -p pocketrec-export --release --test input_write -- --ignored --nocapture`.
#[test]
#[ignore = "writes 256 MB; a timing check meant for release builds"]
fn large_table_loads_fast() {
    let (rows, cols) = (1_000_000usize, 64usize);
    let data: Vec<f32> = (0..rows * cols)
        .map(|i| (i % 1000) as f32 * 0.001)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    let start = Instant::now();
    write_npy_f32(&path, &[rows, cols], &data).unwrap();
    println!("write: {:?}", start.elapsed());
    let start = Instant::now();
    let t = read_table(&path, None).unwrap();
    let elapsed = start.elapsed();
    println!("read: {elapsed:?}");
    let Matrix::Dense(m) = t.matrix else {
        panic!("dense")
    };
    assert_eq!(m.data, data);
    if !cfg!(debug_assertions) {
        assert!(elapsed.as_secs_f64() < 2.0, "took {elapsed:?}");
    }
}
