//! What a diff reads of each environment's files in the infra repo.

use std::collections::{BTreeMap, BTreeSet};

use crate::git::ObjectId;
use crate::live::{self, LiveRepo};
use crate::spec::model::Platform;

/// How much of an environment a diff reads at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// Every file under its path and its Flux directory: pruning looks
    /// for plans that are gone.
    Whole,
    /// Its Flux directory (for the list of plans); each plan location
    /// is read on its own when it is diffed.
    Locations,
}

/// The most plan × environment pairs whose locations are read one by
/// one: each read walks the environment's tree from the top again
/// (10,000 plans: about 1 ms a location, the whole environment 0.1 s).
const ONE_BY_ONE_MAX: usize = 32;

impl Reach {
    /// Whole when pruning (`prunes`: no plan filter) or for more than
    /// [`ONE_BY_ONE_MAX`] of `picks`; else location by location, so a
    /// diff of one plan reads that plan, not the platform.
    pub(super) fn of(prunes: bool, picks: usize) -> Reach {
        if prunes || picks > ONE_BY_ONE_MAX {
            Reach::Whole
        } else {
            Reach::Locations
        }
    }
}

/// The infra repo's files of each of `envs` (full paths), as far as
/// `reach` goes: under its path and under its Flux directory
/// (`clusters/<env>/druppie`).
pub(super) fn files<'p>(
    platform: &'p Platform,
    infra: &LiveRepo,
    (envs, reach): (&BTreeSet<&str>, Reach),
    errors: &mut Vec<live::Error>,
) -> BTreeMap<&'p str, BTreeMap<String, ObjectId>> {
    let mut out = BTreeMap::new();
    for (env, settings) in platform.environments.iter() {
        if !envs.contains(env.value.as_str()) {
            continue;
        }
        let flux = crate::spec::names::flux_dir(&env.value);
        let read = infra.files_under(&flux).and_then(|mut files| {
            if reach == Reach::Whole {
                files.extend(
                    infra.files_under(crate::spec::names::infra_dir(&settings.path.value))?,
                );
            }
            Ok(files)
        });
        match read {
            Ok(files) => {
                out.insert(env.value.as_str(), files);
            }
            Err(e) => errors.push(e),
        }
    }
    out
}
