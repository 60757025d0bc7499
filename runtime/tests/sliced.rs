//! Tables of sliced rows (format 1.4, `TableSpec::with_sliced_rows`): they decode to the row
//! records' bits, answer every query with the scores `score` computes for each item (the
//! brute-force reference, one product after another in column order), equal the row records'
//! answers bit for bit with f32 values, verify, and catch damage.
#![cfg(feature = "sliced-rows")]

mod common;

use common::{Inputs, section, top};
use pocketrec::builder::Layout;
use pocketrec::format::reseal;
use pocketrec::{Error, Model, Recommendation, Retrieval, Scoring, SectionKind, ValueEncoding};
use proptest::prelude::*;
use rand::SeedableRng;

/// The top `k` of every item's `score_candidates_vector` score, best first, ties to the
/// earlier row, without the excluded ids: (id, row, score bits).
fn brute_force(
    model: &Model<&[u8]>,
    user: &[f32],
    k: usize,
    exclude: &[u64],
) -> Vec<(u64, usize, u32)> {
    let items = model.items().unwrap();
    let ids: Vec<u64> = (0..items.rows()).map(|r| items.id(r).unwrap()).collect();
    let mut scores = vec![0.0f32; ids.len()];
    model
        .score_candidates_vector(user, &ids, &mut scores)
        .unwrap();
    let mut all: Vec<(u64, usize, f32)> = ids
        .iter()
        .zip(&scores)
        .enumerate()
        .filter(|(_, (id, _))| !exclude.contains(id))
        .map(|(row, (&id, &score))| (id, row, score))
        .collect();
    all.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all.into_iter()
        .map(|(i, r, s)| (i, r, s.to_bits()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn sliced_rows_answer_as_their_scores(
        seed in any::<u64>(),
        items in 1usize..3000,
        dim in prop::sample::select(vec![1usize, 7, 16, 33, 64, 65, 130]),
        density in 0.0f64..0.5,
        user_density in 0.0f64..1.0,
        k in 1usize..25,
        cosine in any::<bool>(),
        biases in any::<bool>(),
    ) {
        for &values in ValueEncoding::ALL {
            let mut inputs = Inputs::random(seed, 3, items, dim, density);
            inputs.values = values;
            inputs.scoring = if cosine { Scoring::Cosine } else { Scoring::Dot };
            if !biases {
                inputs.user_bias = None;
                inputs.item_bias = None;
            }
            let records_bytes = inputs.build();
            inputs.sliced = true;
            if values == ValueEncoding::I4 {
                // Sliced rows do not take int4 values: the builder says so.
                let refused = inputs.try_build().unwrap_err().to_string();
                prop_assert!(refused.contains("sliced rows do not take int4"), "{}", refused);
                continue;
            }
            let sliced_bytes = inputs.build();
            let records = Model::from_bytes(&records_bytes).unwrap();
            let sliced = Model::from_bytes(&sliced_bytes).unwrap();
            sliced.verify().unwrap();
            prop_assert_eq!(sliced.format_minor(), 4);
            let (items_r, items_s) = (records.items().unwrap(), sliced.items().unwrap());
            prop_assert!(items_s.has_sliced_rows() && items_s.has_rows());
            prop_assert!(!items_r.has_sliced_rows());
            prop_assert_eq!(items_s.nnz(), items_r.nnz());
            prop_assert_eq!(items_s.empty_rows().unwrap(), items_r.empty_rows().unwrap());
            let no_record = matches!(items_s.row(0), Err(Error::RowsNotStored { .. }));
            prop_assert!(no_record, "row() of a sliced table");

            // Rows decode to the records' bits.
            let (mut x, mut y) = (vec![0.0f32; dim], vec![0.0f32; dim]);
            for row in 0..items {
                items_r.decode_row(row, &mut x).unwrap();
                items_s.decode_row(row, &mut y).unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(&x), bits(&y), "row {}", row);
            }

            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 7);
            let users = common::random_dense(&mut rng, 2, dim, user_density);
            let exclude: Vec<u64> = (0..items).step_by(3).map(|r| inputs.item_id(r)).collect();
            for u in 0..2 {
                let user = &users[u * dim..(u + 1) * dim];
                for ex in [&[][..], &exclude[..]] {
                    let want = brute_force(&sliced, user, k, ex);
                    prop_assert_eq!(&top(&sliced, user, k, ex, Retrieval::Auto), &want);
                    prop_assert_eq!(&top(&sliced, user, k, ex, Retrieval::Rows), &want);
                    if values == ValueEncoding::F32 {
                        // Row records sum f32 products in column order too.
                        prop_assert_eq!(&top(&records, user, k, ex, Retrieval::Rows), &want);
                    }
                    let mut out = [Recommendation::default(); 1];
                    let columns = sliced.recommend_vector_with(user, 1, ex, &mut out, Retrieval::Columns);
                    prop_assert!(matches!(columns, Err(Error::MissingTable(_))), "{:?}", columns);
                }
                // By user id (the user table is sliced too, decoded on the stack).
                let id = inputs.user_id(u);
                let mut a = vec![Recommendation::default(); k];
                let n = sliced.recommend(id, k, &[], &mut a).unwrap();
                let mut scores = vec![0.0f32; n];
                let ids: Vec<u64> = a[..n].iter().map(|r| r.id).collect();
                sliced.score_candidates(id, &ids, &mut scores).unwrap();
                for (r, s) in a[..n].iter().zip(&scores) {
                    prop_assert_eq!(r.score.to_bits(), s.to_bits());
                }
                if values == ValueEncoding::F32 {
                    let mut b = vec![Recommendation::default(); k];
                    let m = records.recommend_with(id, k, &[], &mut b, Retrieval::Rows).unwrap();
                    prop_assert_eq!(n, m);
                    for (x, y) in a[..n].iter().zip(&b[..m]) {
                        prop_assert_eq!((x.id, x.index, x.score.to_bits()), (y.id, y.index, y.score.to_bits()));
                    }
                }
            }
        }
    }
}

/// The byte positions of a slice's parts: (record start, lengths, columns start).
fn first_slice(bytes: &[u8], values: ValueEncoding) -> (usize, [u8; 16], usize) {
    let (data, _) = section(bytes, SectionKind::RowData);
    let mut lengths = [0u8; 16];
    lengths.copy_from_slice(&bytes[data..data + 16]);
    let header = 32 + if values == ValueEncoding::I8 { 32 } else { 0 };
    (data, lengths, data + header)
}

#[test]
fn verify_and_queries_catch_damaged_slices() {
    for values in [ValueEncoding::F16, ValueEncoding::I8] {
        let mut inputs = Inputs::random(21, 3, 1_000, 16, 0.3);
        inputs.values = values;
        inputs.sliced = true;
        let bytes = inputs.build();
        let model = Model::from_bytes(&bytes).unwrap();
        model.verify().unwrap();
        let (start, lengths, columns) = first_slice(&bytes, values);
        let step0 = lengths.iter().filter(|&&n| n > 0).count();
        assert!(lengths[0] >= 2, "lane 0 of the first slice has two entries");
        let damage = |edit: &dyn Fn(&mut [u8])| {
            let mut b = bytes.clone();
            edit(&mut b);
            reseal(&mut b);
            b
        };
        let mut files = vec![
            // Lane 0's first two columns swapped; a column at the dimension; a length one
            // more than the record holds; lanes 0 and 1 holding the same row.
            (
                "columns out of order",
                damage(&|b| b.swap(columns, columns + step0)),
            ),
            ("column at the dimension", damage(&|b| b[columns] = 16)),
            ("length past the record", damage(&|b| b[start] += 1)),
            (
                "one row in two lanes",
                damage(&|b| b[start + 17] = b[start + 16]),
            ),
        ];
        if values == ValueEncoding::I8 {
            files.push((
                "int8 scale of 0",
                damage(&|b| b[start + 16..start + 18].fill(0)),
            ));
        }
        let user = [1.0f32; 16];
        for (what, file) in &files {
            let model = Model::from_bytes(file).unwrap();
            let verified = model.verify();
            assert!(verified.is_err(), "{values} {what}: passed verify");
            // The scan reads every slice, so it meets the damage and says so.
            let mut out = [Recommendation::default(); 5];
            let scanned = model.recommend_vector_with(&user, 5, &[], &mut out, Retrieval::Rows);
            assert!(
                matches!(scanned, Err(Error::CorruptRow { row: 0, .. })),
                "{values} {what}: {scanned:?}"
            );
            // The row lane 0 holds (the first row of the window, as the lanes read before the
            // damage) no longer decodes.
            let mut row = [0.0f32; 16];
            let held = usize::from(bytes[start + 16]);
            assert!(
                model.items().unwrap().decode_row(held, &mut row).is_err(),
                "{values} {what}"
            );
        }
    }
}

#[test]
fn sliced_rows_refuse_what_they_cannot_hold() {
    use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
    let build = |rows: usize, dim: usize, layout: Layout| {
        let m = SparseMatrix::from_dense(rows, dim, &vec![1.0f32; rows * dim]).unwrap();
        let spec = TableSpec::new("items", pocketrec::Role::Item, m)
            .layout(layout)
            .with_sliced_rows(true);
        ModelBuilder::new().table(spec).build()
    };
    assert!(build(3, 16, Layout::Rows).is_ok());
    for (rows, dim, layout, says) in [
        (3, 16, Layout::Both, "column layout"),
        (3, 16, Layout::Columns, "column layout"),
        (1, 256, Layout::Rows, "255"),
        (1, 300, Layout::Rows, "256"),
    ] {
        let message = build(rows, dim, layout).unwrap_err().to_string();
        assert!(message.contains(says), "{message}");
    }
}
