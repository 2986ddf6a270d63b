//! Which events of the trail a reader asks for: `druppie audit`'s
//! `--plan`, `--env` and `--since`, and the board's audit filters, with
//! one meaning.

use super::{Kind, Recorded};
use crate::when::Timestamp;

/// A selection of events; every field set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Events about this plan (among others).
    pub plan: Option<String>,
    /// Events in this environment.
    pub env: Option<String>,
    pub kind: Option<Kind>,
    /// Events at or after this instant. An event whose time cannot be
    /// read (not written by druppie) is kept: a filter must not hide
    /// what it cannot judge ([`Filter::unplaced`] tells which).
    pub since: Option<Timestamp>,
}

impl Filter {
    /// Whether `r` is selected.
    pub fn keeps(&self, r: &Recorded) -> bool {
        let e = &r.event;
        self.plan.as_ref().is_none_or(|p| e.plans.contains(p))
            && (self.env.is_none() || e.env == self.env)
            && self.kind.is_none_or(|k| e.kind == k)
            && self
                .since
                .is_none_or(|t| e.instant().is_ok_and(|at| at >= t) || self.unplaced(r))
    }

    /// Whether `r` is kept only because its time cannot be read.
    pub fn unplaced(&self, r: &Recorded) -> bool {
        self.since.is_some() && r.event.instant().is_err()
    }
}
