//! `pocketrec verify`: every byte of a model (or the form of a patch) checked, and with `--key`
//! its signature first; the exit status is the verdict.

use std::path::Path;
use std::process::ExitCode;

use pocketrec::Model;
use pocketrec_export::inspect::thousands;
use pocketrec_export::sign::read_public_key;
use pocketrec_export::{ExportError, open_model};

/// Runs `pocketrec verify`: exit status 0 when the file is valid (and signed by `key`, if
/// given), 1 when it is not, 2 when it cannot be read.
pub fn run(path: &Path, key: Option<&Path>) -> ExitCode {
    let public = match key.map(read_public_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("pocketrec: error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(public) = public else {
        if super::update::is_patch(path) {
            return match read(path) {
                Ok(bytes) => verify_patch(path, &bytes, ""),
                Err(code) => code,
            };
        }
        // Mapped, not read into memory: `verify` reads every byte once.
        return match open_model(path) {
            Ok(model) => verify_model(path, &model, ""),
            Err(ExportError::Model {
                source: pocketrec::Error::Io(e),
                ..
            }) => {
                eprintln!("pocketrec: error: {}: {e}", path.display());
                ExitCode::from(2)
            }
            Err(e) => {
                println!("INVALID {e}");
                ExitCode::from(1)
            }
        };
    };
    // The signature is checked before anything else in the file is trusted; the bytes are read
    // once, for both checks.
    let bytes = match read(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    if let Err(e) = pocketrec::signature::verify(&bytes, &public) {
        println!("INVALID {}: {e}", path.display());
        return ExitCode::from(1);
    }
    let signed = ", signature checked";
    if bytes.starts_with(&pocketrec::patch::PATCH_MAGIC) {
        return verify_patch(path, &bytes, signed);
    }
    match Model::from_bytes(&bytes) {
        Ok(model) => verify_model(path, &model, signed),
        Err(e) => {
            println!("INVALID {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

/// The whole file, or the exit status for a file that cannot be read.
fn read(path: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| {
        eprintln!("pocketrec: error: {}: {e}", path.display());
        ExitCode::from(2)
    })
}

/// Every checksum, row, id and bias of an opened model.
fn verify_model<S: AsRef<[u8]>>(path: &Path, model: &Model<S>, signed: &str) -> ExitCode {
    match model.verify() {
        Ok(()) => {
            println!(
                "OK {}: {} bytes, every checksum, row, id and bias checked{signed}",
                path.display(),
                thousands(model.bytes().len() as u64)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("INVALID {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

/// A patch's header, checksums and every operation's form (not against a base).
fn verify_patch(path: &Path, bytes: &[u8], signed: &str) -> ExitCode {
    let checked = pocketrec::patch::Patch::parse(bytes)
        .and_then(|p| p.ops().try_fold(0u64, |n, op| op.map(|_| n + 1)));
    match checked {
        Ok(ops) => {
            println!(
                "OK {}: patch of {} bytes, {} operations well formed{signed} (the base is checked when it is applied)",
                path.display(),
                thousands(bytes.len() as u64),
                thousands(ops)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("INVALID {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}
