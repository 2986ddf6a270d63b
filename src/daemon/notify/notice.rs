//! Which daemon events are notifications, of which kind, about what, and
//! the one line a person reads in a chat channel.

use crate::config::{Notify, NotifyKind as Kind};

use super::super::state::Event;

/// One notification, before it is written for a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    /// The plans it is about (none: the whole spec, a failed reconcile).
    pub plans: Vec<String>,
    /// The environment (none: a project repo, or no particular one).
    pub env: Option<String>,
    /// One readable line: "permits in prod: proposed — https://…/pulls/7".
    pub line: String,
}

impl Notice {
    /// `plan/env`, `plan` or nothing: the CloudEvents `subject`.
    pub fn subject(&self) -> Option<String> {
        if self.plans.is_empty() {
            return None;
        }
        let plans = self.plans.join(",");
        Some(match &self.env {
            Some(env) => format!("{plans}/{env}"),
            None => plans,
        })
    }

    /// Whether `sink` wants it: its kind, and its plans and environments
    /// when the sink names some (a notice about no plan, or no
    /// environment, passes only a sink that names none).
    pub fn wanted_by(&self, sink: &Notify) -> bool {
        sink.events.contains(&self.kind)
            && (sink.plans.is_empty() || self.plans.iter().any(|p| sink.plans.contains(p)))
            && (sink.environments.is_empty()
                || self
                    .env
                    .as_ref()
                    .is_some_and(|e| sink.environments.contains(e)))
    }
}

/// Turns daemon events into notices. A reconcile that keeps failing with
/// the same error (retried with backoff) is told once, not at every try.
#[derive(Debug, Default)]
pub struct Mapper {
    failing: Option<String>,
}

impl Mapper {
    /// The notice `event` makes, if any.
    pub fn map(&mut self, event: &Event) -> Option<Notice> {
        let notice = |kind, plans: &[String], env: &Option<String>, what: String| {
            Some(Notice {
                kind,
                plans: plans.to_vec(),
                env: env.clone(),
                line: format!("{}: {what}", about(plans, env.as_deref())),
            })
        };
        match event {
            Event::PrOpened {
                repo,
                env,
                plans,
                branch,
                pull,
                ..
            } => {
                let link = pull.clone().unwrap_or_else(|| format!("{repo} {branch}"));
                notice(Kind::Proposed, plans, env, format!("proposed — {link}"))
            }
            Event::ApprovalRecorded {
                verdict,
                repo,
                env,
                plans,
                actor,
                ..
            } => match verdict.as_str() {
                "approved" => notice(
                    Kind::Approved,
                    plans,
                    env,
                    format!("approved, merged by {actor} — {repo}"),
                ),
                "violation" => notice(
                    Kind::Violation,
                    plans,
                    env,
                    format!("VIOLATION: merged by {actor} without the approval it needs — {repo}"),
                ),
                _ => None,
            },
            Event::ChangeApplied {
                repo,
                env,
                plans,
                commit,
                ..
            } => notice(
                Kind::Applied,
                plans,
                env,
                format!("applied — {repo} {}", short(commit)),
            ),
            Event::PromotionRecorded {
                repo,
                env,
                from,
                plans,
                commit,
                ..
            } => notice(
                Kind::Promoted,
                plans,
                env,
                format!(
                    "promoted from {from} — {repo} {}",
                    short(commit.as_deref().unwrap_or_default())
                ),
            ),
            Event::VerificationRecorded {
                plan,
                env,
                commit,
                result,
                ..
            } => {
                let (kind, what) = if result == "verified" {
                    (Kind::Verified, "verified")
                } else {
                    (Kind::Failed, "verification FAILED")
                };
                notice(
                    kind,
                    std::slice::from_ref(plan),
                    &Some(env.clone()),
                    format!("{what} at {}", short(commit)),
                )
            }
            Event::ReconcileFinished {
                revision, error, ..
            } => {
                let Some(error) = error else {
                    self.failing = None;
                    return None;
                };
                if self.failing.as_ref() == Some(error) {
                    return None;
                }
                self.failing = Some(error.clone());
                let at = revision
                    .as_deref()
                    .map_or_else(String::new, |r| format!(" at {}", short(r)));
                Some(Notice {
                    kind: Kind::Failed,
                    plans: Vec::new(),
                    env: None,
                    line: format!("reconcile failed{at}: {}", first_line(error)),
                })
            }
            Event::Promotion {
                plan,
                to,
                result,
                error,
                ..
            } if result == "failed" => Some(Notice {
                kind: Kind::Failed,
                plans: vec![plan.clone()],
                env: Some(to.clone()),
                line: format!(
                    "{plan} to {to}: promotion failed — {}",
                    first_line(error.as_deref().unwrap_or_default())
                ),
            }),
            Event::ReconcileStarted { .. }
            | Event::Verification { .. }
            | Event::Promotion { .. } => None,
        }
    }
}

/// "permits in prod", "permits, meters in dev", "permits".
fn about(plans: &[String], env: Option<&str>) -> String {
    let plans = if plans.is_empty() {
        "druppie".to_owned()
    } else {
        plans.join(", ")
    };
    match env {
        Some(env) => format!("{plans} in {env}"),
        None => plans,
    }
}

/// A commit id's first 12 characters.
fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The first line, at most 300 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Vec<String> {
        vec!["permit-portal".to_owned()]
    }

    fn prod() -> Option<String> {
        Some("prod".to_owned())
    }

    fn kind(event: &Event) -> Option<Kind> {
        Mapper::default().map(event).map(|n| n.kind)
    }

    #[test]
    fn each_daemon_event_maps_to_its_kind_with_a_readable_line() {
        let opened = Event::PrOpened {
            id: "r1".into(),
            repo: "infra".into(),
            env: prod(),
            plans: plans(),
            branch: "druppie/prod/permit-portal".into(),
            pull: Some("https://git.example.org/platform/infra/pulls/7".into()),
        };
        let n = Mapper::default().map(&opened).expect("a notice");
        assert_eq!(n.kind, Kind::Proposed);
        assert_eq!(
            n.line,
            "permit-portal in prod: proposed — https://git.example.org/platform/infra/pulls/7"
        );
        assert_eq!(n.subject().as_deref(), Some("permit-portal/prod"));
        let verdict = |v: &str| Event::ApprovalRecorded {
            id: "r1".into(),
            verdict: v.into(),
            repo: "infra".into(),
            env: prod(),
            plans: plans(),
            actor: "Ann <ann@example.org>".into(),
        };
        assert_eq!(kind(&verdict("approved")), Some(Kind::Approved));
        assert_eq!(kind(&verdict("violation")), Some(Kind::Violation));
        assert_eq!(kind(&verdict("rejected")), None);
        let applied = Event::ChangeApplied {
            id: "r1".into(),
            repo: "permit-portal-api".into(),
            env: None,
            plans: plans(),
            commit: "0123456789abcdef0123".into(),
        };
        let n = Mapper::default().map(&applied).expect("a notice");
        assert_eq!(
            n.line,
            "permit-portal: applied — permit-portal-api 0123456789ab"
        );
        assert_eq!(n.subject().as_deref(), Some("permit-portal"));
        let promoted = Event::PromotionRecorded {
            id: "r1".into(),
            repo: "infra".into(),
            env: prod(),
            from: "test".into(),
            plans: plans(),
            commit: Some("fedcba9876543210".into()),
        };
        let n = Mapper::default().map(&promoted).expect("a notice");
        assert_eq!(n.kind, Kind::Promoted);
        assert_eq!(
            n.line,
            "permit-portal in prod: promoted from test — infra fedcba987654"
        );
        let verified = |result: &str| Event::VerificationRecorded {
            id: "r1".into(),
            plan: "permit-portal".into(),
            env: "dev".into(),
            commit: "abc".into(),
            result: result.into(),
        };
        assert_eq!(kind(&verified("verified")), Some(Kind::Verified));
        assert_eq!(kind(&verified("failed")), Some(Kind::Failed));
        let per_url = Event::Verification {
            id: "r1".into(),
            plan: "p".into(),
            env: "dev".into(),
            url: "http://x/healthz".into(),
            result: "failed".into(),
        };
        assert_eq!(kind(&per_url), None, "the verdict is told, not each URL");
        let started = Event::ReconcileStarted {
            id: "r1".into(),
            trigger: "poll".into(),
        };
        assert_eq!(kind(&started), None);
        let promotion = |result: &str| Event::Promotion {
            id: "r1".into(),
            plan: "permit-portal".into(),
            from: None,
            to: "prod".into(),
            result: result.into(),
            error: Some("the forge answered 500\ncaused by: …".into()),
        };
        let n = Mapper::default()
            .map(&promotion("failed"))
            .expect("a notice");
        assert_eq!(
            n.line,
            "permit-portal to prod: promotion failed — the forge answered 500"
        );
        assert_eq!(kind(&promotion("committed")), None, "told by its record");
        assert_eq!(kind(&promotion("refused")), None);
    }

    #[test]
    fn a_reconcile_failing_again_the_same_way_is_told_once() {
        let finished = |error: Option<&str>| Event::ReconcileFinished {
            id: "r".into(),
            result: if error.is_some() { "failed" } else { "success" }.into(),
            revision: Some("0123456789abcdef".into()),
            duration_ms: 10,
            error: error.map(str::to_owned),
        };
        let mut m = Mapper::default();
        let n = m
            .map(&finished(Some("the forge is unreachable")))
            .expect("told");
        assert_eq!(n.kind, Kind::Failed);
        assert_eq!(
            n.line,
            "reconcile failed at 0123456789ab: the forge is unreachable"
        );
        assert_eq!(n.subject(), None);
        assert_eq!(m.map(&finished(Some("the forge is unreachable"))), None);
        assert!(m.map(&finished(Some("a policy fails"))).is_some());
        assert_eq!(m.map(&finished(None)), None);
        assert!(
            m.map(&finished(Some("a policy fails"))).is_some(),
            "after a success, again"
        );
    }

    #[test]
    fn a_sink_gets_the_kinds_plans_and_environments_it_names() {
        let sink = |events: &[Kind], plans: &[&str], envs: &[&str]| Notify {
            name: "s".into(),
            url_env: "S".into(),
            format: Default::default(),
            events: events.to_vec(),
            plans: plans.iter().map(|p| (*p).to_owned()).collect(),
            environments: envs.iter().map(|e| (*e).to_owned()).collect(),
            timeout: crate::config::Span(std::time::Duration::from_secs(1)),
            attempts: 1,
            backoff: crate::config::Span(std::time::Duration::from_secs(1)),
            queue: 1,
            source: "druppie".into(),
        };
        let n = Notice {
            kind: Kind::Applied,
            plans: plans(),
            env: prod(),
            line: String::new(),
        };
        assert!(n.wanted_by(&sink(&Kind::ALL, &[], &[])));
        assert!(!n.wanted_by(&sink(&[Kind::Proposed], &[], &[])));
        assert!(n.wanted_by(&sink(&Kind::ALL, &["permit-portal"], &["prod"])));
        assert!(!n.wanted_by(&sink(&Kind::ALL, &["other"], &[])));
        assert!(!n.wanted_by(&sink(&Kind::ALL, &[], &["dev"])));
        let global = Notice {
            kind: Kind::Failed,
            plans: Vec::new(),
            env: None,
            line: String::new(),
        };
        assert!(global.wanted_by(&sink(&Kind::ALL, &[], &[])));
        assert!(!global.wanted_by(&sink(&Kind::ALL, &["permit-portal"], &[])));
    }
}
