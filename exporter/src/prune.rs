//! Magnitude pruning: keep the largest-magnitude values of a table, zero the rest.

/// Zeroes all but the `keep` largest-magnitude non-zero values of `values`; returns how many
/// non-zeros remain. Ties at the threshold go to the earlier position, so the result is
/// deterministic.
///
/// ```
/// let mut v = [0.5, -3.0, 0.0, 1.0, -1.0, 2.0];
/// assert_eq!(pocketrec_export::prune::keep_largest(&mut v, 3), 3);
/// assert_eq!(v, [0.0, -3.0, 0.0, 1.0, 0.0, 2.0]);
/// ```
pub fn keep_largest(values: &mut [f32], keep: usize) -> usize {
    let nonzero = values.iter().filter(|v| **v != 0.0).count();
    if nonzero <= keep {
        return nonzero;
    }
    if keep == 0 {
        values.fill(0.0);
        return 0;
    }
    let mut magnitudes: Vec<f32> = values
        .iter()
        .map(|v| v.abs())
        .filter(|a| *a != 0.0)
        .collect();
    let cut = nonzero - keep;
    let (_, threshold, _) = magnitudes.select_nth_unstable_by(cut, f32::total_cmp);
    let threshold = *threshold;
    let above = values.iter().filter(|v| v.abs() > threshold).count();
    let mut ties = keep - above;
    for v in values.iter_mut() {
        let a = v.abs();
        if a > threshold {
            continue;
        }
        if a == threshold && ties > 0 {
            ties -= 1;
            continue;
        }
        *v = 0.0;
    }
    keep
}

/// The number of values a table of `cells` entries keeps at `density` (rounded to nearest).
pub fn budget(cells: usize, density: f64) -> usize {
    ((cells as f64) * density).round() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exactly_the_budget_with_ties() {
        let mut v = [1.0, -1.0, 1.0, 1.0, 0.5];
        assert_eq!(keep_largest(&mut v, 2), 2);
        assert_eq!(v, [1.0, -1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn sparse_enough_is_left_alone() {
        let mut v = [0.0, 2.0, 0.0];
        assert_eq!(keep_largest(&mut v, 2), 1);
        assert_eq!(v, [0.0, 2.0, 0.0]);
        assert_eq!(keep_largest(&mut v, 0), 0);
        assert_eq!(v, [0.0; 3]);
    }

    #[test]
    fn budget_rounds() {
        assert_eq!(budget(640, 0.1), 64);
        assert_eq!(budget(10, 0.05), 1);
    }
}
