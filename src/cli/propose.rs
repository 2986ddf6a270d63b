//! `druppie propose`: a sentence becomes a proposed spec change.

use super::secrets::Var;
use super::{CommandError, CommandResult, Context, Ui, exit};
use crate::planner::llm::LlmPlanner;
use crate::planner::propose::Answer;
use crate::planner::{Checked, Request, Session};

/// Turn a request into a plan (and a stack when none fits), check it as
/// a hand-written change is checked (validation, policies, the preview
/// of what merging it does) and, with `--yes`, open it as a proposal on
/// the spec repo: the branch `druppie/propose/<plan>` with one signed
/// commit, and a pull request whose body is the approval card where the
/// forge has them (`[spec] url`). Nothing is written to project or
/// infra repos. A question about the catalog lists the blocks that
/// answer it; a question about a plan shows its status. Exit 0 when
/// there is a proposal (opened with `--yes`) or an answer, 1 when
/// questions are open or the draft does not check out.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What is needed, in a sentence ("a permit portal with a database")
    #[arg(required = true)]
    pub request: Vec<String>,
    /// The owning team (e.g. `team-permits`)
    #[arg(long)]
    pub owner: Option<String>,
    /// An environment to plan (repeatable) [default: all of them]
    #[arg(long = "env", value_name = "ENV")]
    pub envs: Vec<String>,
    /// The plan's name (a DNS label) [default: from the request]
    #[arg(long)]
    pub name: Option<String>,
    /// Open the proposal (push the branch, open the pull request)
    #[arg(long)]
    pub yes: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Which planner drafts: the language model of `[llm]` (falling back
    /// to the rules when it fails) or the rules alone [default: llm when
    /// `[llm]` is configured, else rules]
    #[arg(long, value_enum)]
    pub planner: Option<Planner>,
}

/// The planner `--planner` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Planner {
    Rules,
    Llm,
}

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let request = Request {
        text: args.request.join(" "),
        owner: args.owner.clone(),
        envs: args.envs.clone(),
        name: args.name.clone(),
    };
    let session = Session::new(
        &ctx.spec_root,
        &ctx.config,
        ctx.secrets.forge_token.secret().cloned(),
        super::diff::LiveArgs::default().sources(ctx),
        ctx.scrubber.clone(),
    )
    .map_err(CommandError::failed)?
    .with_llm(llm_planner(ctx, args.planner)?);
    let answer = session
        .answer(&request, args.yes)
        .map_err(CommandError::failed)?;
    if args.json {
        let text = serde_json::to_string_pretty(&answer).expect("the answer serializes");
        ui.out(&format!("{text}\n"));
    }
    match answer {
        Answer::Catalog { query, blocks } => {
            if !args.json {
                let mut out = format!("Blocks for {query:?}, best first:\n");
                for b in &blocks {
                    out.push_str(&format!(
                        "  {:<22} {}{}\n",
                        b.id,
                        b.description,
                        if b.instantiable {
                            ""
                        } else {
                            " (a shared platform service)"
                        }
                    ));
                }
                ui.out(&out);
            }
            Ok(exit::OK.into())
        }
        Answer::Status { plan } => {
            if args.json {
                return Ok(exit::OK.into());
            }
            super::status::run(
                ctx,
                ui,
                &super::status::Args {
                    plan,
                    json: false,
                    live: Default::default(),
                },
            )
        }
        Answer::Proposal {
            checked,
            opened,
            refused,
        } => {
            if !args.json {
                ui.out(&text(&checked));
            }
            if let Some(o) = &opened {
                let at = o
                    .url
                    .as_deref()
                    .map(|u| format!(": {u}"))
                    .unwrap_or_default();
                ui.note(&format!(
                    "proposed on branch {} of the spec repo (commit {}){at}; merging it is the approval",
                    o.branch,
                    &o.commit[..12]
                ));
                return Ok(exit::OK.into());
            }
            match refused.or_else(|| checked.refusal()) {
                Some(why) => Err(CommandError::user(format!("not proposed: {why}"))),
                None => {
                    if !args.yes {
                        ui.note("not proposed yet: run again with --yes to open it");
                    }
                    Ok(exit::OK.into())
                }
            }
        }
    }
}

/// The language-model planner, when `[llm]` is configured and
/// `--planner` does not say `rules`.
fn llm_planner(ctx: &Context, asked: Option<Planner>) -> Result<Option<LlmPlanner>, CommandError> {
    let settings = match (&ctx.config.llm, asked) {
        (_, Some(Planner::Rules)) | (None, None) => return Ok(None),
        (None, Some(Planner::Llm)) => {
            return Err(CommandError::hinted(
                "--planner llm needs a language model, and druppie.toml has no [llm]",
                "add [llm] with base_url and model (see the README, LLM planner)",
            ));
        }
        (Some(settings), _) => settings,
    };
    let key = match &ctx.secrets.llm_key {
        Var::Set(key) => Some(key.clone()),
        Var::Unset => None,
        Var::Empty { name } => {
            return Err(CommandError::user(format!(
                "{name} ([llm] api_key_env) is set but empty: set the key, or unset it for an endpoint without one"
            )));
        }
    };
    Ok(Some(LlmPlanner::new(
        settings.clone(),
        key,
        ctx.scrubber.clone(),
    )))
}

/// The proposal, for a person to read.
fn text(checked: &Checked) -> String {
    let o = &checked.outline;
    let mut out = String::new();
    if let Some(plan) = &o.plan {
        out.push_str(&format!("plan {plan} ({} planner)\n", o.planner));
    }
    for c in &o.choices {
        out.push_str(&format!(
            "  block {:<16} as {:<8} {}\n",
            c.block, c.component, c.why
        ));
    }
    for n in &o.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    for q in &o.questions {
        out.push_str(&format!("  question: {q}\n"));
    }
    for f in &o.files {
        out.push_str(&format!("\n--- {}\n{}", f.path, f.text));
    }
    for d in &checked.diagnostics {
        out.push_str(&format!("\n{d}"));
    }
    if let Some(preview) = checked.preview() {
        out.push_str(&format!("\nWhat merging it does:\n{preview}"));
    }
    if let Some(s) = &checked.summary {
        out.push_str(&format!("{}\n", s.line()));
    }
    out
}
