//! Block bounds (format 1.5 with clustered rows and an id index): the column scan that skips
//! blocks gives exactly the answers of the scan that reads every block, on random and
//! adversarial tables; ids keep working; `verify` and open catch bounds and indexes that lie.

mod common;

use common::{Inputs, section, top};
use pocketrec::builder::{Layout, RowOrder};
use pocketrec::format::reseal;
use pocketrec::{Error, ListRows, Model, Recommendation, Retrieval, SectionKind, ValueEncoding};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The same tables twice, both clustered: with block bounds of `block_rows`, and without.
fn pair(inputs: &Inputs, block_rows: u32) -> (Vec<u8>, Vec<u8>) {
    let mut bounded = inputs.clone();
    bounded.item_order = RowOrder::Clustered;
    bounded.block_bounds = Some(block_rows);
    let mut plain = inputs.clone();
    plain.item_order = RowOrder::Clustered;
    plain.block_bounds = None;
    (bounded.build(), plain.build())
}

/// Checks every user vector of `users` (and each stored user) against both files, with and
/// without exclusions: ids, rows and score bits equal.
fn check_same_answers(
    inputs: &Inputs,
    bounded: &[u8],
    plain: &[u8],
    users: &[f32],
    k: usize,
) -> Result<(), TestCaseError> {
    let (b, p) = (
        Model::from_bytes(bounded).unwrap(),
        Model::from_bytes(plain).unwrap(),
    );
    b.verify().unwrap();
    prop_assert!(b.items().unwrap().has_block_bounds());
    let dim = inputs.dim;
    let exclude: Vec<u64> = (0..inputs.n_items())
        .step_by(3)
        .map(|r| inputs.item_id(r))
        .collect();
    for user in users.chunks(dim) {
        for ex in [&[][..], &exclude[..]] {
            let want = top(&p, user, k, ex, Retrieval::Columns);
            let got = top(&b, user, k, ex, Retrieval::Columns);
            prop_assert_eq!(&got, &want, "user {:?}", user);
        }
    }
    // Stored users through `recommend`, which chooses its scan: only where both files take the
    // column scan (with row records, the block sizes weigh differently in that choice, and the
    // row scan of f16, bf16 and int8 sums in another order).
    let columns_only = inputs.layout == Layout::Columns;
    for u in (0..inputs.n_users()).filter(|_| columns_only) {
        let id = inputs.user_id(u);
        let (mut x, mut y) = (
            vec![Recommendation::default(); k],
            vec![Recommendation::default(); k],
        );
        let n = b.recommend(id, k, &exclude, &mut x).unwrap();
        let m = p.recommend(id, k, &exclude, &mut y).unwrap();
        prop_assert_eq!(n, m);
        for (r, s) in x[..n].iter().zip(&y[..m]) {
            prop_assert_eq!(
                (r.id, r.index, r.score.to_bits()),
                (s.id, s.index, s.score.to_bits())
            );
        }
    }
    Ok(())
}

fn dims() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![1usize, 5, 16, 64])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random tables, every value encoding, dot and cosine, biases or not, u16 and bitmap
    /// lists, with and without row records, users from empty to dense, k from 0 to past the
    /// catalogue: the bounded scan equals the full column scan of the same rows.
    #[test]
    fn bounded_scan_equals_the_full_scan(
        seed in any::<u64>(),
        items in 0usize..2500,
        dim in dims(),
        density in 0.0f64..0.6,
        user_density in prop::sample::select(vec![0.0f64, 0.05, 0.3, 1.0]),
        k in prop::sample::select(vec![0usize, 1, 5, 20, 3000]),
        list_rows in prop::sample::select(vec![ListRows::U16, ListRows::Bitmap]),
        layout in prop::sample::select(vec![Layout::Columns, Layout::Both]),
        block_rows in prop::sample::select(vec![64u32, 256]),
    ) {
        for &values in ValueEncoding::ALL {
            let mut inputs = Inputs::random(seed, 4, items, dim, density);
            inputs.values = values;
            inputs.layout = layout;
            inputs.list_rows = list_rows;
            let (bounded, plain) = pair(&inputs, block_rows);
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 7);
            let users = common::random_dense(&mut rng, 4, dim, user_density);
            check_same_answers(&inputs, &bounded, &plain, &users, k)?;
        }
    }

    /// Adversarial tables: a few distinct rows repeated (ties everywhere, across blocks),
    /// all-negative and all-zero rows, huge and tiny magnitudes.
    #[test]
    fn bounded_scan_is_exact_on_ties_and_extremes(
        seed in any::<u64>(),
        distinct in 1usize..6,
        copies in 1usize..400,
        magnitude in prop::sample::select(vec![1e-30f32, 1.0, 1e15]),
        k in prop::sample::select(vec![1usize, 7, 50]),
    ) {
        let dim = 8;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let base: Vec<f32> = (0..distinct * dim)
            .map(|i| match i % 5 {
                0 => 0.0,
                1 => -magnitude * rng.random_range(0.5f32..1.0),
                _ => magnitude * rng.random_range(-1.0f32..1.0),
            })
            .collect();
        let mut items = Vec::new();
        for c in 0..copies {
            let r = c % distinct;
            items.extend_from_slice(&base[r * dim..(r + 1) * dim]);
        }
        items.extend(std::iter::repeat_n(0.0, dim)); // an all-zero row
        for scoring in [pocketrec::Scoring::Dot, pocketrec::Scoring::Cosine] {
            let mut inputs = Inputs::random(seed, 2, items.len() / dim, dim, 0.5);
            inputs.items = items.clone();
            inputs.item_bias = None;
            inputs.scoring = scoring;
            inputs.layout = Layout::Columns;
            let (bounded, plain) = pair(&inputs, 64);
            let users: Vec<f32> = [1.0f32, -1.0, 0.0, 2.0, 0.0, 0.5, -3.0, 1.0]
                .iter()
                .chain(&[0.0f32; 8])
                .chain(&base[..dim])
                .copied()
                .collect();
            check_same_answers(&inputs, &bounded, &plain, &users, k)?;
        }
    }
}

/// Items in 16 taste clusters (each strong in two dimensions of its own), users of one
/// cluster: most blocks of a clustered table cannot hold the top 20, and are skipped.
#[test]
fn clustered_tables_skip_most_blocks() {
    let (dim, items, clusters) = (32usize, 20_000usize, 16usize);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut table = vec![0.0f32; items * dim];
    for r in 0..items {
        let c = rng.random_range(0..clusters);
        let popularity = 1.0 / (1.0 + (r % 997) as f32).sqrt();
        table[r * dim + 2 * c] = (1.0 + rng.random_range(0.0f32..1.0)) * popularity;
        table[r * dim + 2 * c + 1] = (0.5 + rng.random_range(0.0f32..1.0)) * popularity;
        let noise = rng.random_range(0..dim);
        table[r * dim + noise] += 0.05 * rng.random_range(-1.0f32..1.0);
    }
    let mut inputs = Inputs::random(1, 1, items, dim, 0.1);
    inputs.items = table;
    inputs.item_bias = None;
    inputs.global_bias = 0.0;
    inputs.scoring = pocketrec::Scoring::Dot;
    inputs.layout = Layout::Columns;
    let (bounded, plain) = pair(&inputs, 64);
    let (b, p) = (
        Model::from_bytes(&bounded[..]).unwrap(),
        Model::from_bytes(&plain[..]).unwrap(),
    );
    b.verify().unwrap();
    let mut user = vec![0.0f32; dim];
    user[6] = 1.0;
    user[7] = 0.7;
    let mut out = [Recommendation::default(); 20];
    let (n, stats) = b.recommend_vector_stats(&user, 20, &[], &mut out).unwrap();
    assert_eq!(n, 20);
    assert_eq!(stats.blocks, items.div_ceil(64));
    assert!(
        stats.blocks_scored * 5 < stats.blocks,
        "scored {} of {} blocks",
        stats.blocks_scored,
        stats.blocks
    );
    assert_eq!(
        top(&b, &user, 20, &[], Retrieval::Columns),
        top(&p, &user, 20, &[], Retrieval::Columns)
    );
    // Without bounds every block is scored.
    let (_, stats) = p.recommend_vector_stats(&user, 20, &[], &mut out).unwrap();
    assert_eq!(stats.blocks_scored, stats.blocks);
}

/// A block whose bound reaches the k-th score but whose rows, once the lists of the user's
/// first dimensions are added, cannot: the scan gives it up before its last list, with the
/// full scan's answer. Block 0 holds the best row (1, 1, 1) and rows strong in dimension 0 or
/// 2 alone (bound 3.6); block 1 rows strong in dimension 0 or 1 alone, 0.2 in dimension 2
/// (bound 3.2, best row 1.7): after dimensions 0 and 1, 1.5 + 0.2 < 3.
#[test]
fn a_block_is_given_up_part_way_through_its_lists() {
    let dim = 3;
    let mut items = vec![[1.0f32, 1.0, 1.0]];
    items.extend((1..64).map(|r| match r % 2 {
        0 => [1.3, 0.0, 0.0],
        _ => [0.0, 0.0, 1.3],
    }));
    items.extend((0..64).map(|r| match r % 2 {
        0 => [1.5, 0.0, 0.2],
        _ => [0.0, 1.5, 0.2],
    }));
    for values in [ValueEncoding::F32, ValueEncoding::F16, ValueEncoding::Bf16] {
        let mut inputs = Inputs::random(1, 1, items.len(), dim, 1.0);
        inputs.items = items.concat();
        inputs.item_bias = None;
        inputs.global_bias = 0.0;
        inputs.scoring = pocketrec::Scoring::Dot;
        inputs.layout = Layout::Columns;
        inputs.values = values;
        let mut plain = inputs.clone();
        inputs.block_bounds = Some(64);
        let (b, p) = (inputs.build(), plain.build());
        let (b, p) = (
            Model::from_bytes(&b[..]).unwrap(),
            Model::from_bytes(&p[..]).unwrap(),
        );
        b.verify().unwrap();
        let user = [1.0f32, 1.0, 1.0];
        let mut out = [Recommendation::default(); 1];
        let (n, stats) = b.recommend_vector_stats(&user, 1, &[], &mut out).unwrap();
        assert_eq!((n, out[0].index, out[0].score), (1, 0, 3.0), "{values:?}");
        assert_eq!((stats.blocks, stats.blocks_scored), (2, 2), "{values:?}");
        assert_eq!(stats.lists_cut, 1, "{values:?} {stats:?}");
        assert_eq!(
            top(&b, &user, 1, &[], Retrieval::Columns),
            top(&p, &user, 1, &[], Retrieval::Columns)
        );
        // Cosine sums are divided by each row's norm: no block is given up part way.
        plain.scoring = pocketrec::Scoring::Cosine;
        plain.block_bounds = Some(64);
        let c = plain.build();
        let c = Model::from_bytes(&c[..]).unwrap();
        let (_, stats) = c.recommend_vector_stats(&user, 1, &[], &mut out).unwrap();
        assert_eq!(stats.lists_cut, 0);
    }
}

/// Clustered rows keep every id: `find` and `id` agree, in every id encoding, and strings
/// hash ids and integer ids of any width.
#[test]
fn clustered_rows_keep_their_ids() {
    for (seed, wide) in [(1u64, false), (2, true), (3, false)] {
        let mut inputs = Inputs::random(seed, 3, 900, 16, 0.3);
        inputs.item_ids = match seed {
            1 => None,
            _ => Some(
                (0..900u64)
                    .map(|r| {
                        if wide {
                            r.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        } else {
                            3 * r + 1
                        }
                    })
                    .collect(),
            ),
        };
        inputs.layout = Layout::Columns;
        inputs.item_order = RowOrder::Clustered;
        inputs.block_bounds = Some(64);
        let bytes = inputs.build();
        let model = Model::from_bytes(&bytes[..]).unwrap();
        model.verify().unwrap();
        let items = model.items().unwrap();
        let mut moved = 0;
        for r in 0..900 {
            let id = inputs.item_id(r);
            let row = items.find(id).unwrap();
            assert_eq!(items.id(row).unwrap(), id);
            moved += usize::from(row != r);
            let mut stored = vec![0.0f32; 16];
            items.decode_row(row, &mut stored).unwrap();
            assert_eq!(stored, inputs.item_row(r), "item {id}");
        }
        assert!(moved > 0, "clustering moved no row");
        assert!(matches!(
            items.find(u64::MAX - 1),
            Err(Error::IdNotFound { .. })
        ));
    }
}

/// `verify` refuses an id index that is not a permutation in id order, and bounds that do not
/// hold the rows; queries on such files answer or fail, never panic.
#[test]
fn verify_catches_indexes_and_bounds_that_lie() {
    let mut inputs = Inputs::random(11, 3, 700, 16, 0.4);
    inputs.layout = Layout::Columns;
    inputs.item_order = RowOrder::Clustered;
    inputs.block_bounds = Some(64);
    inputs.item_bias = Some(vec![0.25; 700]);
    let bytes = inputs.build();
    Model::from_bytes(&bytes[..]).unwrap().verify().unwrap();

    // Two index entries swapped: ids no longer increase through the index.
    let (start, _) = section(&bytes, SectionKind::IdIndex);
    let mut bad = bytes.clone();
    let first = start + 16;
    for i in 0..4 {
        bad.swap(first + i, first + 40 + i);
    }
    reseal(&mut bad);
    let model = Model::from_bytes(&bad[..]).unwrap();
    assert!(model.verify().is_err());
    let _ = model.items().unwrap().find(inputs.item_id(5));

    // An upper code lowered to -127 everywhere: values lie above their bounds.
    let (start, end) = section(&bytes, SectionKind::BlockBounds);
    let blocks = 700usize.div_ceil(64);
    let upper = start + 24 + 4 * 16 + 4 * blocks;
    let mut bad = bytes.clone();
    for byte in &mut bad[upper..upper + 16 * blocks] {
        *byte = (-127i8) as u8;
    }
    assert_eq!(upper + 32 * blocks, end);
    reseal(&mut bad);
    let model = Model::from_bytes(&bad[..]).unwrap();
    assert!(model.verify().is_err());
    let mut out = [Recommendation::default(); 5];
    let _ = model.recommend_vector(&[1.0; 16], 5, &[], &mut out);

    // A bias maximum below the biases.
    let mut bad = bytes.clone();
    let bias_at = start + 24 + 4 * 16;
    bad[bias_at..bias_at + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    reseal(&mut bad);
    assert!(Model::from_bytes(&bad[..]).unwrap().verify().is_err());

    // A block size that differs from the column layout's is refused at open.
    let mut bad = bytes.clone();
    bad[start + 8..start + 12].copy_from_slice(&128u32.to_le_bytes());
    reseal(&mut bad);
    assert!(Model::from_bytes(&bad[..]).is_err());
}
