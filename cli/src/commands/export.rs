//! `pocketrec export`: the arguments turned into [`ExportOptions`], and the line it prints.

use pocketrec_export::export::{ExportOptions, Source, export_reporting};
use pocketrec_export::inspect::thousands;

use crate::args::ExportArgs;
use crate::error::{CliError, Result};
use crate::progress::Bar;

/// Runs `pocketrec export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let items_only = args.storage.items_only;
    let (users, items) = match (&args.input, &args.users, &args.items) {
        (Some(input), None, None) => (
            // With --items-only the file's user tensor is read only when named.
            match (&args.user_tensor, items_only) {
                (None, true) => None,
                (tensor, _) => Some(Source::tensor(
                    input,
                    tensor.as_deref().unwrap_or("user_embedding"),
                )),
            },
            Source::tensor(
                input,
                args.item_tensor.as_deref().unwrap_or("item_embedding"),
            ),
        ),
        (None, users, Some(i)) if users.is_some() || items_only => (
            users.as_ref().map(|u| Source {
                path: u.clone(),
                tensor: args.user_tensor.clone(),
            }),
            Source {
                path: i.clone(),
                tensor: args.item_tensor.clone(),
            },
        ),
        _ => {
            return Err(CliError::Usage(
                "give either one input file holding both tables, or --users and --items \
                 (--items alone with --items-only)"
                    .into(),
            ));
        }
    };
    let mut options = match users {
        Some(users) => ExportOptions::new(users, items, &args.output),
        None => ExportOptions::items_only(items, &args.output),
    };
    options.values = args.values;
    options.user_ids = args.user_ids;
    options.item_ids = args.item_ids;
    options.user_bias = args.user_bias.map(|path| Source {
        path,
        tensor: args.user_bias_tensor,
    });
    options.item_bias = args.item_bias.map(|path| Source {
        path,
        tensor: args.item_bias_tensor,
    });
    options.global_bias = args.global_bias;
    options.scoring = args.scoring;
    options.prune_density = args.prune_density;
    options.storage = args.storage.storage(args.sliced_rows);
    options.list_rows = args.list_rows;
    options.per_row_offsets = args.per_row_offsets;
    options.fold_in = !args.no_fold_in;
    options.id_strings = !args.no_id_strings;
    options.update_of = args.storage.update_of.clone();
    options.fold_in_params = args
        .fold_in_unobserved_weight
        .zip(args.fold_in_regularization)
        .map(
            |(unobserved_weight, regularization)| pocketrec::FoldInParams {
                unobserved_weight,
                regularization,
            },
        );
    options.fold_in_softmax = args.fold_in_softmax;
    options.fold_in_clusters = args.fold_in_clusters;
    let summary = export_reporting(&options, &Bar::new(!args.quiet))?;
    eprintln!(
        "wrote {}: {} bytes, {:.1}% of the dense f32 tables ({} bytes)",
        summary.output.display(),
        thousands(summary.file_bytes),
        100.0 * summary.file_bytes as f64 / summary.dense_f32_bytes.max(1) as f64,
        thousands(summary.dense_f32_bytes)
    );
    Ok(())
}
