//! Over-the-air updates: `pocketrec diff`, `patch`, `keygen`, `sign`, and `inspect` of a patch.

use std::path::Path;

use pocketrec::patch::{Op, Patch};
use pocketrec_export::diff::{TableChange, changed_rows, diff_with_stats};
use pocketrec_export::inspect::thousands;
use pocketrec_export::sign::{SecretKey, hex, read_public_key, sign_file, write_key_pair};

use crate::error::{CliError, Result};
use crate::output::print_json;

/// What `pocketrec diff` prints.
#[derive(Debug, serde::Serialize)]
struct DiffReport {
    patch: String,
    old_bytes: u64,
    new_bytes: u64,
    patch_bytes: u64,
    carried_bytes: u64,
    ops: u64,
    by_section: bool,
    tables: Vec<TableChange>,
    changed_row_bytes: u64,
    /// patch_bytes / changed_row_bytes (0 when no row changed).
    patch_per_changed_byte: f64,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| CliError::io(path, e))
}

/// Runs `pocketrec diff OLD NEW -o PATCH`.
pub fn diff(old: &Path, new: &Path, output: &Path, json: bool) -> Result<()> {
    let (old_bytes, new_bytes) = (read(old)?, read(new)?);
    let (patch, stats) = diff_with_stats(&old_bytes, &new_bytes)?;
    let tables = if stats.by_section {
        changed_rows(&old_bytes, &new_bytes)?
    } else {
        Vec::new()
    };
    pocketrec_export::atomic::write_atomic(output, &patch)?;
    let changed_row_bytes: u64 = tables.iter().map(|t| t.bytes).sum();
    let report = DiffReport {
        patch: output.display().to_string(),
        old_bytes: old_bytes.len() as u64,
        new_bytes: stats.new_bytes,
        patch_bytes: stats.patch_bytes,
        carried_bytes: stats.carried_bytes,
        ops: stats.ops,
        by_section: stats.by_section,
        tables,
        changed_row_bytes,
        patch_per_changed_byte: if changed_row_bytes == 0 {
            0.0
        } else {
            stats.patch_bytes as f64 / changed_row_bytes as f64
        },
    };
    if json {
        return print_json(&report);
    }
    println!(
        "wrote {}: {} bytes, {:.2} % of the new file's {} bytes",
        report.patch,
        thousands(report.patch_bytes),
        100.0 * report.patch_bytes as f64 / report.new_bytes.max(1) as f64,
        thousands(report.new_bytes)
    );
    for t in &report.tables {
        println!(
            "  {}: {} of {} rows changed, {} added, {} removed ({} bytes in the new file)",
            t.role,
            thousands(t.changed),
            thousands(t.rows),
            thousands(t.added),
            thousands(t.removed),
            thousands(t.bytes)
        );
    }
    if !report.by_section {
        println!("  (not both models: diffed as plain bytes)");
    } else if changed_row_bytes > 0 {
        println!(
            "  patch / changed rows' bytes = {:.3}; {} operations carry {} bytes",
            report.patch_per_changed_byte,
            thousands(report.ops),
            thousands(report.carried_bytes)
        );
    } else {
        println!(
            "  no row changed; {} operations carry {} bytes",
            thousands(report.ops),
            thousands(report.carried_bytes)
        );
    }
    Ok(())
}

/// Runs `pocketrec patch OLD PATCH -o NEW [--key PUB]`.
pub fn patch(old: &Path, patch: &Path, output: &Path, key: Option<&Path>) -> Result<()> {
    let public = key.map(read_public_key).transpose()?;
    let summary =
        pocketrec::patch::apply_file(old, patch, output, public.as_ref()).map_err(|source| {
            CliError::Model {
                path: patch.to_path_buf(),
                source,
            }
        })?;
    println!(
        "wrote {}: {} bytes ({} copied from {}, {} from the patch){}",
        output.display(),
        thousands(summary.result_size),
        thousands(summary.copied),
        old.display(),
        thousands(summary.carried),
        if public.is_some() {
            ", patch signature checked"
        } else {
            ""
        }
    );
    Ok(())
}

/// Runs `pocketrec keygen -o PREFIX`.
pub fn keygen(prefix: &Path) -> Result<()> {
    let key = SecretKey::generate()?;
    let (secret, public) = write_key_pair(&key, prefix)?;
    println!(
        "wrote {} (secret: keep it off devices) and {} (key id {})",
        secret.display(),
        public.display(),
        hex(&key.key_id())
    );
    let bytes: Vec<String> = key
        .public_key()
        .iter()
        .map(|b| format!("0x{b:02x}"))
        .collect();
    println!(
        "public key for C: static const uint8_t POCKETREC_PUBLIC_KEY[32] = {{{}}};",
        bytes.join(", ")
    );
    Ok(())
}

/// Runs `pocketrec sign FILE --key KEY [-o OUT]`.
pub fn sign(file: &Path, key: &Path, output: &Path) -> Result<()> {
    let secret = SecretKey::read(key)?;
    sign_file(file, &secret, output)?;
    println!(
        "signed {} with key id {} -> {}",
        file.display(),
        hex(&secret.key_id()),
        output.display()
    );
    Ok(())
}

/// Whether a file starts with the patch magic.
pub fn is_patch(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == pocketrec::patch::PATCH_MAGIC
}

/// What `pocketrec inspect PATCH` prints.
#[derive(Debug, Default, serde::Serialize)]
struct PatchReport {
    patch_bytes: u64,
    base_bytes: u64,
    base_sha256: String,
    result_bytes: u64,
    result_sha256: String,
    ops: u64,
    copy_ops: u64,
    copied_bytes: u64,
    replace_ops: u64,
    insert_ops: u64,
    carried_bytes: u64,
    seek_ops: u64,
    copy_add_ops: u64,
    copy_add_bytes: u64,
    nibble_copy_ops: u64,
    nibble_copy_bytes: u64,
    /// Bytes the device recomputes instead of reading them from the patch (the fold-in
    /// Gramian, block bounds, column layouts of tables with row records).
    recomputed_bytes: u64,
    /// How the body is stored: `bytes` or `range coded`.
    body: String,
    signed_by: Option<String>,
}

/// Runs `pocketrec inspect` on a patch file.
pub fn inspect_patch(path: &Path, json: bool) -> Result<()> {
    let bytes = read(path)?;
    let model_error = |source| CliError::Model {
        path: path.to_path_buf(),
        source,
    };
    let patch = Patch::parse(&bytes).map_err(model_error)?;
    let h = patch.header();
    let mut r = PatchReport {
        patch_bytes: bytes.len() as u64,
        base_bytes: h.base_size,
        base_sha256: hex(&h.base_sha256),
        result_bytes: h.result_size,
        result_sha256: hex(&h.result_sha256),
        signed_by: patch.trailer().map(|t| hex(&t.key_id)),
        body: match h.literal_coding {
            pocketrec::patch::LiteralCoding::Inline => "bytes",
            pocketrec::patch::LiteralCoding::Coded => "range coded",
        }
        .to_string(),
        ..PatchReport::default()
    };
    for op in patch.ops() {
        r.ops += 1;
        match op.map_err(model_error)? {
            Op::Copy { len } => {
                r.copy_ops += 1;
                r.copied_bytes += len;
            }
            Op::Replace(b) => {
                r.replace_ops += 1;
                r.carried_bytes += b.len() as u64;
            }
            Op::Insert(b) => {
                r.insert_ops += 1;
                r.carried_bytes += b.len() as u64;
            }
            Op::CodedReplace { len } => {
                r.replace_ops += 1;
                r.carried_bytes += len;
            }
            Op::CodedInsert { len } => {
                r.insert_ops += 1;
                r.carried_bytes += len;
            }
            Op::Seek(_) => r.seek_ops += 1,
            Op::CopyAdd { count, width, .. } => {
                r.copy_add_ops += 1;
                r.copy_add_bytes += count * u64::from(width);
            }
            Op::CopyNibbles { len } => {
                r.nibble_copy_ops += 1;
                r.nibble_copy_bytes += len;
            }
            Op::Recompute { len } => r.recomputed_bytes += len,
            Op::End => {}
        }
    }
    if json {
        return print_json(&r);
    }
    let pct = |n: u64| 100.0 * n as f64 / r.result_bytes.max(1) as f64;
    println!(
        "{}: pocketrec patch, {} bytes",
        path.display(),
        thousands(r.patch_bytes)
    );
    println!(
        "  from: {} bytes, SHA-256 {}",
        thousands(r.base_bytes),
        r.base_sha256
    );
    println!(
        "  to:   {} bytes, SHA-256 {}",
        thousands(r.result_bytes),
        r.result_sha256
    );
    println!(
        "  the patch is {:.2} % of the file it makes",
        pct(r.patch_bytes)
    );
    println!(
        "  {} operations: {} copies ({} bytes, {:.2} %), {} copy-adds ({} bytes of moved offsets), {} nibble copies ({} bytes of shifted int4 values), {} replaces and {} inserts ({} bytes carried, {:.2} %), {} seeks, {} bytes recomputed on the device (fold-in Gramian, block bounds, column layouts of tables with row records); body stored as {}",
        thousands(r.ops),
        thousands(r.copy_ops),
        thousands(r.copied_bytes),
        pct(r.copied_bytes),
        thousands(r.copy_add_ops),
        thousands(r.copy_add_bytes),
        thousands(r.nibble_copy_ops),
        thousands(r.nibble_copy_bytes),
        thousands(r.replace_ops),
        thousands(r.insert_ops),
        thousands(r.carried_bytes),
        pct(r.carried_bytes),
        thousands(r.seek_ops),
        thousands(r.recomputed_bytes),
        r.body
    );
    match &r.signed_by {
        Some(id) => println!("  signed by key id {id} (check with verify --key)"),
        None => println!("  unsigned"),
    }
    Ok(())
}
