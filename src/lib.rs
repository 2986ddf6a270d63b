//! druppie: a GitOps reconciler driven by spec files.
//!
//! Platform teams declare building blocks (bouwblokken), stacks and plans
//! as YAML in a spec repo; druppie renders them into commits on project
//! repos and an infra repo. One library, one thin binary; every entry
//! point (CLI, daemon, HTTP API) runs the same stages, each taking the
//! previous stage's value and returning its own:
//!
//! ```text
//! load      spec repo tree        -> Spec         spec::load
//! validate  Spec                  -> Validated    spec::validate (its Deployment: platform, plans resolved)
//! select    Validated + plan/env  -> Selection    spec::select
//! compose   Validated + Selection -> Resolved     compose::compose, compose::instance
//! render    Resolved + templates  -> Desired      render::render, render::Templates
//! policy    Desired               -> Findings     policy::Checker
//! live      target repos (git)    -> Live         live::LiveRepo (over git::Repo)
//! diff      Desired + Live        -> ChangeSets   diff::diff
//! plan      ChangeSets            -> ExecutionPlan execution::plan
//! apply     ExecutionPlan         -> Outcome      apply::Writer (forge::Forge, git::write)
//! audit     git history           -> Events       audit::record, audit::read
//! ```
//!
//! `spec::open` is load → validate → select, as the CLI and the daemon
//! both start. `diff::diff` runs compose, render, policy and diff for one plan and
//! environment at a time on every core ([`par`]) and keeps only the
//! changes; `render::render` renders everything for `druppie render`.
//! `execution::plan` decides every step `apply` takes (proposals per plan
//! and environment, promotion order), once, for `diff --json`, `apply`
//! and the daemon alike. A plan's pinned block versions are read from
//! the spec repo's history (`spec::pins`, over `git::history`).
//! `render::flux` writes each plan's Flux `Kustomization` under
//! `clusters/<env>/druppie/` and each environment's list of them, which
//! `diff::list` recomputes for a change set on the tree it builds on.
//! [`lock`] is the ownership record both write and read. `apply::Run` is
//! one whole apply (sync, audit catch-up, diff, write, record), as the CLI
//! and the daemon run it. [`status`] reads, per plan and environment,
//! what is live (its lock's freight, the trail's events on the commit
//! that made it live) beside the ExecutionPlan's step: what waits where.
//!
//! Around the stages: [`daemon`] is `druppie serve` (triggers, a queue,
//! one reconcile worker, the HTTP API with its numbered event stream,
//! notifications to HTTP sinks, sign-in through an OIDC issuer that
//! decides which plans a person sees, and an OpenAI-compatible chat
//! API whose requests the planner answers on that worker), [`web`] is
//! the board the daemon serves at `/` (plans × environments, approval
//! cards, the catalog, the audit trail), [`kube`] reads the cluster (Flux
//! and Deployment readiness, the leader Lease, health checks), [`config`]
//! reads `druppie.toml`, [`secret`] keeps secret values out of output,
//! [`hex`] writes and reads digests, [`error`] puts an error and its causes
//! on one line, [`when`] reads times and spans back from now as instants,
//! [`registry`] makes the catalog of blocks and skills searchable,
//! [`planner`] turns a sentence into a checked spec change (routed,
//! drafted by rules or a language model, validated, policy-checked and
//! previewed) and opens it only as a branch of the spec repo,
//! [`mcp`] offers the catalog, plans, stacks, status, the dry run, the
//! audit trail and the planner as tools over the Model Context Protocol
//! (`druppie mcp` on stdio, `/mcp` on the daemon),
//! [`template`] configures the template engine compose and render share,
//! [`yaml_subset`] reads the common YAML subset fast for spec loading and
//! policies, exactly as serde-saphyr (behind it) reads it, and [`cli`] is the only
//! module that prints. Dry-run is the pipeline stopped after `diff`; only
//! `apply` writes to target repos, and the planner only to a proposal
//! branch of the spec repo.

pub mod apply;
pub mod audit;
pub mod budget;
pub mod cli;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod diff;
pub mod error;
pub mod execution;
pub mod forge;
pub mod git;
pub mod hex;
pub mod kube;
pub mod live;
pub mod lock;
pub mod mcp;
pub mod par;
pub mod planner;
pub mod policy;
pub mod registry;
pub mod render;
pub mod secret;
pub mod spec;
pub mod status;
pub mod template;
pub mod web;
pub mod when;
pub mod yaml_subset;
