//! Built without the `block-bounds` feature (as the Cortex-M4F firmware builds the runtime), a
//! table with block bounds is refused with an error that names the feature (the builder, which
//! computes bounds from the assembled file, refuses to write one), and files without them open
//! as before. CI runs it with
//! `cargo test -p pocketrec --no-default-features --features std --test no_block_bounds`.
#![cfg(not(feature = "block-bounds"))]

use pocketrec::builder::{Layout, ModelBuilder, RowOrder, SparseMatrix, TableSpec};
use pocketrec::{Error, Model, Role};

#[test]
fn block_bounds_are_refused_by_name() {
    let values: Vec<f32> = (0..64 * 4).map(|k| (k % 7) as f32 - 3.0).collect();
    let items = SparseMatrix::from_dense(64, 4, &values).unwrap();
    let users = SparseMatrix::from_dense(3, 4, &[0.5f32; 12]).unwrap();
    let build = |bounds: bool| {
        let mut spec = TableSpec::new("items", Role::Item, items.clone());
        if bounds {
            spec = spec
                .layout(Layout::Columns)
                .row_order(RowOrder::Clustered)
                .with_block_bounds(64);
        }
        ModelBuilder::new()
            .table(TableSpec::new("users", Role::User, users.clone()))
            .table(spec)
            .build()
    };
    let plain = build(false).unwrap();
    Model::from_bytes(&plain).unwrap().verify().unwrap();
    let refused = build(true).map(|_| ()).unwrap_err();
    assert!(
        matches!(refused, Error::Unsupported { code: 15, .. }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("block-bounds"), "{refused}");
}
