//! scipy sparse matrices saved with `scipy.sparse.save_npz`: CSR, CSC and COO, validated and
//! turned into a canonical [`CsrMatrix`] (columns sorted within each row, duplicates summed).
//!
//! The archive holds `format` (a 0-d `|S3` such as `b'csr'`, or unicode in old files), `shape`
//! (int64 `(rows, cols)`), `data`, and `indptr` + `indices` (CSR, CSC) or `row` + `col` (COO;
//! `coords` of shape `(2, nnz)` in files written for n-D COO).

use super::convert::{Origin, shape_str};
use super::npz::{MemberStream, Npz};
use super::{CsrMatrix, MAX_COLUMNS, MAX_SPARSE_ROWS};
use crate::error::{ExportError, Result};

/// Whether the archive looks like the output of `scipy.sparse.save_npz`.
pub(crate) fn is_scipy_sparse(npz: &Npz) -> bool {
    npz.has("format") && npz.has("shape") && npz.has("data")
}

/// The name a scipy matrix goes by in [`super::Table2d::tensor`], e.g. `scipy csr`.
pub(crate) fn table_name(format: &str) -> String {
    format!("scipy {format}")
}

/// Reads the scipy sparse matrix in `npz`. Returns its format (`csr`, `csc`, `coo`) and the
/// matrix as canonical CSR.
pub(crate) fn read_scipy(npz: &mut Npz) -> Result<(String, CsrMatrix)> {
    let format = npz.with_member("format", |s| s.short_text())?;
    let format = format.trim().to_ascii_lowercase();
    let path = npz.path().to_path_buf();
    let parse = |message: String| ExportError::parse(&path, message);

    let shape = read_ints(npz, "shape")?;
    let (rows, cols) = match shape[..] {
        [r, c] => (r, c),
        _ => {
            return Err(parse(format!(
                "scipy sparse member 'shape' has {} entries, expected 2 (rows, columns)",
                shape.len()
            )));
        }
    };
    let shape_text = format!("({rows}, {cols})");
    let (Ok(rows), Ok(cols)) = (usize::try_from(rows), usize::try_from(cols)) else {
        return Err(parse(format!(
            "scipy sparse shape {shape_text} has a negative or too large entry"
        )));
    };
    let table = table_name(&format);
    let origin = Origin::new(&path, &table);
    if cols == 0 {
        return Err(origin.shape(format!(
            "shape {shape_text} has 0 columns; a table needs at least one"
        )));
    }
    if cols > MAX_COLUMNS {
        return Err(origin.shape(format!(
            "shape {shape_text} has more than {MAX_COLUMNS} columns"
        )));
    }

    let mut m = match format.as_str() {
        "csr" => read_csr(npz, rows, cols)?,
        "csc" => read_csc(npz, rows, cols)?,
        "coo" => read_coo(npz, rows, cols)?,
        "bsr" | "dia" | "lil" | "dok" => {
            return Err(parse(format!(
                "scipy sparse format '{format}' is not supported (csr, csc and coo are): \
                 save it with .tocsr() first"
            )));
        }
        other => {
            return Err(parse(format!(
                "unknown scipy sparse format '{}' in member 'format'",
                other.escape_debug()
            )));
        }
    };
    canonicalize(&mut m, &Origin::new(&path, "data"))?;
    Ok((format, m))
}

/// Reads a 1-D integer member.
fn read_ints(npz: &mut Npz, name: &str) -> Result<Vec<i64>> {
    npz.with_member(name, |s| {
        expect_1d(s)?;
        s.ints()
    })
}

/// Fails unless the member is 1-D.
fn expect_1d(s: &MemberStream<'_>) -> Result<usize> {
    match s.header.shape[..] {
        [n] => Ok(n),
        _ => Err(s.origin().parse(format!(
            "expected a 1-D array, found shape {}",
            shape_str(&s.header.shape)
        ))),
    }
}

/// Reads member `data` as f32: it must be 1-D with `nnz` entries; `locate` gives the
/// (row, column) of entry `k` for errors about non-finite values.
fn read_data(npz: &mut Npz, nnz: usize, locate: &dyn Fn(usize) -> (u64, u64)) -> Result<Vec<f32>> {
    npz.with_member("data", |s| {
        let n = expect_1d(s)?;
        if n != nnz {
            return Err(s.origin().parse(format!(
                "has {n} values but the index arrays describe {nnz} entries"
            )));
        }
        s.floats(locate)
    })
}

/// Checks a compressed pointer array (`indptr`) for `major` rows (or columns) and `nnz` entries,
/// and converts it to u64. `unit` is "row" or "column", for messages.
fn check_pointers(
    path: &std::path::Path,
    ptr: &[i64],
    major: usize,
    nnz: usize,
    unit: &str,
) -> Result<Vec<u64>> {
    let parse =
        |message: String| ExportError::parse(path, format!("scipy sparse 'indptr': {message}"));
    if ptr.len() != major.saturating_add(1) {
        return Err(parse(format!(
            "has {} entries, expected {} ({} {unit}s + 1)",
            ptr.len(),
            major.saturating_add(1),
            major
        )));
    }
    match ptr.first() {
        Some(0) => {}
        Some(first) => return Err(parse(format!("starts at {first}, expected 0"))),
        None => return Err(parse("is empty".to_string())),
    }
    let mut out = Vec::with_capacity(ptr.len());
    let mut prev = 0i64;
    for (i, &p) in ptr.iter().enumerate() {
        if p < prev {
            return Err(parse(format!(
                "{unit} {} is broken: indptr[{i}] = {p} is less than indptr[{}] = {prev}",
                i - 1,
                i - 1
            )));
        }
        if p as u64 > nnz as u64 {
            return Err(parse(format!(
                "{unit} {} is broken: indptr[{i}] = {p} is past the {nnz} stored entries",
                i.saturating_sub(1)
            )));
        }
        out.push(p as u64);
        prev = p;
    }
    if prev as u64 != nnz as u64 {
        return Err(parse(format!(
            "ends at {prev} but there are {nnz} stored entries (the last {unit} is broken)"
        )));
    }
    Ok(out)
}

/// Checks that every index is in `0..bound` and converts them to u32. `owner(k)` names the row
/// or column entry `k` belongs to, for messages.
fn check_indices(
    path: &std::path::Path,
    member: &str,
    idx: &[i64],
    bound: usize,
    owner: &dyn Fn(usize) -> String,
) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(idx.len());
    for (k, &i) in idx.iter().enumerate() {
        match u32::try_from(i) {
            Ok(v) if (v as usize) < bound => out.push(v),
            _ => {
                return Err(ExportError::parse(
                    path,
                    format!(
                        "scipy sparse '{member}': {} is broken: index {i} at position {k} is \
                         outside 0..{bound}",
                        owner(k)
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The major index (row of CSR, column of CSC) that stored entry `k` belongs to.
fn major_of(indptr: &[u64], k: usize) -> usize {
    indptr.partition_point(|&p| p <= k as u64).saturating_sub(1)
}

/// Reads a CSR matrix.
fn read_csr(npz: &mut Npz, rows: usize, cols: usize) -> Result<CsrMatrix> {
    let path = npz.path().to_path_buf();
    let indices = read_ints(npz, "indices")?;
    let nnz = indices.len();
    let ptr = read_ints(npz, "indptr")?;
    let indptr = check_pointers(&path, &ptr, rows, nnz, "row")?;
    drop(ptr);
    let owner = |k: usize| format!("row {}", major_of(&indptr, k));
    let indices = check_indices(&path, "indices", &indices, cols, &owner)?;
    let locate = |k: usize| {
        let col = indices.get(k).copied().unwrap_or(0);
        (major_of(&indptr, k) as u64, u64::from(col))
    };
    let values = read_data(npz, nnz, &locate)?;
    Ok(CsrMatrix {
        rows,
        cols,
        indptr,
        indices,
        values,
    })
}

/// Reads a CSC matrix and transposes its storage to CSR.
fn read_csc(npz: &mut Npz, rows: usize, cols: usize) -> Result<CsrMatrix> {
    let path = npz.path().to_path_buf();
    check_rows(&path, rows, cols)?;
    let row_idx = read_ints(npz, "indices")?;
    let nnz = row_idx.len();
    let ptr = read_ints(npz, "indptr")?;
    let colptr = check_pointers(&path, &ptr, cols, nnz, "column")?;
    drop(ptr);
    let owner = |k: usize| format!("column {}", major_of(&colptr, k));
    let row_idx = check_indices(&path, "indices", &row_idx, rows, &owner)?;
    let locate = |k: usize| {
        let row = row_idx.get(k).copied().unwrap_or(0);
        (u64::from(row), major_of(&colptr, k) as u64)
    };
    let data = read_data(npz, nnz, &locate)?;
    // Entries in column order: column j holds entries colptr[j]..colptr[j + 1].
    let entries = colptr.windows(2).enumerate().flat_map(|(j, w)| {
        let (a, b) = (w[0] as usize, w[1] as usize);
        (a..b).map(move |k| (k, j as u32))
    });
    // `k < nnz` (checked pointers) and `row_idx`, `data` both hold `nnz` entries.
    let triplets = entries.map(|(k, j)| (row_idx[k], j, data[k]));
    build_csr(&path, rows, cols, nnz, &row_idx, triplets)
}

/// Reads a COO matrix and sorts it into CSR.
fn read_coo(npz: &mut Npz, rows: usize, cols: usize) -> Result<CsrMatrix> {
    let path = npz.path().to_path_buf();
    check_rows(&path, rows, cols)?;
    let (row, col) = if npz.has("row") && npz.has("col") {
        (read_ints(npz, "row")?, read_ints(npz, "col")?)
    } else if npz.has("coords") {
        let coords = npz.with_member("coords", |s| match s.header.shape[..] {
            [2, _] if !s.header.fortran_order => s.ints(),
            [2, _] => {
                // Column-major (2, nnz): pairs (row, col) are interleaved.
                let flat = s.ints()?;
                let rows = flat.iter().step_by(2);
                let cols = flat.iter().skip(1).step_by(2);
                Ok(rows.chain(cols).copied().collect())
            }
            _ => Err(s.origin().parse(format!(
                "expected shape (2, nnz), found {}",
                shape_str(&s.header.shape)
            ))),
        })?;
        let half = coords.len() / 2;
        let (r, c) = coords.split_at(half);
        (r.to_vec(), c.to_vec())
    } else {
        return Err(ExportError::parse(
            &path,
            "scipy sparse coo archive has neither 'row' + 'col' nor 'coords'",
        ));
    };
    if row.len() != col.len() {
        return Err(ExportError::parse(
            &path,
            format!(
                "scipy sparse coo: 'row' has {} entries but 'col' has {}",
                row.len(),
                col.len()
            ),
        ));
    }
    let nnz = row.len();
    let row = check_indices(&path, "row", &row, rows, &|k| format!("entry {k}"))?;
    let owner = |k: usize| format!("row {}", row.get(k).copied().unwrap_or(0));
    let col = check_indices(&path, "col", &col, cols, &owner)?;
    let locate = |k: usize| {
        (
            u64::from(row.get(k).copied().unwrap_or(0)),
            u64::from(col.get(k).copied().unwrap_or(0)),
        )
    };
    let data = read_data(npz, nnz, &locate)?;
    // `row`, `col` and `data` all hold `nnz` entries (checked above and in `read_data`).
    let triplets = (0..nnz).map(|k| (row[k], col[k], data[k]));
    build_csr(&path, rows, cols, nnz, &row, triplets)
}

/// Fails when a CSC or COO matrix claims more rows than the exporter handles (their row count
/// comes from `shape` alone, so it must be bounded before row pointers are allocated).
fn check_rows(path: &std::path::Path, rows: usize, cols: usize) -> Result<()> {
    if rows > MAX_SPARSE_ROWS {
        return Err(ExportError::Shape {
            path: path.to_path_buf(),
            tensor: "shape".to_string(),
            message: format!(
                "scipy sparse shape ({rows}, {cols}) has more than {MAX_SPARSE_ROWS} rows"
            ),
        });
    }
    Ok(())
}

/// Builds CSR storage from `nnz` (row, column, value) triplets whose rows are `row_of`, keeping
/// the triplets' order within each row (the caller canonicalizes afterwards).
fn build_csr(
    path: &std::path::Path,
    rows: usize,
    cols: usize,
    nnz: usize,
    row_of: &[u32],
    triplets: impl Iterator<Item = (u32, u32, f32)>,
) -> Result<CsrMatrix> {
    let mut indptr: Vec<u64> = Vec::new();
    indptr
        .try_reserve_exact(rows.saturating_add(1))
        .map_err(|_| ExportError::Shape {
            path: path.to_path_buf(),
            tensor: "shape".to_string(),
            message: format!("cannot allocate row pointers for {rows} rows"),
        })?;
    indptr.resize(rows + 1, 0);
    // Indexing below is in bounds: every row in `row_of` was checked to be < `rows` by
    // `check_indices`, and the per-row counts add up to `nnz`, so `pos < nnz`.
    for &r in row_of {
        indptr[r as usize + 1] += 1;
    }
    for i in 0..rows {
        indptr[i + 1] += indptr[i];
    }
    let mut next: Vec<u64> = indptr[..rows].to_vec();
    let mut indices = vec![0u32; nnz];
    let mut values = vec![0f32; nnz];
    for (r, c, v) in triplets {
        let slot = &mut next[r as usize];
        let pos = *slot as usize;
        indices[pos] = c;
        values[pos] = v;
        *slot += 1;
    }
    Ok(CsrMatrix {
        rows,
        cols,
        indptr,
        indices,
        values,
    })
}

/// Sorts the column indices within each row and sums duplicates (as scipy's `sum_duplicates`),
/// in place. `indptr`, `indices` and `values` must already be consistent.
pub(crate) fn canonicalize(m: &mut CsrMatrix, origin: &Origin<'_>) -> Result<()> {
    let rows_sorted = m.indptr.windows(2).all(|w| {
        m.indices
            .get(w[0] as usize..w[1] as usize)
            .is_some_and(|row| row.windows(2).all(|p| p[0] < p[1]))
    });
    if rows_sorted {
        return Ok(());
    }
    // Indexing below is in bounds: `indptr` has `rows + 1` non-decreasing entries ending at
    // `indices.len() == values.len()`, and `write` never passes the read position.
    let mut buf: Vec<(u32, f32)> = Vec::new();
    let mut write = 0usize;
    let mut start = 0usize;
    for r in 0..m.rows {
        let end = m.indptr[r + 1] as usize;
        buf.clear();
        buf.extend(
            m.indices[start..end]
                .iter()
                .copied()
                .zip(m.values[start..end].iter().copied()),
        );
        buf.sort_by_key(|&(c, _)| c);
        let mut i = 0;
        while let Some(&(col, _)) = buf.get(i) {
            let mut sum = 0f64;
            while let Some(&(c, v)) = buf.get(i) {
                if c != col {
                    break;
                }
                sum += f64::from(v);
                i += 1;
            }
            let v = sum as f32;
            if !v.is_finite() {
                return Err(origin.bad_value(
                    (r as u64, u64::from(col)),
                    format!("sum of duplicate entries {sum:e} does not fit in f32"),
                ));
            }
            m.indices[write] = col;
            m.values[write] = v;
            write += 1;
        }
        start = end;
        m.indptr[r + 1] = write as u64;
    }
    m.indices.truncate(write);
    m.values.truncate(write);
    Ok(())
}
