//! `druppie blocks`: list or search the building block catalog.

use super::output::{table, truncate};
use super::{CommandResult, Context, Ui, command_error::ok, open};
use crate::registry::Registry;
use crate::spec::LoadOptions;

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
    let catalog = open(ctx, ui, &LoadOptions::catalog(), &Default::default())?;
    let registry = Registry::new(&catalog.valid.spec);
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
