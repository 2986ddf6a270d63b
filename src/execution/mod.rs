//! `plan`: [`ChangeSets`] -> [`ExecutionPlan`], what `apply` does, step by
//! step. Decided here once: `diff --json` prints this value, `apply` and
//! the daemon execute it, and nothing else decides.
//!
//! Per change set (one plan's change to one target) and its
//! environment's trust level:
//! - `observe`: reported, nothing written;
//! - `deploy` (infra repo, no conflict), and the first commit of a new
//!   project repo: committed straight to the default branch, one commit
//!   per plan (consecutive plans together past [`group::COMMITS_MAX`]
//!   of them), one push per repo and environment;
//! - `propose` (and any change with a conflict): proposed on the plan's
//!   own branch, [`branch`], as a pull request (plain git: the branch),
//!   which a merge approves. A conflict makes it a draft titled
//!   `CONFLICT`.
//!
//! A change reaches an environment only once it is live in the one
//! before it ([`promotion`]). A change that alters only lock files (a
//! block version bump with the same output) is proposed to nobody: it
//! goes with the plan's next real change, or is committed where the
//! environment deploys. A proposal that already holds the change waits,
//! untouched; one whose tip a person wrote is not rebuilt (the step is a
//! comment saying so); a change closed without merging is not proposed
//! again.

mod digest;
mod group;
mod promotion;

use serde::Serialize;

use crate::diff::report::Summary;
use crate::diff::{Action as FileAction, ChangeSet, ChangeSets};
use crate::lock::LOCK_FILE;
use crate::render::RepoKind;
use crate::spec::model::Trust;
pub use group::COMMITS_MAX;
use promotion::Stages;
pub use promotion::{gate, unverified};

/// What apply would do, step by step.
#[derive(Debug, Serialize)]
pub struct ExecutionPlan {
    /// Stable for the same changes: a digest of every file change.
    pub plan_id: String,
    pub intent: String,
    pub status: Status,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to write.
    Noop,
    Pending,
    /// The change waits for a merge: its proposal already holds it.
    Proposed,
    /// A policy failed or a repo could not be read: nothing is written.
    Blocked,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub step_id: usize,
    #[serde(flatten)]
    pub action: Action,
    pub status: Status,
}

/// One step; serialized as `{"action": "<name>", "params": {…}}`.
#[derive(Debug, Serialize)]
#[serde(tag = "action", content = "params", rename_all = "snake_case")]
pub enum Action {
    /// The forge makes a project repo that does not exist yet.
    CreateRepo { repo: String, branch: String },
    /// Commits straight to the default branch: one commit per plan, in
    /// order, pushed together.
    Commit(Commit),
    /// Opens or updates the proposal of one plan in one environment.
    PullRequest(Proposal),
    /// A person's commits are on the proposal branch: druppie leaves it
    /// and says so on it.
    Comment(Held),
    /// An `observe` environment: shown, never written.
    Report(Target),
    /// Nothing to write, and why: only lock files change, the change was
    /// closed without merging, a person's branch takes the proposal's
    /// name, or it waits to be live in an earlier environment.
    Nothing(Nothing),
}

/// Where a step writes: a repo, an environment of the infra repo, plans.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub repo: String,
    pub kind: RepoKind,
    pub env: Option<String>,
    pub plans: Vec<String>,
    /// The branch written: the default branch, or the proposal's.
    pub branch: String,
    /// The default-branch commit the change was computed on.
    pub base: Option<String>,
    pub files: usize,
    pub conflicts: usize,
}

#[derive(Debug, Serialize)]
pub struct Nothing {
    #[serde(flatten)]
    pub target: Target,
    pub reason: String,
    /// The environment the change waits to be live in first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Why, as a kind (`reason` says it in words).
    #[serde(skip)]
    pub cause: Cause,
}

/// Why a [`Nothing`] step writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The change waits to be live in an earlier environment.
    Waiting,
    /// Only lock files change.
    OnlyLocks,
    /// This change was proposed and closed without merging.
    Rejected,
    /// A person's branch takes the proposal branch's place.
    Crowded,
}

#[derive(Debug, Serialize)]
pub struct Commit {
    #[serde(flatten)]
    pub target: Target,
    pub commits: Vec<PlanCommit>,
}

/// One plan's commit of a [`Commit`] step, or of consecutive plans'
/// in a large one ([`group`]).
#[derive(Debug, Serialize)]
pub struct PlanCommit {
    /// Indexes of its change sets in [`ChangeSets::sets`].
    #[serde(skip)]
    pub sets: Vec<usize>,
    pub plans: Vec<String>,
    pub subject: String,
    pub files: usize,
    /// The environment the change was live in before: this commit
    /// promotes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Proposal {
    #[serde(skip)]
    pub set: usize,
    #[serde(flatten)]
    pub target: Target,
    /// What the proposal changes ([`proposal_id`]): its commit's
    /// `Druppie-Proposal` trailer, so a squash or rebase keeps it and a
    /// rejected change is known again.
    pub id: String,
    /// The default branch a merge brings it into.
    pub into: String,
    pub title: String,
    /// Opened as a draft: it carries conflicts.
    pub draft: bool,
    /// The proposal branch already holds exactly this change (its tip's
    /// `Druppie-Proposal` is [`Proposal::id`]): it is not rebuilt, even
    /// when the default branch moved, and only announced again.
    pub already: bool,
    /// The files with conflict markers.
    pub conflicted: Vec<String>,
    /// The environment the change was live in before: merging the
    /// proposal promotes it (`Druppie-Promoted-From`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Held {
    #[serde(skip)]
    pub set: usize,
    #[serde(flatten)]
    pub target: Target,
    /// Who wrote the proposal's tip.
    pub edited_by: String,
    pub text: String,
}

impl Action {
    /// Where the step writes; `None` for making a repo.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Action::CreateRepo { .. } => None,
            Action::Commit(c) => Some(&c.target),
            Action::PullRequest(p) => Some(&p.target),
            Action::Comment(h) => Some(&h.target),
            Action::Report(t) | Action::Nothing(Nothing { target: t, .. }) => Some(t),
        }
    }

    /// Whether executing it writes to a repo or forge.
    pub fn writes(&self) -> bool {
        match self {
            Action::Nothing(_) | Action::Report(_) => false,
            Action::PullRequest(p) => !p.already,
            _ => true,
        }
    }

    /// The step's status when nothing blocks the plan.
    fn status(&self) -> Status {
        match self {
            Action::PullRequest(p) if p.already => Status::Proposed,
            a if a.writes() => Status::Pending,
            _ => Status::Noop,
        }
    }
}

impl ExecutionPlan {
    /// Whether any step writes.
    pub fn writes(&self) -> bool {
        self.steps.iter().any(|s| s.action.writes())
    }

    /// Whether there is something to write, to approve, to promote, or
    /// in an `observe` environment to see: `diff`'s "changes pending".
    pub fn shows_changes(&self) -> bool {
        self.steps.iter().any(|s| match &s.action {
            Action::Nothing(n) => n.waiting.is_some(),
            _ => true,
        })
    }

    /// Whether `apply` has a step to execute: a write, or a proposal to
    /// announce again (idempotent; a run stopped after its push gets its
    /// pull request or note from the next).
    pub fn executes(&self) -> bool {
        self.steps.iter().any(|s| {
            s.action.writes() || matches!(s.action, Action::PullRequest(_) | Action::Comment(_))
        })
    }
}

/// The branch a plan's change in a target is proposed on:
/// `druppie/<env>/<plan>` in the infra repo, `druppie/<plan>` in a
/// project repo (which belongs to one plan). Stable: a later change to
/// the same plan and environment updates the same proposal until it is
/// merged or closed; then the branch is deleted and the next change
/// opens a fresh one.
pub fn branch(env: Option<&str>, plan: &str) -> String {
    match env {
        Some(env) => format!("druppie/{env}/{plan}"),
        None => format!("druppie/{plan}"),
    }
}

/// Where a proposal closed without merging is kept, so the same change
/// is not proposed again: `refs/druppie/rejected/<env>/<plan>` (or
/// `…/<plan>` in a project repo).
pub fn rejected_ref(branch: &str) -> String {
    format!(
        "refs/druppie/rejected/{}",
        branch.strip_prefix("druppie/").unwrap_or(branch)
    )
}

/// The trailer of a proposal commit that names its [`proposal_id`].
pub const PROPOSAL_TRAILER: &str = "Druppie-Proposal";

/// The trailer of a commit that promotes a change: the environment it
/// was live in before.
pub const PROMOTED_TRAILER: &str = "Druppie-Promoted-From";

/// The trailer of the commit druppie keeps at [`rejected_ref`]: the id
/// of the proposal a person closed without merging.
pub const REJECTED_TRAILER: &str = "Druppie-Rejected";

/// What a change set changes, as 16 hex digits: a digest of every
/// path, action and new blob except lock files, so the same change on a
/// default branch that moved elsewhere, or in a later spec commit, has
/// the same id.
pub fn proposal_id(cs: &ChangeSet) -> String {
    use sha2::Digest as _;
    let mut entries: Vec<(&str, String)> = cs
        .files
        .iter()
        .filter(|f| !is_lock(&f.path))
        .map(|f| {
            let blob = f
                .new
                .as_deref()
                .map_or_else(|| "-".to_owned(), |b| crate::git::blob_id(b).to_string());
            (f.path.as_str(), format!("{:?} {blob}", f.action))
        })
        .collect();
    entries.sort();
    let mut hash = sha2::Sha256::new();
    hash.update(cs.repo.as_bytes());
    hash.update([0]);
    for (path, blob) in entries {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(blob.as_bytes());
        hash.update([b'\n']);
    }
    crate::hex::encode(&hash.finalize())[..16].to_owned()
}

/// The one-line summary of a plan's change: commit subject, pull request
/// title.
pub fn subject(cs: &ChangeSet) -> String {
    let plans = cs.plans.join(", ");
    match &cs.env {
        Some(env) => format!("druppie: {plans} in {env}"),
        None => format!("druppie: {plans} in {}", cs.repo),
    }
}

/// What applying `changes` does.
pub fn plan(changes: &ChangeSets, intent: String) -> ExecutionPlan {
    let blocked = Summary::of(changes).errors > 0;
    let stages = Stages::of(changes);
    let mut steps: Vec<Action> = Vec::new();
    let mut created = std::collections::BTreeSet::new();
    for (i, cs) in changes.sets.iter().enumerate() {
        if cs.files.is_empty() || cs.context {
            continue;
        }
        if !cs.exists && created.insert(cs.repo.as_str()) {
            steps.push(Action::CreateRepo {
                repo: cs.repo.clone(),
                branch: cs.branch.clone(),
            });
        }
        steps.push(step(changes, &stages, i, cs));
        merge_commits(&mut steps);
    }
    for step in &mut steps {
        if let Action::Commit(c) = step {
            let commits = std::mem::take(&mut c.commits);
            c.commits = group::group(commits, c.target.env.as_deref(), &c.target.repo);
        }
    }
    let status = match () {
        () if blocked => Status::Blocked,
        () if steps.iter().any(Action::writes) => Status::Pending,
        () if steps.iter().any(|a| a.status() == Status::Proposed) => Status::Proposed,
        () => Status::Noop,
    };
    ExecutionPlan {
        plan_id: digest::of(changes),
        intent,
        status,
        steps: steps
            .into_iter()
            .enumerate()
            .map(|(i, action)| Step {
                step_id: i + 1,
                status: if blocked {
                    Status::Blocked
                } else {
                    action.status()
                },
                action,
            })
            .collect(),
    }
}

/// The step for one change set.
fn step(changes: &ChangeSets, stages: &Stages<'_>, set: usize, cs: &ChangeSet) -> Action {
    let conflicts = cs.count(FileAction::Conflict);
    let target = |branch: &str| Target {
        repo: cs.repo.clone(),
        kind: cs.kind,
        env: cs.env.clone(),
        plans: cs.plans.clone(),
        branch: branch.to_owned(),
        base: cs.base.clone(),
        files: cs.files.len(),
        conflicts,
    };
    // `druppie promote` brings what is live before: it waits for nothing.
    if let Some(wait) = stages
        .waiting(cs, &changes.unverified)
        .filter(|_| cs.promoted_from.is_none())
    {
        let plan = cs.plans.join(", ");
        let before = wait.env;
        return Action::Nothing(Nothing {
            target: target(&cs.branch),
            reason: format!(
                "waiting: {before} (promotion: {plan}'s change goes to {} {} {before})",
                cs.env.as_deref().unwrap_or_default(),
                wait.why
            ),
            waiting: Some(before),
            cause: Cause::Waiting,
        });
    }
    let promoted_from = cs
        .promoted_from
        .clone()
        .or_else(|| stages.before(cs).and_then(|b| b.env.clone()));
    let direct = match (cs.kind, cs.trust) {
        (RepoKind::Infra, Some(Trust::Observe)) => return Action::Report(target(&cs.branch)),
        (RepoKind::Infra, Some(Trust::Deploy)) => conflicts == 0,
        // A new project repo's first commit has nothing to merge into.
        (RepoKind::Project, _) => cs.base.is_none(),
        _ => false,
    };
    if direct {
        return Action::Commit(Commit {
            target: target(&cs.branch),
            commits: vec![PlanCommit {
                sets: vec![set],
                plans: cs.plans.clone(),
                subject: subject(cs),
                files: cs.files.len(),
                promoted_from,
            }],
        });
    }
    let plan = cs.plans.first().map_or("removed", String::as_str);
    let head = branch(cs.env.as_deref(), plan);
    if only_locks(cs) {
        return Action::Nothing(Nothing {
            target: target(&head),
            reason: format!(
                "only {LOCK_FILE} changes (the rendered files are the same): it goes with the next change to propose"
            ),
            waiting: None,
            cause: Cause::OnlyLocks,
        });
    }
    let id = proposal_id(cs);
    let rejected = rejected_ref(&head);
    if changes
        .proposals
        .iter()
        .any(|p| p.repo == cs.repo && p.branch == rejected && p.id.as_deref() == Some(&id))
    {
        return Action::Nothing(Nothing {
            target: target(&head),
            reason: "this change was proposed and closed without merging: it is not proposed again until the spec changes what it renders here".to_owned(),
            waiting: None,
            cause: Cause::Rejected,
        });
    }
    // git holds no branch inside another: a person's `druppie/<env>`
    // leaves no room for `druppie/<env>/<plan>`, and pushing would fail
    // on every run.
    if let Some(taken) = changes
        .proposals
        .iter()
        .find(|p| p.repo == cs.repo && crowds(&p.branch, &head))
    {
        return Action::Nothing(Nothing {
            target: target(&head),
            reason: format!(
                "the branch {} leaves no room for {head} (git cannot hold a branch inside another): delete it to get this proposal",
                taken.branch
            ),
            waiting: None,
            cause: Cause::Crowded,
        });
    }
    let open = changes
        .proposals
        .iter()
        .find(|p| p.repo == cs.repo && p.branch == head);
    if let Some(who) = open.and_then(|p| p.edited_by.clone()) {
        return Action::Comment(Held {
            set,
            text: format!(
                "{who} pushed to this proposal, so druppie no longer updates it. The spec has moved on since: {} {} to change. Close it (in plain git: delete the branch) to get a fresh proposal, or merge it as it is.",
                cs.files.len(),
                if cs.files.len() == 1 { "file" } else { "files" }
            ),
            edited_by: who,
            target: target(&head),
        });
    }
    let conflicted: Vec<String> = cs
        .files
        .iter()
        .filter(|f| f.action == FileAction::Conflict)
        .map(|f| f.path.clone())
        .collect();
    let title = match conflicted.len() {
        0 => subject(cs),
        n => format!(
            "CONFLICT ({n} {}): {}",
            if n == 1 { "file" } else { "files" },
            subject(cs)
        ),
    };
    let already = open.is_some_and(|p| p.id.as_deref() == Some(id.as_str()));
    Action::PullRequest(Proposal {
        set,
        already,
        id,
        target: target(&head),
        into: cs.branch.clone(),
        title,
        draft: !conflicted.is_empty(),
        conflicted,
        promoted_from,
    })
}

/// Whether the branch `other` is where `head` would go, or inside it.
fn crowds(other: &str, head: &str) -> bool {
    let inside = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|r| r.starts_with('/'));
    inside(head, other) || inside(other, head)
}

/// Whether only lock files change.
pub(crate) fn only_locks(cs: &ChangeSet) -> bool {
    cs.files.iter().all(|f| is_lock(&f.path))
}

fn is_lock(path: &str) -> bool {
    path == LOCK_FILE || path.ends_with(&format!("/{LOCK_FILE}"))
}

/// Folds the last step into the one before when both commit to the same
/// branch of the same repo and environment: one push.
fn merge_commits(steps: &mut Vec<Action>) {
    let [.., Action::Commit(before), Action::Commit(last)] = steps.as_mut_slice() else {
        return;
    };
    if before.target.repo != last.target.repo
        || before.target.env != last.target.env
        || before.target.branch != last.target.branch
    {
        return;
    }
    let Some(Action::Commit(last)) = steps.pop() else {
        return;
    };
    let Some(Action::Commit(before)) = steps.last_mut() else {
        return;
    };
    for p in &last.target.plans {
        if !before.target.plans.contains(p) {
            before.target.plans.push(p.clone());
        }
    }
    before.target.files += last.target.files;
    before.target.conflicts += last.target.conflicts;
    before.commits.extend(last.commits);
}

#[cfg(test)]
mod tests;
