//! Property tests: random sparse tables x every encoding round-trip through the builder and
//! the reader, and `recommend` equals a brute-force f32 reference.

mod common;

use common::{Inputs, error_bound};
use pocketrec::{Model, Recommendation, ValueEncoding};
use proptest::prelude::*;

fn dims() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![1usize, 3, 8, 17, 64, 130, 300])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every value round-trips: exactly for f32, within the documented bound otherwise; ids,
    /// biases, row counts and non-zero counts survive.
    #[test]
    fn every_encoding_round_trips(
        seed in any::<u64>(),
        users in 0usize..12,
        items in 0usize..40,
        dim in dims(),
        density in 0.0f64..1.0,
    ) {
        for &values in ValueEncoding::ALL {
            let mut inputs = Inputs::random(seed, users, items, dim, density);
            inputs.values = values;
            let bytes = inputs.build();
            let model = Model::from_bytes(&bytes).unwrap();
            model.verify().unwrap();
            let table = model.items().unwrap();
            prop_assert_eq!(table.rows(), items);
            prop_assert_eq!(table.dim(), dim);
            prop_assert_eq!(table.value_encoding(), values);
            let mut total_nnz = 0u64;
            let mut dense = vec![0.0f32; dim];
            for r in 0..items {
                let original = inputs.item_row(r);
                let index = table.find(inputs.item_id(r)).unwrap();
                prop_assert_eq!(table.id(index).unwrap(), inputs.item_id(r));
                let row = table.row(index).unwrap();
                total_nnz += row.nnz() as u64;
                row.decode_into(&mut dense).unwrap();
                let max_abs = original.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for c in 0..dim {
                    let bound = error_bound(values, original[c], max_abs);
                    prop_assert!(
                        (dense[c] - original[c]).abs() <= bound,
                        "{values} row {r} col {c}: stored {} original {} bound {bound}",
                        dense[c], original[c]
                    );
                }
                // iter() and for_each_nonzero() agree with decode_into().
                let mut seen = vec![0.0f32; dim];
                let mut last = None;
                for (c, v) in row.iter() {
                    prop_assert!(last.is_none_or(|l| c > l));
                    prop_assert!(v != 0.0);
                    seen[c] = v;
                    last = Some(c);
                }
                prop_assert_eq!(&seen, &dense);
                if let Some(bias) = &inputs.item_bias {
                    prop_assert_eq!(table.bias(index).unwrap(), bias[r]);
                }
            }
            prop_assert_eq!(total_nnz, table.nnz());
            if values == ValueEncoding::F32 {
                let expected = inputs.items.iter().filter(|v| **v != 0.0).count() as u64;
                prop_assert_eq!(table.nnz(), expected);
            }
        }
    }

    /// With f32 values, `recommend` returns exactly the brute-force f32 top-k (same ids, same
    /// scores bit for bit, ties to the lower row), with and without exclusions, for stored
    /// users and for caller-given vectors; `score_candidates` agrees with the reference.
    #[test]
    fn recommend_equals_brute_force(
        seed in any::<u64>(),
        users in 1usize..6,
        items in 0usize..80,
        dim in dims(),
        density in 0.0f64..1.0,
        k in 0usize..25,
    ) {
        let inputs = Inputs::random(seed, users, items, dim, density);
        let bytes = inputs.build();
        let model = Model::from_bytes(&bytes).unwrap();
        let mut out = vec![Recommendation::default(); k];
        for u in 0..users {
            let user = inputs.user_row(u);
            let user_bias = inputs.user_bias.as_ref().map_or(0.0, |b| b[u]);
            let exclude: Vec<u64> = (0..items).step_by(3).map(|r| inputs.item_id(r)).chain([u64::MAX - 1]).collect();
            for exclude in [&[][..], &exclude[..]] {
                let n = model.recommend(inputs.user_id(u), k, exclude, &mut out).unwrap();
                let got: Vec<(u64, f32)> = out[..n].iter().map(|r| (r.id, r.score)).collect();
                let want = inputs.reference_top_k(user, user_bias, k, exclude);
                prop_assert_eq!(&got, &want);

                let n = model.recommend_vector(user, k, exclude, &mut out).unwrap();
                let got: Vec<(u64, f32)> = out[..n].iter().map(|r| (r.id, r.score)).collect();
                prop_assert_eq!(got, inputs.reference_top_k(user, 0.0, k, exclude));
            }
            let ids: Vec<u64> = (0..items).map(|r| inputs.item_id(r)).collect();
            let mut scores = vec![0.0f32; items];
            model.score_candidates(inputs.user_id(u), &ids, &mut scores).unwrap();
            for (r, score) in scores.iter().enumerate() {
                prop_assert_eq!(*score, inputs.reference_score(user, user_bias, r));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Int8 and int4 scores through every layout `export` may choose (row records as u8
    /// lists, u16 lists or bitmaps; the column layout with and without row records, with and
    /// without block bounds) are the f32 dot products of the original tables within the
    /// documented bound: each stored value is off by at most half its row's scale (the
    /// `error_bound` of each entry, times `|u|`), plus the f32 rounding of a sum of `dim`
    /// products.
    #[test]
    fn quantized_scores_are_within_the_documented_bound(
        seed in any::<u64>(),
        items in 1usize..600,
        dim in prop::sample::select(vec![3usize, 17, 64, 300]),
        density in 0.02f64..0.9,
        user_density in prop::sample::select(vec![0.1f64, 0.5, 1.0]),
        bounds in any::<bool>(),
    ) {
        use pocketrec::builder::{Layout, RowOrder};
        use pocketrec::Retrieval;
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 3);
        let user = common::random_dense(&mut rng, 1, dim, user_density);
        for values in [ValueEncoding::I8, ValueEncoding::I4] {
            for layout in [Layout::Rows, Layout::Both, Layout::Columns] {
                let mut inputs = Inputs::random(seed, 2, items, dim, density);
                inputs.values = values;
                inputs.scoring = pocketrec::Scoring::Dot;
                inputs.item_bias = None;
                inputs.user_bias = None;
                inputs.global_bias = 0.0;
                inputs.layout = layout;
                if bounds && layout != Layout::Rows {
                    inputs.block_bounds = Some(64);
                    inputs.item_order = RowOrder::Clustered;
                }
                let bytes = inputs.build();
                let model = Model::from_bytes(&bytes).unwrap();
                model.verify().unwrap();
                let ways: &[Retrieval] = match layout {
                    Layout::Rows => &[Retrieval::Rows],
                    Layout::Both => &[Retrieval::Rows, Retrieval::Columns],
                    Layout::Columns => &[Retrieval::Columns],
                };
                let mut answers = Vec::new();
                let mut rounding_of = std::collections::HashMap::new();
                for &how in ways {
                    let all = common::top(&model, &user, items, &[], how);
                    prop_assert_eq!(all.len(), items);
                    for &(id, _, bits) in &all {
                        let r = (0..items).find(|&r| inputs.item_id(r) == id).unwrap();
                        let original = inputs.item_row(r);
                        let max_abs = original.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                        let (mut exact, mut bound, mut size) = (0.0f64, 0.0f64, 0.0f64);
                        for (c, (&u, &v)) in user.iter().zip(original).enumerate() {
                            let err = f64::from(error_bound(values, original[c], max_abs));
                            exact += f64::from(u) * f64::from(v);
                            bound += f64::from(u.abs()) * err;
                            size += f64::from(u.abs()) * (f64::from(v.abs()) + err);
                        }
                        let rounding = (dim as f64 + 8.0) * 2f64.powi(-23) * size;
                        rounding_of.insert(id, rounding);
                        let score = f64::from(f32::from_bits(bits));
                        prop_assert!(
                            (score - exact).abs() <= bound + rounding,
                            "{values} {layout:?} {how:?} item {id}: {score} vs {exact} \
                             (bound {bound}, rounding {rounding})"
                        );
                    }
                    answers.push(all);
                }
                // With both layouts, the two scans give every item the same quantized score
                // up to summation order: each is within the f32 rounding bound of the exact
                // sum, so they differ by at most twice it (a relative tolerance would fail
                // where terms cancel, e.g. d = 300 with a dense user).
                if let [rows, columns] = &answers[..] {
                    let by_id: std::collections::HashMap<u64, u32> =
                        rows.iter().map(|&(id, _, bits)| (id, bits)).collect();
                    for &(id, _, bits) in columns {
                        let x = f64::from(f32::from_bits(by_id[&id]));
                        let y = f64::from(f32::from_bits(bits));
                        prop_assert!(
                            (x - y).abs() <= 2.0 * rounding_of[&id],
                            "{values} item {id}: rows {x} vs columns {y}"
                        );
                    }
                }
            }
        }
    }
}

/// Quantized encodings keep the ranking: overlap@20 against the f32 brute force on random
/// normal tables (f16 >= 0.99, int8 >= 0.97 and int4 >= 0.9, averaged over users; int4
/// measured 0.943).
#[test]
fn quantized_top_k_overlap() {
    let (users, items, dim, k) = (50, 4000, 64, 20);
    let base = Inputs::random(7, users, items, dim, 0.1);
    let mut base = base;
    base.scoring = pocketrec::Scoring::Dot;
    base.user_bias = None;
    base.item_bias = None;
    base.global_bias = 0.0;
    for (values, floor) in [
        (ValueEncoding::F16, 0.99),
        (ValueEncoding::Bf16, 0.9),
        (ValueEncoding::I8, 0.97),
        (ValueEncoding::I4, 0.9),
    ] {
        let mut inputs = base.clone();
        inputs.values = values;
        let bytes = inputs.build();
        let model = Model::from_bytes(&bytes).unwrap();
        let mut out = vec![Recommendation::default(); k];
        let mut overlap = 0usize;
        for u in 0..users {
            let n = model
                .recommend(inputs.user_id(u), k, &[], &mut out)
                .unwrap();
            let want = inputs.reference_top_k(inputs.user_row(u), 0.0, k, &[]);
            overlap += out[..n]
                .iter()
                .filter(|r| want.iter().any(|w| w.0 == r.id))
                .count();
        }
        let ratio = overlap as f64 / (users * k) as f64;
        println!("{values}: overlap@{k} = {ratio:.4}");
        assert!(ratio >= floor, "{values}: overlap@{k} = {ratio} < {floor}");
    }
}

/// A buffer at an odd address gives the same answers: nothing is cast in place.
#[test]
fn misaligned_buffer_gives_same_answers() {
    let inputs = Inputs::random(11, 5, 50, 17, 0.3);
    let bytes = inputs.build();
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let aligned = Model::from_bytes(&bytes).unwrap();
    let odd = Model::from_bytes(&shifted[1..]).unwrap();
    odd.verify().unwrap();
    let (mut a, mut b) = (
        [Recommendation::default(); 7],
        [Recommendation::default(); 7],
    );
    for u in 0..5 {
        let id = inputs.user_id(u);
        let na = aligned.recommend(id, 7, &[], &mut a).unwrap();
        let nb = odd.recommend(id, 7, &[], &mut b).unwrap();
        assert_eq!(a[..na], b[..nb]);
    }
}

/// Models can be shared between threads.
#[test]
fn models_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Model<&[u8]>>();
    check::<Model<Vec<u8>>>();
}
