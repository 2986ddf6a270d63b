//! The OpenID Connect issuer: its discovery document, its keys (fetched
//! once, fetched again when a token names a key not seen yet, at most
//! once per [`REFETCH`]), tokens verified against them, and a token's
//! groups turned into a [`Viewer`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::Viewer;
use super::jwt::{self, Claims, Keys, Refused};
use super::seal::Sealer;
use crate::secret::Secret;

/// Keys are fetched again for an unknown `kid` at most this often.
const REFETCH: Duration = Duration::from_secs(30);
/// Clock difference forgiven on `exp` and `nbf`.
const LEEWAY: i64 = 60;
/// One request to the issuer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest document read from the issuer.
const DOCUMENT_LIMIT: usize = 1 << 20;

/// `[server.auth]` with the secrets it names, as the daemon uses it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client (PKCE only).
    pub client_secret: Option<Secret>,
    pub audience: String,
    pub groups_claim: String,
    pub admin_group: String,
    pub redirect_url: String,
    pub session_ttl: Duration,
    /// `None`: sessions are signed with a key made at start.
    pub session_secret: Option<Secret>,
}

impl Settings {
    /// The settings `[server.auth]` gives with these secrets.
    pub fn new(
        auth: &crate::config::Auth,
        client_secret: Option<Secret>,
        session_secret: Option<Secret>,
    ) -> Settings {
        Settings {
            issuer: auth.issuer.clone(),
            client_id: auth.client_id.clone(),
            client_secret,
            audience: auth.audience().to_owned(),
            groups_claim: auth.groups_claim.clone(),
            admin_group: auth.admin_group.clone(),
            redirect_url: auth.redirect_url.clone(),
            session_ttl: auth.session_ttl.0,
            session_secret,
        }
    }
}

/// The issuer's endpoints, from its discovery document.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub jwks: String,
}

/// Why the issuer could not be used. Each is passing: the issuer may be
/// back, or fixed, on the next request.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("cannot reach the identity provider at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the identity provider answered {status} at {url}")]
    Status { url: String, status: u16 },
    #[error("the identity provider's document at {url} cannot be used: {why}")]
    Document { url: String, why: String },
    #[error(
        "the discovery document names the issuer `{found}`, not `{expected}` as [server.auth] issuer does"
    )]
    Issuer { expected: String, found: String },
    #[error(transparent)]
    Keys(#[from] jwt::KeysError),
}

impl IssuerError {
    /// Whether trying again unchanged may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            IssuerError::Unreachable { .. } => true,
            IssuerError::Status { status, .. } => *status >= 500 || *status == 429,
            IssuerError::Document { .. } | IssuerError::Issuer { .. } | IssuerError::Keys(_) => {
                false
            }
        }
    }
}

/// Why a request's credential is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] Refused),
    #[error("the token's `{claim}` claim is not an array of strings")]
    Groups { claim: String },
    #[error(transparent)]
    Issuer(#[from] IssuerError),
}

#[derive(Default)]
struct Cache {
    endpoints: Option<Endpoints>,
    keys: Option<Keys>,
    fetched: Option<Instant>,
}

/// The issuer as the daemon talks to it.
pub struct Oidc {
    pub settings: Settings,
    pub sealer: Sealer,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Cache>,
    /// Keys are fetched again for an unknown `kid` at most this often.
    refetch: Duration,
}

impl Oidc {
    /// # Errors
    /// The HTTP client cannot be built (no TLS provider installed).
    pub fn new(settings: Settings) -> Result<Oidc, reqwest::Error> {
        // The process's TLS provider is ring, as for every client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Oidc {
            sealer: Sealer::new(settings.session_secret.as_ref()),
            settings,
            http,
            cache: tokio::sync::Mutex::new(Cache::default()),
            refetch: REFETCH,
        })
    }

    /// A JSON document from the issuer.
    async fn get(&self, url: &str) -> Result<Value, IssuerError> {
        let answer = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|source| IssuerError::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        read_json(url, answer).await
    }

    /// The issuer's endpoints, read once.
    ///
    /// # Errors
    /// The discovery document cannot be read or names another issuer.
    pub async fn endpoints(&self) -> Result<Endpoints, IssuerError> {
        if let Some(e) = &self.cache.lock().await.endpoints {
            return Ok(e.clone());
        }
        let issuer = &self.settings.issuer;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.get(&url).await?;
        let found = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if found != issuer {
            return Err(IssuerError::Issuer {
                expected: issuer.clone(),
                found: found.to_owned(),
            });
        }
        let endpoint = |name: &str| {
            let text = doc.get(name).and_then(Value::as_str).unwrap_or("");
            let plain_ok = issuer.starts_with("http://");
            match url::Url::parse(text) {
                Ok(u) if u.scheme() == "https" || (plain_ok && u.scheme() == "http") => {
                    Ok(text.to_owned())
                }
                _ => Err(IssuerError::Document {
                    url: url.clone(),
                    why: format!("`{name}` is not an https URL"),
                }),
            }
        };
        let endpoints = Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            jwks: endpoint("jwks_uri")?,
        };
        self.cache.lock().await.endpoints = Some(endpoints.clone());
        Ok(endpoints)
    }

    /// The issuer's keys: those held, or fetched when there are none or
    /// `refresh` asks and the last fetch is older than [`REFETCH`].
    async fn keys(&self, refresh: bool) -> Result<Keys, IssuerError> {
        {
            let cache = self.cache.lock().await;
            let recent = cache.fetched.is_some_and(|t| t.elapsed() < self.refetch);
            if let Some(keys) = &cache.keys
                && (!refresh || recent)
            {
                return Ok(keys.clone());
            }
        }
        let jwks = self.endpoints().await?.jwks;
        let doc = self.get(&jwks).await;
        let mut cache = self.cache.lock().await;
        cache.fetched = Some(Instant::now());
        let keys = Keys::parse(&serde_json::to_vec(&doc?).expect("JSON serializes"))?;
        tracing::info!(
            keys = keys.len(),
            "read the identity provider's signing keys"
        );
        cache.keys = Some(keys.clone());
        Ok(keys)
    }

    /// Verifies `token` for `audience`; an unknown key fetches the keys
    /// again (rate-limited) and tries once more.
    ///
    /// # Errors
    /// The token is refused, or the issuer cannot be read.
    pub async fn verify(&self, token: &str, audience: &str) -> Result<Claims, AuthError> {
        let expect = jwt::Expect {
            issuer: &self.settings.issuer,
            audience,
            now: jiff::Timestamp::now().as_second(),
            leeway: LEEWAY,
        };
        match jwt::verify(token, &self.keys(false).await?, &expect) {
            Err(Refused::UnknownKey(_)) => {
                Ok(jwt::verify(token, &self.keys(true).await?, &expect)?)
            }
            other => Ok(other?),
        }
    }

    /// Who a verified token (or session) speaks for.
    ///
    /// # Errors
    /// The groups claim is there but not an array of strings.
    pub fn viewer(&self, claims: &Claims) -> Result<Viewer, AuthError> {
        let groups = groups(&claims.all, &self.settings.groups_claim)?;
        Ok(self.viewer_of(claims.subject.clone(), groups))
    }

    /// A platform admin sees everything; anyone else their groups' plans.
    pub fn viewer_of(&self, subject: String, groups: BTreeSet<String>) -> Viewer {
        if groups.contains(&self.settings.admin_group) {
            Viewer::Everyone
        } else {
            Viewer::Member { subject, groups }
        }
    }

    /// Exchanges an authorization code at the token endpoint; the ID
    /// token it answers with, unverified.
    ///
    /// # Errors
    /// The issuer cannot be reached or refuses the code.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<String, IssuerError> {
        let token = self.endpoints().await?.token;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.settings.redirect_url),
            ("code_verifier", verifier),
        ];
        let mut request = self
            .http
            .post(&token)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        match &self.settings.client_secret {
            // client_secret_basic: both parts form-encoded (RFC 6749 2.3.1).
            Some(secret) => {
                let enc = |t: &str| url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
                let (id, pass): (String, String) =
                    (enc(&self.settings.client_id), enc(secret.expose()));
                request = request.basic_auth(id, Some(pass));
            }
            None => {
                form.push(("client_id", &self.settings.client_id));
            }
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let answer =
            request
                .body(body)
                .send()
                .await
                .map_err(|source| IssuerError::Unreachable {
                    url: token.clone(),
                    source,
                })?;
        let doc = read_json(&token, answer).await?;
        doc.get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| IssuerError::Document {
                url: token,
                why: "the answer holds no id_token".into(),
            })
    }
}

/// A JSON answer of at most [`DOCUMENT_LIMIT`] bytes.
async fn read_json(url: &str, answer: reqwest::Response) -> Result<Value, IssuerError> {
    let status = answer.status().as_u16();
    if status != 200 {
        return Err(IssuerError::Status {
            url: url.to_owned(),
            status,
        });
    }
    let too_large = || IssuerError::Document {
        url: url.to_owned(),
        why: "it is larger than 1 MiB".into(),
    };
    if answer
        .content_length()
        .is_some_and(|l| l > DOCUMENT_LIMIT as u64)
    {
        return Err(too_large());
    }
    let bytes = answer
        .bytes()
        .await
        .map_err(|source| IssuerError::Unreachable {
            url: url.to_owned(),
            source,
        })?;
    if bytes.len() > DOCUMENT_LIMIT {
        return Err(too_large());
    }
    serde_json::from_slice(&bytes).map_err(|e| IssuerError::Document {
        url: url.to_owned(),
        why: format!("not JSON: {e}"),
    })
}

/// The groups in `claim`: none when it is absent, one leading `/` taken
/// off each (Keycloak's full group paths).
///
/// # Errors
/// The claim is not an array of strings.
pub fn groups(claims: &Map<String, Value>, claim: &str) -> Result<BTreeSet<String>, AuthError> {
    let bad = || AuthError::Groups {
        claim: claim.to_owned(),
    };
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(BTreeSet::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|g| {
                let g = g.as_str().ok_or_else(bad)?;
                Ok(g.strip_prefix('/').unwrap_or(g).to_owned())
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::auth::jwt::testing::TestKey;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    /// An issuer on 127.0.0.1 serving its discovery document and the
    /// JWKS `jwks` holds, counting the JWKS fetches.
    async fn issuer(jwks: Arc<Mutex<Value>>, fetches: Arc<Mutex<u32>>) -> String {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let doc = json!({
            "issuer": base, "jwks_uri": format!("{base}/jwks"),
            "authorization_endpoint": format!("{base}/auth"), "token_endpoint": format!("{base}/token"),
        });
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(doc) }),
            )
            .route(
                "/jwks",
                get(move || async move {
                    *fetches.lock().expect("count") += 1;
                    let keys = jwks.lock().expect("jwks").clone();
                    axum::Json(keys)
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    fn settings(issuer: &str) -> Settings {
        Settings {
            issuer: issuer.into(),
            client_id: "druppie".into(),
            client_secret: None,
            audience: "druppie".into(),
            groups_claim: "groups".into(),
            admin_group: "platform-admins".into(),
            redirect_url: "http://127.0.0.1:1/auth/callback".into(),
            session_ttl: Duration::from_secs(3600),
            session_secret: None,
        }
    }

    #[tokio::test]
    async fn keys_are_cached_and_fetched_again_for_an_unknown_kid_at_most_once_per_interval() {
        let (old, rotated) = (TestKey::new("k1"), TestKey::new("k2"));
        let jwks = Arc::new(Mutex::new(json!({"keys": [old.jwk()]})));
        let fetches = Arc::new(Mutex::new(0));
        let base = issuer(jwks.clone(), fetches.clone()).await;
        let mut oidc = Oidc::new(settings(&base)).expect("a client");
        let claims = |sub: &str| json!({"iss": base, "aud": "druppie", "sub": sub, "exp": jiff::Timestamp::now().as_second() + 60});
        for _ in 0..3 {
            let got = oidc.verify(&old.sign(&claims("ana")), "druppie").await;
            assert_eq!(got.expect("valid").subject, "ana");
        }
        assert_eq!(*fetches.lock().expect("count"), 1, "cached");
        // The issuer rotates its key; the keys were fetched just now.
        *jwks.lock().expect("jwks") = json!({"keys": [old.jwk(), rotated.jwk()]});
        for _ in 0..5 {
            let refused = oidc.verify(&rotated.sign(&claims("ben")), "druppie").await;
            assert!(matches!(
                refused,
                Err(AuthError::Token(Refused::UnknownKey(_)))
            ));
        }
        assert_eq!(*fetches.lock().expect("count"), 1, "rate-limited");
        oidc.refetch = Duration::ZERO;
        let got = oidc.verify(&rotated.sign(&claims("ben")), "druppie").await;
        assert_eq!(got.expect("found after a fetch").subject, "ben");
        assert_eq!(*fetches.lock().expect("count"), 2);
        // A token for another audience is refused with the keys at hand.
        let other = oidc.verify(&old.sign(&claims("ana")), "elsewhere").await;
        assert!(matches!(other, Err(AuthError::Token(Refused::Audience))));
    }

    #[tokio::test]
    async fn a_discovery_document_naming_another_issuer_is_refused() {
        let jwks = Arc::new(Mutex::new(json!({"keys": []})));
        let base = issuer(jwks, Arc::new(Mutex::new(0))).await;
        let oidc = Oidc::new(settings(&format!("{base}/realms/other"))).expect("a client");
        let err = oidc.endpoints().await.expect_err("another issuer");
        assert!(
            matches!(err, IssuerError::Status { status: 404, .. }),
            "{err}"
        );
        let oidc = Oidc::new(settings(&base.replace("127.0.0.1", "localhost"))).expect("a client");
        let err = oidc.endpoints().await.expect_err("another issuer");
        assert!(matches!(err, IssuerError::Issuer { .. }), "{err}");
    }

    #[test]
    fn groups_lose_one_leading_slash_and_must_be_strings() {
        let claims = json!({"groups": ["/team-permits", "//odd", "plain"]});
        let got = groups(claims.as_object().expect("object"), "groups").expect("strings");
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            ["/odd", "plain", "team-permits"]
        );
        assert!(groups(&Map::new(), "groups").expect("absent").is_empty());
        let bad = json!({"groups": "team-permits"});
        assert!(groups(bad.as_object().expect("object"), "groups").is_err());
        let bad = json!({"groups": [1]});
        assert!(groups(bad.as_object().expect("object"), "groups").is_err());
    }
}
