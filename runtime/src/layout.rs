//! Open-time validation: header, section table, metadata, and the cross-checks between them.
//!
//! [`Layout::parse`] reads only the header, the section table, the metadata section, the bytes
//! of padding between sections and the first and last row offset of each table, so its cost
//! does not grow with the size of the data sections.

use crate::error::{ChecksumScope, Error, Result};
use crate::format::{
    self, ColumnRecord, IdEncoding, IdKind, IndexEncoding, ListOrder, ListRows, MetadataExtension,
    MetadataRecord, OffsetWidth, RawHeader, RawSection, Role, Scoring, SectionKind, TableRecord,
    ValueEncoding,
};
use crate::le;

/// A byte range of the file, validated against the buffer at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub start: usize,
    pub len: usize,
}

impl Span {
    /// The bytes of this span in `bytes`.
    ///
    /// Spans are checked against the buffer when the model is opened and the buffer cannot
    /// change afterwards, so this only fails if that contract is broken.
    #[inline]
    pub fn slice(self, bytes: &[u8]) -> Result<&[u8]> {
        self.start
            .checked_add(self.len)
            .and_then(|end| bytes.get(self.start..end))
            .ok_or(Error::Truncated {
                what: "section",
                needed: (self.start as u64).saturating_add(self.len as u64),
                available: bytes.len() as u64,
            })
    }
}

/// Where one table's parts are, and how they are encoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableLayout {
    /// The table's position in the metadata's tables.
    pub position: u32,
    pub name: Span,
    pub role: Role,
    pub rows: usize,
    pub dim: usize,
    pub nnz: u64,
    pub values: ValueEncoding,
    pub index: IndexEncoding,
    pub offset_width: OffsetWidth,
    pub id_encoding: IdEncoding,
    pub id_kind: IdKind,
    /// Empty spans when `rows_stored` is false.
    pub offsets: Span,
    pub data: Span,
    /// False for a table stored only as a column layout (format 1.2).
    pub rows_stored: bool,
    pub ids: Option<Span>,
    pub bias: Option<Span>,
    pub columns: Option<ColumnSpans>,
    /// The id index (format 1.5): `rows` `u32` row numbers in increasing id order; present
    /// exactly when the ids are indexed.
    pub id_index: Option<Span>,
    /// The table's block bounds, if the file has them.
    pub bounds: Option<BoundsSpans>,
}

/// Where a table's block bounds are ([`SectionKind::BlockBounds`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BoundsSpans {
    pub block_rows: usize,
    pub blocks: usize,
    /// `dim` f32.
    pub scales: Span,
    /// `blocks` f32, when the table has biases.
    pub bias_max: Option<Span>,
    /// `dim · blocks` int8, dimension by dimension.
    pub upper: Span,
    /// `dim · blocks` int8, dimension by dimension.
    pub lower: Span,
}

/// Where a table's column layout is (format 1.1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ColumnSpans {
    pub block_rows: usize,
    pub blocks: usize,
    /// Block-major in a table with row records, dimension-major without (format 1.2).
    pub order: ListOrder,
    pub offset_width: OffsetWidth,
    pub offsets: Span,
    /// How the lists name their rows, and where: `u16` rows or (format 1.3) bitmaps.
    pub list_rows: ListRows,
    pub items: Span,
    pub values: Span,
    pub norms: Option<Span>,
    pub scales: Option<Span>,
}

/// Everything [`crate::Model`] needs to find its way in the file, as byte ranges.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub minor: u16,
    pub header_size: usize,
    pub section_count: u32,
    pub section_table: Span,
    pub scoring: Scoring,
    pub global_bias: f32,
    pub properties: Span,
    pub user: Option<TableLayout>,
    pub item: Option<TableLayout>,
}

/// One validated section table entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SectionEntry {
    pub kind: SectionKind,
    pub span: Span,
    pub crc: u32,
}

/// Reads entry `index` of the section table (which has been checked to lie in `bytes`).
pub(crate) fn section_entry(bytes: &[u8], table: Span, index: u32) -> Result<SectionEntry> {
    let start = (index as usize)
        .checked_mul(format::SECTION_ENTRY_SIZE)
        .and_then(|o| o.checked_add(table.start))
        .ok_or(Error::InvalidSection {
            index,
            reason: "entry position overflows",
        })?;
    let raw: &RawSection = start
        .checked_add(format::SECTION_ENTRY_SIZE)
        .and_then(|end| bytes.get(start..end))
        .and_then(|b| bytemuck::try_from_bytes(b).ok())
        .ok_or(Error::Truncated {
            what: "section table entry",
            needed: (start + format::SECTION_ENTRY_SIZE) as u64,
            available: bytes.len() as u64,
        })?;
    let start = usize::try_from(raw.offset.get()).map_err(|_| Error::InvalidSection {
        index,
        reason: "offset does not fit in memory",
    })?;
    let len = usize::try_from(raw.length.get()).map_err(|_| Error::InvalidSection {
        index,
        reason: "length does not fit in memory",
    })?;
    Ok(SectionEntry {
        kind: SectionKind::from_code(raw.kind.get()),
        span: Span { start, len },
        crc: raw.crc.get(),
    })
}

impl Layout {
    /// Validates everything that can be validated without reading the data sections.
    pub fn parse(bytes: &[u8]) -> Result<Layout> {
        Layout::parse_written(bytes, bytes.len())
    }

    /// [`Layout::parse`] for a file written up to byte `written` (a patch recomputing a
    /// section from what it has written): the padding past `written` is not checked yet.
    pub fn parse_written(bytes: &[u8], written: usize) -> Result<Layout> {
        let mut header = parse_header(bytes)?;
        header.written = written;
        let sections = parse_sections(bytes, &header, written)?;
        parse_metadata(bytes, &header, sections)
    }

    /// Reads entry `index` of the section table.
    pub fn section(&self, bytes: &[u8], index: u32) -> Result<SectionEntry> {
        section_entry(bytes, self.section_table, index)
    }

    /// The table with `role`, if any.
    pub fn table(&self, role: Role) -> Option<&TableLayout> {
        match role {
            Role::User => self.user.as_ref(),
            Role::Item => self.item.as_ref(),
        }
    }
}

/// Header fields after validation.
struct Header {
    /// Bytes written so far (all of them, but for a file a patch is still writing): checks of
    /// what lies past them wait for the result's hash.
    written: usize,
    minor: u16,
    header_size: usize,
    section_count: u32,
    alignment: u64,
    section_table: Span,
}

fn parse_header(bytes: &[u8]) -> Result<Header> {
    let fixed = bytes
        .get(..format::HEADER_SIZE_V1)
        .ok_or(Error::Truncated {
            what: "header",
            needed: format::HEADER_SIZE_V1 as u64,
            available: bytes.len() as u64,
        })?;
    let raw: &RawHeader =
        bytemuck::try_from_bytes(fixed).map_err(|_| Error::InvalidHeader("cannot view header"))?;
    if raw.magic != format::MAGIC {
        return Err(Error::BadMagic);
    }
    if raw.byte_order_mark.get() != format::BYTE_ORDER_MARK {
        return Err(Error::ByteOrder {
            found: raw.byte_order_mark.get(),
        });
    }
    let (major, minor) = (raw.major.get(), raw.minor.get());
    if major != format::FORMAT_MAJOR {
        return Err(Error::UnsupportedVersion { major, minor });
    }
    let header_size = raw.header_size.get() as usize;
    if header_size < format::HEADER_SIZE_V1 {
        return Err(Error::InvalidHeader("header_size is smaller than 64"));
    }
    let whole = bytes.get(..header_size).ok_or(Error::Truncated {
        what: "header",
        needed: header_size as u64,
        available: bytes.len() as u64,
    })?;
    let computed = format::header_crc(whole);
    if computed != raw.header_crc.get() {
        return Err(Error::Checksum {
            scope: ChecksumScope::Header,
            stored: raw.header_crc.get(),
            computed,
        });
    }
    if raw.file_size.get() != bytes.len() as u64 {
        return Err(Error::Truncated {
            what: "file (size recorded in the header)",
            needed: raw.file_size.get(),
            available: bytes.len() as u64,
        });
    }
    let alignment = raw.section_alignment.get();
    if !alignment.is_power_of_two()
        || !(format::MIN_SECTION_ALIGNMENT..=format::MAX_SECTION_ALIGNMENT).contains(&alignment)
    {
        return Err(Error::InvalidHeader(
            "section alignment is not a power of two in 64..=65536",
        ));
    }
    let section_count = raw.section_count.get();
    if section_count == 0 || section_count > format::MAX_SECTIONS {
        return Err(Error::InvalidHeader("section count is 0 or above 4096"));
    }
    let table_len = section_count as usize * format::SECTION_ENTRY_SIZE;
    let section_table = Span {
        start: header_size,
        len: table_len,
    };
    let table_bytes = section_table.slice(bytes).map_err(|_| Error::Truncated {
        what: "section table",
        needed: (header_size + table_len) as u64,
        available: bytes.len() as u64,
    })?;
    let computed = format::crc32c(table_bytes);
    if computed != raw.section_table_crc.get() {
        return Err(Error::Checksum {
            scope: ChecksumScope::SectionTable,
            stored: raw.section_table_crc.get(),
            computed,
        });
    }
    Ok(Header {
        written: bytes.len(),
        minor,
        header_size,
        section_count,
        alignment: u64::from(alignment),
        section_table,
    })
}

/// Checks placement of every section: each starts at the first aligned offset after the
/// previous one (or after the section table), the padding between is zero, and the last one
/// ends at the end of the file. Returns the metadata section.
fn parse_sections(bytes: &[u8], header: &Header, written: usize) -> Result<SectionEntry> {
    let mut cursor = (header.section_table.start + header.section_table.len) as u64;
    let mut metadata = None;
    for index in 0..header.section_count {
        let entry = section_entry(bytes, header.section_table, index)?;
        let expected = format::align_up(cursor, header.alignment).ok_or(Error::InvalidSection {
            index,
            reason: "offset overflows",
        })?;
        if entry.span.start as u64 != expected {
            return Err(Error::InvalidSection {
                index,
                reason: "section does not start at the first aligned offset after the previous one",
            });
        }
        let padding =
            bytes
                .get(cursor as usize..entry.span.start)
                .ok_or(Error::InvalidSection {
                    index,
                    reason: "section starts past the end of the file",
                })?;
        let unwritten = written.saturating_sub(cursor as usize).min(padding.len());
        if padding[..unwritten].iter().any(|&b| b != 0) {
            return Err(Error::InvalidSection {
                index,
                reason: "padding before the section is not zero",
            });
        }
        let end = entry
            .span
            .start
            .checked_add(entry.span.len)
            .filter(|&end| end <= bytes.len())
            .ok_or(Error::InvalidSection {
                index,
                reason: "section extends past the end of the file",
            })?;
        if entry.kind == SectionKind::Metadata {
            if metadata.is_some() {
                return Err(Error::InvalidSection {
                    index,
                    reason: "second metadata section",
                });
            }
            metadata = Some((index, entry));
        }
        cursor = end as u64;
    }
    if cursor != bytes.len() as u64 {
        return Err(Error::InvalidHeader(
            "bytes after the last section (the file must end where its last section ends)",
        ));
    }
    let (index, metadata) = metadata.ok_or(Error::InvalidMetadata("no metadata section"))?;
    let computed = format::crc32c(metadata.span.slice(bytes)?);
    if computed != metadata.crc {
        return Err(Error::Checksum {
            scope: ChecksumScope::Section { index },
            stored: metadata.crc,
            computed,
        });
    }
    Ok(metadata)
}

/// A set of section indices (at most [`format::MAX_SECTIONS`]), to refuse sections shared
/// between two uses.
struct SectionSet([u64; format::MAX_SECTIONS as usize / 64]);

impl SectionSet {
    /// Marks `index`; false if it was already marked.
    fn insert(&mut self, index: u32) -> bool {
        let (word, bit) = (index as usize / 64, index % 64);
        match self.0.get_mut(word) {
            Some(w) if *w & (1 << bit) == 0 => {
                *w |= 1 << bit;
                true
            }
            _ => false,
        }
    }
}

fn parse_metadata(bytes: &[u8], header: &Header, metadata: SectionEntry) -> Result<Layout> {
    let meta_bytes = metadata.span.slice(bytes)?;
    let (record, rest): (MetadataRecord<'_>, _) = postcard::take_from_bytes(meta_bytes)
        .map_err(|_| Error::InvalidMetadata("metadata does not decode"))?;
    // Format 1.1 appends an extension; 1.0 files end here. Later minors may append more.
    let extension: MetadataExtension = if rest.is_empty() {
        MetadataExtension::default()
    } else {
        postcard::take_from_bytes(rest)
            .map_err(|_| Error::InvalidMetadata("metadata extension does not decode"))?
            .0
    };
    let scoring = Scoring::from_code(record.scoring)?;
    if !record.global_bias.is_finite() {
        return Err(Error::InvalidMetadata("global bias is not finite"));
    }
    let properties = span_within(bytes, record.properties)?;
    crate::properties::validate(record.properties)?;

    let mut used = SectionSet([0; format::MAX_SECTIONS as usize / 64]);
    let mut user = None;
    let mut item = None;
    for (position, table) in record.tables.iter().enumerate() {
        // Tables with a role this reader does not know are skipped (additive minor versions).
        let Ok(role) = Role::from_code(table.role) else {
            continue;
        };
        let slot = match role {
            Role::User => &mut user,
            Role::Item => &mut item,
        };
        if slot.is_some() {
            return Err(Error::InvalidMetadata("two tables with the same role"));
        }
        let mut layout = parse_table(bytes, header, table, role, &mut used)?;
        layout.position = position as u32;
        let mut columns = extension
            .columns
            .iter()
            .filter(|c| c.table as usize == position);
        if let Some(column) = columns.next() {
            layout.columns = Some(parse_columns(
                bytes, header, column, &layout, scoring, &mut used,
            )?);
        }
        if columns.next().is_some() {
            return Err(Error::InvalidMetadata("two column layouts for one table"));
        }
        if layout.columns.is_some() && layout.index == IndexEncoding::Sliced {
            return Err(Error::InvalidMetadata(
                "a table of sliced rows with a column layout (not defined in format 1.4)",
            ));
        }
        if !layout.rows_stored {
            match &layout.columns {
                None => {
                    return Err(Error::InvalidMetadata(
                        "a table has neither row records nor a column layout",
                    ));
                }
                Some(c) if c.block_rows > format::MAX_COLUMNS_ONLY_BLOCK_ROWS as usize => {
                    return Err(Error::InvalidMetadata(
                        "a table without row records has column blocks above 4096 rows",
                    ));
                }
                Some(_) => {}
            }
        }
        *slot = Some(layout);
    }
    table_sections(bytes, header, &mut user, &mut item, &mut used)?;
    for layout in [&user, &item].into_iter().flatten() {
        if layout.id_encoding.is_indexed() && layout.id_index.is_none() {
            return Err(Error::InvalidMetadata(
                "a table with indexed ids has no id-index section",
            ));
        }
    }
    if extension
        .columns
        .iter()
        .any(|c| c.table as usize >= record.tables.len())
    {
        return Err(Error::InvalidMetadata(
            "a column layout refers to a table that does not exist",
        ));
    }
    if let (Some(u), Some(i)) = (&user, &item)
        && u.dim != i.dim
    {
        return Err(Error::InvalidMetadata(
            "the user and item tables have different dimensions",
        ));
    }
    Ok(Layout {
        minor: header.minor,
        header_size: header.header_size,
        section_count: header.section_count,
        section_table: header.section_table,
        scoring,
        global_bias: record.global_bias,
        properties,
        user,
        item,
    })
}

/// The span of `part`, a sub-slice of `bytes` returned by the metadata decoder.
fn span_within(bytes: &[u8], part: &[u8]) -> Result<Span> {
    let start = (part.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
    let span = Span {
        start,
        len: part.len(),
    };
    match span.slice(bytes) {
        Ok(s) if s.as_ptr() == part.as_ptr() => Ok(span),
        _ => Err(Error::InvalidMetadata(
            "decoded field lies outside the file",
        )),
    }
}

/// Looks up section `index` for a table, checking its kind and that nothing else uses it.
fn table_section(
    bytes: &[u8],
    header: &Header,
    index: u32,
    kind: SectionKind,
    used: &mut SectionSet,
) -> Result<Span> {
    if index >= header.section_count {
        return Err(Error::InvalidMetadata(
            "a table refers to a section that does not exist",
        ));
    }
    let entry = section_entry(bytes, header.section_table, index)?;
    if entry.kind != kind {
        return Err(Error::InvalidSection {
            index,
            reason: "section kind does not match its use in the metadata",
        });
    }
    if !used.insert(index) {
        return Err(Error::InvalidSection {
            index,
            reason: "section is used twice",
        });
    }
    Ok(entry.span)
}

fn parse_table(
    bytes: &[u8],
    header: &Header,
    record: &TableRecord<'_>,
    role: Role,
    used: &mut SectionSet,
) -> Result<TableLayout> {
    let invalid = Error::InvalidMetadata;
    if record.dim == 0 || record.dim > format::MAX_DIM {
        return Err(invalid("table dimension is 0 or above 65536"));
    }
    let dim = record.dim as usize;
    let rows = usize::try_from(record.rows).map_err(|_| invalid("row count does not fit"))?;
    let values = ValueEncoding::from_code(record.value_encoding)?;
    let index = IndexEncoding::from_code(record.index_encoding)?;
    let offset_width = OffsetWidth::from_code(record.offset_width)?;
    let id_encoding = IdEncoding::from_code(record.id_encoding)?;
    let id_kind = IdKind::from_code(record.id_kind)?;
    if matches!(index, IndexEncoding::U8List | IndexEncoding::Sliced) && dim > 256 {
        return Err(invalid("u8 column indices with a dimension above 256"));
    }
    let cells = record
        .rows
        .checked_mul(u64::from(record.dim))
        .ok_or(invalid("rows x dim overflows"))?;
    if record.nnz > cells {
        return Err(invalid("more non-zeros than rows x dim"));
    }

    let rows_stored = match (record.offsets_section, record.data_section) {
        (format::NO_SECTION, format::NO_SECTION) => false,
        (format::NO_SECTION, _) | (_, format::NO_SECTION) => {
            return Err(invalid(
                "a table has row offsets without row data, or row data without offsets",
            ));
        }
        _ => true,
    };
    // One offset per row, or (sliced rows, format 1.4) per slice of rows, or (bitmap rows in
    // blocks, format 1.7) per block of rows followed by the blocks' masks.
    let (records, masks) = match index {
        IndexEncoding::Sliced => (crate::sliced::slice_count(rows), 0),
        IndexEncoding::BitmapBlocks => {
            let blocks = crate::bitmap_blocks::block_count(rows);
            (
                blocks,
                blocks
                    .checked_mul(2)
                    .ok_or(invalid("row count does not fit"))?,
            )
        }
        _ => (rows, 0),
    };
    if index == IndexEncoding::Sliced && !rows_stored {
        return Err(invalid("a table of sliced rows without row sections"));
    }
    if index == IndexEncoding::BitmapBlocks && !rows_stored {
        return Err(invalid(
            "a table of bitmap rows in blocks without row sections",
        ));
    }
    if index == IndexEncoding::Sliced && values == ValueEncoding::I4 {
        return Err(invalid(
            "sliced rows of int4 values (not defined: int4 tables use row records or columns)",
        ));
    }
    if index == IndexEncoding::Sliced && !cfg!(feature = "sliced-rows") {
        return Err(Error::Unsupported {
            what: "index encoding (sliced rows, format 1.4: this pocketrec was built without \
                   its `sliced-rows` feature)",
            code: u32::from(IndexEncoding::Sliced.code()),
        });
    }
    let (offsets, data) = if rows_stored {
        row_sections(bytes, header, record, records, masks, offset_width, used)?
    } else {
        (Span::default(), Span::default())
    };

    let ids = match (id_encoding, record.ids_section) {
        (IdEncoding::RowNumber, None) => None,
        (IdEncoding::RowNumber, Some(_)) => {
            return Err(invalid("row-number ids with an ids section"));
        }
        (_, None) => return Err(invalid("stored ids without an ids section")),
        (encoding, Some(section)) => {
            let span = table_section(bytes, header, section, SectionKind::Ids, used)?;
            if rows.checked_mul(encoding.width()) != Some(span.len) {
                return Err(invalid("ids section length is not rows x id width"));
            }
            Some(span)
        }
    };
    let bias = match record.bias_section {
        None => None,
        Some(section) => {
            let span = table_section(bytes, header, section, SectionKind::Bias, used)?;
            if rows.checked_mul(4) != Some(span.len) {
                return Err(invalid("bias section length is not rows x 4"));
            }
            Some(span)
        }
    };
    Ok(TableLayout {
        position: 0,
        name: span_within(bytes, record.name.as_bytes())?,
        role,
        rows,
        dim,
        nnz: record.nnz,
        values,
        index,
        offset_width,
        id_encoding,
        id_kind,
        offsets,
        data,
        rows_stored,
        ids,
        bias,
        columns: None,
        id_index: None,
        bounds: None,
    })
}

/// Looks up and checks a table's row-offsets and row-data sections.
fn row_sections(
    bytes: &[u8],
    header: &Header,
    record: &TableRecord<'_>,
    rows: usize,
    masks: usize,
    offset_width: OffsetWidth,
    used: &mut SectionSet,
) -> Result<(Span, Span)> {
    let invalid = Error::InvalidMetadata;
    let offsets = table_section(
        bytes,
        header,
        record.offsets_section,
        SectionKind::RowOffsets,
        used,
    )?;
    let expected = rows
        .checked_add(1)
        .and_then(|n| n.checked_mul(offset_width.bytes()))
        .and_then(|n| n.checked_add(masks));
    if expected != Some(offsets.len) {
        return Err(invalid(
            "row offsets section length is not (rows + 1) x width (slices + 1 for sliced rows, \
             blocks + 1 and a mask a block for bitmap rows in blocks)",
        ));
    }
    let data = table_section(
        bytes,
        header,
        record.data_section,
        SectionKind::RowData,
        used,
    )?;
    let offset_bytes = offsets.slice(bytes)?;
    let first = le::offset(offset_bytes, offset_width, 0);
    let last = le::offset(offset_bytes, offset_width, rows);
    if first != Some(0) || last != Some(data.len as u64) {
        return Err(invalid(
            "row offsets do not start at 0 and end at the row data length",
        ));
    }
    Ok((offsets, data))
}

/// Checks a table's column layout against the table and the section table.
fn parse_columns(
    bytes: &[u8],
    header: &Header,
    record: &ColumnRecord,
    table: &TableLayout,
    scoring: Scoring,
    used: &mut SectionSet,
) -> Result<ColumnSpans> {
    let invalid = Error::InvalidMetadata;
    let block_rows = record.block_rows as usize;
    if !record.block_rows.is_power_of_two() || !(64..=65_536).contains(&record.block_rows) {
        return Err(invalid(
            "column block size is not a power of two in 64..=65536",
        ));
    }
    if record.entries != table.nnz {
        return Err(invalid("column entries differ from the table's non-zeros"));
    }
    let offset_width = OffsetWidth::from_code(record.offset_width)?;
    let blocks = table.rows.div_ceil(block_rows);
    let lists = blocks
        .checked_mul(table.dim)
        .ok_or(invalid("column list count overflows"))?;
    let offsets = table_section(
        bytes,
        header,
        record.offsets_section,
        SectionKind::ColumnOffsets,
        used,
    )?;
    if lists
        .checked_add(1)
        .and_then(|n| n.checked_mul(offset_width.bytes()))
        != Some(offsets.len)
    {
        return Err(invalid(
            "column offsets length is not (blocks x dim + 1) x width",
        ));
    }
    let offset_bytes = offsets.slice(bytes)?;
    let offsets_written = offsets.start.saturating_add(offsets.len) <= header.written;
    if offsets_written
        && (le::offset(offset_bytes, offset_width, 0) != Some(0)
            || le::offset(offset_bytes, offset_width, lists) != Some(record.entries))
    {
        return Err(invalid(
            "column offsets do not start at 0 and end at the entry count",
        ));
    }
    let entries =
        usize::try_from(record.entries).map_err(|_| invalid("column entries do not fit"))?;
    // The rows of the lists: u16 items (1.1) or bitmaps (1.3), told apart by the section's kind.
    let list_rows = match section_entry(bytes, header.section_table, record.items_section) {
        Ok(entry) if entry.kind == SectionKind::ColumnBitmaps => ListRows::Bitmap,
        _ => ListRows::U16,
    };
    let items = table_section(
        bytes,
        header,
        record.items_section,
        list_rows.section_kind(),
        used,
    )?;
    let items_len = match list_rows {
        ListRows::U16 => entries.checked_mul(2),
        ListRows::Bitmap => lists.checked_mul(block_rows / 8),
    };
    if items_len != Some(items.len) {
        return Err(invalid(match list_rows {
            ListRows::U16 => "column items length is not entries x 2",
            ListRows::Bitmap => "column bitmaps length is not lists x block rows / 8",
        }));
    }
    let values = table_section(
        bytes,
        header,
        record.values_section,
        SectionKind::ColumnValues,
        used,
    )?;
    if table.values.value_bytes(entries) != Some(values.len) {
        return Err(invalid(
            "column values length is not entries x value width (int4: entries / 2, rounded up)",
        ));
    }
    let mut per_row = |section: Option<u32>, kind, width: usize, needed: bool, what| match section {
        None if needed => Err(invalid(what)),
        None => Ok(None),
        Some(index) => {
            let span = table_section(bytes, header, index, kind, &mut *used)?;
            if table.rows.checked_mul(width) != Some(span.len) {
                return Err(invalid("per-row column section length is wrong"));
            }
            Ok(Some(span))
        }
    };
    let norms = per_row(
        record.norms_section,
        SectionKind::RowNorms,
        4,
        scoring == Scoring::Cosine,
        "cosine scoring needs row norms in the column layout",
    )?;
    let scales = per_row(
        record.scales_section,
        SectionKind::RowScales,
        2,
        table.values.is_scaled(),
        "int8 and int4 values need row scales in the column layout",
    )?;
    Ok(ColumnSpans {
        block_rows,
        blocks,
        order: ListOrder::of_table(table.rows_stored),
        offset_width,
        offsets,
        list_rows,
        items,
        values,
        norms,
        scales,
    })
}

/// Finds the sections that name their table in a header of their own, and are needed to
/// read it or make it faster: id indexes and block bounds. Each is checked against its table
/// and marked used; sections for tables of unknown roles are skipped.
fn table_sections(
    bytes: &[u8],
    header: &Header,
    user: &mut Option<TableLayout>,
    item: &mut Option<TableLayout>,
    used: &mut SectionSet,
) -> Result<()> {
    for index in 0..header.section_count {
        let entry = section_entry(bytes, header.section_table, index)?;
        if !matches!(entry.kind, SectionKind::IdIndex | SectionKind::BlockBounds) {
            continue;
        }
        let invalid = |reason| Error::InvalidSection { index, reason };
        let data = entry.span.slice(bytes)?;
        let table = data
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(invalid("section is shorter than its header"))?;
        let layout = match (user.as_mut(), item.as_mut()) {
            (Some(u), _) if u.position == table => u,
            (_, Some(i)) if i.position == table => i,
            _ => continue,
        };
        if !used.insert(index) {
            return Err(invalid("section is used twice"));
        }
        match entry.kind {
            SectionKind::IdIndex => {
                let head: format::IdIndexHeader = data
                    .get(..format::ID_INDEX_HEADER_SIZE)
                    .map(bytemuck::pod_read_unaligned)
                    .ok_or(invalid("section is shorter than its header"))?;
                if !layout.id_encoding.is_indexed() {
                    return Err(invalid("an id index for a table whose ids are sorted"));
                }
                if layout.id_index.is_some() {
                    return Err(invalid("a second id index for one table"));
                }
                let expected = layout
                    .rows
                    .checked_mul(4)
                    .and_then(|n| n.checked_add(format::ID_INDEX_HEADER_SIZE));
                if head.rows.get() != layout.rows as u64 || expected != Some(data.len()) {
                    return Err(invalid("id index length is not its header and rows x 4"));
                }
                layout.id_index = Some(Span {
                    start: entry.span.start + format::ID_INDEX_HEADER_SIZE,
                    len: layout.rows * 4,
                });
            }
            _ if !cfg!(feature = "block-bounds") => {
                return Err(Error::Unsupported {
                    what: "section kind (block bounds, format 1.5: this pocketrec was built \
                           without its `block-bounds` feature)",
                    code: SectionKind::BlockBounds.code(),
                });
            }
            _ => {
                if layout.bounds.is_some() {
                    return Err(invalid("a second block-bounds section for one table"));
                }
                layout.bounds = Some(parse_bounds(data, entry.span.start, layout, index)?);
            }
        }
    }
    Ok(())
}

/// Checks a block-bounds section (`data`, at `start` in the file) against its table.
fn parse_bounds(
    data: &[u8],
    start: usize,
    layout: &TableLayout,
    index: u32,
) -> Result<BoundsSpans> {
    let invalid = |reason| Error::InvalidSection { index, reason };
    let head: format::BlockBoundsHeader = data
        .get(..format::BLOCK_BOUNDS_HEADER_SIZE)
        .map(bytemuck::pod_read_unaligned)
        .ok_or(invalid("section is shorter than its header"))?;
    let block_rows = head.block_rows.get() as usize;
    if !block_rows.is_power_of_two() || !(16..=4096).contains(&block_rows) {
        return Err(invalid(
            "block bounds' block is not a power of two in 16..=4096",
        ));
    }
    let blocks = layout.rows.div_ceil(block_rows);
    if head.dim.get() as usize != layout.dim || head.blocks.get() as usize != blocks {
        return Err(invalid(
            "block bounds do not match their table's dimension and rows",
        ));
    }
    if let Some(columns) = &layout.columns
        && columns.block_rows != block_rows
    {
        return Err(invalid(
            "block bounds' block differs from the column layout's",
        ));
    }
    let bias = head.flags.get() & format::BLOCK_BOUNDS_BIAS != 0;
    if head.flags.get() & !format::BLOCK_BOUNDS_BIAS != 0 || head.reserved.get() != 0 {
        return Err(invalid(
            "block bounds' flags or reserved field are not zero",
        ));
    }
    if bias != layout.bias.is_some() {
        return Err(invalid(
            "block bounds hold bias maxima exactly when the table has biases",
        ));
    }
    if format::block_bounds_len(layout.dim, blocks, bias) != Some(data.len()) {
        return Err(invalid("block-bounds length does not match its header"));
    }
    let mut at = start + format::BLOCK_BOUNDS_HEADER_SIZE;
    let mut take = |len: usize| {
        let span = Span { start: at, len };
        at += len;
        span
    };
    let scales = take(4 * layout.dim);
    let bias_max = bias.then(|| take(4 * blocks));
    let upper = take(layout.dim * blocks);
    let lower = take(layout.dim * blocks);
    Ok(BoundsSpans {
        block_rows,
        blocks,
        scales,
        bias_max,
        upper,
        lower,
    })
}
