//! Interaction logs: readers for the two input formats, the id maps that keep users' and items'
//! original ids, and the per-user item lists that training and evaluation use.
//!
//! Two formats are read (see [`Format`]):
//!
//! - **LightGCN split** (`train.txt`, `test.txt` of LightGCN, NGCF, DSL): one user per line,
//!   `user item item ...`, separated by spaces. A line with a user and no items is allowed.
//! - **Interaction log** (MovieLens `u.data`, `ratings.csv`, `ratings.dat`): one interaction per
//!   line, `user item [rating] [timestamp]`, separated by tabs, commas, spaces or `::`. A first
//!   line that names the columns (its first field contains `user`, or its rating is not a number)
//!   is skipped.
//!
//! Ids are integers or strings. A table whose every id is a decimal integer in `0..2^64` keeps
//! the integers; otherwise every id of that table is stored as its [`pocketrec::string_id`] hash,
//! as `pocketrec export --user-ids` does. Repeated `(user, item)` pairs count once (the data is
//! implicit feedback). Malformed lines stop the read with an error naming the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pocketrec::IdKind;

use crate::error::{Result, TrainError};
use crate::time::TimeReader;

/// The layout of an interaction file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Decide from the first non-empty line: a tab, comma or `::` means an interaction log,
    /// spaces only mean the LightGCN split format.
    Auto,
    /// `user item item ...` per line.
    LightGcn,
    /// `user item [rating] [timestamp]` per line.
    Interactions,
}

impl Format {
    /// Parses `auto`, `lightgcn` or `interactions` (also `tsv`, `csv`).
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "auto" => Some(Format::Auto),
            "lightgcn" => Some(Format::LightGcn),
            "interactions" | "tsv" | "csv" => Some(Format::Interactions),
            _ => None,
        }
    }

    /// Resolves [`Format::Auto`] from a file's text.
    pub fn resolve(self, text: &str) -> Format {
        if self != Format::Auto {
            return self;
        }
        let first = text.lines().map(str::trim).find(|l| !l.is_empty());
        match first {
            Some(line) if line.contains('\t') || line.contains(',') || line.contains("::") => {
                Format::Interactions
            }
            _ => Format::LightGcn,
        }
    }
}

/// How interaction files are read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadOptions {
    /// The files' layout.
    pub format: Format,
    /// Interaction logs only: keep lines whose rating is at least this (lines without a rating
    /// are kept).
    pub min_rating: Option<f64>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: Format::Auto,
            min_rating: None,
        }
    }
}

/// One table's external ids, in row order, with their kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdSpace {
    /// Row `r`'s external id (the integer, or the hash of the string).
    pub ids: Vec<u64>,
    /// Integers or string hashes.
    pub kind: IdKind,
    /// Row `r`'s original string, for string ids (`None` for integers).
    pub strings: Option<Vec<String>>,
}

impl IdSpace {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids of rows `rows` (each below [`IdSpace::len`]), in that order.
    pub fn select(&self, rows: &[u32]) -> IdSpace {
        IdSpace {
            ids: rows.iter().map(|&r| self.ids[r as usize]).collect(),
            kind: self.kind,
            strings: self
                .strings
                .as_ref()
                .map(|s| rows.iter().map(|&r| s[r as usize].clone()).collect()),
        }
    }
}

/// Per-user sorted, de-duplicated item rows (CSR over user rows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserItems {
    indptr: Vec<usize>,
    items: Vec<u32>,
}

impl UserItems {
    /// Builds the lists from `(user_row, item_row)` pairs over `users` users; duplicates are
    /// dropped.
    pub fn from_pairs(users: usize, pairs: &[(u32, u32)]) -> Self {
        let mut counts = vec![0usize; users + 1];
        for &(u, _) in pairs {
            counts[u as usize + 1] += 1;
        }
        for i in 0..users {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let mut items = vec![0u32; pairs.len()];
        for &(u, i) in pairs {
            items[next[u as usize]] = i;
            next[u as usize] += 1;
        }
        // Sort and de-duplicate each user's list, compacting in place.
        let mut indptr = Vec::with_capacity(users + 1);
        indptr.push(0);
        let mut write = 0;
        for u in 0..users {
            let (start, end) = (counts[u], counts[u + 1]);
            items[start..end].sort_unstable();
            let mut last = None;
            for k in start..end {
                let item = items[k];
                if last != Some(item) {
                    items[write] = item;
                    write += 1;
                    last = Some(item);
                }
            }
            indptr.push(write);
        }
        items.truncate(write);
        UserItems { indptr, items }
    }

    /// Number of users (rows).
    pub fn users(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no interactions.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// User row `u`'s items, sorted.
    pub fn items(&self, u: usize) -> &[u32] {
        &self.items[self.indptr[u]..self.indptr[u + 1]]
    }

    /// Whether user `u` has item `i`.
    pub fn contains(&self, u: usize, i: u32) -> bool {
        self.items(u).binary_search(&i).is_ok()
    }

    /// Every `(user_row, item_row)` pair, user-major.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.users()).flat_map(move |u| self.items(u).iter().map(move |&i| (u as u32, i)))
    }

    /// Number of interactions per item row, for `items` items.
    pub fn item_degrees(&self, items: usize) -> Vec<u32> {
        let mut deg = vec![0u32; items];
        for &i in &self.items {
            deg[i as usize] += 1;
        }
        deg
    }
}

/// A training set (and optionally a test set) over one user and one item id space.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// User rows' external ids.
    pub users: IdSpace,
    /// Item rows' external ids.
    pub items: IdSpace,
    /// Training interactions per user row.
    pub train: UserItems,
    /// Held-out interactions per user row, if a test file was read.
    pub test: Option<UserItems>,
}

impl Dataset {
    /// The dataset without the user rows `drop` (sorted): they and their interactions are
    /// gone, the other users keep their order (and so their relative row numbers), items are
    /// unchanged.
    pub fn without_users(&self, drop: &[u32]) -> Dataset {
        let keep: Vec<u32> = (0..self.users.len() as u32)
            .filter(|u| drop.binary_search(u).is_err())
            .collect();
        let users = self.users.select(&keep);
        let subset = |lists: &UserItems| {
            let pairs: Vec<(u32, u32)> = keep
                .iter()
                .enumerate()
                .flat_map(|(new, &old)| {
                    lists
                        .items(old as usize)
                        .iter()
                        .map(move |&i| (new as u32, i))
                })
                .collect();
            UserItems::from_pairs(keep.len(), &pairs)
        };
        Dataset {
            users,
            items: self.items.clone(),
            train: subset(&self.train),
            test: self.test.as_ref().map(subset),
        }
    }
}

/// A raw interaction as read: the two id tokens' interned numbers.
struct RawLog {
    pairs: Vec<(u32, u32)>,
}

/// Interns id tokens in order of first appearance, remembering where each was first seen.
#[derive(Default)]
struct Interner {
    index: HashMap<String, u32>,
    tokens: Vec<String>,
    first_seen: Vec<(PathBuf, u64)>,
}

impl Interner {
    fn intern(&mut self, token: &str, path: &Path, line: u64) -> u32 {
        if let Some(&k) = self.index.get(token) {
            return k;
        }
        let k = self.tokens.len() as u32;
        self.index.insert(token.to_string(), k);
        self.tokens.push(token.to_string());
        self.first_seen.push((path.to_path_buf(), line));
        k
    }

    /// Decides the id kind, sorts rows by external id, and returns the id space and the map
    /// from interned number to row.
    fn finish(self, what: &str) -> Result<(IdSpace, Vec<u32>)> {
        let integers: Option<Vec<u64>> = self.tokens.iter().map(|t| t.parse().ok()).collect();
        let (kind, ids) = match integers {
            Some(ids) => (IdKind::Integer, ids),
            None => {
                let ids: Vec<u64> = self
                    .tokens
                    .iter()
                    .map(|t| pocketrec::string_id(t))
                    .collect();
                (IdKind::StringHash, ids)
            }
        };
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_unstable_by_key(|&k| ids[k as usize]);
        for pair in order.windows(2) {
            let (a, b) = (pair[0] as usize, pair[1] as usize);
            if ids[a] == ids[b] {
                // Different tokens with the same id: "7" and "07", or a string hash collision.
                let (path, line) = &self.first_seen[b];
                let (first_path, first_line) = &self.first_seen[a];
                return Err(TrainError::Line {
                    path: path.clone(),
                    line: *line,
                    message: format!(
                        "{what} id {:?} maps to the same id ({}) as {:?} (first seen at {}:{first_line}); rename one of them",
                        self.tokens[b],
                        ids[b],
                        self.tokens[a],
                        first_path.display()
                    ),
                });
            }
        }
        let mut row_of = vec![0u32; ids.len()];
        for (row, &k) in order.iter().enumerate() {
            row_of[k as usize] = row as u32;
        }
        let sorted = order.iter().map(|&k| ids[k as usize]).collect();
        let strings = (kind == IdKind::StringHash).then(|| {
            order
                .iter()
                .map(|&k| self.tokens[k as usize].clone())
                .collect()
        });
        Ok((
            IdSpace {
                ids: sorted,
                kind,
                strings,
            },
            row_of,
        ))
    }
}

fn line_error(path: &Path, line: u64, message: impl Into<String>) -> TrainError {
    TrainError::Line {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Splits an interaction-log line into its fields: at `::`, else at tabs, else at commas, else
/// at semicolons, else at runs of spaces (so that an ISO 8601 time with a space, in a file
/// separated by tabs or commas, stays one field).
pub(crate) fn split_fields(line: &str) -> Vec<&str> {
    let fields: Vec<&str> = if line.contains("::") {
        line.split("::").collect()
    } else if let Some(sep) = ['\t', ',', ';'].into_iter().find(|&c| line.contains(c)) {
        line.split(sep).collect()
    } else {
        line.split(' ').filter(|f| !f.trim().is_empty()).collect()
    };
    fields.into_iter().map(str::trim).collect()
}

/// Whether line 1 of an interaction log names its columns.
pub(crate) fn is_header(fields: &[&str]) -> bool {
    let first = fields
        .first()
        .map(|f| f.to_ascii_lowercase())
        .unwrap_or_default();
    first.contains("user") || fields.get(2).is_some_and(|r| r.parse::<f64>().is_err())
}

/// One line of an interaction log, checked.
pub(crate) struct LogLine<'a> {
    pub(crate) user: &'a str,
    pub(crate) item: &'a str,
    /// Milliseconds since the epoch, when the line has a timestamp.
    pub(crate) time: Option<i64>,
}

/// Checks the fields of an interaction-log line (`user item [rating] [timestamp]`): `None`
/// when its rating is below `options.min_rating`; errors name the file and line.
pub(crate) fn checked_interaction<'a>(
    fields: &[&'a str],
    path: &Path,
    line_no: u64,
    options: &ReadOptions,
    times: &mut TimeReader,
) -> Result<Option<LogLine<'a>>> {
    if fields.len() < 2 || fields.len() > 4 {
        return Err(line_error(
            path,
            line_no,
            format!(
                "expected `user item [rating] [timestamp]`, found {} field{}",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    if fields[0].is_empty() || fields[1].is_empty() {
        return Err(line_error(path, line_no, "empty user or item id"));
    }
    let time = fields
        .get(3)
        .map(|t| times.read(t, path, line_no))
        .transpose()?;
    if let Some(r) = fields.get(2) {
        let rating: f64 = r
            .parse()
            .map_err(|_| line_error(path, line_no, format!("rating {r:?} is not a number")))?;
        if !rating.is_finite() {
            return Err(line_error(path, line_no, "rating is not finite"));
        }
        if options.min_rating.is_some_and(|m| rating < m) {
            return Ok(None);
        }
    }
    Ok(Some(LogLine {
        user: fields[0],
        item: fields[1],
        time,
    }))
}

/// Reads one file's text into interned pairs.
fn parse_log(
    path: &Path,
    text: &str,
    options: &ReadOptions,
    users: &mut Interner,
    items: &mut Interner,
) -> Result<RawLog> {
    let format = options.format.resolve(text);
    let mut pairs = Vec::new();
    let mut times = TimeReader::default();
    for (n, line) in text.lines().enumerate() {
        let line_no = n as u64 + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match format {
            Format::LightGcn | Format::Auto => {
                let mut tokens = line.split_ascii_whitespace();
                let Some(user) = tokens.next() else { continue };
                let u = users.intern(user, path, line_no);
                for item in tokens {
                    pairs.push((u, items.intern(item, path, line_no)));
                }
            }
            Format::Interactions => {
                let fields = split_fields(line);
                if n == 0 && is_header(&fields) {
                    continue;
                }
                if let Some(checked) =
                    checked_interaction(&fields, path, line_no, options, &mut times)?
                {
                    let u = users.intern(checked.user, path, line_no);
                    let i = items.intern(checked.item, path, line_no);
                    pairs.push((u, i));
                }
            }
        }
    }
    Ok(RawLog { pairs })
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        // Name the line of the first invalid byte.
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        line_error(path, line, "not UTF-8 text")
    })
}

/// Reads a training file and, optionally, a test file into one dataset whose id spaces cover
/// both files (rows sorted by external id).
pub fn read_dataset(train: &Path, test: Option<&Path>, options: &ReadOptions) -> Result<Dataset> {
    let train_text = read_text(train)?;
    let test_text = test.map(read_text).transpose()?;
    parse_dataset(
        (train, &train_text),
        test.zip(test_text.as_deref()),
        options,
    )
}

/// [`read_dataset`] on texts already in memory (the paths are for messages).
pub fn parse_dataset(
    train: (&Path, &str),
    test: Option<(&Path, &str)>,
    options: &ReadOptions,
) -> Result<Dataset> {
    let mut users = Interner::default();
    let mut items = Interner::default();
    let train_log = parse_log(train.0, train.1, options, &mut users, &mut items)?;
    if train_log.pairs.is_empty() {
        return Err(TrainError::parse(train.0, "no interactions"));
    }
    let test_log = test
        .map(|(path, text)| parse_log(path, text, options, &mut users, &mut items))
        .transpose()?;
    let (user_space, user_row) = users.finish("user")?;
    let (item_space, item_row) = items.finish("item")?;
    let remap = |log: &RawLog| -> Vec<(u32, u32)> {
        log.pairs
            .iter()
            .map(|&(u, i)| (user_row[u as usize], item_row[i as usize]))
            .collect()
    };
    let n_users = user_space.len();
    let train = UserItems::from_pairs(n_users, &remap(&train_log));
    let test = test_log.map(|log| UserItems::from_pairs(n_users, &remap(&log)));
    Ok(Dataset {
        users: user_space,
        items: item_space,
        train,
        test,
    })
}

/// The interactions of `text` (read from `path`) as rows of `data`: each user and item id is
/// read with `data`'s id kinds and looked up in its id spaces, so that the lists index the same
/// rows as `data.train` (and a model trained on it). For lists held out of the data a model was
/// trained on, such as a validation file. Reading the two files together instead would not do:
/// rows follow the sorted ids of everything read, so an item only in the held-out file would
/// shift the rows of the items above it. Users and items that `data` has no row for are left
/// out; returns the lists and how many interactions were left out.
pub fn parse_held_out(
    data: &Dataset,
    path: &Path,
    text: &str,
    options: &ReadOptions,
) -> Result<(UserItems, usize)> {
    let lists = parse_external(path, text, options, data.users.kind, data.items.kind)?;
    let rows = |space: &IdSpace| -> HashMap<u64, u32> {
        space
            .ids
            .iter()
            .enumerate()
            .map(|(row, &id)| (id, row as u32))
            .collect()
    };
    let (user_rows, item_rows) = (rows(&data.users), rows(&data.items));
    let (mut pairs, mut left_out) = (Vec::new(), 0usize);
    for (user, items) in lists.users.iter().zip(&lists.lists) {
        match user_rows.get(user) {
            Some(&u) => {
                for item in items {
                    match item_rows.get(item) {
                        Some(&i) => pairs.push((u, i)),
                        None => left_out += 1,
                    }
                }
            }
            None => left_out += items.len(),
        }
    }
    Ok((UserItems::from_pairs(data.users.len(), &pairs), left_out))
}

/// [`parse_held_out`] on a file.
pub fn read_held_out(
    data: &Dataset,
    path: &Path,
    options: &ReadOptions,
) -> Result<(UserItems, usize)> {
    let text = read_text(path)?;
    parse_held_out(data, path, &text, options)
}

/// Per-user external item ids read against a model's id kinds, for evaluation: `users[k]` has
/// the items `lists[k]` (sorted, de-duplicated).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalLists {
    /// Users' external ids, sorted.
    pub users: Vec<u64>,
    /// Each user's item ids (external), sorted and de-duplicated.
    pub lists: Vec<Vec<u64>>,
}

impl ExternalLists {
    /// The item list of user `user` (external id), empty when absent.
    pub fn get(&self, user: u64) -> &[u64] {
        match self.users.binary_search(&user) {
            Ok(k) => &self.lists[k],
            Err(_) => &[],
        }
    }
}

/// Parses one id token as the model's table expects it.
fn external_id(token: &str, kind: IdKind, path: &Path, line: u64, what: &str) -> Result<u64> {
    match kind {
        IdKind::StringHash => Ok(pocketrec::string_id(token)),
        IdKind::Integer => token.parse().map_err(|_| {
            line_error(
                path,
                line,
                format!(
                    "{what} id {token:?} is not an integer (this model's {what} ids are integers)"
                ),
            )
        }),
    }
}

/// Reads an interaction file as external ids, interpreting ids with the kinds of the model's
/// user and item tables (for `pocketrec eval`).
pub fn read_external(
    path: &Path,
    options: &ReadOptions,
    user_kind: IdKind,
    item_kind: IdKind,
) -> Result<ExternalLists> {
    let text = read_text(path)?;
    parse_external(path, &text, options, user_kind, item_kind)
}

/// [`read_external`] on text already in memory.
pub fn parse_external(
    path: &Path,
    text: &str,
    options: &ReadOptions,
    user_kind: IdKind,
    item_kind: IdKind,
) -> Result<ExternalLists> {
    let mut users = Interner::default();
    let mut items = Interner::default();
    let log = parse_log(path, text, options, &mut users, &mut items)?;
    let resolve = |interner: &Interner, kind, what| -> Result<Vec<u64>> {
        interner
            .tokens
            .iter()
            .zip(&interner.first_seen)
            .map(|(t, (p, line))| external_id(t, kind, p, *line, what))
            .collect()
    };
    let user_ids = resolve(&users, user_kind, "user")?;
    let item_ids = resolve(&items, item_kind, "item")?;
    let mut by_user: HashMap<u64, Vec<u64>> = HashMap::new();
    for &(u, _) in &log.pairs {
        by_user.entry(user_ids[u as usize]).or_default();
    }
    // Users that appear with no items (a LightGCN line with only a user) are listed too.
    for &u in &user_ids {
        by_user.entry(u).or_default();
    }
    for &(u, i) in &log.pairs {
        if let Some(list) = by_user.get_mut(&user_ids[u as usize]) {
            list.push(item_ids[i as usize]);
        }
    }
    let mut entries: Vec<(u64, Vec<u64>)> = by_user.into_iter().collect();
    entries.sort_unstable_by_key(|e| e.0);
    let mut out = ExternalLists::default();
    for (u, mut list) in entries {
        list.sort_unstable();
        list.dedup();
        out.users.push(u);
        out.lists.push(list);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Dataset> {
        parse_dataset((Path::new("t.txt"), text), None, &ReadOptions::default())
    }

    #[test]
    fn held_out_lists_index_the_training_rows() {
        // Item 6 is only in the held-out file: read together, it would take row 1 and move
        // items 7 and 9 up a row.
        let data = parse("3 5 7\n1 9\n").unwrap();
        assert_eq!(data.items.ids, vec![5, 7, 9]);
        let (lists, left_out) = parse_held_out(
            &data,
            Path::new("v.txt"),
            "3 9 6\n1 7\n4 5\n",
            &ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(lists.users(), 2);
        // User 3 is row 1, user 1 row 0.
        assert_eq!(lists.items(1), &[2]);
        assert_eq!(lists.items(0), &[1]);
        // Item 6 and user 4 (with item 5) have no row.
        assert_eq!(left_out, 2);
        // Ids of another kind are an error, not a silent remap.
        let strings = parse_held_out(&data, Path::new("v.txt"), "a b\n", &ReadOptions::default());
        assert!(strings.is_err());
    }

    #[test]
    fn lightgcn_lines_keep_original_ids_sorted() {
        let d = parse("10 5 7\n3 7\n\n20\n").unwrap();
        assert_eq!(d.users.ids, vec![3, 10, 20]);
        assert_eq!(d.users.kind, IdKind::Integer);
        assert_eq!(d.items.ids, vec![5, 7]);
        assert_eq!(d.train.items(0), &[1]);
        assert_eq!(d.train.items(1), &[0, 1]);
        assert!(d.train.items(2).is_empty());
        assert_eq!(d.train.len(), 3);
    }

    #[test]
    fn interaction_logs_in_every_separator() {
        for text in [
            "1\t2\t5\t881250949\n1\t3\t4\t1\n2\t2\t3\t5\n",
            "userId,movieId,rating,timestamp\n1,2,5,881250949\n1,3,4.5,1\n2,2,3,5\n",
            "1::2::5::881250949\n1::3::4::1\n2::2::3::5\n",
        ] {
            let d = parse(text).unwrap();
            assert_eq!(d.users.ids, vec![1, 2], "{text}");
            assert_eq!(d.items.ids, vec![2, 3], "{text}");
            assert_eq!(d.train.len(), 3, "{text}");
        }
    }

    #[test]
    fn min_rating_filters_and_duplicates_collapse() {
        let options = ReadOptions {
            format: Format::Interactions,
            min_rating: Some(4.0),
        };
        let d = parse_dataset(
            (Path::new("r.csv"), "1,2,5\n1,2,4\n1,3,2\n2,3,4\n"),
            None,
            &options,
        )
        .unwrap();
        assert_eq!(d.train.len(), 2);
        assert_eq!(d.items.ids, vec![2, 3]);
    }

    #[test]
    fn string_ids_are_hashed_per_table() {
        let d = parse("alice\t7\nbob\t7\n").unwrap();
        assert_eq!(d.users.kind, IdKind::StringHash);
        assert_eq!(d.items.kind, IdKind::Integer);
        let mut expected = vec![pocketrec::string_id("alice"), pocketrec::string_id("bob")];
        expected.sort_unstable();
        assert_eq!(d.users.ids, expected);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let e = parse("1\t2\n1\t2\t3\t4\t5\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "t.txt:2: expected `user item [rating] [timestamp]`, found 5 fields"
        );
        let e = parse("1\t2\t5\n1\t3\tgood\n").unwrap_err().to_string();
        assert_eq!(e, "t.txt:2: rating \"good\" is not a number");
        let e = parse("1,2\n3\n").unwrap_err().to_string();
        assert!(e.starts_with("t.txt:2: expected"), "{e}");
        let e = parse("").unwrap_err().to_string();
        assert_eq!(e, "t.txt: no interactions");
    }

    #[test]
    fn equal_integer_ids_written_differently_are_refused() {
        let e = parse("1 7\n2 07\n").unwrap_err().to_string();
        assert!(e.starts_with("t.txt:2: item id \"07\""), "{e}");
    }

    #[test]
    fn test_ids_join_the_id_space() {
        let d = parse_dataset(
            (Path::new("train.txt"), "0 1 2\n1 2\n"),
            Some((Path::new("test.txt"), "0 3\n2 1\n")),
            &ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(d.users.ids, vec![0, 1, 2]);
        assert_eq!(d.items.ids, vec![1, 2, 3]);
        let test = d.test.unwrap();
        assert_eq!(test.items(0), &[2]);
        assert_eq!(test.items(2), &[0]);
    }

    #[test]
    fn external_lists_follow_the_model_kinds() {
        let lists = parse_external(
            Path::new("x.txt"),
            "5 1 2 2\n3 9\n",
            &ReadOptions::default(),
            IdKind::Integer,
            IdKind::Integer,
        )
        .unwrap();
        assert_eq!(lists.users, vec![3, 5]);
        assert_eq!(lists.get(5), &[1, 2]);
        assert!(lists.get(4).is_empty());
        let e = parse_external(
            Path::new("x.txt"),
            "5 1\nbob 2\n",
            &ReadOptions::default(),
            IdKind::Integer,
            IdKind::Integer,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("x.txt:2: user id \"bob\" is not an integer"),
            "{e}"
        );
    }
}
