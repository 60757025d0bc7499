//! `pocketrec inspect`: what a model holds and what each part costs, as text or JSON.

use std::path::Path;

use pocketrec_export::inspect::report;
use pocketrec_export::open_model;

use crate::error::Result;
use crate::output::print_json;

/// Runs `pocketrec inspect`.
pub fn run(model: &Path, json: bool) -> Result<()> {
    let r = report(&open_model(model)?);
    if json {
        print_json(&r)
    } else {
        print!("{}", r.to_text(&model.display().to_string()));
        Ok(())
    }
}
