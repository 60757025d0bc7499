//! Prints the fold-in validation grid of a model file: users folded in from their training
//! items, tested on their validation items (held out of the training the model saw), e.g.
//! `cargo run --release -p pocketrec-train --example fold_in_grid -- model.prec train.txt
//! valid.txt [U1,U2,..] [R1,R2,..]` with `train.txt`/`valid.txt` from
//! `bench/split_validation.py` and the grids in item units (see `pocketrec_train::fold_in`);
//! `FOLD_IN_USERS=N` sets the number of validation users.
//!
//! `... -- model.prec train.txt valid.txt softmax T1,T2,.. P1,P2,.. [STEP,..] [ITERATIONS,..]
//! [CLUSTERS,..]`
//! prints the softmax fold-in's grid instead (the fold-in's own temperatures and powers;
//! `pocketrec_train::fold_in::tune_softmax`).

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
    // A table's rows in the data set's order of `ids` (the data's ids are the model's).
    let dense = |t: &pocketrec::Table<'_>, ids: &[u64]| -> Vec<f32> {
        let mut out = vec![0.0f32; ids.len() * dim];
        for (r, &id) in ids.iter().enumerate() {
            if let Ok(row) = t.find(id) {
                t.decode_row(row, &mut out[r * dim..(r + 1) * dim])
                    .expect("row");
            }
        }
        out
    };
    let table = dense(&items, &data.items.ids);
    let mut options = TuneOptions::default();
    // FOLD_IN_USERS=N validates on N users (default 2,000; a large N takes every user).
    if let Ok(n) = std::env::var("FOLD_IN_USERS") {
        options.users = n.parse().expect("FOLD_IN_USERS is a number");
    }
    let validation = data.test.as_ref().expect("validation lists");
    if args.get(4).map(String::as_str) == Some("softmax") {
        // The fold-in's own temperatures and powers (not the loss's), steps, iterations.
        let temperatures = list(5).expect("TEMPERATURE,..");
        let powers = list(6).expect("POWER,..");
        let steps = list(7).unwrap_or_else(|| vec![1.0]);
        let iterations = list(8).unwrap_or_else(|| vec![8.0]);
        let clusters = list(9).unwrap_or_else(|| vec![0.0]);
        let mut grid = Vec::new();
        for &temperature in &temperatures {
            for &power in &powers {
                for &step in &steps {
                    for &n in &iterations {
                        for &c in &clusters {
                            grid.push(pocketrec::SoftmaxFoldIn {
                                temperature,
                                power,
                                step,
                                iterations: n as u32,
                                clusters: c as u32,
                            });
                        }
                    }
                }
            }
        }
        let (points, users) = pocketrec_train::fold_in::tune_softmax(
            &table,
            dim,
            &data.train,
            validation,
            &options,
            &grid,
        )
        .expect("validation users");
        for p in &points {
            let s = p.settings;
            println!(
                "temperature {:>5} power {:>4} step {:>4} iterations {:>3} clusters {:>4}  recall@{} {:.4}",
                s.temperature, s.power, s.step, s.iterations, s.clusters, options.k, p.recall
            );
        }
        // The yardstick: the same users' trained rows.
        let user_rows = dense(&model.users().expect("user table"), &data.users.ids);
        let trained = pocketrec_train::fold_in::trained_recall(
            &table,
            &user_rows,
            dim,
            &data.train,
            validation,
            &options,
        )
        .expect("validation users");
        println!("trained user rows  recall@{} {trained:.4}", options.k);
        println!("over {users} users");
        return;
    }
    if let Some(u) = list(4) {
        options.unobserved_items = u;
    }
    if let Some(r) = list(5) {
        options.ridge_items = r;
    }
    let tuned = tune(&table, dim, &data.train, validation, &options).expect("validation users");
    for p in &tuned.grid {
        println!(
            "u {:>8} r {:>6}  recall@{} {:.4}",
            p.unobserved_items, p.ridge_items, options.k, p.recall
        );
    }
    println!("best {:?} over {} users", tuned.best, tuned.users);
}
