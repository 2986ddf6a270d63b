//! Whether the trail covers what druppie wrote: every commit druppie
//! signed on a branch of a target repo must have its event. The target
//! repos are the spec's (every plan and environment) and every repo the
//! trail names; each is fetched into the cache first, so the answer is
//! the forge's, not a stale clone's.

use std::collections::BTreeSet;

use super::{ApplyError, Cache};
use crate::audit::{self, AuditError, Missing, Recorded};
use crate::forge::{Forge, ForgeError};
use crate::git::sign::OwnKey;
use crate::spec::Validated;
use crate::spec::diag::Diagnostics;

/// The coverage could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("the spec does not render ({} errors)", .0.error_count())]
    Diagnostics(Diagnostics),
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error(transparent)]
    Fetch(#[from] ApplyError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The commits druppie signed (by `key`) in the target repos of `valid`
/// and of `events` that no event of `events` is about.
///
/// # Errors
/// The spec does not render, a repo cannot be fetched or read.
pub fn missing(
    valid: &Validated,
    events: &[Recorded],
    forge: &dyn Forge,
    cache: &Cache,
    key: &OwnKey,
    limits: &crate::template::Limits,
) -> Result<Vec<Missing>, CoverageError> {
    let mut repos: BTreeSet<String> = events.iter().map(|r| r.event.repo.clone()).collect();
    if let Some(deployment) = &valid.deployment {
        let selection =
            crate::spec::select(valid, &Default::default()).map_err(CoverageError::Diagnostics)?;
        let picks = valid.picks(&selection);
        let templates = crate::render::Templates::load(valid, deployment, &picks, limits)
            .map_err(CoverageError::Diagnostics)?;
        repos.extend(
            crate::diff::target_repos(&deployment.platform, &picks, &templates)
                .into_iter()
                .map(|(repo, _)| repo),
        );
    }
    let mut out = Vec::new();
    for repo in &repos {
        if !forge.exists(repo)? {
            continue;
        }
        cache
            .sync(repo, &forge.url(repo))
            .map_err(ApplyError::from)?;
        out.extend(audit::missing(repo, &cache.path(repo), events, key)?);
    }
    Ok(out)
}
