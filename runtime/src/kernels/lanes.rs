//! Many users against the same f32 rows at once (feature `std`, for
//! [`Model::recommend_batch`](crate::Model::recommend_batch)): one SIMD lane per user.
//!
//! The single-user row kernels put rows in their lanes and must reduce each row's products
//! across lanes, in the fixed **sequential** order of f32 rows (see the parent module). With
//! [`LANES`] users in the lanes instead, a row's entries are broadcast one after another and
//! each lane adds its own product in that same order, `acc += user[column] * value` from
//! `acc = 0`: the dot product of the single-user kernels, bit for bit, with no reduction
//! across lanes and no transposition. Four rows at a time give the adds four independent
//! chains.
//!
//! The kernel is plain Rust over fixed-size arrays, compiled three ways from one source: with
//! AVX-512F or AVX2 enabled on x86_64 (chosen at run time) and as it is elsewhere, where the
//! compiler vectorises it with the target's baseline SIMD (NEON on aarch64, SSE2 on x86_64).
//! Rust never fuses a multiply and an add, so every build computes the same IEEE operations
//! in the same order as the scalar reference [`dots4_scalar`], which the tests compare it with.

/// Users per lane group: one 512-bit vector of f32.
pub(crate) const LANES: usize = 16;

/// The transposed vectors of up to [`LANES`] users: `columns[c][l]` is user `l`'s value in
/// dimension `c` (0 for lanes without a user).
pub(crate) type UserLanes = [[f32; LANES]];

/// One decoded f32 row: its columns (each below the dimension) and values, as long as each
/// other.
pub(crate) type RowEntries<'r> = (&'r [u16], &'r [f32]);

/// The dot products of four rows with the users of `lanes`: `out[r][l]` is row `r` with
/// user `l`, each summed sequentially in the row's entry order from +0.0.
#[inline]
pub(crate) fn dots4(lanes: &UserLanes, rows: [RowEntries<'_>; 4]) -> [[f32; LANES]; 4] {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        if super::avx512::available() {
            // SAFETY: AVX-512F was detected on this CPU, the only feature the function
            // enables; it is otherwise safe Rust.
            return unsafe { dots4_avx512(lanes, rows) };
        }
        if super::x86::available() {
            // SAFETY: AVX2 was detected on this CPU; the function is otherwise safe Rust.
            return unsafe { dots4_avx2(lanes, rows) };
        }
    }
    dots4_generic(lanes, rows)
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx512f")]
unsafe fn dots4_avx512(lanes: &UserLanes, rows: [RowEntries<'_>; 4]) -> [[f32; LANES]; 4] {
    dots4_generic(lanes, rows)
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
unsafe fn dots4_avx2(lanes: &UserLanes, rows: [RowEntries<'_>; 4]) -> [[f32; LANES]; 4] {
    dots4_generic(lanes, rows)
}

/// Adds `value` times the user lanes of `column` to `acc`, lane by lane (nothing for a
/// column past the lanes, which the callers' rows never hold).
#[inline(always)]
fn add_entry(acc: &mut [f32; LANES], lanes: &UserLanes, column: u16, value: f32) {
    if let Some(users) = lanes.get(usize::from(column)) {
        for (a, u) in acc.iter_mut().zip(users) {
            *a += *u * value;
        }
    }
}

#[inline(always)]
fn dots4_generic(lanes: &UserLanes, rows: [RowEntries<'_>; 4]) -> [[f32; LANES]; 4] {
    let mut acc = [[0.0f32; LANES]; 4];
    let len = |r: &RowEntries<'_>| r.0.len().min(r.1.len());
    let common = rows.iter().map(len).min().unwrap_or(0);
    // The entries all four rows have: four independent chains of adds.
    for e in 0..common {
        for (a, (columns, values)) in acc.iter_mut().zip(&rows) {
            add_entry(a, lanes, columns[e], values[e]);
        }
    }
    for (a, row) in acc.iter_mut().zip(&rows) {
        for e in common..len(row) {
            add_entry(a, lanes, row.0[e], row.1[e]);
        }
    }
    acc
}

/// The reference: one user and one row at a time, as the scalar f32 row kernel sums.
#[cfg(test)]
pub(crate) fn dots4_scalar(lanes: &UserLanes, rows: [RowEntries<'_>; 4]) -> [[f32; LANES]; 4] {
    let mut out = [[0.0f32; LANES]; 4];
    for (o, (columns, values)) in out.iter_mut().zip(&rows) {
        for (l, slot) in o.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for (&c, &v) in columns.iter().zip(values.iter()) {
                sum += lanes[usize::from(c)][l] * v;
            }
            *slot = sum;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The kernel this CPU runs (AVX-512, AVX2, or the target's baseline SIMD: NEON under
    /// the aarch64 tests) equals the one-at-a-time reference bit for bit, on rows of different
    /// lengths, with negative zeros, tiny and large values.
    #[test]
    fn lane_dots_equal_the_one_at_a_time_sums() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let value = |rng: &mut ChaCha8Rng| match rng.random_range(0..10) {
            0 => -0.0,
            1 => 0.0,
            2 => rng.random_range(-1e18f32..1e18),
            3 => rng.random_range(-1e-18f32..1e-18),
            _ => rng.random_range(-2.0f32..2.0),
        };
        for dim in [1usize, 3, 16, 64, 200] {
            let lanes: Vec<[f32; LANES]> = (0..dim)
                .map(|_| core::array::from_fn(|_| value(&mut rng)))
                .collect();
            for _ in 0..50 {
                let rows: Vec<(Vec<u16>, Vec<f32>)> = (0..4)
                    .map(|_| {
                        let columns: Vec<u16> =
                            (0..dim as u16).filter(|_| rng.random_bool(0.6)).collect();
                        let values = columns.iter().map(|_| value(&mut rng)).collect();
                        (columns, values)
                    })
                    .collect();
                let entries: [RowEntries<'_>; 4] =
                    core::array::from_fn(|r| (&rows[r].0[..], &rows[r].1[..]));
                let got = dots4(&lanes, entries);
                let want = dots4_scalar(&lanes, entries);
                for r in 0..4 {
                    for l in 0..LANES {
                        assert_eq!(
                            got[r][l].to_bits(),
                            want[r][l].to_bits(),
                            "dim {dim}, row {r}, lane {l}"
                        );
                    }
                }
            }
        }
    }
}
