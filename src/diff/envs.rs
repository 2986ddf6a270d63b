//! What a diff reads of each environment's files in the infra repo.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
/// (`clusters/<env>/druppie`) when the diff reaches whole environments;
/// else its Flux directory only. Either is read when first needed: by a
/// location whose tree is not already what the render makes
/// ([`EnvFiles::unchanged`]), by a change set that creates or deletes a
/// plan's Flux location (which changes the environment's list), or by
/// pruning, when a directory there is not a selected plan's. A diff of
/// one plan whose Flux location stays does not read 10,000 plans' Flux
/// directories, and a diff of a platform that the infra repo holds as
/// rendered reads two directories of each environment, not every file.
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
    /// The entries right below its path and its Flux directory (full
    /// path -> whether a directory, id); `None` when they have no ids (a
    /// plain directory) or cannot be read.
    entries: OnceLock<Option<HashMap<String, (bool, ObjectId)>>>,
}

impl<'p> EnvFiles<'p> {
    /// `envs` of `platform` in `infra`, as far as `reach` goes, nothing
    /// read yet.
    pub(super) fn new(
        platform: &'p Platform,
        infra: Option<&'p LiveRepo>,
        envs: BTreeSet<&'p str>,
        reach: Reach,
    ) -> EnvFiles<'p> {
        EnvFiles {
            platform,
            infra,
            reach,
            read: envs.iter().map(|env| (*env, Slot::default())).collect(),
            errors: Mutex::default(),
        }
    }

    /// Whether the location `dir` of `env` (a plan's directory or its
    /// Flux directory) holds exactly the tree `rendered` (its id): then
    /// every file there is what the render makes and what the lock says,
    /// and comparing them one by one finds nothing. `false` when that
    /// cannot be told.
    pub(super) fn unchanged(&self, env: &str, dir: &str, rendered: Option<ObjectId>) -> bool {
        rendered.is_some_and(|id| {
            self.entries(env)
                .and_then(|entries| entries.get(dir))
                .is_some_and(|&(tree, live)| tree && live == id)
        })
    }

    /// The names of the directories right below `env`'s path and its
    /// Flux directory (where plans have theirs), when they can be told.
    pub(super) fn names(&self, env: &str) -> Option<impl Iterator<Item = &str>> {
        let entries = self.entries(env)?;
        Some(
            (entries.iter())
                .filter(|(_, (tree, _))| *tree)
                .map(|(path, _)| path.rsplit_once('/').map_or(path.as_str(), |(_, n)| n)),
        )
    }

    /// The environments the diff reads.
    pub(super) fn envs(&self) -> impl Iterator<Item = &'p str> + '_ {
        self.read.keys().copied()
    }

    /// The entries right below `env`'s path and its Flux directory, read
    /// once; `None` for a plain directory or when they cannot be read
    /// (reading the files says why).
    fn entries(&self, env: &str) -> Option<&HashMap<String, (bool, ObjectId)>> {
        let infra = self.infra?;
        let slot = self.read.get(env)?;
        slot.entries
            .get_or_init(|| {
                let settings = self.platform.environments.get(env)?;
                let dir = crate::spec::names::infra_dir(&settings.path.value);
                let flux = crate::spec::names::flux_dir(env);
                let mut out = HashMap::new();
                for parent in [dir, flux.as_str()] {
                    for (name, tree, id) in infra.entries(parent).ok()?? {
                        // A name given twice (a hostile tree) is the
                        // first one, as a lookup by path finds it.
                        out.entry(crate::render::join(parent, &name))
                            .or_insert((tree, id));
                    }
                }
                Some(out)
            })
            .as_ref()
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

    /// What could not be read since this was last asked.
    pub(super) fn errors(&self) -> Vec<live::Error> {
        std::mem::take(&mut *self.errors.lock().expect("errors lock"))
    }
}
