//! Exporting tables held in memory (the Python package's NumPy, scipy and DLPack arrays) rather
//! than read from files.
//!
//! [`export_arrays`] takes two [`ArrayTable`]s (dense or CSR [`Matrix`]es, with optional ids and
//! biases) and writes a `.prec` file through the same path as [`crate::export::export`]: the same
//! checks (finite values, named by row and column; shapes; duplicate ids), the same pruning, the
//! same properties and the same atomic write. A table exported from memory with
//! `source` set to what the CLI records for a file (`PATH [TENSOR]`, e.g. `users.npy [users]`)
//! and named as the CLI names it (the tensor, e.g. `users`) gives the same bytes as
//! `pocketrec export` on that file.
//!
//! In messages an in-memory table is the file [`ARRAY_PATH`] (`<array>`) and the tensor named
//! [`ArrayTable::name`]: `<array>: tensor 'users' row 3, column 7: value NaN is not finite`.
//!
//! ```no_run
//! use pocketrec_export::arrays::{ArrayExport, ArrayTable, Values, export_arrays};
//! # fn main() -> pocketrec_export::Result<()> {
//! let users = ArrayTable::dense("users", 2, 2, Values::F32(&[1.0, 0.0, 0.0, 1.0]))?;
//! let items = ArrayTable::dense("items", 3, 2, Values::F64(&[1.0, 0.0, 0.0, 1.0, 0.5, 0.5]))?;
//! let summary = export_arrays(ArrayExport::new(users, items, "model.prec"))?;
//! println!("{} bytes", summary.file_bytes);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::storage::ItemStorage;
use pocketrec::{FoldInParams, IdKind, ListRows, Scoring, ValueEncoding};

use crate::error::{ExportError, Result};
use crate::export::{
    Biases, ExportOptions, ExportSummary, Ids, Side, Source, check_settings, prepare_table,
    provenance, write_model,
};
use crate::ids::IdList;
use crate::input::{CsrMatrix, DenseMatrix, MAX_COLUMNS, Matrix, Table2d};
use crate::progress::{NoProgress, Progress};

/// The name an in-memory table goes by where a file's path would stand: in messages, and in the
/// `source.*` property of a table exported without a [`ArrayTable::source`] (`<array> [NAME]`).
pub const ARRAY_PATH: &str = "<array>";

/// Values of one element type, as an array library holds them (row-major for dense tables).
#[derive(Clone, Copy, Debug)]
pub enum Values<'a> {
    /// IEEE 754 binary32.
    F32(&'a [f32]),
    /// IEEE 754 binary64: each value must fit in f32.
    F64(&'a [f64]),
    /// IEEE 754 binary16.
    F16(&'a [half::f16]),
}

impl Values<'_> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::F16(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32; the first that is not finite (or, for f64, does not fit in f32) is a
    /// [`ExportError::BadValue`] for tensor `tensor`, placed by `locate(index)`.
    fn to_f32(self, tensor: &str, locate: &dyn Fn(usize) -> (u64, u64)) -> Result<Vec<f32>> {
        let out: Vec<f32> = match self {
            Values::F32(v) => v.to_vec(),
            Values::F64(v) => v.iter().map(|&x| x as f32).collect(),
            Values::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
        };
        if let Some(pos) = out.iter().position(|v| !v.is_finite()) {
            let message = match self {
                Values::F64(v) if v[pos].is_finite() => {
                    format!("value {:e} does not fit in f32", v[pos])
                }
                Values::F64(v) => not_finite(v[pos]),
                _ => not_finite(f64::from(out[pos])),
            };
            return Err(bad_value(tensor, locate(pos), message));
        }
        Ok(out)
    }
}

/// The message for a NaN or infinite value (as the file readers word it).
fn not_finite(v: f64) -> String {
    if v.is_nan() {
        "value NaN is not finite".to_string()
    } else if v > 0.0 {
        "value inf is not finite".to_string()
    } else {
        "value -inf is not finite".to_string()
    }
}

fn bad_value(tensor: &str, (row, column): (u64, u64), message: String) -> ExportError {
    ExportError::BadValue {
        path: PathBuf::from(ARRAY_PATH),
        tensor: tensor.to_string(),
        row,
        column,
        message,
    }
}

fn shape_error(tensor: &str, message: String) -> ExportError {
    ExportError::Shape {
        path: PathBuf::from(ARRAY_PATH),
        tensor: tensor.to_string(),
        message,
    }
}

/// A table's external ids, one per row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArrayIds {
    /// Integer ids.
    Integers(Vec<u64>),
    /// String ids: stored as their [`pocketrec::string_id`] hashes, and (unless
    /// [`ArrayExport::id_strings`] is off) with the strings themselves.
    Strings(Vec<String>),
}

impl ArrayIds {
    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            ArrayIds::Integers(ids) => ids.len(),
            ArrayIds::Strings(ids) => ids.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One in-memory table with its ids and biases.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayTable {
    /// The table's name in the file (the CLI names a table after its tensor, e.g. `users` for
    /// `users.npy`); also the tensor messages name.
    pub name: String,
    /// What the `source.users` / `source.items` property records; `None`: `<array> [NAME]`.
    pub source: Option<String>,
    /// The values (checked again by [`export_arrays`]: finite, consistent, CSR columns sorted
    /// and duplicates summed as scipy does).
    pub matrix: Matrix,
    /// One id per row; `None`: ids are row numbers.
    pub ids: Option<ArrayIds>,
    /// One bias per row.
    pub bias: Option<Vec<f32>>,
}

impl ArrayTable {
    /// A table named `name` holding `matrix`, without ids, biases or provenance.
    pub fn new(name: impl Into<String>, matrix: Matrix) -> Self {
        ArrayTable {
            name: name.into(),
            source: None,
            matrix,
            ids: None,
            bias: None,
        }
    }

    /// A dense row-major `rows x cols` table; values are converted to f32 and checked.
    pub fn dense(name: &str, rows: usize, cols: usize, values: Values<'_>) -> Result<Self> {
        check_table_shape(name, rows, cols)?;
        if rows.checked_mul(cols) != Some(values.len()) {
            return Err(shape_error(
                name,
                format!(
                    "holds {} values, but its shape ({rows}, {cols}) needs {}",
                    values.len(),
                    rows.saturating_mul(cols)
                ),
            ));
        }
        let data = values.to_f32(name, &|i| ((i / cols) as u64, (i % cols) as u64))?;
        Ok(ArrayTable::new(
            name,
            Matrix::Dense(DenseMatrix { rows, cols, data }),
        ))
    }

    /// A `rows x cols` CSR table (scipy's `indptr`, `indices`, `data`); the structure is
    /// checked, values converted to f32 and checked, columns sorted and duplicates summed.
    pub fn csr(
        name: &str,
        rows: usize,
        cols: usize,
        indptr: &[i64],
        indices: &[i64],
        values: Values<'_>,
    ) -> Result<Self> {
        check_table_shape(name, rows, cols)?;
        let parse =
            |message: String| ExportError::parse(ARRAY_PATH, format!("tensor '{name}': {message}"));
        if indices.len() != values.len() {
            return Err(parse(format!(
                "has {} column indices but {} values",
                indices.len(),
                values.len()
            )));
        }
        if let Some(i) = indptr.iter().position(|&p| p < 0) {
            return Err(parse(format!("indptr[{i}] = {} is negative", indptr[i])));
        }
        let indptr: Vec<u64> = indptr
            .iter()
            .map(|&p| u64::try_from(p).unwrap_or(u64::MAX))
            .collect();
        let indices: Vec<u32> = indices
            .iter()
            .map(|&i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let mut matrix = CsrMatrix {
            rows,
            cols,
            indptr,
            indices,
            values: Vec::new(),
        };
        check_csr_structure(name, &matrix, values.len())?;
        let (indptr, indices) = (&matrix.indptr, &matrix.indices);
        let locate = |k: usize| {
            let row = indptr.partition_point(|&p| p <= k as u64).saturating_sub(1);
            (row as u64, u64::from(indices[k]))
        };
        matrix.values = values.to_f32(name, &locate)?;
        Ok(ArrayTable::new(name, Matrix::Csr(matrix)))
    }
}

/// Checks a table's shape: at least one column, at most [`MAX_COLUMNS`].
fn check_table_shape(name: &str, rows: usize, cols: usize) -> Result<()> {
    if cols == 0 {
        return Err(shape_error(
            name,
            format!("shape ({rows}, 0) has 0 columns; a table needs at least one"),
        ));
    }
    if cols > MAX_COLUMNS {
        return Err(shape_error(
            name,
            format!("shape ({rows}, {cols}) has more than {MAX_COLUMNS} columns"),
        ));
    }
    Ok(())
}

/// Checks CSR structure: `indptr` has `rows + 1` non-decreasing entries from 0 to `nnz`, every
/// column index is below `cols`.
fn check_csr_structure(name: &str, m: &CsrMatrix, nnz: usize) -> Result<()> {
    let parse =
        |message: String| ExportError::parse(ARRAY_PATH, format!("tensor '{name}': {message}"));
    if m.indptr.len() != m.rows.saturating_add(1) {
        return Err(parse(format!(
            "indptr has {} entries, expected {} ({} rows + 1)",
            m.indptr.len(),
            m.rows.saturating_add(1),
            m.rows
        )));
    }
    if m.indptr.first().is_some_and(|&p| p != 0) {
        return Err(parse(format!(
            "indptr starts at {}, expected 0",
            m.indptr[0]
        )));
    }
    for (r, w) in m.indptr.windows(2).enumerate() {
        if w[1] < w[0] || w[1] > nnz as u64 {
            return Err(parse(format!(
                "row {r} is broken: indptr[{}] = {} is {}",
                r + 1,
                w[1],
                if w[1] < w[0] {
                    format!("less than indptr[{r}] = {}", w[0])
                } else {
                    format!("past the {nnz} stored entries")
                }
            )));
        }
    }
    if m.indptr.last().is_some_and(|&p| p != nnz as u64) {
        return Err(parse(format!(
            "indptr ends at {} but there are {nnz} stored entries",
            m.indptr[m.rows]
        )));
    }
    if m.indices.len() != nnz {
        return Err(parse(format!(
            "has {} column indices but {nnz} values",
            m.indices.len()
        )));
    }
    if let Some(k) = m.indices.iter().position(|&c| c as usize >= m.cols) {
        let row = m
            .indptr
            .partition_point(|&p| p <= k as u64)
            .saturating_sub(1);
        return Err(parse(format!(
            "row {row} is broken: column index at position {k} is outside 0..{}",
            m.cols
        )));
    }
    Ok(())
}

/// Checks a table given as a [`Matrix`]: consistent shape, finite values, and for CSR valid
/// structure; sorts CSR columns within rows and sums duplicates (as scipy's `sum_duplicates`).
fn check_matrix(name: &str, matrix: &mut Matrix) -> Result<()> {
    check_table_shape(name, matrix.rows(), matrix.cols())?;
    match matrix {
        Matrix::Dense(m) => {
            if m.rows.checked_mul(m.cols) != Some(m.data.len()) {
                return Err(shape_error(
                    name,
                    format!(
                        "holds {} values, but its shape ({}, {}) needs {}",
                        m.data.len(),
                        m.rows,
                        m.cols,
                        m.rows.saturating_mul(m.cols)
                    ),
                ));
            }
            if let Some(i) = m.data.iter().position(|v| !v.is_finite()) {
                let at = ((i / m.cols) as u64, (i % m.cols) as u64);
                return Err(bad_value(name, at, not_finite(f64::from(m.data[i]))));
            }
        }
        Matrix::Csr(m) => {
            check_csr_structure(name, m, m.values.len())?;
            for r in 0..m.rows {
                let (cols, vals) = m.row(r).unwrap_or_default();
                if let Some(k) = vals.iter().position(|v| !v.is_finite()) {
                    let at = (r as u64, u64::from(cols[k]));
                    return Err(bad_value(name, at, not_finite(f64::from(vals[k]))));
                }
            }
            canonicalize(name, m)?;
        }
    }
    Ok(())
}

/// Sorts the column indices within each row and sums duplicates, in place (structure checked).
fn canonicalize(name: &str, m: &mut CsrMatrix) -> Result<()> {
    let sorted = m.indptr.windows(2).all(|w| {
        m.indices[w[0] as usize..w[1] as usize]
            .windows(2)
            .all(|p| p[0] < p[1])
    });
    if sorted {
        return Ok(());
    }
    let mut buf: Vec<(u32, f32)> = Vec::new();
    let (mut write, mut start) = (0usize, 0usize);
    for r in 0..m.rows {
        let end = m.indptr[r + 1] as usize;
        buf.clear();
        buf.extend(
            m.indices[start..end]
                .iter()
                .copied()
                .zip(m.values[start..end].iter().copied()),
        );
        buf.sort_by_key(|&(c, _)| c);
        let mut i = 0;
        while let Some(&(col, _)) = buf.get(i) {
            let mut sum = 0f64;
            while let Some(&(c, v)) = buf.get(i) {
                if c != col {
                    break;
                }
                sum += f64::from(v);
                i += 1;
            }
            let v = sum as f32;
            if !v.is_finite() {
                return Err(bad_value(
                    name,
                    (r as u64, u64::from(col)),
                    format!("sum of duplicate entries {sum:e} does not fit in f32"),
                ));
            }
            m.indices[write] = col;
            m.values[write] = v;
            write += 1;
        }
        start = end;
        m.indptr[r + 1] = write as u64;
    }
    m.indices.truncate(write);
    m.values.truncate(write);
    Ok(())
}

/// A bias (or any per-row) vector, converted to f32 and checked; `what` names it in messages
/// (e.g. `user bias`): `<array>: tensor 'user bias' row 4, column 0: value NaN is not finite`.
pub fn vector(what: &str, values: Values<'_>) -> Result<Vec<f32>> {
    values.to_f32(what, &|i| (i as u64, 0))
}

/// Turns given ids into the [`IdList`] the writer takes, refusing duplicates (and two strings
/// with the same 64-bit hash) with both positions. `what` names them (e.g. `user ids`).
fn id_list(what: &str, ids: ArrayIds) -> Result<IdList> {
    let duplicate = |index: usize, first: usize, message: String| {
        ExportError::Usage(format!(
            "{what}: {message} at index {index} (first at index {first})"
        ))
    };
    match ids {
        ArrayIds::Integers(ids) => {
            let mut seen = HashMap::with_capacity(ids.len());
            for (index, &id) in ids.iter().enumerate() {
                if let Some(first) = seen.insert(id, index) {
                    return Err(duplicate(index, first, format!("duplicate id {id}")));
                }
            }
            Ok(IdList {
                path: PathBuf::from(what),
                ids,
                kind: IdKind::Integer,
                strings: None,
            })
        }
        ArrayIds::Strings(strings) => {
            let mut seen: HashMap<u64, usize> = HashMap::with_capacity(strings.len());
            let mut ids = Vec::with_capacity(strings.len());
            for (index, name) in strings.iter().enumerate() {
                let id = pocketrec::string_id(name);
                if let Some(first) = seen.insert(id, index) {
                    let message = if strings[first] == *name {
                        format!("duplicate id {name:?}")
                    } else {
                        format!(
                            "string id {name:?} has the same 64-bit hash ({id:#018x}) as {:?}; \
                             rename one of them",
                            strings[first]
                        )
                    };
                    return Err(duplicate(index, first, message));
                }
                ids.push(id);
            }
            Ok(IdList {
                path: PathBuf::from(what),
                ids,
                kind: IdKind::StringHash,
                strings: Some(strings),
            })
        }
    }
}

/// Everything [`export_arrays`] needs: the two tables and the settings of
/// [`ExportOptions`] (same meaning, same defaults).
#[derive(Clone, Debug)]
pub struct ArrayExport {
    /// The user table.
    pub users: ArrayTable,
    /// The item table.
    pub items: ArrayTable,
    /// The `.prec` file to write.
    pub output: PathBuf,
    /// Value encoding for both tables.
    pub values: ValueEncoding,
    /// Constant added to every score.
    pub global_bias: f32,
    /// Dot or cosine.
    pub scoring: Scoring,
    /// Prune each table by magnitude to this density first.
    pub prune_density: Option<f64>,
    /// How to store the item table ([`ExportOptions::storage`]).
    pub storage: ItemStorage,
    /// How the column layout's posting lists name their rows.
    pub list_rows: ListRows,
    /// Write a fold-in section ([`ExportOptions::fold_in`]).
    pub fold_in: bool,
    /// The fold-in settings; `None` scales the defaults to the item table.
    pub fold_in_params: Option<FoldInParams>,
    /// Store the original strings of string ids.
    pub id_strings: bool,
}

impl ArrayExport {
    /// An export of `users` and `items` to `output` with [`ExportOptions::new`]'s defaults.
    pub fn new(users: ArrayTable, items: ArrayTable, output: impl Into<PathBuf>) -> Self {
        let defaults =
            ExportOptions::new(Source::file(ARRAY_PATH), Source::file(ARRAY_PATH), output);
        ArrayExport {
            users,
            items,
            output: defaults.output,
            values: defaults.values,
            global_bias: defaults.global_bias,
            scoring: defaults.scoring,
            prune_density: defaults.prune_density,
            storage: defaults.storage,
            list_rows: defaults.list_rows,
            fold_in: defaults.fold_in,
            fold_in_params: defaults.fold_in_params,
            id_strings: defaults.id_strings,
        }
    }
}

/// Writes in-memory tables as a `.prec` file; see the module docs.
pub fn export_arrays(export: ArrayExport) -> Result<ExportSummary> {
    export_arrays_reporting(export, &NoProgress)
}

/// [`export_arrays`], reporting the rows encoded to `progress`.
pub fn export_arrays_reporting(
    export: ArrayExport,
    progress: &dyn Progress,
) -> Result<ExportSummary> {
    let ArrayExport {
        users,
        items,
        output,
        values,
        global_bias,
        scoring,
        prune_density,
        storage,
        list_rows,
        fold_in,
        fold_in_params,
        id_strings,
    } = export;
    // The shared writer reads only the settings of the options; the placeholder sources are
    // never opened.
    let mut options =
        ExportOptions::new(Source::file(ARRAY_PATH), Source::file(ARRAY_PATH), output);
    options.values = values;
    options.global_bias = global_bias;
    options.scoring = scoring;
    options.prune_density = prune_density;
    options.storage = storage;
    options.list_rows = list_rows;
    options.fold_in = fold_in;
    options.fold_in_params = fold_in_params;
    options.id_strings = id_strings;
    check_settings(&options)?;
    let users = side(users, "user", prune_density)?;
    let items = side(items, "item", prune_density)?;
    write_model(&options, users, items, progress)
}

/// Checks one table and turns it into the writer's [`Side`]; `role` (`user`, `item`) names its
/// ids and biases in messages.
fn side(table: ArrayTable, role: &str, prune_density: Option<f64>) -> Result<Side<'static>> {
    let ArrayTable {
        name,
        source,
        mut matrix,
        ids,
        bias,
    } = table;
    check_matrix(&name, &mut matrix)?;
    let ids = match ids {
        Some(ids) => Ids::Given(id_list(&format!("{role} ids"), ids)?),
        None => Ids::RowNumbers,
    };
    let bias = match bias {
        Some(bias) => {
            let what = format!("{role} bias");
            if let Some(i) = bias.iter().position(|v| !v.is_finite()) {
                return Err(bad_value(
                    &what,
                    (i as u64, 0),
                    not_finite(f64::from(bias[i])),
                ));
            }
            Biases::Given(PathBuf::from(what), bias)
        }
        None => Biases::None,
    };
    let table = Table2d {
        path: Path::new(ARRAY_PATH).to_path_buf(),
        tensor: name,
        matrix,
    };
    let provenance = source.unwrap_or_else(|| provenance(&table));
    Ok(Side {
        table: prepare_table(table, provenance, prune_density)?,
        ids,
        bias,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(name: &str, rows: usize, cols: usize, f: impl Fn(usize) -> f32) -> ArrayTable {
        let data: Vec<f32> = (0..rows * cols).map(f).collect();
        ArrayTable::dense(name, rows, cols, Values::F32(&data)).unwrap()
    }

    #[test]
    fn same_bytes_as_the_file_export() {
        let dir = tempfile::tempdir().unwrap();
        let value = |i: usize| {
            if i.is_multiple_of(7) {
                (i as f32).sin()
            } else {
                0.0
            }
        };
        let (users, items) = (dense("users", 30, 8, value), dense("items", 50, 8, value));
        let table_data = |t: &ArrayTable| match &t.matrix {
            Matrix::Dense(m) => m.data.clone(),
            Matrix::Csr(_) => unreachable!(),
        };
        let users_npy = dir.path().join("users.npy");
        let items_npy = dir.path().join("items.npy");
        crate::input::write_npy_f32(&users_npy, &[30, 8], &table_data(&users)).unwrap();
        crate::input::write_npy_f32(&items_npy, &[50, 8], &table_data(&items)).unwrap();
        let from_files = dir.path().join("files.prec");
        let mut options = ExportOptions::new(
            Source::file(&users_npy),
            Source::file(&items_npy),
            &from_files,
        );
        options.values = ValueEncoding::F16;
        crate::export::export(&options).unwrap();

        let from_arrays = dir.path().join("arrays.prec");
        let mut users = users;
        let mut items = items;
        users.source = Some(format!("{} [users]", users_npy.display()));
        items.source = Some(format!("{} [items]", items_npy.display()));
        let mut export = ArrayExport::new(users, items, &from_arrays);
        export.values = ValueEncoding::F16;
        export_arrays(export).unwrap();
        assert_eq!(
            std::fs::read(&from_files).unwrap(),
            std::fs::read(&from_arrays).unwrap()
        );
    }

    #[test]
    fn nan_is_named_by_row_and_column() {
        let mut data = vec![0.5f64; 12];
        data[7] = f64::NAN;
        let e = ArrayTable::dense("users", 3, 4, Values::F64(&data)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "<array>: tensor 'users' row 1, column 3: value NaN is not finite"
        );
        data[7] = 1e300;
        let e = ArrayTable::dense("users", 3, 4, Values::F64(&data)).unwrap_err();
        assert!(
            e.to_string().contains("value 1e300 does not fit in f32"),
            "{e}"
        );
        // A matrix built directly is checked by the export.
        let mut m = DenseMatrix {
            rows: 2,
            cols: 2,
            data: vec![1.0, 2.0, f32::INFINITY, 0.0],
        };
        let e = check_matrix("items", &mut Matrix::Dense(m.clone())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "<array>: tensor 'items' row 1, column 0: value inf is not finite"
        );
        m.data.pop();
        assert!(check_matrix("items", &mut Matrix::Dense(m)).is_err());
    }

    #[test]
    fn csr_is_checked_and_canonicalized() {
        // Row 0: columns 2, 0, 2 (unsorted, a duplicate); row 1: empty; row 2: column 1.
        let t = ArrayTable::csr(
            "items",
            3,
            3,
            &[0, 3, 3, 4],
            &[2, 0, 2, 1],
            Values::F32(&[1.0, 2.0, 3.0, 4.0]),
        )
        .unwrap();
        let mut matrix = t.matrix;
        check_matrix("items", &mut matrix).unwrap();
        let Matrix::Csr(m) = matrix else {
            unreachable!()
        };
        assert_eq!(m.indptr, vec![0, 2, 2, 3]);
        assert_eq!(m.indices, vec![0, 2, 1]);
        assert_eq!(m.values, vec![2.0, 4.0, 4.0]);

        let e = ArrayTable::csr("items", 2, 3, &[0, 1, 2], &[0, 3], Values::F32(&[1.0, 1.0]))
            .unwrap_err();
        assert!(e.to_string().contains("outside 0..3"), "{e}");
        let e = ArrayTable::csr("items", 2, 3, &[0, 2, 1], &[0, 1], Values::F32(&[1.0, 1.0]))
            .unwrap_err();
        assert!(e.to_string().contains("row 1 is broken"), "{e}");
        let e = ArrayTable::csr(
            "items",
            2,
            3,
            &[0, 1, 2],
            &[0, 1],
            Values::F32(&[1.0, f32::NAN]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "<array>: tensor 'items' row 1, column 1: value NaN is not finite"
        );
    }

    #[test]
    fn ids_biases_and_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.prec");
        let users = || dense("users", 2, 4, |i| i as f32);
        let items = || dense("items", 3, 4, |i| i as f32 + 1.0);

        let mut u = users();
        u.ids = Some(ArrayIds::Integers(vec![7, 7]));
        let e = export_arrays(ArrayExport::new(u, items(), &out)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "user ids: duplicate id 7 at index 1 (first at index 0)"
        );

        let mut i = items();
        i.ids = Some(ArrayIds::Strings(vec!["a".into(), "b".into()]));
        let e = export_arrays(ArrayExport::new(users(), i, &out)).unwrap_err();
        assert!(e.to_string().contains("has 2 entries"), "{e}");

        let mut i = items();
        i.bias = Some(vec![0.0, f32::NAN, 1.0]);
        let e = export_arrays(ArrayExport::new(users(), i, &out)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "<array>: tensor 'item bias' row 1, column 0: value NaN is not finite"
        );

        let e = export_arrays(ArrayExport::new(
            users(),
            dense("items", 3, 5, |_| 1.0),
            &out,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("has 5 columns"), "{e}");
        assert!(!out.exists(), "nothing is written on error");

        let mut i = items();
        i.ids = Some(ArrayIds::Strings(vec!["x".into(), "y".into(), "z".into()]));
        i.bias = Some(vec![0.5, 0.25, 0.0]);
        let summary = export_arrays(ArrayExport::new(users(), i, &out)).unwrap();
        let model = crate::open_model(&out).unwrap();
        model.verify().unwrap();
        assert_eq!(summary.file_bytes, model.bytes().len() as u64);
        assert_eq!(model.property("source.users"), Some("<array> [users]"));
        let y = model.find_str(pocketrec::Role::Item, "y").unwrap();
        assert_eq!(model.id_str(pocketrec::Role::Item, y).unwrap(), Some("y"));
        let table = model.items().unwrap();
        assert_eq!(table.bias(table.find(y).unwrap()).unwrap(), 0.25);
    }
}
