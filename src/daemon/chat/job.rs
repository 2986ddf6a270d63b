//! One chat request, answered on the reconcile worker: the only thread
//! that writes the daemon's clones, so the planner never races a
//! reconcile on the spec clone or the target repos it previews against.
//! The planner plans on the spec as the last reconcile left it (the
//! clone's checkout of `[spec] branch`; a local checkout's `[spec]
//! branch`), after the same render check in a child process that every
//! revision passes before the daemon renders it itself.

use std::path::Path;

use super::Chat;
use super::text::{self, Reply};
use crate::daemon::check::CheckError;
use crate::daemon::reconcile::Reconciler;
use crate::daemon::source::SpecSource;
use crate::daemon::state::Shared;
use crate::git::{ObjectId, Repo};
use crate::live::Sources;
use crate::planner::check::Base;
use crate::planner::propose::{Answer, How, ProposeError, answer};
use crate::planner::submit::{self, Opened, SubmitError, Target};
use crate::planner::{Checked, Request};

/// Why a request got no answer (not: why nothing was proposed, which the
/// answer says).
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{} is not in a git repository", .0.display())]
    NoRepo(std::path::PathBuf),
    #[error("where the spec is in its repository")]
    Prefix(#[from] crate::spec::revision::RevisionError),
    #[error(
        "the spec repo has no branch `{0}`: set `[spec] branch` to the branch proposals are merged into"
    )]
    NoBranch(String),
    #[error("the spec clone has no commit checked out")]
    NoCommit,
    #[error("reading the spec repo")]
    Git(#[from] crate::git::Error),
    #[error("cannot make a scratch directory")]
    Scratch(#[source] std::io::Error),
    #[error("the spec at {commit} does not pass the render check, so nothing is planned on it")]
    Check {
        commit: ObjectId,
        #[source]
        source: CheckError,
    },
    #[error("reading the audit trail")]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
}

impl ChatError {
    /// Whether asking again unchanged may get an answer.
    pub fn is_transient(&self) -> bool {
        match self {
            ChatError::Prefix(e) => e.is_transient(),
            ChatError::Git(e) => e.is_transient(),
            ChatError::Scratch(_) => true,
            ChatError::Check { source, .. } => source.is_transient(),
            ChatError::Audit(e) => e.is_transient(),
            ChatError::Propose(e) => e.is_transient(),
            ChatError::NoRepo(_) | ChatError::NoBranch(_) | ChatError::NoCommit => false,
        }
    }
}

/// How the daemon's planner answers, apart from the request: the one
/// place `How` is made.
fn how<'a>(
    sources: &'a Sources,
    limits: crate::template::Limits,
    open: &'a dyn Fn(&Checked) -> Result<Opened, SubmitError>,
) -> How<'a> {
    How {
        sources,
        limits,
        open: Some(open),
    }
}

/// Answers `request` through the planner.
///
/// # Errors
/// [`ChatError`].
pub fn reply(
    r: &Reconciler,
    shared: &Shared,
    chat: &Chat,
    request: &Request,
) -> Result<Reply, ChatError> {
    let root = r.source.root();
    let repo = Repo::discover(root).ok_or_else(|| ChatError::NoRepo(root.to_owned()))?;
    let prefix = crate::spec::revision::prefix(&repo, root)?;
    let (branch, commit) = match &r.source {
        SpecSource::Remote { branch, .. } => (
            branch.clone(),
            crate::git::head_commit(root).ok_or(ChatError::NoCommit)?,
        ),
        SpecSource::Local(_) => match repo.branch_head(&chat.branch)? {
            Some(head) => (chat.branch.clone(), head.commit),
            None => return Err(ChatError::NoBranch(chat.branch.clone())),
        },
    };
    let scratch = || {
        tempfile::Builder::new()
            .prefix("druppie-chat-")
            .tempdir()
            .map_err(ChatError::Scratch)
    };
    render_check(
        r,
        chat,
        &repo,
        &prefix,
        commit,
        &scratch()?.path().join("spec"),
    )?;
    let base = Base {
        repo: &repo,
        prefix: &prefix,
        commit,
        branch: &branch,
    };
    let sources = Sources {
        infra: None,
        repos: Some(r.cache.dir().to_owned()),
    };
    let target = match &r.source {
        SpecSource::Remote { url, .. } => Target::Remote {
            url,
            git_env: r.forge.git_env(),
            pulls: r.forge.pulls().filter(|_| chat.spec_repo.is_some()),
            repo: chat.spec_repo.as_deref().unwrap_or_default(),
        },
        SpecSource::Local(_) => Target::Local,
    };
    let limit = r.forge.pulls().map_or(60_000, |p| p.body_limit());
    let open = |checked: &Checked| {
        submit::submit(
            &base,
            checked,
            &target,
            Some(&r.signer),
            &r.identity,
            &chat.scrubber,
            limit,
        )
    };
    let tmp = scratch()?;
    let answered = answer(&base, request, &how(&sources, r.limits, &open), tmp.path());
    let reply = match answered {
        Ok(Answer::Catalog { query, blocks }) => text::catalog(&query, &blocks),
        Ok(Answer::Status { plan }) => {
            let trail = crate::audit::trusted(&repo, &r.signer.own_key())?.events;
            let view = shared.view.lock().expect("view lock");
            text::status(
                plan.as_deref(),
                &view.statuses,
                &view.freight,
                &trail,
                view.last_error.as_deref(),
            )
        }
        Ok(Answer::Proposal {
            checked,
            opened,
            refused,
        }) => {
            let refused = refused.or_else(|| checked.refusal());
            text::proposal(&checked, opened.as_ref(), refused.as_deref())
        }
        Err(ProposeError::Submit(SubmitError::Exists { plan, branch })) => {
            text::exists(&plan, &branch)
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(Some(opened)) = reply.facts.get("opened").map(|o| o.get("branch")) {
        tracing::info!(branch = %opened, "chat: proposal opened");
    }
    Ok(reply)
}

/// Renders the spec at `commit` in a child process, once per commit: a
/// template that would exhaust memory ends the child, not the daemon.
fn render_check(
    r: &Reconciler,
    chat: &Chat,
    repo: &Repo,
    prefix: &str,
    commit: ObjectId,
    dir: &Path,
) -> Result<(), ChatError> {
    let Some(check) = &r.check else {
        return Ok(());
    };
    let mut passed = chat.checked.lock().expect("checked lock");
    if *passed == Some(commit) {
        return Ok(());
    }
    // The clone is checked out at the commit, clean, with its history
    // (pins read it); a local checkout may have moved on or be edited.
    let at = match &r.source {
        SpecSource::Remote { .. } => r.source.root(),
        SpecSource::Local(_) => {
            repo.export(commit, prefix, dir)?;
            dir
        }
    };
    check
        .run(at)
        .map_err(|source| ChatError::Check { commit, source })?;
    *passed = Some(commit);
    Ok(())
}
