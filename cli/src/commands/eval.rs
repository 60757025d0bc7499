//! `pocketrec eval`: full-ranking Recall@k and NDCG@k of a model file.

use pocketrec_export::open_model;
use pocketrec_train::eval::{EvalOptions, evaluate_reporting};

use crate::args::EvalArgs;
use crate::error::Result;
use crate::output::print_json;
use crate::plot::{Bars, Panel, write_svg};
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
    if let Some(out) = &args.plot {
        write_svg(
            out,
            &[Panel::Bars(Bars {
                title: format!(
                    "Recall@{} by user activity ({} users, quartiles of training items)",
                    report.k, report.users
                ),
                labels: ["least active", "second", "third", "most active"]
                    .map(String::from)
                    .to_vec(),
                values: report.recall_by_activity.to_vec(),
                y_label: format!("Recall@{}", report.k),
            })],
        )?;
    }
    if args.json {
        print_json(&report.to_json())
    } else {
        println!("{}: {}", args.model.display(), report.to_text());
        Ok(())
    }
}
