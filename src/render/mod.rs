//! `render`: [`Resolved`] + templates -> [`Desired`].
//!
//! `templates/<block>/project/**` renders into the component's project
//! repo; `templates/<block>/infra/**` into the infra repo under
//! `<env path>/<plan>/<component>/`. A `.j2` suffix marks a template (the
//! suffix is stripped); other files are copied byte for byte. Paths may
//! hold template expressions. Per plan and environment druppie adds
//! `<env path>/<plan>/kustomization.yaml` (listing the namespace and every
//! component directory) and `namespace.yaml`, and the plan's Flux
//! directory `clusters/<env>/druppie/<plan>/` ([`flux`]).
//!
//! Every location (a project repo's root; a plan's directory and its Flux
//! directory in one environment of the infra repo) gets a [`Lock`]
//! recording what was rendered there, written beside the files as
//! `.druppie-lock.yaml`.
//!
//! A block's templates may include and import only its own files and
//! `templates/_partials/`: each block renders in an environment that holds
//! nothing else. Project repos do not vary by environment: they render
//! with the context of the plan's first environment.

mod context;
pub mod flux;
mod read;
mod tree;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::compose::{Instance, Resolved};
use crate::git::blob_id;
use crate::lock::{LOCK_FILE, Lock, LockedComponent, LockedFile};
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::model::{Block, OwnershipMode, Platform};
use crate::spec::names;
use crate::spec::validate::{Deployment, Validated};
use crate::spec::{Diagnostics, Pick};

pub use read::Source;
pub use tree::{Tally, TemplateSet};

use crate::template::Limits;

/// Which repo a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    Project,
    Infra,
}

/// What one target repo (or, for the infra repo, one environment of it)
/// should contain.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub repo: String,
    pub kind: RepoKind,
    /// The environment, for the infra repo.
    pub env: Option<String>,
    pub plans: Vec<String>,
    /// Path in the repo -> file, lock files included.
    #[serde(skip)]
    pub files: BTreeMap<String, File>,
    /// Location (directory in the repo; empty: the root) -> its lock.
    #[serde(skip)]
    pub locks: BTreeMap<String, Lock>,
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub bytes: Vec<u8>,
    pub mode: OwnershipMode,
}

impl Target {
    /// A target like this one, with no plans, files or locks.
    fn clone_empty(&self) -> Target {
        Target {
            repo: self.repo.clone(),
            kind: self.kind,
            env: self.env.clone(),
            plans: Vec::new(),
            files: BTreeMap::new(),
            locks: BTreeMap::new(),
        }
    }

    /// The files of one location, as (path relative to it, file).
    pub fn files_in<'t>(&'t self, dir: &'t str) -> impl Iterator<Item = (&'t str, &'t File)> + 't {
        let start = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let len = start.len();
        self.files
            .range(start.clone()..)
            .take_while(move |(p, _)| p.starts_with(&start))
            .map(move |(p, f)| (&p[len..], f))
    }

    /// The plan whose location holds `path`: the lock of its nearest
    /// enclosing directory.
    pub fn plan_of(&self, path: &str) -> Option<&str> {
        let mut dir = path;
        loop {
            dir = dir.rfind('/').map_or("", |i| &dir[..i]);
            if let Some(lock) = self.locks.get(dir) {
                return Some(&lock.plan);
            }
            if dir.is_empty() {
                return None;
            }
        }
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Every target, keyed by (repo, environment).
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub targets: BTreeMap<(String, Option<String>), Target>,
}

/// Renders every instance within `limits`, and each environment's list
/// of the Flux directories rendered ([`flux::list`]). `spec_commit` (the
/// spec checkout's commit, when known) is recorded in every lock.
///
/// # Errors
/// Located diagnostics: template syntax errors, undefined variables, a
/// template out of fuel, an include outside the allowed roots, an unsafe or
/// clashing output path, an oversized output, a limit passed.
pub fn render(
    v: &Validated,
    resolved: &Resolved,
    spec_commit: Option<&str>,
    limits: &Limits,
) -> Result<Desired, Diagnostics> {
    let Some(deployment) = &v.deployment else {
        return Ok(Desired::default());
    };
    let uses = resolved.instances.iter().flat_map(|i| {
        i.components.iter().filter_map(|c| {
            let block = match &c.block.pin {
                None => v.spec.block(&c.block.id),
                Some(_) => v.spec.pinned(&c.block.id, &c.block.version),
            };
            Some((i.plan.as_str(), i.env.as_str(), block?))
        })
    });
    let templates = Templates::for_blocks(v, &deployment.platform, uses, limits)?;
    // The composed values are held while rendering: they count too.
    templates.tally.hold(resolved.bytes());
    let parts = crate::par::map(&resolved.instances, |instance| {
        templates.render_instance(instance, spec_commit)
    });
    let mut diags = Diagnostics::default();
    let mut desired = Desired::default();
    for (part, found) in parts {
        diags.extend(found.0);
        merge(&mut desired, part, &mut diags);
    }
    if diags.has_errors() {
        diags.sort();
        return Err(diags);
    }
    flux::add_lists(&mut desired);
    Ok(desired)
}

/// The template sets of a run: block id -> the spec commit of a pinned
/// block (`None`: the block as it is in the checkout) -> its templates.
#[derive(Default)]
struct Sets(BTreeMap<String, BTreeMap<Option<String>, TemplateSet>>);

impl Sets {
    fn get(&self, id: &str, pin: &Option<String>) -> Option<&TemplateSet> {
        self.0.get(id)?.get(pin)
    }

    fn of(&self, block: &Block) -> Option<&TemplateSet> {
        let pin = block.pin.as_ref().map(|p| p.commit.clone());
        self.get(block.id(), &pin)
    }

    fn of_ref(&self, block: &crate::compose::BlockRef) -> Option<&TemplateSet> {
        self.get(&block.id, &block.pin)
    }
}

/// The templates of every block some instance uses, ready to render
/// instances one at a time (from any thread), within one run's limits.
pub struct Templates<'a> {
    platform: &'a Platform,
    sets: Sets,
    /// Plan -> its first environment (project repos render with it).
    first_env: BTreeMap<&'a str, &'a str>,
    limits: Limits,
    /// What the instances rendered so far hold, all together.
    tally: Tally,
}

impl<'a> Templates<'a> {
    /// Reads the template trees of the blocks the picked plans use, to
    /// render within `limits`: the templates, read and compiled, count
    /// towards `limits.run_bytes`.
    ///
    /// # Errors
    /// An unreadable template, a template syntax error, or templates
    /// larger than the limits.
    pub fn load(
        v: &'a Validated,
        deployment: &'a Deployment,
        picks: &[Pick<'a>],
        limits: &Limits,
    ) -> Result<Templates<'a>, Diagnostics> {
        let uses = picks.iter().flat_map(|p| {
            p.model
                .components
                .iter()
                .map(|c| (p.plan_name(), p.env_name(), p.block(c)))
        });
        Templates::for_blocks(v, &deployment.platform, uses, limits)
    }

    /// Reads the template trees of the blocks `uses` names: (plan,
    /// environment, block), in composition order. A pinned block's
    /// templates and partials are those of its commit.
    fn for_blocks(
        v: &'a Validated,
        platform: &'a Platform,
        uses: impl Iterator<Item = (&'a str, &'a str, &'a Block)>,
        limits: &Limits,
    ) -> Result<Templates<'a>, Diagnostics> {
        let spec = &v.spec;
        let mut diags = Diagnostics::default();
        let mut loading = tree::Loading { limits, held: 0 };
        let checkout = Source::Disk(&spec.root);
        let partials = match TemplateSet::partials(checkout, &mut loading) {
            Ok(p) => p,
            Err(d) => return Err(Diagnostics(vec![*d])),
        };
        let mut sets = Sets::default();
        let mut first_env: BTreeMap<&str, &str> = BTreeMap::new();
        for (plan, env, block) in uses {
            first_env.entry(plan).or_insert(env);
            if sets.of(block).is_some() {
                continue;
            }
            let ownership = block.meta.ownership.as_ref();
            let loaded = match &block.pin {
                None => TemplateSet::load(checkout, block.id(), ownership, &partials, &mut loading),
                Some(pinned) => {
                    let source = Source::Pinned(pinned);
                    TemplateSet::partials(source, &mut loading).and_then(|partials| {
                        TemplateSet::load(source, block.id(), ownership, &partials, &mut loading)
                    })
                }
            };
            match loaded {
                Ok(set) => {
                    let pin = block.pin.as_ref().map(|p| p.commit.clone());
                    sets.0
                        .entry(block.id().to_owned())
                        .or_default()
                        .insert(pin, set);
                }
                // Past the run's limit, reading more would only hold more.
                Err(d) if loading.held > limits.run_bytes => return Err(Diagnostics(vec![*d])),
                Err(d) => diags.push(*d),
            }
        }
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(Templates {
            platform,
            sets,
            first_env,
            limits: *limits,
            tally: Tally::holding(loading.held),
        })
    }

    /// Whether `block` (as a plan uses it: pinned or not) has `project/`
    /// templates (a project repo to render).
    pub fn renders_project(&self, block: &Block) -> bool {
        self.sets.of(block).is_some_and(TemplateSet::has_project)
    }

    /// Renders one plan in one environment: its infra files, its project
    /// repos (for the plan's first environment), its plan files and its
    /// locks (when nothing failed).
    pub fn render_instance(
        &self,
        instance: &Instance,
        spec_commit: Option<&str>,
    ) -> (Desired, Diagnostics) {
        let first = self.first_env.get(instance.plan.as_str()) == Some(&instance.env.as_str());
        let mut budget = tree::Budget::new(&self.limits, &self.tally);
        render_instance(
            self.platform,
            &self.sets,
            instance,
            first,
            spec_commit,
            &mut budget,
        )
    }
}

/// One plan in one environment: its infra files, its project repos (for
/// the plan's first environment), its plan files and its locks.
fn render_instance(
    platform: &Platform,
    sets: &Sets,
    instance: &Instance,
    first_env: bool,
    spec_commit: Option<&str>,
    budget: &mut tree::Budget<'_>,
) -> (Desired, Diagnostics) {
    let mut desired = Desired::default();
    let mut diags = Diagnostics::default();
    for component in &instance.components {
        let set = sets
            .of_ref(&component.block)
            .expect("every block an instance uses was loaded");
        let ctx = context::for_component(instance, component);
        let origin = || {
            format!(
                "plan `{}`, component `{}`, environment `{}`",
                instance.plan, component.name, instance.env
            )
        };
        let infra = target(
            &mut desired,
            &platform.infra.repo.value,
            RepoKind::Infra,
            Some(&instance.env),
            &instance.plan,
        );
        let prefix = names::component_dir(&instance.infra_path, &instance.plan, &component.name);
        set.render_into(
            tree::Part::Infra,
            &ctx,
            &prefix,
            &origin,
            &mut infra.files,
            budget,
            &mut diags,
        );
        if set.has_project() && first_env {
            let project = target(
                &mut desired,
                &component.repo,
                RepoKind::Project,
                None,
                &instance.plan,
            );
            set.render_into(
                tree::Part::Project,
                &ctx,
                "",
                &origin,
                &mut project.files,
                budget,
                &mut diags,
            );
        }
    }
    plan_files(&mut desired, platform, instance, sets);
    if !diags.has_errors() {
        add_locks(&mut desired, platform, instance, first_env, spec_commit);
    }
    (desired, diags)
}

/// Adds one instance's targets to the whole.
fn merge(desired: &mut Desired, part: Desired, diags: &mut Diagnostics) {
    for (key, t) in part.targets {
        let whole = desired
            .targets
            .entry(key)
            .or_insert_with(|| t.clone_empty());
        for plan in t.plans {
            if !whole.plans.contains(&plan) {
                whole.plans.push(plan);
            }
        }
        for (path, file) in t.files {
            if whole.files.insert(path.clone(), file).is_some() {
                diags.push(Diagnostic::error(
                    format!("two plans write `{path}` in repo `{}`", whole.repo),
                    Location::file(format!("{}:{path}", whole.repo)),
                ));
            }
        }
        whole.locks.extend(t.locks);
    }
}

/// The locks of an instance's locations: its plan directory in the infra
/// repo and, for the plan's first environment, each project repo's root.
fn add_locks(
    desired: &mut Desired,
    platform: &Platform,
    instance: &Instance,
    first_env: bool,
    spec_commit: Option<&str>,
) {
    let locked = |c: &crate::compose::ComponentInstance| LockedComponent {
        name: c.name.clone(),
        block: c.block.id.clone(),
        version: c.block.version.clone(),
    };
    let infra_key = (
        platform.infra.repo.value.clone(),
        Some(instance.env.clone()),
    );
    let mut lock = Lock::new(&instance.plan, Some(&instance.env), spec_commit);
    lock.components = instance.components.iter().map(locked).collect();
    let dir = names::plan_dir(&instance.infra_path, &instance.plan);
    if let Some(target) = desired.targets.get_mut(&infra_key) {
        seal(target, &dir, lock);
        let flux = Lock::new(&instance.plan, Some(&instance.env), spec_commit);
        seal(
            target,
            &names::flux_plan_dir(&instance.env, &instance.plan),
            flux,
        );
    }
    if !first_env {
        return;
    }
    for component in &instance.components {
        if let Some(target) = desired.targets.get_mut(&(component.repo.clone(), None)) {
            let mut lock = Lock::new(&instance.plan, None, spec_commit);
            lock.components.push(locked(component));
            seal(target, "", lock);
        }
    }
}

/// Records the blob id and mode of every file under `dir` in `lock`, and
/// adds the lock to the target.
fn seal(target: &mut Target, dir: &str, mut lock: Lock) {
    for (rel, file) in target.files_in(dir) {
        lock.files.insert(
            rel.to_owned(),
            LockedFile {
                blob: blob_id(&file.bytes).to_string(),
                ownership: file.mode,
            },
        );
    }
    target.files.insert(
        join(dir, LOCK_FILE),
        File {
            bytes: lock.to_yaml().into_bytes(),
            mode: OwnershipMode::Managed,
        },
    );
    target.locks.insert(dir.to_owned(), lock);
}

fn target<'d>(
    desired: &'d mut Desired,
    repo: &str,
    kind: RepoKind,
    env: Option<&str>,
    plan: &str,
) -> &'d mut Target {
    let t = desired
        .targets
        .entry((repo.to_owned(), env.map(str::to_owned)))
        .or_insert_with(|| Target {
            repo: repo.to_owned(),
            kind,
            env: env.map(str::to_owned),
            plans: Vec::new(),
            files: BTreeMap::new(),
            locks: BTreeMap::new(),
        });
    if !t.plans.iter().any(|p| p == plan) {
        t.plans.push(plan.to_owned());
    }
    t
}

/// The plan directory's `kustomization.yaml` and `namespace.yaml`, and
/// the plan's Flux directory.
fn plan_files(desired: &mut Desired, platform: &Platform, instance: &Instance, sets: &Sets) {
    let dir = names::plan_dir(&instance.infra_path, &instance.plan);
    let mut resources = vec!["namespace.yaml".to_owned()];
    resources.extend(
        instance
            .components
            .iter()
            .filter(|c| sets.of_ref(&c.block).is_some_and(TemplateSet::has_infra))
            .map(|c| c.name.clone()),
    );
    let mut kustomization = String::from(
        "# Written by druppie for this plan and environment; edits are reported as drift.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for r in &resources {
        kustomization.push_str(&format!("  - {r}\n"));
    }
    let namespace = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    app.kubernetes.io/part-of: {plan}\n    app.kubernetes.io/managed-by: druppie\n    druppie.io/environment: {env}\n",
        ns = instance.namespace,
        plan = instance.plan,
        env = instance.env,
    );
    let infra = target(
        desired,
        &platform.infra.repo.value,
        RepoKind::Infra,
        Some(&instance.env),
        &instance.plan,
    );
    let own = [
        (format!("{dir}/kustomization.yaml"), kustomization),
        (format!("{dir}/namespace.yaml"), namespace),
    ];
    for (path, text) in own.into_iter().chain(flux::plan_files(instance)) {
        let file = File {
            bytes: text.into_bytes(),
            mode: OwnershipMode::Managed,
        };
        infra.files.insert(path, file);
    }
}

/// Writes every target under `out/<repo>/`, all or nothing: the trees are
/// written to a sibling directory first and moved into place at the end.
///
/// # Errors
/// `out` exists and is not empty, or an I/O error (the partial tree is
/// removed).
pub fn write_out(desired: &Desired, out: &Path) -> Result<(), Box<Diagnostic>> {
    let shown = out.display().to_string();
    let fail = |msg: String| Box::new(Diagnostic::error(msg, Location::file(&shown)));
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(fail(
                "output directory exists and is not empty; druppie does not overwrite it".into(),
            ));
        }
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let staging = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        for target in desired.targets.values() {
            for (path, file) in &target.files {
                let full = staging.join(&target.repo).join(path);
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(full, &file.bytes)?;
            }
        }
        if out.exists() {
            std::fs::remove_dir(out)?;
        }
        std::fs::create_dir_all(&staging)?;
        std::fs::rename(&staging, out)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        fail(format!("cannot write the rendered trees: {e}"))
    })
}
