//! Runs `recommend` for the first `N` users of a model, k = 20, and prints a checksum of the
//! answers: the workload `bench/instructions.sh` counts instructions of (under callgrind on
//! x86, QEMU's instruction counter on aarch64), once with `N` queries and once with none, so
//! that the difference divided by `N` is the instructions of one query.
//!
//! `cargo run --release -p pocketrec --example queries -- MODEL.prec N`

use pocketrec::{Model, Recommendation};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: queries MODEL.prec N".into());
    };
    let n: usize = n.parse()?;
    let bytes = std::fs::read(&path)?;
    let model = Model::from_bytes(&bytes[..])?;
    let users = model.users()?;
    let mut out = [Recommendation::default(); 20];
    let mut checksum = 0u64;
    for row in 0..n.min(users.rows()) {
        let count = model.recommend(users.id(row)?, out.len(), &[], &mut out)?;
        checksum = out[..count]
            .iter()
            .fold(checksum, |c, r| c.wrapping_mul(31).wrapping_add(r.id));
    }
    println!("{n} queries, checksum {checksum:016x}");
    Ok(())
}
