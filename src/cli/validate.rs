//! `druppie validate`: load and check the whole spec repo, and with
//! `--render` render every plan in memory too.

use super::output::errln;
use super::output::{count, print_diagnostics, print_error, print_out};
use super::{Context, exit};
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
}

pub fn run(ctx: &Context, args: &Args) -> u8 {
    let loaded = match spec::load(&ctx.spec_root, &LoadOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            print_error(&e, ctx.color_err);
            return exit::ERROR;
        }
    };
    let v = match spec::validate(loaded) {
        Ok(v) => v,
        Err(diags) => {
            print_diagnostics(&diags, ctx.color_err);
            errln!(
                "spec is invalid: {}, {}",
                count(diags.error_count(), "error"),
                count(diags.warning_count(), "warning")
            );
            return exit::ERROR;
        }
    };
    print_diagnostics(&v.warnings, ctx.color_err);
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
        let selection = spec::select(&v, &Default::default()).unwrap_or_default();
        let rendered = crate::compose::compose(&v, &selection)
            .and_then(|resolved| crate::render::render(&v, &resolved, None));
        match rendered {
            Ok(desired) => {
                let files: usize = desired.targets.values().map(|t| t.files.len()).sum();
                line.push_str(&format!(
                    "; rendered {} for {}",
                    count(files, "file"),
                    count(selection.len(), "plan environment")
                ));
            }
            Err(diags) => {
                print_diagnostics(&diags, ctx.color_err);
                errln!(
                    "spec does not render: {}",
                    count(diags.error_count(), "error")
                );
                return exit::ERROR;
            }
        }
    }
    print_out(&format!("{line}\n"));
    exit::OK
}
