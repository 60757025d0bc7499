//! Masks at a fixed parameter budget: initial masks, and the prune-and-regrow update.
//!
//! The budget is one number for the user and item tables together: `density x (users + items)
//! x dim` active weights. It is first spread over rows (every row gets the same share, the
//! remainder going to random rows), and each row's columns are then picked at random (DSL) or
//! by the size of the row's non-negative factors (SparseRec's NMF initialisation).
//!
//! An update with fraction `f` drops the `f * budget` active weights of smallest magnitude and
//! regrows as many inactive weights with the largest score, where the score of an inactive
//! weight is the magnitude of its gradient (summed over the interval since the last update, or
//! from the last batch only), divided by the row's gradient norm to the power `balance` (see
//! [`RegrowConfig`]). Both selections run over the two tables together. A row never drops
//! below `floor` active weights. Regrown weights start at zero with zero Adam moments. Ties are
//! broken by table, row and column, so updates are deterministic.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::Table;
use crate::sample::mix;

/// Per-row counts of active weights that add up to `budget`: `budget / rows` each, and one more
/// for `budget % rows` rows drawn at random. Rows hold at most `dim`.
pub fn uniform_counts(rows: usize, dim: usize, budget: usize, seed: u64) -> Vec<usize> {
    if rows == 0 {
        return Vec::new();
    }
    let budget = budget.min(rows * dim);
    let base = budget / rows;
    let mut counts = vec![base; rows];
    let extra = budget - base * rows;
    let mut order: Vec<usize> = (0..rows).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x636f_756e_7473));
    for k in 0..extra {
        let pick = rng.random_range(k..rows);
        order.swap(k, pick);
        counts[order[k]] += 1;
    }
    counts
}

/// Per-row counts for one table that add up to `budget`, proportional to `weights` and at most
/// `dim` each (rows over `dim` are capped and the rest shared among the others), rounded
/// cumulatively so that the total is exact.
pub fn weighted_counts(weights: &[f64], dim: usize, budget: usize) -> Vec<usize> {
    let rows = weights.len();
    let budget = budget.min(rows * dim);
    let mut target = vec![0.0f64; rows];
    let mut capped = vec![false; rows];
    let mut left = budget as f64;
    loop {
        let free: f64 = (0..rows).filter(|&r| !capped[r]).map(|r| weights[r]).sum();
        if free <= 0.0 {
            break;
        }
        let mut changed = false;
        for r in 0..rows {
            if !capped[r] {
                target[r] = left * weights[r] / free;
                if target[r] > dim as f64 {
                    capped[r] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
        left = budget as f64 - capped.iter().filter(|&&c| c).count() as f64 * dim as f64;
        for r in 0..rows {
            if capped[r] {
                target[r] = dim as f64;
            }
        }
    }
    let mut counts = Vec::with_capacity(rows);
    let mut sum = 0.0f64;
    let mut given = 0usize;
    for t in target {
        sum += t;
        let upto = (sum.round() as usize).min(budget);
        counts.push((upto - given).min(dim));
        given += counts[counts.len() - 1];
    }
    counts
}

/// A mask with `counts[r]` random columns active in row `r`.
pub fn random_mask(dim: usize, counts: &[usize], seed: u64) -> Vec<u8> {
    let mut mask = vec![0u8; counts.len() * dim];
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x7261_6e64));
    let mut columns: Vec<usize> = (0..dim).collect();
    for (r, &n) in counts.iter().enumerate() {
        for k in 0..n.min(dim) {
            let pick = rng.random_range(k..dim);
            columns.swap(k, pick);
            mask[r * dim + columns[k]] = 1;
        }
    }
    mask
}

/// A mask with, in row `r`, the `counts[r]` columns of largest `scores` (ties to the lower
/// column). `scores` is `rows x dim`.
pub fn top_mask(dim: usize, counts: &[usize], scores: &[f32]) -> Vec<u8> {
    let mut mask = vec![0u8; counts.len() * dim];
    let mut columns: Vec<usize> = Vec::with_capacity(dim);
    for (r, &n) in counts.iter().enumerate() {
        let row = &scores[r * dim..(r + 1) * dim];
        columns.clear();
        columns.extend(0..dim);
        columns.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for &c in &columns[..n.min(dim)] {
            mask[r * dim + c] = 1;
        }
    }
    mask
}

/// Which gradient regrowth ranks inactive weights by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regrow {
    /// The gradient summed over the whole interval since the last update (SparseRec).
    Accumulated,
    /// The gradient of the last batch before the update (DSL, RigL).
    Gradient,
}

impl Regrow {
    /// Parses `accumulated` or `gradient`.
    pub fn from_name(name: &str) -> Option<Regrow> {
        match name {
            "accumulated" => Some(Regrow::Accumulated),
            "gradient" => Some(Regrow::Gradient),
            _ => None,
        }
    }

    /// The name [`Regrow::from_name`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Regrow::Accumulated => "accumulated",
            Regrow::Gradient => "gradient",
        }
    }
}

/// Constraints and scoring of a prune-and-regrow update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegrowConfig {
    /// Fewest active weights a row keeps through pruning.
    pub floor: usize,
    /// Regrowth score of an inactive weight: `|g| / |g_row|^balance`, where `g_row` is the
    /// row's gradient over the interval. 0 ranks raw gradients (rows seen often win); 1 ranks
    /// each weight by its share of its row's gradient (every row competes equally).
    pub balance: f32,
    /// Pruning score of an active weight: `|w| / |w_row|^prune_balance` (0: raw magnitude).
    pub prune_balance: f32,
    /// Prune and regrow inside each row: row `r` moves its share `k * nnz_r / nnz` of the `k`
    /// weights (rounded so the shares add up), so every row keeps its count of active weights.
    pub per_row: bool,
}

impl Default for RegrowConfig {
    fn default() -> Self {
        RegrowConfig {
            floor: 0,
            balance: 1.0,
            prune_balance: 0.0,
            per_row: false,
        }
    }
}

/// Zeroes weight `k` of `table` with its Adam state, and sets its mask bit to `on`.
fn reset(table: &mut Table, k: usize, on: bool) {
    table.w[k] = 0.0;
    table.m[k] = 0.0;
    table.v[k] = 0.0;
    if let Some(count) = table.count.as_mut() {
        count[k] = 0;
    }
    if let Some(active) = table.active.as_mut() {
        active[k] = u8::from(on);
    }
}

/// `norm^balance` as a divisor (1 when the balance is 0 or the norm is 0).
pub(crate) fn divisor(norm_sq: f32, balance: f32) -> f32 {
    if balance == 0.0 || norm_sq == 0.0 {
        1.0
    } else {
        norm_sq.sqrt().powf(balance)
    }
}

/// What an update changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateStats {
    /// Weights dropped (and as many regrown).
    pub moved: usize,
    /// Active weights in the user table after the update.
    pub active_users: usize,
    /// Active weights in the item table after the update.
    pub active_items: usize,
}

/// A weight identified for selection: table (0 users, 1 items), row, column.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    score: f32,
    table: u8,
    row: u32,
    col: u16,
}

impl Candidate {
    fn key(&self) -> (u8, u32, u16) {
        (self.table, self.row, self.col)
    }
}

/// Keeps the `k` candidates that come first in `order` (deterministic total order).
fn select_first(
    candidates: &mut Vec<Candidate>,
    k: usize,
    order: impl Fn(&Candidate, &Candidate) -> std::cmp::Ordering,
) {
    if candidates.len() > k {
        if k == 0 {
            candidates.clear();
            return;
        }
        candidates.select_nth_unstable_by(k - 1, &order);
        candidates.truncate(k);
    }
}

/// Drops `k` smallest-magnitude active weights and regrows `k` inactive ones (see the module
/// docs). Both tables must be sparse (have masks and accumulators); the accumulators are zeroed
/// afterwards.
pub fn prune_and_regrow(tables: [&mut Table; 2], k: usize, config: RegrowConfig) -> UpdateStats {
    if config.per_row {
        return prune_and_regrow_rows(tables, k, config);
    }
    prune_and_regrow_unequal(tables, k, k, config)
}

/// Drops the `drop` smallest-magnitude active weights and regrows `regrow` (at most `drop`)
/// inactive ones, as [`prune_and_regrow`] does with `drop = regrow`; the active count falls by
/// `drop - regrow`. This is how gradual pruning (`TrainOptions::start_density`) shrinks the
/// budget while it keeps moving weights. Not available per row.
pub fn prune_and_regrow_unequal(
    tables: [&mut Table; 2],
    drop: usize,
    regrow: usize,
    config: RegrowConfig,
) -> UpdateStats {
    update_masks(tables, drop, regrow, config, None)
}

/// [`prune_and_regrow`] restricted to the rows `rows[t][r]` marks in each table: only their
/// weights are dropped and regrown (an incremental update moves the masks of the rows that
/// new interactions touched, and no others).
pub fn prune_and_regrow_within(
    tables: [&mut Table; 2],
    k: usize,
    config: RegrowConfig,
    rows: [&[bool]; 2],
) -> UpdateStats {
    update_masks(tables, k, k, config, Some(rows))
}

/// [`prune_and_regrow_unequal`] over the rows `rows` marks (all rows when `None`).
fn update_masks(
    tables: [&mut Table; 2],
    drop: usize,
    regrow: usize,
    config: RegrowConfig,
    rows: Option<[&[bool]; 2]>,
) -> UpdateStats {
    let allowed =
        |t: usize, r: usize| rows.is_none_or(|rows| rows[t].get(r).copied().unwrap_or(false));
    let k = drop;
    // Prune: the smallest active weights, above each row's floor.
    let mut prune = Vec::new();
    let mut row_buf: Vec<Candidate> = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        let (Some(active), dim) = (table.active.as_ref(), table.dim) else {
            continue;
        };
        for r in (0..table.rows).filter(|&r| allowed(t, r)) {
            row_buf.clear();
            let row = &table.w[r * dim..(r + 1) * dim];
            let div = divisor(row.iter().map(|x| x * x).sum(), config.prune_balance);
            for c in 0..dim {
                if active[r * dim + c] != 0 {
                    row_buf.push(Candidate {
                        score: table.w[r * dim + c].abs() / div,
                        table: t as u8,
                        row: r as u32,
                        col: c as u16,
                    });
                }
            }
            if row_buf.len() <= config.floor {
                continue;
            }
            row_buf.sort_by(|a, b| a.score.total_cmp(&b.score).then(a.key().cmp(&b.key())));
            let removable = row_buf.len() - config.floor;
            prune.extend_from_slice(&row_buf[..removable]);
        }
    }
    let ascending =
        |a: &Candidate, b: &Candidate| a.score.total_cmp(&b.score).then(a.key().cmp(&b.key()));
    select_first(&mut prune, k, ascending);
    let k = prune.len();
    let wanted = regrow.min(k);

    // Regrow: the inactive weights with the largest balanced gradient, not just dropped.
    let mut grow = Vec::new();
    let [users, items] = tables;
    let mut tables = [users, items];
    for (t, table) in tables.iter_mut().enumerate() {
        let dim = table.dim;
        let (Some(active), Some(acc)) = (table.active.as_ref(), table.acc.as_ref()) else {
            continue;
        };
        for r in (0..table.rows).filter(|&r| allowed(t, r)) {
            let row = &acc[r * dim..(r + 1) * dim];
            let norm_sq: f32 = row.iter().map(|g| g * g).sum();
            if norm_sq == 0.0 {
                continue;
            }
            let divisor = divisor(norm_sq, config.balance);
            for c in 0..dim {
                if active[r * dim + c] == 0 && row[c] != 0.0 {
                    grow.push(Candidate {
                        score: row[c].abs() / divisor,
                        table: t as u8,
                        row: r as u32,
                        col: c as u16,
                    });
                }
            }
        }
    }
    // Drop the just-pruned weights from the regrowth candidates by applying the prune first.
    for p in &prune {
        let table = &mut tables[p.table as usize];
        let k = p.row as usize * table.dim + p.col as usize;
        reset(table, k, false);
    }
    let descending =
        |a: &Candidate, b: &Candidate| b.score.total_cmp(&a.score).then(a.key().cmp(&b.key()));
    select_first(&mut grow, wanted, descending);
    for g in &grow {
        let table = &mut tables[g.table as usize];
        let k = g.row as usize * table.dim + g.col as usize;
        reset(table, k, true);
    }
    // Too few regrowth candidates (gradients exactly zero): give the rest back to the rows that
    // lost them, so the budget stays where it was asked to be.
    for p in prune.iter().skip(k - (wanted - grow.len())) {
        let table = &mut tables[p.table as usize];
        let k = p.row as usize * table.dim + p.col as usize;
        if let Some(active) = table.active.as_mut() {
            active[k] = 1;
        }
    }
    for table in tables.iter_mut() {
        if let Some(acc) = table.acc.as_mut() {
            acc.fill(0.0);
        }
    }
    UpdateStats {
        moved: grow.len(),
        active_users: tables[0].active_count(),
        active_items: tables[1].active_count(),
    }
}

/// [`prune_and_regrow`] inside each row (`config.per_row`).
fn prune_and_regrow_rows(tables: [&mut Table; 2], k: usize, config: RegrowConfig) -> UpdateStats {
    let total: usize = tables.iter().map(|t| t.active_count()).sum();
    let per_weight = k as f64 / total.max(1) as f64;
    let mut owed = 0.0f64;
    let mut moved = 0usize;
    let mut order: Vec<usize> = Vec::new();
    let [users, items] = tables;
    let mut tables = [users, items];
    for table in tables.iter_mut() {
        let dim = table.dim;
        if table.active.is_none() || table.acc.is_none() {
            continue;
        }
        for r in 0..table.rows {
            let span = r * dim..(r + 1) * dim;
            let active = &table.active.as_ref().expect("sparse")[span.clone()];
            let nnz = active.iter().filter(|&&a| a != 0).count();
            // Cumulative rounding: the shares of all rows add up to k.
            let before = owed.round() as usize;
            owed += per_weight * nnz as f64;
            let mut share = (owed.round() as usize).saturating_sub(before);
            share = share.min(nnz.saturating_sub(config.floor));
            if share == 0 {
                continue;
            }
            let w = &table.w[span.clone()];
            let g = &table.acc.as_ref().expect("sparse")[span.clone()];
            let div = divisor(w.iter().map(|x| x * x).sum(), config.prune_balance);
            // Prune: the row's `share` smallest active weights.
            order.clear();
            order.extend((0..dim).filter(|&c| active[c] != 0));
            order.sort_by(|&a, &b| {
                (w[a].abs() / div)
                    .total_cmp(&(w[b].abs() / div))
                    .then(a.cmp(&b))
            });
            let pruned: Vec<usize> = order[..share].to_vec();
            // Regrow: the row's inactive weights of largest gradient, as many as were pruned.
            order.clear();
            order.extend((0..dim).filter(|&c| active[c] == 0 && g[c] != 0.0));
            order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()).then(a.cmp(&b)));
            order.truncate(share);
            let grown = order.clone();
            // Too few candidates: only as many of the smallest go as can be regrown.
            for &c in &pruned[..grown.len()] {
                reset(table, r * dim + c, false);
            }
            for &c in &grown {
                reset(table, r * dim + c, true);
            }
            moved += grown.len();
        }
    }
    for table in tables.iter_mut() {
        if let Some(acc) = table.acc.as_mut() {
            acc.fill(0.0);
        }
    }
    UpdateStats {
        moved,
        active_users: tables[0].active_count(),
        active_items: tables[1].active_count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_to_the_budget() {
        let c = uniform_counts(10, 8, 23, 1);
        assert_eq!(c.iter().sum::<usize>(), 23);
        assert!(c.iter().all(|&n| n == 2 || n == 3));
        assert_eq!(uniform_counts(3, 4, 100, 1), vec![4, 4, 4]);
    }

    #[test]
    fn weighted_counts_add_up_cap_at_dim_and_follow_the_weights() {
        let weights = [1.0, 2.0, 4.0, 100.0, 0.5];
        for budget in [0, 1, 7, 20, 33, 40, 1000] {
            let counts = weighted_counts(&weights, 8, budget);
            assert_eq!(counts.len(), weights.len());
            assert_eq!(
                counts.iter().sum::<usize>(),
                budget.min(5 * 8),
                "budget {budget}"
            );
            assert!(counts.iter().all(|&c| c <= 8), "{counts:?}");
        }
        // 20 over weights 1, 2, 4, 100, 0.5: the heavy row is capped at 8 and the other 12 are
        // shared in proportion 1 : 2 : 4 : 0.5.
        let counts = weighted_counts(&weights, 8, 20);
        assert_eq!(counts[3], 8);
        assert!(counts[4] <= counts[0] && counts[0] <= counts[1] && counts[1] <= counts[2]);
        assert_eq!(counts, vec![2, 3, 6, 8, 1]);
    }

    #[test]
    fn masks_follow_the_counts() {
        let counts = [0, 3, 5, 1];
        let m = random_mask(5, &counts, 7);
        for (r, &n) in counts.iter().enumerate() {
            assert_eq!(m[r * 5..(r + 1) * 5].iter().filter(|&&a| a == 1).count(), n);
        }
        let scores = [0.0, 1.0, 5.0, 2.0, 2.0];
        let m = top_mask(5, &[2], &scores);
        assert_eq!(m, vec![0, 0, 1, 1, 0]);
    }

    fn sparse(rows: usize, dim: usize, w: Vec<f32>, mask: Vec<u8>, acc: Vec<f32>) -> Table {
        let mut t = Table::dense(rows, dim, w).with_mask(mask);
        t.acc = Some(acc);
        t
    }

    /// Users and items of 2 rows x 3: users 0.5, 0.01 | 0.9 active, items 0.02, 0.3 | 0.8
    /// active, with accumulated gradients outside the masks.
    fn two_small_tables() -> (Table, Table) {
        let users = sparse(
            2,
            3,
            vec![0.5, 0.01, 0.0, 0.9, 0.0, 0.0],
            vec![1, 1, 0, 1, 0, 0],
            vec![0.0, 0.0, 0.2, 0.0, 0.7, 0.1],
        );
        let items = sparse(
            2,
            3,
            vec![0.02, 0.0, 0.3, 0.0, 0.8, 0.0],
            vec![1, 0, 1, 0, 1, 0],
            vec![0.0, 0.05, 0.0, 0.3, 0.0, 0.0],
        );
        (users, items)
    }

    #[test]
    fn prune_smallest_regrow_largest_keeps_the_budget() {
        let (mut users, mut items) = two_small_tables();
        let before = users.active_count() + items.active_count();
        let stats = prune_and_regrow(
            [&mut users, &mut items],
            2,
            RegrowConfig {
                floor: 0,
                balance: 0.0,
                ..RegrowConfig::default()
            },
        );
        assert_eq!(stats.moved, 2);
        // Dropped: users (0,1) = 0.01 and items (0,0) = 0.02. Regrown: users (1,1) = 0.7 and
        // items (1,0) = 0.3.
        assert_eq!(users.active.as_ref().unwrap(), &vec![1, 0, 0, 1, 1, 0]);
        assert_eq!(items.active.as_ref().unwrap(), &vec![0, 0, 1, 1, 1, 0]);
        assert_eq!(users.active_count() + items.active_count(), before);
        assert_eq!(users.w[1], 0.0);
        assert_eq!(users.w[4], 0.0);
        assert!(users.acc.as_ref().unwrap().iter().all(|&g| g == 0.0));
    }

    #[test]
    fn the_floor_protects_small_rows() {
        let mut users = sparse(
            2,
            2,
            vec![0.01, 0.0, 0.5, 0.4],
            vec![1, 0, 1, 1],
            vec![0.0, 0.3, 0.0, 0.0],
        );
        let mut items = sparse(1, 2, vec![0.6, 0.0], vec![1, 0], vec![0.0, 0.1]);
        prune_and_regrow(
            [&mut users, &mut items],
            1,
            RegrowConfig {
                floor: 1,
                balance: 0.0,
                ..RegrowConfig::default()
            },
        );
        // Row 0's single weight is protected; row 1's smaller weight (0.4) goes instead.
        assert_eq!(users.active.as_ref().unwrap(), &vec![1, 1, 1, 0]);
    }

    #[test]
    fn balance_lets_rarely_seen_rows_compete() {
        let make = || {
            let users = sparse(
                2,
                2,
                vec![0.3, 0.0, 0.3, 0.0],
                vec![1, 0, 1, 0],
                // Row 0: large gradient mostly on column 0; row 1: small, all on column 1.
                vec![10.0, 1.0, 0.0, 0.2],
            );
            let items = sparse(1, 2, vec![0.01, 0.5], vec![1, 1], vec![0.0; 2]);
            (users, items)
        };
        let (mut u, mut i) = make();
        prune_and_regrow(
            [&mut u, &mut i],
            1,
            RegrowConfig {
                floor: 0,
                balance: 0.0,
                ..RegrowConfig::default()
            },
        );
        assert_eq!(u.active.as_ref().unwrap(), &vec![1, 1, 1, 0]);
        let (mut u, mut i) = make();
        prune_and_regrow(
            [&mut u, &mut i],
            1,
            RegrowConfig {
                floor: 0,
                balance: 1.0,
                ..RegrowConfig::default()
            },
        );
        assert_eq!(u.active.as_ref().unwrap(), &vec![1, 0, 1, 1]);
    }

    #[test]
    fn per_row_updates_keep_every_row_count() {
        let mut users = sparse(
            2,
            4,
            vec![0.5, 0.01, 0.0, 0.0, 0.9, 0.8, 0.0, 0.0],
            vec![1, 1, 0, 0, 1, 1, 0, 0],
            vec![0.0, 0.0, 0.2, 0.3, 0.0, 0.0, 0.0, 0.0],
        );
        let mut items = sparse(
            1,
            4,
            vec![0.02, 0.3, 0.0, 0.0],
            vec![1, 1, 0, 0],
            vec![0.0, 0.0, 0.0, 0.4],
        );
        let stats = prune_and_regrow(
            [&mut users, &mut items],
            3,
            RegrowConfig {
                per_row: true,
                ..RegrowConfig::default()
            },
        );
        // Each row moves one weight; user row 1 has no gradient outside its mask and keeps its
        // weights.
        assert_eq!(stats.moved, 2);
        assert_eq!(
            users.active.as_ref().unwrap(),
            &vec![1, 0, 0, 1, 1, 1, 0, 0]
        );
        assert_eq!(items.active.as_ref().unwrap(), &vec![0, 1, 0, 1]);
        assert_eq!(users.w[4..6], [0.9, 0.8]);
    }

    #[test]
    fn unequal_updates_shrink_the_budget_by_the_difference() {
        let (mut users, mut items) = two_small_tables();
        let config = RegrowConfig {
            balance: 0.0,
            ..RegrowConfig::default()
        };
        // Drop the three smallest (0.01, 0.02, 0.3), regrow the one largest gradient (0.7).
        let stats = prune_and_regrow_unequal([&mut users, &mut items], 3, 1, config);
        assert_eq!(stats.moved, 1);
        assert_eq!(stats.active_users + stats.active_items, 6 - 2);
        assert_eq!(users.active.as_ref().unwrap(), &vec![1, 0, 0, 1, 1, 0]);
        assert_eq!(items.active.as_ref().unwrap(), &vec![0, 0, 0, 0, 1, 0]);
        assert_eq!(users.w, vec![0.5, 0.0, 0.0, 0.9, 0.0, 0.0]);
        assert_eq!(items.w, vec![0.0, 0.0, 0.0, 0.0, 0.8, 0.0]);
    }
}
