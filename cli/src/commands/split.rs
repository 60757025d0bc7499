//! `pocketrec split`: a timestamped interaction log dealt into time-ordered period files; and
//! `pocketrec generate-log`, a drifting synthetic log to split.

use serde::Serialize;

use pocketrec_export::atomic::write_atomic;
use pocketrec_export::inspect::thousands;
use pocketrec_train::periods::{
    PeriodRule, period_path, period_text, read_timed_log, split_periods,
};
use pocketrec_train::time::{format_time, parse_time};

use crate::args::SplitArgs;
use crate::error::{CliError, Result};
use crate::output::print_json;

/// One written period, as `split --json` prints it.
#[derive(Clone, Debug, Serialize)]
struct PeriodSummary {
    path: String,
    interactions: usize,
    /// First and last interaction, ISO 8601 UTC (absent for an empty period).
    from: Option<String>,
    to: Option<String>,
    users: usize,
    new_users: usize,
    items: usize,
    new_items: usize,
}

/// Runs `pocketrec split`.
pub fn run(args: &SplitArgs) -> Result<()> {
    let rule = match (args.periods, &args.until) {
        (Some(n), None) if args.by == "time" => PeriodRule::EqualSpans(n),
        (Some(n), None) => PeriodRule::EqualCounts(n),
        (None, Some(t)) => PeriodRule::Until(
            parse_time(t)
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "--until {t:?} is neither unix seconds, unix milliseconds nor ISO 8601"
                    ))
                })?
                .0,
        ),
        _ => {
            return Err(CliError::Usage("give --periods N or --until TIME".into()));
        }
    };
    let mut log = read_timed_log(&args.log, &args.read.options())?;
    let periods = split_periods(&mut log, rule)?;
    std::fs::create_dir_all(&args.output)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", args.output.display())))?;
    let mut summaries = Vec::new();
    for (k, period) in periods.iter().enumerate() {
        let path = period_path(&args.output, &args.log, k, periods.len());
        write_atomic(&path, period_text(&log, period).as_bytes())?;
        summaries.push(PeriodSummary {
            path: path.display().to_string(),
            interactions: period.records.len(),
            from: period.span.map(|s| format_time(s.0)),
            to: period.span.map(|s| format_time(s.1)),
            users: period.users,
            new_users: period.new_users,
            items: period.items,
            new_items: period.new_items,
        });
    }
    if args.json {
        return print_json(&summaries);
    }
    println!(
        "{}: {} interactions, timestamps in {}",
        args.log.display(),
        thousands(log.records.len() as u64),
        log.form.describe()
    );
    println!("| period | file | from | to | interactions | users (new) | items (new) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (k, s) in summaries.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {} | {} ({}) | {} ({}) |",
            k + 1,
            s.path,
            s.from.as_deref().unwrap_or("-"),
            s.to.as_deref().unwrap_or("-"),
            thousands(s.interactions as u64),
            thousands(s.users as u64),
            thousands(s.new_users as u64),
            thousands(s.items as u64),
            thousands(s.new_items as u64),
        );
    }
    Ok(())
}

/// Runs `pocketrec generate-log`: writes the drifting log atomically.
pub fn generate_log(
    output: &std::path::Path,
    periods: usize,
    users: usize,
    items: usize,
    seed: u64,
) -> Result<()> {
    use pocketrec_train::drift::{DriftSpec, generate_drifting, to_log_text};
    if periods == 0 || users == 0 || items == 0 {
        return Err(CliError::Usage(
            "--periods, --users and --items must be at least 1".into(),
        ));
    }
    let log = generate_drifting(&DriftSpec {
        periods,
        users,
        items,
        seed,
        ..DriftSpec::default()
    });
    write_atomic(output, to_log_text(&log).as_bytes())?;
    eprintln!(
        "wrote {}: {} interactions over {periods} weekly periods",
        output.display(),
        thousands(log.len() as u64)
    );
    Ok(())
}
