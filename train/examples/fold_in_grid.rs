//! Prints the fold-in validation grid of a model file: users folded in from their training
//! items, tested on their validation items (held out of the training the model saw), e.g.
//! `cargo run --release -p pocketrec-train --example fold_in_grid -- model.prec train.txt
//! valid.txt [U1,U2,..] [R1,R2,..]` with `train.txt`/`valid.txt` from
//! `bench/split_validation.py` and the grids in item units (see `pocketrec_train::fold_in`);
//! `FOLD_IN_USERS=N` sets the number of validation users.

use pocketrec_train::data::{ReadOptions, read_dataset};
use pocketrec_train::fold_in::{TuneOptions, tune};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: fold_in_grid MODEL TRAIN VALID [U,..] [R,..]");
        std::process::exit(2);
    }
    let list = |i: usize| -> Option<Vec<f32>> {
        args.get(i)
            .map(|s| s.split(',').map(|x| x.parse().expect("a number")).collect())
    };
    let model = pocketrec::Model::read(&args[1]).expect("model");
    let items = model.items().expect("item table");
    let dim = items.dim();
    let data = read_dataset(
        args[2].as_ref(),
        Some(args[3].as_ref()),
        &ReadOptions::default(),
    )
    .expect("train and validation files");
    // The model's item rows in the data set's item order (the data's ids are the model's).
    let mut table = vec![0.0f32; data.items.len() * dim];
    for (r, &id) in data.items.ids.iter().enumerate() {
        if let Ok(row) = items.find(id) {
            items
                .decode_row(row, &mut table[r * dim..(r + 1) * dim])
                .expect("row");
        }
    }
    let mut options = TuneOptions::default();
    // FOLD_IN_USERS=N validates on N users (default 2,000; a large N takes every user).
    if let Ok(n) = std::env::var("FOLD_IN_USERS") {
        options.users = n.parse().expect("FOLD_IN_USERS is a number");
    }
    if let Some(u) = list(4) {
        options.unobserved_items = u;
    }
    if let Some(r) = list(5) {
        options.ridge_items = r;
    }
    let validation = data.test.as_ref().expect("validation lists");
    let tuned = tune(&table, dim, &data.train, validation, &options).expect("validation users");
    for p in &tuned.grid {
        println!(
            "u {:>8} r {:>6}  recall@{} {:.4}",
            p.unobserved_items, p.ridge_items, options.k, p.recall
        );
    }
    println!("best {:?} over {} users", tuned.best, tuned.users);
}
