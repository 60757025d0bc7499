//! # pocketrec-python
//!
//! The native half of the Python package `pocketrec` (module `pocketrec._native`, built by
//! maturin from `python/pyproject.toml`): a thin PyO3 layer over the runtime (`pocketrec`),
//! the exporter (`pocketrec-export`) and the trainer (`pocketrec-train`). It does no work of its
//! own beyond moving arrays across: the checks, the file format, scoring and training are the
//! libraries'. The Python half (`python/pocketrec/__init__.py`) turns what users hold (NumPy,
//! scipy sparse, DLPack, lists of ids) into the plain arrays these functions take, and is the
//! documented API; this module is private to it. Like the other front ends it depends on the
//! libraries and nothing depends on it.

mod errors;
mod export;
mod model;
mod train;

use pyo3::prelude::*;

/// `pocketrec._native`: the functions and the class the Python package wraps.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(export::export, m)?)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(train::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(string_id, m)?)?;
    m.add_function(wrap_pyfunction!(simd_kernels, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// The 64-bit id a string id is stored as (FNV-1a 64, `pocketrec::string_id`).
#[pyfunction]
fn string_id(s: &str) -> u64 {
    pocketrec::string_id(s)
}

/// The SIMD kernels the runtime picked on this CPU (`avx512`, `avx2+f16c`, `neon` or `scalar`).
#[pyfunction]
fn simd_kernels() -> String {
    pocketrec::simd_kernels().to_string()
}
