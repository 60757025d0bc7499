//! `pocketrec._native.Model`: a memory-mapped `.prec` file and the runtime's queries on it.
//!
//! Ids here are the stored 64-bit ids (integers, or the hashes of string ids); the Python
//! wrapper turns strings into ids and back. Queries that take time (`recommend_batch`,
//! `verify`, `embeddings`) run with the GIL released.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pocketrec::{IdKind, Mmap, Prior, Recommendation, Role};
use pyo3::prelude::*;

use crate::errors::{Kind, export_error, model_error, raise, usage};

/// Users per unit of work in `recommend_batch` (threads take blocks as they finish).
const BATCH_BLOCK: usize = 64;

/// What `recommend_batch` returns: ids and scores, each `users x k`.
type Batch<'py> = (Bound<'py, PyArray2<u64>>, Bound<'py, PyArray2<f32>>);

/// The table role named `name`: `user` or `item` (`users`, `items` too).
fn role(name: &str) -> PyResult<Role> {
    match name {
        "user" | "users" => Ok(Role::User),
        "item" | "items" => Ok(Role::Item),
        _ => Err(usage(format!(
            "role must be 'user' or 'item', got {name:?}"
        ))),
    }
}

/// A `.prec` model, memory-mapped read-only.
#[pyclass(frozen, module = "pocketrec._native", name = "Model")]
pub(crate) struct Model {
    inner: pocketrec::Model<Mmap>,
    path: PathBuf,
}

impl Model {
    fn err(&self, e: pocketrec::Error) -> PyErr {
        model_error(&self.path, e)
    }

    fn table(&self, role_name: &str) -> PyResult<pocketrec::Table<'_>> {
        self.inner.table(role(role_name)?).map_err(|e| self.err(e))
    }

    /// Top-k for a query already resolved to ids, as two vectors (best first).
    fn top(
        &self,
        run: impl FnOnce(&mut [Recommendation]) -> pocketrec::Result<usize>,
        k: usize,
    ) -> PyResult<(Vec<u64>, Vec<f32>)> {
        let mut out = vec![Recommendation::default(); k];
        let n = run(&mut out).map_err(|e| self.err(e))?;
        Ok(out[..n].iter().map(|r| (r.id, r.score)).unzip())
    }
}

#[pymethods]
impl Model {
    /// Opens (memory-maps) the model at `path` and checks its header, sections and metadata.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py
            .detach(|| pocketrec_export::open_model(&path))
            .map_err(export_error)?;
        Ok(Model { inner, path })
    }

    /// The file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The embedding dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim().unwrap_or(0)
    }

    /// `dot` or `cosine`.
    #[getter]
    fn scoring(&self) -> String {
        self.inner.scoring().name().to_string()
    }

    /// The constant added to every score.
    #[getter]
    fn global_bias(&self) -> f32 {
        self.inner.global_bias()
    }

    /// The file size in bytes.
    #[getter]
    fn file_bytes(&self) -> usize {
        self.inner.bytes().len()
    }

    /// Rows of the table with role `role`.
    fn rows(&self, role: &str) -> PyResult<usize> {
        Ok(self.table(role)?.rows())
    }

    /// `integer` or `string`: the kind of the table's ids.
    fn id_kind(&self, role: &str) -> PyResult<&'static str> {
        Ok(match self.table(role)?.id_kind() {
            IdKind::Integer => "integer",
            IdKind::StringHash => "string",
        })
    }

    /// Whether the table stores the original strings of its string ids.
    fn has_id_strings(&self, role_name: &str) -> PyResult<bool> {
        let strings = self
            .inner
            .id_strings(role(role_name)?)
            .map_err(|e| self.err(e))?;
        Ok(strings.is_some())
    }

    /// The free-form properties, as (key, value) pairs in file order.
    fn properties(&self) -> Vec<(String, String)> {
        self.inner
            .properties()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The table's ids in row order (the hashes, for string ids).
    fn ids<'py>(&self, py: Python<'py>, role: &str) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let table = self.table(role)?;
        let ids = (0..table.rows())
            .map(|r| table.id(r))
            .collect::<pocketrec::Result<Vec<u64>>>()
            .map_err(|e| self.err(e))?;
        Ok(PyArray1::from_vec(py, ids))
    }

    /// The id of string id `s`, checked against the stored string when the table has them.
    fn find_str(&self, role_name: &str, s: &str) -> PyResult<u64> {
        let role = role(role_name)?;
        self.inner.find_str(role, s).map_err(|e| match e {
            pocketrec::Error::IdNotFound { .. } => raise(
                Kind::Value,
                format!("{}: no {role} with id {s:?}", self.path.display()),
            ),
            e => self.err(e),
        })
    }

    /// The ids of string ids `strings` (see `find_str`).
    fn find_strs<'py>(
        &self,
        py: Python<'py>,
        role: &str,
        strings: Vec<String>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let ids = strings
            .iter()
            .map(|s| self.find_str(role, s))
            .collect::<PyResult<Vec<u64>>>()?;
        Ok(PyArray1::from_vec(py, ids))
    }

    /// The original strings of `ids` (`None` where the table has no string for an id, or the
    /// id is not in it, e.g. the padding `2**64 - 1` of `recommend_batch`).
    fn strings(
        &self,
        role_name: &str,
        ids: PyReadonlyArray1<'_, u64>,
    ) -> PyResult<Vec<Option<String>>> {
        let role = role(role_name)?;
        let table = self.inner.table(role).map_err(|e| self.err(e))?;
        let Some(strings) = self.inner.id_strings(role).map_err(|e| self.err(e))? else {
            return Ok(vec![None; ids.len()?]);
        };
        let ids = ids.as_array();
        Ok(ids
            .iter()
            .map(|&id| {
                let row = table.find(id).ok()?;
                strings.get(row).ok().map(str::to_string)
            })
            .collect())
    }

    /// The `k` best items for user `user`, skipping `exclude`: (ids, scores), best first.
    fn recommend(
        &self,
        py: Python<'_>,
        user: u64,
        k: usize,
        exclude: Vec<u64>,
    ) -> PyResult<(Vec<u64>, Vec<f32>)> {
        py.detach(|| {
            let mut out = vec![Recommendation::default(); k];
            self.inner
                .recommend(user, k, &exclude, &mut out)
                .map(|n| out[..n].iter().map(|r| (r.id, r.score)).unzip())
        })
        .map_err(|e| self.err(e))
    }

    /// The `k` best items for a dense user vector (no user bias), skipping `exclude`.
    fn recommend_vector(
        &self,
        vector: PyReadonlyArray1<'_, f32>,
        k: usize,
        exclude: Vec<u64>,
    ) -> PyResult<(Vec<u64>, Vec<f32>)> {
        let vector = vector.as_array().to_vec();
        self.top(
            |out| self.inner.recommend_vector(&vector, k, &exclude, out),
            k,
        )
    }

    /// The `k` best items for each of `users`, on `threads` threads (0: one per core) with
    /// the GIL released: (ids, scores), each `len(users) x k`, rows padded with id `2**64 - 1`
    /// and score NaN where fewer than `k` items exist.
    fn recommend_batch<'py>(
        &self,
        py: Python<'py>,
        users: PyReadonlyArray1<'py, u64>,
        k: usize,
        threads: usize,
    ) -> PyResult<Batch<'py>> {
        let users = users.as_array().to_vec();
        let n = users.len();
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
            t => t,
        }
        .clamp(1, n.div_ceil(BATCH_BLOCK).max(1));
        let mut ids = vec![u64::MAX; n * k];
        let mut scores = vec![f32::NAN; n * k];
        if k > 0 && n > 0 {
            let failed =
                py.detach(|| batch(&self.inner, &users, k, threads, &mut ids, &mut scores));
            if let Some((position, e)) = failed {
                return Err(raise(
                    Kind::Value,
                    format!("{}: {e} (users[{position}])", self.path.display()),
                ));
            }
        }
        batch_arrays(py, (n, k), ids, scores)
    }

    /// The `k` best items for each row of `vectors` (`users x dim`, the model's dimension; no
    /// user bias), on `threads` threads (0: one per core) with the GIL released: (ids,
    /// scores) as `recommend_batch` gives them, each row as `recommend_vector` answers it.
    fn recommend_vector_batch<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        k: usize,
        threads: usize,
    ) -> PyResult<Batch<'py>> {
        let array = vectors.as_array();
        let (n, dim) = array.dim();
        let model_dim = self.inner.items().map_err(|e| self.err(e))?.dim();
        if n > 0 && dim != model_dim {
            return Err(usage(format!(
                "vectors have {dim} columns, the model's dimension is {model_dim}"
            )));
        }
        // Row-major, whatever the array's strides.
        let values: Vec<f32> = array.iter().copied().collect();
        let mut ids = vec![u64::MAX; n * k];
        let mut scores = vec![f32::NAN; n * k];
        if k > 0 && n > 0 {
            let mut out = vec![Recommendation::default(); n * k];
            let mut counts = vec![0usize; n];
            py.detach(|| {
                self.inner.recommend_vector_batch(
                    &values,
                    k,
                    |_| &[],
                    threads,
                    &mut out,
                    &mut counts,
                )
            })
            .map_err(|e| self.err(e))?;
            for (user, &count) in counts.iter().enumerate() {
                let answer = &out[user * k..user * k + count];
                for (j, r) in answer.iter().enumerate() {
                    ids[user * k + j] = r.id;
                    scores[user * k + j] = r.score;
                }
            }
        }
        batch_arrays(py, (n, k), ids, scores)
    }

    /// The scores of `items` for user `user`.
    fn score_candidates<'py>(
        &self,
        py: Python<'py>,
        user: u64,
        items: Vec<u64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let mut out = vec![0f32; items.len()];
        self.inner
            .score_candidates(user, &items, &mut out)
            .map_err(|e| self.err(e))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// The scores of `items` for a dense user vector (no user bias).
    fn score_candidates_vector<'py>(
        &self,
        py: Python<'py>,
        vector: PyReadonlyArray1<'py, f32>,
        items: Vec<u64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let vector = vector.as_array().to_vec();
        let mut out = vec![0f32; items.len()];
        self.inner
            .score_candidates_vector(&vector, &items, &mut out)
            .map_err(|e| self.err(e))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// The stored vector of row id `id` of the table with role `role`, dense.
    fn embedding<'py>(
        &self,
        py: Python<'py>,
        role_name: &str,
        id: u64,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let table = self.table(role_name)?;
        let mut out = vec![0f32; table.dim()];
        table
            .find(id)
            .and_then(|row| table.decode_row(row, &mut out))
            .map_err(|e| self.err(e))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// The whole table with role `role`, dense, rows in id order (`ids(role)`).
    fn embeddings<'py>(
        &self,
        py: Python<'py>,
        role_name: &str,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let table = self.table(role_name)?;
        let (rows, dim) = (table.rows(), table.dim());
        let data = py
            .detach(|| {
                let mut data = vec![0f32; rows * dim];
                if dim > 0 {
                    for (r, out) in data.chunks_mut(dim).enumerate() {
                        table.decode_row(r, out)?;
                    }
                }
                Ok(data)
            })
            .map_err(|e| self.err(e))?;
        let data = Array2::from_shape_vec((rows, dim), data).map_err(|e| usage(e.to_string()))?;
        Ok(data.into_pyarray(py))
    }

    /// Folds a user in from `items` (with `weights`, or all 1 when empty) and an optional
    /// prior vector of precision `precision`: (vector, items used, items unknown).
    fn fold_in<'py>(
        &self,
        py: Python<'py>,
        items: Vec<u64>,
        weights: Vec<f32>,
        prior: Option<PyReadonlyArray1<'py, f32>>,
        precision: f32,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, usize, usize)> {
        let prior_vector = prior.map(|p| p.as_array().to_vec());
        let prior = prior_vector
            .as_deref()
            .map(|vector| Prior { vector, precision });
        let mut out = vec![0f32; self.dim()];
        let summary = self
            .inner
            .fold_in(&items, &weights, prior, &mut out)
            .map_err(|e| self.err(e))?;
        Ok((PyArray1::from_vec(py, out), summary.used, summary.unknown))
    }

    /// What `pocketrec inspect --json` prints, as a JSON string.
    fn inspect(&self) -> PyResult<String> {
        let report = pocketrec_export::inspect::report(&self.inner);
        serde_json::to_string(&report).map_err(|e| usage(e.to_string()))
    }

    /// Checks every byte of the file (checksums, rows, ids, values); raises on the first
    /// problem.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.verify()).map_err(|e| self.err(e))
    }
}

/// A batch's ids and scores (row-major, `shape`) as the two arrays Python gets.
fn batch_arrays(
    py: Python<'_>,
    shape: (usize, usize),
    ids: Vec<u64>,
    scores: Vec<f32>,
) -> PyResult<Batch<'_>> {
    let ids = Array2::from_shape_vec(shape, ids).map_err(|e| usage(e.to_string()))?;
    let scores = Array2::from_shape_vec(shape, scores).map_err(|e| usage(e.to_string()))?;
    Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
}

/// Runs `recommend` for every user in `users` on `threads` threads, writing row `u` of the
/// `len(users) x k` outputs; returns the first failure (its position in `users` and the error).
fn batch(
    model: &pocketrec::Model<Mmap>,
    users: &[u64],
    k: usize,
    threads: usize,
    ids: &mut [u64],
    scores: &mut [f32],
) -> Option<(usize, pocketrec::Error)> {
    let blocks = users
        .chunks(BATCH_BLOCK)
        .zip(ids.chunks_mut(BATCH_BLOCK * k))
        .zip(scores.chunks_mut(BATCH_BLOCK * k))
        .enumerate();
    let blocks = Mutex::new(blocks);
    let stop = AtomicBool::new(false);
    let work = || -> Result<(), (usize, pocketrec::Error)> {
        let mut out = vec![Recommendation::default(); k];
        while !stop.load(Ordering::Relaxed) {
            let next = blocks.lock().map(|mut b| b.next()).unwrap_or(None);
            let Some((b, ((users, ids), scores))) = next else {
                return Ok(());
            };
            let rows = ids.chunks_mut(k).zip(scores.chunks_mut(k));
            for (j, (&user, (ids, scores))) in users.iter().zip(rows).enumerate() {
                let n = model.recommend(user, k, &[], &mut out).map_err(|e| {
                    stop.store(true, Ordering::Relaxed);
                    (b * BATCH_BLOCK + j, e)
                })?;
                for (r, (id, score)) in out[..n].iter().zip(ids.iter_mut().zip(scores)) {
                    *id = r.id;
                    *score = r.score;
                }
            }
        }
        Ok(())
    };
    let results: Vec<Result<(), (usize, pocketrec::Error)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut results = vec![work()];
        results.extend(workers.into_iter().map(|w| {
            w.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        results
    });
    results
        .into_iter()
        .filter_map(Result::err)
        .min_by_key(|(position, _)| *position)
}
