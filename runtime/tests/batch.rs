//! `recommend_batch` answers every user exactly as `recommend` does, and
//! `recommend_vector_batch` every vector as `recommend_vector` does, whatever the thread count,
//! with per-user exclusions, unknown users counted, and buffers and vectors checked.

mod common;

use common::Inputs;
use pocketrec::{Error, Model, Recommendation};

/// Checks that `recommend_batch` answers every user of `inputs` (and two unknown ones) as
/// `recommend` does, on 1, 2, 3 and all threads.
fn check_batch(inputs: &Inputs, what: &str) {
    let bytes = inputs.build();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut users: Vec<u64> = (0..inputs.n_users()).map(|r| inputs.user_id(r)).collect();
    users.push(u64::MAX - 3); // unknown
    users.insert(7, u64::MAX - 4); // unknown, in the middle
    let n_items = inputs.n_items();
    let exclusions: Vec<Vec<u64>> = (0..users.len())
        .map(|i| {
            (0..i % 4)
                .map(|j| inputs.item_id((i * 7 + j) % n_items))
                .collect()
        })
        .collect();
    let k = 10;
    let mut expected = vec![Recommendation::default(); users.len() * k];
    let mut expected_counts = vec![0usize; users.len()];
    for (i, &u) in users.iter().enumerate() {
        expected_counts[i] = model
            .recommend(u, k, &exclusions[i], &mut expected[i * k..(i + 1) * k])
            .unwrap_or(0);
    }
    for threads in [1, 2, 3, 0] {
        let mut out = vec![Recommendation::default(); users.len() * k];
        let mut counts = vec![usize::MAX; users.len()];
        let summary = model
            .recommend_batch(
                &users,
                k,
                |i| &exclusions[i],
                threads,
                &mut out,
                &mut counts,
            )
            .unwrap();
        assert_eq!(summary.unknown_users, 2, "{what}, threads {threads}");
        assert_eq!(counts, expected_counts, "{what}, threads {threads}");
        for i in 0..users.len() {
            let n = counts[i];
            assert_eq!(
                out[i * k..i * k + n],
                expected[i * k..i * k + n],
                "{what}: user {i}, threads {threads}"
            );
        }
    }
    check_vector_batch(&model, &exclusions, what);
}

/// Checks that `recommend_vector_batch` answers dense vectors (one of them zero) as
/// `recommend_vector` does, on 1, 2 and all threads.
fn check_vector_batch(model: &Model<&[u8]>, exclusions: &[Vec<u64>], what: &str) {
    let dim = model.dim().unwrap();
    let n = exclusions.len();
    let vectors: Vec<f32> = (0..n * dim)
        .map(|x| {
            if x / dim == 3 {
                0.0
            } else {
                ((x * 31 + x / dim * 17) % 13) as f32 / 6.5 - 1.0
            }
        })
        .collect();
    let k = 10;
    let mut expected = vec![Recommendation::default(); n * k];
    let mut expected_counts = vec![0usize; n];
    for i in 0..n {
        expected_counts[i] = model
            .recommend_vector(
                &vectors[i * dim..(i + 1) * dim],
                k,
                &exclusions[i],
                &mut expected[i * k..(i + 1) * k],
            )
            .unwrap();
    }
    for threads in [1, 2, 0] {
        let mut out = vec![Recommendation::default(); n * k];
        let mut counts = vec![usize::MAX; n];
        let summary = model
            .recommend_vector_batch(
                &vectors,
                k,
                |i| &exclusions[i],
                threads,
                &mut out,
                &mut counts,
            )
            .unwrap();
        assert_eq!(summary.unknown_users, 0, "{what}, threads {threads}");
        assert_eq!(
            counts, expected_counts,
            "{what}, vectors, threads {threads}"
        );
        for i in 0..n {
            let c = counts[i];
            assert_eq!(
                out[i * k..i * k + c],
                expected[i * k..i * k + c],
                "{what}: vector {i}, threads {threads}"
            );
        }
    }
}

#[test]
fn bad_vectors_are_errors() {
    let inputs = Inputs::random(10, 20, 50, 8, 0.5);
    let bytes = inputs.build();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut out = vec![Recommendation::default(); 30];
    let mut counts = vec![0; 3];
    let mut vectors = vec![0.5f32; 3 * 8];
    assert!(matches!(
        model.recommend_vector_batch(&vectors[..23], 10, |_| &[], 2, &mut out, &mut counts),
        Err(Error::DimensionMismatch { expected: 8, .. })
    ));
    vectors[2 * 8 + 5] = f32::NAN;
    assert!(matches!(
        model.recommend_vector_batch(&vectors, 10, |_| &[], 2, &mut out, &mut counts),
        Err(Error::InvalidInput {
            column: Some(5),
            ..
        })
    ));
    assert!(matches!(
        model.recommend_vector_batch(&vectors[..16], 10, |_| &[], 2, &mut out[..19], &mut counts),
        Err(Error::BufferTooSmall { needed: 20, .. })
    ));
}

#[test]
fn a_batch_answers_each_user_as_recommend_does_on_any_number_of_threads() {
    for (seed, values) in [
        (1u64, pocketrec::ValueEncoding::F32),
        (2, pocketrec::ValueEncoding::F16),
        (3, pocketrec::ValueEncoding::I8),
    ] {
        let mut inputs = Inputs::random(seed, 150, 400, 24, 0.3);
        inputs.values = values;
        check_batch(&inputs, &format!("seed {seed}, {values:?}"));
    }
}

/// Users answered by a row scan are scanned together, a batch of item rows for all of them
/// at a time: every layout, index encoding (sparse lists, bitmaps of dense rows), value
/// encoding and scoring must still give each user exactly `recommend`'s answer.
#[test]
fn users_scanned_together_get_the_answers_of_one_at_a_time() {
    use pocketrec::builder::Layout;
    use pocketrec::{Scoring, ValueEncoding};
    let mut seed = 100u64;
    for density in [0.08, 0.4, 1.0] {
        for (layout, sliced) in [
            (Layout::Rows, false),
            (Layout::Rows, true),
            (Layout::Both, false),
            (Layout::Columns, false),
        ] {
            for values in [
                ValueEncoding::F32,
                ValueEncoding::F16,
                ValueEncoding::Bf16,
                ValueEncoding::I8,
                ValueEncoding::I4,
            ] {
                if sliced && values == ValueEncoding::I4 {
                    continue; // sliced rows take no int4 values
                }
                for scoring in [Scoring::Dot, Scoring::Cosine] {
                    seed += 1;
                    let mut inputs = Inputs::random(seed, 40, 700, 16, density);
                    inputs.layout = layout;
                    inputs.sliced = sliced;
                    inputs.values = values;
                    inputs.scoring = scoring;
                    check_batch(
                        &inputs,
                        &format!(
                            "seed {seed}, density {density}, {layout:?}, sliced {sliced}, \
                             {values:?}, {scoring:?}"
                        ),
                    );
                }
            }
        }
    }
}

#[test]
fn small_buffers_are_errors() {
    let inputs = Inputs::random(9, 20, 50, 8, 0.5);
    let bytes = inputs.build();
    let model = Model::from_bytes(&bytes).unwrap();
    let users: Vec<u64> = (0..5).map(|r| inputs.user_id(r)).collect();
    let mut out = vec![Recommendation::default(); 5 * 3 - 1];
    let mut counts = vec![0; 5];
    assert!(matches!(
        model.recommend_batch(&users, 3, |_| &[], 2, &mut out, &mut counts),
        Err(Error::BufferTooSmall { needed: 15, .. })
    ));
    let mut out = vec![Recommendation::default(); 15];
    let mut counts = vec![0; 4];
    assert!(matches!(
        model.recommend_batch(&users, 3, |_| &[], 2, &mut out, &mut counts),
        Err(Error::BufferTooSmall { needed: 5, .. })
    ));
    // k = 0 and no users are fine.
    let mut counts = vec![9; 5];
    model
        .recommend_batch(&users, 0, |_| &[], 2, &mut [], &mut counts)
        .unwrap();
    assert_eq!(counts, vec![0; 5]);
    model
        .recommend_batch(&[], 3, |_| &[], 2, &mut [], &mut [])
        .unwrap();
}
