//! One whole apply, as the CLI and the daemon run it: bring the target
//! repos into the cache, catch the audit trail up with the forge, diff,
//! write, record every step, and start over when a branch moved on the
//! forge meanwhile.

use super::{ApplyError, Cache, Done, Step, Trail, TrailError, Writer, events, now, stamp};
use crate::compose::ComposeOptions;
use crate::diff::report::{Mask, Summary};
use crate::diff::{self, ChangeSets};
use crate::forge::Forge;
use crate::git::sign::Signer;
use crate::git::write::Identity;
use crate::git::{Repo, lock};
use crate::live::Sources;
use crate::spec::diag::Diagnostics;
use crate::spec::{Selection, Validated};

/// How often an apply starts over when a branch moved on the forge.
pub const ATTEMPTS: usize = 3;

/// Everything an apply needs besides the spec.
pub struct Run<'a> {
    pub forge: &'a dyn Forge,
    pub cache: &'a Cache,
    pub signer: &'a Signer,
    pub identity: &'a Identity,
    /// Holds the audit trail.
    pub spec_repo: &'a Repo,
    pub spec_commit: Option<&'a str>,
    /// `cli`, `webhook`, `poll` or `watch`: the commits' `Druppie-Trigger`.
    pub trigger: &'a str,
    /// What composing and rendering may hold and produce (`[render]`).
    pub limits: crate::template::Limits,
    /// `druppie promote`: apply only this plan's change to one
    /// environment, as what is live in the one before (the spec given
    /// is the one at the freight's spec commit).
    pub promote: Option<&'a super::promote::Freight>,
    /// Target repos fetched into the cache just before: the first
    /// attempt does not fetch them again.
    pub fetched: &'a [String],
    /// Asked before each step is written: `false` stops the run
    /// ([`super::ApplyError::Fenced`]); a sharded replica's "my Leases
    /// still hold".
    pub fence: Option<&'a dyn Fn() -> bool>,
}

/// What an apply did, whether or not it finished.
#[derive(Default)]
pub struct Outcome {
    /// One line per event the audit catch-up recorded.
    pub recorded: Vec<String>,
    /// One line per commit that poses as druppie's without its signature
    /// (on the trail, a proposal branch or a default branch): ignored.
    pub ignored: Vec<String>,
    /// The last diff computed (shared with the daemon's dry run).
    pub changes: Option<std::sync::Arc<ChangeSets>>,
    /// Every change set written (or left alone), over all attempts.
    pub steps: Vec<Step>,
    /// What was repaired before anything else (stale lock files a killed
    /// process left, half-made clones), one line each.
    pub repaired: Vec<String>,
    /// The target repos brought into the cache.
    pub targets: Vec<String>,
}

/// Why an apply stopped early.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The plans do not compose or render.
    #[error("the spec does not render ({} errors)", .0.error_count())]
    Diagnostics(Diagnostics),
    /// A policy failed: nothing is written until the spec changes.
    #[error("{0}; nothing applied")]
    Blocked(String),
    /// A target repo could not be brought into the cache, written or
    /// pushed, or the forge refused or could not be reached.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Target repos in the cache could not be read for the diff.
    #[error("{}", list(.0))]
    Unreadable(Vec<crate::live::Error>),
    /// The spec's approver keys cannot be read as ssh-keygen reads them.
    #[error(transparent)]
    ApproverKeys(crate::git::sign::AllowedSignersError),
    /// The audit trail could not be caught up with the target repos.
    #[error(transparent)]
    Trail(TrailError),
    /// The audit trail could not be read or written.
    #[error(transparent)]
    Audit(crate::audit::AuditError),
    /// What `promote` would bring is not verified where it is live.
    #[error(transparent)]
    Promote(super::promote::PromoteError),
    /// The spec repo, which holds the audit trail, cannot be locked.
    #[error("the spec repo")]
    SpecLock(#[source] crate::git::lock::LockError),
    /// A git lock file in the spec repo stops the trail's writes.
    #[error(transparent)]
    SpecLocked(crate::git::lock::Held),
    /// The confirmation was refused.
    #[error("not applied")]
    Declined,
    /// Every attempt found a branch moved on the forge, or being moved
    /// (a lock race in its repo); `said` is what the forge printed the
    /// last time.
    #[error("{}", kept_moving(.said))]
    KeptMoving { said: Vec<String> },
}

fn kept_moving(said: &[String]) -> String {
    let mut text = format!("branches kept moving on the forge; gave up after {ATTEMPTS} attempts");
    for line in said {
        text.push_str("\n  remote: ");
        text.push_str(line);
    }
    if let Some(lock) = super::held_lock(said).map(|l| l.replace("/./", "/")) {
        text.push_str(&format!(
            "\n  the forge's repo holds the lock file {lock}: a push to it was killed, unless one is running; remove it with `rm {}` and run again",
            crate::error::shell_quote(&lock)
        ));
    }
    text
}

fn list(errors: &[crate::live::Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Failure {
    /// Whether running again later, with nothing changed, may succeed:
    /// a transport failure, a lock race, a moved branch, a busy cache.
    /// An invalid spec, a failing policy, a refused push, a corrupt
    /// object are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Diagnostics(_)
            | Failure::Blocked(_)
            | Failure::Declined
            | Failure::ApproverKeys(_) => false,
            Failure::Apply(e) => e.is_transient(),
            Failure::Unreadable(errors) => errors.iter().all(crate::live::Error::is_transient),
            Failure::SpecLock(e) => e.is_transient(),
            Failure::SpecLocked(e) => e.is_transient(),
            Failure::Trail(e) => e.is_transient(),
            Failure::Audit(e) => e.is_transient(),
            Failure::Promote(e) => e.is_transient(),
            Failure::KeptMoving { .. } => true,
        }
    }
}

/// How long an apply waits for another druppie writing the same spec
/// repo's audit trail.
const SPEC_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Run<'_> {
    /// Applies `selection` of `valid` (`scope`: what the selection
    /// covers, for pruning removed plans). `confirm` sees the first diff that
    /// has changes and decides whether to write it.
    ///
    /// # Guarantees
    /// Every step written is in the outcome and recorded on the audit
    /// trail, also when a later step fails.
    pub fn apply(
        &self,
        valid: &Validated,
        selection: &Selection,
        scope: &ComposeOptions,
        confirm: &mut dyn FnMut(&ChangeSets, &Mask) -> bool,
    ) -> (Outcome, Result<(), Failure>) {
        let mut outcome = Outcome::default();
        let result = self.holding(valid, selection, scope, confirm, &mut outcome);
        outcome.repaired.extend(self.cache.repairs());
        (outcome, result)
    }

    /// Runs the attempts holding the cache and the spec repo's audit
    /// branch: a second druppie waits, and a lock file left by a killed
    /// one is removed.
    fn holding(
        &self,
        valid: &Validated,
        selection: &Selection,
        scope: &ComposeOptions,
        confirm: &mut dyn FnMut(&ChangeSets, &Mask) -> bool,
        outcome: &mut Outcome,
    ) -> Result<(), Failure> {
        let _cache = self.cache.hold().map_err(ApplyError::from)?;
        let git_dir = self.spec_repo.common_dir();
        let spec = lock::DirLock::acquire(
            &git_dir.join("druppie-lock"),
            SPEC_WAIT,
            self.cache.holder(),
        )
        .map_err(Failure::SpecLock)?;
        let audit = format!("refs/heads/{}", crate::audit::BRANCH);
        // Only druppie writes the audit branch: its lock is stale at any
        // age. People run git in the spec repo too, so git's other
        // short-lived locks are stale once they are old.
        let mut removed = lock::remove_stale_refs(&spec, &git_dir, &[audit.as_str()]);
        removed.extend(lock::remove_aged(&spec, &git_dir, lock::STALE_AFTER));
        for stale in removed {
            outcome.repaired.push(format!(
                "spec repo: removed the stale lock {} (left by a stopped process)",
                stale.strip_prefix(&git_dir).unwrap_or(&stale).display()
            ));
        }
        // A lock that stops the trail's writes (too young to be stale,
        // or not removable) is reported now, before anything is pushed
        // that the trail would then lack.
        if let Some(held) = lock::blocking(&git_dir, &audit).first() {
            return Err(Failure::SpecLocked(lock::Held::at("the spec repo", held)));
        }
        self.attempts(valid, selection, scope, confirm, outcome)
    }

    fn attempts(
        &self,
        valid: &Validated,
        selection: &Selection,
        scope: &ComposeOptions,
        confirm: &mut dyn FnMut(&ChangeSets, &Mask) -> bool,
        outcome: &mut Outcome,
    ) -> Result<(), Failure> {
        // A spec without a platform (a catalog) deploys nothing.
        let Some(deployment) = &valid.deployment else {
            return Ok(());
        };
        let platform = &deployment.platform;
        let picks = valid.picks(selection);
        let templates = crate::render::Templates::load(valid, deployment, &picks, &self.limits)
            .map_err(Failure::Diagnostics)?;
        let targets: Vec<(String, String)> = diff::target_repos(platform, &picks, &templates)
            .into_iter()
            .map(|(repo, branch)| (repo, branch.to_owned()))
            .collect();
        outcome.targets = targets.iter().map(|(repo, _)| repo.clone()).collect();
        let sources = Sources {
            infra: None,
            repos: Some(self.cache.dir().to_owned()),
        };
        let mut last_said = Vec::new();
        let approver_keys = approver_keys(valid)?;
        // What druppie signed on its trail; every event this run records
        // goes through this writer, once.
        let trail = crate::audit::trusted(self.spec_repo, &self.signer.own_key())
            .map_err(Failure::Audit)?;
        outcome
            .ignored
            .extend(trail.ignored.iter().map(|i| i.to_string()));
        let mut audit =
            crate::audit::Writer::from_trail(self.spec_repo, self.signer, self.identity, trail);
        for attempt in 1..=ATTEMPTS {
            let started = std::time::Instant::now();
            let stale: Vec<(String, String)> = targets
                .iter()
                .filter(|(repo, _)| attempt > 1 || !self.fetched.contains(repo))
                .cloned()
                .collect();
            self.sync(&stale)?;
            tracing::debug!(elapsed = ?started.elapsed(), repos = stale.len(), "sync");
            if attempt == 1 {
                let started = std::time::Instant::now();
                let trail = Trail {
                    forge: self.forge,
                    cache: self.cache,
                    signer: self.signer,
                    identity: self.identity,
                    spec_commit: self.spec_commit,
                    platform,
                    approver_keys: approver_keys.as_ref(),
                    shards: scope.shards.as_ref(),
                };
                let caught = trail
                    .catch_up(&targets, &mut audit)
                    .map_err(Failure::Trail)?;
                outcome.recorded = caught.recorded;
                outcome.ignored.extend(caught.ignored);
                tracing::debug!(elapsed = ?started.elapsed(), "audit catch-up");
            }
            let started = std::time::Instant::now();
            let own = self.signer.own_key();
            let options = diff::Options {
                sources: &sources,
                scope,
                spec_commit: self.spec_commit,
                limits: self.limits,
                own_key: Some(&own),
            };
            let mut changes =
                diff::diff(valid, selection, &options).map_err(Failure::Diagnostics)?;
            // Promotion past an environment that asks for verification
            // waits for its `verified` event.
            crate::execution::gate(&mut changes, audit.events(), platform);
            if let Some(freight) = self.promote {
                super::promote::narrow(&mut changes, freight, &platform.infra.repo.value)
                    .map_err(Failure::Promote)?;
            }
            tracing::debug!(elapsed = ?started.elapsed(), "diff");
            let summary = Summary::of(&changes);
            let mask = Mask::new(changes.secrets.iter().cloned());
            let unreadable = std::mem::take(&mut changes.errors);
            let blocked = summary.errors > unreadable.len();
            let changes = &**outcome.changes.insert(std::sync::Arc::new(changes));
            if blocked {
                return Err(Failure::Blocked(summary.line()));
            }
            if !unreadable.is_empty() {
                return Err(Failure::Unreadable(unreadable));
            }
            let plan = crate::execution::plan(changes, String::new());
            let writer = Writer {
                forge: self.forge,
                mask: &mask,
                cache: self.cache,
                signer: self.signer,
                identity: self.identity,
                spec_commit: self.spec_commit,
                trigger: self.trigger,
                time: now(),
                fence: self.fence,
            };
            if !plan.executes() {
                // Nothing to write; what waits for promotion is still said
                // (its steps write nothing).
                if attempt == 1 {
                    outcome.steps.extend(writer.apply(&plan, changes).0);
                }
                return Ok(());
            }
            if attempt == 1 && !confirm(changes, &mask) {
                return Err(Failure::Declined);
            }
            tracing::debug!("writing");
            let (steps, failed) = writer.apply(&plan, changes);
            let when = stamp(writer.time);
            let events: Vec<_> = steps
                .iter()
                .flat_map(|step| events(step, &self.identity.email, self.spec_commit, &when))
                .collect();
            let recorded = audit.record(&events, writer.time);
            tracing::debug!(events = events.len(), "recorded on the trail");
            if recorded.is_err() {
                // What was pushed is reported too; the next run's
                // catch-up records it.
                outcome.steps.extend(steps);
                return recorded.map(|_| ()).map_err(Failure::Audit);
            }
            let moved: Vec<&Vec<String>> = steps
                .iter()
                .filter_map(|s| match &s.done {
                    Done::Rejected { said, .. } => Some(said),
                    _ => None,
                })
                .collect();
            if let Some(said) = moved.last() {
                last_said = (*said).clone();
            }
            let moved = !moved.is_empty();
            outcome.steps.extend(steps);
            if let Some(e) = failed {
                return Err(Failure::Apply(e));
            }
            if !moved {
                return Ok(());
            }
        }
        Err(Failure::KeptMoving { said: last_said })
    }

    fn sync(&self, targets: &[(String, String)]) -> Result<(), Failure> {
        let repos: Vec<&str> = targets.iter().map(|(repo, _)| repo.as_str()).collect();
        sync(self.forge, self.cache, &repos).map_err(Failure::Apply)
    }
}

/// Brings every one of `repos` the forge has into the cache, a few at a
/// time: each is a `git fetch`, which mostly waits.
///
/// # Errors
/// The forge cannot be asked, or a fetch fails.
pub fn sync(forge: &dyn Forge, cache: &Cache, repos: &[&str]) -> Result<(), ApplyError> {
    const AT_ONCE: usize = 4;
    if repos.is_empty() {
        return Ok(());
    }
    let size = repos.len().div_ceil(AT_ONCE);
    let one = |repo: &str| -> Result<(), ApplyError> {
        if forge.exists(repo)? {
            cache.sync(repo, &forge.url(repo))?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let runs: Vec<_> = repos
            .chunks(size)
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|repo| one(repo))))
            .collect();
        runs.into_iter()
            .try_for_each(|r| r.join().expect("a sync thread does not panic"))
    })
}

/// The spec's approver keys ([`crate::spec::load::APPROVER_KEYS`]), as
/// validated, ready for ssh-keygen.
fn approver_keys(valid: &Validated) -> Result<Option<crate::git::sign::AllowedSigners>, Failure> {
    let Some(id) = valid.spec.approver_keys else {
        return Ok(None);
    };
    let file = valid.spec.file(id);
    crate::git::sign::AllowedSigners::parse(&file.text, &file.path)
        .map(Some)
        .map_err(Failure::ApproverKeys)
}
