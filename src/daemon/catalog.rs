//! What the catalog, the plans and the board show of a spec, kept in the
//! view after each reconcile: the blocks and skills, the plans, the
//! platform's environments, and where each block is placed (plan,
//! environment, version, project repo, and the web addresses its
//! outputs give).

use super::state::{EnvInfo, Link, Placement, PlanInfo, Shared};
use crate::spec::{Opened, Validated};

/// The blocks, skills, plans, stacks and environments of `valid`.
pub(super) fn list(shared: &Shared, valid: &Validated) {
    let plans = valid
        .spec
        .plans
        .iter()
        .map(|p| PlanInfo {
            name: p.name.value.clone(),
            stack: p.stack.value.clone(),
            owner: p.owner.value.clone(),
            intent: p.intent.clone(),
            environments: p.environments.iter().map(|e| e.value.clone()).collect(),
        })
        .collect();
    let environments = valid
        .spec
        .platform
        .iter()
        .flat_map(|p| p.environments.0.iter())
        .map(|(name, env)| EnvInfo {
            name: name.value.clone(),
            trust: env.trust,
            approvers: env.approvers.iter().map(|a| a.value.clone()).collect(),
        })
        .collect();
    let registry = crate::registry::Registry::new(&valid.spec);
    let stacks = crate::mcp::stacks(&valid.spec);
    let mut view = shared.view.lock().expect("view lock");
    view.plans = plans;
    view.environments = environments;
    view.registry = registry;
    view.stacks = stacks;
}

/// Where every block is placed, composed within `limits` (after the
/// render check, as a reconcile composes). A plan whose wiring does not
/// compose is listed without addresses; the reconcile reports why.
/// `only`: compose these plans; the others are placed as they were.
pub(super) fn place(
    shared: &Shared,
    opened: &Opened,
    limits: &crate::template::Limits,
    only: Option<&std::collections::BTreeSet<String>>,
) {
    let started = std::time::Instant::now();
    let engine = crate::template::environment();
    let mut before: std::collections::BTreeMap<(String, String), Vec<Placement>> =
        Default::default();
    if only.is_some() {
        for p in &shared.view.lock().expect("view lock").placements {
            before
                .entry((p.plan.clone(), p.env.clone()))
                .or_default()
                .push(p.clone());
        }
    }
    let placements = opened
        .picks()
        .iter()
        .flat_map(|pick| {
            let (plan, env) = (pick.plan_name(), pick.env_name());
            if only.is_some_and(|only| !only.contains(plan))
                && let Some(kept) = before.remove(&(plan.to_owned(), env.to_owned()))
            {
                return kept;
            }
            let composed = crate::compose::instance(&opened.valid, &engine, pick, limits).ok();
            pick.model
                .components
                .iter()
                .map(|c| {
                    let block = &pick.block(c).meta;
                    let outputs = composed
                        .as_ref()
                        .and_then(|i| i.components.iter().find(|ci| ci.name == c.name))
                        .map(|ci| &ci.outputs);
                    Placement {
                        plan: pick.plan_name().to_owned(),
                        env: pick.env_name().to_owned(),
                        component: c.name.clone(),
                        block: block.id.value.clone(),
                        version: block.version.value.clone(),
                        repo: c.repo.clone(),
                        urls: outputs.map(web_addresses).unwrap_or_default(),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    tracing::debug!(
        placements = placements.len(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "placed the components"
    );
    shared.view.lock().expect("view lock").placements = placements;
}

/// The outputs that are web addresses: `http` or `https`, with no user
/// or password in them (a connection string's credentials stay out).
fn web_addresses(outputs: &serde_json::Map<String, serde_json::Value>) -> Vec<Link> {
    outputs
        .iter()
        .filter_map(|(name, value)| {
            let url = value.as_str()?;
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))?;
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if authority.is_empty() || authority.contains('@') || url.chars().any(char::is_control)
            {
                return None;
            }
            Some(Link {
                name: name.clone(),
                url: url.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_addresses_without_credentials_are_links() {
        let outputs = serde_json::json!({
            "url": "http://permits-app.permits-dev.svc:8080",
            "db": "postgresql://app@permits-db-rw:5432/app",
            "login": "https://user:secret@example.org/",
            "script": "javascript:alert(1)",
            "health_url": "https://permits.example.org/healthz",
            "replicas": 3,
        });
        let links = web_addresses(outputs.as_object().unwrap());
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["health_url", "url"]);
    }
}
