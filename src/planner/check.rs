//! Checking an outline as a hand-written change is checked: its files
//! are written over the spec as it is at the base commit, and that spec
//! is opened (loaded, validated), composed, rendered, checked against the
//! policies and diffed against the live repos, for the one plan the
//! outline touches. Only an outline whose spec validates, whose render
//! passes every policy and which has no open question is proposable.

use std::path::Path;

use serde::Serialize;

use super::{File, Outline};
use crate::diff::report::{self, Mask, Summary};
use crate::diff::{self, ChangeSets};
use crate::execution::{self, ExecutionPlan};
use crate::git::{ObjectId, Repo};
use crate::live::Sources;
use crate::spec::OpenError;

/// The spec revision a proposal builds on.
pub struct Base<'a> {
    pub repo: &'a Repo,
    /// Where the spec is inside the repo (`` for its root).
    pub prefix: &'a str,
    pub commit: ObjectId,
    /// The branch the proposal is to be merged into.
    pub branch: &'a str,
}

/// An outline, checked.
#[derive(Serialize)]
pub struct Checked {
    #[serde(flatten)]
    pub outline: Outline,
    /// The spec commit the files were checked on.
    pub base: String,
    /// The base branch.
    pub branch: String,
    /// Validation errors and warnings, located in the spec's files
    /// (`spec/plans/<name>.yaml:3:8`), as text.
    pub diagnostics: Vec<String>,
    /// Whether the spec with the files validates.
    pub valid: bool,
    /// The preview: what merging would change, summarised.
    pub summary: Option<Summary>,
    /// What merging would do, step by step.
    pub execution_plan: Option<ExecutionPlan>,
    /// The preview's change sets (masked), for the card and `--json`.
    #[serde(skip)]
    pub changes: Option<ChangeSets>,
}

impl Checked {
    /// Whether the proposal may be opened: it validates, no policy
    /// fails, nothing is unreadable, and nothing is left to ask.
    pub fn proposable(&self) -> bool {
        self.outline.proposable()
            && self.valid
            && self.summary.as_ref().is_some_and(|s| s.errors == 0)
    }

    /// Why it may not be opened, in one line; `None` when it may.
    pub fn refusal(&self) -> Option<String> {
        if self.outline.files.is_empty() && self.outline.questions.is_empty() {
            return Some("there is nothing to propose".to_owned());
        }
        if !self.outline.questions.is_empty() {
            return Some(format!(
                "{} to answer first",
                count(self.outline.questions.len(), "question")
            ));
        }
        if !self.valid {
            let errors = self
                .diagnostics
                .iter()
                .filter(|d| d.starts_with("error"))
                .count();
            return Some(format!(
                "the proposed spec does not validate ({})",
                count(errors, "error")
            ));
        }
        match &self.summary {
            Some(s) if s.errors > 0 => Some(format!(
                "the preview has {} (a failing policy or an unreadable repo)",
                count(s.errors, "error")
            )),
            None => Some("the proposed spec does not render".to_owned()),
            Some(_) => None,
        }
    }
}

fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Why an outline could not be checked at all (not: why it is invalid,
/// which [`Checked`] says).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot export spec commit {commit}")]
    Export {
        commit: ObjectId,
        #[source]
        source: crate::git::Error,
    },
    #[error("cannot write {path} into a scratch directory")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file outside `spec/plans/` and `spec/stacks/`: the planner
    /// writes nothing else.
    #[error("{path}: a planner only writes spec/plans/<name>.yaml and spec/stacks/<name>.yaml")]
    Outside { path: String },
    #[error("the spec at {commit} does not load")]
    Load {
        commit: ObjectId,
        #[source]
        source: crate::spec::LoadError,
    },
}

impl CheckError {
    pub fn is_transient(&self) -> bool {
        match self {
            CheckError::Export { source, .. } => source.is_transient(),
            CheckError::Write { .. } => true,
            CheckError::Outside { .. } => false,
            CheckError::Load { source, .. } => source.is_transient(),
        }
    }
}

/// Whether a planner may write `path`: `spec/plans/<label>.yaml` or
/// `spec/stacks/<label>.yaml`, nothing else.
pub fn writable(path: &str) -> bool {
    let Some((dir, file)) = path.rsplit_once('/') else {
        return false;
    };
    let Some(name) = file.strip_suffix(".yaml") else {
        return false;
    };
    matches!(dir, "spec/plans" | "spec/stacks") && crate::spec::names::dns_label(name).is_ok()
}

/// Checks `outline` on `base`, working in `scratch` (an empty private
/// directory), against the live repos of `sources`.
///
/// # Errors
/// The base cannot be exported or loaded, a file cannot be written, or
/// the outline writes outside the planner's two directories.
pub fn check(
    base: &Base<'_>,
    outline: Outline,
    sources: &Sources,
    limits: crate::template::Limits,
    scratch: &Path,
) -> Result<Checked, CheckError> {
    let dir = scratch.join("spec");
    if !outline.files.is_empty() {
        base.repo
            .export(base.commit, base.prefix, &dir)
            .map_err(|source| CheckError::Export {
                commit: base.commit,
                source,
            })?;
    }
    check_exported(base, outline, sources, limits, &dir)
}

/// [`check`] on `dir`, which holds the spec at the base as
/// [`crate::git::Repo::export`] wrote it and nothing else (the files are
/// written over it).
///
/// # Errors
/// As [`check`].
pub fn check_exported(
    base: &Base<'_>,
    outline: Outline,
    sources: &Sources,
    limits: crate::template::Limits,
    dir: &Path,
) -> Result<Checked, CheckError> {
    let mut checked = Checked {
        base: base.commit.to_string(),
        branch: base.branch.to_owned(),
        diagnostics: Vec::new(),
        valid: false,
        summary: None,
        execution_plan: None,
        changes: None,
        outline,
    };
    if checked.outline.files.is_empty() {
        return Ok(checked);
    }
    for File { path, text } in &checked.outline.files {
        if !writable(path) {
            return Err(CheckError::Outside { path: path.clone() });
        }
        let to = dir.join(path);
        // A stack other plans use is never rewritten by a proposal, nor
        // a plan other than the one it is about.
        let own_plan = checked
            .outline
            .plan
            .as_ref()
            .is_some_and(|p| *path == format!("spec/plans/{p}.yaml"));
        if to.exists() && !own_plan {
            checked.outline.questions.push(format!(
                "{path} exists already and is not this plan's: choose another name."
            ));
            return Ok(checked);
        }
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(to.parent().unwrap_or(dir))?;
            std::fs::write(&to, text)
        };
        write().map_err(|source| CheckError::Write {
            path: path.clone(),
            source,
        })?;
    }
    let options = crate::spec::revision::load_options(base.repo, base.prefix, base.commit);
    let scope = crate::compose::ComposeOptions {
        plan: checked.outline.plan.clone(),
        env: None,
        shards: None,
    };
    let opened = match crate::spec::open(dir, &options, &scope) {
        Ok(opened) => opened,
        Err(OpenError::Invalid(d) | OpenError::Selection(d)) => {
            checked.diagnostics = d.iter().map(|d| d.render(false)).collect();
            return Ok(checked);
        }
        Err(OpenError::Load(source)) => {
            return Err(CheckError::Load {
                commit: base.commit,
                source,
            });
        }
    };
    checked.valid = true;
    checked.diagnostics = opened
        .valid
        .warnings
        .iter()
        .map(|d| d.render(false))
        .collect();
    let options = diff::Options {
        sources,
        scope: &scope,
        spec_commit: None,
        limits,
        own_key: None,
    };
    match diff::diff(&opened.valid, &opened.selection, &options) {
        Ok(changes) => {
            let intent = report::intent(&opened.valid, checked.outline.plan.as_deref());
            checked.summary = Some(Summary::of(&changes));
            checked.execution_plan = Some(execution::plan(&changes, intent));
            checked.changes = Some(changes);
        }
        Err(d) => {
            checked.valid = false;
            checked
                .diagnostics
                .extend(d.iter().map(|d| d.render(false)));
        }
    }
    Ok(checked)
}

impl Checked {
    /// The preview as text without the diffs (`druppie preview` shows
    /// them), secrets masked.
    pub fn preview(&self) -> Option<String> {
        let changes = self.changes.as_ref()?;
        let mask = Mask::new(changes.secrets.iter().cloned());
        Some(report::listing(changes, &mask, false))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_planner_writes_only_plans_and_stacks() {
        for ok in ["spec/plans/permits.yaml", "spec/stacks/webapp-db.yaml"] {
            assert!(super::writable(ok), "{ok}");
        }
        for bad in [
            "spec/platform.yaml",
            "spec/plans/../platform.yaml",
            "spec/plans/a/b.yaml",
            "templates/x/infra/a.yaml.j2",
            "spec/policies/p.yaml",
            "spec/plans/Permits.yaml",
            "/spec/plans/x.yaml",
            "spec/plans/x.yml",
        ] {
            assert!(!super::writable(bad), "{bad}");
        }
    }
}
