//! Prints the statistics of the user and item tables of `.prec` files side by side (norms,
//! sparsity pattern, values, signs, clustering, score shape; see
//! `pocketrec_train::structured::{TableStats, ScoreStats}`):
//!
//! ```text
//! cargo run --release -p pocketrec-train --example table_stats -- \
//!     [--log train.txt] [--queries N] A.prec [--no-log] [B.prec ...]
//! ```
//!
//! `--log` names a LightGCN-style interaction log (`user item item ...` per line) whose ids are
//! the models' ids: item popularity and user activity are counted from it and correlated with
//! the row norms (for every file given after it, up to a `--no-log`). Generated tables (`pocketrec generate`) are
//! measured after `pocketrec export --users DIR/users.npy --items DIR/items.npy -o F.prec`.

use std::collections::HashMap;

use pocketrec_train::structured::{ScoreStats, TableStats};

/// Interaction counts per item id and per user id.
struct Counts {
    items: HashMap<u64, f64>,
    users: HashMap<u64, f64>,
}

fn read_log(path: &str) -> Counts {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut counts = Counts {
        items: HashMap::new(),
        users: HashMap::new(),
    };
    for line in text.lines() {
        let mut ids = line
            .split_whitespace()
            .map(|t| t.parse::<u64>().expect("integer ids"));
        let Some(user) = ids.next() else { continue };
        let mut n = 0.0;
        for item in ids {
            *counts.items.entry(item).or_default() += 1.0;
            n += 1.0;
        }
        *counts.users.entry(user).or_default() += n;
    }
    counts
}

/// A table's rows densely, and each row's popularity by its id when counts are given.
fn dense(
    table: &pocketrec::Table<'_>,
    counts: Option<&HashMap<u64, f64>>,
) -> (Vec<f32>, Option<Vec<f64>>) {
    let (rows, dim) = (table.rows(), table.dim());
    let mut out = vec![0.0f32; rows * dim];
    for (r, chunk) in out.chunks_exact_mut(dim).enumerate() {
        table.decode_row(r, chunk).expect("row");
    }
    let popularity = counts.map(|c| {
        (0..rows)
            .map(|r| c.get(&table.id(r).expect("id")).copied().unwrap_or(0.0))
            .collect()
    });
    (out, popularity)
}

struct Measured {
    name: String,
    items: TableStats,
    users: TableStats,
    scores: ScoreStats,
}

fn fmt(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

fn list(v: &[f64]) -> String {
    v.iter().map(|&x| fmt(x)).collect::<Vec<_>>().join(" ")
}

fn table_lines(t: &TableStats) -> Vec<(&'static str, String)> {
    vec![
        ("rows x dim", format!("{} x {}", t.rows, t.dim)),
        ("density", fmt(t.density)),
        ("norm median", fmt(t.norm_median)),
        ("norm p1 p10 p50 p90 p99 max /med", list(&t.norm_quantiles)),
        ("nnz/row p1 p10 p50 p90 p99 max", list(&t.nnz_quantiles)),
        ("nnz/dim min med max /mean", list(&t.dim_share)),
        ("|value| median", fmt(t.value_median)),
        ("|value| p10 p90 p99 max /med", list(&t.value_quantiles)),
        ("positive share", fmt(t.positive_share)),
        ("dim sign skew", fmt(t.dim_sign_skew)),
        ("top code entropy", fmt(t.top_code_entropy)),
        ("top code peak (x uniform)", fmt(t.top_code_peak)),
        ("top value energy share", fmt(t.top_energy)),
        ("k-means cosine (64)", fmt(t.centroid_cosine)),
        ("block envelope (64 rows)", fmt(t.block_envelope)),
        (
            "spearman(norm, popularity)",
            t.popularity_spearman.map_or("-".into(), fmt),
        ),
    ]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut counts: Option<Counts> = None;
    let mut queries = 200usize;
    let mut measured = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--log" => counts = Some(read_log(&args.next().expect("--log FILE"))),
            "--no-log" => counts = None,
            "--queries" => {
                queries = args
                    .next()
                    .and_then(|q| q.parse().ok())
                    .expect("--queries N")
            }
            path => {
                let model = pocketrec::Model::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
                let (items, users) = (model.items().expect("items"), model.users().expect("users"));
                let dim = items.dim();
                let (item_table, popularity) = dense(&items, counts.as_ref().map(|c| &c.items));
                let (user_table, activity) = dense(&users, counts.as_ref().map(|c| &c.users));
                measured.push(Measured {
                    name: path.rsplit('/').next().unwrap_or(path).to_string(),
                    items: TableStats::measure(&item_table, dim, popularity.as_deref()),
                    users: TableStats::measure(&user_table, dim, activity.as_deref()),
                    scores: ScoreStats::measure(&user_table, &item_table, dim, queries, 20),
                });
            }
        }
    }
    if measured.is_empty() {
        eprintln!(
            "usage: table_stats [--log train.txt | --no-log] [--queries N] A.prec [B.prec ...]"
        );
        std::process::exit(2);
    }
    let width = 36;
    let print_row = |label: &str, cells: Vec<String>| {
        let cells: Vec<String> = cells.iter().map(|c| format!("{c:>32}")).collect();
        println!("{label:<width$}{}", cells.join(" "));
    };
    print_row("", measured.iter().map(|m| m.name.clone()).collect());
    for (title, pick) in [
        (
            "items",
            (|m: &Measured| &m.items) as fn(&Measured) -> &TableStats,
        ),
        ("users", |m: &Measured| &m.users),
    ] {
        println!("{title}");
        let lines: Vec<_> = measured.iter().map(|m| table_lines(pick(m))).collect();
        for i in 0..lines[0].len() {
            print_row(
                &format!("  {}", lines[0][i].0),
                lines.iter().map(|l| l[i].1.clone()).collect(),
            );
        }
    }
    println!("scores (dot, k = 20)");
    let score_lines = |s: &ScoreStats| {
        vec![
            ("queries", s.queries.to_string()),
            ("(s_k - median) / sd", fmt(s.kth_z)),
            ("(s_1 - median) / sd", fmt(s.best_z)),
            ("s_k / s_1", fmt(s.kth_over_best)),
            ("block-bound scored fraction", fmt(s.scored_fraction)),
        ]
    };
    let lines: Vec<_> = measured.iter().map(|m| score_lines(&m.scores)).collect();
    for i in 0..lines[0].len() {
        print_row(
            &format!("  {}", lines[0][i].0),
            lines.iter().map(|l| l[i].1.clone()).collect(),
        );
    }
}
