//! `druppie blocks`: list or search the building block catalog.

use super::output::{table, truncate};
use super::{Context, exit, open};
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

pub fn run(ctx: &Context, args: &Args) -> u8 {
    let Some(catalog) = open(ctx, &LoadOptions::catalog(), &Default::default()) else {
        return exit::ERROR;
    };
    let registry = Registry::new(&catalog.valid.spec);
    let hits = registry.search_blocks(&args.query.join(" "));
    if args.json {
        super::output::print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&hits).expect("catalog entries serialize")
        ));
        return exit::OK;
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
    super::output::print_out(&table(
        &["id", "type", "version", "instantiable", "capabilities"],
        &rows,
    ));
    exit::OK
}
