//! Ranking metrics during training, on the in-memory tables (the shipped file is measured by
//! `pocketrec eval`, through the runtime). Same protocol as `eval`: full ranking over all
//! items, the user's training items excluded, Recall@k = hits / |test items|, NDCG@k with binary
//! relevance and a log2 discount, users without test items skipped.

use rayon::prelude::*;

use crate::data::UserItems;
use crate::kernels::dot;

/// Recall@k and NDCG@k averaged over users.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// The cut-off.
    pub k: usize,
    /// Users evaluated (those with at least one test item).
    pub users: usize,
    /// Mean Recall@k.
    pub recall: f64,
    /// Mean NDCG@k.
    pub ndcg: f64,
}

/// Recall and NDCG of one user's ranked list `ranked` (best first) against the sorted test
/// items `test`, with cut-off `k`. `test` must not be empty.
pub fn user_metrics<T: Ord + Copy>(ranked: &[T], test: &[T], k: usize) -> (f64, f64) {
    let mut hits = 0usize;
    let mut dcg = 0.0f64;
    for (rank, item) in ranked.iter().take(k).enumerate() {
        if test.binary_search(item).is_ok() {
            hits += 1;
            dcg += 1.0 / ((rank + 2) as f64).log2();
        }
    }
    let ideal: f64 = (0..test.len().min(k))
        .map(|rank| 1.0 / ((rank + 2) as f64).log2())
        .sum();
    (hits as f64 / test.len() as f64, dcg / ideal)
}

/// The `k` best items (descending score, ties to the lower row) among `scores`, skipping the
/// rows in `exclude` (sorted).
pub fn top_k(scores: &[f32], exclude: &[u32], k: usize, out: &mut Vec<(f32, u32)>) {
    out.clear();
    let better = |a: &(f32, u32), b: &(f32, u32)| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
    let mut ex = exclude.iter().peekable();
    for (i, &s) in scores.iter().enumerate() {
        let i = i as u32;
        while ex.peek().is_some_and(|&&e| e < i) {
            ex.next();
        }
        if ex.peek() == Some(&&i) {
            continue;
        }
        let cand = (s, i);
        if out.len() == k {
            if k == 0 || !better(&cand, &out[k - 1]) {
                continue;
            }
            out.pop();
        }
        let at = out.partition_point(|e| better(e, &cand));
        out.insert(at, cand);
    }
}

/// Evaluates the dense tables `users` and `items` (row-major, width `dim`) on `users_to_eval`
/// (user rows with test items), in parallel over blocks of users.
pub fn evaluate(
    users: &[f32],
    items: &[f32],
    dim: usize,
    train: &UserItems,
    test: &UserItems,
    users_to_eval: &[u32],
    k: usize,
) -> Metrics {
    let n_items = items.len() / dim;
    const BLOCK: usize = 8;
    let per_block: Vec<(f64, f64)> = users_to_eval
        .par_chunks(BLOCK)
        .map(|block| {
            let mut scores = vec![0.0f32; block.len() * n_items];
            for (i, item) in items.chunks_exact(dim).enumerate() {
                for (b, &u) in block.iter().enumerate() {
                    let urow = &users[u as usize * dim..(u as usize + 1) * dim];
                    scores[b * n_items + i] = dot(urow, item);
                }
            }
            let mut top = Vec::with_capacity(k + 1);
            let mut sums = (0.0, 0.0);
            for (b, &u) in block.iter().enumerate() {
                top_k(
                    &scores[b * n_items..(b + 1) * n_items],
                    train.items(u as usize),
                    k,
                    &mut top,
                );
                let ranked: Vec<u32> = top.iter().map(|&(_, i)| i).collect();
                let (r, n) = user_metrics(&ranked, test.items(u as usize), k);
                sums.0 += r;
                sums.1 += n;
            }
            sums
        })
        .collect();
    let (recall, ndcg) = per_block
        .iter()
        .fold((0.0, 0.0), |acc, s| (acc.0 + s.0, acc.1 + s.1));
    let n = users_to_eval.len().max(1) as f64;
    Metrics {
        k,
        users: users_to_eval.len(),
        recall: recall / n,
        ndcg: ndcg / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_a_hand_ranked_list() {
        // Hits at ranks 1 and 3 of 3 test items, k = 5.
        let (r, n) = user_metrics(&[7, 1, 9, 4, 5], &[2, 7, 9], 5);
        assert!((r - 2.0 / 3.0).abs() < 1e-12);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((n - dcg / idcg).abs() < 1e-12);
    }

    #[test]
    fn top_k_excludes_and_breaks_ties_to_the_lower_row() {
        let mut out = Vec::new();
        top_k(&[0.5, 0.9, 0.9, 0.1, 0.7], &[1], 3, &mut out);
        assert_eq!(out, vec![(0.9, 2), (0.7, 4), (0.5, 0)]);
        top_k(&[0.5, 0.9], &[], 5, &mut out);
        assert_eq!(out, vec![(0.9, 1), (0.5, 0)]);
    }

    #[test]
    fn perfect_tables_score_one() {
        // 2 users, 3 items, dim 2: user 0 likes item 2, user 1 likes item 0.
        let users = [0.0, 1.0, 1.0, 0.0];
        let items = [1.0, 0.0, 0.2, 0.2, 0.0, 1.0];
        let train = UserItems::from_pairs(2, &[(0, 1), (1, 1)]);
        let test = UserItems::from_pairs(2, &[(0, 2), (1, 0)]);
        let m = evaluate(&users, &items, 2, &train, &test, &[0, 1], 1);
        assert_eq!(m.users, 2);
        assert_eq!((m.recall, m.ndcg), (1.0, 1.0));
    }
}
