//! Writing `.prec` files (feature `alloc`): the writer side of [`crate::format`].
//!
//! The exporter and the trainer write every model through [`ModelBuilder`], so the layout is
//! defined once, here and in [`crate::format`], and the reader checks exactly what the writer
//! produces. The output is deterministic: the same input gives the same bytes.
//!
//! ```
//! use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
//! use pocketrec::{Model, Role, ValueEncoding};
//! # fn main() -> Result<(), pocketrec::Error> {
//! let users = SparseMatrix::from_dense(2, 4, &[1.0, 0.0, 0.0, 0.5,
//!                                              0.0, 2.0, 0.0, 0.0])?;
//! let items = SparseMatrix::from_dense(3, 4, &[0.0, 0.0, 1.0, 0.0,
//!                                              1.0, 0.0, 0.0, 0.0,
//!                                              0.0, 1.0, 0.0, 1.0])?;
//! let bytes = ModelBuilder::new()
//!     .table(TableSpec::new("user_embedding", Role::User, users))
//!     .table(TableSpec::new("item_embedding", Role::Item, items).values(ValueEncoding::F16))
//!     .property("created_by", "example")
//!     .build()?;
//! let model = Model::from_bytes(&bytes)?;
//! model.verify()?;
//! assert_eq!(model.items()?.rows(), 3);
//! # Ok(()) }
//! ```

mod bounds;
mod columns;
mod encode;
mod fold_in;
mod id_strings;
mod matrix;

use alloc::string::String;
use alloc::vec::Vec;

pub use columns::COLUMN_BLOCK_ROWS;
pub use encode::cluster_order;
pub use matrix::SparseMatrix;

pub use crate::fold_in::FoldInParams;

use crate::error::{Error, Result};
use crate::format::{
    self, ColumnRecord, IdKind, IndexEncoding, ListRows, MetadataExtension, MetadataRecord,
    RawHeader, RawSection, Role, Scoring, SectionKind, TableRecord, U16Le, U32Le, U64Le,
    ValueEncoding,
};

/// How a table is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Row records only (format 1.0): the smallest file. Queries scan every row.
    #[default]
    Rows,
    /// Row records plus a column layout (format 1.1): posting lists per dimension, so that a
    /// query with a sparse user vector reads only the lists of its non-zero dimensions. About
    /// doubles the table's bytes.
    Both,
    /// The column layout alone, no row records (format 1.2): about the size of the row
    /// records, every query through the column scan, a row by id through
    /// [`crate::Table::decode_row`] (a binary search per dimension). A 1.1 reader refuses the
    /// file.
    Columns,
}

impl Layout {
    /// The layout named `rows`, `both` or `columns`.
    pub fn from_name(name: &str) -> Option<Layout> {
        match name {
            "rows" => Some(Layout::Rows),
            "both" => Some(Layout::Both),
            "columns" => Some(Layout::Columns),
            _ => None,
        }
    }

    /// `rows`, `both` or `columns`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Rows => "rows",
            Layout::Both => "both",
            Layout::Columns => "columns",
        }
    }

    /// Whether the layout stores row records.
    pub fn has_rows(self) -> bool {
        self != Layout::Columns
    }

    /// Whether the layout stores a column layout.
    pub fn has_columns(self) -> bool {
        self != Layout::Rows
    }
}

/// The order a table's rows are stored in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RowOrder {
    /// Sorted by external id (by row number without ids): ids are found by binary search
    /// over the ids themselves. Readable by every 1.x reader.
    #[default]
    ById,
    /// Rows with the same strongest dimensions (and sign) next to each other, largest norm
    /// first within them, so that [`TableSpec::block_bounds`] are tight and a scan skips most
    /// blocks. The ids are then stored in row order with an id index beside them (format 1.5,
    /// [`crate::format::IdEncoding::U32Indexed`]): 4 bytes a row more, 8 for a table whose
    /// ids were its row numbers. Row numbers ([`crate::Table::find`]) change; ids do not.
    Clustered,
}

/// One table to write: its rows and how to store them.
#[derive(Clone, Debug)]
pub struct TableSpec {
    /// The table's name (e.g. `item_embedding`).
    pub name: String,
    /// Users or items.
    pub role: Role,
    /// The rows, in input order.
    pub matrix: SparseMatrix,
    /// How to store values.
    pub values: ValueEncoding,
    /// External ids in input-row order (`None`: ids are row numbers). Rows are written sorted
    /// by id, so that lookups are a binary search.
    pub ids: Option<Vec<u64>>,
    /// Whether the ids are integers or [`crate::string_id`] hashes.
    pub id_kind: IdKind,
    /// Per-row biases in input-row order.
    pub bias: Option<Vec<f32>>,
    /// Rows only, or rows and columns.
    pub layout: Layout,
    /// How the column layout's posting lists name their rows: [`ListRows::U16`] by default.
    pub list_rows: ListRows,
    /// Store the rows sliced (format 1.4, [`crate::format::IndexEncoding::Sliced`]) instead of
    /// as row records: a faster row scan on CPUs with AVX-512 VBMI2, and a smaller table (a
    /// length byte a row instead of an offset); `dim` at most 256, at most 255 non-zeros a
    /// row, [`Layout::Rows`] only. False by default.
    pub sliced: bool,
    /// For a table whose rows are bitmap records (the smaller index for it): keep one row
    /// offset per row ([`crate::format::IndexEncoding::Bitmap`], readable by format 1.0 to 1.6
    /// readers) instead of one per block of 16 rows
    /// ([`crate::format::IndexEncoding::BitmapBlocks`], format 1.7, 4 bytes a row smaller).
    /// False by default.
    pub per_row_offsets: bool,
    /// The original strings of string ids, in input-row order (each must hash to its id):
    /// stored so that readers can give them back ([`crate::Model::id_str`]).
    pub id_strings: Option<Vec<String>>,
    /// The order the rows are stored in: by id (the default) or clustered.
    pub row_order: RowOrder,
    /// Rows per block of the table's block bounds ([`crate::SectionKind::BlockBounds`]), or
    /// `None` for none. Needs a column layout, whose blocks then have this many rows: a power
    /// of two in 64..=4096.
    pub block_bounds: Option<u32>,
    /// With [`RowOrder::Clustered`]: the ids in the order an earlier file stored them (see
    /// [`TableSpec::keep_order_of`]), or `None` to cluster from scratch.
    pub keep_order: Option<Vec<u64>>,
}

impl TableSpec {
    /// A table of f32 values whose ids are its row numbers, without biases.
    pub fn new(name: impl Into<String>, role: Role, matrix: SparseMatrix) -> Self {
        TableSpec {
            name: name.into(),
            role,
            matrix,
            values: ValueEncoding::F32,
            ids: None,
            id_kind: IdKind::Integer,
            bias: None,
            layout: Layout::Rows,
            list_rows: ListRows::U16,
            sliced: false,
            per_row_offsets: false,
            id_strings: None,
            row_order: RowOrder::ById,
            block_bounds: None,
            keep_order: None,
        }
    }

    /// With [`RowOrder::Clustered`], stores the rows that an earlier file stored (`ids`, in
    /// its row order) in the same order, and the other rows after them, clustered. An update
    /// written this way moves no unchanged row, so a patch from the earlier file carries only
    /// what changed; block bounds stay exact (they are computed from the rows as stored), and
    /// grow looser only as changed rows drift from their clusters. Ids in `ids` that the table
    /// no longer has are skipped.
    ///
    /// ```
    /// use pocketrec::builder::{Layout, ModelBuilder, RowOrder, SparseMatrix, TableSpec};
    /// use pocketrec::format::Role;
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// let m = SparseMatrix::from_dense(3, 2, &[1.0, 0.0, 0.0, 2.0, 0.5, 0.0])?;
    /// let items = TableSpec::new("item_embedding", Role::Item, m.clone())
    ///     .layout(Layout::Columns)
    ///     .row_order(RowOrder::Clustered)
    ///     .with_block_bounds(64)
    ///     .keep_order_of(vec![2, 1]);
    /// let bytes = ModelBuilder::new()
    ///     .table(TableSpec::new("user_embedding", Role::User, m))
    ///     .table(items)
    ///     .build()?;
    /// let items = pocketrec::Model::from_bytes(&bytes)?;
    /// let items = items.items()?;
    /// assert_eq!((items.id(0)?, items.id(1)?, items.id(2)?), (2, 1, 0));
    /// # Ok(()) }
    /// ```
    pub fn keep_order_of(mut self, ids: Vec<u64>) -> Self {
        self.keep_order = Some(ids);
        self
    }

    /// Stores the rows in `order` (see [`RowOrder`]).
    pub fn row_order(mut self, order: RowOrder) -> Self {
        self.row_order = order;
        self
    }

    /// Writes block bounds for blocks of `block_rows` rows (see
    /// [`Self::block_bounds`](TableSpec#structfield.block_bounds)): with
    /// [`RowOrder::Clustered`], a column scan skips the blocks that cannot hold a top-k item.
    ///
    /// ```
    /// use pocketrec::builder::{Layout, ModelBuilder, RowOrder, SparseMatrix, TableSpec};
    /// use pocketrec::format::Role;
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// let m = SparseMatrix::from_dense(3, 2, &[1.0, 0.0, 0.0, 2.0, 0.5, 0.0])?;
    /// let items = TableSpec::new("item_embedding", Role::Item, m.clone())
    ///     .layout(Layout::Columns)
    ///     .row_order(RowOrder::Clustered)
    ///     .with_block_bounds(64);
    /// let bytes = ModelBuilder::new()
    ///     .table(TableSpec::new("user_embedding", Role::User, m))
    ///     .table(items)
    ///     .build()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// model.verify()?;
    /// assert_eq!(model.items()?.block_bounds_rows(), Some(64));
    /// let row = model.items()?.find(1)?; // ids stay, row numbers follow the clustering
    /// assert_eq!(model.items()?.id(row)?, 1);
    /// # Ok(()) }
    /// ```
    pub fn with_block_bounds(mut self, block_rows: u32) -> Self {
        self.block_bounds = Some(block_rows);
        self
    }

    /// Stores the original strings of the table's string ids (one per input row, in input
    /// order, `string_id(s)` equal to its id; needs [`TableSpec::ids`] with
    /// [`IdKind::StringHash`]).
    pub fn id_strings(mut self, strings: Vec<String>) -> Self {
        self.id_strings = Some(strings);
        self
    }

    /// Stores the rows sliced, or not (see [`Self::sliced`](TableSpec#structfield.sliced)).
    ///
    /// ```
    /// use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
    /// use pocketrec::format::Role;
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// let m = SparseMatrix::from_dense(3, 2, &[1.0, 0.0, 0.0, 2.0, 0.5, 0.0])?;
    /// let bytes = ModelBuilder::new()
    ///     .table(TableSpec::new("user_embedding", Role::User, m.clone()))
    ///     .table(TableSpec::new("item_embedding", Role::Item, m).with_sliced_rows(true))
    ///     .build()?;
    /// let model = pocketrec::Model::from_bytes(&bytes)?;
    /// model.verify()?;
    /// assert!(model.items()?.has_sliced_rows());
    /// let mut row = [0.0f32; 2];
    /// model.items()?.decode_row(1, &mut row)?;
    /// assert_eq!(row, [0.0, 2.0]);
    /// # Ok(()) }
    /// ```
    pub fn with_sliced_rows(mut self, sliced: bool) -> Self {
        self.sliced = sliced;
        self
    }

    /// Keeps one row offset per row for bitmap rows, or not (see
    /// [`Self::per_row_offsets`](TableSpec#structfield.per_row_offsets)).
    ///
    /// ```
    /// # fn main() -> Result<(), pocketrec::Error> {
    /// use pocketrec::builder::{ModelBuilder, SparseMatrix, TableSpec};
    /// use pocketrec::{IndexEncoding, Role};
    /// // Rows of 12 non-zeros in 16 dimensions: a 2-byte bitmap beats 12 column bytes.
    /// let dense: Vec<f32> = (0..40 * 16).map(|i| if i % 4 == 0 { 0.0 } else { 1.0 }).collect();
    /// let table = |per_row| {
    ///     let m = SparseMatrix::from_dense(40, 16, &dense).unwrap();
    ///     TableSpec::new("item_embedding", Role::Item, m).with_per_row_offsets(per_row)
    /// };
    /// let blocks = ModelBuilder::new().table(table(false)).build()?;
    /// let per_row = ModelBuilder::new().table(table(true)).build()?;
    /// let (a, b) = (pocketrec::Model::from_bytes(&blocks)?, pocketrec::Model::from_bytes(&per_row)?);
    /// assert_eq!(a.items()?.index_encoding(), IndexEncoding::BitmapBlocks);
    /// assert_eq!(b.items()?.index_encoding(), IndexEncoding::Bitmap);
    /// // 41 offsets of 4 bytes become 4 offsets and 3 masks.
    /// assert_eq!(a.items()?.offsets_bytes(), 3 * 2 + 4 * 4);
    /// assert_eq!(b.items()?.offsets_bytes(), 41 * 4);
    /// assert_eq!(a.items()?.row(7)?.dot(&[1.0; 16])?, b.items()?.row(7)?.dot(&[1.0; 16])?);
    /// # Ok(()) }
    /// ```
    pub fn with_per_row_offsets(mut self, per_row: bool) -> Self {
        self.per_row_offsets = per_row;
        self
    }

    /// Stores the table with `layout`.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Makes the column layout's posting lists name their rows with `list_rows`: `u16` rows
    /// (the default, readable by format 1.1 and 1.2 readers) or bitmaps (format 1.3: smaller
    /// above one row in 16 per block and dimension, see [`ListRows::Bitmap`]). Only matters
    /// with a layout that has columns.
    pub fn list_rows(mut self, list_rows: ListRows) -> Self {
        self.list_rows = list_rows;
        self
    }

    /// Stores values with `encoding`.
    pub fn values(mut self, encoding: ValueEncoding) -> Self {
        self.values = encoding;
        self
    }

    /// Gives the rows external ids (one per input row, all different).
    pub fn ids(mut self, ids: Vec<u64>, kind: IdKind) -> Self {
        self.ids = Some(ids);
        self.id_kind = kind;
        self
    }

    /// Gives the rows biases (one per input row).
    pub fn bias(mut self, bias: Vec<f32>) -> Self {
        self.bias = Some(bias);
        self
    }
}

/// Assembles tables, scoring and properties into the bytes of a `.prec` file.
#[derive(Clone, Debug)]
pub struct ModelBuilder {
    scoring: Scoring,
    global_bias: f32,
    tables: Vec<TableSpec>,
    properties: Vec<(String, String)>,
    fold_in: Option<FoldInParams>,
    fold_in_softmax: Option<crate::SoftmaxFoldIn>,
}

impl Default for ModelBuilder {
    fn default() -> Self {
        ModelBuilder::new()
    }
}

/// Appends `bytes` to `out` after zero padding up to `align`.
fn place(out: &mut Vec<u8>, bytes: &[u8], align: u64) -> Result<u64> {
    let offset = format::align_up(out.len() as u64, align).ok_or(Error::InvalidInput {
        role: None,
        row: None,
        column: None,
        reason: "file too large",
    })?;
    out.resize(offset as usize, 0);
    out.extend_from_slice(bytes);
    Ok(offset)
}

impl ModelBuilder {
    /// A builder with dot scoring, no global bias, no tables and no properties.
    pub fn new() -> Self {
        ModelBuilder {
            scoring: Scoring::Dot,
            global_bias: 0.0,
            tables: Vec::new(),
            properties: Vec::new(),
            fold_in: None,
            fold_in_softmax: None,
        }
    }

    /// Adds a fold-in section ([`SectionKind::FoldIn`]) for the item table, with `params`: the
    /// item Gramian (`2·d·(d+1)` bytes, 8,320 at d = 64), computed from the item rows as they
    /// are stored, so that [`crate::Model::fold_in`] works on the device. Needs `d ≤ 512`.
    pub fn fold_in(mut self, params: FoldInParams) -> Self {
        self.fold_in = Some(params);
        self
    }

    /// Adds a softmax fold-in section ([`SectionKind::FoldInSoftmax`]) for the item table:
    /// [`crate::Model::fold_in`] then solves a user by the softmax objective (for models trained
    /// with a sampled-softmax loss on unit vectors; see [`crate::SoftmaxFoldIn`]). With
    /// `settings.clusters > 0` the section carries a summary of the catalogue in that many
    /// clusters, fitted here by k-means on the item rows as stored (at most 4,096 clusters, and
    /// at most one per item row); the section then takes `4·(C·(d + 2) + d(d+1)/2)` bytes more.
    /// Not together with [`ModelBuilder::fold_in`]. Needs `d ≤ 512`.
    pub fn fold_in_softmax(mut self, settings: crate::SoftmaxFoldIn) -> Self {
        self.fold_in_softmax = Some(settings);
        self
    }

    /// Sets the scoring function.
    pub fn scoring(mut self, scoring: Scoring) -> Self {
        self.scoring = scoring;
        self
    }

    /// Sets the constant added to every score.
    pub fn global_bias(mut self, bias: f32) -> Self {
        self.global_bias = bias;
        self
    }

    /// Adds a table (at most one per role).
    pub fn table(mut self, table: TableSpec) -> Self {
        self.tables.push(table);
        self
    }

    /// Adds a free-form string property (kept in insertion order).
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// The tables added so far.
    pub fn tables(&self) -> &[TableSpec] {
        &self.tables
    }

    /// Writes the file's bytes.
    pub fn build(&self) -> Result<Vec<u8>> {
        self.build_with_progress(&mut |_, _| {})
    }

    /// Writes the file's bytes, calling `progress(rows_done, rows_total)` as rows are encoded.
    pub fn build_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<Vec<u8>> {
        self.check()?;
        let total: u64 = self.tables.iter().map(|t| t.matrix.rows() as u64).sum();
        let mut done_before = 0u64;
        let mut encoded = Vec::with_capacity(self.tables.len());
        for spec in &self.tables {
            let cosine = self.scoring == Scoring::Cosine;
            let table = encode::encode_table(spec, cosine, &mut |rows| {
                progress(done_before + rows, total)
            })?;
            done_before += spec.matrix.rows() as u64;
            encoded.push(table);
        }

        // Section 0 is the metadata; each table's sections follow in a fixed order.
        let mut sections: Vec<(SectionKind, &[u8])> = Vec::new();
        let mut tables = heapless::Vec::<TableRecord<'_>, { format::MAX_TABLES }>::new();
        let mut extension = MetadataExtension::default();
        for (position, (spec, table)) in self.tables.iter().zip(&encoded).enumerate() {
            let mut next = |kind, bytes| {
                sections.push((kind, bytes));
                sections.len() as u32 // index after the metadata at 0
            };
            let (offsets_section, data_section) = if spec.layout.has_rows() {
                (
                    next(SectionKind::RowOffsets, &table.offsets),
                    next(SectionKind::RowData, &table.data),
                )
            } else {
                (format::NO_SECTION, format::NO_SECTION)
            };
            let ids_section = table.ids.as_deref().map(|b| next(SectionKind::Ids, b));
            let bias_section = table.bias.as_deref().map(|b| next(SectionKind::Bias, b));
            if let Some(columns) = &table.columns {
                let record = ColumnRecord {
                    table: position as u32,
                    block_rows: columns.block_rows,
                    entries: columns.entries,
                    offset_width: columns.offset_width.code(),
                    offsets_section: next(SectionKind::ColumnOffsets, &columns.offsets),
                    items_section: next(columns.list_rows.section_kind(), &columns.items),
                    values_section: next(SectionKind::ColumnValues, &columns.values),
                    norms_section: columns
                        .norms
                        .as_deref()
                        .map(|b| next(SectionKind::RowNorms, b)),
                    scales_section: columns
                        .scales
                        .as_deref()
                        .map(|b| next(SectionKind::RowScales, b)),
                };
                // At most MAX_TABLES columns records, one per table (checked above).
                let _ = extension.columns.push(record);
            }
            let record = TableRecord {
                name: &spec.name,
                role: spec.role.code(),
                rows: spec.matrix.rows() as u64,
                dim: spec.matrix.dim() as u32,
                nnz: table.nnz,
                value_encoding: spec.values.code(),
                index_encoding: table.index.code(),
                offset_width: table.offset_width.code(),
                id_encoding: table.id_encoding.code(),
                id_kind: spec.id_kind.code(),
                offsets_section,
                data_section,
                ids_section,
                bias_section,
            };
            tables.push(record).map_err(|_| Error::InvalidInput {
                role: None,
                row: None,
                column: None,
                reason: "too many tables",
            })?;
        }
        let id_strings: Vec<Vec<u8>> = self
            .tables
            .iter()
            .zip(&encoded)
            .enumerate()
            .filter_map(|(position, (spec, table))| {
                id_strings::section(spec, position as u32, &table.order).transpose()
            })
            .collect::<Result<_>>()?;
        for bytes in &id_strings {
            sections.push((SectionKind::IdStrings, bytes));
        }
        // Id indexes and block bounds name their table in a header of their own.
        let mut by_table: Vec<(SectionKind, Vec<u8>)> = Vec::new();
        for (position, table) in encoded.iter().enumerate() {
            if let Some(index) = &table.id_index {
                by_table.push((
                    SectionKind::IdIndex,
                    encode::id_index_section(position, index),
                ));
            }
            if let Some(bounds) = &table.bounds {
                by_table.push((SectionKind::BlockBounds, bounds.section(position as u32)));
            }
        }
        for (kind, bytes) in &by_table {
            sections.push((*kind, bytes));
        }
        let pairs: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let properties = postcard::to_allocvec(&pairs).map_err(|_| Error::InvalidInput {
            role: None,
            row: None,
            column: None,
            reason: "properties do not encode",
        })?;
        let encode_error = |_| Error::InvalidInput {
            role: None,
            row: None,
            column: None,
            reason: "metadata does not encode",
        };
        let mut metadata = postcard::to_allocvec(&MetadataRecord {
            scoring: self.scoring.code(),
            global_bias: self.global_bias,
            tables,
            properties: &properties,
        })
        .map_err(encode_error)?;
        if !extension.columns.is_empty() {
            metadata.extend(postcard::to_allocvec(&extension).map_err(encode_error)?);
        }
        sections.insert(0, (SectionKind::Metadata, &metadata));
        let bitmap_lists = encoded.iter().any(|t| {
            t.columns
                .as_ref()
                .is_some_and(|c| c.list_rows == ListRows::Bitmap)
        });
        let minor = if encoded
            .iter()
            .any(|t| t.index == IndexEncoding::BitmapBlocks)
        {
            format::FORMAT_MINOR_BITMAP_BLOCKS
        } else if self.tables.iter().any(|t| t.values == ValueEncoding::I4) {
            format::FORMAT_MINOR_INT4
        } else if encoded.iter().any(|t| t.id_index.is_some()) {
            format::FORMAT_MINOR_ID_INDEX
        } else if encoded.iter().any(|t| t.index == IndexEncoding::Sliced) {
            format::FORMAT_MINOR_SLICED_ROWS
        } else if bitmap_lists {
            format::FORMAT_MINOR_BITMAP_LISTS
        } else if self.tables.iter().all(|t| t.layout.has_rows()) {
            format::FORMAT_MINOR_ROWS
        } else {
            format::FORMAT_MINOR_COLUMNS_ONLY
        };
        let mut bytes = assemble_minor(&sections, minor);
        // Block bounds: computed from the assembled tables (placed with zero bodies).
        let filled_bounds = if by_table.iter().any(|(k, _)| *k == SectionKind::BlockBounds) {
            bounds::fill(&bytes)?
        } else {
            Vec::new()
        };
        if !filled_bounds.is_empty() {
            let mut filled = filled_bounds.iter();
            for (kind, section) in sections.iter_mut() {
                if *kind == SectionKind::BlockBounds
                    && let Some(body) = filled.next()
                {
                    *section = body;
                }
            }
            bytes = assemble_minor(&sections, minor);
        }
        match (self.fold_in, self.fold_in_softmax) {
            (None, None) => Ok(bytes),
            (Some(params), None) => {
                let fold_in = fold_in::section(&bytes, params)?;
                sections.push((SectionKind::FoldIn, &fold_in));
                Ok(assemble_minor(&sections, minor))
            }
            (None, Some(settings)) => {
                let fold_in = fold_in::softmax_section(&bytes, settings)?;
                sections.push((SectionKind::FoldInSoftmax, &fold_in));
                Ok(assemble_minor(&sections, minor))
            }
            (Some(_), Some(_)) => Err(Error::InvalidInput {
                role: Some(Role::Item),
                row: None,
                column: None,
                reason: "a file folds users in by one objective: fold_in or fold_in_softmax, not both",
            }),
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |role, reason| Error::InvalidInput {
            role,
            row: None,
            column: None,
            reason,
        };
        if !self.global_bias.is_finite() {
            return Err(bad(None, "global bias is not finite"));
        }
        for (i, t) in self.tables.iter().enumerate() {
            if self.tables[..i].iter().any(|o| o.role == t.role) {
                return Err(bad(Some(t.role), "two tables with the same role"));
            }
        }
        let mut dims = self.tables.iter().map(|t| t.matrix.dim());
        if let Some(first) = dims.next()
            && dims.any(|d| d != first)
        {
            return Err(bad(None, "the tables have different dimensions"));
        }
        Ok(())
    }
}

/// Lays out header, section table and sections, and fills in sizes and checksums.
///
/// Public for tests that need files the builder would not write (e.g. with sections of a kind
/// from a later minor version); the metadata's section indices are the positions in
/// `sections`.
#[doc(hidden)]
pub fn assemble(sections: &[(SectionKind, &[u8])]) -> Vec<u8> {
    assemble_minor(sections, format::FORMAT_MINOR_ROWS)
}

/// [`assemble`] with the header's minor version `minor`.
fn assemble_minor(sections: &[(SectionKind, &[u8])], minor: u16) -> Vec<u8> {
    let align = u64::from(format::SECTION_ALIGNMENT);
    let table_len = sections.len() * format::SECTION_ENTRY_SIZE;
    let mut out = alloc::vec![0u8; format::HEADER_SIZE_V1 + table_len];
    let mut entries = Vec::with_capacity(sections.len());
    for (kind, bytes) in sections {
        // `place` only fails past u64::MAX bytes, which a Vec cannot hold.
        let offset = place(&mut out, bytes, align).unwrap_or(0);
        entries.push(RawSection {
            kind: U32Le::new(kind.code()),
            flags: U32Le::new(0),
            offset: U64Le::new(offset),
            length: U64Le::new(bytes.len() as u64),
            crc: U32Le::new(format::crc32c(bytes)),
            reserved: U32Le::new(0),
        });
    }
    let table_bytes: &[u8] = bytemuck::cast_slice(&entries);
    out[format::HEADER_SIZE_V1..format::HEADER_SIZE_V1 + table_len].copy_from_slice(table_bytes);
    let mut header = RawHeader {
        magic: format::MAGIC,
        byte_order_mark: U32Le::new(format::BYTE_ORDER_MARK),
        major: U16Le::new(format::FORMAT_MAJOR),
        minor: U16Le::new(minor),
        header_size: U32Le::new(format::HEADER_SIZE_V1 as u32),
        section_count: U32Le::new(sections.len() as u32),
        section_alignment: U32Le::new(format::SECTION_ALIGNMENT),
        section_table_crc: U32Le::new(format::crc32c(table_bytes)),
        file_size: U64Le::new(out.len() as u64),
        reserved: [0; 20],
        header_crc: U32Le::new(0),
    };
    header.header_crc = U32Le::new(format::header_crc(bytemuck::bytes_of(&header)));
    out[..format::HEADER_SIZE_V1].copy_from_slice(bytemuck::bytes_of(&header));
    out
}

/// A tiny model used by the documentation examples: dimension 4, three users (ids 0..3), four
/// items (ids 0..4), f32 values, dot scoring, property `created_by = "pocketrec doctest"`.
#[doc(hidden)]
pub fn tiny_example_model() -> Result<Vec<u8>> {
    let users = SparseMatrix::from_dense(
        3,
        4,
        &[1.0, 0.0, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    )?;
    let items = SparseMatrix::from_dense(
        4,
        4,
        &[
            1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0,
        ],
    )?;
    ModelBuilder::new()
        .table(TableSpec::new("user_embedding", Role::User, users))
        .table(TableSpec::new("item_embedding", Role::Item, items))
        .property("created_by", "pocketrec doctest")
        .build()
}
