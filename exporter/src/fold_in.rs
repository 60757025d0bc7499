//! The fold-in settings a file gets when nobody chose them: scaled to the item table, so the
//! same defaults suit tables of any size and magnitude.
//!
//! With `N` items and `m` the mean of `v[c]²` over every item and dimension (one item's
//! contribution to a diagonal entry of the Gramian, on average), the unobserved weight is
//! `α₀ = unobserved_items / N` (every item together weighs as much as `unobserved_items`
//! observed ones) and the regularisation `λ = ridge_items · m` (the ridge weighs as much as
//! `ridge_items` observed items). `pocketrec train` chooses both on held-out interactions
//! instead (see `docs/TRAINING.md`).

use pocketrec::FoldInParams;
use pocketrec::builder::SparseMatrix;

/// Default `unobserved_items`: all items together, as unobserved targets, weigh as much as
/// this many observed items. Chosen on a validation split carved from Gowalla's training
/// interactions (`docs/QUALITY.md`, *Fold-in*), for the dense and the density-0.1 model alike.
pub const DEFAULT_UNOBSERVED_ITEMS: f32 = 256.0;

/// Default `ridge_items`: the ridge weighs as much as this many observed items. So strong a
/// ridge makes the fold-in close to a sum of the item vectors, corrected by the Gramian; that
/// is what validated best on Gowalla (weaker ridges lost up to a quarter of Recall@20).
pub const DEFAULT_RIDGE_ITEMS: f32 = 1000.0;

/// `m`: the mean of `v[c]²` over all `rows × dim` entries of `items` (zeros included); 1 for
/// an empty or all-zero table, so that the scaled settings stay valid.
pub fn mean_square(items: &SparseMatrix) -> f64 {
    let total: f64 = (0..items.rows())
        .flat_map(|r| items.row(r).1.iter())
        .map(|&v| f64::from(v) * f64::from(v))
        .sum();
    let entries = items.rows() as f64 * items.dim() as f64;
    if total > 0.0 && entries > 0.0 {
        total / entries
    } else {
        1.0
    }
}

/// The settings scaled to `items` (see the module docs).
///
/// ```
/// use pocketrec::builder::SparseMatrix;
/// let items = SparseMatrix::from_dense(4, 2, &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0])?;
/// let p = pocketrec_export::fold_in::scaled_params(&items, 2.0, 0.5);
/// assert_eq!(p.unobserved_weight, 0.5);   // 2 items' worth over 4 items
/// assert_eq!(p.regularization, 0.25);     // half of m = 4 / 8
/// # Ok::<(), pocketrec::Error>(())
/// ```
pub fn scaled_params(
    items: &SparseMatrix,
    unobserved_items: f32,
    ridge_items: f32,
) -> FoldInParams {
    FoldInParams {
        unobserved_weight: (f64::from(unobserved_items) / items.rows().max(1) as f64) as f32,
        // At least the smallest normal f32, so that tables of tiny values keep λ > 0.
        regularization: ((f64::from(ridge_items) * mean_square(items)) as f32)
            .max(f32::MIN_POSITIVE),
    }
}
