//! What a sink receives: a CloudEvents 1.0 event in structured mode, or
//! `{"text": …}` for Slack and Teams incoming webhooks. Every body is
//! scrubbed of every configured secret before it leaves.

use serde_json::json;

use super::super::journal::Stamped;
use super::notice::Notice;
use crate::config::NotifyFormat as Format;
use crate::secret::Scrubber;

/// The CloudEvents `type` prefix: reverse DNS, then the kind.
pub const TYPE_PREFIX: &str = "io.druppie.";

/// A request body and its content type.
#[derive(Debug, Clone)]
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// `notice` (made from `event`) as `format` writes it, scrubbed.
pub fn body(
    format: Format,
    source: &str,
    event: &Stamped,
    notice: &Notice,
    scrubber: &Scrubber,
) -> Body {
    let (content_type, value) = match format {
        Format::Cloudevents => (
            "application/cloudevents+json",
            cloudevent(source, event, notice),
        ),
        Format::Text => (
            "application/json",
            json!({ "text": chat_text(&notice.line) }),
        ),
    };
    let text = serde_json::to_string(&value).expect("a JSON value serializes");
    Body {
        content_type,
        bytes: scrubber.scrub(&text).into_owned().into_bytes(),
    }
}

/// The structured-mode event: the required attributes, `time`,
/// `subject` when the notice is about a plan, and the daemon's event as
/// `data` beside the kind and the line.
fn cloudevent(source: &str, event: &Stamped, notice: &Notice) -> serde_json::Value {
    let mut ce = json!({
        "specversion": "1.0",
        "id": event.id.to_string(),
        "source": source,
        "type": format!("{TYPE_PREFIX}{}", notice.kind.name()),
        "time": event.time.to_string(),
        "datacontenttype": "application/json",
        "data": {
            "kind": notice.kind.name(),
            "plans": notice.plans,
            "environment": notice.env,
            "summary": notice.line,
            "event": &event.event,
        },
    });
    if let Some(subject) = notice.subject() {
        ce["subject"] = json!(subject);
    }
    ce
}

/// The line as Slack's `text` wants it: `&`, `<` and `>` escaped, so
/// that text from a spec or an error cannot become a link or a mention
/// (`<!channel>`); Teams shows the escaped characters as themselves. A
/// Markdown link (`[text](url)`, which Teams renders) is broken apart
/// (`[text] (url)`), so a spec value cannot dress a link up as text of
/// its own.
fn chat_text(line: &str) -> String {
    line.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace("](", "] (")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NotifyKind as Kind;
    use crate::daemon::journal::EventId;
    use crate::daemon::state::Event;
    use crate::secret::Secret;

    fn stamped() -> Stamped {
        Stamped {
            id: EventId { boot: 0xab, seq: 4 },
            time: "2026-12-05T01:02:03Z".parse().expect("a time"),
            event: Event::PrOpened {
                id: "r1".into(),
                repo: "infra".into(),
                env: Some("prod".into()),
                plans: vec!["permit-portal".into()],
                branch: "druppie/prod/permit-portal".into(),
                pull: Some("https://git.example.org/p/infra/pulls/7?token=tok-secret-99".into()),
            },
        }
    }

    fn notice() -> Notice {
        Notice {
            kind: Kind::Proposed,
            plans: vec!["permit-portal".into()],
            env: Some("prod".into()),
            line: "permit-portal in prod: proposed — https://git.example.org/p/infra/pulls/7?token=tok-secret-99 <!channel> & co".into(),
        }
    }

    fn scrubber() -> Scrubber {
        let s = Scrubber::new();
        s.add(&Secret::new("tok-secret-99"));
        s
    }

    #[test]
    fn a_cloudevent_carries_every_attribute_in_structured_mode() {
        let b = body(
            Format::Cloudevents,
            "druppie",
            &stamped(),
            &notice(),
            &scrubber(),
        );
        assert_eq!(b.content_type, "application/cloudevents+json");
        let v: serde_json::Value = serde_json::from_slice(&b.bytes).expect("json");
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], "ab-4");
        assert_eq!(v["source"], "druppie");
        assert_eq!(v["type"], "io.druppie.proposed");
        assert_eq!(v["time"], "2026-12-05T01:02:03Z");
        assert_eq!(v["subject"], "permit-portal/prod");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["data"]["kind"], "proposed");
        assert_eq!(v["data"]["environment"], "prod");
        assert_eq!(v["data"]["event"]["type"], "pr-opened");
        assert_eq!(v["data"]["event"]["branch"], "druppie/prod/permit-portal");
        let text = String::from_utf8(b.bytes).expect("utf-8");
        assert!(!text.contains("tok-secret-99"), "{text}");
    }

    #[test]
    fn a_notice_about_no_plan_has_no_subject() {
        let n = Notice {
            plans: Vec::new(),
            env: None,
            kind: Kind::Failed,
            line: "reconcile failed".into(),
        };
        let b = body(
            Format::Cloudevents,
            "druppie",
            &stamped(),
            &n,
            &Scrubber::new(),
        );
        let v: serde_json::Value = serde_json::from_slice(&b.bytes).expect("json");
        assert!(v.get("subject").is_none(), "{v}");
        assert_eq!(v["type"], "io.druppie.failed");
    }

    #[test]
    fn a_markdown_link_from_a_spec_value_is_broken_apart() {
        assert_eq!(
            chat_text("input is \"[Sign in again](https://evil.example/login)\""),
            "input is \"[Sign in again] (https://evil.example/login)\""
        );
    }

    #[test]
    fn the_text_form_is_one_escaped_scrubbed_line() {
        let b = body(Format::Text, "druppie", &stamped(), &notice(), &scrubber());
        assert_eq!(b.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&b.bytes).expect("json");
        assert_eq!(
            v,
            json!({"text": "permit-portal in prod: proposed — https://git.example.org/p/infra/pulls/7?token=*** &lt;!channel&gt; &amp; co"})
        );
    }
}
