//! How to store the item table: its layout (row records, a column layout, or both), its row
//! order, and whether it carries block bounds. By default the choice is made from the tables
//! (`--layout auto`): the fast layout for what the model will be asked, within the device's
//! means, with the reason written into the file (`inspect` shows it as `layout.chosen_by`).
//!
//! The crossovers below were measured with `pocketrec bench` (docs/BENCHMARKS.md, *Fast by
//! default*) on this project's reference machine, one thread, k = 20, d = 64.

use pocketrec::builder::{Layout, RowOrder, SparseMatrix, TableSpec};

use crate::error::{ExportError, Result};

/// Item tables with fewer rows are stored as row records by default: below this the row scan
/// takes microseconds, the file is smallest, and the column layout's per-block work does not
/// pay (measured: docs/BENCHMARKS.md, *Fast by default*).
pub const AUTO_COLUMNS_MIN_ROWS: usize = 4_096;

/// Above this density of the user table the default stays row records: a query then reads
/// most posting lists, and the column scan loses its advantage (at 25 to 49 of 64 non-zero
/// user dimensions the row scan catches up, docs/BENCHMARKS.md).
pub const AUTO_COLUMNS_MAX_USER_DENSITY: f64 = 0.4;

/// Rows per block of the block bounds written by default (and of the column layout that
/// carries them). Small blocks are tight but each costs a few bytes and some work per list;
/// 256 was fastest on 1M structured items (64: 2.5x, 256: 5.1x, 1024: 4.9x, 4096: 2.6x faster
/// than the column scan without bounds; docs/BENCHMARKS.md, *Fast by default*).
pub const DEFAULT_BOUNDS_BLOCK_ROWS: u32 = 256;

/// `auto` writes block bounds only when a scan of the table by its own users is estimated to
/// score at most this fraction of the blocks ([`estimate_scored_fraction`]). Measured: at
/// 0.018 (1M structured items) the bounded scan was 5.1x faster; at 0.33 (the Gowalla-trained
/// item table) 1.3x, for 15 % more bytes; at 0.36 (1M i.i.d. normal items) no faster at the
/// median and 3x slower at the 99th percentile, and 6x slower for dense (folded-in) users.
pub const AUTO_BOUNDS_MAX_SCORED: f64 = 0.2;

/// Users the estimate of [`estimate_scored_fraction`] samples (evenly spaced rows).
pub const ESTIMATE_USERS: usize = 64;

/// Where the model will run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Target {
    /// A phone, a tablet, a desktop: the default.
    #[default]
    Device,
    /// A microcontroller with little RAM: row records only (no column block on the stack).
    Microcontroller,
}

impl Target {
    /// The name the CLI uses: `device` or `mcu`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Device => "device",
            Target::Microcontroller => "mcu",
        }
    }

    /// The target named `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        match name {
            "device" => Some(Target::Device),
            "mcu" => Some(Target::Microcontroller),
            _ => None,
        }
    }
}

/// Block bounds, as asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BoundsChoice {
    /// With a column layout of at least [`AUTO_COLUMNS_MIN_ROWS`] rows: blocks of
    /// [`DEFAULT_BOUNDS_BLOCK_ROWS`], rows clustered. Otherwise none.
    #[default]
    Auto,
    /// None (rows in id order).
    Off,
    /// Blocks of this many rows (a power of two, 64..=4096; needs a column layout), rows
    /// clustered.
    Rows(u32),
}

/// The `users` property of a file written without user rows ([`UserRows::FoldedIn`]).
pub const USERS_FOLDED_IN: &str = "none stored: folded in on the device from their interactions";

/// Why a file without user rows ([`UserRows::FoldedIn`]) is refused without a fold-in section.
pub const ITEMS_ONLY_NEEDS_FOLD_IN: &str = "--items-only writes no user rows, so users must be \
     folded in on the device: it needs the fold-in section (drop --no-fold-in)";

/// Whether a model file stores the rows of its user table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UserRows {
    /// Every user's row (the default): the device recommends by user id.
    #[default]
    Stored,
    /// No user rows (an empty user table with the ids' kind): every user is folded in on the
    /// device from their own interactions ([`pocketrec::Model::fold_in`], which needs the
    /// file's fold-in section) and ranked by [`pocketrec::Model::recommend_vector`]. The file
    /// is then the item table's bytes alone, and the other users' rows never leave the
    /// workstation.
    FoldedIn,
}

impl UserRows {
    /// The name the CLI and the `train --json` summary use: `stored` or `folded-in`.
    pub fn name(self) -> &'static str {
        match self {
            UserRows::Stored => "stored",
            UserRows::FoldedIn => "folded-in",
        }
    }

    /// The user table `spec` as written: unchanged, or for [`UserRows::FoldedIn`] its name,
    /// role, width and id kind without rows (f32, as `train --items-only` writes it: an empty
    /// table has no values to encode).
    pub fn apply(self, spec: TableSpec) -> pocketrec::Result<TableSpec> {
        match self {
            UserRows::Stored => Ok(spec),
            UserRows::FoldedIn => {
                let mut empty =
                    TableSpec::new(spec.name, spec.role, SparseMatrix::new(spec.matrix.dim())?);
                empty.id_kind = spec.id_kind;
                Ok(empty)
            }
        }
    }
}

/// How to store the tables, as asked for: `None` and `Auto` are chosen by [`plan`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ItemStorage {
    /// The layout, or `None` to choose it.
    pub layout: Option<Layout>,
    /// Store the rows sliced (format 1.4; row records only).
    pub sliced_rows: bool,
    /// Block bounds.
    pub block_bounds: BoundsChoice,
    /// Where the model will run.
    pub target: Target,
    /// Whether the user table's rows are stored; without them ([`UserRows::FoldedIn`]) users
    /// are folded in on the device, dense, and `auto` keeps row records.
    pub user_rows: UserRows,
}

/// What [`plan`] chose, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct StoragePlan {
    /// The item table's layout.
    pub layout: Layout,
    /// Sliced rows.
    pub sliced_rows: bool,
    /// Rows per block of the block bounds (rows then clustered), or `None`.
    pub block_bounds: Option<u32>,
    /// Why, in a sentence (the file's `layout.chosen_by` property).
    pub reason: String,
    /// With block bounds: the item ids in the row order of the model this one updates (see
    /// [`previous_item_order`]), kept so that a patch carries only the changed rows.
    pub keep_order: Option<Vec<u64>>,
}

impl StoragePlan {
    /// `spec` (the item table) stored as planned.
    pub fn apply(&self, spec: TableSpec) -> TableSpec {
        let spec = spec.layout(self.layout).with_sliced_rows(self.sliced_rows);
        match (self.block_bounds, &self.keep_order) {
            (Some(rows), Some(ids)) => spec
                .row_order(RowOrder::Clustered)
                .with_block_bounds(rows)
                .keep_order_of(ids.clone()),
            (Some(rows), None) => spec.row_order(RowOrder::Clustered).with_block_bounds(rows),
            (None, _) => spec,
        }
    }

    /// The name of the layout as the `layout` property records it.
    pub fn layout_name(&self) -> &'static str {
        if self.sliced_rows {
            "sliced-rows"
        } else {
            self.layout.name()
        }
    }

    /// The properties that record the plan: `layout`, `layout.chosen_by`, and
    /// `block_bounds` when there are bounds.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut properties = vec![
            ("layout", self.layout_name().to_string()),
            ("layout.chosen_by", self.reason.clone()),
        ];
        if let Some(rows) = self.block_bounds {
            properties.push((
                "block_bounds",
                format!("blocks of {rows} rows, rows clustered"),
            ));
        }
        properties
    }
}

/// The fraction of non-zero entries of `matrix`.
pub fn density(matrix: &SparseMatrix) -> f64 {
    let cells = matrix.rows() as f64 * matrix.dim() as f64;
    if cells == 0.0 {
        0.0
    } else {
        matrix.nnz() as f64 / cells
    }
}

/// The tables a plan is made for (after pruning).
#[derive(Clone, Copy, Debug)]
pub struct Tables<'t> {
    /// The user table.
    pub users: &'t SparseMatrix,
    /// The item table.
    pub items: &'t SparseMatrix,
    /// The item biases, if any.
    pub item_bias: Option<&'t [f32]>,
    /// Whether the model scores by cosine.
    pub cosine: bool,
}

/// Chooses how to store the item table of `tables`.
///
/// ```
/// use pocketrec::builder::{Layout, SparseMatrix};
/// use pocketrec_export::storage::{ItemStorage, Tables, Target, plan};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // 5,000 items in 8 clusters of their own dimension, users of one cluster each.
/// let dim = 8;
/// let items: Vec<f32> = (0..5_000 * dim)
///     .map(|i| if i % dim == (i / dim) % dim { 1.0 + (i / dim) as f32 * 1e-4 } else { 0.0 })
///     .collect();
/// let users: Vec<f32> = (0..64 * dim).map(|i| if i % dim == (i / dim) % dim { 1.0 } else { 0.0 }).collect();
/// let (items, users) = (SparseMatrix::from_dense(5_000, dim, &items)?, SparseMatrix::from_dense(64, dim, &users)?);
/// let tables = Tables { users: &users, items: &items, item_bias: None, cosine: false };
/// let chosen = plan(&ItemStorage::default(), &tables)?;
/// assert_eq!(chosen.layout, Layout::Columns);
/// assert_eq!(chosen.block_bounds, Some(256)); // each user's cluster is a few blocks
/// let mcu = ItemStorage { target: Target::Microcontroller, ..ItemStorage::default() };
/// assert_eq!(plan(&mcu, &tables)?.layout, Layout::Rows);
/// // No user rows: users are folded in on the device, dense, so a query reads every list.
/// let none = SparseMatrix::new(dim)?;
/// let items_only = Tables { users: &none, ..tables };
/// assert_eq!(plan(&ItemStorage::default(), &items_only)?.layout, Layout::Rows);
/// # Ok(()) }
/// ```
pub fn plan(storage: &ItemStorage, tables: &Tables<'_>) -> Result<StoragePlan> {
    let item_rows = tables.items.rows();
    let user_density = density(tables.users);
    let (layout, mut reason) = match storage.layout {
        Some(layout) => (layout, format!("asked for ({})", layout.name())),
        None if storage.sliced_rows => (Layout::Rows, "sliced rows asked for".to_string()),
        None if storage.target == Target::Microcontroller => (
            Layout::Rows,
            "auto: target mcu, row records (no column block on the stack)".to_string(),
        ),
        None if item_rows < AUTO_COLUMNS_MIN_ROWS => (
            Layout::Rows,
            format!(
                "auto: {item_rows} item rows, under {AUTO_COLUMNS_MIN_ROWS}: row records \
                 (smallest, as fast)"
            ),
        ),
        None if tables.users.rows() == 0 => (
            Layout::Rows,
            "auto: no user rows (users are folded in on the device, dense vectors): row \
             records (a query would read every posting list)"
                .to_string(),
        ),
        None if user_density > AUTO_COLUMNS_MAX_USER_DENSITY => (
            Layout::Rows,
            format!(
                "auto: users {:.0} % dense, above {:.0} %: row records (a query would read \
                 most posting lists)",
                100.0 * user_density,
                100.0 * AUTO_COLUMNS_MAX_USER_DENSITY
            ),
        ),
        None => (
            Layout::Columns,
            format!(
                "auto: {item_rows} item rows, users {:.0} % dense: column layout (a query \
                 reads only its dimensions' posting lists)",
                100.0 * user_density
            ),
        ),
    };
    if storage.sliced_rows && layout != Layout::Rows {
        return Err(ExportError::Usage(
            "sliced rows are a row layout of their own: they take no column layout (use \
             --layout rows, or auto)"
                .into(),
        ));
    }
    let block_bounds = match storage.block_bounds {
        BoundsChoice::Off => None,
        BoundsChoice::Rows(rows) => {
            if !layout.has_columns() {
                return Err(ExportError::Usage(format!(
                    "block bounds need a column layout, and the item table is stored as {}",
                    layout.name()
                )));
            }
            Some(rows)
        }
        BoundsChoice::Auto if layout.has_columns() && item_rows >= AUTO_COLUMNS_MIN_ROWS => {
            let block = DEFAULT_BOUNDS_BLOCK_ROWS as usize;
            let scored = estimate_scored_fraction(tables, block, 20);
            if scored <= AUTO_BOUNDS_MAX_SCORED {
                reason.push_str(&format!(
                    "; block bounds every {block} rows, rows clustered (the table's users would \
                     score {:.1} % of the blocks)",
                    100.0 * scored
                ));
                Some(DEFAULT_BOUNDS_BLOCK_ROWS)
            } else {
                reason.push_str(&format!(
                    "; no block bounds (the table's users would score {:.0} % of the blocks, \
                     above {:.0} %)",
                    100.0 * scored,
                    100.0 * AUTO_BOUNDS_MAX_SCORED
                ));
                None
            }
        }
        BoundsChoice::Auto => None,
    };
    if let (Some(rows), BoundsChoice::Rows(_)) = (block_bounds, storage.block_bounds) {
        reason.push_str(&format!(
            "; block bounds every {rows} rows (asked for), rows clustered"
        ));
    }
    Ok(StoragePlan {
        layout,
        sliced_rows: storage.sliced_rows,
        block_bounds,
        reason,
        keep_order: None,
    })
}

/// The item ids of the model at `path` in its row order, when its item rows are clustered
/// (block bounds): what [`StoragePlan::keep_order`] takes so that a new model written as an
/// update of it (`--update-of`) keeps its row order. `None` when its rows are in id order
/// (an update then keeps the order by itself).
pub fn previous_item_order(path: &std::path::Path) -> crate::Result<Option<Vec<u64>>> {
    let model = crate::open_model(path)?;
    let model_error = |source| crate::ExportError::Model {
        path: path.to_path_buf(),
        source,
    };
    let items = model.items().map_err(model_error)?;
    if !items.id_encoding().is_indexed() {
        return Ok(None);
    }
    (0..items.rows())
        .map(|row| items.id(row).map_err(model_error))
        .collect::<crate::Result<Vec<u64>>>()
        .map(Some)
}

/// The fraction of the item table's blocks of `block_rows` (rows clustered, as the builder
/// orders them) whose bound reaches the `k`-th best score, averaged over up to
/// [`ESTIMATE_USERS`] of the table's users (evenly spaced, empty ones skipped): about what a
/// bounded column scan of those users would score. Exact scores and bounds in f64, biases
/// included (the user's own bias shifts every score alike and is left out), cosine by
/// normalised rows. Deterministic.
pub fn estimate_scored_fraction(tables: &Tables<'_>, block_rows: usize, k: usize) -> f64 {
    let (items, users) = (tables.items, tables.users);
    let (rows, dim) = (items.rows(), items.dim());
    if rows == 0 || block_rows == 0 {
        return 1.0;
    }
    let order = pocketrec::builder::cluster_order(items);
    let norm = |cols: &[f32]| {
        cols.iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
    };
    let blocks = rows.div_ceil(block_rows);
    // Per block and dimension, the largest and smallest value (0 included where a row of the
    // block has none), and the block's largest bias.
    let mut high = vec![f64::NEG_INFINITY; blocks * dim];
    let mut low = vec![f64::INFINITY; blocks * dim];
    let mut count = vec![0usize; blocks * dim];
    let mut bias_max = vec![f64::NEG_INFINITY; blocks];
    for (file_row, &r) in order.iter().enumerate() {
        let b = file_row / block_rows;
        let (cols, vals) = items.row(r);
        let scale = if tables.cosine { norm(vals) } else { 1.0 };
        for (&c, &v) in cols.iter().zip(vals) {
            let x = if scale > 0.0 {
                f64::from(v) / scale
            } else {
                0.0
            };
            let cell = b * dim + c as usize;
            high[cell] = high[cell].max(x);
            low[cell] = low[cell].min(x);
            count[cell] += 1;
        }
        let bias = tables
            .item_bias
            .and_then(|b| b.get(r))
            .map_or(0.0, |&b| f64::from(b));
        bias_max[b] = bias_max[b].max(bias);
    }
    for b in 0..blocks {
        let in_block = block_rows.min(rows - b * block_rows);
        for cell in b * dim..(b + 1) * dim {
            if count[cell] < in_block {
                high[cell] = high[cell].max(0.0);
                low[cell] = low[cell].min(0.0);
            }
        }
    }
    let step = (users.rows() / ESTIMATE_USERS).max(1);
    let mut fractions = Vec::new();
    let mut user = vec![0.0f64; dim];
    let mut scores = vec![0.0f64; rows];
    for u in (0..users.rows()).step_by(step).take(ESTIMATE_USERS) {
        let (cols, vals) = users.row(u);
        if cols.is_empty() || rows <= k {
            continue;
        }
        user.fill(0.0);
        let scale = if tables.cosine { norm(vals) } else { 1.0 };
        for (&c, &v) in cols.iter().zip(vals) {
            user[c as usize] = f64::from(v) / scale;
        }
        for (r, score) in scores.iter_mut().enumerate() {
            let (cols, vals) = items.row(r);
            let scale = if tables.cosine { norm(vals) } else { 1.0 };
            let dot: f64 = cols
                .iter()
                .zip(vals)
                .map(|(&c, &v)| user[c as usize] * f64::from(v))
                .sum();
            let bias = tables
                .item_bias
                .and_then(|b| b.get(r))
                .map_or(0.0, |&b| f64::from(b));
            *score = if scale > 0.0 { dot / scale } else { 0.0 } + bias;
        }
        let (_, kth, _) = scores.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        let kth = *kth;
        let reached = (0..blocks)
            .filter(|&b| {
                let sim: f64 = cols
                    .iter()
                    .map(|&c| {
                        let (u, cell) = (user[c as usize], b * dim + c as usize);
                        (u * high[cell]).max(u * low[cell])
                    })
                    .sum();
                sim + bias_max[b] >= kth
            })
            .count();
        fractions.push(reached as f64 / blocks as f64);
    }
    if fractions.is_empty() {
        1.0
    } else {
        fractions.iter().sum::<f64>() / fractions.len() as f64
    }
}
