//! Tables stored only as a column layout (format 1.2, `Layout::Columns`): they answer every
//! query exactly as the column scan of the same table written with both layouts does, decode
//! their rows exactly as the row records would, verify, and refuse what needs row records.

mod common;

use common::{Inputs, section, top};
use pocketrec::builder::Layout;
use pocketrec::format::{self, MetadataRecord, reseal};
use pocketrec::{
    Error, IndexEncoding, ListRows, Model, Recommendation, Retrieval, Scoring, SectionKind,
    ValueEncoding,
};
use proptest::prelude::*;
use rand::SeedableRng;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Same inputs written with both layouts and with columns only: the same top-k, rows and
    /// score bits as the column scan of the first, by id and by vector, with and without
    /// exclusions; `score_candidates` gives the scan's score bits; rows decode to the bits the
    /// row records decode to.
    #[test]
    fn columns_only_answers_as_the_column_scan(
        seed in any::<u64>(),
        items in 1usize..5000,
        dim in prop::sample::select(vec![1usize, 7, 16, 64, 130]),
        density in 0.0f64..0.5,
        user_density in 0.0f64..1.0,
        k in 1usize..25,
        cosine in any::<bool>(),
        biases in any::<bool>(),
        list_rows in prop::sample::select(vec![ListRows::U16, ListRows::Bitmap]),
    ) {
        for &values in ValueEncoding::ALL {
            let mut inputs = Inputs::random(seed, 3, items, dim, density);
            inputs.values = values;
            inputs.scoring = if cosine { Scoring::Cosine } else { Scoring::Dot };
            if !biases {
                inputs.user_bias = None;
                inputs.item_bias = None;
            }
            inputs.layout = Layout::Both;
            inputs.list_rows = list_rows;
            let both_bytes = inputs.build();
            inputs.layout = Layout::Columns;
            let only_bytes = inputs.build();
            let both = Model::from_bytes(&both_bytes).unwrap();
            let only = Model::from_bytes(&only_bytes).unwrap();
            only.verify().unwrap();
            let (items_both, items_only) = (both.items().unwrap(), only.items().unwrap());
            let bitmaps = list_rows == ListRows::Bitmap;
            prop_assert_eq!(items_both.column_list_rows(), Some(list_rows));
            prop_assert_eq!(items_only.column_list_rows(), Some(list_rows));
            let int4 = values == ValueEncoding::I4;
            // Bitmap rows in blocks (format 1.7) wherever a table stores bitmap rows.
            let in_blocks = |m: &Model<&[u8]>| {
                [m.users(), m.items()]
                    .iter()
                    .any(|t| t.as_ref().is_ok_and(|t| t.index_encoding() == IndexEncoding::BitmapBlocks))
            };
            let minor = |m: &Model<&[u8]>, rows_minor| {
                if in_blocks(m) { 7 } else if int4 { 6 } else if bitmaps { 3 } else { rows_minor }
            };
            prop_assert_eq!(both.format_minor(), minor(&both, 1));
            prop_assert_eq!(only.format_minor(), minor(&only, 2));
            prop_assert!(!items_only.has_rows() && items_only.has_columns());
            prop_assert_eq!(items_only.empty_rows().unwrap(), items_both.empty_rows().unwrap());
            let no_rows = matches!(items_only.row(0), Err(Error::RowsNotStored { .. }));
            prop_assert!(no_rows, "row() of a table without row records");
            prop_assert!(only_bytes.len() < both_bytes.len());

            let users = common::random_dense(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 7), 2, dim, user_density);
            let exclude: Vec<u64> = (0..items).step_by(3).map(|r| inputs.item_id(r)).collect();
            for u in 0..2 {
                let user = &users[u * dim..(u + 1) * dim];
                for ex in [&[][..], &exclude[..]] {
                    let want = top(&both, user, k, ex, Retrieval::Columns);
                    prop_assert_eq!(&top(&only, user, k, ex, Retrieval::Auto), &want);
                    prop_assert_eq!(&top(&only, user, k, ex, Retrieval::Columns), &want);
                    let mut out = [Recommendation::default(); 1];
                    let rows = only.recommend_vector_with(user, 1, ex, &mut out, Retrieval::Rows);
                    let refused = matches!(rows, Err(Error::RowsNotStored { .. }));
                    prop_assert!(refused, "{:?}", rows);
                    // score_candidates_vector computes what the scan computed.
                    let ids: Vec<u64> = want.iter().map(|w| w.0).collect();
                    let mut scores = vec![0.0f32; ids.len()];
                    only.score_candidates_vector(user, &ids, &mut scores).unwrap();
                    let bits: Vec<u32> = scores.iter().map(|s| s.to_bits()).collect();
                    let want_bits: Vec<u32> = want.iter().map(|w| w.2).collect();
                    prop_assert_eq!(bits, want_bits);
                }
                // By user id: the user table is stored by columns too (Inputs applies the
                // layout to both tables), decoded on the stack.
                let mut a = vec![Recommendation::default(); k];
                let mut b = vec![Recommendation::default(); k];
                let id = inputs.user_id(u);
                let na = both.recommend_with(id, k, &[], &mut a, Retrieval::Columns).unwrap();
                let nb = only.recommend(id, k, &[], &mut b).unwrap();
                prop_assert_eq!(na, nb);
                for (x, y) in a[..na].iter().zip(&b[..nb]) {
                    prop_assert_eq!((x.id, x.index, x.score.to_bits()), (y.id, y.index, y.score.to_bits()));
                }
            }
            // Rows decode to the same bits from the posting lists as from the records.
            let (mut x, mut y) = (vec![0.0f32; dim], vec![0.0f32; dim]);
            for row in (0..items).step_by((items / 50).max(1)) {
                items_both.decode_row(row, &mut x).unwrap();
                items_only.decode_row(row, &mut y).unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(&x), bits(&y), "row {}", row);
            }
        }
    }
}

#[test]
fn verify_checks_what_no_row_record_backs_up() {
    let mut inputs = Inputs::random(11, 3, 6_000, 16, 0.2);
    inputs.layout = Layout::Columns;
    inputs.list_rows = ListRows::U16;
    inputs.values = ValueEncoding::I8;
    inputs.scoring = Scoring::Cosine;
    let bytes = inputs.build();
    Model::from_bytes(&bytes).unwrap().verify().unwrap();
    let damage = |edit: &dyn Fn(&mut [u8])| {
        let mut b = bytes.clone();
        edit(&mut b);
        reseal(&mut b);
        b
    };
    // A row out of order in its list, a row past its block, a scale of 0 for a non-empty
    // row, a changed norm: each is a resealed file that opens, and verify refuses it.
    let (items_at, items_end) = section(&bytes, SectionKind::ColumnItems);
    let (scales_at, scales_end) = section(&bytes, SectionKind::RowScales);
    let (norms_at, _) = section(&bytes, SectionKind::RowNorms);
    let nonempty = (0..inputs.n_items())
        .find(|&r| {
            inputs
                .item_file_order()
                .get(r)
                .is_some_and(|&i| inputs.item_row(i).iter().any(|&v| v != 0.0))
        })
        .unwrap();
    let files = [
        damage(&|b| b.swap(items_at, items_at + 2)),
        damage(&|b| b[items_end - 2..items_end].copy_from_slice(&u16::MAX.to_le_bytes())),
        damage(&|b| b[scales_at + 2 * nonempty..scales_at + 2 * nonempty + 2].fill(0)),
        damage(&|b| b[scales_end - 2..scales_end].copy_from_slice(&0x7C00u16.to_le_bytes())),
        damage(&|b| b[norms_at + 4 * nonempty] ^= 1),
    ];
    for (i, file) in files.iter().enumerate() {
        let model = Model::from_bytes(file).unwrap();
        assert!(model.verify().is_err(), "damage {i} passed verify");
        // Queries answer or fail, never panic.
        let mut out = [Recommendation::default(); 5];
        let _ = model.recommend_vector_with(&[1.0; 16], 5, &[], &mut out, Retrieval::Auto);
        let _ = model.recommend(inputs.user_id(0), 5, &[], &mut out);
    }
    // Without resealing, any flipped byte of a column section fails its checksum.
    for kind in [
        SectionKind::ColumnOffsets,
        SectionKind::ColumnItems,
        SectionKind::ColumnValues,
    ] {
        let (start, end) = section(&bytes, kind);
        let mut b = bytes.clone();
        b[(start + end) / 2] ^= 0x10;
        assert!(
            Model::from_bytes(&b)
                .map(|m| m.verify().is_err())
                .unwrap_or(true),
            "{kind:?}"
        );
    }
}

#[test]
fn verify_and_queries_catch_damaged_bitmap_lists() {
    let mut inputs = Inputs::random(12, 3, 6_000, 16, 0.2);
    inputs.layout = Layout::Columns;
    inputs.list_rows = ListRows::Bitmap;
    inputs.scoring = Scoring::Cosine;
    let bytes = inputs.build();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.format_minor(), 3);
    model.verify().unwrap();
    let (at, end) = section(&bytes, SectionKind::ColumnBitmaps);
    // 6,000 rows: two blocks of 4,096 rows, 512 bytes per list, lists dimension by dimension.
    assert_eq!(end - at, 16 * 2 * 512);
    let first_set = (at..at + 512).find(|&i| bytes[i] != 0).unwrap();
    let first_clear = (at..at + 512).find(|&i| bytes[i] != 0xFF).unwrap();
    let damage = |edit: &dyn Fn(&mut [u8])| {
        let mut b = bytes.clone();
        edit(&mut b);
        reseal(&mut b);
        b
    };
    let files = [
        // A row with no value, a value with no row, a row past the table's last row (row
        // 6,000 is bit 0 of byte 238 of list (block 1, dimension 0)).
        damage(&|b| b[first_clear] |= !b[first_clear] & b[first_clear].wrapping_add(1)),
        damage(&|b| b[first_set] &= b[first_set] - 1),
        damage(&|b| b[at + 512 + (6_000 - 4_096) / 8] |= 1),
    ];
    let user = [1.0f32; 16];
    for (i, file) in files.iter().enumerate() {
        let model = Model::from_bytes(file).unwrap();
        assert!(model.verify().is_err(), "damage {i} passed verify");
        // Every user dimension is read, so the scan meets the damage and says so.
        let mut out = [Recommendation::default(); 5];
        let r = model.recommend_vector_with(&user, 5, &[], &mut out, Retrieval::Columns);
        assert!(
            matches!(r, Err(Error::CorruptTable { .. })),
            "damage {i}: {r:?}"
        );
    }
}

/// Re-encodes the metadata of `bytes` after `edit`, keeping every section.
fn with_metadata(
    bytes: &[u8],
    edit: impl FnOnce(&mut MetadataRecord<'_>, &mut Vec<u8>),
) -> Vec<u8> {
    let model = Model::from_bytes(bytes).unwrap();
    let sections: Vec<(SectionKind, Vec<u8>)> = model
        .sections()
        .map(|s| {
            (
                s.kind,
                bytes[s.offset as usize..(s.offset + s.length) as usize].to_vec(),
            )
        })
        .collect();
    let (mut record, rest): (MetadataRecord<'_>, &[u8]) =
        postcard::take_from_bytes(&sections[0].1).unwrap();
    let mut extension = rest.to_vec();
    edit(&mut record, &mut extension);
    let mut metadata = postcard::to_allocvec(&record).unwrap();
    metadata.extend(extension);
    let mut refs: Vec<(SectionKind, &[u8])> = vec![(SectionKind::Metadata, &metadata)];
    refs.extend(sections[1..].iter().map(|(k, b)| (*k, b.as_slice())));
    pocketrec::builder::assemble(&refs)
}

#[test]
fn half_a_missing_row_layout_and_no_layout_at_all_are_refused_at_open() {
    let mut inputs = Inputs::random(3, 3, 500, 8, 0.3);
    inputs.layout = Layout::Both;
    let both = inputs.build();
    // Unchanged, the re-encoded file opens (the helper itself is sound).
    Model::from_bytes(&with_metadata(&both, |_, _| {})).unwrap();
    // Row data without row offsets.
    let b = with_metadata(&both, |m, _| {
        m.tables[1].offsets_section = format::NO_SECTION
    });
    assert!(matches!(
        Model::from_bytes(&b),
        Err(Error::InvalidMetadata(_))
    ));
    // Offsets without data.
    let b = with_metadata(&both, |m, _| m.tables[1].data_section = format::NO_SECTION);
    assert!(matches!(
        Model::from_bytes(&b),
        Err(Error::InvalidMetadata(_))
    ));
    // Neither rows nor columns: a columns-only file whose column layouts are dropped.
    inputs.layout = Layout::Columns;
    let only = inputs.build();
    let b = with_metadata(&only, |_, extension| extension.clear());
    assert!(Model::from_bytes(&b).is_err());
}
