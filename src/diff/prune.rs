//! Pruning the locations of plans gone from the spec, or from one of
//! their environments.

use std::collections::{BTreeMap, BTreeSet};

use super::{ChangeSet, change_set, diff_location, list};
use crate::git::ObjectId;
use crate::live::{self, LiveRepo};
use crate::lock::LOCK_FILE;
use crate::spec::Pick;
use crate::spec::model::Platform;

/// Whether any of `names` (those right below `env`'s path and its Flux
/// directory) may be a plan [`removed_plans`] prunes: one not selected in
/// `env` (and of `shards`, when given).
pub(super) fn may_hold_removed<'n>(
    env: &str,
    names: impl IntoIterator<Item = &'n str>,
    (selection, shards): (&[Pick<'_>], Option<&crate::spec::Shards>),
) -> bool {
    let covered: BTreeSet<&str> = selection
        .iter()
        .filter(|pick| pick.env_name() == env)
        .map(|pick| pick.plan_name())
        .collect();
    (names.into_iter()).any(|name| !covered.contains(name) && shards.is_none_or(|s| s.owns(name)))
}

/// Prunes the locations of plans not selected any more in `env`: their
/// plan directory (one level below the environment's path) and their Flux
/// directory (`clusters/<env>/druppie/<plan>`), each with a lock, and
/// their entry in the environment's list: one change set per plan, named
/// after the directory. With `shards`, only a plan of these is pruned:
/// another shard's removed plan is its holder's to prune.
pub(super) fn removed_plans(
    infra: &LiveRepo,
    (env, live): (&str, &BTreeMap<String, ObjectId>),
    platform: &Platform,
    (selection, shards): (&[Pick<'_>], Option<&crate::spec::Shards>),
    errors: &mut Vec<live::Error>,
) -> Vec<ChangeSet> {
    use crate::spec::names;
    let dir = platform
        .environments
        .get(env)
        .map_or("", |s| names::infra_dir(&s.path.value));
    let covered: BTreeSet<&str> = selection
        .iter()
        .filter(|pick| pick.env_name() == env)
        .map(|pick| pick.plan_name())
        .collect();
    let suffix = format!("/{LOCK_FILE}");
    // Plan -> its locations with a lock.
    let mut removed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for path in live.keys() {
        let Some(location) = path.strip_suffix(&suffix) else {
            continue;
        };
        let in_env = location
            .strip_prefix(dir)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|r| !r.is_empty() && !r.contains('/'));
        let Some(name) = in_env.or_else(|| crate::render::flux::plan_of_lock(env, path)) else {
            continue;
        };
        if !covered.contains(name) && shards.is_none_or(|s| s.owns(name)) {
            removed.entry(name).or_default().push(location.to_owned());
        }
    }
    let mut out = Vec::new();
    for (name, locations) in removed {
        let mut cs = change_set(platform, infra, Some(env));
        cs.plans = vec![name.to_owned()];
        let diffed = locations
            .iter()
            .try_for_each(|location| diff_location(&mut cs, infra, live, None, location))
            .and_then(|()| {
                list::add(
                    &mut cs,
                    infra,
                    env,
                    || Some(live),
                    |files| list::settled(env, files),
                )
            });
        match diffed {
            Ok(()) => out.push(cs),
            Err(e) => errors.push(e),
        }
    }
    out
}
