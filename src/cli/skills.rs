//! `druppie skills`: list or search the skills catalog.

use super::output::{table, truncate};
use super::{Context, exit, open};
use crate::registry::Registry;
use crate::spec::LoadOptions;

/// List skills (personas and instructions for the planner and agents), or
/// search them.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to search for (all skills when empty)
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
    let hits = registry.search_skills(&args.query.join(" "));
    if args.json {
        super::output::print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&hits).expect("catalog entries serialize")
        ));
        return exit::OK;
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.category.clone().unwrap_or_default(),
                s.name.clone(),
                truncate(&s.description, 70),
            ]
        })
        .collect();
    super::output::print_out(&table(&["id", "category", "name", "description"], &rows));
    exit::OK
}
