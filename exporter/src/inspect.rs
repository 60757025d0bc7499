//! `pocketrec inspect`: what a model holds and what each part costs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use pocketrec::{Model, Role, Table};
use serde::Serialize;

/// Everything `inspect` reports about a model.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Total file size in bytes.
    pub file_bytes: u64,
    /// Format version, e.g. `1.0`.
    pub format_version: String,
    /// `dot` or `cosine`.
    pub scoring: String,
    /// Constant added to every score.
    pub global_bias: f32,
    /// What the tables would take as dense f32 arrays (`rows x dim x 4`, both tables).
    pub dense_f32_bytes: u64,
    /// `file_bytes / dense_f32_bytes`.
    pub size_vs_dense_f32: f64,
    /// Per table.
    pub tables: Vec<TableReport>,
    /// Per section, in file order.
    pub sections: Vec<SectionReport>,
    /// The free-form properties.
    pub properties: BTreeMap<String, String>,
    /// The fold-in section, when the file has one.
    pub fold_in: Option<FoldInReport>,
}

/// What the fold-in section holds (see `docs/FORMAT.md`, *Fold-in*).
#[derive(Clone, Debug, Serialize)]
pub struct FoldInReport {
    /// `squared` (the item Gramian's section) or `softmax` (the softmax fold-in section).
    pub objective: String,
    /// The softmax objective's settings (`softmax` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub softmax: Option<SoftmaxReport>,
    /// The unobserved weight `α₀` (`squared`; NaN otherwise).
    pub unobserved_weight: f32,
    /// The ridge `λ` (`squared`; NaN otherwise).
    pub regularization: f32,
    /// Bytes of the section.
    pub bytes: u64,
    /// How the settings were chosen (`default`, `given`, `validation`), from the properties.
    pub chosen_by: Option<String>,
    /// Whether the section is usable: `ok`, or why not.
    pub status: String,
}

/// A softmax fold-in section's settings ([`pocketrec::SoftmaxFoldIn`]).
#[derive(Clone, Debug, Serialize)]
pub struct SoftmaxReport {
    /// The temperature `τ`.
    pub temperature: f32,
    /// The power `P` of the log-partition term.
    pub power: f32,
    /// The ascent step `η`.
    pub step: f32,
    /// Ascent iterations.
    pub iterations: u32,
    /// Clusters of the catalogue summary each iteration reads (0: the whole item table).
    pub clusters: u32,
}

/// One table's figures.
#[derive(Clone, Debug, Serialize)]
pub struct TableReport {
    /// Table name.
    pub name: String,
    /// `user` or `item`.
    pub role: String,
    /// Rows.
    pub rows: u64,
    /// Dimension.
    pub dim: u64,
    /// Stored non-zeros.
    pub nnz: u64,
    /// `nnz / (rows x dim)`.
    pub density: f64,
    /// Rows with no non-zero.
    pub empty_rows: u64,
    /// `rows` (row records), `sliced-rows` (sliced rows, format 1.4), `both` (row records and
    /// a column layout) or `columns` (a column layout alone, format 1.2).
    pub layout: String,
    /// How the column layout's posting lists name their rows: `u16` or `bitmap` (format
    /// 1.3); absent without a column layout.
    pub list_rows: Option<String>,
    /// Value encoding.
    pub values: String,
    /// Index encoding of the row records (`sliced` for sliced rows; what they would use in a
    /// `columns` table).
    pub index: String,
    /// Offset width.
    pub offsets: String,
    /// Id encoding (`row-number`, `u32`, `u64`).
    pub ids: String,
    /// `integer` or `string-hash`.
    pub id_kind: String,
    /// True with per-row biases.
    pub bias: bool,
    /// Rows per block of the block bounds, if the table has them (its rows are then
    /// clustered).
    pub block_bounds_rows: Option<u64>,
    /// Bytes of each part.
    pub bytes: TableBytes,
    /// `rows x dim x 4`.
    pub dense_f32_bytes: u64,
}

/// Bytes of a table's sections.
#[derive(Clone, Debug, Serialize)]
pub struct TableBytes {
    /// Row offsets.
    pub offsets: u64,
    /// Row records (indices + values).
    pub data: u64,
    /// External ids.
    pub ids: u64,
    /// Biases.
    pub bias: u64,
    /// Column layout (posting-list offsets, items, values, norms, scales), 0 without one.
    pub columns: u64,
    /// Id index (rows not in id order, format 1.5), 0 without one.
    pub id_index: u64,
    /// Block bounds, 0 without them.
    pub block_bounds: u64,
    /// Sum of the above.
    pub total: u64,
}

/// One section's placement.
#[derive(Clone, Debug, Serialize)]
pub struct SectionReport {
    /// Position in the section table.
    pub index: u32,
    /// Kind name.
    pub kind: String,
    /// Offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// Stored CRC32C.
    pub crc32c: String,
}

fn table_report(table: &Table<'_>) -> TableReport {
    let rows = table.rows() as u64;
    let dim = table.dim() as u64;
    // A corrupt table counts no empty rows here; `verify` names what is wrong.
    let empty_rows = table.empty_rows().unwrap_or(0);
    let layout = match (table.has_rows(), table.has_columns()) {
        (true, true) => "both",
        (false, _) => "columns",
        (true, false) if table.has_sliced_rows() => "sliced-rows",
        (true, false) => "rows",
    };
    let columns: usize = table.column_bytes().iter().sum();
    let bytes = TableBytes {
        offsets: table.offsets_bytes() as u64,
        data: table.data_bytes() as u64,
        ids: table.ids_bytes() as u64,
        bias: table.bias_bytes() as u64,
        columns: columns as u64,
        id_index: table.id_index_bytes() as u64,
        block_bounds: table.block_bounds_bytes() as u64,
        total: (table.offsets_bytes()
            + table.data_bytes()
            + table.ids_bytes()
            + table.bias_bytes()
            + columns
            + table.id_index_bytes()
            + table.block_bounds_bytes()) as u64,
    };
    TableReport {
        name: table.name().to_string(),
        role: table.role().to_string(),
        rows,
        dim,
        nnz: table.nnz(),
        density: if rows * dim == 0 {
            0.0
        } else {
            table.nnz() as f64 / (rows * dim) as f64
        },
        empty_rows,
        layout: layout.to_string(),
        list_rows: table.column_list_rows().map(|l| l.name().to_string()),
        block_bounds_rows: table.block_bounds_rows().map(|r| r as u64),
        values: table.value_encoding().to_string(),
        index: table.index_encoding().to_string(),
        offsets: table.offset_width().to_string(),
        ids: table.id_encoding().to_string(),
        id_kind: table.id_kind().to_string(),
        bias: table.has_bias(),
        bytes,
        dense_f32_bytes: rows * dim * 4,
    }
}

/// Builds the report for an opened model.
pub fn report<S: AsRef<[u8]>>(model: &Model<S>) -> Report {
    let tables: Vec<TableReport> = Role::ALL
        .iter()
        .filter_map(|&role| model.table(role).ok())
        .map(|t| table_report(&t))
        .collect();
    let dense: u64 = tables.iter().map(|t| t.dense_f32_bytes).sum();
    let file_bytes = model.bytes().len() as u64;
    Report {
        file_bytes,
        format_version: format!(
            "{}.{}",
            pocketrec::format::FORMAT_MAJOR,
            model.format_minor()
        ),
        scoring: model.scoring().to_string(),
        global_bias: model.global_bias(),
        dense_f32_bytes: dense,
        size_vs_dense_f32: if dense == 0 {
            0.0
        } else {
            file_bytes as f64 / dense as f64
        },
        tables,
        sections: model
            .sections()
            .map(|s| SectionReport {
                index: s.index,
                kind: s.kind.name().to_string(),
                offset: s.offset,
                length: s.length,
                crc32c: format!("{:08x}", s.crc),
            })
            .collect(),
        properties: model
            .properties()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        fold_in: fold_in_report(model),
    }
}

fn fold_in_report<S: AsRef<[u8]>>(model: &Model<S>) -> Option<FoldInReport> {
    let chosen_by = model.property("fold_in.chosen_by").map(str::to_string);
    if let Some(section) = model
        .sections()
        .find(|s| s.kind == pocketrec::SectionKind::FoldInSoftmax)
    {
        let (softmax, status) = match model.fold_in_softmax() {
            Ok(Some(f)) => (
                Some(SoftmaxReport {
                    temperature: f.temperature,
                    power: f.power,
                    step: f.step,
                    iterations: f.iterations,
                    clusters: f.clusters,
                }),
                "ok".to_string(),
            ),
            Ok(None) => (None, "missing".to_string()),
            Err(e) => (None, e.to_string()),
        };
        return Some(FoldInReport {
            objective: "softmax".into(),
            softmax,
            unobserved_weight: f32::NAN,
            regularization: f32::NAN,
            bytes: section.length,
            chosen_by,
            status,
        });
    }
    let bytes = model
        .sections()
        .find(|s| s.kind == pocketrec::SectionKind::FoldIn)?
        .length;
    let (unobserved_weight, regularization, status) = match model.fold_in_params() {
        Ok(p) => (p.unobserved_weight, p.regularization, "ok".to_string()),
        Err(e) => (f32::NAN, f32::NAN, e.to_string()),
    };
    Some(FoldInReport {
        objective: "squared".into(),
        softmax: None,
        unobserved_weight,
        regularization,
        bytes,
        chosen_by,
        status,
    })
}

/// Formats a byte count with thousands separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl Report {
    /// The human-readable form printed by `pocketrec inspect`.
    pub fn to_text(&self, name: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{name}: pocketrec format {}, {} bytes = {:.1}% of dense f32 ({} bytes)",
            self.format_version,
            thousands(self.file_bytes),
            100.0 * self.size_vs_dense_f32,
            thousands(self.dense_f32_bytes)
        );
        let _ = writeln!(
            s,
            "scoring: {}, global bias {}",
            self.scoring, self.global_bias
        );
        for t in &self.tables {
            let _ = writeln!(
                s,
                "\n{} table '{}': {} rows x {} dims, {} non-zeros (density {:.2}%), {} all-zero rows",
                t.role,
                t.name,
                thousands(t.rows),
                t.dim,
                thousands(t.nnz),
                100.0 * t.density,
                thousands(t.empty_rows)
            );
            if t.rows == 0 && t.role == "user" {
                let _ = writeln!(
                    s,
                    "  no user rows: every user is folded in on the device from their interactions"
                );
            }
            let _ = writeln!(
                s,
                "  layout {}{}; encoding: values {}, indices {}, offsets {}, ids {} ({}){}",
                match t.layout.as_str() {
                    "both" => "rows + columns",
                    "columns" => "columns only (no row records)",
                    other => other,
                },
                match t.list_rows.as_deref() {
                    Some("bitmap") => " (posting lists with bitmap rows)",
                    _ => "",
                },
                t.values,
                t.index,
                t.offsets,
                t.ids,
                t.id_kind,
                if t.bias { ", with biases" } else { "" }
            );
            let pct = |b: u64| {
                if t.dense_f32_bytes == 0 {
                    0.0
                } else {
                    100.0 * b as f64 / t.dense_f32_bytes as f64
                }
            };
            if let Some(rows) = t.block_bounds_rows {
                let _ = writeln!(
                    s,
                    "  block bounds every {rows} rows (rows clustered, ids through an id index): \
                     a query skips the blocks that cannot reach its top k"
                );
            }
            let mut extra = String::new();
            if t.bytes.id_index > 0 {
                extra += &format!(" + id index {}", thousands(t.bytes.id_index));
            }
            if t.bytes.block_bounds > 0 {
                extra += &format!(" + block bounds {}", thousands(t.bytes.block_bounds));
            }
            let _ = writeln!(
                s,
                "  bytes: offsets {} + data {} + ids {} + bias {} + columns {}{} = {} ({:.1}% of its dense f32 {})",
                thousands(t.bytes.offsets),
                thousands(t.bytes.data),
                thousands(t.bytes.ids),
                thousands(t.bytes.bias),
                thousands(t.bytes.columns),
                extra,
                thousands(t.bytes.total),
                pct(t.bytes.total),
                thousands(t.dense_f32_bytes)
            );
        }
        if let Some(f) = &self.fold_in {
            let settings = match &f.softmax {
                Some(m) => format!(
                    "{} bytes (softmax objective), temperature {}, power {}, step {}, {} iterations, {}",
                    thousands(f.bytes),
                    m.temperature,
                    m.power,
                    m.step,
                    m.iterations,
                    match m.clusters {
                        0 => "each over the whole catalogue".to_string(),
                        c => format!("each over a summary of {c} clusters"),
                    }
                ),
                None if f.objective == "softmax" => {
                    format!("{} bytes (softmax objective)", thousands(f.bytes))
                }
                None => format!(
                    "{} bytes (item Gramian), unobserved weight {}, regularization {}",
                    thousands(f.bytes),
                    f.unobserved_weight,
                    f.regularization
                ),
            };
            let _ = writeln!(
                s,
                "\nfold-in: {}{}{}",
                settings,
                f.chosen_by
                    .as_deref()
                    .map(|c| format!(" (chosen by {c})"))
                    .unwrap_or_default(),
                if f.status == "ok" {
                    String::new()
                } else {
                    format!("; unusable: {}", f.status)
                }
            );
        }
        let _ = writeln!(s, "\nsections:");
        let _ = writeln!(
            s,
            "  {:>3}  {:<12} {:>14} {:>14}  crc32c",
            "#", "kind", "offset", "length"
        );
        for sec in &self.sections {
            let _ = writeln!(
                s,
                "  {:>3}  {:<12} {:>14} {:>14}  {}",
                sec.index,
                sec.kind,
                thousands(sec.offset),
                thousands(sec.length),
                sec.crc32c
            );
        }
        if !self.properties.is_empty() {
            let _ = writeln!(s, "\nproperties:");
            for (k, v) in &self.properties {
                let _ = writeln!(s, "  {k} = {v}");
            }
        }
        s
    }
}
