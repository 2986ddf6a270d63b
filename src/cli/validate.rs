//! `druppie validate`: load and check the whole spec repo.

use super::output::{count, print_diagnostics, print_error};
use super::output::{errln, outln};
use super::{Context, exit};
use crate::spec::{self, LoadOptions};

/// Check the spec repo: every file parses, every reference resolves, every
/// input fits its declaration. Exit 0 when valid, 1 with diagnostics on
/// stderr.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: &Args) -> u8 {
    let loaded = match spec::load(&ctx.spec_root, &LoadOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            print_error(&e, ctx.color_err);
            return exit::ERROR;
        }
    };
    match spec::validate(loaded) {
        Ok(v) => {
            print_diagnostics(&v.warnings, ctx.color_err);
            let s = &v.spec;
            let instantiable = s.blocks.iter().filter(|b| b.instantiable()).count();
            outln!(
                "spec is valid: {} ({instantiable} instantiable), {}, {}, {}, {}, {}",
                count(s.blocks.len(), "block"),
                count(s.skills.len(), "skill"),
                count(
                    s.platform.as_ref().map_or(0, |p| p.environments.len()),
                    "environment"
                ),
                count(s.stacks.len(), "stack"),
                count(s.plans.len(), "plan"),
                count(s.policies.len(), "policy").replace("policys", "policies"),
            );
            exit::OK
        }
        Err(diags) => {
            print_diagnostics(&diags, ctx.color_err);
            errln!(
                "spec is invalid: {}, {}",
                count(diags.error_count(), "error"),
                count(diags.warning_count(), "warning")
            );
            exit::ERROR
        }
    }
}
