//! `pocketrec eval`: full-ranking Recall@k and NDCG@k of a model file.

use pocketrec_export::open_model;
use pocketrec_train::eval::{EvalOptions, evaluate_reporting};

use crate::args::EvalArgs;
use crate::error::Result;
use crate::output::print_json;
use crate::progress::Bar;

/// Runs `pocketrec eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let model = open_model(&args.model)?;
    let report = evaluate_reporting(
        &model,
        &args.model,
        &EvalOptions {
            train: args.train,
            test: args.test,
            k: args.k,
            read: args.read.options(),
            threads: args.threads,
            fold_in: args.fold_in,
        },
        &Bar::new(!args.quiet),
    )?;
    if args.json {
        print_json(&report.to_json())
    } else {
        println!("{}: {}", args.model.display(), report.to_text());
        Ok(())
    }
}
