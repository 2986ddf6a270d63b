//! How many commits one push writes. Each plan's change is its own
//! commit, up to [`COMMITS_MAX`] plans in one push; a larger run (a
//! first apply, a block change every plan of a `deploy` environment
//! takes) puts consecutive plans together in at most [`COMMITS_MAX`]
//! commits. Every commit holds the environment's whole tree and its
//! list of Flux directories, so one commit per plan costs the square
//! of the plans: at 10,000 plans, 10,000 trees of 10,000 entries.

use super::PlanCommit;

/// The most commits one push writes.
pub const COMMITS_MAX: usize = 100;

/// `commits` (one per plan's change set, in order) as at most
/// [`COMMITS_MAX`] commits: runs of consecutive ones promoted from the
/// same environment, each group at most `ceil(n / COMMITS_MAX)` long.
pub(super) fn group(commits: Vec<PlanCommit>, env: Option<&str>, repo: &str) -> Vec<PlanCommit> {
    if commits.len() <= COMMITS_MAX {
        return commits;
    }
    let size = commits.len().div_ceil(COMMITS_MAX);
    let mut out: Vec<PlanCommit> = Vec::new();
    let mut taken = 0;
    for pc in commits {
        match out.last_mut() {
            Some(last) if taken < size && last.promoted_from == pc.promoted_from => {
                last.sets.extend(pc.sets);
                for plan in pc.plans {
                    if !last.plans.contains(&plan) {
                        last.plans.push(plan);
                    }
                }
                last.files += pc.files;
                taken += 1;
            }
            _ => {
                out.push(pc);
                taken = 1;
            }
        }
    }
    for pc in out.iter_mut().filter(|pc| pc.sets.len() > 1) {
        pc.subject = subject(&pc.plans, env, repo);
    }
    out
}

/// A group's subject: how many plans, the first and the last (the
/// `Druppie-Plan` trailer names every one).
fn subject(plans: &[String], env: Option<&str>, repo: &str) -> String {
    let place = env.unwrap_or(repo);
    match (plans.first(), plans.last()) {
        (Some(first), Some(last)) => {
            format!(
                "druppie: {} plans in {place} ({first} … {last})",
                plans.len()
            )
        }
        _ => format!("druppie: {place}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(i: usize, from: Option<&str>) -> PlanCommit {
        PlanCommit {
            sets: vec![i],
            plans: vec![format!("p{i:04}")],
            subject: format!("druppie: p{i:04} in prod"),
            files: 2,
            promoted_from: from.map(str::to_owned),
        }
    }

    #[test]
    fn up_to_the_limit_every_plan_is_its_own_commit() {
        let commits: Vec<_> = (0..COMMITS_MAX).map(|i| one(i, None)).collect();
        let grouped = group(commits, Some("prod"), "infra");
        assert_eq!(grouped.len(), COMMITS_MAX);
        assert!(grouped.iter().all(|pc| pc.sets.len() == 1));
        assert_eq!(grouped[7].subject, "druppie: p0007 in prod");
    }

    #[test]
    fn a_larger_run_is_at_most_the_limit_of_commits_of_consecutive_plans_each_named() {
        let commits: Vec<_> = (0..1_001).map(|i| one(i, None)).collect();
        let grouped = group(commits, Some("prod"), "infra");
        assert!(grouped.len() <= COMMITS_MAX, "{}", grouped.len());
        let sets: Vec<usize> = grouped.iter().flat_map(|pc| pc.sets.clone()).collect();
        assert_eq!(
            sets,
            (0..1_001).collect::<Vec<_>>(),
            "every plan once, in order"
        );
        assert_eq!(grouped[0].plans.len(), 11);
        assert_eq!(grouped[0].files, 22);
        assert_eq!(
            grouped[0].subject,
            "druppie: 11 plans in prod (p0000 … p0010)"
        );
    }

    #[test]
    fn plans_promoted_from_different_environments_are_not_put_together() {
        let commits: Vec<_> = (0..300)
            .map(|i| one(i, Some(if i % 2 == 0 { "dev" } else { "test" })))
            .collect();
        let grouped = group(commits, Some("prod"), "infra");
        assert!(grouped.iter().all(|pc| pc.sets.len() == 1));
    }
}
