//! Scoring and retrieval: `score`, `score_candidates`, `recommend`, `recommend_vector`.
//!
//! The score of user `u` and item `i` is, in f32 and in this order:
//!
//! ```text
//! sim   = dot(u, v_i)                               (scoring "dot")
//!       = dot(u, v_i) / (|u| * |v_i|), 0 if either norm is 0   (scoring "cosine")
//! score = ((sim + user_bias) + item_bias) + global_bias
//! ```
//!
//! where `dot` sums `u[c] * v_i[c]` over the item's non-zeros in increasing column order
//! starting from 0, and `|x|` is the square root of the same kind of sum of squares. With f32
//! values this is bit-for-bit the dense f32 computation, so `recommend` returns exactly the
//! brute-force f32 top-k (ties broken by the lower item row).

use crate::error::{Error, Result};
use crate::format::{Role, Scoring};
use crate::model::Model;
use crate::row::{Row, sqrt};
use crate::scan::{Retrieval, ScanStats};
use crate::table::Table;
use crate::topk::Recommendation;

/// Largest dimension for which the id-based calls ([`Model::recommend`], [`Model::score`],
/// [`Model::score_candidates`]) decode the user row on the stack (`4 * MAX_STACK_DIM` bytes).
/// Larger models work through the `*_vector` calls with a caller-given user vector.
pub const MAX_STACK_DIM: usize = 512;

/// The user side of a query: a dense vector, its norm and its bias.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query<'q> {
    pub vector: &'q [f32],
    pub norm: f32,
    pub bias: f32,
}

impl<'q> Query<'q> {
    pub(crate) fn new(vector: &'q [f32], bias: f32) -> Self {
        let mut sq = 0.0f32;
        for &x in vector {
            sq += x * x;
        }
        Query {
            vector,
            norm: sqrt(sq),
            bias,
        }
    }
}

/// Scores one item row for a query (the formula in the module docs).
#[inline]
pub(crate) fn score_row(
    scoring: Scoring,
    query: &Query<'_>,
    row: &Row<'_>,
    item_bias: f32,
    global_bias: f32,
) -> f32 {
    let sim = match scoring {
        Scoring::Dot => row.dot_unchecked_len(query.vector),
        Scoring::Cosine => {
            let (dot, norm) = row.dot_and_norm(query.vector);
            if query.norm == 0.0 || norm == 0.0 {
                0.0
            } else {
                dot / (query.norm * norm)
            }
        }
    };
    ((sim + query.bias) + item_bias) + global_bias
}

/// Decodes user `user`'s row of `users` into `dense` (the table's dimension long) and
/// returns their bias.
pub(crate) fn user_vector(users: &Table<'_>, user: u64, dense: &mut [f32]) -> Result<f32> {
    let row_index = users.find(user)?;
    let bias = users.bias(row_index)?;
    users.decode_row(row_index, dense)?;
    Ok(bias)
}

impl<S: AsRef<[u8]>> Model<S> {
    /// Decodes user `user`'s row on the stack and runs `f` with it as a query. Never inlined,
    /// so that the row buffer and the decoding's locals stay in one frame the caller does
    /// not carry (inlined into the Cortex-M4F firmware's `main`, they took 592 bytes more
    /// stack there).
    #[inline(never)]
    fn with_user<R>(&self, user: u64, f: impl FnOnce(&Query<'_>) -> Result<R>) -> Result<R> {
        let users = self.users()?;
        let mut buffer = [0.0f32; MAX_STACK_DIM];
        let dense = buffer
            .get_mut(..users.dim())
            .ok_or(Error::DimensionTooLarge {
                dim: users.dim() as u64,
                max: MAX_STACK_DIM as u64,
            })?;
        let bias = user_vector(&users, user, dense)?;
        f(&Query::new(dense, bias))
    }

    /// Checks a caller-given user vector against the item table.
    pub(crate) fn vector_query<'q>(
        &self,
        items: &Table<'_>,
        user_vector: &'q [f32],
    ) -> Result<Query<'q>> {
        if user_vector.len() != items.dim() {
            return Err(Error::DimensionMismatch {
                expected: items.dim() as u64,
                actual: user_vector.len() as u64,
            });
        }
        if let Some(column) = user_vector.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidInput {
                role: Some(Role::User),
                row: None,
                column: Some(column as u64),
                reason: "user vector value is not finite",
            });
        }
        Ok(Query::new(user_vector, 0.0))
    }

    /// Scores the item at row `index` for `query`.
    #[inline]
    pub(crate) fn score_item(
        &self,
        items: &Table<'_>,
        query: &Query<'_>,
        index: usize,
    ) -> Result<f32> {
        let score = if let Some(sliced) = items.sliced() {
            // Sliced rows: the score as the sliced scan computes it.
            let (dot, norm) = sliced.dot_and_norm(index, query.vector)?;
            let sim = match self.scoring() {
                Scoring::Dot => dot,
                Scoring::Cosine if query.norm == 0.0 || norm == 0.0 => 0.0,
                Scoring::Cosine => dot / (query.norm * norm),
            };
            ((sim + query.bias) + items.bias(index)?) + self.global_bias()
        } else {
            self.score_row_or_columns(items, query, index)?
        };
        if score.is_finite() {
            Ok(score)
        } else {
            Err(Error::NonFiniteScore {
                item_row: index as u64,
            })
        }
    }

    /// [`Self::score_item`] for a table of row records, or of a column layout alone.
    fn score_row_or_columns(
        &self,
        items: &Table<'_>,
        query: &Query<'_>,
        index: usize,
    ) -> Result<f32> {
        Ok(match items.columns().filter(|_| !items.has_rows()) {
            // No row records: the score as the column scan computes it.
            Some(columns) => {
                let dot = columns.dot_row(index, query.vector)?;
                let sim = match self.scoring() {
                    Scoring::Dot => dot,
                    Scoring::Cosine => {
                        let norm = columns.norm(index)?;
                        if query.norm == 0.0 || norm == 0.0 {
                            0.0
                        } else {
                            dot / (query.norm * norm)
                        }
                    }
                };
                ((sim + query.bias) + items.bias(index)?) + self.global_bias()
            }
            None => score_row(
                self.scoring(),
                query,
                &items.row(index)?,
                items.bias(index)?,
                self.global_bias(),
            ),
        })
    }

    /// The score of user `user` for item `item` (external ids).
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// let s = model.score(0, 1)?;
    /// # let _ = s;
    /// # Ok(()) }
    /// ```
    pub fn score(&self, user: u64, item: u64) -> Result<f32> {
        let mut out = [0.0f32];
        self.score_candidates(user, &[item], &mut out)?;
        Ok(out[0])
    }

    /// Scores the items `items` (external ids) for user `user` into `out[..items.len()]`.
    pub fn score_candidates(&self, user: u64, items: &[u64], out: &mut [f32]) -> Result<()> {
        self.with_user(user, |query| self.score_query(query, items, out))
    }

    /// Scores the items `items` for a caller-given dense user vector (no user bias).
    pub fn score_candidates_vector(
        &self,
        user_vector: &[f32],
        items: &[u64],
        out: &mut [f32],
    ) -> Result<()> {
        let table = self.items()?;
        let query = self.vector_query(&table, user_vector)?;
        self.score_query(&query, items, out)
    }

    fn score_query(&self, query: &Query<'_>, items: &[u64], out: &mut [f32]) -> Result<()> {
        let available = out.len() as u64;
        let out = out.get_mut(..items.len()).ok_or(Error::BufferTooSmall {
            needed: items.len() as u64,
            actual: available,
        })?;
        let table = self.items()?;
        if query.vector.len() != table.dim() {
            return Err(Error::DimensionMismatch {
                expected: table.dim() as u64,
                actual: query.vector.len() as u64,
            });
        }
        for (slot, &item) in out.iter_mut().zip(items) {
            *slot = self.score_item(&table, query, table.find(item)?)?;
        }
        Ok(())
    }

    /// The `k` best items for user `user` (external id), best first, into `out[..k]`; returns
    /// how many were written (fewer than `k` when the catalogue minus `exclude` is smaller).
    ///
    /// Scans the whole item table; items whose external id is in `exclude` (e.g. the user's
    /// history) are skipped, and ids in `exclude` that are not in the table are ignored. Ties
    /// go to the lower item row. Allocates nothing.
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// use pocketrec::{Model, Recommendation};
    /// let model = Model::from_bytes(&bytes)?;
    /// let mut out = [Recommendation::default(); 3];
    /// let n = model.recommend(1, 3, &[0], &mut out)?;
    /// assert!(out[..n].iter().all(|r| r.id != 0));
    /// assert!(out[..n].windows(2).all(|w| w[0].score >= w[1].score));
    /// # Ok(()) }
    /// ```
    pub fn recommend(
        &self,
        user: u64,
        k: usize,
        exclude: &[u64],
        out: &mut [Recommendation],
    ) -> Result<usize> {
        self.recommend_with(user, k, exclude, out, Retrieval::Auto)
    }

    /// [`Model::recommend`], reading the item table the way `retrieval` says (the answer is
    /// the same either way; only the work differs).
    pub fn recommend_with(
        &self,
        user: u64,
        k: usize,
        exclude: &[u64],
        out: &mut [Recommendation],
        retrieval: Retrieval,
    ) -> Result<usize> {
        self.with_user(user, |query| self.scan(query, k, exclude, out, retrieval))
    }

    /// [`Model::recommend`] for a caller-given dense user vector of the model's dimension
    /// (no user bias applies).
    pub fn recommend_vector(
        &self,
        user_vector: &[f32],
        k: usize,
        exclude: &[u64],
        out: &mut [Recommendation],
    ) -> Result<usize> {
        self.recommend_vector_with(user_vector, k, exclude, out, Retrieval::Auto)
    }

    /// [`Model::recommend_vector`], also saying what the column scan did: how many blocks
    /// of the item table it scored and how many it skipped by their block bounds (for
    /// benchmarks; the answer is the one `recommend_vector` gives).
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// let mut out = [pocketrec::Recommendation::default(); 2];
    /// let (n, stats) = model.recommend_vector_stats(&[1.0, 0.0, 0.0, 0.0], 2, &[], &mut out)?;
    /// assert_eq!(n, 2);
    /// assert_eq!(stats.blocks, 0); // a row scan: the tiny model has no column layout
    /// # Ok(()) }
    /// ```
    pub fn recommend_vector_stats(
        &self,
        user_vector: &[f32],
        k: usize,
        exclude: &[u64],
        out: &mut [Recommendation],
    ) -> Result<(usize, ScanStats)> {
        let items = self.items()?;
        let query = self.vector_query(&items, user_vector)?;
        let mut stats = ScanStats::default();
        let n = self.scan_counting(&query, k, exclude, out, Retrieval::Auto, &mut stats, true)?;
        Ok((n, stats))
    }

    /// [`Model::recommend_vector`], reading the item table the way `retrieval` says.
    pub fn recommend_vector_with(
        &self,
        user_vector: &[f32],
        k: usize,
        exclude: &[u64],
        out: &mut [Recommendation],
        retrieval: Retrieval,
    ) -> Result<usize> {
        let items = self.items()?;
        let query = self.vector_query(&items, user_vector)?;
        self.scan(&query, k, exclude, out, retrieval)
    }
}
