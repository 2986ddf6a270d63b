//! `validate`: [`Spec`] -> [`Validated`], or every problem found.
//!
//! Rules live in one file per part of the spec: `catalog` (blocks, skills),
//! `platform` (environments, name patterns, policies), `stacks` (stacks
//! and plans: references, inputs), `depends` (`depends_on` between
//! plans), `wiring` (component references and cycles). All of them run on every call, so one run reports all errors.

mod catalog;
mod depends;
mod model;
mod platform;
mod stacks;
pub mod values;
pub mod wiring;

use std::collections::HashMap;

use super::diag::{Diagnostic, Diagnostics, Location};
use super::load::{Kind, Spec};
use super::source::FileId;
use super::suggest;
use super::yaml::Spanned;

pub use model::{ComponentModel, Deployment, EnvModel, PlanModel};
pub use values::{ValueError, check_value, full_match};

/// A spec that passed validation: every reference resolves, every input
/// value fits its declaration, and the wiring has no cycles; what later
/// stages need is resolved in [`Validated::deployment`].
#[derive(Debug)]
pub struct Validated {
    /// The spec as written (for positions and the catalog).
    pub spec: Spec,
    /// The platform and the plans, resolved; `None` when the spec has no
    /// platform (a catalog: nothing to deploy).
    pub deployment: Option<Deployment>,
    /// Problems that do not block (for example a file without frontmatter).
    pub warnings: Diagnostics,
}

impl Validated {
    /// The plans, sorted by name (none without a platform).
    pub fn plans(&self) -> &[PlanModel] {
        self.deployment.as_ref().map_or(&[], |d| &d.plans)
    }

    /// The environment names of the platform, in its order.
    pub fn env_names(&self) -> Vec<&str> {
        self.deployment
            .iter()
            .flat_map(|d| d.platform.environments.keys())
            .collect()
    }
}

/// Validates a loaded spec.
///
/// # Errors
/// Every diagnostic (load problems included, warnings too) when at least
/// one is an error.
pub fn validate(mut spec: Spec) -> Result<Validated, Diagnostics> {
    let (found, plan_checks) = run_checks(&spec, &spec.plan_checks);
    spec.plan_checks = plan_checks;
    // The load's own stay with the spec: a spec read again in part
    // (`spec::reload`) keeps those of the files it did not read.
    let mut all = spec.diagnostics.clone();
    all.extend(found);
    all.sort();
    if all.has_errors() {
        return Err(all);
    }
    match model::build(&spec) {
        Ok(deployment) => Ok(Validated {
            spec,
            deployment,
            warnings: all,
        }),
        Err(found) => {
            all.extend(found.0);
            all.sort();
            Err(all)
        }
    }
}

/// Every problem of a loaded spec (load problems included), sorted,
/// without consuming it: the catalog commands list what loaded and
/// report the rest.
pub fn check(spec: &Spec) -> Diagnostics {
    let mut all = spec.diagnostics.clone();
    all.extend(run_checks(spec, &spec.plan_checks).0);
    all.sort();
    all
}

/// Every problem the rules find, and what each plan's own rules found:
/// those in `plan_checks` (a spec validated before, some plans read
/// again) are taken from there, not checked again.
fn run_checks(
    spec: &Spec,
    plan_checks: &[Option<Vec<Diagnostic>>],
) -> (Vec<Diagnostic>, Vec<Option<Vec<Diagnostic>>>) {
    // The catalog, platform and stack rules are one job; each stack's
    // wiring and each plan's rules and wiring are one job, so the cores
    // share them. Each thread keeps one `Check` (and the patterns it
    // compiled) for all its jobs. Diagnostics keep this order before
    // sorting, as when the checks ran one after another.
    enum Job<'s> {
        Rules,
        Wiring(wiring::Unit<'s>),
    }
    let cached = |plan: usize| plan_checks.get(plan).and_then(Option::as_ref);
    let mut plan = 0;
    let jobs: Vec<Job> = std::iter::once(Job::Rules)
        .chain(wiring::units(spec).into_iter().map(Job::Wiring))
        .filter(|job| match job {
            Job::Wiring(wiring::Unit::Plan(..)) => {
                plan += 1;
                cached(plan - 1).is_none()
            }
            _ => true,
        })
        .collect();
    let parts = crate::par::map_init(
        &jobs,
        None,
        || Check::new(spec),
        |check, job| {
            match job {
                Job::Rules => {
                    catalog::check(check);
                    platform::check(check);
                    stacks::check(check);
                    depends::check(check);
                }
                Job::Wiring(unit) => {
                    if let wiring::Unit::Plan(plan, _) = unit {
                        stacks::check_plan(check, plan);
                    }
                    wiring::check(check, unit);
                }
            }
            std::mem::take(&mut check.out.0)
        },
    );
    // The rules' and the stacks' first, then each plan's, checked now or
    // before.
    let (mut all, mut checked) = (Vec::new(), Vec::with_capacity(spec.plans.len()));
    let mut fresh = jobs.iter().zip(parts).peekable();
    while let Some((_, found)) =
        fresh.next_if(|(job, _)| !matches!(job, Job::Wiring(wiring::Unit::Plan(..))))
    {
        all.extend(found);
    }
    for plan in 0..spec.plans.len() {
        let found = match cached(plan) {
            Some(found) => found.clone(),
            None => fresh.next().map(|(_, found)| found).unwrap_or_default(),
        };
        all.extend(found.iter().cloned());
        checked.push(Some(found));
    }
    (all, checked)
}

/// A map (set) of names met once per plan: hashed with foldhash, not
/// std's SipHash, which was a fifth of building the plans' models and of
/// the rules across plans at 10,000 plans.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Shared state of one validation run.
pub(crate) struct Check<'a> {
    pub spec: &'a Spec,
    pub out: Diagnostics,
    regexes: HashMap<String, Option<regex::Regex>>,
}

impl<'a> Check<'a> {
    fn new(spec: &'a Spec) -> Self {
        Check {
            spec,
            out: Diagnostics::default(),
            regexes: HashMap::new(),
        }
    }

    /// The location of a spanned value in file `file`.
    pub fn at<T>(&self, file: FileId, value: &Spanned<T>) -> Location {
        let f = self.spec.file(file);
        Location::new(f, f.pos(&value.referenced))
    }

    pub fn error<T>(
        &mut self,
        file: FileId,
        value: &Spanned<T>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::error(message, self.at(file, value));
        self.out.0.push(d);
        self.out.0.last_mut().expect("just pushed")
    }

    pub fn warn<T>(
        &mut self,
        file: FileId,
        value: &Spanned<T>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::warning(message, self.at(file, value));
        self.out.0.push(d);
        self.out.0.last_mut().expect("just pushed")
    }

    /// Reports an unknown name with "did you mean" candidates. The message
    /// is "unknown <what> `<name>`", or `what` itself with `{}` replaced by
    /// the quoted name.
    pub fn unknown<'k>(
        &mut self,
        file: FileId,
        value: &Spanned<String>,
        what: &str,
        known: impl IntoIterator<Item = &'k str>,
    ) {
        self.unknown_kind(None, file, value, what, known);
    }

    /// Like [`Check::unknown`], but silent when a file of `kind` with this
    /// name exists and failed to parse (that failure is reported already).
    pub fn unknown_kind<'k>(
        &mut self,
        kind: Option<Kind>,
        file: FileId,
        value: &Spanned<String>,
        what: &str,
        known: impl IntoIterator<Item = &'k str>,
    ) {
        if let Some(kind) = kind
            && self.spec.unparsed.contains(&(kind, value.value.clone()))
        {
            return;
        }
        let candidates = suggest::candidates(&value.value, known);
        let name = format!("`{}`", value.value);
        let message = if what.contains("{}") {
            what.replace("{}", &name)
        } else {
            format!("unknown {what} {name}")
        };
        let d = Diagnostic::error(message, self.at(file, value)).with_candidates(&candidates);
        self.out.push(d);
    }

    /// The compiled form of a full-match `pattern`, or `None` if it does not compile.
    pub fn regex(&mut self, pattern: &str) -> Option<&regex::Regex> {
        self.regexes
            .entry(pattern.to_owned())
            .or_insert_with(|| values::full_match(pattern))
            .as_ref()
    }

    /// Reports the second and later occurrence of each name.
    pub fn unique<'k>(
        &mut self,
        what: &str,
        items: impl IntoIterator<Item = (FileId, &'k Spanned<String>)>,
    ) {
        // Where a name was first is worked out only for a duplicate (each
        // location quotes its line: 10,000 plans, one line each).
        let items = items.into_iter();
        let mut first: FastMap<&str, (FileId, &Spanned<String>)> =
            FastMap::with_capacity_and_hasher(items.size_hint().0, Default::default());
        for (file, name) in items {
            match first.get(name.value.as_str()) {
                Some(&(prev_file, prev)) => {
                    let prev = self.at(prev_file, prev);
                    let here = self.at(file, name);
                    let d = Diagnostic::error(format!("duplicate {what} `{}`", name.value), here)
                        .with_note("first defined here", prev);
                    self.out.push(d);
                }
                None => {
                    first.insert(&name.value, (file, name));
                }
            }
        }
    }
}
