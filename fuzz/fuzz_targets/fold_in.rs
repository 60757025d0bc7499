//! Fuzzes fold-in: the input is a fixed-size query header followed by model bytes. When the
//! model opens, a user is folded in from item ids, weights and a prior derived from the header,
//! with each solver (the softmax objective's too, for a file with its section), then `recommend_vector` recommends for the answer. Any input must give
//! answers or errors, never a panic, an out-of-bounds read or a hang; an answer must be finite
//! and count every interaction as used or unknown.
//!
//! The header (`HEADER` bytes; `make_seeds DIR fold_in` writes seeds in this shape):
//!
//! | bytes | what |
//! | --- | --- |
//! | 0 | bits 0-4: interactions (at most `MAX_ITEMS`); bit 5: weights given; bit 6: a prior; bit 7: `out` one longer than the dimension |
//! | 1 | the prior's precision (a code, see `number`) |
//! | 2..26 | one byte per interaction: a row of the item table (its id), or from 0xF0 an id the model lacks |
//! | 26..50 | one byte per interaction: its weight (a code, see `number`) |
//! | 50..56 | the prior vector's values, repeated over the dimension (codes) |
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketrec::{Model, Prior, Recommendation, Retrieval, Solver};

/// The header's length, before the model bytes.
const HEADER: usize = 56;
/// The most interactions a header names.
const MAX_ITEMS: usize = 24;
/// The widest output buffer allocated (a corrupt dimension may claim more).
const MAX_DIM: usize = 1 << 12;

/// A weight, precision or prior value from one byte: the special values first (NaN, a negative,
/// infinity, a huge and a tiny one), otherwise `code / 32`, 0 included.
fn number(code: u8) -> f32 {
    match code {
        0xFF => f32::NAN,
        0xFE => -1.0,
        0xFD => f32::INFINITY,
        0xFC => 1e30,
        0xFB => 1e-30,
        _ => f32::from(code) / 32.0,
    }
}

fn exercise(header: &[u8; HEADER], bytes: &[u8]) {
    let Ok(model) = Model::from_bytes(bytes) else {
        return;
    };
    if let Ok(section) = model.fold_in_section() {
        let _ = section.verify();
        let _ = section.params();
    }
    let _ = model.fold_in_params();
    let _ = model.fold_in_softmax();
    let Ok(table) = model.items() else {
        return;
    };
    let dim = table.dim().min(MAX_DIM);
    let rows = table.rows();

    let count = usize::from(header[0] & 0x1F).min(MAX_ITEMS);
    let items: Vec<u64> = header[2..2 + count]
        .iter()
        .map(|&s| {
            if s >= 0xF0 || rows == 0 {
                // An id the model probably lacks (or the raw byte, for an empty table).
                u64::MAX - u64::from(s)
            } else {
                table.id(usize::from(s) % rows).unwrap_or(u64::from(s))
            }
        })
        .collect();
    let weights: Vec<f32> = if header[0] & 0x20 != 0 {
        header[26..26 + count].iter().map(|&c| number(c)).collect()
    } else {
        Vec::new()
    };
    let vector: Vec<f32> = (0..dim).map(|i| number(header[50 + i % 6])).collect();
    let prior = (header[0] & 0x40 != 0).then(|| Prior {
        vector: &vector,
        precision: number(header[1]),
    });
    let mut out = vec![0.0f32; dim + usize::from(header[0] >> 7)];
    let mut top = [Recommendation::default(); 4];
    for solver in [
        Solver::Auto,
        Solver::Cholesky,
        Solver::ConjugateGradient,
        Solver::Softmax,
    ] {
        out.fill(f32::NAN);
        let Ok(summary) = model.fold_in_with(&items, &weights, prior, &mut out, solver) else {
            continue;
        };
        assert_eq!(summary.used + summary.unknown, items.len());
        assert_ne!(summary.solver, Solver::Auto);
        assert!(out.iter().all(|x| x.is_finite()), "{solver:?}: {out:?}");
        for how in [Retrieval::Auto, Retrieval::Rows, Retrieval::Columns] {
            let _ = model.recommend_vector_with(&out, 4, &items, &mut top, how);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((header, bytes)) = data.split_first_chunk::<HEADER>() else {
        return;
    };
    exercise(header, bytes);
    // The same model bytes with every checksum recomputed, so the structural checks behind the
    // checksums (and the solve on a damaged Gramian or rows) are reached too.
    let mut sealed = bytes.to_vec();
    pocketrec::format::reseal(&mut sealed);
    exercise(header, &sealed);
});
