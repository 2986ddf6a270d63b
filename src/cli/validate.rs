//! `druppie validate`: load and check the whole spec repo, and with
//! `--render` render every plan in memory too.

use super::output::count;
use super::{CommandError, CommandResult, Context, Ui, command_error::ok};
use crate::spec::{self, LoadOptions};

/// Check the spec repo: every file parses, every reference resolves, every
/// input fits its declaration. Exit 0 when valid, 1 with diagnostics on
/// stderr.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also compose and render every plan in every environment, in memory
    /// (nothing is written): template errors and the `[render]` limits
    /// are checked too
    #[arg(long)]
    pub render: bool,
    /// With `--render`: render only this plan (repeat for more)
    #[arg(long = "plan", value_name = "PLAN", requires = "render")]
    pub plans: Vec<String>,
}

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let loaded =
        spec::load(&ctx.spec_root, &LoadOptions::default()).map_err(CommandError::failed)?;
    let v = validated(ui, loaded)?;
    ui.diagnostics(&v.warnings);
    let s = &v.spec;
    let instantiable = s.blocks.iter().filter(|b| b.instantiable()).count();
    let mut line = format!(
        "spec is valid: {} ({instantiable} instantiable), {}, {}, {}, {}, {}",
        count(s.blocks.len(), "block"),
        count(s.skills.len(), "skill"),
        count(v.env_names().len(), "environment"),
        count(s.stacks.len(), "stack"),
        count(s.plans.len(), "plan"),
        count(s.policies.len(), "policy").replace("policys", "policies"),
    );
    if args.render {
        let (files, pairs) = render_plans(ctx, ui, &v, &args.plans)?;
        line.push_str(&format!(
            "; rendered {} for {}",
            count(files, "file"),
            count(pairs, "plan environment")
        ));
    }
    ui.out(&format!("{line}\n"));
    ok()
}

/// `loaded`, validated; when it is invalid, its diagnostics are shown.
///
/// # Errors
/// The spec is invalid.
pub(super) fn validated(ui: &Ui, loaded: spec::Spec) -> Result<spec::Validated, CommandError> {
    spec::validate(loaded).map_err(|diags| {
        ui.diagnostics(&diags);
        CommandError::user(format!(
            "spec is invalid: {}, {}",
            count(diags.error_count(), "error"),
            count(diags.warning_count(), "warning")
        ))
    })
}

/// Composes and renders `plans` of `v` (none named: every plan), in
/// memory, within the `[render]` limits: (files, plan environments).
///
/// # Errors
/// A plan the spec does not have, or the spec does not render (its
/// diagnostics are shown).
pub(super) fn render_plans(
    ctx: &Context,
    ui: &Ui,
    v: &spec::Validated,
    plans: &[String],
) -> Result<(usize, usize), CommandError> {
    let mut selection = spec::select(v, &Default::default())?;
    if !plans.is_empty() {
        for plan in plans {
            // An unknown name is an error naming the plans there are.
            let only = crate::compose::ComposeOptions {
                plan: Some(plan.clone()),
                env: None,
                shards: None,
            };
            spec::select(v, &only)?;
        }
        selection = selection.only_plans(v, &plans.iter().cloned().collect());
    }
    let limits = ctx.config.render.limits();
    let rendered = crate::compose::compose(v, &selection, &limits)
        .and_then(|resolved| crate::render::render(v, &resolved, None, &limits))
        .map_err(|diags| {
            ui.diagnostics(&diags);
            CommandError::user(format!(
                "spec does not render: {}",
                count(diags.error_count(), "error")
            ))
        })?;
    let files = rendered.targets.values().map(|t| t.files.len()).sum();
    Ok((files, selection.len()))
}
