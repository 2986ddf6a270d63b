//! `druppie blocks`: list or search the building block catalog.

use super::output::{table, truncate};
use super::{CommandError, CommandResult, Context, Ui, command_error::ok};
use crate::registry::Registry;
use crate::spec::{LoadOptions, Spec};

/// List building blocks, or search them: ranked over id, name,
/// description, capabilities and documentation; a block whose capability
/// equals the query ranks first.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to search for (all blocks when empty)
    pub query: Vec<String>,
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let catalog = load_catalog(ctx, ui)?;
    let registry = Registry::new(&catalog);
    let hits = registry.search_blocks(&args.query.join(" "));
    if args.json {
        ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&hits).expect("catalog entries serialize")
        ));
        return ok();
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                b.kind.clone(),
                b.version.clone(),
                if b.instantiable { "yes" } else { "no" }.to_owned(),
                truncate(&b.capabilities.join(", "), 60),
            ]
        })
        .collect();
    ui.out(&table(
        &["id", "type", "version", "instantiable", "capabilities"],
        &rows,
    ));
    ok()
}

/// Loads the catalog (`bouwblokken/`, `skills/`) for listing: every file
/// that loaded is listed, and every problem (a file that does not parse,
/// an invalid id) goes to stderr without failing the listing; `druppie
/// validate` still fails on them. An error when the spec cannot be read
/// at all.
pub(super) fn load_catalog(ctx: &Context, ui: &Ui) -> Result<Spec, CommandError> {
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
