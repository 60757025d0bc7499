//! `pocketrec recommend`: top-k items for one user, or one JSON line per user of a file.

use std::io::{BufRead, Write};

use pocketrec_export::open_model;

use crate::args::RecommendArgs;
use crate::error::{CliError, Result};
use crate::output::{print_json, to_json_line};
use crate::recommendations::{recommend_folded, recommend_for};

/// Runs `pocketrec recommend`.
pub fn run(args: RecommendArgs) -> Result<()> {
    let model = open_model(&args.model)?;
    if !args.items.is_empty() {
        let recs = recommend_folded(&model, &args.model, &args.items, args.k, &args.exclude)?;
        if args.json {
            print_json(&recs)?;
        } else {
            print!("{}", recs.to_text());
        }
        return Ok(());
    }
    if let Some(user) = &args.user {
        let recs = recommend_for(&model, &args.model, user, args.k, &args.exclude)?;
        if args.json {
            print_json(&recs)?;
        } else {
            print!("{}", recs.to_text());
        }
        return Ok(());
    }
    let Some(file) = &args.users_file else {
        return Err(CliError::Usage("give --user or --users-file".into()));
    };
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).map_err(|e| CliError::io(file, e))?);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| CliError::io(file, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let recs =
            recommend_for(&model, &args.model, &line, args.k, &args.exclude).map_err(|e| {
                CliError::Line {
                    path: file.clone(),
                    line: n as u64 + 1,
                    message: e.to_string(),
                }
            })?;
        let text = to_json_line(&recs)?;
        writeln!(out, "{text}").map_err(|e| CliError::io("<stdout>", e))?;
    }
    out.flush().map_err(|e| CliError::io("<stdout>", e))
}
