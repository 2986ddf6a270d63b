//! `druppie preview`: what merging a spec change would change in every
//! project and infra repo. Both revisions are rendered; the base's render
//! stands in for the live repos, and the head is diffed against it.

use std::path::Path;

use super::{CommandError, CommandResult, Context, Ui};
use crate::diff;
use crate::git::{ObjectId, Repo};
use crate::live::Sources;
use crate::spec::LoadOptions;

/// Show the multi-repo diff between two revisions of the spec repo: what
/// merging `--head` onto `--base` would change in every target repo. Exit
/// code as for `diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision the change is merged onto (e.g. `main`)
    #[arg(long)]
    pub base: String,
    /// The proposed revision [default: the checkout as it is on disk]
    #[arg(long)]
    pub head: Option<String>,
    #[command(flatten)]
    pub select: super::SelectArgs,
    /// Print the JSON report
    #[arg(long)]
    pub json: bool,
    /// Also post the preview as one comment on this pull request of the
    /// spec repo (`[spec] url`), updated in place on later runs
    #[arg(long, value_name = "N")]
    pub pr: Option<i64>,
}

/// Where the preview comment is found again.
const MARKER: &str = "<!-- druppie:preview -->";

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let repo = Repo::discover(&ctx.spec_root).ok_or_else(|| {
        CommandError::user(format!(
            "{} is not in a git repository: preview compares two of its revisions",
            ctx.spec_root.display()
        ))
    })?;
    let prefix = spec_prefix(&repo, &ctx.spec_root)?;
    // Private (mode 0700, a random name) and removed when dropped.
    let tmp = tempfile::Builder::new()
        .prefix("druppie-preview-")
        .tempdir()
        .map_err(|e| CommandError::user(format!("cannot make a scratch directory: {e}")))?;
    preview(ctx, ui, args, &repo, &prefix, tmp.path())
}

fn preview(
    ctx: &Context,
    ui: &Ui,
    args: &Args,
    repo: &Repo,
    prefix: &str,
    tmp: &Path,
) -> CommandResult {
    let export = |rev: &str, name: &str| -> Result<(crate::spec::Opened, ObjectId), CommandError> {
        let commit = repo.resolve(rev).map_err(CommandError::failed)?;
        let select = match name {
            "base" => Default::default(),
            _ => args.select.clone(),
        };
        let opened = open_at(ui, repo, prefix, commit, &tmp.join(name), &select)?;
        Ok((opened, commit))
    };
    // The base, rendered into plain directories: the "live" repos.
    let (base, base_commit) = export(&args.base, "base")?;
    let base_commit = base_commit.to_string();
    let limits = ctx.config.render.limits();
    let desired = crate::compose::compose(&base.valid, &base.selection, &limits)
        .and_then(|resolved| {
            crate::render::render(&base.valid, &resolved, Some(&base_commit), &limits)
        })
        .map_err(|d| {
            ui.diagnostics(&d);
            CommandError::user(format!("the spec at `{}` does not render", args.base))
        })?;
    let rendered = tmp.join("rendered");
    crate::render::write_out(&desired, &rendered).map_err(|_| {
        CommandError::user(format!(
            "cannot write the render of `{}` into a scratch directory",
            args.base
        ))
    })?;
    drop((desired, base));
    // The head, diffed against it.
    let (head, head_commit) = match &args.head {
        Some(rev) => {
            let (opened, commit) = export(rev, "head")?;
            (opened, Some(commit.to_string()))
        }
        None => (
            super::open(ctx, ui, &LoadOptions::default(), &args.select)?,
            None,
        ),
    };
    let sources = Sources {
        infra: None,
        repos: Some(rendered),
    };
    let scope = args.select.options();
    let options = diff::Options {
        sources: &sources,
        scope: &scope,
        spec_commit: head_commit.as_deref(),
        limits,
        own_key: None,
    };
    let mut changes = diff::diff(&head.valid, &head.selection, &options)?;
    // The live side is the base's render in the scratch directory: say so,
    // not where it happens to be.
    for cs in &mut changes.sets {
        cs.source = format!("as rendered at {}", args.base);
    }
    let intent = format!(
        "merge {} onto {}",
        args.head.as_deref().unwrap_or("the checkout"),
        args.base
    );
    if let Some(pr) = args.pr {
        post(ctx, &changes, &intent, pr)?;
    }
    Ok(super::diff::print_changes(ui, &changes, args.json, intent))
}

/// Posts (or updates) the preview comment on pull request `pr` of the
/// spec repo.
fn post(
    ctx: &Context,
    changes: &diff::ChangeSets,
    intent: &str,
    pr: i64,
) -> Result<(), CommandError> {
    let forge = super::apply::forge(ctx).map_err(CommandError::failed)?;
    let Some(pulls) = forge.pulls() else {
        return Err(CommandError::hinted(
            "--pr needs a forge with pull requests",
            "set `[forge] kind = \"gitea\"` or `\"github\"` in druppie.toml",
        ));
    };
    let repo = spec_repo(ctx.config.spec.url.as_deref())?;
    let mask = diff::report::Mask::new(changes.secrets.iter().cloned());
    let body = diff::report::comment(
        &format!("**druppie preview**: what merging this changes ({intent})"),
        changes,
        &mask,
        pulls.body_limit(),
    );
    pulls
        .comment(&repo, pr, MARKER, &body)
        .map_err(CommandError::failed)
}

/// `owner/name` of the spec repo from its URL
/// (`https://host/owner/name.git`, `git@host:owner/name.git`).
fn spec_repo(url: Option<&str>) -> Result<String, CommandError> {
    let url = url.ok_or_else(|| {
        CommandError::hinted(
            "--pr needs the spec repo on the forge",
            "set `[spec] url` in druppie.toml",
        )
    })?;
    crate::forge::owner_and_name(url).ok_or_else(|| {
        CommandError::user(format!(
            "`[spec] url` = {url:?} does not name an owner and a repo"
        ))
    })
}

/// Opens the spec as it is at `commit` of `repo` (`prefix`: where the
/// spec is inside it), exported into `dir`, and shows its warnings.
///
/// # Errors
/// The revision cannot be exported, or its spec does not open.
pub(crate) fn open_at(
    ui: &Ui,
    repo: &Repo,
    prefix: &str,
    commit: ObjectId,
    dir: &Path,
    select: &super::SelectArgs,
) -> Result<crate::spec::Opened, CommandError> {
    let opened = match crate::spec::revision::open_at(repo, prefix, commit, dir, &select.options())
    {
        Ok(opened) => opened,
        Err(crate::spec::revision::RevisionError::Open(e)) => return Err(e.into()),
        Err(e) => return Err(CommandError::failed(e)),
    };
    ui.diagnostics(&opened.valid.warnings);
    Ok(opened)
}

/// Where the spec checkout is inside its repository (`` for the root).
pub(crate) fn spec_prefix(repo: &Repo, spec_root: &Path) -> Result<String, CommandError> {
    crate::spec::revision::prefix(repo, spec_root).map_err(|e| CommandError::user(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_spec_repo_is_named_by_its_url() {
        for url in [
            "https://git.example.org/platform/spec.git",
            "git@github.com:platform/spec.git",
            "ssh://git@git.example.org:2222/platform/spec/",
        ] {
            assert_eq!(
                super::spec_repo(Some(url)).unwrap(),
                "platform/spec",
                "{url}"
            );
        }
        assert!(super::spec_repo(Some("spec")).is_err());
        assert!(super::spec_repo(None).is_err());
    }
}
