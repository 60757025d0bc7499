//! `pocketrec inspect`: what a model holds and what each part costs, as text or JSON, and as
//! an SVG chart with `--plot`.

use std::path::Path;

use pocketrec::{Mmap, Model};
use pocketrec_export::inspect::report;
use pocketrec_export::open_model;

use crate::error::{CliError, Result};
use crate::output::print_json;
use crate::plot::{Bars, Panel, write_svg};

/// Runs `pocketrec inspect`; with `plot`, also draws bytes by section, non-zeros per row and
/// density per dimension of the item table into that SVG file.
pub fn run(model: &Path, json: bool, plot: Option<&Path>) -> Result<()> {
    if super::update::is_patch(model) {
        if plot.is_some() {
            return Err(crate::error::CliError::Usage(
                "--plot draws a model; this file is a patch".into(),
            ));
        }
        return super::update::inspect_patch(model, json);
    }
    let opened = open_model(model)?;
    let r = report(&opened);
    if let Some(out) = plot {
        write_svg(out, &panels(&opened, model)?)?;
    }
    if json {
        print_json(&r)
    } else {
        print!("{}", r.to_text(&model.display().to_string()));
        Ok(())
    }
}

/// The three charts of `inspect --plot`.
fn panels(model: &Model<Mmap>, path: &Path) -> Result<Vec<Panel>> {
    let model_error = |source| CliError::Model {
        path: path.to_path_buf(),
        source,
    };
    let sections: Vec<_> = model.sections().collect();
    let bytes = Bars {
        title: "bytes by section".into(),
        labels: sections
            .iter()
            .map(|s| format!("{} {}", s.index, s.kind.name()))
            .collect(),
        values: sections.iter().map(|s| s.length as f64).collect(),
        y_label: "bytes".into(),
    };
    let items = model.items().map_err(model_error)?;
    let dim = items.dim();
    let mut per_row = vec![0u64; dim + 1];
    let mut per_dim = vec![0u64; dim];
    let mut row = vec![0.0f32; dim];
    for r in 0..items.rows() {
        items.decode_row(r, &mut row).map_err(model_error)?;
        let mut nnz = 0;
        for (c, &v) in row.iter().enumerate() {
            if v != 0.0 {
                nnz += 1;
                per_dim[c] += 1;
            }
        }
        per_row[nnz] += 1;
    }
    let last = per_row.iter().rposition(|&n| n > 0).unwrap_or(0);
    let rows = items.rows().max(1) as f64;
    Ok(vec![
        Panel::Bars(bytes),
        Panel::Bars(Bars {
            title: format!("item table: rows by number of non-zeros (of {dim})"),
            labels: (0..=last).map(|n| n.to_string()).collect(),
            values: per_row[..=last].iter().map(|&n| n as f64).collect(),
            y_label: "rows".into(),
        }),
        Panel::Bars(Bars {
            title: "item table: density per dimension".into(),
            labels: (0..dim).map(|c| c.to_string()).collect(),
            values: per_dim.iter().map(|&n| n as f64 / rows).collect(),
            y_label: "fraction of rows non-zero".into(),
        }),
    ])
}
