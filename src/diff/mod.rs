//! `diff`: [`Desired`] + live repos -> [`ChangeSets`].
//!
//! Per target (a project repo, or one environment of the infra repo) and
//! per location in it (a project repo's root; a plan's directory in the
//! infra repo), every file is classified from three blob ids: the new
//! render, the live file, and the blob the location's lock records (see
//! [`classify`]). Content is read only for files that change. A seeded
//! file changed on both sides is merged three-way (base: the locked blob
//! from the repo's history); a clash is a conflict carrying the merged text
//! with markers. Files the lock does not list are never touched, and a
//! locked file no longer rendered is deleted only if unmodified.
//!
//! Without a plan filter, plan directories in the infra repo whose plan is
//! gone from the spec are pruned the same way.
//!
//! `diff` runs render and policy for one plan and environment at a time
//! on every core and keeps only the changes.

mod classify;
pub mod report;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

pub use classify::{Decision, classify};

use crate::git::{ObjectId, merge3};
use crate::live::{self, LiveRepo, Sources};
use crate::lock::{LOCK_FILE, Lock};
use crate::policy::{Checker, Finding};
use crate::render::{RepoKind, Target, Templates, join};
use crate::spec::Diagnostics;
use crate::spec::model::{Plan, Platform, Trust};
use crate::spec::validate::Validated;

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
}

impl ChangeSet {
    pub fn count(&self, action: Action) -> usize {
        self.files.iter().filter(|f| f.action == action).count()
    }
}

/// Every change set, and the repos that could not be read.
#[derive(Debug, Default)]
pub struct ChangeSets {
    pub sets: Vec<ChangeSet>,
    pub errors: Vec<live::Error>,
    /// Values of secret inputs: masked wherever changes are shown.
    pub secrets: Vec<String>,
}

/// Which plans and environments the desired state covers: without a plan
/// filter, plan directories of removed plans are pruned too.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub plan: Option<String>,
    pub env: Option<String>,
}

/// Where the live repos are and what the run covers.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub sources: &'a Sources,
    pub scope: &'a Scope,
    /// Recorded in every lock (the spec checkout's commit, when known).
    pub spec_commit: Option<&'a str>,
}

/// What one plan in one environment contributes.
#[derive(Default)]
struct Part {
    sets: Vec<ChangeSet>,
    findings: Vec<Finding>,
    errors: Vec<live::Error>,
    secrets: Vec<String>,
}

/// Composes, renders, checks and compares every selected plan ×
/// environment (from [`crate::compose::select`]) with the live repos. Each
/// is handled whole on a worker thread and only its changes are kept:
/// memory grows with the changes, not with the size of the rendered
/// trees.
///
/// # Errors
/// Every compose and render diagnostic (wiring, templates, paths).
pub fn diff(
    v: &Validated,
    selection: &[(&Plan, &str)],
    options: &Options<'_>,
) -> Result<ChangeSets, Diagnostics> {
    let platform = v
        .spec
        .platform
        .as_ref()
        .expect("validated: plans imply a platform");
    let templates = Templates::load(v, selection)?;
    let mut out = ChangeSets::default();
    let repos = open_repos(
        v,
        platform,
        selection,
        &templates,
        options.sources,
        &mut out.errors,
    );
    let infra = repos.get(&platform.infra.repo);
    // Every environment in scope: its files in the infra repo.
    let mut env_live: BTreeMap<&str, BTreeMap<String, ObjectId>> = BTreeMap::new();
    if let Some(infra) = infra {
        for (env, settings) in platform.environments.iter() {
            if options.scope.env.as_deref().is_some_and(|e| e != env.value) {
                continue;
            }
            let dir = settings.path.value.trim_end_matches('/');
            match infra.files_under(dir) {
                Ok(files) => {
                    let full = files.into_iter().map(|(rel, id)| (join(dir, &rel), id));
                    env_live.insert(&env.value, full.collect());
                }
                Err(e) => out.errors.push(e),
            }
        }
    }
    let parts = crate::par::map_init(
        selection,
        Some(crate::spec::load::PARSE_STACK),
        || (Checker::new(v), crate::template::environment()),
        |(checker, engine), (plan, env)| {
            let instance = crate::compose::instance(v, engine, plan, env).map_err(Diagnostics)?;
            let (desired, diags) = templates.render_instance(&instance, options.spec_commit);
            if diags.has_errors() {
                return Err(diags);
            }
            let mut part = Part {
                findings: checker.check(&desired),
                secrets: secret_values(&instance),
                ..Part::default()
            };
            for ((name, env), target) in &desired.targets {
                let Some(repo) = repos.get(name) else {
                    continue;
                };
                let own;
                let live = match env {
                    Some(e) => match env_live.get(e.as_str()) {
                        Some(files) => files,
                        None => continue,
                    },
                    None => match repo.files_under("") {
                        Ok(files) => {
                            own = files;
                            &own
                        }
                        Err(e) => {
                            part.errors.push(e);
                            continue;
                        }
                    },
                };
                let mut cs = change_set(platform, repo, env.as_deref());
                cs.plans.clone_from(&target.plans);
                for dir in target.locks.keys() {
                    if let Err(e) = diff_location(&mut cs, repo, live, Some(target), dir) {
                        part.errors.push(e);
                    }
                }
                part.sets.push(cs);
            }
            Ok(part)
        },
    );
    let mut sets: BTreeMap<(String, Option<String>), ChangeSet> = BTreeMap::new();
    let mut findings = Vec::new();
    let mut diags = Diagnostics::default();
    for part in parts {
        let part = match part {
            Ok(p) => p,
            Err(found) => {
                diags.extend(found.0);
                continue;
            }
        };
        out.errors.extend(part.errors);
        out.secrets.extend(part.secrets);
        findings.extend(part.findings);
        for cs in part.sets {
            let key = (cs.repo.clone(), cs.env.clone());
            match sets.get_mut(&key) {
                Some(whole) => {
                    for plan in cs.plans {
                        if !whole.plans.contains(&plan) {
                            whole.plans.push(plan);
                        }
                    }
                    whole.files.extend(cs.files);
                    whole.notes.extend(cs.notes);
                }
                None => {
                    sets.insert(key, cs);
                }
            }
        }
    }
    if diags.has_errors() {
        diags.sort();
        return Err(diags);
    }
    // Every environment in scope gets an infra change set, and without a
    // plan filter a removed plan's directory is pruned.
    if let Some(infra) = infra {
        for (env, live) in &env_live {
            let key = (infra.name.clone(), Some((*env).to_owned()));
            let cs = sets
                .entry(key)
                .or_insert_with(|| change_set(platform, infra, Some(env)));
            if options.scope.plan.is_some() {
                continue;
            }
            let dir = platform
                .environments
                .get(env)
                .map_or("", |s| s.path.value.trim_end_matches('/'));
            let covered: Vec<String> = selection
                .iter()
                .filter(|(_, e)| e == env)
                .map(|(plan, _)| format!("{dir}/{}", plan.name.value))
                .collect();
            for path in live.keys() {
                let Some(plan_dir) = path.strip_suffix(&format!("/{LOCK_FILE}")) else {
                    continue;
                };
                let one_deep = plan_dir
                    .strip_prefix(dir)
                    .and_then(|r| r.strip_prefix('/'))
                    .is_some_and(|r| !r.is_empty() && !r.contains('/'));
                if one_deep && !covered.iter().any(|c| c == plan_dir) {
                    if let Err(e) = diff_location(cs, infra, live, None, plan_dir) {
                        out.errors.push(e);
                    }
                }
            }
        }
    }
    out.sets = sets.into_values().collect();
    for finding in findings {
        let home = out
            .sets
            .iter_mut()
            .find(|cs| cs.repo == finding.repo && cs.env == finding.env);
        if let Some(cs) = home {
            cs.findings.push(finding);
        } else if let Some(cs) = out.sets.first_mut() {
            cs.findings.push(finding);
        }
    }
    Ok(out)
}

/// Opens the infra repo and the project repos the selection renders into;
/// a repo that cannot be read is an error and is left out.
fn open_repos(
    v: &Validated,
    platform: &Platform,
    selection: &[(&Plan, &str)],
    templates: &Templates<'_>,
    sources: &Sources,
    errors: &mut Vec<live::Error>,
) -> BTreeMap<String, LiveRepo> {
    let infra = platform.infra.repo.as_str();
    let mut wanted: Vec<(String, &str)> = vec![(infra.to_owned(), platform.infra.branch.as_str())];
    for (plan, _) in selection {
        let Some(stack) = v.spec.stack(&plan.stack.value) else {
            continue;
        };
        for (name, component) in stack.components.iter() {
            if !templates.renders_project(&component.block.value) {
                continue;
            }
            let naming = &platform.projects.naming.value;
            if let Ok(repo) = crate::spec::names::repo_name(naming, &plan.name.value, &name.value) {
                wanted.push((repo, &platform.projects.branch));
            }
        }
    }
    let mut repos = BTreeMap::new();
    for (name, branch) in wanted {
        if repos.contains_key(&name) {
            continue;
        }
        let path = sources.locate(&name, infra);
        match LiveRepo::open(&name, path.as_deref(), branch) {
            Ok(repo) => {
                repos.insert(name, repo);
            }
            Err(e) => errors.push(e),
        }
    }
    repos
}

/// The values of an instance's secret inputs, to mask wherever output is
/// shown.
fn secret_values(instance: &crate::compose::Instance) -> Vec<String> {
    instance
        .components
        .iter()
        .flat_map(|c| {
            c.secret_inputs
                .iter()
                .filter_map(|name| match c.inputs.get(name)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                })
        })
        .collect()
}

/// An empty change set for `repo` (in `env`, for the infra repo).
fn change_set(platform: &Platform, repo: &LiveRepo, env: Option<&str>) -> ChangeSet {
    let settings = env.and_then(|e| platform.environments.get(e));
    let (kind, branch) = match env {
        Some(_) => (RepoKind::Infra, &platform.infra.branch),
        None => (RepoKind::Project, &platform.projects.branch),
    };
    ChangeSet {
        repo: repo.name.clone(),
        kind,
        env: env.map(str::to_owned),
        trust: settings.map(|s| s.trust),
        plans: Vec::new(),
        exists: repo.exists(),
        branch: branch.clone(),
        base: repo.base.map(|b| b.to_string()),
        source: live::describe(repo),
        files: Vec::new(),
        notes: Vec::new(),
        findings: Vec::new(),
    }
}

/// The live files of one location: path relative to it -> blob id.
fn live_in<'l>(
    live: &'l BTreeMap<String, ObjectId>,
    dir: &str,
) -> impl Iterator<Item = (&'l str, ObjectId)> + 'l {
    let start = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let len = start.len();
    live.range(start.clone()..)
        .take_while(move |(p, _)| p.starts_with(&start))
        .map(move |(p, id)| (&p[len..], *id))
}

fn diff_location(
    cs: &mut ChangeSet,
    repo: &LiveRepo,
    live: &BTreeMap<String, ObjectId>,
    target: Option<&Target>,
    dir: &str,
) -> Result<(), live::Error> {
    let lock_path = join(dir, LOCK_FILE);
    let desired_lock = target.and_then(|t| t.locks.get(dir));
    let desired_lock_file = target.and_then(|t| t.files.get(&lock_path));
    let desired_lock_id = desired_lock_file.map(|f| crate::git::blob_id(&f.bytes));
    let live_lock_id = live.get(&lock_path).copied();
    let locked: Option<Cow<'_, Lock>> = match (live_lock_id, desired_lock) {
        (None, _) => None,
        (Some(l), Some(d)) if Some(l) == desired_lock_id => Some(Cow::Borrowed(d)),
        (Some(l), _) => {
            let text = repo.read(&lock_path, l)?;
            match Lock::parse(&String::from_utf8_lossy(&text)) {
                Ok(lock) => Some(Cow::Owned(lock)),
                Err(e) => {
                    cs.notes.push(Note {
                        path: lock_path.clone(),
                        message: format!(
                            "cannot read the lock ({e}); its files are treated as not druppie's"
                        ),
                    });
                    None
                }
            }
        }
    };
    let locked_id = |rel: &str| -> Option<ObjectId> {
        let f = locked.as_ref()?.files.get(rel)?;
        ObjectId::from_hex(f.blob.as_bytes()).ok()
    };
    let live_here: BTreeMap<&str, ObjectId> = live_in(live, dir).collect();
    let mut step = Step { cs, repo, dir };
    if let (Some(target), Some(lock)) = (target, desired_lock) {
        for (rel, file) in target.files_in(dir) {
            if rel == LOCK_FILE {
                continue;
            }
            let d = lock
                .files
                .get(rel)
                .and_then(|f| ObjectId::from_hex(f.blob.as_bytes()).ok());
            let l = live_here.get(rel).copied();
            let decision = classify(file.mode, d, l, locked_id(rel));
            step.act(rel, decision, Some(&file.bytes), l, locked_id(rel))?;
        }
    }
    if let Some(locked) = &locked {
        for (rel, f) in &locked.files {
            if desired_lock.is_some_and(|d| d.files.contains_key(rel)) {
                continue;
            }
            let l = live_here.get(rel.as_str()).copied();
            let decision = classify(f.ownership, None, l, locked_id(rel));
            step.act(rel, decision, None, l, None)?;
        }
    }
    // The lock itself: a new spec commit alone does not change it.
    let lock_action = match (live_lock_id, desired_lock) {
        (None, Some(_)) => Some(Action::Create),
        (Some(_), None) => Some(Action::Delete),
        (Some(l), Some(d)) => {
            let same =
                Some(l) == desired_lock_id || locked.as_ref().is_some_and(|lk| lk.same_render(d));
            (!same).then_some(Action::Modify)
        }
        (None, None) => None,
    };
    if let Some(action) = lock_action {
        let old = live_lock_id
            .map(|id| repo.read(&lock_path, id))
            .transpose()?;
        cs.files.push(FileChange {
            path: lock_path,
            action,
            old,
            new: desired_lock_file.map(|f| f.bytes.clone()),
            reason: None,
        });
    }
    Ok(())
}

/// Turns decisions into file changes, reading content only when needed.
struct Step<'a> {
    cs: &'a mut ChangeSet,
    repo: &'a LiveRepo,
    dir: &'a str,
}

impl Step<'_> {
    fn act(
        &mut self,
        rel: &str,
        decision: Decision,
        desired: Option<&[u8]>,
        live: Option<ObjectId>,
        locked: Option<ObjectId>,
    ) -> Result<(), live::Error> {
        let path = join(self.dir, rel);
        let old = match decision {
            Decision::Unchanged | Decision::Create | Decision::Keep(_) => None,
            _ => live.map(|id| self.repo.read(&path, id)).transpose()?,
        };
        let render = || desired.map(<[u8]>::to_vec);
        let (action, new, reason) = match decision {
            Decision::Unchanged => return Ok(()),
            Decision::Keep(message) => {
                self.cs.notes.push(Note {
                    path,
                    message: message.to_owned(),
                });
                return Ok(());
            }
            Decision::Create => (Action::Create, render(), None),
            Decision::Modify => (Action::Modify, render(), None),
            Decision::Delete => (Action::Delete, None, None),
            Decision::Drift => {
                let why = if live.is_some() {
                    "managed file edited in the repo; the change set restores the render"
                } else {
                    "managed file deleted in the repo; the change set restores it"
                };
                (Action::Drift, render(), Some(why.to_owned()))
            }
            Decision::Conflict(why) => {
                let new = match (&old, desired) {
                    (Some(ours), Some(theirs)) => merge3(b"", ours, theirs, LABELS).bytes,
                    _ => render().unwrap_or_default(),
                };
                (Action::Conflict, Some(new), Some(why.to_owned()))
            }
            Decision::Merge => {
                let ours = old.as_deref().unwrap_or_default();
                let theirs = desired.unwrap_or_default();
                let base = locked.and_then(|id| self.repo.historic(id));
                let merged = merge3(base.as_deref().unwrap_or_default(), ours, theirs, LABELS);
                match (base.is_some(), merged.clean) {
                    (true, true) => (
                        Action::Modify,
                        Some(merged.bytes),
                        Some("merged with an edit made in the repo".to_owned()),
                    ),
                    (true, false) => (
                        Action::Conflict,
                        Some(merged.bytes),
                        Some("edited in the repo and changed by the spec, on the same lines".to_owned()),
                    ),
                    (false, _) => (
                        Action::Conflict,
                        Some(merged.bytes),
                        Some(
                            "edited in the repo and changed by the spec; the last render is not in the repo's history to merge from"
                                .to_owned(),
                        ),
                    ),
                }
            }
        };
        self.cs.files.push(FileChange {
            path,
            action,
            old,
            new,
            reason,
        });
        Ok(())
    }
}

/// Conflict marker labels: the repo's side, then the render's.
const LABELS: (&str, &str) = ("live", "rendered");

/// Whether a change set changes anything.
pub fn has_changes(cs: &ChangeSet) -> bool {
    !cs.files.is_empty()
}
