//! The tools' source for `/mcp` on the daemon: what its last reconcile
//! left, the same values `GET /api/v1/blocks`, `/plans`,
//! `/plans/{plan}/status` and `/diff` serve.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::source::{Catalog, PlanEntry, Source, SourceError};
use crate::daemon::state::{Shared, View};

/// The daemon's shared state and its spec repo.
pub struct Served {
    pub shared: Arc<Shared>,
    pub spec_root: PathBuf,
    /// The planner's settings, shared with the chat API.
    pub chat: Arc<crate::daemon::chat::Chat>,
}

impl Served {
    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.shared.view.lock().expect("view lock")
    }
}

fn not_yet() -> SourceError {
    SourceError::NotYet("the daemon's first reconcile has not finished; try again shortly".into())
}

impl Source for Served {
    fn catalog(&self) -> Result<Catalog, SourceError> {
        let view = self.view();
        if !view.ready {
            return Err(not_yet());
        }
        Ok(Catalog {
            registry: view.registry.clone(),
            plans: view
                .plans
                .iter()
                .map(|p| PlanEntry {
                    name: p.name.clone(),
                    stack: p.stack.clone(),
                    owner: p.owner.clone(),
                    intent: p.intent.clone(),
                    environments: p.environments.clone(),
                })
                .collect(),
            stacks: view.stacks.clone(),
        })
    }

    fn status(&self, plan: Option<&str>) -> Result<Value, SourceError> {
        let view = self.view();
        if !view.ready {
            return Err(not_yet());
        }
        let plans: Vec<&crate::status::PlanStatus> = view
            .freight
            .iter()
            .filter(|p| plan.is_none_or(|name| p.plan == name))
            .collect();
        if let Some(name) = plan
            && plans.is_empty()
        {
            if view.plans.iter().any(|p| p.name == name) {
                return Err(SourceError::NotYet(format!(
                    "the last reconcile could not read where `{name}` stands (see /api/v1/status)"
                )));
            }
            return Err(super::tools::unknown(
                "plan",
                name,
                view.plans.iter().map(|p| p.name.as_str()),
            ));
        }
        Ok(json!({ "plans": plans, "errors": [] }))
    }

    fn diff(&self, plan: Option<&str>, env: Option<&str>) -> Result<Value, SourceError> {
        let view = self.view();
        if !view.ready {
            return Err(not_yet());
        }
        if plan.is_some() || env.is_some() {
            return Err(SourceError::Input(
                "the daemon keeps the dry run of its last reconcile, of every plan and environment: call `diff` without `plan` and `env` (or `plan_status` for one plan), or run `druppie mcp` on a checkout to diff one plan or environment".into(),
            ));
        }
        let dry = view.diff.clone();
        drop(view);
        dry.map(|d| d.json().clone())
            .ok_or_else(|| SourceError::NotYet("no dry run yet".into()))
    }

    fn spec_root(&self) -> &Path {
        &self.spec_root
    }

    fn environments(&self) -> Vec<String> {
        self.view().environment_names()
    }

    /// On the reconcile worker, as the chat's requests are: it is the
    /// only thread that writes the daemon's clones.
    fn plan(&self, input: super::source::PlanInput, open: bool) -> Result<Value, SourceError> {
        if !self.shared.leading() {
            return Err(SourceError::NotYet(
                "this replica does not hold the leader Lease; ask the leader".into(),
            ));
        }
        if !self.view().ready {
            return Err(not_yet());
        }
        let chat = self.chat.clone();
        let answered = crate::daemon::chat::on_worker(&self.shared, chat.patience, move |r| {
            let session = crate::daemon::chat::session(r, &chat)?;
            let answer = match input {
                super::source::PlanInput::Request(request) => session.answer(&request, open)?,
                super::source::PlanInput::Draft(draft) => {
                    session.answer_draft(*draft, "mcp client", open)?
                }
            };
            Ok::<_, crate::daemon::chat::ChatError>(
                serde_json::to_value(&answer).expect("an answer serializes"),
            )
        });
        match answered {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(SourceError::Failed {
                what: crate::error::chain(&e),
                source: Box::new(e),
            }),
            None => Err(SourceError::NotYet(
                "a reconcile kept druppie busy; nothing was done, ask again".into(),
            )),
        }
    }
}
