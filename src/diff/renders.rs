//! What one spec revision rendered, kept between the diffs of one
//! reconcile: after it writes, the daemon diffs the same plans again
//! for their freight, and what they render has not changed (the same
//! spec, the same commit), only what is live.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::render::Desired;

/// Each plan × environment's render, once rendered. For one spec
/// revision and selection only: a new one for each reconcile.
#[derive(Debug, Default)]
pub struct Renders(Mutex<HashMap<(String, String), Arc<Desired>>>);

impl Renders {
    pub(super) fn get(&self, plan: &str, env: &str) -> Option<Arc<Desired>> {
        let kept = self.0.lock().expect("renders lock");
        kept.get(&(plan.to_owned(), env.to_owned())).cloned()
    }

    pub(super) fn keep(&self, plan: &str, env: &str, desired: Arc<Desired>) {
        let mut kept = self.0.lock().expect("renders lock");
        kept.insert((plan.to_owned(), env.to_owned()), desired);
    }
}
