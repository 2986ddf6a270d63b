//! Catching the audit trail up with the forges before applying:
//! commits druppie pushed that the trail lacks (a run stopped between
//! the push and the record) are recorded as `applied` or `proposed`;
//! every proposal merged since is recorded as `approved` when its
//! environment names no approvers or an approver approved it, as
//! `violation` otherwise; a pull request closed without merging is
//! `rejected`. A merged proposal is also `applied`: it is on the default
//! branch, which Flux applies. The verdict also goes onto the proposal:
//! a comment on its pull request, or a line in its git note.
//!
//! Who approved: in plain git, an approver is a principal of the spec's
//! allowed-signers file ([`APPROVER_KEYS`]) and the merge commit must be
//! signed by a key that file accepts for that principal (checked by
//! ssh-keygen, as git checks it); the committer's name and email count
//! for nothing. On Gitea and GitHub, the forge says who merged (and, on
//! GitHub, who approved in a review): an approver entry is that login,
//! or a team (`org/team`, or a team of `[forge] owner`) the forge says
//! the login is a member of.
//!
//! Only what druppie signed is druppie's: its commits, its proposals and
//! its events are recognised by its own key; whatever poses as druppie's
//! without that signature is ignored and reported.

use std::collections::BTreeSet;

use super::approvals::{Style, Target};
use super::{ApplyError, Cache, NOTES};
use crate::audit::{self, AuditError, Event, Kind};
use crate::forge::{Forge, ForgeError};
use crate::git::sign::{AllowedSigners, Signer, VerifyError};
use crate::git::write::Identity;
use crate::git::{ObjectId, Repo};
use crate::spec::load::APPROVER_KEYS;
use crate::spec::model::Platform;

/// Where the comment with druppie's verdict is found again.
pub const VERDICT_MARKER: &str = "<!-- druppie:verdict -->";

pub struct Trail<'a> {
    pub forge: &'a dyn Forge,
    pub cache: &'a Cache,
    pub signer: &'a Signer,
    pub identity: &'a Identity,
    pub spec_commit: Option<&'a str>,
    pub platform: &'a Platform,
    /// The spec's [`APPROVER_KEYS`], when it has one.
    pub approver_keys: Option<&'a AllowedSigners>,
    /// Only what concerns the plans of these shards is recorded; the
    /// others' holders record theirs.
    pub shards: Option<&'a crate::spec::Shards>,
}

/// The trail could not be caught up.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// git failed on a target repo's clone.
    #[error(transparent)]
    Repo(#[from] ApplyError),
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error("{repo}: cannot check the signature of merge {commit}")]
    Verify {
        repo: String,
        commit: String,
        #[source]
        source: VerifyError,
    },
}

impl TrailError {
    /// Whether the next run may succeed where this one failed: a forge
    /// that did not answer, a trail another writer held.
    pub fn is_transient(&self) -> bool {
        match self {
            TrailError::Audit(e) => e.is_transient(),
            TrailError::Repo(_) => false,
            TrailError::Forge(_) => true,
            TrailError::Verify { source, .. } => source.is_transient(),
        }
    }
}

/// What a catch-up recorded and what it refused to trust.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// One line per event recorded.
    pub recorded: Vec<String>,
    /// One line per commit ignored because druppie did not sign it.
    pub ignored: Vec<String>,
}

/// Who merged, as shown.
pub(super) fn actor(m: &super::approvals::Merged) -> String {
    match m.style {
        Style::Merge | Style::Squash => format!("{} <{}>", m.merger_name, m.merger_email),
        Style::FastForward => "a fast-forward (no merge commit)".to_owned(),
    }
}

/// A merge (or a rejection) to record.
pub(super) struct Verdict {
    pub(super) repo: String,
    pub(super) branch: String,
    /// Whoever merged or closed it, as shown.
    pub(super) actor: String,
    pub(super) plans: Vec<String>,
    pub(super) env: Option<String>,
    /// The merge commit, or the rejected proposal's commit.
    pub(super) commit: String,
    /// The proposal's commit.
    pub(super) proposal: Option<String>,
    /// The branch's tip when it may be deleted: all of it reached the
    /// default branch, or its pull request was closed.
    pub(super) retire: Option<String>,
    pub(super) merged: bool,
    /// Who approved, or what was missing for an approval.
    pub(super) approval: Result<Option<String>, String>,
}

impl Trail<'_> {
    /// Records what the trail lacks for `targets` (repo, default
    /// branch) through `writer`.
    ///
    /// # Errors
    /// The trail cannot be read or written, a clone cannot be read, a
    /// signature cannot be checked, or a forge cannot be asked.
    pub fn catch_up(
        &self,
        targets: &[(String, String)],
        writer: &mut audit::Writer,
    ) -> Result<CatchUp, TrailError> {
        let key = self.signer.own_key();
        let mut out = CatchUp::default();
        for (repo, branch) in targets {
            let path = self.cache.path(repo);
            if !path.exists() {
                continue;
            }
            let target = Target {
                name: repo,
                path: &path,
                default: branch,
                key: &key,
                email: &self.identity.email,
            };
            self.unrecorded(&target, writer, &mut out)?;
            let verdicts = match self.forge.pulls() {
                Some(_) => self.pull_verdicts(repo, writer.events())?,
                None => self.merge_verdicts(&target, writer.events(), &mut out.ignored)?,
            };
            for mut v in verdicts.into_iter().filter(|v| self.ours(&v.plans)) {
                // A rejection carries the proposal's own commit, which the
                // trail knows as proposed: tell the two apart by kind.
                let kinds: &[Kind] = if v.merged {
                    &[Kind::Approved, Kind::Violation]
                } else {
                    &[Kind::Rejected]
                };
                let recorded = writer.events().iter().any(|r| {
                    r.event.repo == v.repo
                        && r.event.commit.as_deref() == Some(&v.commit)
                        && kinds.contains(&r.event.kind)
                });
                if !recorded {
                    let marked = self.marked(&v)?;
                    if !marked.is_empty() && v.approval.is_ok() {
                        v.approval = Err(format!(
                            "merged with conflict markers in {}",
                            marked.join(", ")
                        ));
                    }
                    if let Some(line) = self.record_verdict(&v, writer)? {
                        out.recorded.push(line);
                    }
                }
                // Once its verdict is recorded the branch goes: the
                // next change to this plan and environment is a fresh
                // proposal.
                // Deleting is clean-up: a forge that refuses it (a
                // protected branch, a hook) or does not answer is said,
                // and the next run tries again; it never stops the run.
                match self.retire(&v) {
                    Ok(Some(line)) => out.recorded.push(line),
                    Ok(None) => {}
                    Err(e) => out.recorded.push(format!(
                        "{}: {} kept, not deleted (the next run tries again): {}",
                        v.repo,
                        v.branch,
                        crate::error::chain(&e)
                    )),
                }
            }
        }
        let mut seen = BTreeSet::new();
        out.ignored.retain(|l| seen.insert(l.clone()));
        Ok(out)
    }

    fn unrecorded(
        &self,
        target: &Target,
        writer: &mut audit::Writer,
        out: &mut CatchUp,
    ) -> Result<(), TrailError> {
        let known: BTreeSet<String> = writer
            .events()
            .iter()
            .filter(|r| r.event.repo == target.name)
            .filter_map(|r| r.event.commit.clone())
            .collect();
        let unrecorded = target.unrecorded(&known, &mut out.ignored)?;
        for u in unrecorded.iter().filter(|u| self.ours(&u.plans)) {
            let kind = if u.branch == target.default {
                Kind::Applied
            } else {
                Kind::Proposed
            };
            let event = Event {
                kind,
                branch: (kind == Kind::Proposed).then(|| u.branch.clone()),
                from: u.from.clone(),
                ..self.event(
                    target.name,
                    &u.plans,
                    u.env.as_ref(),
                    &self.identity.email,
                    &u.commit,
                )
            };
            if !writer
                .record(&event.with_promotion(), super::now())?
                .is_empty()
            {
                out.recorded.push(format!(
                    "{}: recorded {} of {} on {} (pushed by an earlier run)",
                    target.name,
                    kind.name(),
                    &u.commit[..12],
                    u.branch
                ));
            }
        }
        Ok(())
    }

    /// Whether a commit or proposal of `plans` is this run's to record:
    /// one of them is in its shards (a commit naming no plan is
    /// everyone's; recording it twice writes it once).
    fn ours(&self, plans: &[String]) -> bool {
        plans.is_empty() || self.shards.is_none_or(|s| plans.iter().any(|p| s.owns(p)))
    }

    /// The approvers an environment names.
    fn approvers(&self, env: Option<&String>) -> Vec<&str> {
        env.and_then(|e| self.platform.environments.get(e))
            .map(|s| s.approvers.iter().map(|a| a.value.as_str()).collect())
            .unwrap_or_default()
    }

    /// Who approved a plain-git merge: the first approver whose key (in
    /// [`APPROVER_KEYS`]) signed the merge commit; `Ok(None)` when the
    /// environment names no approvers; `Err` says what is missing.
    pub(super) fn signed_approval(
        &self,
        target: &Target,
        m: &super::approvals::Merged,
    ) -> Result<Result<Option<String>, String>, TrailError> {
        let approvers = self.approvers(m.env.as_ref());
        if approvers.is_empty() {
            return Ok(Ok(None));
        }
        let list = approvers.join(", ");
        if m.style == Style::FastForward {
            return Ok(Err(format!(
                "the default branch was fast-forwarded to the proposal, so no merge commit carries the signature of an approver ({list})"
            )));
        }
        let Some(keys) = self.approver_keys else {
            return Ok(Err(format!(
                "the spec has no {APPROVER_KEYS} with the keys of the approvers ({list})"
            )));
        };
        let verify = |source| TrailError::Verify {
            repo: target.name.to_owned(),
            commit: m.merge.clone(),
            source,
        };
        let repo = Repo::open(target.path)
            .ok()
            .flatten()
            .ok_or_else(|| ApplyError::not_cached(target.name))?;
        let id = ObjectId::from_hex(m.merge.as_bytes())
            .map_err(|_| ApplyError::bad_commit(target.name, &m.merge))?;
        let what = if m.style == Style::Squash {
            "the commit that brought the proposal in without merging it (a squash or rebase)"
        } else {
            "the merge commit"
        };
        let Some(signed) = repo.signed(id).map_err(verify)? else {
            return Ok(Err(format!(
                "{what} is not signed; an approval is a merge signed with the key of an approver ({list}) listed in {APPROVER_KEYS}"
            )));
        };
        for approver in &approvers {
            if signed.signed_as(keys, approver).map_err(verify)? {
                return Ok(Ok(Some((*approver).to_owned())));
            }
        }
        Ok(Err(format!(
            "{what} is not signed by a key that {APPROVER_KEYS} accepts for an approver ({list})"
        )))
    }

    /// Who approved a merged pull request: the merger or an approving
    /// reviewer whose login is an approver entry, or who the forge says
    /// is a member of a team an entry names.
    pub(super) fn forge_approval(
        &self,
        env: Option<&String>,
        merger: &str,
        reviewers: &[String],
    ) -> Result<Result<Option<String>, String>, TrailError> {
        let approvers = self.approvers(env);
        if approvers.is_empty() {
            return Ok(Ok(None));
        }
        let logins = std::iter::once(merger).chain(reviewers.iter().map(String::as_str));
        for login in logins.filter(|l| !l.is_empty()) {
            for entry in &approvers {
                let member = match self.forge.teams() {
                    _ if entry.eq_ignore_ascii_case(login) => true,
                    Some(teams) => teams.is_member(entry, login)?,
                    None => false,
                };
                if member {
                    return Ok(Ok(Some(if entry.eq_ignore_ascii_case(login) {
                        login.to_owned()
                    } else {
                        format!("{login}, member of {entry}")
                    })));
                }
            }
        }
        let merger = if merger.is_empty() {
            "nobody the forge names"
        } else {
            merger
        };
        Ok(Err(format!(
            "{merger} is not an approver ({}), nor a member of an approving team, and no approving review is",
            approvers.join(", ")
        )))
    }

    /// Records the verdict (and, for a merge, the `applied` event of the
    /// merge commit) and tells the proposal; `None` when another run
    /// recorded the verdict first.
    fn record_verdict(
        &self,
        v: &Verdict,
        writer: &mut audit::Writer,
    ) -> Result<Option<String>, TrailError> {
        let kind = match (v.merged, &v.approval) {
            (false, _) => Kind::Rejected,
            (true, Ok(_)) => Kind::Approved,
            (true, Err(_)) => Kind::Violation,
        };
        let event = Event {
            kind,
            branch: Some(v.branch.clone()),
            ..self.event(&v.repo, &v.plans, v.env.as_ref(), &v.actor, &v.commit)
        };
        let fresh = !writer
            .record(std::slice::from_ref(&event), super::now())?
            .is_empty();
        if v.merged {
            // Merged is on the default branch, which Flux applies.
            let applied = Event {
                kind: Kind::Applied,
                ..event.clone()
            };
            writer.record(&[applied], super::now())?;
            // An approved proposal that promotes a change makes it live
            // here after the environment before.
            if let (Kind::Approved, Some(from)) =
                (kind, super::verdicts::promoted_from(writer.events(), v))
            {
                let promoted = Event {
                    kind: Kind::Promoted,
                    from: Some(from),
                    ..event.clone()
                };
                writer.record(&[promoted], super::now())?;
            }
        }
        if !fresh {
            return Ok(None);
        }
        let verdict = match (&v.approval, kind) {
            (_, Kind::Rejected) => format!("rejected: closed without merging by {}", v.actor),
            (Ok(Some(approver)), _) if *approver != v.actor => {
                format!("approved: merged by {} (approver: {approver})", v.actor)
            }
            (Ok(_), _) => format!("approved: merged by {}", v.actor),
            (Err(why), _) => format!("VIOLATION: merged by {}: {why}", v.actor),
        };
        let line = format!("{verdict} at {} in {}", event.time, v.commit);
        self.tell(v, &line)?;
        Ok(Some(format!("{}: {}: {line}", v.repo, v.branch)))
    }

    /// Puts the verdict on the proposal: a comment on its pull request,
    /// or a line added to its git note.
    fn tell(&self, v: &Verdict, line: &str) -> Result<(), TrailError> {
        if let Some(pulls) = self.forge.pulls() {
            let Some(pull) = pulls.find(&v.repo, &v.branch)? else {
                return Ok(());
            };
            return Ok(pulls.comment(&v.repo, pull.number, VERDICT_MARKER, line)?);
        }
        let path = self.cache.path(&v.repo);
        let cached = Repo::open(&path)
            .ok()
            .flatten()
            .ok_or_else(|| ApplyError::not_cached(&v.repo))?;
        let Some(proposal) = v.proposal.as_deref() else {
            return Ok(());
        };
        let proposal = ObjectId::from_hex(proposal.as_bytes())
            .map_err(|_| ApplyError::bad_commit(&v.repo, proposal))?;
        let earlier = cached
            .note(NOTES, proposal)
            .map_err(ApplyError::git(&v.repo, "read druppie's notes"))?
            .unwrap_or_default();
        super::note(
            self.cache,
            &cached,
            &v.repo,
            &self.forge.url(&v.repo),
            proposal,
            &format!("{earlier}\n{line}\n"),
            self.identity,
            self.signer,
            super::now(),
        )?;
        Ok(())
    }

    fn event(
        &self,
        repo: &str,
        plans: &[String],
        env: Option<&String>,
        actor: &str,
        commit: &str,
    ) -> Event {
        Event {
            kind: Kind::Applied,
            time: super::stamp(super::now()),
            actor: actor.to_owned(),
            plans: plans.to_vec(),
            env: env.cloned(),
            repo: repo.to_owned(),
            commit: Some(commit.to_owned()),
            branch: None,
            spec_commit: self.spec_commit.map(str::to_owned),
            from: None,
        }
    }
}
