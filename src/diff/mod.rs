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
//! gone from the spec (or from an environment) are pruned the same way,
//! with the plan's Flux directory, in one change set.
//!
//! An infra change set that creates or deletes a plan's Flux directory
//! also carries the environment's list of them ([`list`]), computed from
//! the live tree and that one change.
//!
//! `diff` runs render and policy for one plan and environment at a time
//! on every core and keeps only the changes.

mod change;
mod classify;
mod envs;
pub mod list;
mod location;
mod merged;
mod prune;
pub mod report;
pub use change::{Action, ChangeSet, ChangeSets, FileChange, Note, Unverified};

use std::collections::{BTreeMap, BTreeSet};

pub use classify::{Decision, classify};

use crate::compose::ComposeOptions;
use crate::git::ObjectId;
use crate::live::{self, LiveRepo, Sources};
use crate::lock::LOCK_FILE;
use crate::policy::{Checker, Finding};
use crate::render::{RepoKind, Templates, join};
use crate::spec::model::Platform;
use crate::spec::validate::Validated;
use crate::spec::{Diagnostics, Pick, Selection};
use location::diff_location;
pub use location::has_markers;

/// Where the live repos are and what the run covers.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub sources: &'a Sources,
    /// The selection the run covers: without a plan filter, plan
    /// directories of removed plans are pruned too.
    pub scope: &'a ComposeOptions,
    /// Recorded in every lock (the spec checkout's commit, when known).
    pub spec_commit: Option<&'a str>,
    /// What composing and rendering may hold and produce (`[render]`).
    pub limits: crate::template::Limits,
    /// druppie's own key, to tell its commits on proposal branches from
    /// a person's (without it, by their `Druppie-Plan` trailer).
    pub own_key: Option<&'a crate::git::sign::OwnKey>,
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
/// environment of `selection` with the live repos. Each
/// is handled whole on a worker thread and only its changes are kept:
/// memory grows with the changes, not with the size of the rendered
/// trees.
///
/// # Errors
/// Every compose and render diagnostic (wiring, templates, paths).
pub fn diff(
    v: &Validated,
    selection: &Selection,
    options: &Options<'_>,
) -> Result<ChangeSets, Diagnostics> {
    // A spec without a platform (a catalog) deploys nothing.
    let Some(deployment) = &v.deployment else {
        return Ok(ChangeSets::default());
    };
    let platform = &deployment.platform;
    let chosen: BTreeSet<(&str, &str)> = v
        .picks(selection)
        .iter()
        .map(|p| (p.plan_name(), p.env_name()))
        .collect();
    // Promotion reads the environments before the selected ones too.
    let selection = v.picks(&selection.with_earlier(v));
    let templates = Templates::load(v, deployment, &selection, &options.limits)?;
    let mut out = ChangeSets {
        order: v.env_names().into_iter().map(str::to_owned).collect(),
        ..ChangeSets::default()
    };
    let repos = open_repos(
        platform,
        &selection,
        &templates,
        options.sources,
        &mut out.errors,
    );
    let infra = repos.get(&platform.infra.repo.value);
    let mut envs: BTreeSet<&str> = selection.iter().map(Pick::env_name).collect();
    if options.scope.plan.is_none() {
        // Every environment may hold a removed plan to prune, also one
        // no selected plan deploys to (the last plan left it, or the
        // others are another shard's).
        let named = options.scope.env.as_deref();
        envs.extend(
            platform
                .environments
                .keys()
                .filter(|e| named.is_none_or(|n| n == *e)),
        );
    }
    let reach = envs::Reach::of(options.scope.plan.is_none(), chosen.len());
    let env_live = envs::EnvFiles::new(platform, infra, envs, reach);
    out.errors.extend(env_live.errors());
    let world = World {
        v,
        platform,
        templates: &templates,
        repos: &repos,
        env_live: &env_live,
        reach,
        spec_commit: options.spec_commit,
        limits: &options.limits,
    };
    let parts = crate::par::map_init(
        &selection,
        Some(crate::spec::load::PARSE_STACK),
        || {
            let checker = Checker::new(v, options.limits.template_memory);
            (checker, crate::template::environment())
        },
        |(checker, engine), pick| {
            let context = !chosen.contains(&(pick.plan_name(), pick.env_name()));
            world.diff_instance(checker, engine, pick).map(|mut part| {
                // A project repo is the plan's, whichever environment
                // renders it.
                for cs in part.sets.iter_mut().filter(|cs| cs.env.is_some()) {
                    cs.context = context;
                }
                part
            })
        },
    );
    let mut sets = merged::Merged::default();
    let mut homeless = Vec::new();
    let mut diags = Diagnostics::default();
    for part in parts {
        match part {
            Ok(part) => merge_part(&mut sets, &mut out, &mut homeless, part),
            Err(found) => diags.extend(found.0),
        }
    }
    if diags.has_errors() {
        diags.sort();
        return Err(diags);
    }
    // Without a plan filter, a removed plan's directory is pruned, as
    // that plan's change set (by the run holding its shard).
    if let Some(infra) = infra
        && options.scope.plan.is_none()
    {
        let scoped = env_live
            .envs()
            .filter(|env| options.scope.env.as_deref().is_none_or(|e| e == *env));
        let shards = options.scope.shards.as_ref();
        for env in scoped {
            let covered = (&selection[..], shards);
            // Only a directory that is not a selected plan's can be a
            // removed plan's: without one, the files need not be read.
            let names = env_live.names(env);
            if names.is_some_and(|n| !prune::may_hold_removed(env, n, covered)) {
                continue;
            }
            let Some(live) = env_live.get(env) else {
                continue;
            };
            for cs in prune::removed_plans(infra, (env, live), platform, covered, &mut out.errors) {
                sets.replace(cs);
            }
        }
    }
    out.errors.extend(env_live.errors());
    // A finding whose repo could not be read goes with the first set.
    if let Some(first) = sets.first_mut() {
        first.findings.extend(homeless);
    }
    out.sets = sets.into_sorted();
    for repo in repos.values() {
        match repo.proposals(options.own_key) {
            Ok(found) => out.proposals.extend(found),
            Err(e) => out.errors.push(e),
        }
    }
    Ok(out)
}

/// What every worker reads.
struct World<'a> {
    v: &'a Validated,
    platform: &'a Platform,
    templates: &'a Templates<'a>,
    repos: &'a BTreeMap<String, LiveRepo>,
    /// Each environment's files in the infra repo (full paths), as far
    /// as `reach` reads them.
    env_live: &'a envs::EnvFiles<'a>,
    reach: envs::Reach,
    spec_commit: Option<&'a str>,
    limits: &'a crate::template::Limits,
}

impl World<'_> {
    /// One plan in one environment: compose, render, check, compare.
    fn diff_instance(
        &self,
        checker: &Checker<'_>,
        engine: &minijinja::Environment<'_>,
        pick: &Pick<'_>,
    ) -> Result<Part, Diagnostics> {
        let instance =
            crate::compose::instance(self.v, engine, pick, self.limits).map_err(Diagnostics)?;
        let (desired, diags) = self.templates.render_instance(&instance, self.spec_commit);
        if diags.has_errors() {
            return Err(diags);
        }
        let mut part = Part {
            findings: checker.check(&desired),
            secrets: secret_values(&instance),
            ..Part::default()
        };
        for ((name, env), target) in &desired.targets {
            let Some(repo) = self.repos.get(name) else {
                continue;
            };
            // An environment's locations whose tree is what the render
            // makes are left alone; the others are compared file by file.
            let dirs: Vec<&String> = match (env, self.reach) {
                (Some(e), envs::Reach::Whole) => (target.locks.keys())
                    .filter(|dir| {
                        let rendered = location::rendered_tree(target, dir);
                        !self.env_live.unchanged(e, dir, rendered)
                    })
                    .collect(),
                _ => target.locks.keys().collect(),
            };
            // A project repo's files; an environment's are read as far
            // as `reach` goes (when a location there is compared), those
            // of its Flux directory only if its list changes.
            let own;
            let live = match (env, self.reach) {
                (Some(_), envs::Reach::Whole) if dirs.is_empty() => None,
                (Some(e), envs::Reach::Whole) => match self.env_live.get(e) {
                    Some(files) => Some(files),
                    None => continue,
                },
                (Some(_), envs::Reach::Locations) => None,
                (None, _) => match repo.files_under("") {
                    Ok(files) => {
                        own = files;
                        Some(&own)
                    }
                    Err(e) => {
                        part.errors.push(e);
                        continue;
                    }
                },
            };
            let mut cs = change_set(self.platform, repo, env.as_deref());
            cs.plans.clone_from(&target.plans);
            cs.parallel = env.as_deref().is_some_and(|e| {
                pick.plan.promote.get(e) == Some(&crate::spec::model::Promote::Parallel)
            });
            cs.render_digest = render_digest(target);
            for dir in dirs {
                let diffed = match live {
                    Some(live) => diff_location(&mut cs, repo, live, Some(target), dir),
                    None => repo
                        .files_under(dir)
                        .and_then(|own| diff_location(&mut cs, repo, &own, Some(target), dir)),
                };
                if let Err(e) = diffed {
                    part.errors.push(e);
                }
            }
            if let Some(env) = env
                && let Err(e) = list::add(
                    &mut cs,
                    repo,
                    env,
                    || self.env_live.get(env),
                    |files| self.env_live.settled(env, files),
                )
            {
                part.errors.push(e);
            }
            part.sets.push(cs);
        }
        Ok(part)
    }
}

/// Adds one instance's change sets (one per target it renders into),
/// each with the policy findings on its own files, and the rest of what
/// it found.
fn merge_part(
    sets: &mut merged::Merged,
    out: &mut ChangeSets,
    homeless: &mut Vec<Finding>,
    mut part: Part,
) {
    out.errors.extend(part.errors);
    out.secrets.extend(part.secrets);
    for finding in part.findings {
        match part
            .sets
            .iter_mut()
            .find(|cs| cs.repo == finding.repo && cs.env == finding.env)
        {
            Some(cs) => cs.findings.push(finding),
            None => homeless.push(finding),
        }
    }
    for cs in part.sets {
        sets.add(cs);
    }
}

/// The repos a selection renders into, with their default branches: the
/// infra repo first, then every project repo of a block with `project/`
/// templates.
pub fn target_repos<'p>(
    platform: &'p Platform,
    selection: &[Pick<'_>],
    templates: &Templates<'_>,
) -> Vec<(String, &'p str)> {
    let mut wanted: Vec<(String, &str)> = vec![(
        platform.infra.repo.value.clone(),
        platform.infra.branch.value.as_str(),
    )];
    let components = selection
        .iter()
        .flat_map(|p| p.model.components.iter().map(|c| (p.block(c), c)));
    for (block, component) in components {
        if templates.renders_project(block) && !wanted.iter().any(|(r, _)| *r == component.repo) {
            wanted.push((component.repo.clone(), &platform.projects.branch.value));
        }
    }
    wanted
}

/// Opens the repos the selection renders into; a repo that cannot be
/// read is an error and is left out.
fn open_repos(
    platform: &Platform,
    selection: &[Pick<'_>],
    templates: &Templates<'_>,
    sources: &Sources,
    errors: &mut Vec<live::Error>,
) -> BTreeMap<String, LiveRepo> {
    let mut repos = BTreeMap::new();
    for (name, branch) in target_repos(platform, selection, templates) {
        let path = sources.locate(&name, &platform.infra.repo.value);
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
        Some(_) => (RepoKind::Infra, &platform.infra.branch.value),
        None => (RepoKind::Project, &platform.projects.branch.value),
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
        render_digest: String::new(),
        context: false,
        parallel: false,
        promoted_from: None,
    }
}

/// The render digest of a desired target: [`freight_digest`] over its
/// locks and the lock files it renders.
fn render_digest(target: &crate::render::Target) -> String {
    freight_digest(target.locks.iter().map(|(dir, lock)| {
        let written = target.files.get(&join(dir, LOCK_FILE));
        (
            dir.as_str(),
            lock,
            written.map(|f| crate::git::blob_id(&f.bytes)),
        )
    }))
}

/// A plan's "freight" in a target: SHA-256 over `path NUL blob-id LF`
/// of every file its locks list and of each lock file itself (`lock`:
/// the lock file's blob id), in path order, hex. One function for both
/// sides: the digest of a render (`Druppie-Render-Digest`, `diff
/// --json`'s `render_digest`) and of what is live (`druppie status`)
/// are equal exactly when the live locks are the rendered ones.
pub fn freight_digest<'a>(
    locks: impl IntoIterator<Item = (&'a str, &'a crate::lock::Lock, Option<ObjectId>)>,
) -> String {
    use sha2::Digest as _;
    let mut entries: Vec<(String, String)> = Vec::new();
    for (dir, lock, own) in locks {
        for (rel, file) in &lock.files {
            entries.push((join(dir, rel), file.blob.clone()));
        }
        if let Some(own) = own {
            entries.push((join(dir, LOCK_FILE), own.to_string()));
        }
    }
    entries.sort();
    let mut hash = sha2::Sha256::new();
    for (path, blob) in entries {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(blob.as_bytes());
        hash.update([b'\n']);
    }
    crate::hex::encode(&hash.finalize())
}
