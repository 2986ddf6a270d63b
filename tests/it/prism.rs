//! Prism serving a forge's official API description, and a proxy in front
//! of it that logs every request, can answer a request with a fault
//! first (a 503, a rate limit, a wrong token), or tweak one value in
//! Prism's answer (to make a listed pull request the one druppie looks
//! for). Requests still reach Prism, which refuses any that the
//! description does not allow: such a refusal is a contract violation.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where `.ci/run` installs Prism and `@octokit/openapi`.
pub(crate) fn contracts() -> PathBuf {
    if let Ok(dir) = std::env::var("DRUPPIE_CONTRACTS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/druppie-contracts")
}

pub struct Server {
    pub url: String,
    /// Prism stops when this closes, i.e. when the test binary exits.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// Prism serving Gitea's API description (`../shared/contracts`).
pub fn gitea() -> &'static str {
    static S: OnceLock<Server> = OnceLock::new();
    let spec =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/contracts/gitea-v1-subset.json");
    &S.get_or_init(|| start("mock", &spec, "")).url
}

/// Prism serving OpenAI's official description (`../shared/contracts`),
/// answering with random schema-valid content (`--dynamic`).
pub fn openai() -> &'static str {
    static S: OnceLock<Server> = OnceLock::new();
    let spec =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/contracts/openai-openapi.yaml");
    &S.get_or_init(|| start("mock --dynamic", &spec, "")).url
}

/// Prism as a validating proxy in front of `upstream`: it passes requests
/// on and, with `--errors`, answers with the violations instead when a
/// request or a response breaks the description at `spec`.
pub fn proxy(spec: &std::path::Path, upstream: &str) -> Server {
    start("proxy --errors", spec, upstream)
}

/// Prism serving GitHub's official description (`@octokit/openapi`).
pub fn github() -> &'static str {
    static S: OnceLock<Server> = OnceLock::new();
    let spec = contracts().join("node_modules/@octokit/openapi/generated/api.github.com.json");
    &S.get_or_init(|| start("mock", &spec, "")).url
}

fn start(mode: &str, spec: &std::path::Path, upstream: &str) -> Server {
    let prism = contracts().join("node_modules/.bin/prism");
    assert!(
        prism.exists() && spec.exists(),
        "Prism and the API descriptions are needed: npm install --prefix {} @stoplight/prism-cli @octokit/openapi (.ci/run does this)",
        contracts().display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::env::temp_dir().join(format!("druppie-prism-{port}.log"));
    // `cat` returns when the test binary's end closes the pipe; then
    // Prism is stopped.
    let script = format!(
        "'{}' {mode} -h 127.0.0.1 -p {port} '{}' {upstream} >'{}' 2>&1 & p=$!; cat >/dev/null; kill $p",
        prism.display(),
        spec.display(),
        log.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let stdin = child.stdin.take().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "Prism did not start; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Server {
        url,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    }
}

/// An HTTP client for the tests' side (rustls needs its provider first).
pub fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

/// One request the proxy saw, and how it was answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
    /// Prism's refusal, when the request broke the description.
    pub violation: Option<String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// `METHOD /path` without the query.
    pub fn line(&self) -> String {
        let path = self.target.split('?').next().unwrap_or("");
        format!("{} {path}", self.method)
    }
}

/// What the proxy does with a matching request.
#[derive(Clone)]
pub enum Act {
    /// Answers itself (a fault or a refusal), without asking Prism.
    Reply(u16, Vec<(&'static str, String)>, &'static str),
    /// Asks Prism for this response code of the description.
    Prefer(u16),
    /// Forwards, then changes Prism's JSON answer.
    Patch(Arc<dyn Fn(&mut serde_json::Value) + Send + Sync>),
}

struct Rule {
    line: String,
    times: usize,
    act: Act,
}

pub struct Proxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    rules: Arc<Mutex<Vec<Rule>>>,
}

impl Proxy {
    /// A proxy in front of the Prism at `upstream`.
    pub fn new(upstream: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (seen.clone(), rules.clone());
        std::thread::spawn(move || {
            let client = client();
            for conn in listener.incoming().flatten() {
                serve(conn, upstream, &client, &s, &r);
            }
        });
        Proxy { url, seen, rules }
    }

    /// The next `times` requests `METHOD /path` get `act`.
    pub fn on(&self, line: &str, times: usize, act: Act) {
        self.rules.lock().unwrap().push(Rule {
            line: line.to_owned(),
            times,
            act,
        });
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `METHOD /path` of every request, in order.
    pub fn lines(&self) -> Vec<String> {
        self.seen().iter().map(Seen::line).collect()
    }

    /// Every request Prism refused as breaking the description.
    pub fn assert_no_violations(&self) {
        let bad: Vec<String> = self
            .seen()
            .iter()
            .filter_map(|s| s.violation.as_ref().map(|v| format!("{}: {v}", s.line())))
            .collect();
        assert!(
            bad.is_empty(),
            "requests the API description refuses: {bad:#?}"
        );
    }
}

fn serve(
    conn: TcpStream,
    upstream: &str,
    client: &reqwest::blocking::Client,
    seen: &Mutex<Vec<Seen>>,
    rules: &Mutex<Vec<Rule>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    // Gitea's API lives under /api/v1, which Prism does not serve under.
    let sent = parts.next().unwrap_or("");
    let target = sent.strip_prefix("/api/v1").unwrap_or(sent).to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut request = Seen {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
        violation: None,
    };
    let act = {
        let mut rules = rules.lock().unwrap();
        let line = request.line();
        let found = rules.iter().position(|r| r.line == line);
        found.map(|i| {
            rules[i].times -= 1;
            let act = rules[i].act.clone();
            if rules[i].times == 0 {
                rules.remove(i);
            }
            act
        })
    };
    let (status, out_headers, out_body) = match act {
        Some(Act::Reply(status, headers, body)) => (
            status,
            headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .chain([("content-type".to_owned(), "application/json".to_owned())])
                .collect(),
            body.as_bytes().to_vec(),
        ),
        other => {
            let mut req = client.request(
                request.method.parse().unwrap(),
                format!("{upstream}{}", request.target),
            );
            for (k, v) in &request.headers {
                if !["host", "content-length", "connection"].contains(&k.to_lowercase().as_str()) {
                    req = req.header(k, v);
                }
            }
            if let Some(Act::Prefer(code)) = &other {
                req = req.header("prefer", format!("code={code}"));
            }
            let resp = req.body(body.clone()).send().expect("Prism answers");
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter(|(k, _)| {
                    ![
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "keep-alive",
                    ]
                    .contains(&k.as_str())
                })
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            // Prism names what the request broke in `sl-violations` (when
            // the description has an error response to answer with) or in
            // an error body of its own.
            let broke: Vec<String> = resp
                .headers()
                .get("sl-violations")
                .and_then(|v| serde_json::from_slice::<Vec<serde_json::Value>>(v.as_bytes()).ok())
                .unwrap_or_default()
                .into_iter()
                .filter(|v| v["location"][0] == "request")
                .map(|v| v["message"].as_str().unwrap_or("").to_owned())
                .collect();
            let mut bytes = resp.bytes().unwrap().to_vec();
            let text = String::from_utf8_lossy(&bytes);
            if !broke.is_empty() {
                request.violation = Some(broke.join("; "));
            } else if text.contains("stoplight.io/prism/errors") {
                request.violation = Some(text.into_owned());
            } else if let Some(Act::Patch(patch)) = &other {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                patch(&mut v);
                bytes = serde_json::to_vec(&v).unwrap();
            }
            (status, headers, bytes)
        }
    };
    request.status = status;
    seen.lock().unwrap().push(request);
    let mut w = conn;
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in &out_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        out_body.len()
    ));
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(&out_body);
}
