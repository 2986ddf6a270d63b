//! What a diff finds: each target's change set, file by file.

use serde::Serialize;

use crate::live;
use crate::policy::Finding;
use crate::render::RepoKind;
use crate::spec::model::Trust;

/// What a change set does to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Modify,
    Delete,
    /// Both sides changed; the new content carries conflict markers (or
    /// is the render, when there is nothing to merge with).
    Conflict,
    /// A managed file a person changed; the new content restores it.
    Drift,
}

/// One file's change. `old` is the live content, `new` what the change set
/// writes (`None`: delete).
#[derive(Debug, Clone)]
pub struct FileChange {
    pub path: String,
    pub action: Action,
    pub old: Option<Vec<u8>>,
    pub new: Option<Vec<u8>>,
    /// Why, for conflicts, drift and merges.
    pub reason: Option<String>,
}

/// Something left alone that a person should know about.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub path: String,
    pub message: String,
}

/// What would change in one target.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub repo: String,
    pub kind: RepoKind,
    pub env: Option<String>,
    pub trust: Option<Trust>,
    pub plans: Vec<String>,
    /// Whether the repo exists (a project repo may not yet).
    pub exists: bool,
    /// The default branch, and its commit the changes apply to.
    pub branch: String,
    pub base: Option<String>,
    /// How the live repo was read.
    pub source: String,
    pub files: Vec<FileChange>,
    pub notes: Vec<Note>,
    /// Policy findings on this target's rendered files.
    pub findings: Vec<Finding>,
    /// SHA-256 of the rendered tree of this target's locations (every
    /// path and blob id, lock files included), hex.
    pub render_digest: String,
    /// Diffed only to decide promotion (an environment before a selected
    /// one): not shown, not applied.
    pub context: bool,
    /// The plan's change reaches this environment regardless of the ones
    /// before it (`promote: {env: parallel}`).
    pub parallel: bool,
    /// `druppie promote`: this is what is live in the named environment
    /// before, brought here now; it does not wait for promotion.
    pub promoted_from: Option<String>,
}

#[cfg(test)]
impl ChangeSet {
    /// For tests: `plan`'s change to `repo` (the infra repo in `env`, a
    /// project repo without one) on `main`, modifying each of `paths`.
    pub(crate) fn modifying(
        repo: &str,
        env: Option<&str>,
        trust: Option<Trust>,
        plan: &str,
        paths: &[&str],
    ) -> ChangeSet {
        ChangeSet {
            repo: repo.to_owned(),
            kind: if env.is_some() {
                RepoKind::Infra
            } else {
                RepoKind::Project
            },
            env: env.map(str::to_owned),
            trust,
            plans: vec![plan.to_owned()],
            exists: true,
            branch: "main".to_owned(),
            base: Some("1".repeat(40)),
            source: String::new(),
            files: paths
                .iter()
                .map(|p| FileChange {
                    path: (*p).to_owned(),
                    action: Action::Modify,
                    old: Some(b"a".to_vec()),
                    new: Some(b"b".to_vec()),
                    reason: None,
                })
                .collect(),
            notes: Vec::new(),
            findings: Vec::new(),
            render_digest: String::new(),
            context: false,
            parallel: false,
            promoted_from: None,
        }
    }
}

impl ChangeSet {
    pub fn count(&self, action: Action) -> usize {
        self.files.iter().filter(|f| f.action == action).count()
    }
}

/// Every change set, and the repos that could not be read.
///
/// A change set is one plan's change to one target: a project repo (one
/// per building block instance, so one plan), or one plan's directory
/// in one environment of the infra repo (a removed plan's directory is
/// its own change set too).
#[derive(Debug, Default)]
pub struct ChangeSets {
    pub sets: Vec<ChangeSet>,
    pub errors: Vec<live::Error>,
    /// Values of secret inputs: masked wherever changes are shown.
    pub secrets: Vec<String>,
    /// The `druppie/…` branches of the target repos as they are now.
    pub proposals: Vec<live::Proposal>,
    /// The environments in promotion order (platform.yaml's).
    pub order: Vec<String>,
    /// Plans whose live change in an environment that asks for
    /// verification (`verify: true`) is not verified yet: promotion past
    /// that environment waits. Read from the audit trail by `apply`;
    /// empty for `diff`, which does not read the trail.
    pub unverified: Vec<Unverified>,
}

/// A plan's live change in one environment that is not verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub plan: String,
    pub env: String,
    /// Why, e.g. `not verified yet` or `its verification failed`.
    pub why: String,
}

impl ChangeSets {
    /// The change sets the run covers (not those diffed only to decide
    /// promotion).
    pub fn shown(&self) -> impl Iterator<Item = &ChangeSet> {
        self.sets.iter().filter(|cs| !cs.context)
    }
}

impl ChangeSet {
    /// `other`'s changes to the same target taken into this one: another
    /// component's of the same plan, or (one commit of several plans)
    /// another plan's.
    pub fn take_in(&mut self, other: ChangeSet) {
        for plan in other.plans {
            if !self.plans.contains(&plan) {
                self.plans.push(plan);
            }
        }
        self.files.extend(other.files);
        self.notes.extend(other.notes);
        self.findings.extend(other.findings);
        self.render_digest = combine(&self.render_digest, &other.render_digest);
    }
}

/// The digest of two digests in order (several plans in one environment).
fn combine(a: &str, b: &str) -> String {
    use sha2::Digest as _;
    if a.is_empty() {
        return b.to_owned();
    }
    crate::hex::encode(&sha2::Sha256::digest(format!("{a}\n{b}\n").as_bytes()))
}
