//! Reads every fixture written by `tests/fixtures/make_fixtures.py` (real numpy, scipy,
//! safetensors, ml_dtypes) and compares with what numpy itself held, bit for bit; checks that the
//! files the readers must reject fail with the right error.

use std::path::PathBuf;

use pocketrec_export::ExportError;
use pocketrec_export::input::{Matrix, Table2d, read_table, read_vector, tensor_names};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

fn cases<'a>(e: &'a Value, key: &str) -> &'a [Value] {
    e[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("integer") as usize)
        .collect()
}

fn bits(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("integer")).expect("u32"))
        .collect()
}

fn f32_bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// The `values` of a case (python floats) agree with its `bits`: the JSON is self-consistent.
fn check_values_match_bits(case: &Value) {
    let values: Vec<u32> = case["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| (v.as_f64().expect("float") as f32).to_bits())
        .collect();
    assert_eq!(values, bits(&case["bits"]), "{case}");
}

fn tensor_arg(case: &Value) -> Option<&str> {
    case["tensor"].as_str()
}

/// The invariants `CsrMatrix` promises.
fn check_csr_invariants(t: &Table2d) {
    let Matrix::Csr(m) = &t.matrix else { return };
    assert_eq!(m.indptr.len(), m.rows + 1);
    assert_eq!(m.indptr[0], 0);
    assert_eq!(m.indptr[m.rows] as usize, m.indices.len());
    assert_eq!(m.indices.len(), m.values.len());
    for r in 0..m.rows {
        let (cols, _) = m.row(r).expect("row");
        assert!(
            cols.windows(2).all(|w| w[0] < w[1]),
            "row {r} not strictly increasing"
        );
        assert!(cols.iter().all(|&c| (c as usize) < m.cols));
    }
}

#[test]
fn tables_match_numpy() {
    let e = expected();
    let tables = cases(&e, "tables");
    assert!(tables.len() >= 30, "only {} table cases", tables.len());
    for case in tables {
        let file = case["file"].as_str().expect("file");
        check_values_match_bits(case);
        let t = read_table(&fixture(file), tensor_arg(case))
            .unwrap_or_else(|err| panic!("{file} {:?}: {err}", tensor_arg(case)));
        assert_eq!(t.path, fixture(file));
        assert_eq!(t.tensor, case["name"].as_str().expect("name"), "{file}");
        let rows = case["rows"].as_u64().expect("rows") as usize;
        let cols = case["cols"].as_u64().expect("cols") as usize;
        assert_eq!((t.matrix.rows(), t.matrix.cols()), (rows, cols), "{file}");
        match (case["kind"].as_str(), &t.matrix) {
            (Some("dense"), Matrix::Dense(m)) => {
                assert_eq!(m.data.len(), rows * cols);
                assert_eq!(f32_bits(&m.data), bits(&case["bits"]), "{file}");
            }
            (Some("csr"), Matrix::Csr(m)) => {
                check_csr_invariants(&t);
                let indptr: Vec<u64> = usizes(&case["indptr"]).iter().map(|&v| v as u64).collect();
                let indices: Vec<u32> =
                    usizes(&case["indices"]).iter().map(|&v| v as u32).collect();
                assert_eq!(m.indptr, indptr, "{file} indptr");
                assert_eq!(m.indices, indices, "{file} indices");
                assert_eq!(f32_bits(&m.values), bits(&case["bits"]), "{file} values");
            }
            (kind, m) => panic!("{file}: expected {kind:?}, got {m:?}"),
        }
    }
}

#[test]
fn vectors_match_numpy() {
    let e = expected();
    let vectors = cases(&e, "vectors");
    assert!(vectors.len() >= 7);
    for case in vectors {
        let file = case["file"].as_str().expect("file");
        check_values_match_bits(case);
        let v = read_vector(&fixture(file), tensor_arg(case))
            .unwrap_or_else(|err| panic!("{file} {:?}: {err}", tensor_arg(case)));
        assert_eq!(f32_bits(&v), bits(&case["bits"]), "{file}");
    }
}

#[test]
fn tensor_names_match_the_files() {
    let e = expected();
    let names = e["names"].as_object().expect("names");
    assert!(names.len() >= 5);
    for (file, want) in names {
        let want: Vec<String> = want
            .as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_str().expect("string").to_string())
            .collect();
        assert_eq!(tensor_names(&fixture(file)).expect(file), want, "{file}");
    }
}

fn variant(err: &ExportError) -> &'static str {
    match err {
        ExportError::Io { .. } => "Io",
        ExportError::Parse { .. } => "Parse",
        ExportError::UnsupportedDtype { .. } => "UnsupportedDtype",
        ExportError::MissingTensor { .. } => "MissingTensor",
        ExportError::Shape { .. } => "Shape",
        ExportError::BadValue { .. } => "BadValue",
        ExportError::Line { .. } => "Line",
        ExportError::Usage(_) => "Usage",
        ExportError::Model { .. } => "Model",
        _ => "other",
    }
}

#[test]
fn rejected_files_give_the_right_error() {
    let e = expected();
    let errors = cases(&e, "errors");
    assert!(errors.len() >= 25);
    for case in errors {
        let file = case["file"].as_str().expect("file");
        let path = fixture(file);
        let result = match case["read"].as_str() {
            Some("table") => read_table(&path, tensor_arg(case)).map(|_| ()),
            Some("vector") => read_vector(&path, tensor_arg(case)).map(|_| ()),
            other => panic!("bad read kind {other:?}"),
        };
        let err = result.expect_err(file);
        let text = err.to_string();
        let want = case["error"].as_str().expect("error");
        assert_eq!(variant(&err), want, "{file}: {text}");
        // Every message names the file.
        assert!(
            text.contains(file),
            "{file}: message does not name the file: {text}"
        );
        if let Some(m) = case["message"].as_str() {
            assert!(text.contains(m), "{file}: {text:?} lacks {m:?}");
        }
        match &err {
            ExportError::BadValue {
                row,
                column,
                message,
                ..
            } => {
                assert_eq!(Some(*row), case["row"].as_u64(), "{file}: {text}");
                assert_eq!(Some(*column), case["column"].as_u64(), "{file}: {text}");
                assert!(
                    message.contains("is not finite") || message.contains("does not fit in f32"),
                    "{text}"
                );
            }
            ExportError::UnsupportedDtype { dtype, tensor, .. } => {
                let want = case["dtype"].as_str().expect("dtype");
                assert!(
                    dtype.contains(want),
                    "{file}: dtype {dtype:?} lacks {want:?}"
                );
                assert!(!tensor.is_empty());
            }
            ExportError::Line { line, .. } => {
                assert_eq!(Some(*line), case["line"].as_u64(), "{file}: {text}");
            }
            _ => {}
        }
    }
}

#[test]
fn nan_message_names_row_and_column() {
    let err = read_table(&fixture("nan.npy"), None).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("nan.npy"), "{text}");
    assert!(text.contains("tensor 'nan' row 2, column 3"), "{text}");
    assert!(text.contains("value NaN is not finite"), "{text}");

    let err = read_table(&fixture("csr_nan.npz"), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("row 2, column 3: value NaN is not finite"),
        "{err}"
    );
}

#[test]
fn bf16_npy_is_rejected_with_a_hint() {
    let err = read_table(&fixture("bf16.npy"), None).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("<V2"), "{text}");
    assert!(text.contains("safetensors"), "{text}");
    assert!(text.contains("bfloat16"), "{text}");
}

#[test]
fn missing_tensor_lists_what_is_there() {
    let err = read_table(&fixture("model.safetensors"), Some("user_emb")).unwrap_err();
    match &err {
        ExportError::MissingTensor {
            tensor, available, ..
        } => {
            assert_eq!(tensor, "user_emb");
            assert_eq!(available, "item_bias, item_embedding, user_embedding");
        }
        other => panic!("{other}"),
    }
    let err = read_vector(&fixture("two_arrays.npz"), Some("bias")).unwrap_err();
    assert!(
        matches!(&err, ExportError::MissingTensor { available, .. } if available == "user, item, item_bias"),
        "{err}"
    );
    // A .npy file holds one array, named after the file.
    let err = read_table(&fixture("dense_f32.npy"), Some("user")).unwrap_err();
    assert!(matches!(&err, ExportError::MissingTensor { .. }), "{err}");
    assert!(err.to_string().contains("dense_f32"), "{err}");
    assert!(read_table(&fixture("dense_f32.npy"), Some("dense_f32")).is_ok());
    assert!(read_table(&fixture("dense_f32.npy"), Some("dense_f32.npy")).is_ok());
    // A text file has no names.
    let err = read_vector(&fixture("bias.txt"), Some("bias")).unwrap_err();
    assert!(matches!(&err, ExportError::MissingTensor { .. }), "{err}");
}

#[test]
fn ambiguous_file_lists_names() {
    let err = read_table(&fixture("two_arrays.npz"), None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ExportError::Usage(_)), "{text}");
    assert!(text.contains("two_arrays.npz"), "{text}");
    assert!(text.contains("user, item, item_bias"), "{text}");
}

#[test]
fn npz_member_name_with_or_without_suffix() {
    let a = read_table(&fixture("two_arrays.npz"), Some("user")).unwrap();
    let b = read_table(&fixture("two_arrays.npz"), Some("user.npy")).unwrap();
    assert_eq!(a, b);
    assert_eq!(b.tensor, "user");
}

#[test]
fn sparse_archive_members_can_still_be_read_by_name() {
    // `data` of a scipy archive is a 1-D array: fine as a vector, a Shape error as a table.
    let v = read_vector(&fixture("csr_i32.npz"), Some("data")).unwrap();
    assert_eq!(v, vec![1.5, -2.0, 3.25, 0.5, -0.75, 4.0, 0.125, 1e-3]);
    let err = read_table(&fixture("csr_i32.npz"), Some("data")).unwrap_err();
    assert!(matches!(err, ExportError::Shape { .. }), "{err}");
}

#[test]
fn csr_matches_dense_of_same_data() {
    let csr = read_table(&fixture("csr_i32.npz"), None).unwrap();
    let Matrix::Csr(m) = &csr.matrix else {
        panic!("not csr")
    };
    let dense = m.to_dense();
    let csc = read_table(&fixture("csc.npz"), None).unwrap();
    let Matrix::Csr(c) = &csc.matrix else {
        panic!("not csr")
    };
    assert_eq!(c.to_dense(), dense);
    assert_eq!(dense.row(1), Some(&[0.0f32; 5][..]), "empty row");
    assert_eq!(dense.row(4), Some(&[0.0f32, -0.75, 4.0, 0.0, 0.125][..]));
}

#[test]
fn coo_duplicates_are_summed_and_explicit_zero_kept() {
    let t = read_table(&fixture("coo.npz"), None).unwrap();
    assert_eq!(t.tensor, "scipy coo");
    let Matrix::Csr(m) = &t.matrix else {
        panic!("not csr")
    };
    // Row 4 had (4,2)=0.5 and (4,2)=0.25, plus (4,0)=4.0, given out of order.
    assert_eq!(m.row(4), Some((&[0u32, 2][..], &[4.0f32, 0.75][..])));
    // Row 5 holds an explicit zero, which the reader keeps (the writer drops it).
    assert_eq!(m.row(5), Some((&[3u32][..], &[0.0f32][..])));
}
