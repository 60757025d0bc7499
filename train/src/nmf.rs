//! Non-negative matrix factorisation of the binary interaction matrix, for SparseRec's mask
//! initialisation: `R ≈ W Hᵀ` with `W >= 0` (users x d) and `H >= 0` (items x d), by Lee and
//! Seung's multiplicative updates for the Frobenius loss:
//!
//! ```text
//! W <- W * (R H) / (W (HᵀH) + eps)
//! H <- H * (Rᵀ W) / (H (WᵀW) + eps)
//! ```
//!
//! `R` is sparse, so one iteration costs `O(nnz(R) d + (users + items) d²)`. Rows are
//! independent within a half-step and run in parallel; the result does not depend on the
//! number of threads.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::UserItems;
use crate::kernels::axpy;
use crate::sample::mix;

/// The two non-negative factors, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Factors {
    /// Width.
    pub dim: usize,
    /// `users x dim`.
    pub users: Vec<f32>,
    /// `items x dim`.
    pub items: Vec<f32>,
}

const EPS: f32 = 1e-9;

/// `out[r] = sum over r's neighbours n of factor[n]`, rows in parallel.
fn sparse_product(
    indptr: &[usize],
    neighbours: &[u32],
    factor: &[f32],
    dim: usize,
    out: &mut [f32],
) {
    out.par_chunks_mut(dim).enumerate().for_each(|(r, row)| {
        row.fill(0.0);
        for &n in &neighbours[indptr[r]..indptr[r + 1]] {
            let f = &factor[n as usize * dim..(n as usize + 1) * dim];
            for (o, &x) in row.iter_mut().zip(f) {
                *o += x;
            }
        }
    });
}

/// Rows per block of the Gram matrix's partial sums (fixed, so that the sum's order does not
/// depend on the thread count).
const GRAM_BLOCK: usize = 1024;

/// `FᵀF` (dim x dim) of a row-major factor: partial sums over fixed blocks of rows in parallel,
/// added in block order.
fn gram(factor: &[f32], dim: usize) -> Vec<f32> {
    let partials: Vec<Vec<f64>> = factor
        .par_chunks(GRAM_BLOCK * dim)
        .map(|block| {
            let mut g = vec![0.0f32; dim * dim];
            for row in block.chunks_exact(dim) {
                for (a, &ra) in row.iter().enumerate() {
                    if ra == 0.0 {
                        continue;
                    }
                    axpy(&mut g[a * dim..(a + 1) * dim], ra, row);
                }
            }
            g.into_iter().map(f64::from).collect()
        })
        .collect();
    let mut total = vec![0.0f64; dim * dim];
    for p in &partials {
        for (t, &x) in total.iter_mut().zip(p) {
            *t += x;
        }
    }
    total.into_iter().map(|x| x as f32).collect()
}

/// One multiplicative half-step: `f <- f * num / (f G + eps)`.
fn update(factor: &mut [f32], numerator: &[f32], g: &[f32], dim: usize) {
    factor
        .par_chunks_mut(dim)
        .zip(numerator.par_chunks(dim))
        .for_each_init(
            || vec![0.0f32; dim],
            |den, (row, num)| {
                den.fill(0.0);
                for (b, &x) in row.iter().enumerate() {
                    if x == 0.0 {
                        continue;
                    }
                    axpy(den, x, &g[b * dim..(b + 1) * dim]);
                }
                for c in 0..dim {
                    row[c] = row[c] * num[c] / (den[c] + EPS);
                }
            },
        );
}

/// Factorises `train` (users x `items`) at width `dim` with `iterations` rounds of updates,
/// from a uniform random start drawn from `seed`.
pub fn factorise(
    train: &UserItems,
    items: usize,
    dim: usize,
    iterations: usize,
    seed: u64,
) -> Factors {
    let users = train.users();
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x006e_6d66));
    let mut w: Vec<f32> = (0..users * dim)
        .map(|_| rng.random_range(0.01f32..1.0))
        .collect();
    let mut h: Vec<f32> = (0..items * dim)
        .map(|_| rng.random_range(0.01f32..1.0))
        .collect();

    // CSR of R and of Rᵀ.
    let mut user_ptr = vec![0usize; users + 1];
    let mut user_items = Vec::with_capacity(train.len());
    for u in 0..users {
        user_items.extend_from_slice(train.items(u));
        user_ptr[u + 1] = user_items.len();
    }
    let degrees = train.item_degrees(items);
    let mut item_ptr = vec![0usize; items + 1];
    for i in 0..items {
        item_ptr[i + 1] = item_ptr[i] + degrees[i] as usize;
    }
    let mut next = item_ptr.clone();
    let mut item_users = vec![0u32; train.len()];
    for (u, i) in train.pairs() {
        item_users[next[i as usize]] = u;
        next[i as usize] += 1;
    }

    let mut num_w = vec![0.0f32; users * dim];
    let mut num_h = vec![0.0f32; items * dim];
    for _ in 0..iterations {
        sparse_product(&user_ptr, &user_items, &h, dim, &mut num_w);
        let hh = gram(&h, dim);
        update(&mut w, &num_w, &hh, dim);
        sparse_product(&item_ptr, &item_users, &w, dim, &mut num_h);
        let ww = gram(&w, dim);
        update(&mut h, &num_h, &ww, dim);
    }
    Factors {
        dim,
        users: w,
        items: h,
    }
}

/// `|R - W Hᵀ|²` over all cells (for tests and diagnostics; `O(users * items * dim)`).
pub fn residual(train: &UserItems, items: usize, f: &Factors) -> f64 {
    let mut total = 0.0f64;
    for u in 0..train.users() {
        let wu = &f.users[u * f.dim..(u + 1) * f.dim];
        for i in 0..items {
            let hi = &f.items[i * f.dim..(i + 1) * f.dim];
            let p: f32 = wu.iter().zip(hi).map(|(a, b)| a * b).sum();
            let r = if train.contains(u, i as u32) {
                1.0
            } else {
                0.0
            };
            total += f64::from(r - p).powi(2);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_block_structure_and_lowers_the_residual() {
        // Two disjoint communities: users 0..6 like items 0..5, users 6..12 like items 5..10.
        let mut pairs = Vec::new();
        for u in 0..12u32 {
            let range = if u < 6 { 0..5 } else { 5..10 };
            for i in range {
                if (u + i) % 4 != 0 {
                    pairs.push((u, i));
                }
            }
        }
        let train = UserItems::from_pairs(12, &pairs);
        let start = factorise(&train, 10, 2, 0, 3);
        let fitted = factorise(&train, 10, 2, 200, 3);
        assert!(residual(&train, 10, &fitted) < 0.5 * residual(&train, 10, &start));
        assert!(fitted.users.iter().chain(&fitted.items).all(|&x| x >= 0.0));
        // Each community loads on its own factor.
        let main = |row: &[f32]| if row[0] > row[1] { 0 } else { 1 };
        let a = main(&fitted.users[0..2]);
        let b = main(&fitted.users[22..24]);
        assert_ne!(a, b);
        assert_eq!(main(&fitted.items[0..2]), a);
        assert_eq!(main(&fitted.items[18..20]), b);
    }

    #[test]
    fn same_result_on_any_thread_count() {
        let pairs: Vec<(u32, u32)> = (0..40u32).map(|k| (k % 9, (k * 7) % 13)).collect();
        let train = UserItems::from_pairs(9, &pairs);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| factorise(&train, 13, 4, 10, 1))
        };
        assert_eq!(run(1), run(2));
    }
}
