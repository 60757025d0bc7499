//! Timestamps of interaction logs: unix seconds, unix milliseconds and ISO 8601, each read
//! into milliseconds since 1970-01-01 UTC.
//!
//! A file uses one form throughout: the first timestamp fixes it ([`TimeForm`]), and a later
//! one in another form stops the read with the file and line of both (mixing seconds and
//! milliseconds would reorder the log silently). An integer of at most 11 digits is unix
//! seconds (up to the year 5138), one of 12 or more digits unix milliseconds; ISO 8601 is a
//! date `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS[.fff]]`, optionally
//! followed by `Z` or an offset `±HH:MM` (none means UTC).

use std::path::Path;

use crate::error::{Result, TrainError};

/// The form of a file's timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeForm {
    /// Whole seconds since 1970-01-01 UTC.
    UnixSeconds,
    /// Whole milliseconds since 1970-01-01 UTC.
    UnixMillis,
    /// ISO 8601 date and optional time.
    Iso8601,
}

impl TimeForm {
    /// The form in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            TimeForm::UnixSeconds => "unix seconds",
            TimeForm::UnixMillis => "unix milliseconds",
            TimeForm::Iso8601 => "ISO 8601",
        }
    }
}

/// Integers with at least this many digits are milliseconds.
const MILLIS_DIGITS: usize = 12;

/// Days from 1970-01-01 to `year-month-day` in the proleptic Gregorian calendar (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `n` ASCII digits of `s` at `at`.
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// An ISO 8601 timestamp in milliseconds since the epoch, or `None` when `text` is not one
/// (or names a day or time that does not exist).
fn parse_iso(text: &str) -> Option<i64> {
    let s = text.as_bytes();
    let year = i64::from(digits(s, 0, 4)?);
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
        return None;
    }
    let (month, day) = (digits(s, 5, 2)?, digits(s, 8, 2)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    let mut at = 10;
    if at == s.len() {
        return Some(millis);
    }
    if !matches!(s[at], b'T' | b't' | b' ') {
        return None;
    }
    at += 1;
    let hour = digits(s, at, 2)?;
    if s.get(at + 2) != Some(&b':') {
        return None;
    }
    let minute = digits(s, at + 3, 2)?;
    at += 5;
    let mut second = 0;
    let mut fraction_ms = 0u32;
    if s.get(at) == Some(&b':') {
        second = digits(s, at + 1, 2)?;
        at += 3;
        if s.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while s.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == start {
                return None;
            }
            // Milliseconds: the first three digits, padded.
            let kept = &text[start..at.min(start + 3)];
            fraction_ms = kept.parse::<u32>().ok()? * 10u32.pow(3 - kept.len() as u32);
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    millis += i64::from(hour * 3_600_000 + minute * 60_000 + second * 1000 + fraction_ms);
    match s.get(at) {
        None => Some(millis),
        Some(b'Z' | b'z') if at + 1 == s.len() => Some(millis),
        Some(&sign @ (b'+' | b'-')) => {
            let offset_hours = digits(s, at + 1, 2)?;
            let offset_minutes = match (s.get(at + 3), s.len() - at) {
                (Some(b':'), 6) => digits(s, at + 4, 2)?,
                (_, 5) => digits(s, at + 3, 2)?,
                (None, 3) => 0,
                _ => return None,
            };
            if offset_hours > 23 || offset_minutes > 59 {
                return None;
            }
            let offset = i64::from(offset_hours * 3_600_000 + offset_minutes * 60_000);
            Some(if sign == b'+' {
                millis - offset
            } else {
                millis + offset
            })
        }
        _ => None,
    }
}

/// Reads one timestamp: milliseconds since the epoch and its form, or `None` when it is in no
/// form (see the module docs).
pub fn parse_time(text: &str) -> Option<(i64, TimeForm)> {
    let digits_only = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits_only(magnitude) {
        let value: i64 = magnitude.parse().ok()?;
        let value = if negative { -value } else { value };
        return if magnitude.len() >= MILLIS_DIGITS {
            Some((value, TimeForm::UnixMillis))
        } else {
            Some((value.checked_mul(1000)?, TimeForm::UnixSeconds))
        };
    }
    parse_iso(text).map(|ms| (ms, TimeForm::Iso8601))
}

/// Reads the timestamps of one file, holding it to one form.
#[derive(Clone, Debug, Default)]
pub struct TimeReader {
    /// The file's form and the line that fixed it.
    form: Option<(TimeForm, u64)>,
}

impl TimeReader {
    /// Reads the timestamp `text` of `path`'s line `line` in milliseconds since the epoch; the
    /// error names the line (and, for a change of form, the line that set the first one).
    pub fn read(&mut self, text: &str, path: &Path, line: u64) -> Result<i64> {
        let error = |message: String| TrainError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        let Some((millis, form)) = parse_time(text) else {
            return Err(error(format!(
                "timestamp {text:?} is neither unix seconds, unix milliseconds nor an ISO 8601 \
                 date and time (e.g. 1700000000, 1700000000000, 2023-11-14T22:13:20Z)"
            )));
        };
        match self.form {
            None => self.form = Some((form, line)),
            Some((first, _)) if first == form => {}
            Some((first, first_line)) => {
                return Err(error(format!(
                    "timestamp {text:?} is {}, but line {first_line}'s was {}: one file must \
                     use one form",
                    form.describe(),
                    first.describe()
                )));
            }
        }
        Ok(millis)
    }

    /// The file's form, once a timestamp was read.
    pub fn form(&self) -> Option<TimeForm> {
        self.form.map(|(form, _)| form)
    }
}

/// `millis` as an ISO 8601 UTC date and time (`2023-11-14T22:13:20Z`, with `.fff` when the
/// milliseconds are not zero).
pub fn format_time(millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    let rest = millis.rem_euclid(86_400_000);
    // Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, ms) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    if ms == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_to_the_same_instant() {
        let expected = 1_700_000_000_000;
        for text in [
            "1700000000",
            "1700000000000",
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20",
            "2023-11-14T22:13:20.000Z",
            "2023-11-15T00:13:20+02:00",
            "2023-11-14T20:13:20-0200",
            "2023-11-14T23:13:20+01",
        ] {
            assert_eq!(parse_time(text).map(|t| t.0), Some(expected), "{text}");
        }
        assert_eq!(parse_time("1970-01-01"), Some((0, TimeForm::Iso8601)));
        assert_eq!(
            parse_time("1969-12-31T23:59:59.5Z"),
            Some((-500, TimeForm::Iso8601))
        );
        assert_eq!(parse_time("881250949").unwrap().1, TimeForm::UnixSeconds);
        assert_eq!(
            parse_time("-86400"),
            Some((-86_400_000, TimeForm::UnixSeconds))
        );
        assert_eq!(format_time(expected), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(-500), "1969-12-31T23:59:59.500Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn impossible_or_malformed_times_are_not_read() {
        for text in [
            "",
            "-",
            "17e8",
            "1.5",
            "2023-02-29",
            "2024-13-01",
            "2023-11-14T24:00",
            "2023-11-14T22",
            "2023-11-14X22:13",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+2",
            "2023-11-14T22:13:20Zjunk",
            "99999999999999999999",
            "yesterday",
        ] {
            assert_eq!(parse_time(text), None, "{text:?}");
        }
        assert!(parse_time("2024-02-29").is_some());
    }

    #[test]
    fn a_file_keeps_one_form_and_errors_name_the_lines() {
        let path = Path::new("log.tsv");
        let mut reader = TimeReader::default();
        assert_eq!(
            reader.read("1700000000", path, 2).unwrap(),
            1_700_000_000_000
        );
        let e = reader.read("2023-11-14", path, 5).unwrap_err().to_string();
        assert_eq!(
            e,
            "log.tsv:5: timestamp \"2023-11-14\" is ISO 8601, but line 2's was unix seconds: one \
             file must use one form"
        );
        let e = reader
            .read("1700000000000", path, 6)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("log.tsv:6: timestamp \"1700000000000\" is unix milliseconds"),
            "{e}"
        );
        let e = reader.read("soon", path, 7).unwrap_err().to_string();
        assert!(
            e.starts_with("log.tsv:7: timestamp \"soon\" is neither"),
            "{e}"
        );
        assert_eq!(reader.form(), Some(TimeForm::UnixSeconds));
    }
}
