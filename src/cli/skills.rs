//! `druppie skills`: list or search the skills catalog.

use super::blocks::load_catalog;
use super::output::{table, truncate};
use super::{CommandResult, Context, Ui, command_error::ok};
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
    let catalog = load_catalog(ctx, ui)?;
    let registry = Registry::new(&catalog);
    let hits = registry.search_skills(&args.query.join(" "));
    if args.json {
        ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&hits).expect("catalog entries serialize")
        ));
        return ok();
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
    ui.out(&table(&["id", "category", "name", "description"], &rows));
    ok()
}
