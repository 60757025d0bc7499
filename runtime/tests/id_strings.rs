//! String ids' original strings: stored in file row order, given back by id, looked up
//! exactly, checked by verify, refused by the builder when they do not match the ids.

mod common;

use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{Error, IdKind, Model, Role, SectionKind, string_id};

fn names(n: usize) -> Vec<String> {
    // Unicode included; the input order is not the hash order.
    (0..n)
        .map(|i| format!("sku-{i}-é{}", "x".repeat(i % 5)))
        .collect()
}

fn build(strings: &[String]) -> Vec<u8> {
    let ids: Vec<u64> = strings.iter().map(|s| string_id(s)).collect();
    let n = strings.len();
    let dense: Vec<f32> = (0..n * 3).map(|i| (i % 7) as f32 - 3.0).collect();
    let items = SparseMatrix::from_dense(n, 3, &dense).unwrap();
    let users = SparseMatrix::from_dense(2, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
    ModelBuilder::new()
        .table(TableSpec::new("users", Role::User, users))
        .table(
            TableSpec::new("items", Role::Item, items)
                .ids(ids, IdKind::StringHash)
                .id_strings(strings.to_vec()),
        )
        .build()
        .unwrap()
}

#[test]
fn every_id_gives_its_string_back_and_strings_find_their_ids() {
    let strings = names(300);
    let bytes = build(&strings);
    let model = Model::from_bytes(&bytes).unwrap();
    model.verify().unwrap();
    let table = model.id_strings(Role::Item).unwrap().unwrap();
    assert_eq!(table.rows(), 300);
    for s in &strings {
        let id = string_id(s);
        assert_eq!(model.id_str(Role::Item, id).unwrap(), Some(s.as_str()));
        assert_eq!(model.find_str(Role::Item, s).unwrap(), id);
    }
    // Recommendations name items by their strings.
    let mut top = [pocketrec::Recommendation::default(); 5];
    let n = model.recommend(0, 5, &[], &mut top).unwrap();
    for r in &top[..n] {
        let s = model.id_str(Role::Item, r.id).unwrap().unwrap();
        assert!(strings.iter().any(|x| x == s));
    }
    assert!(matches!(
        model.find_str(Role::Item, "no such item"),
        Err(Error::IdNotFound { .. })
    ));
    // Integer-id tables have none.
    assert!(model.id_strings(Role::User).unwrap().is_none());
    assert_eq!(model.id_str(Role::User, 0).unwrap(), None);
}

#[test]
fn damaged_strings_are_found_by_verify_and_never_panic() {
    let strings = names(40);
    let bytes = build(&strings);
    let (start, end) = common::section(&bytes, SectionKind::IdStrings);
    for position in start..end {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x20;
        let model = Model::from_bytes(&damaged).unwrap();
        assert!(model.verify().is_err(), "byte {position}");
        for s in &strings {
            let _ = model.id_str(Role::Item, string_id(s));
            let _ = model.find_str(Role::Item, s);
        }
    }
}

#[test]
fn the_builder_refuses_strings_that_do_not_match() {
    let strings = names(3);
    let ids: Vec<u64> = strings.iter().map(|s| string_id(s)).collect();
    let items = SparseMatrix::from_dense(3, 1, &[1.0, 2.0, 3.0]).unwrap();
    let build = |spec: TableSpec| ModelBuilder::new().table(spec).build();
    let base = || TableSpec::new("items", Role::Item, items.clone());
    let mut wrong = strings.clone();
    wrong[1].push('!');
    assert!(matches!(
        build(
            base()
                .ids(ids.clone(), IdKind::StringHash)
                .id_strings(wrong)
        ),
        Err(Error::InvalidInput { row: Some(1), .. })
    ));
    assert!(matches!(
        build(
            base()
                .ids(ids.clone(), IdKind::StringHash)
                .id_strings(strings[..2].to_vec())
        ),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        build(
            base()
                .ids(vec![0, 1, 2], IdKind::Integer)
                .id_strings(strings.clone())
        ),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        build(base().id_strings(strings)),
        Err(Error::InvalidInput { .. })
    ));
}
