//! Signed cookie values: `base64url(JSON).base64url(HMAC-SHA256)`, the
//! MAC over a purpose label and the JSON, so a value made for one cookie
//! (the login's state) is never accepted as another (a session), and
//! neither is a token from anywhere else.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::secret::Secret;

/// What a sealed value is for; part of its MAC.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Session,
    Login,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"druppie-session\0",
            Purpose::Login => b"druppie-login\0",
        }
    }
}

/// Signs and checks cookie values with one key.
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// A sealer keyed by `secret` (its SHA-256), or by 32 random bytes:
    /// then what it sealed opens only in this process.
    pub fn new(secret: Option<&Secret>) -> Sealer {
        let key = match secret {
            Some(s) => Sha256::digest(s.expose().as_bytes()).into(),
            None => random(),
        };
        Sealer { key }
    }

    fn mac(&self, purpose: Purpose, body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(purpose.label());
        mac.update(body.as_bytes());
        mac
    }

    pub fn seal(&self, purpose: Purpose, value: &impl Serialize) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serializes"));
        let tag = self.mac(purpose, &body).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The value, when `text` was sealed by this key for `purpose`.
    pub fn open<T: DeserializeOwned>(&self, purpose: Purpose, text: &str) -> Option<T> {
        let (body, tag) = text.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(purpose, body).verify_slice(&tag).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }
}

/// 32 bytes from the operating system's generator.
pub fn random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random generator works");
    bytes
}

/// 32 random bytes as base64url (43 characters): a state, a nonce, a
/// PKCE verifier.
pub fn random_text() -> String {
    URL_SAFE_NO_PAD.encode(random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_unchanged_with_its_key_and_purpose() {
        let sealer = Sealer::new(Some(&Secret::new("a-session-key-of-32-characters!!")));
        let sealed = sealer.seal(Purpose::Session, &("ana", vec!["team-permits"]));
        let opened: (String, Vec<String>) = sealer.open(Purpose::Session, &sealed).expect("opens");
        assert_eq!(opened.0, "ana");
        assert!(
            sealer
                .open::<(String, Vec<String>)>(Purpose::Login, &sealed)
                .is_none()
        );
        let other = Sealer::new(None);
        assert!(
            other
                .open::<(String, Vec<String>)>(Purpose::Session, &sealed)
                .is_none()
        );
        let (body, tag) = sealed.split_once('.').expect("two parts");
        let forged = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&("ana", vec!["platform-admins"])).expect("json"));
        assert_ne!(forged, body);
        assert!(
            sealer
                .open::<(String, Vec<String>)>(Purpose::Session, &format!("{forged}.{tag}"))
                .is_none()
        );
    }
}
