//! `pocketrec verify`: every byte of a model (or the form of a patch) checked, and with `--key`
//! its signature; the exit status is the verdict.

use std::path::Path;
use std::process::ExitCode;

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
    if let Some(public) = &public {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("pocketrec: error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        if let Err(e) = pocketrec::signature::verify(&bytes, public) {
            println!("INVALID {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let signed = if public.is_some() {
        ", signature checked"
    } else {
        ""
    };
    if super::update::is_patch(path) {
        return verify_patch(path, signed);
    }
    let model = match open_model(path) {
        Ok(m) => m,
        Err(ExportError::Model {
            source: pocketrec::Error::Io(e),
            ..
        }) => {
            eprintln!("pocketrec: error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            println!("INVALID {e}");
            return ExitCode::from(1);
        }
    };
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
fn verify_patch(path: &Path, signed: &str) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("pocketrec: error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let checked = pocketrec::patch::Patch::parse(&bytes)
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
