//! Time-ordered splits of an interaction log (`pocketrec split`): the log's lines sorted by
//! their timestamps and dealt into periods of equal numbers of interactions, of equal time
//! spans, or before and after a given time, each written as a file in the log's own format (its
//! lines verbatim, with its header), so that a model trained on period 1 can be tested on period
//! 2 and updated with it. Users and items that first appear in a later period are new ids there
//! (each period's counts say how many).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::data::{Format, ReadOptions, checked_interaction, is_header, read_text, split_fields};
use crate::error::{Result, TrainError};
use crate::time::{TimeForm, TimeReader};

/// One interaction of a timed log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedRecord {
    /// Milliseconds since 1970-01-01 UTC.
    pub time: i64,
    /// 1-based line in the file.
    pub line: u64,
    /// The user's id token.
    pub user: String,
    /// The item's id token.
    pub item: String,
    /// The line as written.
    pub text: String,
}

/// An interaction log with a timestamp on every line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedLog {
    /// The line naming the columns, when the file has one.
    pub header: Option<String>,
    /// Interactions in the file's order.
    pub records: Vec<TimedRecord>,
    /// The form of the file's timestamps.
    pub form: TimeForm,
}

/// Reads an interaction log whose every line has a timestamp (`user item rating timestamp`);
/// errors name the file and line (a missing, malformed or differently written timestamp).
pub fn read_timed_log(path: &Path, options: &ReadOptions) -> Result<TimedLog> {
    parse_timed_log(path, &read_text(path)?, options)
}

/// [`read_timed_log`] on a text already in memory (`path` is for messages).
pub fn parse_timed_log(path: &Path, text: &str, options: &ReadOptions) -> Result<TimedLog> {
    if options.format.resolve(text) != Format::Interactions {
        return Err(TrainError::parse(
            path,
            "no timestamps: a time split needs `user item rating timestamp` lines separated by \
             tabs, commas or `::` (the LightGCN format has no times)",
        ));
    }
    let mut times = TimeReader::default();
    let mut header = None;
    let mut records = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields = split_fields(line);
        if n == 0 && is_header(&fields) {
            header = Some(raw.to_string());
            continue;
        }
        let line_no = n as u64 + 1;
        let Some(checked) = checked_interaction(&fields, path, line_no, options, &mut times)?
        else {
            continue;
        };
        let Some(time) = checked.time else {
            return Err(TrainError::Line {
                path: path.to_path_buf(),
                line: line_no,
                message: "no timestamp (expected `user item rating timestamp`)".into(),
            });
        };
        records.push(TimedRecord {
            time,
            line: line_no,
            user: checked.user.to_string(),
            item: checked.item.to_string(),
            text: raw.to_string(),
        });
    }
    match times.form() {
        Some(form) if !records.is_empty() => Ok(TimedLog {
            header,
            records,
            form,
        }),
        _ => Err(TrainError::parse(path, "no interactions")),
    }
}

/// How a log is dealt into periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodRule {
    /// This many periods of (nearly) equal numbers of interactions; interactions at the same
    /// instant stay in one period.
    EqualCounts(usize),
    /// This many periods of equal time spans from the first interaction to the last (a period
    /// may be empty).
    EqualSpans(usize),
    /// Two periods: up to and including this time (milliseconds since the epoch), and after.
    Until(i64),
}

/// One period of a split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// The period's interactions: a range of the time-sorted records.
    pub records: std::ops::Range<usize>,
    /// Its first and last interaction's times (`None` for an empty period).
    pub span: Option<(i64, i64)>,
    /// Distinct users in the period.
    pub users: usize,
    /// Of those, users no earlier period had.
    pub new_users: usize,
    /// Distinct items in the period.
    pub items: usize,
    /// Of those, items no earlier period had.
    pub new_items: usize,
}

/// Sorts `log`'s records by time (lines at the same instant keep the file's order) and deals
/// them into periods by `rule`. Errors: no period, or a rule that leaves the first period
/// empty.
pub fn split_periods(log: &mut TimedLog, rule: PeriodRule) -> Result<Vec<Period>> {
    log.records.sort_by_key(|r| (r.time, r.line));
    let records = &log.records;
    let n = records.len();
    let (first, last) = (records[0].time, records[n - 1].time);
    let mut bounds = vec![0usize];
    match rule {
        PeriodRule::EqualCounts(0) | PeriodRule::EqualSpans(0) => {
            return Err(TrainError::Options("--periods must be at least 1".into()));
        }
        PeriodRule::EqualCounts(periods) => {
            for k in 1..periods {
                let mut b = (k * n / periods).max(*bounds.last().unwrap_or(&0));
                while b > 0 && b < n && records[b].time == records[b - 1].time {
                    b += 1;
                }
                bounds.push(b.min(n));
            }
        }
        PeriodRule::EqualSpans(periods) => {
            let span = (last - first) as i128 + 1;
            for k in 1..periods {
                let edge = first as i128 + span * k as i128 / periods as i128;
                bounds.push(records.partition_point(|r| (r.time as i128) < edge));
            }
        }
        PeriodRule::Until(t) => bounds.push(records.partition_point(|r| r.time <= t)),
    }
    bounds.push(n);
    if bounds[1] == 0 {
        return Err(TrainError::Options(format!(
            "the first period would be empty (the log starts at {})",
            crate::time::format_time(first)
        )));
    }
    let mut seen_users: HashSet<&str> = HashSet::new();
    let mut seen_items: HashSet<&str> = HashSet::new();
    Ok(bounds
        .windows(2)
        .map(|w| {
            let part = &records[w[0]..w[1]];
            let users: HashSet<&str> = part.iter().map(|r| r.user.as_str()).collect();
            let items: HashSet<&str> = part.iter().map(|r| r.item.as_str()).collect();
            let new_users = users.iter().filter(|u| !seen_users.contains(*u)).count();
            let new_items = items.iter().filter(|i| !seen_items.contains(*i)).count();
            seen_users.extend(&users);
            seen_items.extend(&items);
            Period {
                records: w[0]..w[1],
                span: part.first().zip(part.last()).map(|(a, b)| (a.time, b.time)),
                users: users.len(),
                new_users,
                items: items.len(),
                new_items,
            }
        })
        .collect())
}

/// The text of one period's file: the log's header, then the period's lines in time order.
pub fn period_text(log: &TimedLog, period: &Period) -> String {
    let mut out = String::new();
    if let Some(header) = &log.header {
        out.push_str(header);
        out.push('\n');
    }
    for record in &log.records[period.records.clone()] {
        out.push_str(&record.text);
        out.push('\n');
    }
    out
}

/// Where period `k` (0-based) of `count` goes: `dir/period-01.<ext>` with the input's
/// extension (`txt` without one), numbered with as many digits as the count needs.
pub fn period_path(dir: &Path, input: &Path, k: usize, count: usize) -> PathBuf {
    let ext = input
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "txt".into());
    let width = count.to_string().len().max(2);
    dir.join(format!("period-{:0width$}.{ext}", k + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(text: &str) -> TimedLog {
        parse_timed_log(Path::new("log.csv"), text, &ReadOptions::default()).unwrap()
    }

    const LOG: &str = "user,item,rating,timestamp\n\
        a,1,5,1000\n\
        b,2,4,400\n\
        a,2,3,400\n\
        c,3,5,2000\n\
        d,1,1,3000\n\
        c,4,5,3000\n";

    #[test]
    fn equal_counts_keep_instants_together_and_count_new_ids() {
        let mut l = log(LOG);
        assert_eq!(l.header.as_deref(), Some("user,item,rating,timestamp"));
        let p = split_periods(&mut l, PeriodRule::EqualCounts(3)).unwrap();
        // Sorted: b2@400 a2@400 a1@1000 c3@2000 d1@3000 c4@3000.
        let lines: Vec<u64> = l.records.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 2, 5, 6, 7]);
        assert_eq!(
            p.iter().map(|p| p.records.clone()).collect::<Vec<_>>(),
            vec![0..2, 2..4, 4..6]
        );
        assert_eq!(
            (p[0].users, p[0].new_users, p[0].items, p[0].new_items),
            (2, 2, 1, 1)
        );
        assert_eq!(
            (p[1].users, p[1].new_users, p[1].items, p[1].new_items),
            (2, 1, 2, 2)
        );
        assert_eq!(
            (p[2].users, p[2].new_users, p[2].items, p[2].new_items),
            (2, 1, 2, 1)
        );
        assert_eq!(p[2].span, Some((3_000_000, 3_000_000)));
        assert_eq!(
            period_text(&l, &p[0]),
            "user,item,rating,timestamp\nb,2,4,400\na,2,3,400\n"
        );
        // Four periods over five instants: the tie at 3000 stays whole.
        let p = split_periods(&mut l, PeriodRule::EqualCounts(4)).unwrap();
        assert_eq!(p.last().unwrap().records, 4..6);
    }

    #[test]
    fn equal_spans_and_until() {
        let mut l = log(LOG);
        // 400 s to 3000 s in two spans: up to 1700 s, then the rest.
        let p = split_periods(&mut l, PeriodRule::EqualSpans(2)).unwrap();
        assert_eq!(p[0].records, 0..3);
        assert_eq!(p[1].records, 3..6);
        let p = split_periods(&mut l, PeriodRule::Until(2_000_000)).unwrap();
        assert_eq!((p[0].records.clone(), p[1].records.clone()), (0..4, 4..6));
        let e = split_periods(&mut l, PeriodRule::Until(0)).unwrap_err();
        assert!(e.to_string().contains("first period would be empty"), "{e}");
        let e = split_periods(&mut l, PeriodRule::EqualCounts(0)).unwrap_err();
        assert!(e.to_string().contains("--periods"), "{e}");
    }

    #[test]
    fn logs_without_times_are_refused_with_the_line() {
        let e = parse_timed_log(
            Path::new("x.tsv"),
            "1\t2\t5\t100\n1\t3\t5\n",
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "x.tsv:2: no timestamp (expected `user item rating timestamp`)"
        );
        let e = parse_timed_log(Path::new("x.txt"), "1 2 3\n", &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.txt: no timestamps"), "{e}");
        let e = parse_timed_log(
            Path::new("x.tsv"),
            "1\t2\t5\t2023-01-01\n1\t3\t5\t1700000000\n",
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "x.tsv:2: timestamp \"1700000000\" is unix seconds, but line 1's was ISO 8601"
            ),
            "{e}"
        );
        let e = parse_timed_log(
            Path::new("x.tsv"),
            "1\t2\t5\tlater\n",
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.tsv:1: timestamp \"later\""), "{e}");
    }

    #[test]
    fn period_files_are_numbered_with_the_input_extension() {
        let dir = Path::new("out");
        assert_eq!(
            period_path(dir, Path::new("r.csv"), 0, 6),
            dir.join("period-01.csv")
        );
        assert_eq!(
            period_path(dir, Path::new("log"), 99, 120),
            dir.join("period-100.txt")
        );
    }
}
