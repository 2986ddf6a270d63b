//! `status`: where each plan stands, per environment in promotion order
//! and per project repo: its live "freight" and what waits where.
//!
//! - **Live freight** is read from the target's default branch: the
//!   plan's lock (`<env path>/<plan>/.druppie-lock.yaml` in the infra
//!   repo, the root lock of a project repo) gives the spec commit, the
//!   block versions and the digest of what is live, computed by
//!   [`crate::diff::freight_digest`], the function that computes a
//!   render's digest: the two are equal exactly when the live locks are
//!   the ones that render wrote.
//! - **When and by whom**: the commit that made the lock what it is
//!   (the newest `applied`, `approved` or `violation` event's commit that
//!   holds it; without one, the newest commit on the default branch's
//!   first-parent line whose parent had another lock), and the audit
//!   trail's events on that commit: `applied` (druppie committed),
//!   `approved` or `violation` (a person merged), `verified` or `failed`
//!   (the cluster checked it). Only events druppie signed are given.
//! - **What waits where** is the [`ExecutionPlan`]'s step for the target,
//!   as `diff --json` and `apply` have it; nothing here decides it again.
//!
//! Nothing here prints or writes.

mod landing;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::{Kind, Recorded};
use crate::diff::{ChangeSet, ChangeSets};
use crate::execution::{Action, Cause, ExecutionPlan, Status as PlanState};
use crate::git::history::Reader;
use crate::git::{ObjectId, Repo};
use crate::live::{LiveRepo, Sources};
use crate::lock::{LOCK_FILE, Lock};
use crate::render::{RepoKind, join};
use crate::spec::model::{Severity, Trust};
use crate::spec::{Selection, Validated};

pub use landing::HISTORY_LIMIT;

/// Every selected plan, and what could not be read.
#[derive(Debug, Default)]
pub struct Report {
    pub plans: Vec<PlanStatus>,
    /// Each a repo (and path) that could not be read; what it holds is
    /// shown as unknown.
    pub errors: Vec<StatusError>,
}

/// One plan: its environments in promotion order, then its project repos.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    pub plan: String,
    pub environments: Vec<EnvStatus>,
    pub projects: Vec<ProjectStatus>,
}

/// The plan in one environment of the infra repo.
#[derive(Debug, Clone, Serialize)]
pub struct EnvStatus {
    pub env: String,
    pub trust: Trust,
    pub repo: String,
    /// What is live there; `None`: nothing yet.
    pub live: Option<Freight>,
    pub next: Next,
}

/// The plan's project repo.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectStatus {
    pub repo: String,
    pub live: Option<Freight>,
    pub next: Next,
}

/// What is live in a target: Kargo's freight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Freight {
    /// The spec commit its lock names.
    pub spec_commit: Option<String>,
    /// [`crate::diff::freight_digest`] of the live lock, hex.
    pub digest: String,
    /// The blocks and versions it was rendered from.
    pub blocks: Vec<crate::lock::LockedComponent>,
    /// The default-branch commit that made it live; `None` in a plain
    /// directory, or, with no event on the trail, further back than
    /// [`HISTORY_LIMIT`] commits.
    pub commit: Option<String>,
    /// How it went live, from the audit trail.
    pub went_live: Option<Landed>,
    /// The environment it was promoted from, when a `promoted` event
    /// on that commit says so.
    pub promoted_from: Option<String>,
    /// The cluster's verdict on that commit, from the audit trail.
    pub verification: Option<Landed>,
}

/// An event of the trail about the commit that made freight live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Landed {
    /// `applied` (druppie committed it), `approved` or `violation` (a
    /// person merged it); `verified` or `failed`.
    pub event: Kind,
    /// Who: druppie's identity, or the person who merged.
    pub by: String,
    /// RFC 3339, as recorded.
    pub time: String,
}

/// What waits in a target, from the ExecutionPlan's step for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Next {
    /// Nothing to write: the target matches the spec.
    UpToDate,
    /// A commit straight to the default branch is pending.
    Commit { files: usize },
    /// A proposal: opened or rebuilt by the next apply (`already`
    /// false), or holding this change and waiting for a merge.
    Proposed {
        branch: String,
        already: bool,
        files: usize,
    },
    /// A person pushed to the proposal: druppie leaves it alone.
    Held { branch: String, by: String },
    /// The change waits to be live in an earlier environment first;
    /// `open`: a proposal branch there still holds an earlier change,
    /// which may be merged meanwhile.
    Waiting {
        on: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        open: Option<String>,
    },
    /// This change was closed without merging; not proposed again.
    Rejected { branch: String },
    /// Nothing is written, and why (only lock files change, a branch in
    /// the way).
    Nothing { reason: String },
    /// An `observe` environment: shown, never written.
    Observe { files: usize },
    /// A policy failed (or a repo could not be read): nothing is
    /// written. `findings`: the errors on this target's own files.
    Blocked { findings: usize },
    /// The target could not be read.
    Unknown,
}

/// A live target that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Live(#[from] crate::live::Error),
    #[error("{repo}:{path}: not a lock this druppie reads")]
    Lock {
        repo: String,
        path: String,
        #[source]
        source: Box<crate::lock::LockParseError>,
    },
    #[error("{repo}: cannot read the history of {path}")]
    History {
        repo: String,
        path: String,
        #[source]
        source: crate::git::Error,
    },
}

/// Where each selected plan stands, as `druppie status` shows it:
/// `changes` (the diff of the selection) waiting where verification is
/// asked as `apply` waits, planned, and read beside the live locks and
/// `events` (the trail). Also every error met, one line each: a repo the
/// diff could not read, a lock the status could not.
pub fn gated(
    valid: &Validated,
    selection: &Selection,
    changes: &mut ChangeSets,
    sources: &Sources,
    events: &[Recorded],
) -> (Report, Vec<String>) {
    if let Some(deployment) = &valid.deployment {
        crate::execution::gate(changes, events, &deployment.platform);
    }
    let plan = crate::execution::plan(changes, String::new());
    let report = status(valid, selection, changes, &plan, sources, events);
    let errors = changes
        .errors
        .iter()
        .map(ToString::to_string)
        .chain(report.errors.iter().map(|e| crate::error::chain(e)))
        .collect();
    (report, errors)
}

/// Where each plan of `selection` stands: `changes` is a diff over the
/// plans (every environment), `plan` its ExecutionPlan, `sources` where
/// the live repos are, `events` the audit trail druppie trusts.
pub fn status(
    valid: &Validated,
    selection: &Selection,
    changes: &ChangeSets,
    plan: &ExecutionPlan,
    sources: &Sources,
    events: &[Recorded],
) -> Report {
    let mut report = Report::default();
    let Some(deployment) = &valid.deployment else {
        return report;
    };
    let platform = &deployment.platform;
    let mut envs_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for pick in valid.picks(selection) {
        if !envs_of.contains_key(pick.plan_name()) {
            order.push(pick.plan_name());
        }
        envs_of
            .entry(pick.plan_name())
            .or_default()
            .push(pick.env_name());
    }
    let look = Look { changes, plan };
    let index = landing::Index::new(events);
    let infra = &platform.infra.repo.value;
    // Each plan is read on its own, on every core; each thread opens the
    // repos once.
    let read = crate::par::map_init(
        &order,
        None,
        || Repos {
            sources,
            infra,
            open: BTreeMap::new(),
            errors: Vec::new(),
        },
        |repos, name| {
            let at = Plan {
                platform,
                changes,
                envs: &envs_of[name],
                name,
            };
            let plan = at.status(repos, &look, &index);
            (plan, std::mem::take(&mut repos.errors))
        },
    );
    for (plan, errors) in read {
        report.plans.push(plan);
        report.errors.extend(errors);
    }
    report
}

/// One plan of a status, with what it is read against.
struct Plan<'a> {
    platform: &'a crate::spec::model::Platform,
    changes: &'a ChangeSets,
    /// The environments it is selected in.
    envs: &'a [&'a str],
    name: &'a str,
}

impl Plan<'_> {
    /// Where the plan stands: its environments in the diff's order, then
    /// its project repos.
    fn status(
        &self,
        repos: &mut Repos<'_>,
        look: &Look<'_>,
        index: &landing::Index<'_>,
    ) -> PlanStatus {
        let (platform, changes, name) = (self.platform, self.changes, self.name);
        let mut environments = Vec::new();
        for env in changes
            .order
            .iter()
            .filter(|e| self.envs.contains(&e.as_str()))
        {
            let Some(settings) = platform.environments.get(env) else {
                continue;
            };
            let cs = changes.sets.iter().find(|cs| {
                cs.kind == RepoKind::Infra && cs.env.as_ref() == Some(env) && is_plan(cs, name)
            });
            let dir = crate::spec::names::plan_dir(&settings.path.value, name);
            let also = [crate::spec::names::flux_plan_dir(env, name)];
            let live = cs.and_then(|cs| {
                let at = Place {
                    repo: &cs.repo,
                    branch: &cs.branch,
                    env: Some(env),
                    plan: name,
                    dir: &dir,
                    also: &also,
                };
                repos.freight(&at, index)
            });
            environments.push(EnvStatus {
                env: env.clone(),
                trust: settings.trust,
                repo: platform.infra.repo.value.clone(),
                live,
                next: cs.map_or(Next::Unknown, |cs| look.next(cs, name)),
            });
        }
        let mut projects = Vec::new();
        for cs in changes
            .sets
            .iter()
            .filter(|cs| cs.kind == RepoKind::Project && is_plan(cs, name))
        {
            let at = Place {
                repo: &cs.repo,
                branch: &cs.branch,
                env: None,
                plan: name,
                dir: "",
                also: &[],
            };
            projects.push(ProjectStatus {
                repo: cs.repo.clone(),
                live: repos.freight(&at, index),
                next: look.next(cs, name),
            });
        }
        PlanStatus {
            plan: name.to_owned(),
            environments,
            projects,
        }
    }
}

fn is_plan(cs: &ChangeSet, plan: &str) -> bool {
    cs.plans.iter().any(|p| p == plan)
}

/// A plan's location in a target.
struct Place<'a> {
    repo: &'a str,
    branch: &'a str,
    env: Option<&'a str>,
    plan: &'a str,
    /// The directory its lock is in (`""`: the repo's root).
    dir: &'a str,
    /// Its other locked directories there (in the infra repo, its Flux
    /// directory), whose files count in the digest.
    also: &'a [String],
}

/// A live repo's history, and a reader of it whose cache keeps the
/// trees it read.
type History = (Repo, Reader);

/// The live repos, each opened once.
struct Repos<'a> {
    sources: &'a Sources,
    infra: &'a str,
    /// Each repo as read, with its history when it is a git repository.
    open: BTreeMap<String, Option<(LiveRepo, Option<History>)>>,
    /// What could not be read since the last plan's status was taken.
    errors: Vec<StatusError>,
}

impl Repos<'_> {
    /// The freight at `at`; `None` when it holds no lock, or it cannot
    /// be read (the error is kept).
    fn freight(&mut self, at: &Place<'_>, index: &landing::Index<'_>) -> Option<Freight> {
        match self.read(at, index) {
            Ok(freight) => freight,
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    fn read(
        &mut self,
        at: &Place<'_>,
        index: &landing::Index<'_>,
    ) -> Result<Option<Freight>, StatusError> {
        if !self.open.contains_key(at.repo) {
            let path = self.sources.locate(at.repo, self.infra);
            let live = LiveRepo::open(at.repo, path.as_deref(), at.branch).ok();
            let opened = live.map(|live| {
                let history = match (&live.path, live.has_history()) {
                    (Some(p), true) => Repo::open(p).ok().flatten().map(|r| {
                        let reader = r.reader();
                        (r, reader)
                    }),
                    _ => None,
                };
                (live, history)
            });
            self.open.insert(at.repo.to_owned(), opened);
        }
        let Some((repo, history)) = self.open.get(at.repo).and_then(Option::as_ref) else {
            // Unreadable: the diff said so already.
            return Ok(None);
        };
        let reader = history.as_ref().map(|(_, reader)| reader);
        let Some((lock_path, lock_id, lock)) = read_lock(repo, reader, at.dir)? else {
            return Ok(None);
        };
        // The plan's other locations there (its Flux directory) count in
        // the digest as they count in the render's.
        let mut others = Vec::new();
        for dir in at.also {
            if let Some((_, id, other)) = read_lock(repo, reader, dir)? {
                others.push((dir.as_str(), other, id));
            }
        }
        let digest = crate::diff::freight_digest(
            std::iter::once((at.dir, &lock, Some(lock_id)))
                .chain(others.iter().map(|(dir, l, id)| (*dir, l, Some(*id)))),
        );
        let commit = match (history, repo.base) {
            (Some((history, reader)), Some(tip)) => {
                let events = index.of(at);
                landing::commit(history, reader, tip, (&lock_path, lock_id), events).map_err(
                    |source| StatusError::History {
                        repo: at.repo.to_owned(),
                        path: lock_path.clone(),
                        source,
                    },
                )?
            }
            _ => None,
        };
        let landing::Found {
            went_live,
            verification,
            promoted_from,
        } = commit
            .map(|c| landing::events(index, at, c))
            .unwrap_or_default();
        Ok(Some(Freight {
            spec_commit: lock.spec_commit.clone(),
            digest,
            blocks: lock.components.clone(),
            commit: commit.map(|c| c.to_string()),
            went_live,
            promoted_from,
            verification,
        }))
    }
}

/// The lock in `dir` of `repo` (its path, blob id and content), when
/// there is one; looked up through `reader` (of `repo`'s history) when
/// `repo` is a git repository.
fn read_lock(
    repo: &LiveRepo,
    reader: Option<&Reader>,
    dir: &str,
) -> Result<Option<(String, ObjectId, Lock)>, StatusError> {
    let lock_path = join(dir, LOCK_FILE);
    let found = match (reader, repo.base) {
        (Some(reader), Some(base)) => reader
            .file_id(base, &lock_path)
            .map_err(|e| repo.error(&lock_path, e))?,
        _ => repo.files_under(dir)?.get(&lock_path).copied(),
    };
    let Some(lock_id) = found else {
        return Ok(None);
    };
    let text = repo.read(&lock_path, lock_id)?;
    let lock =
        Lock::parse(&String::from_utf8_lossy(&text)).map_err(|source| StatusError::Lock {
            repo: repo.name.clone(),
            path: lock_path.clone(),
            source: Box::new(source),
        })?;
    Ok(Some((lock_path, lock_id, lock)))
}

/// Reads the ExecutionPlan's step for a change set.
struct Look<'a> {
    changes: &'a ChangeSets,
    plan: &'a ExecutionPlan,
}

impl Look<'_> {
    /// What waits in `cs`'s target for `name`.
    fn next(&self, cs: &ChangeSet, name: &str) -> Next {
        let step = self.plan.steps.iter().find(|s| {
            s.action.target().is_some_and(|t| {
                t.repo == cs.repo && t.env == cs.env && t.plans.iter().any(|p| p == name)
            })
        });
        let Some(step) = step else {
            return Next::UpToDate;
        };
        let files = cs.files.len();
        if step.status == PlanState::Blocked && step.action.writes() {
            let findings = cs
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            return Next::Blocked { findings };
        }
        match &step.action {
            Action::CreateRepo { .. } | Action::Commit(_) => Next::Commit { files },
            Action::PullRequest(p) => Next::Proposed {
                branch: p.target.branch.clone(),
                already: p.already,
                files,
            },
            Action::Comment(h) => Next::Held {
                branch: h.target.branch.clone(),
                by: h.edited_by.clone(),
            },
            Action::Report(_) => Next::Observe { files },
            Action::Nothing(n) => match (n.cause, &n.waiting) {
                (Cause::Waiting, Some(on)) => {
                    let branch = crate::execution::branch(cs.env.as_deref(), name);
                    let open = self
                        .changes
                        .proposals
                        .iter()
                        .any(|p| p.repo == cs.repo && p.branch == branch)
                        .then_some(branch);
                    Next::Waiting {
                        on: on.clone(),
                        open,
                    }
                }
                (Cause::Rejected, _) => Next::Rejected {
                    branch: n.target.branch.clone(),
                },
                _ => Next::Nothing {
                    reason: n.reason.clone(),
                },
            },
        }
    }
}

/// The short form of a commit or digest: its first 12 hex digits; `?`
/// for anything else (a lock is repo content a person may have
/// written).
pub fn short(id: &str) -> &str {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return "?";
    }
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests;
