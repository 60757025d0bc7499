//! `pocketrec verify`: every byte of a model checked; the exit status is the verdict.

use std::path::Path;
use std::process::ExitCode;

use pocketrec_export::inspect::thousands;
use pocketrec_export::{ExportError, open_model};

/// Runs `pocketrec verify`: exit status 0 when the file is valid, 1 when it is not, 2 when it
/// cannot be read.
pub fn run(path: &Path) -> ExitCode {
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
                "OK {}: {} bytes, every checksum, row, id and bias checked",
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
