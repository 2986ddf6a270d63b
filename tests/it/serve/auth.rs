//! Sign-in (`[server.auth]`) end to end: the real `druppie serve`
//! against the real identity provider `oidc-provider`
//! (`tests/oidc-provider.mjs`), with a second plan owned by another
//! team. A person signs in through the authorization-code flow (the
//! provider's login form filled in, cookies kept), and the API shows
//! them their team's plans only.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest as _;

use super::{Daemon, serve_setup};
use crate::apply::Setup;
use crate::support::git;

pub(super) const API_TOKEN: &str = "it-api-token-5c1e";

/// The identity provider, running until dropped.
pub(super) struct Idp {
    child: Child,
    pub(super) issuer: String,
    client_secret: String,
    /// login → password.
    pub(super) users: BTreeMap<String, String>,
}

impl Idp {
    fn start(redirect: &str) -> Idp {
        let mut child = Command::new("node")
            .arg(crate::support::repo_root().join("tests/oidc-provider.mjs"))
            .args(["--redirect-uri", redirect])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the identity provider");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the provider says where it listens");
        // Whatever it prints later is read (and dropped), never refused.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let told: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not the provider's JSON line ({e}): {line}"));
        Idp {
            child,
            issuer: told["issuer"].as_str().expect("issuer").to_owned(),
            client_secret: told["client_secret"].as_str().expect("secret").to_owned(),
            users: told["users"]
                .as_array()
                .expect("users")
                .iter()
                .map(|u| {
                    (
                        u["login"].as_str().expect("login").to_owned(),
                        u["password"].as_str().expect("password").to_owned(),
                    )
                })
                .collect(),
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now, for the daemon: the provider must know its callback
/// URL before the daemon starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The serve setup with a second plan (`ledger`, owned by
/// team-finance), the provider, and the daemon signing in through it.
pub(super) fn start() -> (Setup, Idp, Daemon) {
    let s = serve_setup();
    let work = s.tmp.path().join("spec-work");
    std::fs::write(
        work.join("spec/plans/ledger.yaml"),
        "name: ledger\nstack: webapp-db\nowner: team-finance\nenvironments: [dev, prod]\ninputs:\n  app: {image: registry.example.org/ledger:1.0.0}\n",
    )
    .expect("plan");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "ledger, for the finance team"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let port = free_port();
    let idp = Idp::start(&format!("http://127.0.0.1:{port}/auth/callback"));
    let config = std::fs::read_to_string(&s.config).expect("config");
    assert!(config.contains("listen = \"127.0.0.1:0\"\n"), "{config}");
    let config = config.replace(
        "listen = \"127.0.0.1:0\"\n",
        &format!("listen = \"127.0.0.1:{port}\"\napi_token_env = \"DRUPPIE_IT_API_TOKEN\"\n"),
    ) + &format!(
        "\n[server.auth]\nissuer = \"{}\"\nclient_id = \"druppie\"\nredirect_url = \"http://127.0.0.1:{port}/auth/callback\"\n",
        idp.issuer
    );
    std::fs::write(&s.config, config).expect("config");
    let d = Daemon::start_env(
        &s,
        &[],
        &[
            ("DRUPPIE_OIDC_CLIENT_SECRET", idp.client_secret.as_str()),
            ("DRUPPIE_IT_API_TOKEN", API_TOKEN),
        ],
    );
    (s, idp, d)
}

/// A browser, as far as these tests need one: cookies kept by name (the
/// daemon and the provider are on one host), redirects followed by
/// hand, the provider's login form filled in.
struct Browser {
    http: reqwest::blocking::Client,
    cookies: BTreeMap<String, String>,
}

/// `application/x-www-form-urlencoded` fields.
fn form_body<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
        .finish()
}

/// Where a walk through redirects ended.
struct Landed {
    status: u16,
    url: url::Url,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Browser {
            http: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    fn send(&mut self, request: reqwest::blocking::RequestBuilder) -> reqwest::blocking::Response {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let request = if jar.is_empty() {
            request
        } else {
            request.header("cookie", jar.join("; "))
        };
        let response = request
            .header("accept", "text/html")
            .send()
            .expect("a request");
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().expect("ascii").to_owned();
            let (pair, attributes) = set.split_once(';').unwrap_or((&set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            let attributes = attributes.to_ascii_lowercase();
            if value.is_empty() || attributes.contains("max-age=0") || attributes.contains("1970") {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.to_owned());
            }
        }
        response
    }

    /// GETs `url` and follows redirects, signing in as `user` (with
    /// `password`) where the provider asks; stops at `stop_at` (a URL
    /// prefix) without fetching it.
    fn walk(&mut self, url: &str, login: (&str, &str), stop_at: Option<&str>) -> Landed {
        let mut url = url::Url::parse(url).expect("a URL");
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..20 {
            if stop_at.is_some_and(|s| url.as_str().starts_with(s)) {
                return Landed {
                    status: 0,
                    url,
                    body: String::new(),
                };
            }
            let request = match form.take() {
                Some(fields) => self
                    .http
                    .post(url.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&fields)),
                None => self.http.get(url.clone()),
            };
            let response = self.send(request);
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let to = response.headers()["location"].to_str().expect("ascii");
                url = url.join(to).expect("a location");
                continue;
            }
            let body = response.text().expect("body");
            if status == 200
                && url.path().starts_with("/interaction/")
                && body.contains("name=\"password\"")
            {
                url = url
                    .join(&format!("{}/login", url.path()))
                    .expect("the form's action");
                form = Some(vec![
                    ("login".into(), login.0.into()),
                    ("password".into(), login.1.into()),
                ]);
                continue;
            }
            return Landed { status, url, body };
        }
        panic!("more than 20 redirects");
    }

    /// Signs in to the daemon as `user` through `/auth/login`, landing on
    /// `next`.
    fn sign_in(&mut self, d: &Daemon, idp: &Idp, user: &str, next: &str) -> Landed {
        let password = idp.users[user].clone();
        self.walk(&d.url(next), (user, &password), None)
    }

    /// An API answer with this browser's cookies, as a script would ask.
    fn json(&mut self, d: &Daemon, path: &str) -> (u16, serde_json::Value) {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let r = self
            .http
            .get(d.url(path))
            .header("cookie", jar.join("; "))
            .send()
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }
}

/// The names of the plans `/api/v1/plans` lists.
fn names(plans: &serde_json::Value) -> Vec<&str> {
    let mut names: Vec<&str> = plans
        .as_array()
        .unwrap_or_else(|| panic!("plans: {plans}"))
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    names
}

/// Every plan named anywhere in an answer (`plan` fields and `plans`
/// lists).
fn plans_named(v: &serde_json::Value, into: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("plan", serde_json::Value::String(p)) => {
                        into.insert(p.clone());
                    }
                    ("plans", serde_json::Value::Array(list)) => {
                        into.extend(list.iter().filter_map(|p| p.as_str()).map(str::to_owned));
                        plans_named(v, into);
                    }
                    _ => plans_named(v, into),
                }
            }
        }
        serde_json::Value::Array(list) => list.iter().for_each(|v| plans_named(v, into)),
        _ => {}
    }
}

#[test]
fn a_team_member_signs_in_through_the_issuer_and_the_api_shows_only_its_teams_plans() {
    let (_s, idp, d) = start();

    // A browser asking for a page is sent to sign in, and back.
    let mut ana = Browser::new();
    let landed = ana.sign_in(&d, &idp, "ana", "/api/v1/plans");
    assert_eq!(landed.status, 200, "{}: {}", landed.url, landed.body);
    assert_eq!(landed.url.as_str(), d.url("/api/v1/plans"));
    let session = ana
        .cookies
        .get("druppie_session")
        .expect("a session cookie")
        .clone();
    assert!(
        !session.contains("eyJhbGciOi"),
        "the session is not the ID token"
    );
    let plans: serde_json::Value = serde_json::from_str(&landed.body).expect("json");
    // ana's group is `/team-permits`, as Keycloak writes a group path.
    assert_eq!(names(&plans), ["permits"]);

    let (code, status) = ana.json(&d, "/api/v1/status");
    assert_eq!(code, 200);
    let mut seen = Default::default();
    plans_named(&status, &mut seen);
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["permits"]);
    for path in ["/api/v1/diff", "/api/v1/audit"] {
        let (code, answer) = ana.json(&d, path);
        assert_eq!(code, 200, "{path}: {answer}");
        assert!(!answer.to_string().contains("ledger"), "{path}: {answer}");
        let mut seen = Default::default();
        plans_named(&answer, &mut seen);
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["permits"], "{path}");
    }
    assert_eq!(ana.json(&d, "/api/v1/plans/permits/status").0, 200);
    // Another team's plan is answered as a plan that does not exist.
    let (code, unseen) = ana.json(&d, "/api/v1/plans/ledger/status");
    let (_, unknown) = ana.json(&d, "/api/v1/plans/ledgr/status");
    assert_eq!(code, 404);
    assert_eq!(
        unseen["error"].as_str().map(|e| e.replace("ledger", "X")),
        unknown["error"].as_str().map(|e| e.replace("ledgr", "X"))
    );
    // The MCP server shows every plan: not to a team member.
    let mcp = ana
        .http
        .post(d.url("/mcp"))
        .header("cookie", format!("druppie_session={session}"))
        .send()
        .expect("POST /mcp");
    assert_eq!(mcp.status().as_u16(), 403);

    // The other team, and an admin.
    let mut ben = Browser::new();
    let landed = ben.sign_in(&d, &idp, "ben", "/api/v1/plans");
    assert_eq!(
        names(&serde_json::from_str(&landed.body).expect("json")),
        ["ledger"]
    );
    let mut ada = Browser::new();
    let landed = ada.sign_in(&d, &idp, "ada", "/api/v1/plans");
    assert_eq!(
        names(&serde_json::from_str(&landed.body).expect("json")),
        ["ledger", "permits"]
    );

    // A session cookie changed by its holder is refused.
    let (body, mac) = session.split_once('.').expect("body.mac");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64url")).expect("json");
    claims["groups"] = serde_json::json!(["platform-admins"]);
    let forged = format!("{}.{mac}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mallory = Browser::new();
    mallory.cookies.insert("druppie_session".into(), forged);
    assert_eq!(mallory.json(&d, "/api/v1/plans").0, 401);
    mallory
        .cookies
        .insert("druppie_session".into(), format!("{session}x"));
    assert_eq!(mallory.json(&d, "/api/v1/plans").0, 401);

    // A signed-in browser writes from the daemon's own pages only.
    let promote = |origin: &str| {
        ana.http
            .post(d.url("/api/v1/promote"))
            .header("cookie", format!("druppie_session={session}"))
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(r#"{"plan": "permits", "to": "prod"}"#)
            .send()
            .expect("POST")
            .status()
            .as_u16()
    };
    assert_eq!(promote("http://evil.example.org"), 403);
    assert_eq!(promote(d.url("").trim_end_matches('/')), 202);

    // Signing out ends the session.
    let logout = ana.http.post(d.url("/auth/logout"));
    let out = ana.send(logout);
    assert_eq!(out.status().as_u16(), 303);
    assert!(!ana.cookies.contains_key("druppie_session"));
    assert_eq!(ana.json(&d, "/api/v1/plans").0, 401);
}

/// An ID token for `user`, straight from the provider: the test is the
/// client (the daemon's client id, secret and callback).
fn id_token(idp: &Idp, d: &Daemon, user: &str) -> String {
    let verifier = "it-verifier-0123456789-0123456789-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
    let callback = d.url("/auth/callback");
    let mut start = url::Url::parse(&format!("{}/auth", idp.issuer)).expect("url");
    start
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "druppie")
        .append_pair("redirect_uri", &callback)
        .append_pair("scope", "openid")
        .append_pair("state", "it-state")
        .append_pair("nonce", "it-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut browser = Browser::new();
    let password = idp.users[user].clone();
    let landed = browser.walk(start.as_str(), (user, &password), Some(&callback));
    let code = landed
        .url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {}", landed.url));
    let answer: serde_json::Value = browser
        .http
        .post(format!("{}/token", idp.issuer))
        .basic_auth("druppie", Some(&idp.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &callback),
            ("code_verifier", verifier),
        ]))
        .send()
        .expect("token")
        .json()
        .expect("json");
    answer["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

#[test]
fn a_bearer_token_from_the_issuer_is_accepted_and_a_request_without_one_is_refused() {
    let (_s, idp, d) = start();
    let http = crate::prism::client();
    let get = |path: &str, auth: Option<&str>, html: bool| {
        let mut r = http.get(d.url(path));
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        if html {
            r = r.header("accept", "text/html");
        }
        let no_redirects = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let r = no_redirects
            .execute(r.build().expect("request"))
            .expect("GET");
        let challenge = r
            .headers()
            .get("www-authenticate")
            .or_else(|| r.headers().get("location"))
            .map(|v| v.to_str().expect("ascii").to_owned());
        (r.status().as_u16(), challenge, r.text().unwrap_or_default())
    };

    // No credential: 401 with a challenge, or to sign in for a page.
    for path in [
        "/api/v1/plans",
        "/api/v1/status",
        "/v1/models",
        "/api/v1/events",
    ] {
        let (code, challenge, _) = get(path, None, false);
        assert_eq!(
            (code, challenge.as_deref()),
            (401, Some("Bearer")),
            "{path}"
        );
    }
    let (code, to, _) = get("/api/v1/plans?x=1", None, true);
    assert_eq!(code, 303);
    assert_eq!(
        to.as_deref(),
        Some("/auth/login?next=%2Fapi%2Fv1%2Fplans%3Fx%3D1")
    );
    // The probes, the metrics and the webhooks need none.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(path, None, false).0, 200, "{path}");
    }
    assert_eq!(d.hook("ping", "auth-ping", "{}", None), 200);
    assert_eq!(d.hook("ping", "auth-ping-2", "{}", Some("sha256=00")), 401);
    // Only a local path to go back to: never another site.
    let (code, to, _) = get("/auth/login?next=//evil.example.org/", None, false);
    assert_eq!(code, 303);
    assert!(
        to.expect("location")
            .starts_with(&format!("{}/auth?", idp.issuer))
    );

    // The provider's ID token as a bearer token.
    let token = id_token(&idp, &d, "ben");
    let (code, _, body) = get("/api/v1/plans", Some(&token), false);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        names(&serde_json::from_str(&body).expect("json")),
        ["ledger"]
    );
    // Changed by a byte, it is refused.
    let mut forged = token.clone().into_bytes();
    let at = token.find('.').expect("a JWT") + 5;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let (code, challenge, _) = get(
        "/api/v1/plans",
        Some(&String::from_utf8(forged).expect("ascii")),
        false,
    );
    assert_eq!(code, 401);
    assert!(challenge.expect("challenge").contains("invalid_token"));
    // The API token is a machine's: it sees everything.
    let (code, _, body) = get("/api/v1/plans", Some(API_TOKEN), false);
    assert_eq!(code, 200);
    assert_eq!(
        names(&serde_json::from_str(&body).expect("json")),
        ["ledger", "permits"]
    );

    // A signed-in person promotes the plans it sees, and no other.
    let promote = |plan: &str| {
        http.post(d.url("/api/v1/promote"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(format!(r#"{{"plan": "{plan}", "to": "prod"}}"#))
            .send()
            .expect("POST")
            .status()
            .as_u16()
    };
    assert_eq!(promote("permits"), 404);
    assert_eq!(promote("ledger"), 202);
}

#[test]
fn a_short_session_key_or_an_empty_client_secret_stops_serve_at_start() {
    let s = serve_setup();
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push_str("\n[server.auth]\nissuer = \"https://id.example.org/realms/druppie\"\nclient_id = \"druppie\"\nredirect_url = \"https://druppie.example.org/auth/callback\"\n");
    std::fs::write(&s.config, config).expect("config");
    let serve = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_druppie"))
            .args(["--config", s.config.to_str().expect("utf-8"), "serve"])
            .current_dir(s.tmp.path())
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("HOME", s.tmp.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run druppie serve");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = serve(&[("DRUPPIE_SESSION_SECRET", "short-key-0123")]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "error: the variable DRUPPIE_SESSION_SECRET (named by `[server.auth] session_secret_env`) holds fewer than 32 characters\n  = help: make one with `openssl rand -hex 32`\n"
    );
    assert!(!stderr.contains("short-key-0123"));
    let (code, stderr) = serve(&[("DRUPPIE_OIDC_CLIENT_SECRET", "")]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with("error: the variable DRUPPIE_OIDC_CLIENT_SECRET (named by `[server.auth] client_secret_env`) is set but empty\n"),
        "{stderr}"
    );
}
