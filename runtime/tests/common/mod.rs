//! Shared test helpers: random sparse tables and a brute-force reference for scoring.
#![allow(dead_code)]

use pocketrec::builder::{Layout, ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{IdKind, ListRows, Role, Scoring, ValueEncoding};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A standard normal sample (Box-Muller), so tests need no extra crate.
pub fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// A random `rows x dim` table with about `density` non-zeros, normal values, some empty rows.
pub fn random_dense(rng: &mut impl Rng, rows: usize, dim: usize, density: f64) -> Vec<f32> {
    let mut data = vec![0.0f32; rows * dim];
    for r in 0..rows {
        if rng.random_bool(0.1) {
            continue; // an all-zero row
        }
        for c in 0..dim {
            if rng.random_bool(density) {
                data[r * dim + c] = normal(rng);
            }
        }
    }
    data
}

/// The inputs of a random model, kept to compute reference answers.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub dim: usize,
    pub users: Vec<f32>,
    pub items: Vec<f32>,
    pub user_ids: Option<Vec<u64>>,
    pub item_ids: Option<Vec<u64>>,
    pub user_bias: Option<Vec<f32>>,
    pub item_bias: Option<Vec<f32>>,
    pub global_bias: f32,
    pub scoring: Scoring,
    pub values: ValueEncoding,
    pub layout: Layout,
    /// How posting lists name their rows.
    pub list_rows: ListRows,
    /// Store the tables' rows sliced (format 1.4).
    pub sliced: bool,
    /// The item table's row order.
    pub item_order: pocketrec::builder::RowOrder,
    /// The item table's block bounds (rows per block).
    pub block_bounds: Option<u32>,
    /// Bitmap rows keep one offset per row (format 1.3) instead of one per block of 16
    /// (format 1.7).
    pub per_row_offsets: bool,
}

impl Inputs {
    pub fn random(seed: u64, users: usize, items: usize, dim: usize, density: f64) -> Inputs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ids = |rng: &mut ChaCha8Rng, n: usize| -> Option<Vec<u64>> {
            if rng.random_bool(0.5) {
                return None;
            }
            let mut ids: Vec<u64> = Vec::with_capacity(n);
            let wide = rng.random_bool(0.5);
            while ids.len() < n {
                let id = if wide {
                    rng.random::<u64>()
                } else {
                    rng.random_range(0..(4 * n as u64 + 4))
                };
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Some(ids)
        };
        let user_ids = ids(&mut rng, users);
        let item_ids = ids(&mut rng, items);
        let bias = |rng: &mut ChaCha8Rng, n: usize| {
            rng.random_bool(0.3)
                .then(|| (0..n).map(|_| normal(rng) * 0.1).collect())
        };
        Inputs {
            dim,
            users: random_dense(&mut rng, users, dim, density),
            items: random_dense(&mut rng, items, dim, density),
            user_ids,
            item_ids,
            user_bias: bias(&mut rng, users),
            item_bias: bias(&mut rng, items),
            global_bias: if rng.random_bool(0.3) { 0.25 } else { 0.0 },
            scoring: if rng.random_bool(0.5) {
                Scoring::Dot
            } else {
                Scoring::Cosine
            },
            values: ValueEncoding::F32,
            layout: Layout::Rows,
            list_rows: ListRows::U16,
            sliced: false,
            item_order: pocketrec::builder::RowOrder::ById,
            block_bounds: None,
            per_row_offsets: false,
        }
    }

    pub fn n_users(&self) -> usize {
        self.users.len() / self.dim
    }

    pub fn n_items(&self) -> usize {
        self.items.len() / self.dim
    }

    pub fn build(&self) -> Vec<u8> {
        self.try_build().unwrap()
    }

    #[allow(dead_code)] // not every test file refuses a build
    pub fn try_build(&self) -> pocketrec::Result<Vec<u8>> {
        let table =
            |name: &str, role, data: &[f32], ids: &Option<Vec<u64>>, bias: &Option<Vec<f32>>| {
                let m = SparseMatrix::from_dense(data.len() / self.dim, self.dim, data).unwrap();
                let mut t = TableSpec::new(name, role, m)
                    .values(self.values)
                    .layout(self.layout);
                t = t
                    .list_rows(self.list_rows)
                    .with_sliced_rows(self.sliced)
                    .with_per_row_offsets(self.per_row_offsets);
                if let Some(ids) = ids {
                    t = t.ids(ids.clone(), IdKind::Integer);
                }
                if let Some(b) = bias {
                    t = t.bias(b.clone());
                }
                t
            };
        ModelBuilder::new()
            .scoring(self.scoring)
            .global_bias(self.global_bias)
            .table(table(
                "user_embedding",
                Role::User,
                &self.users,
                &self.user_ids,
                &self.user_bias,
            ))
            .table({
                let mut t = table(
                    "item_embedding",
                    Role::Item,
                    &self.items,
                    &self.item_ids,
                    &self.item_bias,
                )
                .row_order(self.item_order);
                if let Some(block_rows) = self.block_bounds {
                    t = t.with_block_bounds(block_rows);
                }
                t
            })
            .property("created_by", "tests")
            .build()
    }

    pub fn user_id(&self, row: usize) -> u64 {
        self.user_ids.as_ref().map_or(row as u64, |ids| ids[row])
    }

    pub fn item_id(&self, row: usize) -> u64 {
        self.item_ids.as_ref().map_or(row as u64, |ids| ids[row])
    }

    pub fn user_row(&self, row: usize) -> &[f32] {
        &self.users[row * self.dim..(row + 1) * self.dim]
    }

    pub fn item_row(&self, row: usize) -> &[f32] {
        &self.items[row * self.dim..(row + 1) * self.dim]
    }

    /// Item rows in the file's order: sorted by id when ids are given.
    pub fn item_file_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.n_items()).collect();
        order.sort_by_key(|&r| self.item_id(r));
        order
    }

    /// The dense f32 score, computed the obvious way over every column.
    pub fn reference_score(&self, user: &[f32], user_bias: f32, item_row: usize) -> f32 {
        let item = self.item_row(item_row);
        let mut dot = 0.0f32;
        for c in 0..self.dim {
            dot += user[c] * item[c];
        }
        let sim = match self.scoring {
            Scoring::Dot => dot,
            Scoring::Cosine => {
                let (mut nu, mut nv) = (0.0f32, 0.0f32);
                for c in 0..self.dim {
                    nu += user[c] * user[c];
                    nv += item[c] * item[c];
                }
                let (nu, nv) = (nu.sqrt(), nv.sqrt());
                if nu == 0.0 || nv == 0.0 {
                    0.0
                } else {
                    dot / (nu * nv)
                }
            }
        };
        let item_bias = self.item_bias.as_ref().map_or(0.0, |b| b[item_row]);
        ((sim + user_bias) + item_bias) + self.global_bias
    }

    /// Brute-force top-k: every item scored densely, sorted by score then file position.
    pub fn reference_top_k(
        &self,
        user: &[f32],
        user_bias: f32,
        k: usize,
        exclude: &[u64],
    ) -> Vec<(u64, f32)> {
        let mut scored: Vec<(usize, u64, f32)> = self
            .item_file_order()
            .into_iter()
            .enumerate()
            .filter(|&(_, r)| !exclude.contains(&self.item_id(r)))
            .map(|(pos, r)| {
                (
                    pos,
                    self.item_id(r),
                    self.reference_score(user, user_bias, r),
                )
            })
            .collect();
        scored.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap().then(a.0.cmp(&b.0)));
        scored
            .into_iter()
            .take(k)
            .map(|(_, id, s)| (id, s))
            .collect()
    }
}

/// |stored - original| allowed by each value encoding's documented bound.
pub fn error_bound(encoding: ValueEncoding, original: f32, row_max_abs: f32) -> f32 {
    match encoding {
        ValueEncoding::F32 => 0.0,
        ValueEncoding::F16 => (original.abs() * 2f32.powi(-11)).max(2f32.powi(-25)),
        ValueEncoding::Bf16 => original.abs() * 2f32.powi(-8),
        // The scale is max|v| / 127 rounded up to an f16 (relative step 2^-10, absolute 2^-24
        // among subnormals); the error is at most half the scale.
        ValueEncoding::I8 => {
            (row_max_abs / 127.0 + 2f32.powi(-24)) * (1.0 + 2f32.powi(-10)) * 0.5 * (1.0 + 1e-5)
        }
        // Odd levels `scale × (2q + 1)`: within the scale of the nearest level, the scale at
        // most max|v| / 15 rounded up to an f16; the writer may pick a scale down to 0.6 times
        // that (least squared error), which clips a value to 15 × scale.
        ValueEncoding::I4 => {
            let largest = (row_max_abs / 15.0 + 2f32.powi(-24)) * (1.0 + 2f32.powi(-10));
            let smallest = 0.6 * row_max_abs / 15.0;
            (largest * (1.0 + 1e-5)).max(original.abs() - 15.0 * smallest * (1.0 - 1e-5))
        }
    }
}

/// The top `k` for `user` the way `how` says: (id, row, score bits).
pub fn top(
    model: &pocketrec::Model<&[u8]>,
    user: &[f32],
    k: usize,
    exclude: &[u64],
    how: pocketrec::Retrieval,
) -> Vec<(u64, usize, u32)> {
    let mut out = vec![pocketrec::Recommendation::default(); k];
    let n = model
        .recommend_vector_with(user, k, exclude, &mut out, how)
        .unwrap();
    out[..n]
        .iter()
        .map(|r| (r.id, r.index, r.score.to_bits()))
        .collect()
}

/// The byte range of the last section of `kind` (the item table's: it is written after the
/// user table's).
pub fn section(bytes: &[u8], kind: pocketrec::SectionKind) -> (usize, usize) {
    let s = pocketrec::Model::from_bytes(bytes)
        .unwrap()
        .sections()
        .filter(|s| s.kind == kind)
        .last()
        .unwrap();
    (s.offset as usize, (s.offset + s.length) as usize)
}
