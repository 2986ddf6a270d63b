//! Who is asking: every request to the daemon gets a [`Viewer`] before
//! its handler runs, and each handler shows only what that viewer may
//! see. Without `[server.auth]` every request sees everything (the
//! board and the read API are read-only, as documented).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::api::App;

/// Who a request comes from, as far as what it may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// No sign-in is configured, or a platform admin: every plan.
    Everyone,
    /// A signed-in person: the plans whose owner is one of `groups`.
    Member {
        subject: String,
        groups: BTreeSet<String>,
    },
}

impl Viewer {
    /// Whether this viewer sees a plan owned by `owner`.
    pub fn sees(&self, owner: &str) -> bool {
        match self {
            Viewer::Everyone => true,
            Viewer::Member { groups, .. } => groups.contains(owner),
        }
    }

    /// Who, for the page header; `None` without sign-in.
    pub fn name(&self) -> Option<&str> {
        match self {
            Viewer::Everyone => None,
            Viewer::Member { subject, .. } => Some(subject),
        }
    }
}

/// Puts the request's [`Viewer`] in its extensions.
pub(super) async fn identify(
    State(_app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(Viewer::Everyone);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_sees_only_the_plans_its_groups_own() {
        let member = Viewer::Member {
            subject: "ana".into(),
            groups: ["team-permits".to_owned()].into(),
        };
        assert!(member.sees("team-permits"));
        assert!(!member.sees("team-docs"));
        assert!(Viewer::Everyone.sees("team-docs"));
    }
}
