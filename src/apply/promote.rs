//! `promote`: bring what is live in the environment before to an
//! environment now, even when the spec has moved on since (Kargo's
//! promotion of freight). The freight is the spec commit the live lock
//! of the plan's directory in the environment before records; the
//! caller renders the spec at that commit and applies it to the one
//! environment, where it is proposed (or committed where it deploys)
//! like any change, without waiting for promotion, and marked as
//! promoted from that environment.

use std::path::Path;

use super::{ApplyError, Cache};
use crate::diff::ChangeSets;
use crate::forge::Forge;

use crate::git::{ObjectId, Repo};
use crate::lock::{LOCK_FILE, Lock};
use crate::spec::Validated;
use crate::spec::model::Trust;
use crate::spec::names;

/// What `promote` brings where: the plan's change live in `from` (its
/// render of `spec_commit`), to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freight {
    pub plan: String,
    pub from: String,
    pub to: String,
    /// The spec commit whose render is live in `from`.
    pub spec_commit: String,
}

/// Why there is nothing to promote.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("no plan `{plan}`{}", did_you_mean(.candidates))]
    UnknownPlan {
        plan: String,
        candidates: Vec<String>,
    },
    #[error("plan `{plan}` is not deployed to `{env}`; its environments: {}", .envs.join(", "))]
    NotItsEnvironment {
        plan: String,
        env: String,
        envs: Vec<String>,
    },
    #[error(
        "`{env}` is the first environment plan `{plan}` is promoted through: nothing comes before it (apply brings the spec there)"
    )]
    First { plan: String, env: String },
    #[error("`{env}` is an observe environment: druppie writes nothing there")]
    Observe { env: String },
    #[error(
        "plan `{plan}` is not live in `{from}`: {repo}:{path} does not exist on its default branch"
    )]
    NotLive {
        plan: String,
        from: String,
        repo: String,
        path: String,
    },
    #[error(
        "{repo}:{path} records no spec commit: it was rendered from a checkout that was not a git repository"
    )]
    NoSpecCommit { repo: String, path: String },
    #[error("{repo}:{path} cannot be read as a lock")]
    Lock {
        repo: String,
        path: String,
        #[source]
        source: Box<crate::lock::LockParseError>,
    },
    #[error("{repo}:{path} names spec commit `{value}`, which is not a full commit id")]
    NotACommit {
        repo: String,
        path: String,
        value: String,
    },
    #[error(
        "{repo}:{path} is not a lock druppie wrote (no commit on the audit trail holds it): it was edited by hand, so what it names is not promoted; restore the lock druppie wrote (revert the edit)"
    )]
    NotDruppies { repo: String, path: String },
    #[error(
        "the spec's {what} changed since spec commit {commit}, which is live in `{from}`: promoting it would apply old rules; let the current spec reach `{from}` and promote that"
    )]
    RulesChanged {
        what: String,
        from: String,
        commit: String,
    },
    #[error(
        "what is live in `{from}` was rendered from spec commit {commit}, which is not in the spec repo's history here (HEAD and its ancestors): fetch it, or promote from a checkout of the spec branch"
    )]
    NotInHistory { from: String, commit: String },
    #[error(
        "what is live in `{from}` for plan `{plan}` is not verified there ({why}): it is promoted once it is"
    )]
    Unverified {
        plan: String,
        from: String,
        why: String,
    },
    /// The spec at the freight's commit cannot be exported or opened.
    #[error(transparent)]
    Revision(#[from] crate::spec::revision::RevisionError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

fn did_you_mean(candidates: &[String]) -> String {
    match candidates {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => format!("; did you mean one of {}?", many.join(", ")),
    }
}

impl PromoteError {
    /// Whether asking again later may succeed (the forge or the cache).
    pub fn is_transient(&self) -> bool {
        match self {
            PromoteError::Apply(e) => e.is_transient(),
            PromoteError::Revision(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// A promotion ready to apply: the freight, and the spec as it was at
/// its commit, selecting the plan in the target environment.
pub struct Prepared {
    pub freight: Freight,
    pub spec: crate::spec::Opened,
    /// What the promotion covers: the plan in the target environment.
    pub scope: crate::compose::ComposeOptions,
}

/// Everything `promote` checks before it writes, in order: the freight
/// ([`freight`]: a lock druppie wrote, live in the environment before),
/// its spec commit in the history of `spec_repo`'s `HEAD`
/// ([`spec_commit`]), the same rules then as now ([`same_rules`]); then
/// the spec at that commit, exported into `scratch` and opened for `plan`
/// in `to`. `now` is the spec as it is (`spec_root` in `spec_repo`);
/// `trail` the events druppie signed.
///
/// # Errors
/// Each check's [`PromoteError`], or the revision cannot be opened.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    now: &Validated,
    spec_repo: &Repo,
    spec_root: &Path,
    cache: &Cache,
    forge: &dyn Forge,
    trail: &[crate::audit::Recorded],
    (plan, to): (&str, &str),
    scratch: &Path,
) -> Result<Prepared, PromoteError> {
    let freight = freight(now, cache, forge, trail, plan, to)?;
    let commit = spec_commit(spec_repo, &freight)?;
    let prefix = crate::spec::revision::prefix(spec_repo, spec_root)?;
    same_rules(spec_repo, &prefix, &freight)?;
    let scope = crate::compose::ComposeOptions {
        plan: Some(plan.to_owned()),
        env: Some(to.to_owned()),
        shards: None,
    };
    let spec = crate::spec::revision::open_at(spec_repo, &prefix, commit, scratch, &scope)?;
    Ok(Prepared {
        freight,
        spec,
        scope,
    })
}

/// The environment before `to` in `plan`'s promotion order
/// (platform.yaml's order, `observe` environments aside).
///
/// # Errors
/// An unknown plan, an environment the plan is not deployed to, an
/// `observe` one, or its first.
pub fn from_env(valid: &Validated, plan: &str, to: &str) -> Result<String, PromoteError> {
    let Some(model) = valid.plans().iter().find(|p| p.name == plan) else {
        return Err(PromoteError::UnknownPlan {
            plan: plan.to_owned(),
            candidates: crate::spec::suggest::candidates(
                plan,
                valid.plans().iter().map(|p| p.name.as_str()),
            ),
        });
    };
    let order = valid.env_names();
    let mut envs: Vec<_> = model.envs.iter().collect();
    envs.sort_by_key(|e| order.iter().position(|o| *o == e.name));
    let Some(target) = envs.iter().find(|e| e.name == to) else {
        return Err(PromoteError::NotItsEnvironment {
            plan: plan.to_owned(),
            env: to.to_owned(),
            envs: envs.iter().map(|e| e.name.clone()).collect(),
        });
    };
    if target.settings.trust == Trust::Observe {
        return Err(PromoteError::Observe { env: to.to_owned() });
    }
    envs.iter()
        .take_while(|e| e.name != to)
        .filter(|e| e.settings.trust != Trust::Observe)
        .last()
        .map(|e| e.name.clone())
        .ok_or_else(|| PromoteError::First {
            plan: plan.to_owned(),
            env: to.to_owned(),
        })
}

/// What is live in the environment before `to` for `plan`, read from
/// the plan directory's lock on the infra repo's default branch (brought
/// into the cache first).
///
/// # Errors
/// As [`from_env`]; the infra repo cannot be fetched or read; the plan
/// is not live there; its lock names no spec commit.
pub fn freight(
    valid: &Validated,
    cache: &Cache,
    forge: &dyn Forge,
    trail: &[crate::audit::Recorded],
    plan: &str,
    to: &str,
) -> Result<Freight, PromoteError> {
    let from = from_env(valid, plan, to)?;
    let deployment = valid
        .deployment
        .as_ref()
        .expect("a spec with plans has a platform");
    let platform = &deployment.platform;
    let infra = platform.infra.repo.value.as_str();
    let env_path = &platform
        .environments
        .get(from.as_str())
        .expect("the plan's environments are the platform's")
        .path
        .value;
    let path = format!("{}/{LOCK_FILE}", names::plan_dir(env_path, plan));
    let not_live = || PromoteError::NotLive {
        plan: plan.to_owned(),
        from: from.clone(),
        repo: infra.to_owned(),
        path: path.clone(),
    };
    let text = {
        let _hold = cache.hold().map_err(ApplyError::from)?;
        if !forge.exists(infra).map_err(ApplyError::from)? {
            return Err(not_live());
        }
        cache
            .sync(infra, &forge.url(infra))
            .map_err(ApplyError::from)?;
        let repo = Repo::open(&cache.path(infra))
            .map_err(ApplyError::git(infra, "open the clone"))?
            .ok_or_else(|| ApplyError::not_cached(infra))?;
        let Some(head) = repo
            .branch_head(&platform.infra.branch.value)
            .map_err(ApplyError::git(infra, "read the default branch"))?
        else {
            return Err(not_live());
        };
        let live = repo
            .file_at(head.commit, &path)
            .map_err(ApplyError::git(infra, "read the lock"))?
            .ok_or_else(not_live)?;
        // The lock is repo content anyone with push access can write:
        // only a lock druppie itself wrote (in a commit the trail
        // records) is freight.
        if !written_by_druppie(&repo, trail, infra, &from, plan, &path, &live)? {
            return Err(PromoteError::NotDruppies {
                repo: infra.to_owned(),
                path: path.clone(),
            });
        }
        live
    };
    let lock =
        Lock::parse(&String::from_utf8_lossy(&text)).map_err(|source| PromoteError::Lock {
            repo: infra.to_owned(),
            path: path.clone(),
            source: Box::new(source),
        })?;
    let spec_commit = lock.spec_commit.ok_or_else(|| PromoteError::NoSpecCommit {
        repo: infra.to_owned(),
        path: path.clone(),
    })?;
    // The lock is repo content a person can write: only a commit id is
    // taken, never a branch or a revision expression.
    if spec_commit.len() != 40 || !spec_commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PromoteError::NotACommit {
            repo: infra.to_owned(),
            path,
            value: spec_commit,
        });
    }
    Ok(Freight {
        plan: plan.to_owned(),
        from,
        to: to.to_owned(),
        spec_commit,
    })
}

/// Whether `live` (the lock at `path`) is the lock of a commit druppie
/// wrote for `plan` in `env`, as the trail records it: a proposal it
/// pushed or a commit it made on the default branch.
fn written_by_druppie(
    repo: &Repo,
    trail: &[crate::audit::Recorded],
    infra: &str,
    env: &str,
    plan: &str,
    path: &str,
    live: &[u8],
) -> Result<bool, PromoteError> {
    use crate::audit::Kind;
    let druppies = trail.iter().rev().filter(|r| {
        let e = &r.event;
        e.repo == infra
            && e.env.as_deref() == Some(env)
            && e.plans.iter().any(|p| p == plan)
            && (e.kind == Kind::Proposed || (e.kind == Kind::Applied && e.branch.is_none()))
    });
    for r in druppies {
        let Some(id) = r
            .event
            .commit
            .as_deref()
            .and_then(|c| ObjectId::from_hex(c.as_bytes()).ok())
        else {
            continue;
        };
        // A commit the clone lacks (a proposal branch deleted since) is
        // no evidence either way.
        if repo.file_at(id, path).ok().flatten().as_deref() == Some(live) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Refuses a promotion whose freight was rendered under other rules:
/// the platform (trust, approvers, verification), the policies or the
/// approvers' keys differ between `commit` and `HEAD` of `spec_repo`
/// (`prefix`: where the spec is in it).
///
/// # Errors
/// [`PromoteError::RulesChanged`] naming what changed.
pub fn same_rules(spec_repo: &Repo, prefix: &str, freight: &Freight) -> Result<(), PromoteError> {
    let spec_dir = crate::render::join(prefix, "spec");
    // What governs a render, by path under `spec/`: a read that fails
    // compares as changed.
    let rules = |rev: &str| -> Option<Vec<Rule>> {
        let commit = spec_repo.resolve(rev).ok()?;
        let files = spec_repo.files_at(commit, &spec_dir).ok()?;
        Some(
            files
                .into_iter()
                .filter_map(|(path, blob)| {
                    let rel = path.strip_prefix(&spec_dir)?.trim_start_matches('/');
                    Some((governs(rel)?, rel.to_owned(), blob))
                })
                .collect(),
        )
    };
    let (then, now) = (rules(&freight.spec_commit), rules("HEAD"));
    for what in ["platform", "policies", "approvers' keys"] {
        if of_rule(what, &then) != of_rule(what, &now) {
            return Err(PromoteError::RulesChanged {
                what: what.to_owned(),
                from: freight.from.clone(),
                commit: freight.spec_commit.clone(),
            });
        }
    }
    Ok(())
}

/// A file that governs a render: its rule, its path under `spec/`, its blob.
type Rule = (&'static str, String, ObjectId);

/// The files of one rule.
fn of_rule<'r>(what: &str, rules: &'r Option<Vec<Rule>>) -> Option<Vec<&'r Rule>> {
    rules
        .as_ref()
        .map(|r| r.iter().filter(|(w, _, _)| *w == what).collect())
}

/// Which rule a file under `spec/` is part of, if any.
fn governs(path: &str) -> Option<&'static str> {
    let keys = crate::spec::load::APPROVER_KEYS
        .strip_prefix("spec/")
        .unwrap_or(crate::spec::load::APPROVER_KEYS);
    match path {
        "platform.yaml" => Some("platform"),
        p if p == keys => Some("approvers' keys"),
        p if p.starts_with("policies/") => Some("policies"),
        _ => None,
    }
}

/// The freight's spec commit in `spec_repo`, once it is known to be in
/// the history of its `HEAD` (the spec branch the daemon follows, or the
/// checkout): a commit only on an unmerged branch is never rendered.
///
/// # Errors
/// [`PromoteError::NotInHistory`] when the commit is missing or not an
/// ancestor of `HEAD`.
pub fn spec_commit(spec_repo: &Repo, freight: &Freight) -> Result<ObjectId, PromoteError> {
    let missing = || PromoteError::NotInHistory {
        from: freight.from.clone(),
        commit: freight.spec_commit.clone(),
    };
    let commit = ObjectId::from_hex(freight.spec_commit.as_bytes()).map_err(|_| missing())?;
    let ancestor = spec_repo.is_ancestor(commit, "HEAD");
    if !ancestor {
        return Err(missing());
    }
    Ok(commit)
}

/// Narrows `changes` to the promotion: the plan's change to the infra
/// repo in `to`, marked as promoted from `from` (it does not wait); every
/// other change set is only context, neither shown nor applied.
///
/// # Errors
/// [`PromoteError::Unverified`] when `from` asks for verification and
/// what is live there is not verified.
pub fn narrow(
    changes: &mut ChangeSets,
    freight: &Freight,
    infra: &str,
) -> Result<(), PromoteError> {
    if let Some(u) = changes
        .unverified
        .iter()
        .find(|u| u.plan == freight.plan && u.env == freight.from)
    {
        return Err(PromoteError::Unverified {
            plan: freight.plan.clone(),
            from: freight.from.clone(),
            why: u.why.clone(),
        });
    }
    for cs in &mut changes.sets {
        if cs.repo == infra
            && cs.env.as_deref() == Some(freight.to.as_str())
            && cs.plans == [freight.plan.as_str()]
        {
            cs.promoted_from = Some(freight.from.clone());
        } else {
            cs.context = true;
        }
    }
    Ok(())
}
