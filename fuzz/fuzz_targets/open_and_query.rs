//! Fuzzes `Model::from_bytes` and everything a client can do with a model it opened: any byte
//! string must give answers or errors, never a panic, an out-of-bounds read or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketrec::{Model, Recommendation, Retrieval, Role};

/// The most rows per table the target walks (keeps each run fast on large inputs).
const MAX_ROWS: usize = 4096;

fn exercise(bytes: &[u8]) {
    let Ok(model) = Model::from_bytes(bytes) else {
        return;
    };
    let _ = model.verify();
    let _ = model.properties().count();
    let _ = model.sections().count();
    let mut dense = vec![0.0f32; model.dim().unwrap_or(1).min(1 << 16)];
    let mut out = [Recommendation::default(); 4];
    for role in Role::ALL {
        let Ok(table) = model.table(*role) else {
            continue;
        };
        for r in 0..table.rows().min(MAX_ROWS) {
            if let Ok(row) = table.row(r) {
                let _ = row.iter().count();
                let _ = row.decode_into(&mut dense);
                let _ = row.dot(&dense);
                let _ = row.norm();
            }
            let _ = table.decode_row(r, &mut dense);
            let _ = table.bias(r);
            if let Ok(id) = table.id(r) {
                let _ = table.find(id);
                if *role == Role::User && r < 8 {
                    let _ = model.recommend(id, 4, &[id, 1], &mut out);
                    let _ = model.score(id, 0);
                }
            }
        }
        let _ = table.find(u64::MAX);
        let _ = table.empty_rows();
    }
    for how in [Retrieval::Auto, Retrieval::Rows, Retrieval::Columns] {
        let _ = model.recommend_vector_with(&dense, 4, &[], &mut out, how);
    }
    // The column scan with block bounds (when the file has them), and with a k past every
    // block so that none is skipped.
    let _ = model.recommend_vector_stats(&dense, 4, &[], &mut out);
    let mut many = [Recommendation::default(); 64];
    let _ = model.recommend_vector_stats(&dense, 64, &[], &mut many);
    let _ = model.plan(&dense);
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    // The same bytes with every checksum recomputed, so the structural checks behind the
    // checksums are reached too.
    let mut sealed = data.to_vec();
    pocketrec::format::reseal(&mut sealed);
    exercise(&sealed);
});
