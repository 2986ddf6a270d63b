//! What `druppie blocks` and `druppie skills` share: the catalog as it
//! loaded, and its hits as a table or JSON.

use serde::Serialize;

use super::output::table;
use super::{CommandError, CommandResult, Context, Ui, command_error::ok};
use crate::spec::{LoadOptions, Spec};

/// Loads the catalog (`bouwblokken/`, `skills/`) for listing: every file
/// that loaded is listed, and every problem (a file that does not parse,
/// an invalid id) goes to stderr without failing the listing; `druppie
/// validate` still fails on them. An error when the spec cannot be read
/// at all.
pub(super) fn load(ctx: &Context, ui: &Ui) -> Result<Spec, CommandError> {
    let spec =
        crate::spec::load(&ctx.spec_root, &LoadOptions::catalog()).map_err(CommandError::failed)?;
    let problems = crate::spec::validate::check(&spec);
    ui.diagnostics(&problems);
    let errors = problems
        .iter()
        .filter(|d| d.severity == crate::spec::Severity::Error)
        .count();
    if errors > 0 {
        ui.err(&format!(
            "listing what loaded; {} in the catalog (`druppie validate` fails until {} fixed)\n",
            super::output::count(errors, "error"),
            if errors == 1 { "it is" } else { "they are" }
        ));
    }
    Ok(spec)
}

/// Prints `hits` as a JSON array, or as a table of `headers` with one
/// `row` per hit.
pub(super) fn print<T: Serialize>(
    ui: &Ui,
    json: bool,
    hits: &[T],
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> CommandResult {
    if json {
        ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(hits).expect("catalog entries serialize")
        ));
    } else {
        let rows: Vec<Vec<String>> = hits.iter().map(row).collect();
        ui.out(&table(headers, &rows));
    }
    ok()
}
