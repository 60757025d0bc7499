//! What several commands print: JSON lines.

use crate::error::{CliError, Result};

/// Prints `value` as one line of JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", to_json_line(value)?);
    Ok(())
}

/// `value` as one line of JSON.
pub fn to_json_line<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| CliError::Usage(format!("cannot encode JSON: {e}")))
}
