//! One chat request, answered on the reconcile worker: the only thread
//! that writes the daemon's clones, so the planner never races a
//! reconcile on the spec clone or the target repos it previews against.
//! It answers through [`Session`], as `druppie propose` does (with the
//! language-model planner when `[llm]` is configured): on the
//! spec clone a proposal builds on `[spec] branch` as last fetched
//! (what the last reconcile saw) and is pushed to `[spec] url`; on a
//! local checkout it builds on the tip of `[spec] branch` and is a
//! branch of that repo. Before the planner renders anything, the spec
//! passes the same render check in a child process that every revision
//! passes before the daemon renders it itself.

use super::Chat;
use super::text::{self, Reply};
use crate::daemon::check::CheckError;
use crate::daemon::reconcile::Reconciler;
use crate::daemon::source::SpecSource;
use crate::daemon::state::Shared;
use crate::git::Repo;
use crate::live::Sources;
use crate::planner::Request;
use crate::planner::propose::{Answer, ProposeError};
use crate::planner::session::{Session, SessionError};
use crate::planner::submit::SubmitError;

/// Why a request got no answer (not: why nothing was proposed, which the
/// answer says).
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the spec repo cannot take proposals")]
    Session(#[from] SessionError),
    #[error("the spec at {} does not pass the render check, so nothing is planned on it", .at.display())]
    Check {
        at: std::path::PathBuf,
        #[source]
        source: CheckError,
    },
    /// The clone fetched a revision it has not checked out (a reconcile
    /// stopped between the two): it is not planned on before the next
    /// reconcile has checked it.
    #[error("the spec clone is between two revisions; ask again after the next reconcile")]
    Moving,
    #[error("reading the audit trail")]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
}

impl ChatError {
    /// Whether asking again unchanged may get an answer.
    pub fn is_transient(&self) -> bool {
        match self {
            ChatError::Session(SessionError::Git(e)) => e.is_transient(),
            ChatError::Session(SessionError::Scratch(_)) => true,
            ChatError::Session(_) => false,
            ChatError::Check { source, .. } => source.is_transient(),
            ChatError::Moving => true,
            ChatError::Audit(e) => e.is_transient(),
            ChatError::Propose(e) => e.is_transient(),
        }
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
    let session = session(r, chat)?;
    let reply = match session.answer(request, true) {
        Ok(Answer::Catalog { query, blocks }) => text::catalog(&query, &blocks),
        Ok(Answer::Status { plan }) => {
            let trail = match Repo::discover(root) {
                Some(repo) => crate::audit::trusted(&repo, &r.signer.own_key())?.events,
                None => Vec::new(),
            };
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
    if let Some(branch) = reply.facts["opened"]["branch"].as_str() {
        tracing::info!(branch, "chat: proposal opened");
    }
    Ok(reply)
}

/// The planner's session on the daemon's spec source, after the render
/// check: the chat's and `/mcp`'s planner tools answer through it.
///
/// # Errors
/// The render check fails, or the spec repo cannot take proposals.
pub fn session(r: &Reconciler, chat: &Chat) -> Result<Session, ChatError> {
    render_check(r, chat)?;
    let sources = Sources {
        infra: None,
        repos: Some(r.cache.dir().to_owned()),
    };
    Ok(Session::new(
        r.source.root(),
        &chat.config,
        chat.forge_token.clone(),
        sources,
        chat.scrubber.clone(),
    )?
    .with_llm(chat.config.llm.clone().map(|settings| {
        crate::planner::llm::LlmPlanner::new(settings, chat.llm_key.clone(), chat.scrubber.clone())
    })))
}

/// Runs `job` on the reconcile worker and waits up to `patience` for it
/// to start (then for its end), from a thread that may block. `None`:
/// it did not start in time, and never runs.
pub fn on_worker<T: Send + 'static>(
    shared: &Shared,
    patience: std::time::Duration,
    job: impl FnOnce(&Reconciler) -> T + Send + 'static,
) -> Option<T> {
    use std::sync::atomic::{AtomicU8, Ordering};
    const QUEUED: u8 = 0;
    const STARTED: u8 = 1;
    const ABANDONED: u8 = 2;
    let progress = std::sync::Arc::new(AtomicU8::new(QUEUED));
    let (tx, rx) = std::sync::mpsc::channel();
    let theirs = progress.clone();
    shared.queue.job(Box::new(move |r| {
        if theirs
            .compare_exchange(QUEUED, STARTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let _ = tx.send(job(r));
        }
    }));
    match rx.recv_timeout(patience) {
        Ok(answer) => Some(answer),
        Err(_) => {
            if progress
                .compare_exchange(QUEUED, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return None;
            }
            rx.recv().ok()
        }
    }
}

/// Renders the spec in a child process, once per clean commit: a
/// template that would exhaust memory ends the child, not the daemon.
/// It is the spec the reconcile checks: the clone at the commit last
/// fetched (which the proposal builds on), or the local checkout as it
/// is on disk (whose `[spec] branch` the proposal builds on).
fn render_check(r: &Reconciler, chat: &Chat) -> Result<(), ChatError> {
    let Some(check) = &r.check else {
        return Ok(());
    };
    let root = r.source.root();
    let head = crate::git::head_commit(root);
    let clean = match &r.source {
        SpecSource::Remote { branch, .. } => {
            let fetched = Repo::discover(root)
                .and_then(|repo| repo.resolve(&format!("refs/remotes/origin/{branch}")).ok());
            if fetched != head {
                return Err(ChatError::Moving);
            }
            true
        }
        SpecSource::Local(_) => crate::spec::uncommitted(root).is_ok_and(|e| e.is_empty()),
    };
    let key = head.filter(|_| clean);
    let mut passed = chat.checked.lock().expect("checked lock");
    if key.is_some() && *passed == key {
        return Ok(());
    }
    check.run(root).map_err(|source| ChatError::Check {
        at: root.to_owned(),
        source,
    })?;
    *passed = key;
    Ok(())
}
