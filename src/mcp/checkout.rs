//! The tools' source for `druppie mcp`: a spec checkout, read afresh on
//! every call (an edit is seen at once), through the same stages as
//! `druppie blocks`, `status` and `diff`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::source::{Catalog, Source, SourceError};
use crate::compose::ComposeOptions;
use crate::diff::report::{self, Mask};
use crate::git::sign::OwnKey;
use crate::live::Sources;
use crate::spec::LoadOptions;

/// A spec checkout and where its live repos are.
pub struct Checkout {
    pub spec_root: PathBuf,
    /// The live repos `diff` and `status` compare with, as the CLI
    /// finds them (`--infra`, `--repos`, `[repos]`, `infra-example/`).
    pub sources: Sources,
    /// druppie's own key (`[signing] key`): its commits on proposal
    /// branches, and the audit trail's events it signed.
    pub own_key: Option<OwnKey>,
    pub limits: crate::template::Limits,
    /// The configuration, the forge token and the scrubber the planner
    /// opens proposals with.
    pub config: crate::config::Config,
    pub forge_token: Option<crate::secret::Secret>,
    /// The key of `[llm]`, when one is set: requests are drafted by the
    /// language model as `druppie propose` drafts them.
    pub llm_key: Option<crate::secret::Secret>,
    pub scrubber: crate::secret::Scrubber,
}

impl Checkout {
    fn open(&self, plan: Option<&str>, env: Option<&str>) -> Result<Opened, SourceError> {
        let scope = ComposeOptions {
            plan: plan.map(str::to_owned),
            env: env.map(str::to_owned),
            shards: None,
        };
        let opened = crate::spec::open(&self.spec_root, &LoadOptions::default(), &scope)?;
        let commit = crate::git::head_commit(&self.spec_root).map(|c| c.to_string());
        let options = crate::diff::Options {
            sources: &self.sources,
            scope: &scope,
            spec_commit: commit.as_deref(),
            limits: self.limits,
            own_key: self.own_key.as_ref(),
        };
        let changes = crate::diff::diff(&opened.valid, &opened.selection, &options)
            .map_err(SourceError::Spec)?;
        Ok(Opened { opened, changes })
    }

    /// The events druppie signed on the trail; none without its key or
    /// outside a git repository (as `druppie status`).
    fn trail(&self) -> Result<Vec<crate::audit::Recorded>, SourceError> {
        let (Some(repo), Some(key)) = (
            crate::git::Repo::discover(&self.spec_root),
            self.own_key.as_ref(),
        ) else {
            return Ok(Vec::new());
        };
        crate::audit::trusted(&repo, key)
            .map(|t| t.events)
            .map_err(|e| SourceError::Failed {
                what: "the audit trail cannot be read".to_owned(),
                source: Box::new(e),
            })
    }
}

struct Opened {
    opened: crate::spec::Opened,
    changes: crate::diff::ChangeSets,
}

impl Source for Checkout {
    fn catalog(&self) -> Result<Catalog, SourceError> {
        let spec = crate::spec::load(&self.spec_root, &LoadOptions::default()).map_err(|e| {
            SourceError::Failed {
                what: "the spec cannot be read".to_owned(),
                source: Box::new(e),
            }
        })?;
        Ok(Catalog::of(&spec))
    }

    fn status(&self, plan: Option<&str>) -> Result<Value, SourceError> {
        let Opened {
            opened,
            mut changes,
        } = self.open(plan, None)?;
        let events = self.trail()?;
        let (report, errors) = crate::status::gated(
            &opened.valid,
            &opened.selection,
            &mut changes,
            &self.sources,
            &events,
        );
        Ok(json!({ "plans": report.plans, "errors": errors }))
    }

    fn diff(&self, plan: Option<&str>, env: Option<&str>) -> Result<Value, SourceError> {
        let Opened { opened, changes } = self.open(plan, env)?;
        let mask = Mask::new(changes.secrets.iter().cloned());
        let intent = report::intent(&opened.valid, plan);
        let execution = crate::execution::plan(&changes, intent);
        let mut value = serde_json::to_value(report::json(&changes, &mask, execution))
            .expect("the report serializes");
        let errors: Vec<String> = changes.errors.iter().map(ToString::to_string).collect();
        value["errors"] = json!(errors);
        Ok(value)
    }

    fn spec_root(&self) -> &Path {
        &self.spec_root
    }

    fn plan(&self, input: super::source::PlanInput, open: bool) -> Result<Value, SourceError> {
        let session = crate::planner::Session::new(
            &self.spec_root,
            &self.config,
            self.forge_token.clone(),
            self.sources.clone(),
            self.scrubber.clone(),
        )
        .map_err(|e| SourceError::Failed {
            what: crate::error::chain(&e),
            source: Box::new(e),
        })?
        .with_llm(self.config.llm.clone().map(|settings| {
            crate::planner::llm::LlmPlanner::new(
                settings,
                self.llm_key.clone(),
                self.scrubber.clone(),
            )
        }));
        let answer = match input {
            super::source::PlanInput::Request(r) => session.answer(&r, open)?,
            super::source::PlanInput::Draft(d) => session.answer_draft(*d, "mcp client", open)?,
        };
        Ok(serde_json::to_value(&answer).expect("an answer serializes"))
    }

    fn environments(&self) -> Vec<String> {
        let Ok(spec) = crate::spec::load(&self.spec_root, &LoadOptions::default()) else {
            return Vec::new();
        };
        let mut envs: Vec<String> = spec
            .plans
            .iter()
            .flat_map(|p| p.environments.iter().map(|e| e.value.clone()))
            .collect();
        if let Some(platform) = &spec.platform {
            envs.extend(platform.environments.0.iter().map(|(k, _)| k.value.clone()));
        }
        envs.sort();
        envs.dedup();
        envs
    }
}
