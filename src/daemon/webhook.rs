//! Webhook deliveries from Gitea/Forgejo and GitHub: the signature check
//! (HMAC-SHA256 over the raw body, compared in constant time), the
//! payload read into a hint of what changed, and the delivery ids seen,
//! so a redelivery is handled once. A hint only says where to look: the
//! reconcile re-reads every state from git and the forge.

use std::collections::{HashSet, VecDeque};

use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use sha2::Sha256;

use crate::secret::Secret;

/// Which forge sent a delivery: its header names differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Gitea,
    GitHub,
}

impl Sender {
    pub fn name(self) -> &'static str {
        match self {
            Sender::Gitea => "gitea",
            Sender::GitHub => "github",
        }
    }

    /// The headers carrying the event name, the delivery id and the signature.
    pub fn headers(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Sender::Gitea => ("x-gitea-event", "x-gitea-delivery", "x-gitea-signature"),
            Sender::GitHub => ("x-github-event", "x-github-delivery", "x-hub-signature-256"),
        }
    }
}

/// Why a delivery was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("missing signature")]
    Unsigned,
    #[error("bad signature")]
    BadSignature,
    #[error("malformed payload: {0}")]
    Malformed(String),
}

/// Checks `signature` (as the sender's header has it) against the HMAC of
/// `body` under `secret`.
///
/// # Errors
/// The signature is missing, not hex, or does not match.
pub fn verify(
    sender: Sender,
    secret: &Secret,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), Refused> {
    let signature = signature.ok_or(Refused::Unsigned)?.trim();
    let hex = match sender {
        Sender::Gitea => signature.strip_prefix("sha256=").unwrap_or(signature),
        Sender::GitHub => signature
            .strip_prefix("sha256=")
            .ok_or(Refused::BadSignature)?,
    };
    let expected = crate::hex::decode(hex).ok_or(Refused::BadSignature)?;
    // `verify_slice` compares in constant time.
    mac(secret, body)
        .verify_slice(&expected)
        .map_err(|_| Refused::BadSignature)
}

/// The signature header value for `body` (for clients and tests).
pub fn sign(sender: Sender, secret: &Secret, body: &[u8]) -> String {
    let hex = crate::hex::encode(&mac(secret, body).finalize().into_bytes());
    match sender {
        Sender::Gitea => hex,
        Sender::GitHub => format!("sha256={hex}"),
    }
}

/// HMAC-SHA256 of `body` under `secret`.
fn mac(secret: &Secret, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    mac
}

/// What a delivery says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Commits pushed to `repo`; `after` is the new tip.
    Push {
        repo: String,
        branch: Option<String>,
        after: Option<String>,
    },
    /// A pull request changed (opened, closed, merged…).
    PullRequest {
        repo: String,
        number: i64,
        merged: bool,
    },
    /// The forge checking the hook.
    Ping,
    /// An event druppie does not act on.
    Ignored(String),
}

#[derive(Deserialize)]
struct Repository {
    name: String,
    #[serde(default)]
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    after: Option<String>,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullEvent {
    #[serde(default)]
    number: Option<i64>,
    pull_request: PullBody,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullBody {
    #[serde(default)]
    number: Option<i64>,
    #[serde(default)]
    merged: bool,
}

/// Reads a delivery's payload.
///
/// # Errors
/// The payload is not the JSON the event name promises.
pub fn parse(event: &str, body: &[u8]) -> Result<Hint, Refused> {
    let malformed = |e: serde_json::Error| Refused::Malformed(e.to_string());
    Ok(match event {
        "push" => {
            let p: Push = serde_json::from_slice(body).map_err(malformed)?;
            Hint::Push {
                repo: repo_name(&p.repository),
                branch: p.reference.strip_prefix("refs/heads/").map(str::to_owned),
                after: p
                    .after
                    .filter(|a| a.len() == 40 && a.chars().any(|c| c != '0')),
            }
        }
        "pull_request" => {
            let p: PullEvent = serde_json::from_slice(body).map_err(malformed)?;
            Hint::PullRequest {
                repo: repo_name(&p.repository),
                number: p.pull_request.number.or(p.number).unwrap_or_default(),
                merged: p.pull_request.merged,
            }
        }
        "ping" => Hint::Ping,
        other => Hint::Ignored(other.to_owned()),
    })
}

fn repo_name(r: &Repository) -> String {
    r.full_name
        .as_deref()
        .and_then(|f| f.rsplit('/').next())
        .unwrap_or(&r.name)
        .to_owned()
}

/// The delivery ids seen lately, so a redelivered event is handled once.
/// Bounded: the oldest id is forgotten first. Each id is kept as the first
/// 16 bytes of its SHA-256 (a forge's ids are UUIDs of 36 characters), so
/// a full window of 10,000 holds about half a megabyte; two ids alike in
/// those 16 bytes are as likely as a collision of random 128-bit values.
pub struct Seen {
    ids: HashSet<[u8; 16]>,
    order: VecDeque<[u8; 16]>,
    capacity: usize,
}

impl Seen {
    pub fn new(capacity: usize) -> Seen {
        Seen {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Whether `id` is new; remembers it.
    pub fn first(&mut self, id: &str) -> bool {
        use sha2::Digest as _;
        let digest = Sha256::digest(id.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        if !self.ids.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_made_with_the_secret_verifies_for_both_forges() {
        let secret = Secret::new("s3cret");
        let body = br#"{"ref":"refs/heads/main"}"#;
        for sender in [Sender::Gitea, Sender::GitHub] {
            let sig = sign(sender, &secret, body);
            assert_eq!(verify(sender, &secret, body, Some(&sig)), Ok(()));
        }
        // GitHub's value names the algorithm; Gitea's is bare hex.
        assert!(sign(Sender::GitHub, &secret, body).starts_with("sha256="));
        assert!(!sign(Sender::Gitea, &secret, body).contains('='));
    }

    #[test]
    fn a_changed_body_a_wrong_secret_or_no_signature_is_refused() {
        let secret = Secret::new("s3cret");
        let body = b"{}";
        let sig = sign(Sender::GitHub, &secret, body);
        assert_eq!(
            verify(Sender::GitHub, &secret, b"{ }", Some(&sig)),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(Sender::GitHub, &Secret::new("other"), body, Some(&sig)),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(Sender::GitHub, &secret, body, None),
            Err(Refused::Unsigned)
        );
        assert_eq!(
            verify(Sender::GitHub, &secret, body, Some("sha256=zz")),
            Err(Refused::BadSignature)
        );
        // GitHub's header without its algorithm prefix is not accepted.
        let bare = sig.trim_start_matches("sha256=");
        assert_eq!(
            verify(Sender::GitHub, &secret, body, Some(bare)),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn push_and_pull_request_payloads_become_hints() {
        let push = br#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"name":"spec","full_name":"platform/spec"}}"#;
        assert_eq!(
            parse("push", push),
            Ok(Hint::Push {
                repo: "spec".into(),
                branch: Some("main".into()),
                after: Some("0123456789abcdef0123456789abcdef01234567".into()),
            })
        );
        let pr = br#"{"action":"closed","number":7,"pull_request":{"number":7,"merged":true},"repository":{"name":"infra"}}"#;
        assert_eq!(
            parse("pull_request", pr),
            Ok(Hint::PullRequest {
                repo: "infra".into(),
                number: 7,
                merged: true
            })
        );
        assert_eq!(
            parse("issues", b"not even json"),
            Ok(Hint::Ignored("issues".into()))
        );
    }

    #[test]
    fn a_malformed_payload_is_an_error_not_a_panic() {
        for body in [
            &b"{"[..],
            b"[]",
            br#"{"ref":1}"#,
            b"\xff\xfe",
            br#"{"ref":"x"}"#,
        ] {
            assert!(
                matches!(parse("push", body), Err(Refused::Malformed(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_delivery_id_is_handled_once_and_old_ids_are_forgotten() {
        let mut seen = Seen::new(2);
        assert!(seen.first("a"));
        assert!(!seen.first("a"));
        assert!(seen.first("b"));
        assert!(seen.first("c"));
        // "a" fell out of the window of two.
        assert!(seen.first("a"));
        assert!(!seen.first("c"));
    }
}
