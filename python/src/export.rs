//! `pocketrec._native.export`: tables from files (read by the exporter's readers, as the CLI
//! reads them) or from arrays (`pocketrec_export::arrays`), to a `.prec` file.
//!
//! The Python half hands every input over in one of a few plain shapes (tuples tagged with
//! what they are), having turned NumPy, scipy sparse and DLPack objects into C-contiguous
//! NumPy arrays:
//!
//! - a table: `("file", path, tensor or None)`, `("dense", array 2-D)` or
//!   `("csr", rows, cols, indptr int64, indices int64, data)`, arrays of float32, float64 or
//!   float16;
//! - ids: `None`, `("file", path)`, `("int", uint64 array)` or `("str", list of str)`;
//! - biases: `None`, `("file", path, tensor or None)` or `("array", float array 1-D)`.

use std::path::{Path, PathBuf};

use numpy::{
    PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pocketrec::builder::Layout;
use pocketrec::{IdKind, ListRows, Scoring, ValueEncoding};
use pocketrec_export::arrays::{self, ArrayExport, ArrayIds, ArrayTable, Values};
use pocketrec_export::export::{ExportOptions, ExportSummary, NO_USER_TABLE_SOURCE, Source};
use pocketrec_export::input::{DenseMatrix, Matrix};
use pocketrec_export::storage::{BoundsChoice, ItemStorage, Target, UserRows};
use pocketrec_export::{ExportError, ids, input};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::{export_error, usage};

/// A float array of one of the element types the exporter takes.
enum FloatArray<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
    F16(PyReadonlyArrayDyn<'py, half::f16>),
}

impl<'py> FloatArray<'py> {
    /// `obj` as a float32, float64 or float16 NumPy array.
    fn extract(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        let readonly = |e: numpy::BorrowError| usage(format!("{what}: {e}"));
        if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
            return Ok(FloatArray::F32(a.try_readonly().map_err(readonly)?));
        }
        if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
            return Ok(FloatArray::F64(a.try_readonly().map_err(readonly)?));
        }
        if let Ok(a) = obj.cast::<PyArrayDyn<half::f16>>() {
            return Ok(FloatArray::F16(a.try_readonly().map_err(readonly)?));
        }
        let dtype = obj
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| obj.get_type().to_string());
        Err(usage(format!(
            "{what} has dtype {dtype}; supported: float32, float64, float16"
        )))
    }

    fn shape(&self) -> Vec<usize> {
        match self {
            FloatArray::F32(a) => a.shape().to_vec(),
            FloatArray::F64(a) => a.shape().to_vec(),
            FloatArray::F16(a) => a.shape().to_vec(),
        }
    }

    /// The values in memory order (the array must be C-contiguous).
    fn values(&self, what: &str) -> PyResult<Values<'_>> {
        let contiguous = |_| usage(format!("{what} is not a C-contiguous array"));
        Ok(match self {
            FloatArray::F32(a) => Values::F32(a.as_slice().map_err(contiguous)?),
            FloatArray::F64(a) => Values::F64(a.as_slice().map_err(contiguous)?),
            FloatArray::F16(a) => Values::F16(a.as_slice().map_err(contiguous)?),
        })
    }
}

/// A table argument: a file (read later) or an array (already converted).
enum TableArg {
    File(Source),
    Array(ArrayTable),
}

/// Reads a tagged table tuple (see the module docs); arrays are converted and checked here.
fn table_arg(arg: &Bound<'_, PyTuple>, name: &str) -> PyResult<TableArg> {
    let tag: String = arg.get_item(0)?.extract()?;
    match tag.as_str() {
        "file" => {
            let path: PathBuf = arg.get_item(1)?.extract()?;
            let tensor: Option<String> = arg.get_item(2)?.extract()?;
            Ok(TableArg::File(Source { path, tensor }))
        }
        "dense" => {
            let array = FloatArray::extract(&arg.get_item(1)?, name)?;
            let (rows, cols) = match array.shape()[..] {
                [rows, cols] => (rows, cols),
                ref shape => {
                    return Err(usage(format!(
                        "{name}: expected a 2-D table (rows, columns), got shape {shape:?}"
                    )));
                }
            };
            let values = array.values(name)?;
            ArrayTable::dense(name, rows, cols, values)
                .map(TableArg::Array)
                .map_err(export_error)
        }
        "csr" => {
            let rows: usize = arg.get_item(1)?.extract()?;
            let cols: usize = arg.get_item(2)?.extract()?;
            let indptr: PyReadonlyArray1<'_, i64> = arg.get_item(3)?.extract()?;
            let indices: PyReadonlyArray1<'_, i64> = arg.get_item(4)?.extract()?;
            let data = FloatArray::extract(&arg.get_item(5)?, name)?;
            let contiguous = |_| usage(format!("{name}: sparse index arrays must be contiguous"));
            ArrayTable::csr(
                name,
                rows,
                cols,
                indptr.as_slice().map_err(contiguous)?,
                indices.as_slice().map_err(contiguous)?,
                data.values(name)?,
            )
            .map(TableArg::Array)
            .map_err(export_error)
        }
        _ => Err(usage(format!("unknown table kind {tag:?}"))),
    }
}

/// An ids argument.
enum IdsArg {
    File(PathBuf),
    Given(ArrayIds),
}

fn ids_arg(arg: Option<&Bound<'_, PyTuple>>) -> PyResult<Option<IdsArg>> {
    let Some(arg) = arg else { return Ok(None) };
    let tag: String = arg.get_item(0)?.extract()?;
    Ok(Some(match tag.as_str() {
        "file" => IdsArg::File(arg.get_item(1)?.extract()?),
        "int" => {
            let ids: PyReadonlyArray1<'_, u64> = arg.get_item(1)?.extract()?;
            IdsArg::Given(ArrayIds::Integers(ids.as_array().to_vec()))
        }
        "str" => IdsArg::Given(ArrayIds::Strings(arg.get_item(1)?.extract()?)),
        _ => return Err(usage(format!("unknown ids kind {tag:?}"))),
    }))
}

/// A bias argument.
enum BiasArg {
    File(Source),
    Given(Vec<f32>),
}

fn bias_arg(arg: Option<&Bound<'_, PyTuple>>, what: &str) -> PyResult<Option<BiasArg>> {
    let Some(arg) = arg else { return Ok(None) };
    let tag: String = arg.get_item(0)?.extract()?;
    Ok(Some(match tag.as_str() {
        "file" => BiasArg::File(Source {
            path: arg.get_item(1)?.extract()?,
            tensor: arg.get_item(2)?.extract()?,
        }),
        "array" => {
            let array = FloatArray::extract(&arg.get_item(1)?, what)?;
            if array.shape().len() != 1 {
                return Err(usage(format!(
                    "{what}: expected a vector, got shape {:?}",
                    array.shape()
                )));
            }
            BiasArg::Given(arrays::vector(what, array.values(what)?).map_err(export_error)?)
        }
        _ => return Err(usage(format!("unknown bias kind {tag:?}"))),
    }))
}

/// The given ids of an id file (the strings themselves, for string ids).
fn read_ids(path: &Path) -> Result<ArrayIds, ExportError> {
    let list = ids::read_id_file(path)?;
    Ok(match (list.kind, list.strings) {
        (IdKind::StringHash, Some(strings)) => ArrayIds::Strings(strings),
        _ => ArrayIds::Integers(list.ids),
    })
}

/// One side for the array path: the table (read if a file), its ids and biases.
fn array_side(
    table: TableArg,
    source: Option<String>,
    ids: Option<IdsArg>,
    bias: Option<BiasArg>,
) -> Result<ArrayTable, ExportError> {
    let mut table = match table {
        TableArg::Array(mut t) => {
            t.source = source;
            t
        }
        TableArg::File(file) => {
            let read = input::read_table(&file.path, file.tensor.as_deref())?;
            let provenance = format!("{} [{}]", read.path.display(), read.tensor);
            let mut t = ArrayTable::new(read.tensor, read.matrix);
            t.source = Some(source.unwrap_or(provenance));
            t
        }
    };
    table.ids = match ids {
        None => None,
        Some(IdsArg::Given(ids)) => Some(ids),
        Some(IdsArg::File(path)) => Some(read_ids(&path)?),
    };
    table.bias = match bias {
        None => None,
        Some(BiasArg::Given(bias)) => Some(bias),
        Some(BiasArg::File(s)) => Some(input::read_vector(&s.path, s.tensor.as_deref())?),
    };
    Ok(table)
}

/// Parses a name with `from_name`, or a usage error listing the choices.
fn named<T>(what: &str, name: &str, parse: fn(&str) -> Option<T>, choices: &str) -> PyResult<T> {
    parse(name).ok_or_else(|| usage(format!("{what} must be one of {choices}, got {name:?}")))
}

/// How to store the tables: `layout` (`auto`, `rows`, `both`, `columns`), `block_bounds`
/// (`auto`, `off`, or rows per block), sliced rows or not, user rows or not; the CLI's
/// `--layout`, `--block-bounds`, `--sliced-rows` and `--items-only`.
pub(crate) fn storage_arg(
    layout: &str,
    block_bounds: &str,
    sliced_rows: bool,
    items_only: bool,
) -> PyResult<ItemStorage> {
    let layout = match layout {
        "auto" => None,
        name => Some(named(
            "layout",
            name,
            Layout::from_name,
            "auto, rows, both, columns",
        )?),
    };
    let block_bounds = match block_bounds {
        "auto" => BoundsChoice::Auto,
        "off" | "none" => BoundsChoice::Off,
        n => match n.parse::<u32>() {
            Ok(rows) if rows.is_power_of_two() && (64..=4096).contains(&rows) => {
                BoundsChoice::Rows(rows)
            }
            _ => {
                return Err(usage(format!(
                    "block_bounds must be \"auto\", \"off\" or a power of two from 64 to 4096, got {n:?}"
                )));
            }
        },
    };
    Ok(ItemStorage {
        layout,
        sliced_rows,
        block_bounds,
        target: Target::Device,
        user_rows: if items_only {
            UserRows::FoldedIn
        } else {
            UserRows::Stored
        },
    })
}

/// The user side of an export of the item table alone (`users=None`, `items_only=True`): no
/// rows, as wide as `items`, recorded as the CLI records it; ids or biases for it are refused.
fn no_user_table(
    items: &ArrayTable,
    ids: Option<IdsArg>,
    bias: Option<BiasArg>,
) -> Result<ArrayTable, ExportError> {
    if ids.is_some() || bias.is_some() {
        return Err(ExportError::Usage(
            "user_ids and user_bias name the rows of a user table, and none was given".into(),
        ));
    }
    let mut table = ArrayTable::new(
        "user_embedding",
        Matrix::Dense(DenseMatrix {
            rows: 0,
            cols: items.matrix.cols(),
            data: Vec::new(),
        }),
    );
    table.source = Some(NO_USER_TABLE_SOURCE.into());
    Ok(table)
}

/// Writes a `.prec` file from two tables; returns (output, file bytes, dense f32 bytes).
#[pyfunction]
#[pyo3(signature = (
    users, items, output, *, user_name, item_name, values, user_ids, item_ids, layout,
    scoring, prune_density, user_bias, item_bias, global_bias, fold_in, source_users,
    source_items, list_rows, sliced_rows, id_strings, fold_in_params, block_bounds, items_only,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn export(
    py: Python<'_>,
    users: Option<&Bound<'_, PyTuple>>,
    items: &Bound<'_, PyTuple>,
    output: PathBuf,
    user_name: &str,
    item_name: &str,
    values: &str,
    user_ids: Option<&Bound<'_, PyTuple>>,
    item_ids: Option<&Bound<'_, PyTuple>>,
    layout: &str,
    scoring: &str,
    prune_density: Option<f64>,
    user_bias: Option<&Bound<'_, PyTuple>>,
    item_bias: Option<&Bound<'_, PyTuple>>,
    global_bias: f32,
    fold_in: bool,
    source_users: Option<String>,
    source_items: Option<String>,
    list_rows: &str,
    sliced_rows: bool,
    id_strings: bool,
    fold_in_params: Option<(f32, f32)>,
    block_bounds: &str,
    items_only: bool,
) -> PyResult<(PathBuf, u64, u64)> {
    let fold_in_params =
        fold_in_params.map(
            |(unobserved_weight, regularization)| pocketrec::FoldInParams {
                unobserved_weight,
                regularization,
            },
        );
    let values = named(
        "values",
        values,
        ValueEncoding::from_name,
        "f32, f16, bf16, i8, i4",
    )?;
    let storage = storage_arg(layout, block_bounds, sliced_rows, items_only)?;
    let scoring = named("scoring", scoring, Scoring::from_name, "dot, cosine")?;
    let list_rows = named("list_rows", list_rows, ListRows::from_name, "u16, bitmap")?;
    let users = users.map(|users| table_arg(users, user_name)).transpose()?;
    let items = table_arg(items, item_name)?;
    let user_ids = ids_arg(user_ids)?;
    let item_ids = ids_arg(item_ids)?;
    let user_bias = bias_arg(user_bias, "user bias")?;
    let item_bias = bias_arg(item_bias, "item bias")?;

    let summary: Result<ExportSummary, ExportError> = match (
        users,
        items,
        user_ids,
        item_ids,
        user_bias,
        item_bias,
        &source_users,
        &source_items,
    ) {
        // Everything a file and no provenance given: exactly the CLI's export.
        (
            users @ (None | Some(TableArg::File(_))),
            TableArg::File(items),
            user_ids @ (None | Some(IdsArg::File(_))),
            item_ids @ (None | Some(IdsArg::File(_))),
            user_bias @ (None | Some(BiasArg::File(_))),
            item_bias @ (None | Some(BiasArg::File(_))),
            None,
            None,
        ) => {
            let file = |ids: Option<IdsArg>| match ids {
                Some(IdsArg::File(path)) => Some(path),
                _ => None,
            };
            let bias = |b: Option<BiasArg>| match b {
                Some(BiasArg::File(s)) => Some(s),
                _ => None,
            };
            let mut options = match users {
                Some(TableArg::File(users)) => ExportOptions::new(users, items, output),
                _ => ExportOptions::items_only(items, output),
            };
            options.values = values;
            options.user_ids = file(user_ids);
            options.item_ids = file(item_ids);
            options.user_bias = bias(user_bias);
            options.item_bias = bias(item_bias);
            options.global_bias = global_bias;
            options.scoring = scoring;
            options.prune_density = prune_density;
            options.storage = storage;
            options.list_rows = list_rows;
            options.fold_in = fold_in;
            options.id_strings = id_strings;
            options.fold_in_params = fold_in_params;
            py.detach(|| pocketrec_export::export::export(&options))
        }
        (users, items, user_ids, item_ids, user_bias, item_bias, _, _) => py.detach(|| {
            let items = array_side(items, source_items, item_ids, item_bias)?;
            let users = match users {
                Some(users) => array_side(users, source_users, user_ids, user_bias)?,
                None => no_user_table(&items, user_ids, user_bias)?,
            };
            let mut export = ArrayExport::new(users, items, output);
            export.values = values;
            export.global_bias = global_bias;
            export.scoring = scoring;
            export.prune_density = prune_density;
            export.storage = storage;
            export.list_rows = list_rows;
            export.fold_in = fold_in;
            export.id_strings = id_strings;
            export.fold_in_params = fold_in_params;
            arrays::export_arrays(export)
        }),
    };
    let summary = summary.map_err(export_error)?;
    Ok((summary.output, summary.file_bytes, summary.dense_f32_bytes))
}
