//! `[[notify]]`: HTTP sinks the daemon sends its events to, as
//! CloudEvents or as a Slack- and Teams-compatible `{"text": …}`. The
//! sink's URL is a secret (a Slack or Teams webhook URL is its own
//! credential): the file names the variable that holds it, never the URL.

use serde::{Deserialize, Serialize};

use super::Span;

/// One sink.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Names the sink in logs and metrics: letters, digits, `-` and `_`.
    pub name: String,
    /// The variable holding the sink's URL.
    pub url_env: String,
    #[serde(default)]
    pub format: Format,
    /// Which kinds are sent (default: every kind).
    #[serde(default = "every_kind")]
    pub events: Vec<Kind>,
    /// Only events about these plans (default: any plan).
    #[serde(default)]
    pub plans: Vec<String>,
    /// Only events in these environments (default: any).
    #[serde(default)]
    pub environments: Vec<String>,
    /// One request, connecting and the answer included.
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    /// How many times one event is tried, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The first wait before a retry; each further one doubles (with
    /// jitter) up to [`MAX_BACKOFF`].
    #[serde(default = "default_backoff")]
    pub backoff: Span,
    /// Events waiting for delivery; past it the oldest is dropped.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// The CloudEvents `source` attribute.
    #[serde(default = "default_source")]
    pub source: String,
}

/// How an event is sent.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A CloudEvents 1.0 event in structured mode
    /// (`application/cloudevents+json`).
    #[default]
    Cloudevents,
    /// `{"text": "one line"}`, as Slack and Teams incoming webhooks take.
    Text,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A proposal (pull request, or branch on plain git) was opened.
    Proposed,
    /// A proposal was merged by an approver (or needed none).
    Approved,
    /// A proposal was merged without the approval it needed.
    Violation,
    /// A change was committed where it deploys (or merged).
    Applied,
    /// A change became live in an environment after the one before.
    Promoted,
    /// The cluster runs the applied commit and its health URLs answer.
    Verified,
    /// A reconcile, a promotion or a verification failed.
    Failed,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Proposed,
        Kind::Approved,
        Kind::Violation,
        Kind::Applied,
        Kind::Promoted,
        Kind::Verified,
        Kind::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Proposed => "proposed",
            Kind::Approved => "approved",
            Kind::Violation => "violation",
            Kind::Applied => "applied",
            Kind::Promoted => "promoted",
            Kind::Verified => "verified",
            Kind::Failed => "failed",
        }
    }
}

/// The longest wait between two attempts, a `Retry-After` included.
pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);
/// The most attempts and the largest queue a sink may have.
pub const MAX_ATTEMPTS: u32 = 20;
pub const MAX_QUEUE: usize = 100_000;

fn every_kind() -> Vec<Kind> {
    Kind::ALL.to_vec()
}
fn default_timeout() -> Span {
    Span(std::time::Duration::from_secs(10))
}
fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> Span {
    Span(std::time::Duration::from_secs(1))
}
fn default_queue() -> usize {
    1000
}
fn default_source() -> String {
    "druppie".to_owned()
}

/// What is wrong with one `[[notify]]` table: the key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Wrong {
    /// Which table (0-based, in file order).
    pub index: usize,
    pub key: &'static str,
    pub message: String,
}

/// The first sink whose settings do not hold: a name used twice or not
/// fit for a metric label, an empty variable name, no kinds, attempts or
/// a queue out of range.
pub(super) fn check(sinks: &[Notify]) -> Option<Wrong> {
    let wrong = |index, key, message: String| {
        Some(Wrong {
            index,
            key,
            message,
        })
    };
    for (i, sink) in sinks.iter().enumerate() {
        let name = &sink.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return wrong(
                i,
                "name",
                format!(
                    "[[notify]] name `{name}`: use 1 to 64 letters, digits, `-` or `_` (it labels the metrics)"
                ),
            );
        }
        if sinks[..i].iter().any(|s| s.name == *name) {
            return wrong(i, "name", format!("[[notify]] name `{name}` is used twice"));
        }
        if sink.url_env.trim().is_empty() {
            return wrong(
                i,
                "url_env",
                format!("[[notify]] `{name}`: url_env must name the variable holding the URL"),
            );
        }
        if sink.events.is_empty() {
            return wrong(
                i,
                "events",
                format!("[[notify]] `{name}`: events is empty; leave it out to send every kind"),
            );
        }
        if !(1..=MAX_ATTEMPTS).contains(&sink.attempts) {
            return wrong(
                i,
                "attempts",
                format!(
                    "[[notify]] `{name}`: attempts is {}: it must be from 1 to {MAX_ATTEMPTS}",
                    sink.attempts
                ),
            );
        }
        if !(1..=MAX_QUEUE).contains(&sink.queue) {
            return wrong(
                i,
                "queue",
                format!(
                    "[[notify]] `{name}`: queue is {}: it must be from 1 to {MAX_QUEUE}",
                    sink.queue
                ),
            );
        }
        if sink.source.is_empty() {
            return wrong(
                i,
                "source",
                format!("[[notify]] `{name}`: source must not be empty"),
            );
        }
    }
    None
}

/// Where `key` is set in the `index`-th `[[notify]]` table, else that
/// table's header.
pub(super) fn locate(text: &str, index: usize, key: &str) -> crate::spec::source::Pos {
    let lines: Vec<&str> = text.lines().collect();
    let headers: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[notify]]")
        .map(|(i, _)| i)
        .collect();
    let Some(&start) = headers.get(index) else {
        return crate::spec::source::Pos::default();
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |p| start + 1 + p);
    let line = (start + 1..end)
        .find(|&i| {
            lines[i]
                .trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .unwrap_or(start);
    crate::spec::source::Pos {
        line: line as u32 + 1,
        col: 1,
        len: key.len() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::load_text as load;

    #[test]
    fn a_sink_needs_a_name_and_a_variable_and_takes_defaults() {
        let c = load("[[notify]]\nname = \"slack\"\nurl_env = \"SLACK_URL\"\nformat = \"text\"\n")
            .expect("valid");
        let sink = &c.notify[0];
        assert_eq!(sink.format, Format::Text);
        assert_eq!(sink.events, Kind::ALL.to_vec());
        assert_eq!((sink.attempts, sink.queue), (5, 1000));
        assert_eq!(sink.timeout.0, std::time::Duration::from_secs(10));
        assert!(sink.plans.is_empty() && sink.environments.is_empty());
        let c = load("[[notify]]\nname = \"ce\"\nurl_env = \"CE\"\n").expect("valid");
        assert_eq!(c.notify[0].format, Format::Cloudevents);
        let d = load("[[notify]]\nname = \"x\"\n").expect_err("no url_env");
        assert!(d.message.contains("url_env"), "{}", d.message);
    }

    #[test]
    fn an_unknown_kind_or_key_is_located() {
        let d = load("[[notify]]\nname = \"x\"\nurl_env = \"X\"\nevents = [\"merged\"]\n")
            .expect_err("unknown kind");
        assert_eq!(d.location.pos.line, 4);
        assert!(d.message.contains("merged"), "{}", d.message);
        let d = load("[[notify]]\nname = \"x\"\nurl = \"https://hooks.example/T/B/secret\"\n")
            .expect_err("a URL in the file");
        assert_eq!(d.location.pos.line, 3);
        assert!(!d.message.contains("secret"), "{}", d.message);
    }

    #[test]
    fn bad_settings_are_located_in_their_own_table() {
        let two = "[[notify]]\nname = \"a\"\nurl_env = \"A\"\n\n[[notify]]\nname = \"b\"\nurl_env = \"B\"\nattempts = 0\n";
        let d = load(two).expect_err("no attempt");
        assert_eq!(d.location.pos.line, 8);
        assert!(d.message.contains("attempts is 0"), "{}", d.message);
        let d = load("[[notify]]\nname = \"a\"\nurl_env = \"A\"\n[[notify]]\nurl_env = \"B\"\nname = \"a\"\n")
            .expect_err("twice");
        assert_eq!(d.location.pos.line, 6);
        assert!(d.message.contains("used twice"), "{}", d.message);
        let d = load("[[notify]]\nname = \"a b\"\nurl_env = \"A\"\n").expect_err("label");
        assert_eq!(d.location.pos.line, 2);
        let d = load("[[notify]]\nname = \"a\"\nurl_env = \"A\"\nevents = []\n").expect_err("none");
        assert_eq!(d.location.pos.line, 4);
    }
}
