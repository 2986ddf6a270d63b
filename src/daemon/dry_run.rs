//! The last reconcile's dry run, as `/api/v1/diff`, the MCP `diff` tool
//! and the plan page show it.
//!
//! It is kept as the change sets the reconcile found (shared with what the
//! next reconcile merges into, [`super::last::Last`]) and made into
//! `druppie diff --json` when first asked: after a first apply that is
//! every file of the platform, and making it took about as long as
//! writing them (0.8 s at 10,000 plans), for a view that may never be
//! opened.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::diff::ChangeSets;
use crate::diff::report::{self, Mask};

pub struct DryRun {
    /// What it is made from (the change sets and the run's intent);
    /// `None` for one given as its JSON.
    changes: Option<(Arc<ChangeSets>, String)>,
    json: OnceLock<Value>,
}

impl DryRun {
    /// The dry run of `changes`, a reconcile of `intent`.
    pub fn of(changes: Arc<ChangeSets>, intent: String) -> DryRun {
        DryRun {
            changes: Some((changes, intent)),
            json: OnceLock::new(),
        }
    }

    /// A dry run given as its JSON.
    #[cfg(test)]
    pub fn shown(json: Value) -> DryRun {
        DryRun {
            changes: None,
            json: OnceLock::from(json),
        }
    }

    /// `druppie diff --json` of it, made on the first call (secrets
    /// masked). Call it off the view's lock: it can take a while.
    pub fn json(&self) -> &Value {
        self.json.get_or_init(|| {
            let Some((changes, intent)) = &self.changes else {
                return Value::Null;
            };
            let mask = Mask::new(changes.secrets.iter().cloned());
            let plan = crate::execution::plan(changes, intent.clone());
            serde_json::to_value(report::json(changes, &mask, plan)).unwrap_or_default()
        })
    }
}

/// `dry` with its JSON made, on a blocking thread when it is not yet;
/// `None` (and the reason in the log) when making it failed.
pub async fn made(dry: Arc<DryRun>) -> Option<Arc<DryRun>> {
    if dry.json.get().is_some() {
        return Some(dry);
    }
    let made = tokio::task::spawn_blocking(move || {
        dry.json();
        dry
    })
    .await;
    made.inspect_err(|e| tracing::error!(error = %e, "making the dry run's JSON"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::ChangeSet;

    #[test]
    fn the_json_is_made_when_first_asked_and_masks_secrets() {
        let mut set = ChangeSet::modifying("infra", Some("prod"), None, "shop", &["a.yaml"]);
        set.files[0].new = Some(b"password: hunter22\n".to_vec());
        let changes = ChangeSets {
            sets: vec![set],
            secrets: vec!["hunter22".into()],
            ..ChangeSets::default()
        };
        let dry = DryRun::of(Arc::new(changes), "bring plan shop in line".into());
        assert!(
            dry.json.get().is_none(),
            "nothing is made before it is asked"
        );
        let json = dry.json();
        let diff = json["changes"][0]["files"][0]["diff"]
            .as_str()
            .expect("a diff");
        assert!(diff.contains("+password: "), "{diff}");
        assert!(!diff.contains("hunter22"), "the secret is masked: {diff}");
        assert_eq!(json["execution_plan"]["intent"], "bring plan shop in line");
        assert!(std::ptr::eq(json, dry.json()), "made once");
    }
}
