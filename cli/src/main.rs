//! The `pocketrec` command-line tool; see `pocketrec --help`.
//!
//! This crate is the front end only: [`args`] parses, [`commands`] runs each command over the
//! libraries (`pocketrec`, `pocketrec-export`, `pocketrec-train`), [`progress`] draws their
//! progress reports as bars, [`output`] prints JSON and [`plot`] draws SVG charts. No library depends on it.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod commands;
mod error;
mod output;
mod plot;
mod progress;
mod recommendations;

use crate::args::{Cli, Command};
use crate::commands::demo::DemoOptions;
use crate::output::print_json;

fn main() -> ExitCode {
    // A bug must never greet the user with a Rust panic message: say what happened instead.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "pocketrec: internal error{location}. This is a bug in pocketrec; please report it with the command you ran."
        );
    }));
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(_) => ExitCode::from(70),
    }
}

/// Parses the arguments and runs the command; errors are printed, and the exit code says
/// whether it succeeded.
fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Export(args) => commands::export::run(*args),
        Command::Inspect { model, json, plot } => {
            commands::inspect::run(&model, json, plot.as_deref())
        }
        Command::Verify { model, key } => return commands::verify::run(&model, key.as_deref()),
        Command::Diff {
            old,
            new,
            output,
            json,
        } => commands::update::diff(&old, &new, &output, json),
        Command::Patch {
            old,
            patch,
            output,
            key,
        } => commands::update::patch(&old, &patch, &output, key.as_deref()),
        Command::Keygen { output } => commands::update::keygen(&output),
        Command::Sign { file, key, output } => {
            commands::update::sign(&file, &key, output.as_deref().unwrap_or(&file))
        }
        Command::Frontier {
            summaries,
            plot,
            values,
        } => commands::frontier::run(&summaries, plot.as_deref(), &values),
        Command::Generate {
            output,
            users,
            items,
            dim,
            density,
            seed,
            structure,
            change_rows,
            change_seed,
        } => commands::generate::run(
            &output,
            &commands::generate::Tables {
                users,
                items,
                dim,
                density,
                seed,
                structure,
                change: change_rows.map(|f| (f, change_seed)),
            },
        ),
        Command::Split(args) => commands::split::run(&args),
        Command::GenerateLog {
            output,
            periods,
            users,
            items,
            seed,
        } => commands::split::generate_log(&output, periods, users, items, seed),
        Command::Bench {
            model,
            queries,
            k,
            json,
            cold,
            plot,
            against,
        } => commands::bench::run(&model, queries, k, cold, against.as_deref()).and_then(|r| {
            if let Some(out) = &plot {
                plot::write_svg(out, &[r.latency_panel()])?;
            }
            if json {
                print_json(&r)
            } else {
                print!("{}", r.to_text());
                Ok(())
            }
        }),
        Command::Recommend(args) => commands::recommend::run(args),
        Command::Train(args) => commands::train::run_args(*args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Demo(args) => commands::demo::run(&DemoOptions {
            dir: args.dir,
            seed: args.seed,
            users: args.users,
            items: args.items,
            dim: args.dim,
            density: args.density,
            epochs: args.epochs,
            threads: args.threads,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pocketrec: error: {e}");
            ExitCode::FAILURE
        }
    }
}
