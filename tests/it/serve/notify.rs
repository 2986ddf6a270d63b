//! Notifications and the resumable event stream, against the real
//! `druppie serve`: `[[notify]]` sinks on a local HTTP receiver get
//! CloudEvents (parsed by the official CloudEvents Python SDK) and
//! Slack/Teams text for webhook-triggered reconciles; a sink that fails
//! for a while gets the event on a later try; a sink that hangs or is
//! unreachable delays no reconcile; the sinks' URLs never reach the
//! logs; and an SSE client that reconnects with `Last-Event-ID` gets
//! exactly what it missed.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{Daemon, push_payload, push_plan_change, serve_setup};
use crate::apply::Setup;

/// The secret part of each sink's URL: its path, as a Slack or Teams
/// webhook URL carries its token.
const CE_TOKEN: &str = "ce-tok-4d8e1f7a9b2c";
const TEXT_TOKEN: &str = "text-tok-93ab61c0d5e2";
const FLAKY_TOKEN: &str = "flaky-tok-0c7d2e9f4a13";
const HANG_TOKEN: &str = "hang-tok-5b1e8a2d7c60";
const GONE_TOKEN: &str = "gone-tok-7e3f0a9c2b84";

/// One request a sink received.
#[derive(Debug, Clone)]
struct Received {
    /// When it arrived in full.
    at: SystemTime,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// An HTTP receiver on 127.0.0.1. `answer(path, n)` says how to answer
/// the `n`th request (from 0) on `path`: a status, or `None` to never
/// answer (the connection is held open).
struct Receiver {
    addr: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(answer: fn(&str, usize) -> Option<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let got = Arc::new(Mutex::new(Vec::new()));
        let kept = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve_one(conn, &kept, answer));
            }
        });
        Receiver { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received on `path` so far.
    fn on(&self, path: &str) -> Vec<Received> {
        let got = self.got.lock().expect("received");
        got.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Waits (up to 30 s) until the requests on `path` satisfy `done`.
    fn wait(&self, what: &str, path: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.on(path);
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}: {got:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads one request (headers, then a Content-Length body) and answers
/// it as told, closing the connection; or holds it open for good.
fn serve_one(conn: TcpStream, got: &Mutex<Vec<Received>>, answer: fn(&str, usize) -> Option<u16>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let nth = {
        let mut got = got.lock().expect("received");
        let nth = got.iter().filter(|r| r.path == path).count();
        got.push(Received {
            at: SystemTime::now(),
            path: path.clone(),
            headers,
            body: String::from_utf8(body).expect("a UTF-8 body"),
        });
        nth
    };
    match answer(&path, nth) {
        Some(status) => {
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
        None => {
            // Never answers: the connection stays open.
            std::thread::sleep(Duration::from_secs(3600));
            drop(conn);
        }
    }
}

/// `/flaky/…` answers 503 twice, then 200; `/hang/…` never answers;
/// everything else 200.
fn answer(path: &str, nth: usize) -> Option<u16> {
    if path.starts_with("/hang/") {
        None
    } else if path.starts_with("/flaky/") && nth < 2 {
        Some(503)
    } else {
        Some(200)
    }
}

/// Adds `tables` to the setup's config.
fn configure(s: &Setup, tables: &str) {
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push('\n');
    config.push_str(tables);
    std::fs::write(&s.config, config).expect("config");
}

/// Pushes plan change `patch`, sends its webhook and waits for the
/// reconcile; returns the spec commit.
fn reconcile_change(s: &Setup, d: &Daemon, patch: u32) -> String {
    let after = push_plan_change(s, patch);
    let before = d.reconciles();
    assert_eq!(
        d.hook(
            "push",
            &format!("delivery-{patch}"),
            &push_payload("spec", &after),
            None
        ),
        202
    );
    d.wait("the push reconciled", |d| d.reconciles() > before);
    after
}

/// How long each reconcile took, from the `reconciled` log lines, in
/// order.
fn reconcile_seconds(d: &Daemon) -> Vec<f64> {
    d.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "reconciled")
        .filter_map(|v| v["fields"]["seconds"].as_f64())
        .collect()
}

/// Every request on `path`, parsed by the CloudEvents SDK.
fn cloudevents(requests: &[Received]) -> Vec<serde_json::Value> {
    let input: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            let headers: serde_json::Map<String, serde_json::Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            serde_json::json!({"headers": headers, "body": r.body})
        })
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cloudevents-check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&input).expect("json").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("the SDK check");
    assert!(
        out.status.success(),
        "the CloudEvents SDK refused a delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the SDK check's JSON")
}

/// Asserts no token appears in anything the daemon logged.
fn no_token_in_logs(d: &Daemon, tokens: &[&str]) {
    let logs = d.logs().join("\n");
    for token in tokens {
        assert!(!logs.contains(token), "{token} in the logs:\n{logs}");
    }
}

#[test]
fn a_reconcile_that_applies_and_proposes_reaches_cloudevents_text_and_flaky_sinks() {
    let s = serve_setup();
    let sink = Receiver::start(answer);
    configure(
        &s,
        "[[notify]]\nname = \"ce\"\nurl_env = \"IT_NOTIFY_CE\"\n\n\
         [[notify]]\nname = \"chat\"\nurl_env = \"IT_NOTIFY_TEXT\"\nformat = \"text\"\nevents = [\"proposed\", \"applied\"]\n\n\
         [[notify]]\nname = \"flaky\"\nurl_env = \"IT_NOTIFY_FLAKY\"\nevents = [\"proposed\"]\nenvironments = [\"prod\"]\nbackoff = \"100ms\"\n",
    );
    let (ce, text, flaky) = (
        format!("/ce/{CE_TOKEN}"),
        format!("/text/{TEXT_TOKEN}"),
        format!("/flaky/{FLAKY_TOKEN}"),
    );
    let d = Daemon::start_env(
        &s,
        &[],
        &[
            ("IT_NOTIFY_CE", &sink.url(&ce)),
            ("IT_NOTIFY_TEXT", &sink.url(&text)),
            ("IT_NOTIFY_FLAKY", &sink.url(&flaky)),
        ],
    );
    // The first reconcile committed dev and proposed prod; a pushed
    // change does both again.
    let after = reconcile_change(&s, &d, 3);
    let is = |e: &serde_json::Value, kind: &str, subject: &str| {
        e["type"] == format!("io.druppie.{kind}") && e["subject"] == subject
    };
    let received = sink.wait("both reconciles' events", &ce, |got| {
        let events: Vec<serde_json::Value> = got.iter().map(Received::json).collect();
        events
            .iter()
            .filter(|e| is(e, "applied", "permits/dev"))
            .count()
            >= 2
            && events
                .iter()
                .filter(|e| is(e, "proposed", "permits/prod"))
                .count()
                >= 2
    });
    let events = cloudevents(&received);
    let mut ids = std::collections::BTreeSet::new();
    for (e, r) in events.iter().zip(&received) {
        assert_eq!(e["specversion"], "1.0", "{e}");
        assert_eq!(e["source"], "druppie", "{e}");
        assert_eq!(e["datacontenttype"], "application/json", "{e}");
        assert_eq!(e["time_utc"], true, "{e}");
        let id = e["id"].as_str().expect("an id");
        let (boot, seq) = id.split_once('-').expect("<boot>-<seq>");
        assert!(
            boot.bytes().all(|b| b.is_ascii_hexdigit()) && seq.parse::<u64>().is_ok(),
            "{id}"
        );
        assert!(ids.insert(id.to_owned()), "{id} sent twice");
        let kind = e["data"]["kind"].as_str().expect("a kind");
        assert_eq!(e["type"], format!("io.druppie.{kind}"));
        assert!(
            [
                "proposed",
                "approved",
                "violation",
                "applied",
                "promoted",
                "verified",
                "failed"
            ]
            .contains(&kind),
            "{kind}"
        );
        let plans: Vec<&str> = e["data"]["plans"]
            .as_array()
            .expect("plans")
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        let subject = match e["data"]["environment"].as_str() {
            Some(env) => format!("{}/{env}", plans.join(",")),
            None => plans.join(","),
        };
        assert_eq!(e["subject"], subject.as_str(), "{e}");
        // The SDK's time is the sender's, to the microsecond.
        let sent: jiff::Timestamp = r.json()["time"]
            .as_str()
            .expect("time")
            .parse()
            .expect("RFC 3339");
        let parsed: jiff::Timestamp = e["time"].as_str().expect("time").parse().expect("ISO 8601");
        assert_eq!(sent.as_microsecond(), parsed.as_microsecond());
    }
    let dev: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| is(e, "applied", "permits/dev"))
        .collect();
    let last = dev.last().expect("dev applied");
    assert_eq!(last["data"]["event"]["type"], "change-applied");
    assert_eq!(last["data"]["event"]["repo"], "infra");
    let infra = s.forge().join("infra.git");
    let head = crate::support::git(&infra, &["rev-parse", "main"]);
    assert_eq!(last["data"]["event"]["commit"], head.trim());
    let prod = events
        .iter()
        .rfind(|e| is(e, "proposed", "permits/prod"))
        .expect("proposed");
    assert_eq!(prod["data"]["event"]["branch"], "druppie/prod/permits");
    assert!(
        prod["data"]["summary"]
            .as_str()
            .is_some_and(|l| l.starts_with("permits in prod: proposed — ")),
        "{prod}"
    );
    assert!(!after.is_empty());

    // Latency: from the event's time to its arrival at the sink.
    let mut latency: Vec<f64> = received
        .iter()
        .map(|r| {
            let at: jiff::Timestamp = r.json()["time"]
                .as_str()
                .expect("time")
                .parse()
                .expect("time");
            let arrived = jiff::Timestamp::try_from(r.at).expect("a time");
            arrived.duration_since(at).as_secs_f64()
        })
        .collect();
    latency.sort_by(f64::total_cmp);
    eprintln!(
        "delivery latency over {} CloudEvents: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        latency.len(),
        latency[0] * 1000.0,
        latency[latency.len() / 2] * 1000.0,
        latency[latency.len() - 1] * 1000.0
    );
    assert!(latency[latency.len() - 1] < 2.0, "{latency:?}");

    // The chat sink gets one escaped line per event, nothing else.
    let lines = sink.wait("the text sink's lines", &text, |got| {
        got.iter()
            .any(|r| r.body.contains("permits in dev: applied"))
            && got
                .iter()
                .any(|r| r.body.contains("permits in prod: proposed"))
    });
    for r in &lines {
        let header = r
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str());
        assert_eq!(header, Some("application/json"));
        let v = r.json();
        let object = v.as_object().expect("an object");
        assert_eq!(object.keys().collect::<Vec<_>>(), ["text"], "{v}");
        let line = v["text"].as_str().expect("a line");
        assert!(!line.contains('\n') && !line.is_empty(), "{line:?}");
        assert!(
            line.contains(": applied — ") || line.contains(": proposed — "),
            "{line}"
        );
    }

    // The flaky sink answered 503 twice: the third try delivered the
    // same event.
    let tries = sink.wait("three tries", &flaky, |got| got.len() >= 3);
    let first: Vec<String> = tries[..3]
        .iter()
        .map(|r| r.json()["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(first[0], first[1]);
    assert_eq!(first[1], first[2]);
    assert_eq!(tries[0].json()["subject"], "permits/prod");
    d.wait("the flaky sink's delivery counted", |d| {
        d.metric("druppie_notifications_total{sink=\"flaky\",result=\"delivered\"}") >= 1.0
    });
    assert_eq!(
        d.metric("druppie_notifications_total{sink=\"flaky\",result=\"retried\"}"),
        2.0
    );
    assert_eq!(
        d.metric("druppie_notifications_total{sink=\"flaky\",result=\"failed\"}"),
        0.0
    );
    assert!(d.metric("druppie_notifications_total{sink=\"ce\",result=\"delivered\"}") >= 4.0);
    no_token_in_logs(&d, &[CE_TOKEN, TEXT_TOKEN, FLAKY_TOKEN]);
    let (_, metrics) = d.get("/metrics");
    for token in [CE_TOKEN, TEXT_TOKEN, FLAKY_TOKEN] {
        assert!(!metrics.contains(token));
    }
}

#[test]
fn a_sink_that_hangs_or_is_unreachable_delays_no_reconcile_and_a_healthy_one_still_gets_the_events()
{
    let sink = Receiver::start(answer);
    // Without sinks: how long the second and third webhook-triggered
    // reconciles take (each one takes a little longer than the one
    // before, as the repos grow, so both runs compare the same ones).
    let plain = serve_setup();
    let d = Daemon::start(&plain);
    for patch in 3..=5 {
        reconcile_change(&plain, &d, patch);
    }
    let without = reconcile_seconds(&d);
    assert!(d.terminate().success());

    let s = serve_setup();
    // A port nothing listens on.
    let gone = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    configure(
        &s,
        "[[notify]]\nname = \"hang\"\nurl_env = \"IT_NOTIFY_HANG\"\ntimeout = \"10s\"\nattempts = 3\n\n\
         [[notify]]\nname = \"gone\"\nurl_env = \"IT_NOTIFY_GONE\"\nattempts = 2\nbackoff = \"100ms\"\n\n\
         [[notify]]\nname = \"ce\"\nurl_env = \"IT_NOTIFY_CE\"\n",
    );
    let (hang, ce) = (format!("/hang/{HANG_TOKEN}"), format!("/ce/{CE_TOKEN}"));
    let d = Daemon::start_env(
        &s,
        &[],
        &[
            ("IT_NOTIFY_HANG", &sink.url(&hang)),
            ("IT_NOTIFY_GONE", &format!("http://{gone}/{GONE_TOKEN}")),
            ("IT_NOTIFY_CE", &sink.url(&ce)),
        ],
    );
    // The first reconcile's events: the hanging sink holds the first for
    // 3 × 10 s (its queue keeps the rest), the unreachable one fails.
    sink.wait("the hanging sink is held", &hang, |got| !got.is_empty());
    let commits: Vec<String> = (3..=5)
        .map(|patch| reconcile_change(&s, &d, patch))
        .collect();
    let with = reconcile_seconds(&d);
    assert_eq!((without.len(), with.len()), (4, 4), "{without:?} {with:?}");
    let (without, with) = (&without[2..], &with[2..]);
    eprintln!(
        "webhook reconciles without sinks: {without:?} s; with a hanging and an unreachable sink: {with:?} s"
    );
    let slowest = without.iter().copied().fold(0.0, f64::max);
    for seconds in with {
        assert!(*seconds < slowest + 1.0, "{with:?} against {without:?}");
    }
    // The healthy sink got every dev commit meanwhile: the first
    // reconcile's and the three changes'.
    let commit = |e: &serde_json::Value| {
        e["data"]["event"]["type"] == "change-applied" && e["subject"] == "permits/dev"
    };
    let got = sink.wait("the healthy sink's events", &ce, |got| {
        got.iter().map(Received::json).filter(commit).count() >= 4
    });
    let applied: Vec<serde_json::Value> = got.iter().map(Received::json).filter(commit).collect();
    assert_eq!(applied.len(), 4, "{applied:#?}");
    let infra = s.forge().join("infra.git");
    let head = crate::support::git(&infra, &["rev-parse", "main"]);
    assert_eq!(applied[3]["data"]["event"]["commit"], head.trim());
    assert_eq!(
        d.metric("druppie_notifications_total{sink=\"hang\",result=\"delivered\"}"),
        0.0
    );
    assert!(d.metric("druppie_notification_queue{sink=\"hang\"}") >= 1.0);
    d.wait("the unreachable sink given up", |d| {
        d.metric("druppie_notifications_total{sink=\"gone\",result=\"failed\"}") >= 1.0
    });
    assert!(
        d.logs()
            .iter()
            .any(|l| l.contains("notification not delivered")),
        "the give-up is logged"
    );
    assert_eq!(commits.len(), 3);
    no_token_in_logs(&d, &[HANG_TOKEN, GONE_TOKEN, CE_TOKEN]);
}

/// One SSE event: its id (none for `resync`), name and data.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: Option<String>,
    name: String,
    data: serde_json::Value,
}

/// Reads events from an SSE body until `stop` holds for one (which is
/// kept), or the stream ends.
fn read_until(lines: &mut impl Iterator<Item = String>, stop: impl Fn(&Sse) -> bool) -> Vec<Sse> {
    let mut out = Vec::new();
    let (mut id, mut name, mut data) = (None, String::new(), String::new());
    for line in lines {
        if line.is_empty() {
            if !name.is_empty() {
                let event = Sse {
                    id: id.take(),
                    name: std::mem::take(&mut name),
                    data: serde_json::from_str(&std::mem::take(&mut data)).expect("JSON data"),
                };
                let done = stop(&event);
                out.push(event);
                if done {
                    return out;
                }
            }
            id = None;
            data.clear();
        } else if let Some(v) = line
            .strip_prefix("id: ")
            .or_else(|| line.strip_prefix("id:"))
        {
            id = Some(v.to_owned());
        } else if let Some(v) = line
            .strip_prefix("event: ")
            .or_else(|| line.strip_prefix("event:"))
        {
            v.clone_into(&mut name);
        } else if let Some(v) = line
            .strip_prefix("data: ")
            .or_else(|| line.strip_prefix("data:"))
        {
            data.push_str(v);
        }
    }
    out
}

/// `/api/v1/events`, with `Last-Event-ID` when given, as lines.
fn stream(d: &Daemon, last: Option<&str>) -> impl Iterator<Item = String> + use<> {
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .expect("client");
    let mut request = client.get(d.url("/api/v1/events"));
    if let Some(last) = last {
        request = request.header("last-event-id", last);
    }
    let response = request.send().expect("subscribe");
    assert_eq!(response.status(), 200);
    BufReader::new(response).lines().map_while(Result::ok)
}

/// The `reconcile-finished` event of the reconcile of `commit`.
fn finished(commit: &str) -> impl Fn(&Sse) -> bool + '_ {
    move |e| e.name == "reconcile-finished" && e.data["revision"] == commit
}

#[test]
fn a_client_that_reconnects_with_last_event_id_gets_exactly_the_events_it_missed_in_order() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    // One client stays connected throughout: what it sees is the truth.
    let all = Arc::new(Mutex::new(Vec::new()));
    let reference = {
        let mut lines = stream(&d, None);
        let all = all.clone();
        std::thread::spawn(move || {
            let got = read_until(&mut lines, |_| false);
            *all.lock().expect("events") = got;
        })
    };
    let mut client = stream(&d, None);
    let first = reconcile_change(&s, &d, 3);
    let seen = read_until(&mut client, finished(&first));
    let last = seen.last().and_then(|e| e.id.clone()).expect("an id");
    drop(client);

    // Disconnected: a whole reconcile passes.
    let missed = reconcile_change(&s, &d, 4);
    // Reconnected with the last id, and a reconcile while it reads.
    let mut client = stream(&d, Some(&last));
    let replayed = read_until(&mut client, finished(&missed));
    let live = reconcile_change(&s, &d, 5);
    let mut resumed = replayed.clone();
    resumed.extend(read_until(&mut client, finished(&live)));
    drop(client);

    // An id of another process: a resync, then every event kept.
    let mut other = stream(&d, Some("1-7"));
    let from_elsewhere = read_until(&mut other, finished(&live));
    drop(other);

    assert!(d.terminate().success());
    reference.join().expect("the reference stream ends");
    let all = all.lock().expect("events").clone();
    let at = all
        .iter()
        .position(|e| e.id.as_deref() == Some(last.as_str()))
        .expect("the last id in the reference stream");
    let end = all
        .iter()
        .position(finished(&live))
        .expect("the live reconcile");
    assert_eq!(
        resumed,
        all[at + 1..=end].to_vec(),
        "exactly what was missed, in order"
    );
    assert!(
        replayed.iter().any(|e| e.name == "change-applied"),
        "the missed reconcile's change: {replayed:#?}"
    );
    // Ids count up one by one within the process.
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| {
            let id = e.id.as_deref().expect("every event has an id");
            id.split_once('-')
                .expect("<boot>-<seq>")
                .1
                .parse()
                .expect("a sequence")
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(from_elsewhere[0].name, "resync");
    assert_eq!(from_elsewhere[0].id, None);
    assert_eq!(from_elsewhere[0].data["reason"], "unknown");
    // Every event since the start, the first reconcile's included.
    assert_eq!(
        from_elsewhere[1]
            .id
            .as_deref()
            .and_then(|i| i.split_once('-'))
            .map(|i| i.1),
        Some("1")
    );
    assert!(
        from_elsewhere[1..].ends_with(&all[..=end]),
        "{from_elsewhere:#?}"
    );
}

#[test]
fn a_merged_proposal_that_promotes_from_dev_is_told_as_approved_and_promoted() {
    let s = serve_setup();
    // prod waits for dev (no `promote: {prod: parallel}`).
    let work = s.tmp.path().join("spec-work");
    let plan = work.join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    std::fs::write(&plan, text.replace("promote: {prod: parallel}\n", "")).expect("plan");
    crate::support::git(&work, &["commit", "-qam", "prod after dev"]);
    crate::support::git(&work, &["push", "-q", "origin", "main"]);
    let sink = Receiver::start(answer);
    configure(
        &s,
        "[[notify]]\nname = \"chat\"\nurl_env = \"IT_NOTIFY_TEXT\"\nformat = \"text\"\nevents = [\"approved\", \"promoted\"]\nplans = [\"permits\"]\n",
    );
    let text = format!("/text/{TEXT_TOKEN}");
    let d = Daemon::start_env(&s, &[], &[("IT_NOTIFY_TEXT", &sink.url(&text))]);
    // dev is live after the first reconcile; the next proposes prod.
    let payload = push_payload("infra", "1111111111111111111111111111111111111111");
    assert_eq!(d.hook("push", "dev-live", &payload, None), 202);
    d.wait("prod proposed", |d| {
        d.state("permits", "prod")["state"] == "pending-approval"
    });

    // An approver merges prod's proposal; the infra push reconciles it.
    s.merge_proposal_signed("Merge druppie/prod/permits");
    let before = d.reconciles();
    assert_eq!(d.hook("push", "merge-1", &payload, None), 202);
    d.wait("the merge reconciled", |d| d.reconciles() > before);
    let lines = sink.wait("approved and promoted", &text, |got| got.len() >= 2);
    let lines: Vec<String> = lines
        .iter()
        .map(|r| r.json()["text"].as_str().expect("text").to_owned())
        .collect();
    assert!(
        lines[0].starts_with("permits in prod: approved, merged by "),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("permits in prod: promoted from dev — infra "),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn a_sink_without_its_url_or_with_a_bad_one_stops_the_start_without_showing_it() {
    let s = serve_setup();
    configure(
        &s,
        "[[notify]]\nname = \"slack\"\nurl_env = \"IT_NOTIFY_SLACK\"\nformat = \"text\"\n",
    );
    let serve = |url: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_druppie"));
        command
            .args(["--config", s.config.to_str().expect("utf-8"), "serve"])
            .current_dir(s.tmp.path())
            .env_remove("IT_NOTIFY_SLACK")
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("HOME", s.tmp.path());
        if let Some(url) = url {
            command.env("IT_NOTIFY_SLACK", url);
        }
        let out = command.output().expect("druppie serve");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = serve(None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("[[notify]] `slack`: the variable IT_NOTIFY_SLACK is not set or empty"),
        "{stderr}"
    );
    let (code, stderr) = serve(Some(""));
    assert_eq!(code, Some(1), "{stderr}");
    let (code, stderr) = serve(Some("hooks.slack.com/services/T0/B0/not-a-url-tok-31"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("the variable IT_NOTIFY_SLACK does not hold an http:// or https:// URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-a-url-tok-31"), "{stderr}");
}
