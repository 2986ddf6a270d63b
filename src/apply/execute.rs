//! Executing an [`ExecutionPlan`]: each step as the plan decided it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ApplyError, Done, HELD_MARKER, NOTES, Pushed, Step, Writer, note};
use crate::diff::{Action as FileAction, ChangeSet, ChangeSets};
use crate::execution::{Action, Commit, ExecutionPlan};
use crate::git::batch::Batch;
use crate::git::write::{NewCommit, message};
use crate::git::{ObjectId, Repo};

impl Writer<'_> {
    /// Executes every step of `plan` (computed from `changes`), in
    /// order, and stops at the first failure (a cache repo cannot be
    /// read or written, signing fails, a push fails for another reason
    /// than a moved branch, the forge refuses): the steps done before it
    /// are returned with it, so they are recorded all the same.
    pub fn apply(
        &self,
        plan: &ExecutionPlan,
        changes: &ChangeSets,
    ) -> (Vec<Step>, Option<ApplyError>) {
        let mut steps = Vec::new();
        // Default-branch heads moved by this run: a later step on the
        // same repo (another environment) builds on them.
        let mut heads: BTreeMap<String, ObjectId> = BTreeMap::new();
        for step in &plan.steps {
            if self.fence.is_some_and(|holds| !holds()) {
                return (steps, Some(ApplyError::Fenced));
            }
            let done = match &step.action {
                Action::CreateRepo { repo, branch } => {
                    self.create(repo, branch).map(|()| Vec::new())
                }
                Action::Commit(c) => self.commit(c, changes, &mut heads),
                Action::PullRequest(p) => self
                    .propose(p, &changes.sets[p.set], &mut heads)
                    .map(|done| vec![(p.target.plans.clone(), done, p.promoted_from.clone())]),
                Action::Comment(h) => self
                    .hold(h)
                    .map(|done| vec![(h.target.plans.clone(), done, None)]),
                Action::Report(t) => Ok(vec![(t.plans.clone(), Done::Observed, None)]),
                Action::Nothing(n) => Ok(n
                    .waiting
                    .iter()
                    .map(|on| {
                        let done = Done::Waiting {
                            on: on.clone(),
                            reason: n.reason.clone(),
                        };
                        (n.target.plans.clone(), done, None)
                    })
                    .collect()),
            };
            let target = step.action.target();
            match done {
                Ok(done) => steps.extend(done.into_iter().map(|(plans, done, from)| Step {
                    repo: target.map(|t| t.repo.clone()).unwrap_or_default(),
                    env: target.and_then(|t| t.env.clone()),
                    plans,
                    done,
                    from,
                })),
                Err(e) => return (steps, Some(e)),
            }
        }
        (steps, None)
    }

    /// Makes a project repo on the forge and clones it into the cache.
    fn create(&self, name: &str, branch: &str) -> Result<(), ApplyError> {
        if !self.cache.path(name).exists() {
            self.forge.ensure_repo(name, branch)?;
            self.cache.sync(name, &self.forge.url(name))?;
        }
        Ok(())
    }

    fn open(&self, name: &str) -> Result<Repo, ApplyError> {
        Repo::open(&self.cache.path(name))
            .map_err(ApplyError::git(name, "open the cached clone"))?
            .ok_or_else(|| ApplyError::not_cached(name))
    }

    /// Where a step's commit builds: the default branch as this run left
    /// it, else as the diff saw it.
    fn base(
        target: &crate::execution::Target,
        heads: &BTreeMap<String, ObjectId>,
    ) -> Result<Option<ObjectId>, ApplyError> {
        if let Some(moved) = heads.get(&target.repo) {
            return Ok(Some(*moved));
        }
        target
            .base
            .as_deref()
            .map(|b| {
                ObjectId::from_hex(b.as_bytes()).map_err(|source| ApplyError::BadBase {
                    repo: target.repo.clone(),
                    base: b.to_owned(),
                    source,
                })
            })
            .transpose()
    }

    /// Writes one signed commit of `cs` on `base` into `batch`.
    fn write(
        &self,
        batch: &mut Batch<'_>,
        cs: &ChangeSet,
        subject: &str,
        marks: Marks<'_>,
        base: Option<ObjectId>,
    ) -> Result<crate::git::write::Written, ApplyError> {
        let changes: Vec<(String, Option<Vec<u8>>)> = cs
            .files
            .iter()
            .map(|f| (f.path.clone(), f.new.clone()))
            .collect();
        batch
            .write_commit(
                &NewCommit {
                    base,
                    replace_tree: false,
                    changes: &changes,
                    message: self.message(cs, subject, marks),
                    author: self.identity,
                    time: self.time,
                },
                Some(self.signer),
            )
            .map_err(ApplyError::git(&cs.repo, "write the commit"))
    }

    /// One commit per plan on the default branch, pushed together.
    fn commit(
        &self,
        c: &Commit,
        changes: &ChangeSets,
        heads: &mut BTreeMap<String, ObjectId>,
    ) -> Result<Vec<PlanDone>, ApplyError> {
        let t = &c.target;
        let name = t.repo.as_str();
        let _hold = self.cache.prepare(name)?;
        let repo = self.open(name)?;
        let start = Self::base(t, heads)?;
        let mut tip = start;
        let mut written = Vec::new();
        let mut flux = FluxTrees::default();
        // Written together: a large run goes into a pack.
        let mut batch = repo.batch();
        for pc in &c.commits {
            let marks = Marks {
                proposal: None,
                promoted_from: pc.promoted_from.as_deref(),
            };
            // Each commit lists the plans committed before it.
            let set = together(changes, &pc.sets);
            let cs = flux.on(&batch, &set, tip)?;
            let w = self.write(&mut batch, &cs, &pc.subject, marks, tip)?;
            flux.written(&cs);
            tip = Some(w.commit);
            written.push((
                pc.plans.clone(),
                w.commit.to_string(),
                pc.promoted_from.clone(),
            ));
        }
        let stored = batch
            .finish()
            .map_err(ApplyError::git(name, "store the commits"))?;
        let Some(tip) = tip else {
            return Ok(Vec::new());
        };
        let rejected = |said: Vec<String>| {
            written
                .iter()
                .map(|(plans, _, _)| {
                    (
                        plans.clone(),
                        Done::Rejected {
                            branch: t.branch.clone(),
                            said: said.clone(),
                        },
                        None,
                    )
                })
                .collect()
        };
        match repo.set_branch(&t.branch, start, tip, "druppie: apply") {
            Ok(()) => {}
            // The clone's branch is not where the diff saw it: start over.
            Err(crate::git::Error::Moved { .. }) => return Ok(rejected(Vec::new())),
            Err(e) => return Err(ApplyError::git(name, "move the branch")(e)),
        }
        tracing::debug!(
            repo = name,
            commits = written.len(),
            loose = stored.loose,
            packed = stored.packed,
            packs = stored.packs,
            "commits written"
        );
        let url = self.forge.url(name);
        let packed = stored.packs > 0;
        let pushed = self
            .cache
            .push(name, &url, &tip.to_string(), &t.branch, packed)?;
        tracing::debug!(repo = name, "pushed");
        match pushed {
            Pushed::Done => {
                heads.insert(t.repo.clone(), tip);
                Ok(written
                    .into_iter()
                    .map(|(plans, commit, from)| (plans, Done::Committed { commit }, from))
                    .collect())
            }
            Pushed::Rejected { said } => Ok(rejected(said)),
        }
    }

    /// Opens or updates one plan's proposal.
    fn propose(
        &self,
        p: &crate::execution::Proposal,
        cs: &ChangeSet,
        heads: &mut BTreeMap<String, ObjectId>,
    ) -> Result<Done, ApplyError> {
        let t = &p.target;
        let name = t.repo.as_str();
        let _hold = self.cache.prepare(name)?;
        let repo = self.open(name)?;
        let branch = t.branch.clone();
        let current = repo
            .branch_head(&branch)
            .map_err(ApplyError::git(name, "read the proposal branch"))?;
        if p.already
            && let Some(head) = current
        {
            // It holds this change already: announced again on the
            // commit it builds on, never rebuilt.
            let parent = repo
                .first_parent(head.commit)
                .map_err(ApplyError::git(name, "read the proposal"))?;
            let pull = self.announce(&on_base(cs, parent), p, &repo, head.commit)?;
            return Ok(Done::AlreadyProposed { branch, pull });
        }
        let base = Self::base(t, heads)?;
        let marks = Marks {
            proposal: Some(&p.id),
            promoted_from: p.promoted_from.as_deref(),
        };
        let mut batch = repo.batch();
        let cs = &*on_tree(&batch, cs, base)?;
        let written = self.write(&mut batch, cs, &p.title, marks, base)?;
        batch
            .finish()
            .map_err(ApplyError::git(name, "store the commit"))?;
        let (proposed, fresh) = match current {
            Some(head) if head.tree == written.tree => (head.commit, false),
            _ => {
                repo.set_branch(
                    &branch,
                    current.map(|h| h.commit),
                    written.commit,
                    "druppie: propose",
                )
                .map_err(ApplyError::git(name, "move the proposal branch"))?;
                let url = self.forge.url(name);
                // Only over the tip this run saw: a person's commit
                // pushed since is kept, and the next attempt sees it.
                let seen = current.map(|h| h.commit.to_string());
                if let Pushed::Rejected { said } = self.cache.replace(
                    name,
                    &url,
                    &written.commit.to_string(),
                    &branch,
                    seen.as_deref(),
                )? {
                    return Ok(Done::Rejected { branch, said });
                }
                (written.commit, true)
            }
        };
        // Announced every time, so a run stopped after the push still
        // gets its pull request or note: both are idempotent.
        // The card names the commit the proposal builds on, which an
        // earlier step of this run may have moved.
        let pull = self.announce(&on_base(cs, base), p, &repo, proposed)?;
        Ok(if fresh {
            Done::Proposed {
                branch,
                commit: proposed.to_string(),
                pull,
            }
        } else {
            Done::AlreadyProposed { branch, pull }
        })
    }

    /// A proposal a person pushed to: left as it is, and said so on it.
    fn hold(&self, h: &crate::execution::Held) -> Result<Done, ApplyError> {
        let t = &h.target;
        let pull = match self.forge.pulls() {
            Some(pulls) => match pulls.find(&t.repo, &t.branch)? {
                Some(pull) => {
                    pulls.comment(&t.repo, pull.number, HELD_MARKER, &h.text)?;
                    Some(pull.url)
                }
                None => None,
            },
            None => {
                let repo = self.open(&t.repo)?;
                if let Some(head) = repo
                    .branch_head(&t.branch)
                    .map_err(ApplyError::git(&t.repo, "read the proposal branch"))?
                {
                    // The marker says, after the branch is gone, that a
                    // person took the proposal over.
                    let text = format!("{}\n\n{HELD_MARKER}\n", h.text);
                    let have = repo
                        .note(NOTES, head.commit)
                        .map_err(ApplyError::git(&t.repo, "read the note"))?;
                    if have.as_deref() != Some(text.as_str()) {
                        note(
                            self.cache,
                            &repo,
                            &t.repo,
                            &self.forge.url(&t.repo),
                            head.commit,
                            &text,
                            self.identity,
                            self.signer,
                            self.time,
                        )?;
                    }
                }
                None
            }
        };
        Ok(Done::Held {
            branch: t.branch.clone(),
            by: h.edited_by.clone(),
            pull,
        })
    }

    /// Opens or updates the pull request for a proposal branch (its body
    /// the approval card), or on plain git sets the card as the commit's
    /// note. Returns the pull request's address.
    fn announce(
        &self,
        cs: &ChangeSet,
        p: &crate::execution::Proposal,
        repo: &Repo,
        commit: ObjectId,
    ) -> Result<Option<String>, ApplyError> {
        if let Some(pulls) = self.forge.pulls() {
            let card = approval_card(cs, p, self.mask, pulls.body_limit());
            let pull = pulls.propose(
                &cs.repo,
                &crate::forge::Proposal {
                    head: &p.target.branch,
                    base: &p.into,
                    title: &p.title,
                    body: &card,
                    draft: p.draft,
                },
            )?;
            // A failing status keeps a proposal with conflicts from being
            // merged where branch protection requires it.
            pulls.set_status(
                &cs.repo,
                &commit.to_string(),
                &crate::forge::Status::conflicts(p.conflicted.len()),
            )?;
            return Ok(Some(pull.url));
        }
        let card = approval_card(cs, p, self.mask, CARD_LIMIT);
        let have = repo
            .note(NOTES, commit)
            .map_err(ApplyError::git(&cs.repo, "read the note"))?;
        if have.as_deref() != Some(card.as_str()) {
            note(
                self.cache,
                repo,
                &cs.repo,
                &self.forge.url(&cs.repo),
                commit,
                &card,
                self.identity,
                self.signer,
                self.time,
            )?;
        }
        Ok(None)
    }

    /// The subject, the list of changes, and the trailers.
    fn message(&self, cs: &ChangeSet, subject: &str, marks: Marks<'_>) -> String {
        let plans = cs.plans.join(", ");
        let mut body = String::new();
        for f in &cs.files {
            let word = match f.action {
                FileAction::Create => "create",
                FileAction::Modify => "modify",
                FileAction::Delete => "delete",
                FileAction::Conflict => "CONFLICT",
                FileAction::Drift => "restore",
            };
            let _ = write!(body, "{word} {}", f.path);
            if let Some(reason) = &f.reason {
                let _ = write!(body, " ({reason})");
            }
            body.push('\n');
        }
        let mut trailers: Vec<(&str, &str)> = vec![("Druppie-Plan", plans.as_str())];
        if let Some(env) = &cs.env {
            trailers.push(("Druppie-Environment", env));
        }
        if let Some(commit) = self.spec_commit {
            trailers.push(("Druppie-Spec-Commit", commit));
        }
        if !cs.render_digest.is_empty() {
            trailers.push(("Druppie-Render-Digest", &cs.render_digest));
        }
        if let Some(id) = marks.proposal {
            trailers.push((crate::execution::PROPOSAL_TRAILER, id));
        }
        if let Some(from) = marks.promoted_from {
            trailers.push((crate::execution::PROMOTED_TRAILER, from));
        }
        trailers.push(("Druppie-Trigger", self.trigger));
        message(subject, &body, &trailers)
    }
}

/// The change sets at `sets` as one (one commit of several plans).
fn together<'c>(changes: &'c ChangeSets, sets: &[usize]) -> Cow<'c, ChangeSet> {
    match sets {
        [one] => Cow::Borrowed(&changes.sets[*one]),
        _ => {
            let mut all = sets.iter().map(|&i| changes.sets[i].clone());
            let mut whole = all.next().expect("a commit holds a change set");
            all.for_each(|cs| whole.take_in(cs));
            Cow::Owned(whole)
        }
    }
}

/// `cs` as it applies to `base`: the environment's list of Flux
/// directories, when `cs` changes it, recomputed from the tree at `base`
/// (an earlier commit of the same run may have listed another plan).
fn on_tree<'c>(
    repo: &Batch<'_>,
    cs: &'c ChangeSet,
    base: Option<ObjectId>,
) -> Result<Cow<'c, ChangeSet>, ApplyError> {
    FluxTrees::default().on(repo, cs, base)
}

/// The files of each environment's Flux directory on a branch as
/// commits are written on it: read from the branch once, then kept up
/// to date with each commit written, so a thousand commits in a row do
/// not read the directory a thousand times.
#[derive(Default)]
struct FluxTrees(BTreeMap<String, BTreeMap<String, ObjectId>>);

impl FluxTrees {
    /// `cs` with its environment's list of Flux directories as it is
    /// on `base` (the tip the commits so far made).
    fn on<'c>(
        &mut self,
        repo: &Batch<'_>,
        cs: &'c ChangeSet,
        base: Option<ObjectId>,
    ) -> Result<Cow<'c, ChangeSet>, ApplyError> {
        let Some(env) = cs.env.as_deref() else {
            return Ok(Cow::Borrowed(cs));
        };
        let list = crate::render::flux::list_path(env);
        if !cs.files.iter().any(|f| f.path == list) {
            return Ok(Cow::Borrowed(cs));
        }
        let tree = match self.0.entry(env.to_owned()) {
            std::collections::btree_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::btree_map::Entry::Vacant(new) => new.insert(match base {
                Some(base) => repo
                    .files_at(base, &crate::spec::names::flux_dir(env))
                    .map_err(ApplyError::git(&cs.repo, "read the base tree"))?,
                None => BTreeMap::new(),
            }),
        };
        let mut on = cs.clone();
        crate::diff::list::set(
            env,
            || Some(&*tree),
            &mut on.files,
            |path, id| {
                repo.blob(id)
                    .map_err(ApplyError::git(&cs.repo, "read the base tree"))?
                    .ok_or_else(|| {
                        ApplyError::git(&cs.repo, "read the base tree")(crate::git::Error::new(
                            format!("`{path}` is missing from the object database"),
                        ))
                    })
            },
            |files| crate::diff::list::settled(env, files),
        )?;
        Ok(Cow::Owned(on))
    }

    /// Takes in what `cs`, as written, changed in its environment's Flux
    /// directory (a directory not read yet is read at the next base).
    fn written(&mut self, cs: &ChangeSet) {
        let Some(env) = cs.env.as_deref() else {
            return;
        };
        let Some(tree) = self.0.get_mut(env) else {
            return;
        };
        let root = format!("{}/", crate::spec::names::flux_dir(env));
        for f in cs.files.iter().filter(|f| f.path.starts_with(&root)) {
            match &f.new {
                Some(bytes) => tree.insert(f.path.clone(), crate::git::blob_id(bytes)),
                None => tree.remove(&f.path),
            };
        }
    }
}

/// One plan's commit as done: its plans, what happened, and the
/// environment it promotes the change from.
type PlanDone = (Vec<String>, Done, Option<String>);

/// What a commit carries besides the change: the proposal's id, and the
/// environment it promotes the change from.
#[derive(Clone, Copy)]
struct Marks<'a> {
    proposal: Option<&'a str>,
    promoted_from: Option<&'a str>,
}

/// `cs` as shown on a proposal built on `base` (the card names it).
fn on_base(cs: &ChangeSet, base: Option<ObjectId>) -> ChangeSet {
    let mut on = cs.clone();
    if let Some(b) = base {
        on.base = Some(b.to_string());
        on.source = crate::live::at(b);
    }
    on
}

/// The longest approval card in a git note.
const CARD_LIMIT: usize = 60_000;

/// The comment a proposal carries: what merging it changes, cut at
/// about `limit` bytes.
pub fn approval_card(
    cs: &ChangeSet,
    p: &crate::execution::Proposal,
    mask: &crate::diff::report::Mask,
    limit: usize,
) -> String {
    let one = ChangeSets {
        sets: vec![cs.clone()],
        ..ChangeSets::default()
    };
    let mut heading =
        "druppie proposes these changes; merging this branch approves them.".to_owned();
    if !p.conflicted.is_empty() {
        heading.push_str(
            "\n\n**CONFLICT**: these files carry conflict markers where a person's edit and the spec's change clash. Resolve each on this branch before merging; a merge with markers in a file is recorded as a violation:\n",
        );
        for path in &p.conflicted {
            heading.push_str(&format!("\n- `{path}`"));
        }
    }
    crate::diff::report::comment(&heading, &one, mask, limit)
}
