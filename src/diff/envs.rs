//! What a diff reads of each environment's files in the infra repo.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use crate::git::ObjectId;
use crate::live::{self, LiveRepo};
use crate::spec::model::Platform;

/// How much of an environment a diff reads at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// Every file under its path and its Flux directory: pruning looks
    /// for plans that are gone.
    Whole,
    /// Its Flux directory, when the list of plans changes
    /// ([`EnvFiles`]); each plan location is read on its own when it is
    /// diffed.
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

/// The infra repo's files of each environment a diff reads (full
/// paths): under its path and under its Flux directory
/// (`clusters/<env>/druppie`) when the diff reaches whole environments,
/// read before it (pruning looks at them all); else its Flux directory
/// only, read when first needed: by a change set that creates or deletes
/// a plan's Flux location, which changes the environment's list. A diff
/// of one plan whose Flux location stays does not read 10,000 plans'
/// Flux directories.
pub(super) struct EnvFiles<'p> {
    platform: &'p Platform,
    infra: Option<&'p LiveRepo>,
    reach: Reach,
    /// What is known of each environment, made when first needed.
    read: BTreeMap<&'p str, Slot>,
    errors: Mutex<Vec<live::Error>>,
}

/// One environment in [`EnvFiles`].
#[derive(Default)]
struct Slot {
    /// Its files once read; `None` when reading failed (the error is in
    /// [`EnvFiles::errors`], once).
    files: OnceLock<Option<BTreeMap<String, ObjectId>>>,
    /// Its list of Flux directories as its files say it should be, when
    /// it is not ([`super::list::settled`]): made once, however many
    /// change sets carry it.
    settled: OnceLock<Option<Vec<u8>>>,
}

impl<'p> EnvFiles<'p> {
    /// `envs` of `platform` in `infra`, as far as `reach` goes: read now
    /// when it is [`Reach::Whole`].
    pub(super) fn new(
        platform: &'p Platform,
        infra: Option<&'p LiveRepo>,
        envs: BTreeSet<&'p str>,
        reach: Reach,
    ) -> EnvFiles<'p> {
        let read = envs.iter().map(|env| (*env, Slot::default())).collect();
        let files = EnvFiles {
            platform,
            infra,
            reach,
            read,
            errors: Mutex::default(),
        };
        if reach == Reach::Whole {
            for env in files.read.keys() {
                files.get(env);
            }
        }
        files
    }

    /// The files of `env`; `None` when it is not one the diff reads, or
    /// they cannot be read (said once, in [`EnvFiles::errors`]).
    pub(super) fn get(&self, env: &str) -> Option<&BTreeMap<String, ObjectId>> {
        let infra = self.infra?;
        let slot = self.read.get(env)?;
        slot.files
            .get_or_init(|| {
                let settings = self.platform.environments.get(env)?;
                let flux = crate::spec::names::flux_dir(env);
                let read = infra.files_under(&flux).and_then(|mut files| {
                    if self.reach == Reach::Whole {
                        // One merge of two sorted maps, not an insert per file.
                        let dir = crate::spec::names::infra_dir(&settings.path.value);
                        files.append(&mut infra.files_under(dir)?);
                    }
                    Ok(files)
                });
                read.map_err(|e| self.errors.lock().expect("errors lock").push(e))
                    .ok()
            })
            .as_ref()
    }

    /// [`super::list::settled`] for `env`, on `files` (its files, from
    /// [`EnvFiles::get`]), made once.
    pub(super) fn settled(&self, env: &str, files: &BTreeMap<String, ObjectId>) -> Option<Vec<u8>> {
        match self.read.get(env) {
            Some(slot) => slot
                .settled
                .get_or_init(|| super::list::settled(env, files))
                .clone(),
            None => super::list::settled(env, files),
        }
    }

    /// The environments read, and their files (every one the diff reads,
    /// when it reaches whole environments).
    pub(super) fn read(&self) -> impl Iterator<Item = (&'p str, &BTreeMap<String, ObjectId>)> {
        self.read
            .iter()
            .filter_map(|(env, slot)| Some((*env, slot.files.get()?.as_ref()?)))
    }

    /// What could not be read since this was last asked.
    pub(super) fn errors(&self) -> Vec<live::Error> {
        std::mem::take(&mut *self.errors.lock().expect("errors lock"))
    }
}
