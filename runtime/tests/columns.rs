//! The column layout (format 1.1, and 1.3 with bitmap posting lists): it round-trips, `verify`
//! checks it against the rows, and the column scan gives exactly the row scan's answers.

mod common;

use common::{Inputs, section, top};
use pocketrec::builder::Layout;
use pocketrec::format::reseal;
use pocketrec::{
    ListRows, Model, Recommendation, Retrieval, SectionKind, U16_LIST_BYTE_QUARTERS, ValueEncoding,
};
use proptest::prelude::*;

fn dims() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![1usize, 5, 16, 64, 130])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20))]

    /// With f32 values both scans give the same ids, rows and score bits, equal to the dense
    /// brute force. With f16, bf16 and int8 the row scan sums in eight lanes and the column
    /// scan sequentially, so scores may differ in the last bits: they agree position by
    /// position within 1e-5 (relative), and ids differ only where scores nearly tie.
    #[test]
    fn column_scan_equals_row_scan(
        seed in any::<u64>(),
        items in 0usize..6000,
        dim in dims(),
        density in 0.0f64..0.6,
        user_density in 0.0f64..1.0,
        k in 0usize..30,
        list_rows in prop::sample::select(vec![ListRows::U16, ListRows::Bitmap]),
    ) {
        for &values in ValueEncoding::ALL {
            let mut inputs = Inputs::random(seed, 3, items, dim, density);
            inputs.values = values;
            inputs.layout = Layout::Both;
            inputs.list_rows = list_rows;
            let bytes = inputs.build();
            let model = Model::from_bytes(&bytes).unwrap();
            prop_assert!(model.items().unwrap().has_columns());
            let users = common::random_dense(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 1), 3, dim, user_density);
            let exclude: Vec<u64> = (0..items).step_by(5).map(|r| inputs.item_id(r)).collect();
            for u in 0..3 {
                let user = &users[u * dim..(u + 1) * dim];
                for ex in [&[][..], &exclude[..]] {
                    let rows = top(&model, user, k, ex, Retrieval::Rows);
                    let columns = top(&model, user, k, ex, Retrieval::Columns);
                    prop_assert_eq!(rows.len(), columns.len());
                    if values != ValueEncoding::F32 {
                        let score = |bits: u32| f32::from_bits(bits);
                        let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0);
                        for (r, c) in rows.iter().zip(&columns) {
                            prop_assert!(close(score(r.2), score(c.2)), "{values}: {r:?} vs {c:?}");
                            if r.0 != c.0 {
                                // A swap is only allowed between nearly tied items.
                                let other = columns.iter().find(|x| x.0 == r.0).map(|x| score(x.2));
                                prop_assert!(other.is_none_or(|o| close(o, score(r.2))));
                            }
                        }
                        continue;
                    }
                    prop_assert_eq!(&rows, &columns);
                    {
                        let want: Vec<(u64, u32)> = inputs.reference_top_k(user, 0.0, k, ex).into_iter().map(|(id, s)| (id, s.to_bits())).collect();
                        let got: Vec<(u64, u32)> = columns.iter().map(|&(id, _, s)| (id, s)).collect();
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }
}

use rand::SeedableRng;

#[test]
fn column_layout_verifies_and_costs_what_inspect_says() {
    let mut inputs = Inputs::random(9, 4, 10_000, 64, 0.1);
    inputs.per_row_offsets = true; // u8-list rows, as the byte counts below assume
    let lists = 10_000usize.div_ceil(4096) * 64;
    for (list_rows, minor) in [(ListRows::U16, 1), (ListRows::Bitmap, 3)] {
        for &values in ValueEncoding::ALL {
            for scoring in [pocketrec::Scoring::Dot, pocketrec::Scoring::Cosine] {
                inputs.values = values;
                inputs.scoring = scoring;
                inputs.layout = Layout::Both;
                inputs.list_rows = list_rows;
                let bytes = inputs.build();
                let model = Model::from_bytes(&bytes).unwrap();
                model.verify().unwrap();
                let int4 = values == ValueEncoding::I4;
                assert_eq!(model.format_minor(), if int4 { 6 } else { minor });
                let items = model.items().unwrap();
                let [offsets, entries, vals, norms, scales] = items.column_bytes();
                match list_rows {
                    ListRows::U16 => assert_eq!(entries as u64, 2 * items.nnz()),
                    ListRows::Bitmap => assert_eq!(entries, lists * 4096 / 8),
                }
                let value_bytes = values.value_bytes(items.nnz() as usize).unwrap();
                assert_eq!(vals, value_bytes);
                assert_eq!(offsets, 4 * (10_000usize.div_ceil(4096) * 64 + 1));
                assert_eq!(norms > 0, scoring == pocketrec::Scoring::Cosine);
                assert_eq!(scales > 0, values.is_scaled());
            }
        }
    }
    // Unless told otherwise, the writer keeps u16 rows, readable by 1.1 readers.
    inputs.list_rows = ListRows::default();
    inputs.values = ValueEncoding::I8; // int4 files are 1.6 whatever their layout

    assert_eq!(
        Model::from_bytes(&inputs.build()).unwrap().format_minor(),
        1
    );
}

#[test]
fn verify_catches_columns_that_disagree_with_rows() {
    for (list_rows, rows_kind) in [
        (ListRows::U16, SectionKind::ColumnItems),
        (ListRows::Bitmap, SectionKind::ColumnBitmaps),
    ] {
        let mut inputs = Inputs::random(4, 3, 5_000, 16, 0.2);
        inputs.layout = Layout::Both;
        inputs.values = ValueEncoding::I8;
        inputs.scoring = pocketrec::Scoring::Cosine;
        inputs.list_rows = list_rows;
        let bytes = inputs.build();
        for kind in [
            SectionKind::ColumnValues,
            rows_kind,
            SectionKind::RowNorms,
            SectionKind::RowScales,
        ] {
            let (start, end) = section(&bytes, kind);
            for at in [start, (start + end) / 2, end - 1] {
                let mut b = bytes.clone();
                b[at] ^= 0x01;
                reseal(&mut b);
                let model = Model::from_bytes(&b).unwrap();
                assert!(
                    model.verify().is_err(),
                    "{kind:?} byte {at} changed, verify passed"
                );
                // Queries on the damaged file answer or fail, never panic.
                let mut out = [Recommendation::default(); 5];
                let _ =
                    model.recommend_vector_with(&[1.0; 16], 5, &[], &mut out, Retrieval::Columns);
            }
        }
        // A row past its block (or, for bitmaps, rows for which there are no values) is an
        // error at query time.
        let (start, end) = section(&bytes, rows_kind);
        let mut b = bytes.clone();
        b[start..end].fill(0xFF);
        reseal(&mut b);
        let model = Model::from_bytes(&b).unwrap();
        let mut out = [Recommendation::default(); 5];
        let r = model.recommend_vector_with(&[1.0; 16], 5, &[], &mut out, Retrieval::Columns);
        assert!(r.is_err(), "{list_rows:?}: {r:?} {:?}", &out);
    }
}

/// `u16` posting lists: the columns for sparse and dense users alike (a dense user's lists
/// hold a little more than the row data, but each of their bytes counts three quarters of a
/// row byte); bitmap lists: the columns for sparse users, the rows for dense ones.
#[test]
fn plan_weighs_the_bytes_each_way_reads() {
    let mut inputs = Inputs::random(5, 2, 20_000, 64, 0.1);
    // u8-list rows with their offsets (format 1.6's choice at 10 %), the weights' reference.
    inputs.per_row_offsets = true;
    inputs.layout = Layout::Both;
    inputs.list_rows = ListRows::U16;
    inputs.scoring = pocketrec::Scoring::Dot;
    inputs.user_bias = None;
    inputs.item_bias = None;
    let bytes = inputs.build();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut sparse = vec![0.0f32; 64];
    sparse[3] = 1.0;
    sparse[40] = -0.5;
    let plan = model.plan(&sparse).unwrap();
    assert_eq!(plan.retrieval, Retrieval::Columns);
    assert!(
        plan.column_bytes.unwrap() * 10 < plan.row_bytes.unwrap(),
        "{plan:?}"
    );
    let dense = vec![1.0f32; 64];
    let plan = model.plan(&dense).unwrap();
    let (rows, columns) = (plan.row_bytes.unwrap(), plan.column_bytes.unwrap());
    // More bytes than the rows, but less than 4/3 of them: weighted, the columns are cheaper.
    assert!(
        rows < columns && columns * U16_LIST_BYTE_QUARTERS < rows * 4,
        "{plan:?}"
    );
    assert_eq!(plan.retrieval, Retrieval::Columns, "{plan:?}");
    // The weighted choice answers as the row scan does (f32: the same sums, bit for bit).
    let mut by_rows = [Recommendation::default(); 10];
    let mut auto = [Recommendation::default(); 10];
    let n = model
        .recommend_vector_with(&dense, 10, &[], &mut by_rows, Retrieval::Rows)
        .unwrap();
    let m = model
        .recommend_vector_with(&dense, 10, &[], &mut auto, Retrieval::Auto)
        .unwrap();
    assert_eq!(by_rows[..n], auto[..m]);
    // Bitmap lists read fewer bytes than the rows even for a dense user (an eighth of a byte
    // per item and dimension plus the values), but their work goes with the rows they cover:
    // weighted, the dense user still takes the rows, the sparse one the columns.
    inputs.list_rows = ListRows::Bitmap;
    let model_bytes = inputs.build();
    let bitmaps = Model::from_bytes(&model_bytes).unwrap();
    let plan = bitmaps.plan(&dense).unwrap();
    assert!(plan.column_bytes < plan.row_bytes, "{plan:?}");
    assert_eq!(plan.retrieval, Retrieval::Rows, "{plan:?}");
    let plan = bitmaps.plan(&sparse).unwrap();
    assert_eq!(plan.retrieval, Retrieval::Columns, "{plan:?}");
    // Without a column layout, rows it is, and forcing columns is an error.
    inputs.layout = Layout::Rows;
    let bytes = inputs.build();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.plan(&sparse).unwrap().column_bytes, None);
    let mut out = [Recommendation::default(); 3];
    assert!(
        model
            .recommend_vector_with(&sparse, 3, &[], &mut out, Retrieval::Columns)
            .is_err()
    );
}

/// Without biases the scans leave the `+ 0.0` of the score to the few rows they offer to the
/// top-k; a dot product that underflows to -0.0 must still come out as the +0.0 that
/// `((dot + 0) + 0) + 0` gives, on both paths, and a -0.0 bias must keep its -0.0.
#[test]
fn negative_zero_dot_products_score_as_the_full_formula_says() {
    let dim = 4;
    // Item 0: 1e-30 * -1e-30 underflows to -0.0; item 1: no shared dimension (+0.0);
    // item 2: a positive score; item 3: negative.
    let items = vec![
        -1e-30, 0.0, 0.0, 0.0, //
        0.0, 0.0, 0.0, 1.0, //
        0.5, 0.0, 0.0, 0.0, //
        -0.5, 0.0, 0.0, 0.0,
    ];
    for global_bias in [0.0f32, -0.0] {
        let inputs = Inputs {
            dim,
            users: vec![1e-30, 0.0, 0.0, 0.0],
            items: items.clone(),
            user_ids: None,
            item_ids: None,
            user_bias: None,
            item_bias: None,
            global_bias,
            scoring: pocketrec::Scoring::Dot,
            values: ValueEncoding::F32,
            layout: Layout::Both,
            list_rows: ListRows::U16,
            sliced: false,
            item_order: pocketrec::builder::RowOrder::ById,
            block_bounds: None,
            per_row_offsets: false,
        };
        let bytes = inputs.build();
        let model = Model::from_bytes(&bytes).unwrap();
        let user = [1e-30f32, 0.0, 0.0, 0.0];
        let rows = top(&model, &user, 4, &[], Retrieval::Rows);
        let columns = top(&model, &user, 4, &[], Retrieval::Columns);
        assert_eq!(rows, columns);
        let bits = |id: u64| rows.iter().find(|r| r.0 == id).unwrap().2;
        // ((-0.0 + 0.0) + 0.0) + g: +0.0 for g = +0.0 and for g = -0.0 (+0.0 + -0.0 = +0.0).
        assert_eq!(bits(0), 0.0f32.to_bits(), "global bias {global_bias:?}");
        assert_eq!(bits(1), 0.0f32.to_bits());
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[3].0, 3);
    }
}
