//! `druppie serve` end to end: the daemon on 127.0.0.1 with the
//! plain-git forge on temporary bare repos (the spec repo among them),
//! driven by signed webhooks and watched through its own HTTP API.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use druppie::daemon::webhook::{Sender, sign};
use druppie::secret::Secret;

mod auth;
mod board;
pub(crate) mod chat;
mod checkout;
mod contract;
mod freight;
mod hostile;
mod incremental;
mod notify;
mod promote;
mod retry;
mod wedge;

use crate::apply::{Setup, setup};
use crate::support::git;

pub(super) const SECRET: &str = "it-webhook-secret";

/// A running daemon and everything it logged.
pub(crate) struct Daemon {
    child: Child,
    pub(super) addr: String,
    logs: Arc<Mutex<Vec<String>>>,
    http: reqwest::blocking::Client,
}

impl Daemon {
    pub(crate) fn start(s: &Setup) -> Daemon {
        Daemon::start_with(s, &[])
    }

    /// Starts `druppie --config … ARGS serve`.
    fn start_with(s: &Setup, args: &[&str]) -> Daemon {
        Daemon::start_env(s, args, &[])
    }

    /// [`Daemon::start_with`] with more environment variables.
    pub(crate) fn start_env(s: &Setup, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_under(s, &[], args, env)
    }

    /// [`Daemon::start_env`], run by `wrapper` (a command that runs the
    /// rest of its arguments, like `prlimit …`) when there is one.
    pub(super) fn start_under(
        s: &Setup,
        wrapper: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        Daemon::launch(s, &s.config, wrapper, args, env)
    }

    /// [`Daemon::start_env`] with the configuration file `config`: one
    /// replica of several, each with its own.
    pub(crate) fn start_replica(
        s: &Setup,
        config: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Daemon {
        Daemon::launch(s, config, &[], &[], env)
    }

    fn launch(
        s: &Setup,
        config: &std::path::Path,
        wrapper: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let druppie = env!("CARGO_BIN_EXE_druppie");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(druppie);
                c
            }
            None => Command::new(druppie),
        };
        let mut child = command
            .args(["--config", config.to_str().expect("utf-8")])
            .args(args)
            .arg("serve")
            .current_dir(s.tmp.path())
            .env_remove("DRUPPIE_LOG")
            // No cluster here: not this machine's kubeconfig either.
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("HOME", s.tmp.path())
            .env("DRUPPIE_IT_WEBHOOK_SECRET", SECRET)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start druppie serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "listening"
                {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or("").to_owned());
                }
                kept.lock().expect("logs").push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the daemon says where it listens");
        let d = Daemon {
            child,
            addr,
            logs,
            http: crate::prism::client(),
        };
        d.wait("ready", |d| d.get("/readyz").0 == 200);
        d
    }

    /// Every line logged so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(super) fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().expect("GET");
        (r.status().as_u16(), r.text().expect("body"))
    }

    pub(crate) fn json(&self, path: &str) -> serde_json::Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("json")
    }

    /// Posts a Gitea webhook delivery; `signature` None signs it correctly.
    pub(crate) fn hook(
        &self,
        event: &str,
        delivery: &str,
        body: &str,
        signature: Option<&str>,
    ) -> u16 {
        let good = sign(Sender::Gitea, &Secret::new(SECRET), body.as_bytes());
        self.http
            .post(self.url("/webhooks/gitea"))
            .header("content-type", "application/json")
            .header("x-gitea-event", event)
            .header("x-gitea-delivery", delivery)
            .header("x-gitea-signature", signature.unwrap_or(&good))
            .body(body.to_owned())
            .send()
            .expect("POST webhook")
            .status()
            .as_u16()
    }

    /// Opens `/api/v1/events` (no timeout: the stream does not end).
    pub(super) fn subscribe(&self) -> reqwest::blocking::Response {
        reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .expect("client")
            .get(self.url("/api/v1/events"))
            .send()
            .expect("subscribe")
    }

    /// A metric's value (0 when absent).
    pub(crate) fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.parse().expect("a number"))
    }

    pub(super) fn reconciles(&self) -> f64 {
        ["success", "failed", "terminal", "dry-run"]
            .iter()
            .map(|r| self.metric(&format!("druppie_reconciles_total{{result=\"{r}\"}}")))
            .sum()
    }

    /// Waits (up to 30 s) until `done` holds.
    pub(crate) fn wait(&self, what: &str, done: impl Fn(&Daemon) -> bool) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}; logs:\n{}",
            self.logs.lock().expect("logs").join("\n")
        );
    }

    /// State of `plan` in `env` per `/api/v1/status`.
    pub(super) fn state(&self, plan: &str, env: &str) -> serde_json::Value {
        let status = self.json("/api/v1/status");
        status["plans"]
            .as_array()
            .expect("plans")
            .iter()
            .find(|p| p["plan"] == plan && p["env"] == env)
            .cloned()
            .unwrap_or_else(|| panic!("no {plan}/{env} in {status}"))
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < until, "the daemon did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// The apply setup, with the deployment template showing the image, so a
/// release in the plan changes a rendered file.
pub(super) fn setup_with_image() -> Setup {
    let s = setup("platform-team, person@example.org");
    std::fs::write(
        s.f.path()
            .join("templates/webapp-python/infra/deployment.yaml.j2"),
        "kind: Deployment\nimage: {{ image }}\n",
    )
    .expect("template");
    git(
        s.f.path(),
        &["commit", "-qam", "the image in the deployment"],
    );
    s
}

/// The example setup with its spec repo as a bare repo on the forge, and
/// a person's clone of it to push plan changes from.
pub(crate) fn serve_setup() -> Setup {
    let s = setup_with_image();
    let forge = s.forge();
    git(
        s.tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            s.f.path().to_str().expect("utf-8"),
            forge.join("spec.git").to_str().expect("utf-8"),
        ],
    );
    git(
        s.tmp.path(),
        &[
            "clone",
            "-q",
            forge.join("spec.git").to_str().expect("utf-8"),
            "spec-work",
        ],
    );
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push_str(&format!(
        "\n[spec]\nurl = \"{}\"\nbranch = \"main\"\n\n[server]\nlisten = \"127.0.0.1:0\"\npoll_interval = \"1h\"\nwebhook_secret_env = \"DRUPPIE_IT_WEBHOOK_SECRET\"\n",
        forge.join("spec.git").display()
    ));
    std::fs::write(&s.config, config).expect("config");
    s
}

/// A clone of the forge's spec repo, with the audit trail the daemon
/// pushed, in `s.tmp/<name>`: what `druppie status` and `druppie audit`
/// read on a person's machine.
pub(super) fn spec_clone_with_trail(s: &Setup, name: &str) -> std::path::PathBuf {
    let spec = s.tmp.path().join(name);
    git(
        s.tmp.path(),
        &[
            "clone",
            "-q",
            s.forge().join("spec.git").to_str().expect("utf-8"),
            spec.to_str().expect("utf-8"),
        ],
    );
    git(
        &spec,
        &["fetch", "-q", "origin", "druppie-audit:druppie-audit"],
    );
    spec
}

/// A person releases version `1.0.<patch>` of the app in the plan and
/// pushes; returns the commit.
pub(super) fn push_plan_change(s: &Setup, patch: u32) -> String {
    let work = s.tmp.path().join("spec-work");
    git(&work, &["pull", "-q", "--ff-only", "origin", "main"]);
    let plan = work.join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    let at = text
        .find("permits:1.0.")
        .expect("the fixture plan names an image")
        + 12;
    let end = at + text[at..].find('}').expect("flow mapping end");
    std::fs::write(&plan, format!("{}{patch}{}", &text[..at], &text[end..])).expect("write plan");
    git(&work, &["commit", "-qam", &format!("permits 1.0.{patch}")]);
    git(&work, &["push", "-q", "origin", "main"]);
    git(&work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// Commits everything in the spec clone `work` and pushes it to the
/// forge; the commit.
pub(crate) fn push_spec(work: &std::path::Path, message: &str) -> String {
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "--allow-empty", "-m", message]);
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"]).trim().to_owned()
}

pub(crate) fn push_payload(repo: &str, after: &str) -> String {
    format!(
        r#"{{"ref":"refs/heads/main","after":"{after}","repository":{{"name":"{repo}","full_name":"platform/{repo}"}}}}"#
    )
}

/// Commits on a ref of a forge repo.
fn commits(s: &Setup, repo: &str, rev: &str) -> usize {
    git(
        &s.forge().join(format!("{repo}.git")),
        &["rev-list", "--count", rev],
    )
    .trim()
    .parse()
    .expect("a count")
}

/// Events on the spec repo's audit trail, as `kind env` lines.
fn trail(s: &Setup) -> Vec<String> {
    let spec = s.forge().join("spec.git");
    git(&spec, &["log", "--reverse", "--format=%(trailers:key=Druppie-Event,valueonly)%(trailers:key=Druppie-Environment,valueonly)", "druppie-audit"])
        .split("\n\n")
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|e| !e.is_empty())
        .collect()
}

/// Collects SSE event names from `/api/v1/events` until the stream ends.
fn listen(d: &Daemon) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let response = d.subscribe();
    assert_eq!(response.status(), 200);
    let kept = got.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(response).lines().map_while(Result::ok) {
            if let Some(name) = line.strip_prefix("event: ") {
                kept.lock().expect("events").push(name.to_owned());
            }
        }
    });
    (got, reader)
}

/// `pid` and the processes it started, as Linux lists them.
fn with_children(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the daemon's threads");
    for task in tasks {
        let children = std::fs::read_to_string(task.expect("a thread").path().join("children"));
        all.extend(
            children
                .unwrap_or_default()
                .split_whitespace()
                .map(|p| p.parse::<u32>().expect("a pid")),
        );
    }
    all
}

/// Whether the kernel may give `pid` transparent huge pages
/// (`THP_enabled` in its status; `None` when it does not say).
fn thp_enabled(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    Some(line.ends_with('1'))
}

#[test]
fn serve_applies_pushed_spec_changes_records_merges_and_stops_cleanly() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    // Without transparent huge pages, the daemon and what it starts (the
    // render check): its RSS is what counts.
    let pids = with_children(d.child.id());
    assert!(pids.len() > 1, "the render check is running: {pids:?}");
    for &pid in &pids {
        assert_eq!(thp_enabled(pid), Some(false), "process {pid} of {pids:?}");
    }
    // The first reconcile applied the spec as it was: dev committed,
    // prod proposed.
    assert_eq!(
        d.state("permits", "dev")["state"],
        "in-sync",
        "{}",
        d.state("permits", "dev")
    );
    assert_eq!(d.state("permits", "prod")["state"], "pending-approval");
    assert_eq!(d.state("permits", "prod")["pull"], "druppie/prod/permits");
    let (events, reader) = listen(&d);
    let infra_before = commits(&s, "infra", "main");

    // A person pushes a plan change; the push webhook reconciles it.
    let after = push_plan_change(&s, 3);
    let before = d.reconciles();
    assert_eq!(
        d.hook("push", "delivery-1", &push_payload("spec", &after), None),
        202
    );
    d.wait("the push reconciled", |d| d.reconciles() > before);
    assert_eq!(
        commits(&s, "infra", "main"),
        infra_before + 1,
        "one dev commit"
    );
    let infra = s.forge().join("infra.git");
    let trailers = git(&infra, &["log", "-1", "--format=%(trailers)", "main"]);
    assert!(
        trailers.contains(&format!("Druppie-Spec-Commit: {after}\n")),
        "{trailers}"
    );
    assert!(
        trailers.contains("Druppie-Trigger: webhook\n"),
        "{trailers}"
    );
    s.verify("infra", "main");
    let proposal = git(
        &infra,
        &["log", "-1", "--format=%(trailers)", "druppie/prod/permits"],
    );
    assert!(
        proposal.contains(&format!("Druppie-Spec-Commit: {after}\n")),
        "{proposal}"
    );
    s.verify("infra", "druppie/prod/permits");
    assert_eq!(
        git(
            &infra,
            &["show", "main:apps/dev/permits/app/deployment.yaml"]
        ),
        "kind: Deployment\nimage: registry.example.org/permits:1.0.3\n"
    );
    assert_eq!(
        git(
            &infra,
            &[
                "show",
                "druppie/prod/permits:apps/prod/permits/app/deployment.yaml"
            ]
        ),
        "kind: Deployment\nimage: registry.example.org/permits:1.0.3\n"
    );

    // The same delivery again is handled once; a bad signature is
    // refused and reconciles nothing.
    let settled = d.reconciles();
    assert_eq!(
        d.hook("push", "delivery-1", &push_payload("spec", &after), None),
        200
    );
    assert_eq!(
        d.hook(
            "push",
            "delivery-2",
            &push_payload("spec", &after),
            Some("00ff")
        ),
        401
    );
    assert_eq!(d.hook("push", "delivery-3", "{not json", None), 400);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.reconciles(),
        settled,
        "no reconcile for refused deliveries"
    );
    assert_eq!(
        d.metric("druppie_webhook_deliveries_total{result=\"unauthorized\"}"),
        1.0
    );
    assert_eq!(
        d.metric("druppie_webhook_deliveries_total{result=\"duplicate\"}"),
        1.0
    );
    assert_eq!(
        d.metric("druppie_webhook_deliveries_total{result=\"malformed\"}"),
        1.0
    );
    assert_eq!(d.metric("druppie_pending_approvals"), 1.0);

    // An approver merges the prod proposal with git, signed; the infra push webhook
    // makes the daemon record it as an approval.
    s.merge_proposal_signed("Merge druppie/prod/permits");
    let before = d.reconciles();
    assert_eq!(
        d.hook(
            "push",
            "delivery-4",
            &push_payload("infra", "1111111111111111111111111111111111111111"),
            None
        ),
        202
    );
    d.wait("the merge reconciled", |d| d.reconciles() > before);
    let kinds = trail(&s);
    assert!(kinds.contains(&"approved prod".to_owned()), "{kinds:?}");
    assert_eq!(d.state("permits", "prod")["state"], "in-sync");
    assert_eq!(d.metric("druppie_pending_approvals"), 0.0);
    assert!(d.metric("druppie_reconciles_total{result=\"success\"}") >= 3.0);
    assert!(d.metric("druppie_files_changed_total") > 0.0);
    assert!(d.metric("druppie_last_success_timestamp_seconds") > 1.7e9);
    let audit = d.json("/api/v1/audit");
    assert!(
        audit
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "approved"),
        "{audit}"
    );

    // SIGTERM: a clean exit, and the event stream ends with it.
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
    reader.join().expect("the event stream ends");
    let seen = events.lock().expect("events").clone();
    for name in [
        "reconcile-started",
        "reconcile-finished",
        "change-applied",
        "pr-opened",
        "approval-recorded",
    ] {
        assert!(seen.iter().any(|e| e == name), "no {name} in {seen:?}");
    }
    // Every event druppie wrote, on every ref, is signed and sound.
    for repo in ["infra", "spec", "permits-app"] {
        assert!(
            s.verify_all(&s.forge().join(format!("{repo}.git"))) > 0,
            "{repo}"
        );
    }
}

#[test]
fn a_restarted_daemon_converges_without_duplicates() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let after = push_plan_change(&s, 2);
    // Killed at once, possibly in the middle of the reconcile.
    assert_eq!(
        d.hook("push", "d-1", &push_payload("spec", &after), None),
        202
    );
    std::thread::sleep(Duration::from_millis(30));
    signal(&d.child, "KILL");
    drop(d);
    // Nothing local survives: the cache is rebuilt from git. A git the
    // killed daemon started may still be writing there for a moment.
    let cache = s.tmp.path().join("cache");
    let mut tries = 0;
    while let Err(e) = std::fs::remove_dir_all(&cache) {
        tries += 1;
        assert!(tries < 50, "remove the cache: {e}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let d = Daemon::start(&s);
    d.wait("converged", |d| {
        d.state("permits", "dev")["spec_commit"] == after.as_str()
    });
    let infra = s.forge().join("infra.git");
    let main = git(
        &infra,
        &[
            "log",
            "--format=%(trailers:key=Druppie-Spec-Commit,valueonly)",
            "main",
        ],
    );
    assert_eq!(
        main.matches(&after).count(),
        1,
        "one dev commit for the change:\n{main}"
    );
    let events = trail(&s);
    let applied_dev = events.iter().filter(|e| *e == "applied dev").count();
    assert_eq!(
        applied_dev, 2,
        "the first apply and the change, once each: {events:?}"
    );
    // A third start with nothing new writes nothing.
    let infra_commits = commits(&s, "infra", "main");
    let status = d.terminate();
    assert!(status.success());
    let d = Daemon::start(&s);
    assert_eq!(commits(&s, "infra", "main"), infra_commits);
    assert_eq!(trail(&s), events, "no new events");
    assert_eq!(d.state("permits", "prod")["state"], "pending-approval");
    assert!(d.terminate().success());
}

#[test]
fn a_local_checkout_is_rerendered_on_save_and_applied_on_commit() {
    let s = setup_with_image();
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push_str(
        "\n[server]\nlisten = \"127.0.0.1:0\"\npoll_interval = \"1h\"\nwebhook_secret_env = \"DRUPPIE_IT_WEBHOOK_SECRET\"\n",
    );
    std::fs::write(&s.config, config).expect("config");
    let spec = s.f.path().to_str().expect("utf-8").to_owned();
    let d = Daemon::start_with(&s, &["--spec", &spec]);
    assert_eq!(d.state("permits", "dev")["state"], "in-sync");
    let infra_commits = commits(&s, "infra", "main");

    // Saving a plan file re-renders: the dry run shows the edit, and an
    // uncommitted edit is not applied.
    let plan = s.f.path().join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    std::fs::write(&plan, text.replace("permits:1.0.0", "permits:1.0.7")).expect("edit");
    d.wait("the edit re-rendered", |d| {
        d.get("/api/v1/diff").1.contains("permits:1.0.7")
    });
    let status = d.json("/api/v1/status");
    assert_eq!(status["dirty"], true, "{status}");
    assert_eq!(d.state("permits", "dev")["state"], "drifted");
    assert_eq!(commits(&s, "infra", "main"), infra_commits, "not applied");

    // Committing it is applied: the commit is a trigger too.
    git(s.f.path(), &["commit", "-qam", "permits 1.0.7"]);
    let head = git(s.f.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    d.wait("the commit applied", |d| {
        d.state("permits", "dev")["spec_commit"] == head.as_str()
            && d.state("permits", "dev")["state"] == "in-sync"
    });
    assert_eq!(commits(&s, "infra", "main"), infra_commits + 1);
    let trailers = git(
        &s.forge().join("infra.git"),
        &["log", "-1", "--format=%(trailers)", "main"],
    );
    assert!(
        trailers.contains(&format!("Druppie-Spec-Commit: {head}\n")),
        "{trailers}"
    );
    assert!(trailers.contains("Druppie-Trigger: watch\n"), "{trailers}");
    assert!(d.terminate().success());
}
