//! Many queries at once (feature `std`): [`Model::recommend_batch`] answers a list of users on
//! several threads, each user exactly as [`Model::recommend`] answers them, and
//! [`Model::recommend_vector_batch`] a list of user vectors (folded-in users, say), each as
//! [`Model::recommend_vector`] answers it.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::model::Model;
use crate::scan::Retrieval;
use crate::score::{MAX_STACK_DIM, Query, user_vector};
use crate::table::Table;
use crate::topk::Recommendation;

/// Users a thread takes at a time: small enough to balance the threads, large enough that
/// the users a row scan answers together ([`Model::scan_rows_many`]) share the reading and
/// decoding of each batch of item rows (four lane groups of f32 users).
const USERS_PER_CLAIM: usize = 64;

/// A block of users' output slots: their recommendations and their counts.
type Block<'o> = (&'o mut [Recommendation], &'o mut [usize]);

/// Where a batch's user vectors come from.
#[derive(Clone, Copy)]
enum Users<'u> {
    /// The rows of these user ids.
    Ids(&'u [u64]),
    /// These vectors, one after another, each `dim` values (the item table's dimension).
    Vectors { values: &'u [f32], dim: usize },
}

impl Users<'_> {
    /// How many users.
    fn count(self) -> usize {
        match self {
            Users::Ids(ids) => ids.len(),
            Users::Vectors { values, dim } => values.len() / dim,
        }
    }
}

/// [`Users`] ready to read in a block: ids with the user table they are looked up in.
enum Rows<'u, 't> {
    Ids(&'u [u64], &'t Table<'t>),
    Vectors(&'u [f32]),
}

/// What [`Model::recommend_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Users the model has no row for: their count is 0.
    pub unknown_users: usize,
    /// Threads that ran.
    pub threads: usize,
}

impl<S: AsRef<[u8]> + Sync> Model<S> {
    /// Recommends `k` items to each of `users` (external ids) on `threads` threads (0: one per
    /// available core, at most one per 64 users): user `i`'s items go to
    /// `out[i * k..(i + 1) * k]`, best first, and their number to `counts[i]`, exactly as
    /// [`Model::recommend`] with `exclude(i)` would give them, whatever the thread count.
    /// A user the model has no row for gets `counts[i] = 0` and is counted in
    /// [`BatchSummary::unknown_users`]; any other error stops the batch and is returned.
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// use pocketrec::{Model, Recommendation};
    /// let model = Model::from_bytes(&bytes)?;
    /// let users = [0, 1, 2, 99];
    /// let (k, mut out, mut counts) = (2, vec![Recommendation::default(); 8], vec![0; 4]);
    /// let summary = model.recommend_batch(&users, k, |_| &[], 2, &mut out, &mut counts)?;
    /// assert_eq!(summary.unknown_users, 1);
    /// let mut one = [Recommendation::default(); 2];
    /// model.recommend(1, k, &[], &mut one)?;
    /// assert_eq!(&out[2..4], &one[..]);
    /// # Ok(()) }
    /// ```
    pub fn recommend_batch<'e>(
        &self,
        users: &[u64],
        k: usize,
        exclude: impl Fn(usize) -> &'e [u64] + Sync,
        threads: usize,
        out: &mut [Recommendation],
        counts: &mut [usize],
    ) -> Result<BatchSummary> {
        self.run_batch(Users::Ids(users), k, &exclude, threads, out, counts)
    }

    /// Recommends `k` items to each of the user vectors `vectors` (one after another, each
    /// of the model's dimension: `vectors.len() / dim` users, e.g. folded in with
    /// [`Model::fold_in`]) on `threads` threads (0: one per available core): user `i`'s items
    /// go to `out[i * k..(i + 1) * k]` and their number to `counts[i]`, exactly as
    /// [`Model::recommend_vector`] with `exclude(i)` would give them, whatever the thread
    /// count. Users answered by a row scan share the reading and decoding of the item rows,
    /// as in [`Model::recommend_batch`]. A vector with a value that is not finite stops the
    /// batch with the error `recommend_vector` gives for it.
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// # let bytes = pocketrec::builder::tiny_example_model()?;
    /// use pocketrec::{Model, Recommendation};
    /// let model = Model::from_bytes(&bytes)?;
    /// let vectors = [1.0, 0.0, 0.0, 0.0, /* user 1: */ 0.0, 0.5, 0.0, 1.0];
    /// let (k, mut out, mut counts) = (2, vec![Recommendation::default(); 4], vec![0; 2]);
    /// model.recommend_vector_batch(&vectors, k, |_| &[], 2, &mut out, &mut counts)?;
    /// let mut one = [Recommendation::default(); 2];
    /// let n = model.recommend_vector(&vectors[4..], k, &[], &mut one)?;
    /// assert_eq!((counts[1], &out[2..4]), (n, &one[..]));
    /// # Ok(()) }
    /// ```
    pub fn recommend_vector_batch<'e>(
        &self,
        vectors: &[f32],
        k: usize,
        exclude: impl Fn(usize) -> &'e [u64] + Sync,
        threads: usize,
        out: &mut [Recommendation],
        counts: &mut [usize],
    ) -> Result<BatchSummary> {
        let dim = self.items()?.dim();
        if dim == 0 || !vectors.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim as u64,
                actual: (vectors.len() % dim.max(1)) as u64,
            });
        }
        let users = Users::Vectors {
            values: vectors,
            dim,
        };
        self.run_batch(users, k, &exclude, threads, out, counts)
    }

    /// Answers `users` on `threads` threads (see [`Model::recommend_batch`]).
    fn run_batch<'e>(
        &self,
        users: Users<'_>,
        k: usize,
        exclude: &(impl Fn(usize) -> &'e [u64] + Sync),
        threads: usize,
        out: &mut [Recommendation],
        counts: &mut [usize],
    ) -> Result<BatchSummary> {
        let n = users.count();
        let needed = n.saturating_mul(k);
        if out.len() < needed {
            return Err(Error::BufferTooSmall {
                needed: needed as u64,
                actual: out.len() as u64,
            });
        }
        if counts.len() < n {
            return Err(Error::BufferTooSmall {
                needed: n as u64,
                actual: counts.len() as u64,
            });
        }
        let available = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = match threads {
            0 => available,
            n => n,
        }
        .min(n.div_ceil(USERS_PER_CLAIM))
        .max(1);
        // Work is claimed in blocks of users; each block's slices of `out` and `counts` are
        // handed to whichever thread claims it, so every user's answer lands in its own place.
        let blocks: Vec<Block<'_>> = if k == 0 {
            counts[..n]
                .chunks_mut(USERS_PER_CLAIM)
                .map(|c| (&mut [][..], c))
                .collect()
        } else {
            out[..needed]
                .chunks_mut(USERS_PER_CLAIM * k)
                .zip(counts[..n].chunks_mut(USERS_PER_CLAIM))
                .collect()
        };
        let blocks: Vec<std::sync::Mutex<Option<Block<'_>>>> = blocks
            .into_iter()
            .map(|b| std::sync::Mutex::new(Some(b)))
            .collect();
        let next = AtomicUsize::new(0);
        let run = || -> Result<usize> {
            let mut unknown = 0;
            loop {
                let block = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = blocks.get(block) else {
                    return Ok(unknown);
                };
                let Some((out, counts)) = slot.lock().ok().and_then(|mut s| s.take()) else {
                    continue;
                };
                unknown +=
                    self.answer_block(users, block * USERS_PER_CLAIM, k, exclude, out, counts)?;
            }
        };
        let results: Vec<Result<usize>> = if threads == 1 {
            vec![run()]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads).map(|_| scope.spawn(run)).collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or(Err(Error::InvalidQuery {
                            index: None,
                            reason: "a batch thread panicked",
                        }))
                    })
                    .collect()
            })
        };
        let mut unknown_users = 0;
        for r in results {
            unknown_users += r?;
        }
        Ok(BatchSummary {
            unknown_users,
            threads,
        })
    }

    /// Answers users `first..first + counts.len()` of `users` into `out` (`k` slots each) and
    /// `counts`; returns how many the model has no row for. Users answered by a row scan are
    /// scanned together ([`Model::scan_rows_many`]), the others one by one; the answers are
    /// those of [`Model::recommend`] either way.
    fn answer_block<'e>(
        &self,
        users: Users<'_>,
        first: usize,
        k: usize,
        exclude: &(impl Fn(usize) -> &'e [u64] + Sync),
        out: &mut [Recommendation],
        counts: &mut [usize],
    ) -> Result<usize> {
        let items = self.items()?;
        // The user table, read only for ids (a file may have none).
        let user_table;
        let (rows, dim) = match users {
            Users::Ids(ids) => {
                user_table = self.users()?;
                let dim = user_table.dim();
                if dim > MAX_STACK_DIM {
                    // As `recommend`, which decodes the user's row on the stack.
                    return Err(Error::DimensionTooLarge {
                        dim: dim as u64,
                        max: MAX_STACK_DIM as u64,
                    });
                }
                (Rows::Ids(ids, &user_table), dim)
            }
            Users::Vectors { values, dim } => (Rows::Vectors(values), dim),
        };
        let mut vectors = vec![0.0f32; dim * counts.len()];
        let mut biases = vec![0.0f32; counts.len()];
        let mut unknown = 0;
        let mut grouped = Vec::with_capacity(counts.len());
        for (j, (count, vector)) in counts.iter_mut().zip(vectors.chunks_mut(dim)).enumerate() {
            *count = 0;
            let read = match &rows {
                Rows::Ids(ids, table) => user_vector(table, ids[first + j], vector),
                Rows::Vectors(values) => {
                    let given = &values[(first + j) * dim..(first + j + 1) * dim];
                    self.vector_query(&items, given).map(|query| {
                        vector.copy_from_slice(query.vector);
                        0.0
                    })
                }
            };
            match read {
                // An unknown id is counted; a vector's errors stop the batch.
                Ok(bias) => biases[j] = bias,
                Err(Error::IdNotFound { .. }) if matches!(rows, Rows::Ids(..)) => {
                    unknown += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            if k == 0 {
                continue;
            }
            let query = Query::new(vector, biases[j]);
            if self.scans_rows(&items, &query) {
                grouped.push(j);
            } else {
                let slots = out.get_mut(j * k..(j + 1) * k).unwrap_or(&mut []);
                *count = self.scan(&query, k, exclude(first + j), slots, Retrieval::Auto)?;
            }
        }
        if grouped.is_empty() {
            return Ok(unknown);
        }
        let queries: Vec<Query<'_>> = grouped
            .iter()
            .map(|&j| Query::new(&vectors[j * dim..(j + 1) * dim], biases[j]))
            .collect();
        let excludes: Vec<&[u64]> = grouped.iter().map(|&j| exclude(first + j)).collect();
        let mut tops: Vec<&mut [Recommendation]> = Vec::with_capacity(grouped.len());
        let mut group_counts = vec![0usize; grouped.len()];
        let mut rest = out;
        let mut at = 0;
        for &j in &grouped {
            let (_, tail) = rest.split_at_mut((j - at) * k);
            let (slots, tail) = tail.split_at_mut(k);
            tops.push(slots);
            rest = tail;
            at = j + 1;
        }
        self.scan_rows_many(&items, &queries, &excludes, &mut tops, &mut group_counts)?;
        for (&j, &n) in grouped.iter().zip(&group_counts) {
            counts[j] = n;
        }
        Ok(unknown)
    }
}
