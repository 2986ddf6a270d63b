//! `druppie serve` with a cluster: the real daemon talks to a mock
//! Kubernetes API server (`tests/mock-kube.py`, Python's standard library)
//! through a kubeconfig with a token user, as it would to a real one. The
//! mock answers Flux Kustomizations, Deployments and the leader Lease from
//! a state file the test rewrites while the daemon runs, serves the
//! blocks' health URLs on a second port, and logs every request.
//!
//! The harness: [`MockKube::start`] the API server, [`with_health`] gives
//! the fixture's app block a `health_url` output on the mock, [`serve`]
//! starts the daemon on the local spec checkout with a short poll, and
//! [`MockKube::set`] says at any moment what Flux reports (e.g.
//! `Kustomization::of_plan("permits", "dev").ready_at(commit)`);
//! [`settle`] waits until a whole reconcile has seen it; [`recorded`] and
//! [`wait_for`] read the audit trail, [`MockKube::requests`] what the
//! daemon asked.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;

use crate::apply::Setup;
use crate::serve::Daemon;
use crate::support::git;

mod leader;
mod mock;
mod promotion;
mod shards;
mod verification;

/// The bearer token the kubeconfig's user sends and the mock requires.
pub(crate) const TOKEN: &str = "it-kube-token-0f3a9c";

/// The daemon's pod name and namespace: its Lease is `druppie/druppie`.
pub(crate) const IDENTITY: &str = "druppie-0";
pub(crate) const NAMESPACE: &str = "druppie";

/// How often the daemon polls in these tests: each poll reconciles, and
/// each reconcile asks the cluster.
const POLL: &str = "250ms";

/// A running mock API server (and health endpoint), killed on drop.
pub(crate) struct MockKube {
    child: Child,
    /// Base URL of the Kubernetes API, `https://127.0.0.1:<port>`
    /// (`http://` with [`Transport::Plain`]).
    pub(crate) api: String,
    /// Base URL of the health endpoint.
    pub(crate) health: String,
    state: PathBuf,
    log: PathBuf,
    kubeconfig: PathBuf,
}

/// What the mock reports; written as its state file.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ClusterState {
    pub(crate) kustomizations: Vec<Kustomization>,
    pub(crate) deployments: Vec<Deployment>,
    /// Health path → the status it answers (200 when not listed).
    pub(crate) health: BTreeMap<String, u16>,
}

/// A Flux Kustomization as the mock reports it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Kustomization {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) path: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// The `Ready` condition: true, false, or unknown (`None`).
    pub(crate) ready: Option<bool>,
    /// `status.lastAppliedRevision`.
    pub(crate) revision: Option<String>,
}

impl Kustomization {
    /// The Kustomization druppie writes for `plan` in `env`
    /// (`flux-system/<plan>-<env>`, labelled with both, path
    /// `./apps/<env>/<plan>`), not reconciled yet.
    pub(crate) fn of_plan(plan: &str, env: &str) -> Kustomization {
        Kustomization {
            name: format!("{plan}-{env}"),
            namespace: "flux-system".into(),
            path: format!("./apps/{env}/{plan}"),
            labels: BTreeMap::from([
                ("druppie.io/plan".into(), plan.into()),
                ("druppie.io/environment".into(), env.into()),
            ]),
            ready: None,
            revision: None,
        }
    }

    /// A Kustomization named `name` applying the directory `path`.
    pub(crate) fn at_path(name: &str, path: &str) -> Kustomization {
        Kustomization {
            name: name.into(),
            namespace: "flux-system".into(),
            path: path.into(),
            labels: BTreeMap::new(),
            ready: None,
            revision: None,
        }
    }

    /// Ready, having applied infra commit `commit` of `main`.
    pub(crate) fn ready_at(self, commit: &str) -> Kustomization {
        Kustomization {
            ready: Some(true),
            revision: Some(format!("main@sha1:{commit}")),
            ..self
        }
    }

    /// Not Ready (a health check failing) after applying `commit`.
    pub(crate) fn failing_at(self, commit: &str) -> Kustomization {
        Kustomization {
            ready: Some(false),
            revision: Some(format!("main@sha1:{commit}")),
            ..self
        }
    }
}

/// A Deployment as the mock reports it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Deployment {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) replicas: i32,
    pub(crate) available: i32,
}

/// How the mock serves the Kubernetes API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// HTTPS with a certificate for 127.0.0.1 from a CA made for the test.
    Tls,
    /// Plain HTTP (kube's client speaks both).
    Plain,
}

/// A CA and a server certificate for 127.0.0.1 it signed, made with the
/// `openssl` CLI in `dir`: (the CA's PEM, the certificate's path, its
/// key's path).
fn certificates(dir: &Path) -> (String, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let p256 = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &p256,
            &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"],
            &["-subj", "/CN=mock-kube-ca"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-new"][..],
            &p256,
            &["-keyout", "server.key", "-out", "server.csr"],
            &["-subj", "/CN=mock-kube"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "2",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ]);
    let ca = std::fs::read_to_string(dir.join("ca.crt")).expect("the CA");
    (ca, dir.join("server.crt"), dir.join("server.key"))
}

/// One request the mock answered.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Request {
    /// `api` or `health`.
    pub(crate) port: String,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) code: u16,
}

impl Request {
    /// The path and, when there is one, the query.
    pub(crate) fn url(&self) -> String {
        match self.query.as_str() {
            "" => self.path.clone(),
            q => format!("{}?{q}", self.path),
        }
    }
}

impl MockKube {
    /// Starts the mock with an empty cluster (no Kustomizations, no
    /// Deployments), its files under `dir`, serving the API over TLS
    /// with a certificate from a CA made for it, which the kubeconfig
    /// names (`certificate-authority-data`), as a real cluster's does.
    pub(crate) fn start(dir: &Path) -> MockKube {
        MockKube::start_with(dir, Transport::Tls)
    }

    /// [`MockKube::start`], serving the API as `transport` says.
    pub(crate) fn start_with(dir: &Path, transport: Transport) -> MockKube {
        std::fs::create_dir_all(dir).expect("mock dir");
        let (state, log) = (dir.join("state.json"), dir.join("requests.jsonl"));
        let script = crate::support::repo_root().join("tests/mock-kube.py");
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .arg("--state")
            .arg(&state)
            .arg("--log")
            .arg(&log)
            .args(["--token", TOKEN]);
        let ca = match transport {
            Transport::Tls => {
                let (ca, cert, key) = certificates(dir);
                command
                    .arg("--tls-cert")
                    .arg(cert)
                    .arg("--tls-key")
                    .arg(key);
                Some(ca)
            }
            Transport::Plain => None,
        };
        let mut child = command
            // It exits when stdin closes, so it never outlives the test.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 tests/mock-kube.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the mock says where it listens");
        let urls: Value = serde_json::from_str(&line).expect("the mock's URLs");
        let url = |k: &str| urls[k].as_str().expect("a URL").to_owned();
        let kubeconfig = dir.join("kubeconfig");
        let mock = MockKube {
            child,
            api: url("api"),
            health: url("health"),
            state,
            log,
            kubeconfig,
        };
        mock.set(&ClusterState::default());
        let authority = ca.map_or_else(String::new, |pem| {
            format!("    certificate-authority-data: {}\n", STANDARD.encode(pem))
        });
        std::fs::write(
            &mock.kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: mock\n\
                 clusters:\n- name: mock\n  cluster:\n    server: {}\n{authority}\
                 users:\n- name: druppie\n  user:\n    token: {TOKEN}\n\
                 contexts:\n- name: mock\n  context:\n    cluster: mock\n    user: druppie\n",
                mock.api
            ),
        )
        .expect("kubeconfig");
        mock
    }

    /// The kubeconfig naming this API server and the token user.
    pub(crate) fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// From now on the mock reports `state` (written whole, by rename,
    /// so a request never sees half of it).
    pub(crate) fn set(&self, state: &ClusterState) {
        let text = serde_json::to_string_pretty(state).expect("state JSON");
        let tmp = self.state.with_extension("json.tmp");
        std::fs::write(&tmp, text).expect("write state");
        std::fs::rename(&tmp, &self.state).expect("replace state");
    }

    /// Every request answered so far, in order.
    pub(crate) fn requests(&self) -> Vec<Request> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a request line"))
            .collect()
    }

    /// How many requests so far had this method and path.
    pub(crate) fn asked(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// `path` on the health endpoint.
    pub(crate) fn health_url(&self, path: &str) -> String {
        format!("{}{path}", self.health)
    }
}

impl Drop for MockKube {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The health path of `component` of the plan running in `namespace`.
pub(crate) fn health_path(namespace: &str, component: &str) -> String {
    format!("/health/{namespace}/{component}")
}

/// Gives the fixture's `webapp-python` block a `health_url` output on
/// the mock's health endpoint ([`health_path`]), committed.
pub(crate) fn with_health(s: Setup, kube: &MockKube) -> Setup {
    let block = s.f.path().join("bouwblokken/webapp-python.md");
    let text = std::fs::read_to_string(&block).expect("block");
    let output = format!(
        "outputs:\n  health_url: \"{}\"\n",
        kube.health_url(&health_path("{{ namespace }}", "{{ component }}"))
    );
    assert!(text.contains("outputs:\n"), "{text}");
    std::fs::write(&block, text.replacen("outputs:\n", &output, 1)).expect("block");
    git(s.f.path(), &["commit", "-qam", "the app's health URL"]);
    s
}

/// Starts `druppie serve` on the local spec checkout of `s`, polling
/// every [`POLL`], with the mock as its cluster (`KUBECONFIG`), as pod
/// `druppie-0` in namespace `druppie`; returns once the first reconcile
/// finished.
pub(crate) fn serve(s: &Setup, kube: &MockKube) -> Daemon {
    let d = start(s, kube);
    d.wait("the first reconcile", |d| d.reconciles() >= 1.0);
    d
}

/// [`serve`], returning as soon as `/readyz` answers 200, which it does
/// before the first reconcile while the daemon does not hold the Lease.
pub(crate) fn start(s: &Setup, kube: &MockKube) -> Daemon {
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    if !config.contains("[server]") {
        config.push_str(&format!(
            "\n[server]\nlisten = \"127.0.0.1:0\"\npoll_interval = \"{POLL}\"\nwebhook_secret_env = \"DRUPPIE_IT_WEBHOOK_SECRET\"\n"
        ));
        std::fs::write(&s.config, config).expect("config");
    }
    let spec = s.f.path().to_str().expect("utf-8").to_owned();
    let kubeconfig = kube.kubeconfig().to_str().expect("utf-8").to_owned();
    Daemon::start_env(
        s,
        &["--spec", &spec],
        &[
            ("KUBECONFIG", &kubeconfig),
            ("POD_NAME", IDENTITY),
            ("POD_NAMESPACE", NAMESPACE),
        ],
    )
}

/// Waits until a whole reconcile started after this call has finished:
/// whatever the mock reports now, the daemon has acted on.
pub(crate) fn settle(d: &Daemon) {
    let from = d.reconciles();
    d.wait("two more reconciles", |d| d.reconciles() >= from + 2.0);
}

/// The events on the audit trail of the spec checkout, as `druppie audit
/// --json` prints them.
pub(crate) fn events(s: &Setup) -> Vec<Value> {
    let run = s.audit_run(&["--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    match serde_json::from_str(&run.stdout).expect("audit JSON") {
        Value::Array(events) => events,
        other => panic!("not a list: {other}"),
    }
}

/// The `kind` events for `plan` in `env` on the trail, as their infra
/// commits.
pub(crate) fn recorded(s: &Setup, kind: &str, plan: &str, env: &str) -> Vec<String> {
    events(s)
        .iter()
        .filter(|e| e["kind"] == kind && e["env"] == env && e["repo"] == "infra")
        .filter(|e| {
            e["plans"]
                .as_array()
                .is_some_and(|plans| plans.iter().any(|p| p == plan))
        })
        .map(|e| e["commit"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits (up to `limit`) until `kind` is on the trail for `plan` in
/// `env`; returns its commits.
pub(crate) fn wait_for(
    s: &Setup,
    d: &Daemon,
    kind: &str,
    plan: &str,
    env: &str,
    limit: Duration,
) -> Vec<String> {
    let until = Instant::now() + limit;
    loop {
        let found = recorded(s, kind, plan, env);
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < until,
            "no {kind} event for {plan} in {env} within {limit:?}; trail: {:?}\nlogs:\n{}",
            events(s),
            d.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// druppie's git note on `commit` in the forge's infra repo ("" while
/// there is none).
pub(crate) fn note(s: &Setup, commit: &str) -> String {
    let out = Command::new("git")
        .args(["notes", "--ref=druppie", "show", commit])
        .current_dir(s.forge().join("infra.git"))
        .output()
        .expect("git notes");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
