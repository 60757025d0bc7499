//! Built without the `sliced-rows` feature (as the Cortex-M4F firmware builds the runtime),
//! a file of sliced rows is refused at open with an error that names the feature, and files
//! without them open as before. CI runs it with
//! `cargo test -p pocketrec --no-default-features --features std --test no_sliced_rows`.
#![cfg(not(feature = "sliced-rows"))]

use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{Error, Model, Role};

#[test]
fn sliced_rows_are_refused_by_name() {
    let m = SparseMatrix::from_dense(20, 4, &[0.5f32; 80]).unwrap();
    let build = |sliced: bool| {
        ModelBuilder::new()
            .table(TableSpec::new("items", Role::Item, m.clone()).with_sliced_rows(sliced))
            .build()
            .unwrap()
    };
    let records = build(false);
    Model::from_bytes(&records).unwrap().verify().unwrap();
    let sliced = build(true);
    let refused = Model::from_bytes(&sliced).map(|_| ()).unwrap_err();
    assert!(
        matches!(refused, Error::Unsupported { code: 4, .. }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("sliced-rows"), "{refused}");
}
