//! `[server.auth]`: sign-in with an OpenID Connect provider (Keycloak in
//! the Druppie platform). Without it every request sees every plan, as
//! before; with it the board, the API and the chat need a token or a
//! session, and a person sees the plans their groups own.

use serde::{Deserialize, Serialize};

use super::Span;

/// `[server.auth]`: the OIDC issuer and this daemon's client there.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// The issuer's URL, exactly as its tokens name it (`iss`); its
    /// discovery document is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// This daemon's client at the issuer.
    pub client_id: String,
    /// The variable holding the client secret (unset: a public client,
    /// PKCE only).
    #[serde(default = "default_client_secret_env")]
    pub client_secret_env: String,
    /// What a bearer token's `aud` must hold (default: `client_id`).
    #[serde(default)]
    pub audience: Option<String>,
    /// The claim holding a person's groups, an array of strings.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Members of this group see every plan.
    #[serde(default = "default_admin_group")]
    pub admin_group: String,
    /// The daemon's public URL of `/auth/callback`, as registered at the
    /// issuer (`https://druppie.example.org/auth/callback`).
    pub redirect_url: String,
    /// How long a sign-in lasts.
    #[serde(default = "default_session_ttl")]
    pub session_ttl: Span,
    /// The variable holding the key session cookies are signed with
    /// (at least 32 characters). Unset: a random key per process, so
    /// every session ends when the daemon restarts, and replicas do not
    /// share sessions.
    #[serde(default = "default_session_secret_env")]
    pub session_secret_env: String,
}

fn default_client_secret_env() -> String {
    "DRUPPIE_OIDC_CLIENT_SECRET".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_admin_group() -> String {
    "platform-admins".into()
}
fn default_session_ttl() -> Span {
    Span(std::time::Duration::from_secs(8 * 3600))
}
fn default_session_secret_env() -> String {
    "DRUPPIE_SESSION_SECRET".into()
}

impl Auth {
    /// The audience bearer tokens must name.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.client_id)
    }

    /// The first setting that cannot be used: its key and why.
    pub(super) fn invalid(&self) -> Option<(&'static str, String)> {
        if let Err(why) = check_url(&self.issuer) {
            return Some(("issuer", why));
        }
        if self.issuer.contains(['?', '#']) {
            return Some((
                "issuer",
                "an issuer has no query or fragment (RFC 8414)".into(),
            ));
        }
        if let Err(why) = check_url(&self.redirect_url) {
            return Some(("redirect_url", why));
        }
        let path = url::Url::parse(&self.redirect_url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        if !path.ends_with("/auth/callback") {
            return Some((
                "redirect_url",
                format!(
                    "`{}` must be the daemon's public URL of /auth/callback",
                    self.redirect_url
                ),
            ));
        }
        let empty = [
            ("client_id", &self.client_id),
            ("client_secret_env", &self.client_secret_env),
            ("groups_claim", &self.groups_claim),
            ("admin_group", &self.admin_group),
            ("session_secret_env", &self.session_secret_env),
        ];
        if let Some((key, _)) = empty.iter().find(|(_, v)| v.trim().is_empty()) {
            return Some((key, "it must not be empty".into()));
        }
        if self
            .audience
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            return Some(("audience", "it must not be empty".into()));
        }
        if self.session_ttl.0 < std::time::Duration::from_secs(60) {
            return Some(("session_ttl", "a session lasts at least 1m".into()));
        }
        None
    }

    /// Whether the session cookie is only sent over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.redirect_url.starts_with("https://")
    }
}

/// An `https://` URL, or `http://` to this machine (a provider on the
/// loopback interface sees no network).
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}` must not hold credentials"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{text}` must be https (http only to localhost): tokens and sessions cross it"
        )),
        other => Err(format!("`{text}` is not http(s) but {other}")),
    }
}

#[cfg(test)]
mod tests {

    use crate::config::load_text as load;

    const GOOD: &str = "[server]\nlisten = \"127.0.0.1:0\"\n[server.auth]\nissuer = \"https://id.example.org/realms/druppie\"\nclient_id = \"druppie\"\nredirect_url = \"https://druppie.example.org/auth/callback\"\n";

    #[test]
    fn auth_settings_have_defaults() {
        let auth = load(GOOD).expect("valid").server.auth.expect("set");
        assert_eq!(auth.audience(), "druppie");
        assert_eq!(auth.groups_claim, "groups");
        assert_eq!(auth.admin_group, "platform-admins");
        assert_eq!(auth.session_ttl.0, std::time::Duration::from_secs(8 * 3600));
        assert_eq!(auth.client_secret_env, "DRUPPIE_OIDC_CLIENT_SECRET");
        assert_eq!(auth.session_secret_env, "DRUPPIE_SESSION_SECRET");
        assert!(auth.secure_cookies());
        assert!(load("").expect("valid").server.auth.is_none());
    }

    #[test]
    fn bad_auth_settings_are_located_errors() {
        let cases = [
            (
                GOOD.replace("https://id.example.org", "http://id.example.org"),
                4,
                "must be https",
            ),
            (GOOD.replace("https://id", "id"), 4, "is not a URL"),
            (
                GOOD.replace("/auth/callback", "/callback"),
                6,
                "public URL of /auth/callback",
            ),
            (
                GOOD.replace("client_id = \"druppie\"", "client_id = \"\""),
                5,
                "must not be empty",
            ),
            (format!("{GOOD}session_ttl = \"10s\"\n"), 7, "at least 1m"),
            (
                format!("{GOOD}session_ttl = \"soon\"\n"),
                7,
                "not a duration",
            ),
            (format!("{GOOD}client_secret = \"x\"\n"), 7, "client_secret"),
        ];
        for (text, line, message) in cases {
            let d = load(&text).expect_err(&text);
            assert_eq!(d.location.pos.line, line, "{text}: {}", d.message);
            assert!(d.message.contains(message), "{}", d.message);
        }
        let missing = GOOD.replace("client_id = \"druppie\"\n", "");
        let d = load(&missing).expect_err("no client id");
        assert!(d.message.contains("client_id"), "{}", d.message);
    }

    #[test]
    fn http_is_allowed_to_this_machine_only_and_cookies_follow_the_scheme() {
        let text = GOOD
            .replace("https://id.example.org", "http://127.0.0.1:9000")
            .replace("https://druppie.example.org", "http://localhost:8080");
        let auth = load(&text).expect("valid").server.auth.expect("set");
        assert!(!auth.secure_cookies());
    }
}
