//! The daemon's HTTP server against hostile clients: many idle
//! connections, requests sent a byte at a time, bodies that never
//! finish, more connections than it serves at once. Real `druppie
//! serve`, real TCP connections.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Daemon, serve_setup};
use crate::apply::Setup;

/// The serve setup with more `[server]` settings (its section is last).
fn setup_with(server: &str) -> Setup {
    let s = serve_setup();
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push_str(server);
    std::fs::write(&s.config, config).expect("config");
    s
}

/// GET /healthz on a new connection: how long until the whole answer.
fn healthz(addr: &str) -> Duration {
    let started = Instant::now();
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nhost: druppie\r\nconnection: close\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok\n"), "{answer}");
    started.elapsed()
}

/// Descriptors the daemon holds open.
fn open_files(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .expect("/proc")
        .count()
}

/// Sends `prefix`, then one byte of a header every `every` until the
/// server closes the connection; how long that took from the connect.
fn trickle(addr: &str, prefix: &[u8], every: Duration, give_up: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(every)).unwrap();
    let _ = c.write_all(prefix);
    let mut got = Vec::new();
    while started.elapsed() < give_up {
        let mut buf = [0u8; 1024];
        match c.read(&mut buf) {
            Ok(0) => return (started.elapsed(), got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (started.elapsed(), got),
        }
        if !prefix.is_empty() && c.write_all(b"a").is_err() {
            return (started.elapsed(), got);
        }
    }
    panic!("the server kept the connection open for {give_up:?}");
}

#[test]
fn healthz_answers_within_100_ms_while_1000_idle_and_100_slow_header_connections_are_open() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let before = open_files(&d);
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(&d.addr).expect("an idle connection"))
        .collect();
    let mut slow: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut c = TcpStream::connect(&d.addr).expect("a slow connection");
            c.write_all(b"GET /healthz HTTP/1.1\r\nx-slow: ").unwrap();
            c
        })
        .collect();
    // Every one of them is accepted and held by the daemon.
    let until = Instant::now() + Duration::from_secs(10);
    while open_files(&d) < before + 1100 {
        assert!(
            Instant::now() < until,
            "the daemon holds {} files",
            open_files(&d)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut took = Vec::new();
    for _ in 0..20 {
        for c in &mut slow {
            c.write_all(b"a")
                .expect("the slow connection is still open");
        }
        took.push(healthz(&d.addr));
        std::thread::sleep(Duration::from_millis(100));
    }
    took.sort();
    let worst = *took.last().unwrap();
    eprintln!(
        "/healthz with 1,100 hostile connections: median {:?}, worst {worst:?}",
        took[took.len() / 2]
    );
    assert!(
        worst < Duration::from_millis(100),
        "/healthz took up to {worst:?} (median {:?})",
        took[took.len() / 2]
    );
    assert!(open_files(&d) >= before + 1100, "still held while measured");
    drop(idle);
    drop(slow);
    assert!(d.terminate().success());
}

#[test]
fn a_slow_silent_or_finished_client_is_cut_off_at_the_header_timeout() {
    let s = setup_with("header_timeout = \"2s\"\n");
    let d = Daemon::start(&s);
    let timeout = Duration::from_secs(2);
    // One header byte every 500 ms, as a slowloris client sends.
    let (held, answer) = trickle(
        &d.addr,
        b"GET /healthz HTTP/1.1\r\nx-slow: ",
        Duration::from_millis(500),
        Duration::from_secs(20),
    );
    eprintln!("a slow-header connection was closed after {held:?}");
    assert!(held >= timeout && held < timeout * 2, "held for {held:?}");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // Connected and silent.
    let (held, _) = trickle(
        &d.addr,
        b"",
        Duration::from_millis(100),
        Duration::from_secs(20),
    );
    assert!(held >= timeout && held < timeout * 2, "held for {held:?}");
    // Kept alive after an answer, then silent.
    let started = Instant::now();
    let mut c = TcpStream::connect(&d.addr).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nhost: druppie\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let held = started.elapsed();
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    assert!(held >= timeout && held < timeout * 2, "held for {held:?}");
    assert!(d.terminate().success());
}

#[test]
fn a_webhook_body_sent_slowly_is_answered_503_at_the_request_timeout() {
    let s = setup_with("request_timeout = \"2s\"\n");
    let d = Daemon::start(&s);
    let (held, answer) = trickle(
        &d.addr,
        b"POST /webhooks/gitea HTTP/1.1\r\nhost: druppie\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nx-gitea-event: push\r\n\r\n{",
        Duration::from_millis(250),
        Duration::from_secs(20),
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("not answered within 2s"), "{answer}");
    assert!(
        held >= Duration::from_secs(2) && held < Duration::from_secs(4),
        "held for {held:?}"
    );
    assert!(d.terminate().success());
}

#[test]
fn connections_over_the_cap_wait_unaccepted_and_take_no_descriptor() {
    let s = setup_with("max_connections = 20\n");
    let d = Daemon::start(&s);
    let before = open_files(&d);
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(&d.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let held = open_files(&d) - before;
    assert!(held <= 20, "{held} descriptors for 200 connections");
    assert!(held >= 15, "{held}: the daemon serves up to its cap");
    // Once those clients go, the queue drains and a new one is served.
    drop(idle);
    let until = Instant::now() + Duration::from_secs(5);
    let took = healthz(&d.addr);
    assert!(Instant::now() < until, "/healthz took {took:?}");
    assert!(d.terminate().success());
}

#[test]
fn a_low_open_files_limit_lowers_the_cap_instead_of_failing_accepts() {
    // 400 descriptors, hard limit included: 370 idle connections ran a
    // daemon out of them before (`accept error: Too many open files`).
    let s = setup_with("header_timeout = \"1s\"\n");
    let d = Daemon::start_under(&s, &["prlimit", "--nofile=400:400", "--"], &[], &[]);
    let fitted = d
        .logs()
        .into_iter()
        .find(|l| l.contains("leaves room for fewer connections"))
        .expect("the lowered cap is logged");
    let line: serde_json::Value = serde_json::from_str(&fitted).unwrap();
    assert_eq!(line["fields"]["serving"], 144, "{fitted}");
    let idle: Vec<TcpStream> = (0..370)
        .map(|_| TcpStream::connect(&d.addr).expect("connect"))
        .collect();
    // The idle ones are cut off at the header timeout, a batch at a
    // time; /healthz waits its turn and is answered.
    let took = healthz(&d.addr);
    assert!(took < Duration::from_secs(6), "/healthz took {took:?}");
    drop(idle);
    let logs = d.logs().join("\n");
    assert!(!logs.contains("cannot accept"), "{logs}");
    assert!(!logs.contains("Too many open files"), "{logs}");
    assert!(d.terminate().success());
}

#[test]
fn a_webhook_secret_variable_set_but_empty_stops_serve_at_start() {
    let s = serve_setup();
    let out = Command::new(env!("CARGO_BIN_EXE_druppie"))
        .args(["--config", s.config.to_str().unwrap(), "serve"])
        .current_dir(s.tmp.path())
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", s.tmp.path())
        .env("DRUPPIE_IT_WEBHOOK_SECRET", "")
        .stdin(Stdio::null())
        .output()
        .expect("run druppie serve");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: the variable DRUPPIE_IT_WEBHOOK_SECRET (named by `[server] webhook_secret_env`) is set but empty\n  = help: set it to the webhook secret, or unset it to accept unsigned webhooks\n"
    );
}

#[test]
fn an_unset_webhook_secret_serves_unsigned_webhooks_with_a_warning() {
    let s = serve_setup();
    let config = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        config.replace("DRUPPIE_IT_WEBHOOK_SECRET", "DRUPPIE_UNSET_WEBHOOK_SECRET"),
    )
    .unwrap();
    let d = Daemon::start(&s);
    assert!(
        d.logs()
            .iter()
            .any(|l| l.contains("webhooks are not authenticated: no webhook secret is set")),
        "{:?}",
        d.logs()
    );
    assert_eq!(
        d.hook("ping", "p-1", "{}", Some("not-checked")),
        200,
        "unsigned deliveries are taken"
    );
    assert!(d.terminate().success());
}

#[test]
fn a_body_too_large_is_answered_413_and_the_client_reads_the_answer() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let http = crate::prism::client();
    let big = "x".repeat(druppie::daemon::BODY_LIMIT * 6);
    // Refused unread: the daemon drains what the client still sends
    // before it closes, so the client sees the 413, not a reset.
    for _ in 0..20 {
        let r = http
            .post(d.url("/webhooks/gitea"))
            .header("x-gitea-event", "push")
            .body(big.clone())
            .send()
            .expect("the answer, not a reset");
        assert_eq!(r.status().as_u16(), 413);
    }
    assert!(d.terminate().success());
}

#[test]
fn an_event_stream_outlives_a_short_idle_timeout() {
    let s = setup_with("idle_timeout = \"2s\"\n");
    let d = Daemon::start(&s);
    let mut c = TcpStream::connect(&d.addr).unwrap();
    c.write_all(b"GET /api/v1/events HTTP/1.1\r\nhost: druppie\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Nothing happens for three idle timeouts; the stream's keep-alive
    // comments keep it open.
    let started = Instant::now();
    let mut got = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        let mut buf = [0u8; 1024];
        match c.read(&mut buf) {
            Ok(0) => panic!("the stream ended after {:?}", started.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.matches("\n:").count() >= 3,
        "keep-alive comments: {text}"
    );
    drop(c);
    assert!(d.terminate().success());
}

#[test]
fn event_streams_held_open_take_at_most_a_quarter_of_the_connections() {
    // 20 connections: 5 event streams at most.
    let s = setup_with("max_connections = 20\n");
    let d = Daemon::start(&s);
    let open = |c: &mut TcpStream| {
        c.write_all(b"GET /api/v1/events HTTP/1.1\r\nhost: druppie\r\n\r\n")
            .unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).expect("an answer");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut c = TcpStream::connect(&d.addr).unwrap();
        let head = open(&mut c);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        streams.push(c);
    }
    // The sixth is refused at once, with a time to come back.
    let mut sixth = TcpStream::connect(&d.addr).unwrap();
    let head = open(&mut sixth);
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 10"),
        "{head}"
    );
    // Webhooks, probes and the API still get connections.
    let took = healthz(&d.addr);
    assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    assert_eq!(d.get("/api/v1/plans").0, 200);
    // A stream that ends gives its slot back.
    drop(streams.pop());
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = TcpStream::connect(&d.addr).unwrap();
        if open(&mut again).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the closed stream's slot never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(streams);
    assert!(d.terminate().success());
}
