//! The change sets of every instance, one per place (repo, environment,
//! plans), in the order of their places.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::change::ChangeSet;

/// A change set's place: repo, environment, plans.
type Key = (String, Option<String>, Vec<String>);

fn key(cs: &ChangeSet) -> Key {
    (cs.repo.clone(), cs.env.clone(), cs.plans.clone())
}

/// Change sets by place. The sets stay where they were added and the
/// ordered map holds their index, so ordering a thousand places moves
/// small keys rather than whole change sets.
#[derive(Default)]
pub(super) struct Merged {
    at: BTreeMap<Key, usize>,
    sets: Vec<Option<ChangeSet>>,
}

impl Merged {
    /// Adds `cs`, or takes its changes into the set already at its place
    /// (one plan's two components in one target).
    pub(super) fn add(&mut self, cs: ChangeSet) {
        match self.at.entry(key(&cs)) {
            Entry::Occupied(at) => {
                let whole = self.sets[*at.get()].as_mut().expect("a set at each index");
                whole.take_in(cs);
            }
            Entry::Vacant(place) => {
                place.insert(self.sets.len());
                self.sets.push(Some(cs));
            }
        }
    }

    /// Puts `cs` at its place, in place of a set already there.
    pub(super) fn replace(&mut self, cs: ChangeSet) {
        match self.at.entry(key(&cs)) {
            Entry::Occupied(at) => self.sets[*at.get()] = Some(cs),
            Entry::Vacant(place) => {
                place.insert(self.sets.len());
                self.sets.push(Some(cs));
            }
        }
    }

    /// The set at the first place.
    pub(super) fn first_mut(&mut self) -> Option<&mut ChangeSet> {
        let &at = self.at.values().next()?;
        self.sets[at].as_mut()
    }

    /// The sets in the order of their places.
    pub(super) fn into_sorted(mut self) -> Vec<ChangeSet> {
        self.at
            .into_values()
            .map(|at| self.sets[at].take().expect("each index once"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::model::Trust;

    fn places(sets: &[ChangeSet]) -> Vec<(&str, Option<&str>, &[String], usize)> {
        sets.iter()
            .map(|cs| {
                (
                    cs.repo.as_str(),
                    cs.env.as_deref(),
                    &cs.plans[..],
                    cs.files.len(),
                )
            })
            .collect()
    }

    #[test]
    fn sets_come_out_in_place_order_merged_or_replaced() {
        let deploy = Some(Trust::Deploy);
        let mut m = Merged::default();
        m.add(ChangeSet::modifying(
            "infra",
            Some("prod"),
            deploy,
            "b",
            &["x"],
        ));
        m.add(ChangeSet::modifying(
            "infra",
            Some("dev"),
            deploy,
            "b",
            &["x"],
        ));
        m.add(ChangeSet::modifying("app", None, None, "a", &["y"]));
        // The same place again: its changes join the first set's.
        m.add(ChangeSet::modifying(
            "infra",
            Some("dev"),
            deploy,
            "b",
            &["z"],
        ));
        assert_eq!(
            m.first_mut().map(|cs| cs.repo.clone()).as_deref(),
            Some("app")
        );
        // A replacement drops what was at its place.
        m.replace(ChangeSet::modifying(
            "infra",
            Some("prod"),
            deploy,
            "b",
            &["p", "q", "r"],
        ));
        m.replace(ChangeSet::modifying("infra", Some("qa"), deploy, "c", &[]));
        let sets = m.into_sorted();
        let b = ["b".to_owned()];
        let c = ["c".to_owned()];
        let a = ["a".to_owned()];
        assert_eq!(
            places(&sets),
            [
                ("app", None, &a[..], 1),
                ("infra", Some("dev"), &b[..], 2),
                ("infra", Some("prod"), &b[..], 3),
                ("infra", Some("qa"), &c[..], 0),
            ]
        );
    }
}
