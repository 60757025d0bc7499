//! `pocketrec export`: read two tables (and ids, biases), prune, quantize, write a `.prec` file.

use std::path::{Path, PathBuf};

use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
use pocketrec::{FoldInParams, ListRows, MAX_STACK_DIM, Role, Scoring, ValueEncoding};

/// The `created_by` property of the files the exporter (and the trainer, with a suffix) writes.
pub const CREATED_BY: &str = concat!("pocketrec-export ", env!("CARGO_PKG_VERSION"));

use crate::atomic::write_atomic;
use crate::error::{ExportError, Result};
use crate::fold_in::{DEFAULT_RIDGE_ITEMS, DEFAULT_UNOBSERVED_ITEMS, scaled_params};
use crate::ids::{IdList, read_id_file};
use crate::input::{self, Matrix, Table2d};
use crate::progress::{NoProgress, Progress};
use crate::prune;
use crate::storage::{self, ItemStorage, UserRows};

/// Where to read a table (or a bias vector): a file and, for npz/safetensors, a tensor name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// The tensor or npz member; `None` picks the file's only one (or a scipy sparse matrix).
    pub tensor: Option<String>,
}

impl Source {
    /// A whole file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Source {
            path: path.into(),
            tensor: None,
        }
    }

    /// A named tensor in a file.
    pub fn tensor(path: impl Into<PathBuf>, tensor: impl Into<String>) -> Self {
        Source {
            path: path.into(),
            tensor: Some(tensor.into()),
        }
    }
}

/// Everything `export` needs.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The user table, or `None` to write the item table alone ([`ExportOptions::items_only`]:
    /// every user is folded in on the device).
    pub users: Option<Source>,
    /// The item table.
    pub items: Source,
    /// The `.prec` file to write.
    pub output: PathBuf,
    /// Value encoding for both tables.
    pub values: ValueEncoding,
    /// Id file for the users (one id per row); `None`: ids are row numbers.
    pub user_ids: Option<PathBuf>,
    /// Id file for the items.
    pub item_ids: Option<PathBuf>,
    /// Per-user biases.
    pub user_bias: Option<Source>,
    /// Per-item biases.
    pub item_bias: Option<Source>,
    /// Constant added to every score.
    pub global_bias: f32,
    /// Dot or cosine.
    pub scoring: Scoring,
    /// Prune each table by magnitude to this density first.
    pub prune_density: Option<f64>,
    /// How to store the item table (the user table is always stored by rows: it is read by
    /// id): layout, sliced rows, block bounds, target; chosen from the tables by default
    /// ([`crate::storage::plan`]).
    pub storage: ItemStorage,
    /// How the column layout's posting lists name their rows.
    pub list_rows: ListRows,
    /// Keep one row offset per row in tables of bitmap rows (format 1.3, for 1.3 to 1.6
    /// readers) instead of one per block of 16 rows (format 1.7, 4 bytes a row smaller). Off
    /// by default.
    pub per_row_offsets: bool,
    /// Write a fold-in section (the item Gramian, `2·d·(d+1)` bytes) so that the device can
    /// fold in users ([`pocketrec::Model::fold_in`]). On by default; skipped when the dimension
    /// is above 512 and no `fold_in_params` were given.
    pub fold_in: bool,
    /// The fold-in settings; `None` scales the defaults to the item table
    /// ([`crate::fold_in::scaled_params`]).
    pub fold_in_params: Option<FoldInParams>,
    /// Fold users in by this softmax objective (tables trained with a sampled-softmax loss on
    /// unit vectors) instead of the squared-error one: a section with the settings and a
    /// catalogue summary in place of the Gramian ([`pocketrec::SoftmaxFoldIn`]). Needs
    /// `fold_in`. Its `clusters` are replaced by `fold_in_clusters`'.
    pub fold_in_softmax: Option<pocketrec::SoftmaxFoldIn>,
    /// Clusters of the softmax fold-in's catalogue summary; `None`: the default for the item
    /// count ([`pocketrec::SoftmaxFoldIn::default_clusters`]).
    pub fold_in_clusters: Option<u32>,
    /// Store the original strings of string ids (section `id-strings`), so that answers name
    /// users and items as the id files do. On by default.
    pub id_strings: bool,
    /// Write the model as an update of this earlier model: clustered item rows keep its row
    /// order (see [`storage::previous_item_order`]), so that `pocketrec diff` from it carries
    /// only the rows that changed.
    pub update_of: Option<PathBuf>,
}

impl ExportOptions {
    /// Options with defaults: f32 values, row-number ids, no biases, dot scoring, no pruning.
    pub fn new(users: Source, items: Source, output: impl Into<PathBuf>) -> Self {
        ExportOptions::with_tables(Some(users), items, output)
    }

    /// Options for a file of the item table alone, from an item table without a user table
    /// (a two-tower model's item side, say): no user rows ([`UserRows::FoldedIn`]), every
    /// user folded in on the device from their interactions through the file's fold-in
    /// section; otherwise the defaults of [`ExportOptions::new`].
    ///
    /// ```no_run
    /// use pocketrec_export::export::{ExportOptions, Source, export};
    /// # fn main() -> Result<(), pocketrec_export::ExportError> {
    /// let summary = export(&ExportOptions::items_only(Source::file("items.npy"), "items.prec"))?;
    /// println!("{} bytes", summary.file_bytes);
    /// # Ok(()) }
    /// ```
    pub fn items_only(items: Source, output: impl Into<PathBuf>) -> Self {
        let mut options = ExportOptions::with_tables(None, items, output);
        options.storage.user_rows = UserRows::FoldedIn;
        options
    }

    /// The defaults for these tables.
    fn with_tables(users: Option<Source>, items: Source, output: impl Into<PathBuf>) -> Self {
        ExportOptions {
            users,
            items,
            output: output.into(),
            values: ValueEncoding::F32,
            user_ids: None,
            item_ids: None,
            user_bias: None,
            item_bias: None,
            global_bias: 0.0,
            scoring: Scoring::Dot,
            prune_density: None,
            storage: ItemStorage::default(),
            list_rows: ListRows::U16,
            per_row_offsets: false,
            fold_in: true,
            fold_in_params: None,
            fold_in_softmax: None,
            fold_in_clusters: None,
            id_strings: true,
            update_of: None,
        }
    }
}

/// What the `source.users` property records for an export without a user table
/// ([`ExportOptions::items_only`], and Python's `export(None, items, ...)`).
pub const NO_USER_TABLE_SOURCE: &str = "none: the item table alone, users folded in";

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    /// The file written.
    pub output: PathBuf,
    /// Its size.
    pub file_bytes: u64,
    /// The two tables as dense f32 (`rows x dim x 4` each).
    pub dense_f32_bytes: u64,
}

/// A loaded table after pruning, as a sparse matrix, with its provenance.
pub(crate) struct LoadedTable {
    /// Where it came from: the file (or a name standing for it) for messages, and the tensor,
    /// which names the table in the file.
    pub(crate) source: Table2d,
    /// What the `source.users` / `source.items` property records.
    pub(crate) provenance: String,
    /// The values, pruned.
    pub(crate) matrix: SparseMatrix,
}

fn model_error(path: &Path) -> impl FnOnce(pocketrec::Error) -> ExportError + '_ {
    move |source| ExportError::Model {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a table and applies `--prune-density`.
fn load_table(source: &Source, prune_density: Option<f64>) -> Result<LoadedTable> {
    let table = input::read_table(&source.path, source.tensor.as_deref())?;
    let provenance = provenance(&table);
    prepare_table(table, provenance, prune_density)
}

/// Applies `--prune-density` to a table read (or given) and turns it into a [`SparseMatrix`].
pub(crate) fn prepare_table(
    mut table: Table2d,
    provenance: String,
    prune_density: Option<f64>,
) -> Result<LoadedTable> {
    let cells = table.matrix.rows().saturating_mul(table.matrix.cols());
    if let Some(density) = prune_density {
        let keep = prune::budget(cells, density);
        match &mut table.matrix {
            Matrix::Dense(m) => prune::keep_largest(&mut m.data, keep),
            Matrix::Csr(m) => prune::keep_largest(&mut m.values, keep),
        };
    }
    let path = table.path.clone();
    let matrix = match &table.matrix {
        Matrix::Dense(m) => SparseMatrix::from_dense(m.rows, m.cols, &m.data),
        Matrix::Csr(m) => SparseMatrix::from_csr(m.cols, &m.indptr, &m.indices, &m.values),
    }
    .map_err(model_error(&path))?;
    // The dense copy is no longer needed; keep only provenance.
    table.matrix = Matrix::Dense(input::DenseMatrix::default());
    Ok(LoadedTable {
        source: table,
        provenance,
        matrix,
    })
}

/// Checks that a per-row input (ids, biases) has one entry per row.
fn check_rows(path: &Path, what: &str, len: usize, source: &Table2d, rows: usize) -> Result<()> {
    if len == rows {
        return Ok(());
    }
    Err(ExportError::Shape {
        path: path.to_path_buf(),
        tensor: what.to_string(),
        message: format!(
            "has {len} entries, but table '{}' in {} has {rows} rows",
            source.tensor,
            source.path.display(),
        ),
    })
}

/// A table's ids: row numbers, an id file (read when the table's spec is built), or given.
pub(crate) enum Ids<'a> {
    /// Ids are row numbers.
    RowNumbers,
    /// One id per line of this file.
    File(&'a Path),
    /// Already read or made (its `path` names it in messages).
    Given(IdList),
}

/// A table's biases: none, a file (read when the table's spec is built), or given.
pub(crate) enum Biases<'a> {
    /// No biases.
    None,
    /// A vector read from this file (or tensor).
    File(&'a Source),
    /// Given values, with the name messages use for them.
    Given(PathBuf, Vec<f32>),
}

/// One side of the model: the loaded table, its ids and its biases.
pub(crate) struct Side<'a> {
    /// The table, pruned.
    pub(crate) table: LoadedTable,
    /// Its ids.
    pub(crate) ids: Ids<'a>,
    /// Its biases.
    pub(crate) bias: Biases<'a>,
}

/// Builds the [`TableSpec`] of one side: ids and biases attached and checked.
fn table_spec(
    role: Role,
    side: Side<'_>,
    values: ValueEncoding,
    id_strings: bool,
) -> Result<TableSpec> {
    let Side { table, ids, bias } = side;
    let LoadedTable { source, matrix, .. } = table;
    let rows = matrix.rows();
    let mut spec = TableSpec::new(source.tensor.clone(), role, matrix).values(values);
    let ids = match ids {
        Ids::RowNumbers => None,
        Ids::File(path) => Some(read_id_file(path)?),
        Ids::Given(ids) => Some(ids),
    };
    if let Some(ids) = ids {
        check_rows(&ids.path, "ids", ids.ids.len(), &source, rows)?;
        spec = spec.ids(ids.ids, ids.kind);
        if let Some(strings) = ids.strings.filter(|_| id_strings) {
            spec = spec.id_strings(strings);
        }
    }
    let bias = match bias {
        Biases::None => None,
        Biases::File(bias_source) => Some((
            bias_source.path.clone(),
            input::read_vector(&bias_source.path, bias_source.tensor.as_deref())?,
        )),
        Biases::Given(path, bias) => Some((path, bias)),
    };
    if let Some((path, bias)) = bias {
        check_rows(&path, "bias", bias.len(), &source, rows)?;
        spec = spec.bias(bias);
    }
    Ok(spec)
}

/// What a table read from a file records as its `source.*` property: `PATH [TENSOR]`.
pub(crate) fn provenance(source: &Table2d) -> String {
    format!("{} [{}]", source.path.display(), source.tensor)
}

/// Runs an export; see [`ExportOptions`].
pub fn export(options: &ExportOptions) -> Result<ExportSummary> {
    export_reporting(options, &NoProgress)
}

/// [`export`], reporting the rows encoded to `progress`.
pub fn export_reporting(options: &ExportOptions, progress: &dyn Progress) -> Result<ExportSummary> {
    check_settings(options)?;
    let items = load_table(&options.items, options.prune_density)?;
    let users = match &options.users {
        Some(users) => load_table(users, options.prune_density)?,
        None => no_user_table(&items)?,
    };
    let users = file_side(
        users,
        options.user_ids.as_deref(),
        options.user_bias.as_ref(),
    );
    let items = file_side(
        items,
        options.item_ids.as_deref(),
        options.item_bias.as_ref(),
    );
    write_model(options, users, items, progress)
}

/// The user table of an export without one ([`ExportOptions::items_only`]): no rows, as wide
/// as `items`.
fn no_user_table(items: &LoadedTable) -> Result<LoadedTable> {
    let matrix = SparseMatrix::new(items.matrix.dim()).map_err(model_error(&items.source.path))?;
    Ok(LoadedTable {
        source: Table2d {
            path: PathBuf::from("<no user table>"),
            tensor: "user_embedding".into(),
            matrix: Matrix::Dense(input::DenseMatrix::default()),
        },
        provenance: NO_USER_TABLE_SOURCE.into(),
        matrix,
    })
}

/// A table read from a file, with its id file and bias file (read when its spec is built).
fn file_side<'a>(table: LoadedTable, ids: Option<&'a Path>, bias: Option<&'a Source>) -> Side<'a> {
    Side {
        table,
        ids: ids.map_or(Ids::RowNumbers, Ids::File),
        bias: bias.map_or(Biases::None, Biases::File),
    }
}

/// Checks the settings that do not depend on the tables (before any table is read).
pub(crate) fn check_settings(options: &ExportOptions) -> Result<()> {
    if let Some(d) = options.prune_density
        && !(d > 0.0 && d <= 1.0)
    {
        return Err(ExportError::Usage(format!(
            "--prune-density must be in (0, 1], got {d}"
        )));
    }
    if options.users.is_none() {
        if options.storage.user_rows != UserRows::FoldedIn {
            return Err(ExportError::Usage(
                "no user table: give one (--users), or write the item table alone with \
                 --items-only (every user folded in on the device)"
                    .into(),
            ));
        }
        if options.user_ids.is_some() {
            return Err(ExportError::Usage(
                "--user-ids names the rows of a user table, and none was given".into(),
            ));
        }
    }
    if options.storage.user_rows == UserRows::FoldedIn {
        if !options.fold_in {
            return Err(ExportError::Usage(storage::ITEMS_ONLY_NEEDS_FOLD_IN.into()));
        }
        if options.user_bias.is_some() {
            return Err(ExportError::Usage(
                "--items-only writes no user rows, and so no user biases (a user's bias shifts \
                 all their scores alike and does not change their ranking): drop --user-bias"
                    .into(),
            ));
        }
    }
    if !options.global_bias.is_finite() {
        return Err(ExportError::Usage("--global-bias must be finite".into()));
    }
    Ok(())
}

/// The shared path after loading: checks the tables against each other, builds the model with
/// the settings of `options` (its sources, id files and bias files are not read: the sides
/// carry the tables, ids and biases) and writes it atomically to `options.output`.
pub(crate) fn write_model(
    options: &ExportOptions,
    users: Side<'_>,
    items: Side<'_>,
    progress: &dyn Progress,
) -> Result<ExportSummary> {
    let (user_table, item_table) = (&users.table, &items.table);
    if user_table.matrix.dim() != item_table.matrix.dim() {
        return Err(ExportError::Shape {
            path: item_table.source.path.clone(),
            tensor: item_table.source.tensor.clone(),
            message: format!(
                "has {} columns, but the user table '{}' in {} has {}",
                item_table.matrix.dim(),
                user_table.source.tensor,
                user_table.source.path.display(),
                user_table.matrix.dim()
            ),
        });
    }
    let dense_f32_bytes = 4
        * (user_table.matrix.rows() + item_table.matrix.rows()) as u64
        * user_table.matrix.dim() as u64;
    let (users_provenance, items_provenance) =
        (user_table.provenance.clone(), item_table.provenance.clone());
    let item_spec = table_spec(Role::Item, items, options.values, options.id_strings)?
        .list_rows(options.list_rows)
        .with_per_row_offsets(options.per_row_offsets);
    let user_spec = table_spec(Role::User, users, options.values, options.id_strings)?
        .with_per_row_offsets(options.per_row_offsets);
    let user_spec = options
        .storage
        .user_rows
        .apply(user_spec)
        .map_err(model_error(&options.output))?;
    let mut builder = ModelBuilder::new()
        .scoring(options.scoring)
        .global_bias(options.global_bias)
        .property("created_by", CREATED_BY)
        .property("source.users", users_provenance)
        .property("source.items", items_provenance)
        .property("values", options.values.name());
    let mut plan = storage::plan(
        &options.storage,
        &storage::Tables {
            users: &user_spec.matrix,
            items: &item_spec.matrix,
            item_bias: item_spec.bias.as_deref(),
            cosine: options.scoring == Scoring::Cosine,
        },
    )?;
    if let Some(previous) = &options.update_of {
        plan.keep_order = storage::previous_item_order(previous)?;
    }
    for (key, value) in plan.properties() {
        builder = builder.property(key, value);
    }
    if options.storage.user_rows == UserRows::FoldedIn {
        builder = builder.property("users", storage::USERS_FOLDED_IN);
    }
    if let Some(d) = options.prune_density {
        builder = builder.property("pruned_to_density", d.to_string());
    }
    let fold_in = match options.fold_in_params {
        _ if !options.fold_in => None,
        _ if options.fold_in_softmax.is_some() => None,
        Some(params) => Some((params, "given")),
        // The defaults apply where the device can fold in (d <= 512) and the values are
        // within range (a table of values near f32::MAX has no finite Gramian).
        None if item_spec.matrix.dim() <= MAX_STACK_DIM => {
            let params = scaled_params(
                &item_spec.matrix,
                DEFAULT_UNOBSERVED_ITEMS,
                DEFAULT_RIDGE_ITEMS,
            );
            params.check().is_ok().then_some((params, "default"))
        }
        None => None,
    };
    let softmax = options.fold_in_softmax.filter(|_| options.fold_in);
    if options.storage.user_rows == UserRows::FoldedIn && fold_in.is_none() && softmax.is_none() {
        return Err(ExportError::Usage(format!(
            "--items-only: the device cannot fold users in at d = {} (above {MAX_STACK_DIM}) \
             without given settings (--fold-in-unobserved-weight and \
             --fold-in-regularization, or --fold-in-softmax)",
            item_spec.matrix.dim()
        )));
    }
    if let Some((params, chosen_by)) = fold_in {
        builder = builder
            .fold_in(params)
            .property(
                "fold_in.unobserved_weight",
                params.unobserved_weight.to_string(),
            )
            .property("fold_in.regularization", params.regularization.to_string())
            .property("fold_in.chosen_by", chosen_by);
    }
    if let Some(mut settings) = softmax {
        settings.clusters = options
            .fold_in_clusters
            .unwrap_or_else(|| pocketrec::SoftmaxFoldIn::default_clusters(item_spec.matrix.rows()));
        builder = builder.fold_in_softmax(settings);
        for (key, value) in settings.properties() {
            builder = builder.property(key, value);
        }
        builder = builder.property("fold_in.chosen_by", "given");
    }
    let builder = builder.table(user_spec).table(plan.apply(item_spec));
    let bytes = build_reporting(&builder, progress, &options.output)?;
    write_atomic(&options.output, &bytes)?;
    Ok(ExportSummary {
        output: options.output.clone(),
        file_bytes: bytes.len() as u64,
        dense_f32_bytes,
    })
}

/// Encodes the model, reporting the rows encoded to `progress`; errors name `output`.
pub fn build_reporting(
    builder: &ModelBuilder,
    progress: &dyn Progress,
    output: &Path,
) -> Result<Vec<u8>> {
    let total: u64 = builder
        .tables()
        .iter()
        .map(|t| t.matrix.rows() as u64)
        .sum();
    progress.start(total, "encoding rows");
    let bytes = builder.build_with_progress(&mut |done, _| progress.update(done));
    progress.finish();
    bytes.map_err(model_error(output))
}
