//! `druppie skills`: list or search the skills catalog.

use super::output::truncate;
use super::{CommandResult, Context, Ui, catalog};
use crate::registry::Registry;

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

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let spec = catalog::load(ctx, ui)?;
    let registry = Registry::new(&spec);
    let hits = registry.search_skills(&args.query.join(" "));
    catalog::print(
        ui,
        args.json,
        &hits,
        &["id", "category", "name", "description"],
        |s| {
            vec![
                s.id.clone(),
                s.category.clone().unwrap_or_default(),
                s.name.clone(),
                truncate(&s.description, 70),
            ]
        },
    )
}
