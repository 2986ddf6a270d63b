//! `druppie blocks`: list or search the building block catalog.

use super::output::truncate;
use super::{CommandResult, Context, Ui, catalog};
use crate::registry::Registry;

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
    let spec = catalog::load(ctx, ui)?;
    let registry = Registry::new(&spec);
    let hits = registry.search_blocks(&args.query.join(" "));
    catalog::print(
        ui,
        args.json,
        &hits,
        &["id", "type", "version", "instantiable", "capabilities"],
        |b| {
            vec![
                b.id.clone(),
                b.kind.clone(),
                b.version.clone(),
                if b.instantiable { "yes" } else { "no" }.to_owned(),
                truncate(&b.capabilities.join(", "), 60),
            ]
        },
    )
}
