//! The board in a real browser: Debian's Chromium driven by Playwright
//! for Python (`tests/board-browser.py`) against `druppie serve`, with
//! axe-core judging every page against WCAG 2.1 A and AA. Screenshots of
//! each page land in `target/artefacts/board/`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Daemon, push_payload, push_plan_change, serve_setup};
use crate::apply::Setup;
use crate::support::{git, repo_root};

/// A plan intent that would run if any page put it in as markup.
const HOSTILE: &str =
    "A permit portal <script>window.pwned=1</script><img src=x onerror=\"window.pwned=1\">";

/// The serve setup, with a second team's plan and a hostile intent
/// pushed to the spec repo before the daemon starts.
fn board_setup() -> Setup {
    let s = serve_setup();
    let work = s.tmp.path().join("spec-work");
    let plan = work.join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    let text = text.replacen(
        "owner: team-permits\n",
        &format!(
            "owner: team-permits\nintent: {}\n",
            serde_json::to_string(HOSTILE).unwrap()
        ),
        1,
    );
    std::fs::write(&plan, text).expect("plan");
    std::fs::write(
        work.join("spec/plans/meters.yaml"),
        "name: meters\nstack: webapp-db\nowner: team-meters\nintent: Water meter readings\nenvironments: [dev]\ninputs:\n  app: {image: registry.example.org/meters:2.1.0}\n",
    )
    .expect("second plan");
    let block = work.join("bouwblokken/postgresql.md");
    let text = std::fs::read_to_string(&block).expect("block");
    let text = text.replacen(
        "description: A CloudNativePG cluster.",
        &format!("description: {}", serde_json::to_string(HOSTILE).unwrap()),
        1,
    ) + &format!(
        "\n{HOSTILE}\n\n[docs](javascript:window.pwned=1)\n\nConnect with the token {}.\n",
        super::SECRET
    );
    std::fs::write(&block, text).expect("block");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "a second team, and an intent"]);
    git(&work, &["push", "-q", "origin", "main"]);
    s
}

fn artefacts() -> PathBuf {
    let dir = repo_root().join("target/artefacts/board");
    std::fs::create_dir_all(&dir).expect("artefacts dir");
    dir
}

fn axe() -> PathBuf {
    crate::prism::contracts().join("node_modules/axe-core/axe.min.js")
}

/// `druppie audit --plan permits --verify --json` on a clone of the spec
/// repo the daemon pushed its trail to.
fn cli_timeline(s: &Setup) -> Vec<Value> {
    let spec = super::spec_clone_with_trail(s, "spec-audit");
    let run = crate::support::druppie(
        &spec,
        &[
            "--config",
            s.config.to_str().unwrap(),
            "--spec",
            spec.to_str().unwrap(),
            "audit",
            "--plan",
            "permits",
            "--verify",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    serde_json::from_str(&run.stdout).expect("JSON")
}

#[test]
fn the_board_in_chromium_shows_plans_live_cards_timeline_and_catalog_accessibly() {
    let s = board_setup();
    let d = Daemon::start(&s);
    d.wait("both plans reconciled", |d| {
        d.json("/api/v1/status")["plans"]
            .as_array()
            .is_some_and(|p| p.len() == 3)
    });
    let mut browser = Command::new("python3")
        .arg(repo_root().join("tests/board-browser.py"))
        .arg(d.url(""))
        .arg(artefacts())
        .arg(axe())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (pip install playwright; apt install chromium)");
    let mut stdin = browser.stdin.take().expect("stdin");
    let stdout = BufReader::new(browser.stdout.take().expect("stdout"));
    let mut seen = Value::Null;
    let mut pushed = String::new();
    for line in stdout.lines().map_while(Result::ok) {
        let said: Value = serde_json::from_str(&line).expect("the script prints JSON lines");
        if said["need"] == "change" {
            pushed = push_plan_change(&s, 7);
            let code = d.hook("push", "board-1", &push_payload("spec", &pushed), None);
            assert_eq!(code, 202);
            writeln!(stdin, "{}", serde_json::json!({ "commit": pushed })).expect("answer");
        } else if !said["done"].is_null() {
            seen = said["done"].clone();
        }
    }
    let out = browser.wait_with_output().expect("the browser script ends");
    assert!(
        out.status.success() && !seen.is_null(),
        "the browser script failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // The board lists every plan × environment of the spec.
    let rows = seen["board"].as_array().expect("rows");
    let plans: Vec<&str> = rows.iter().map(|r| r["plan"].as_str().unwrap()).collect();
    assert_eq!(plans, ["meters", "permits"], "{seen}");
    let cells = |plan: &str| -> Vec<(String, String)> {
        rows.iter().find(|r| r["plan"] == plan).unwrap()["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["env"].as_str().unwrap().to_owned(),
                    c["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        cells("permits"),
        [
            ("dev".to_owned(), "in-sync".to_owned()),
            ("prod".to_owned(), "pending-approval".to_owned())
        ],
        "{seen}"
    );
    assert_eq!(
        cells("meters"),
        [("dev".to_owned(), "in-sync".to_owned())],
        "{seen}"
    );

    // The webhook's reconcile reached the open page without a reload,
    // within a second of the reconcile-finished event.
    let live = &seen["live"];
    assert_eq!(live["samePage"], true, "{live}");
    let lag = live["sinceFinished"]
        .as_i64()
        .expect("a reconcile finished");
    assert!(
        lag < 1000,
        "the cell changed {lag} ms after the reconcile ended"
    );
    let after = seen["board_after"].as_array().unwrap();
    let dev = &after.iter().find(|r| r["plan"] == "permits").unwrap()["cells"][0];
    assert_eq!(dev["freight"].as_str(), Some(&pushed[..12]), "{dev}");

    // A spec value is text on every page, never markup.
    let intent = rows.iter().find(|r| r["plan"] == "permits").unwrap()["intent"]
        .as_str()
        .unwrap();
    assert_eq!(intent, HOSTILE);
    for (page, h) in seen["hostile"].as_object().unwrap() {
        assert_eq!(h["pwned"], false, "{page}: {h}");
        if page != "audit" {
            assert_eq!(h["shown"], true, "{page} shows the value as text: {h}");
        }
        assert_eq!(
            h["scripts"],
            serde_json::json!(["/static/board.js"]),
            "{page}: {h}"
        );
    }

    // The plan page: an approval card for prod, and the timeline the CLI reads.
    let plan = &seen["plan"];
    let cards = plan["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 1, "{plan}");
    let card = &cards[0];
    assert_eq!(card["branch"], "druppie/prod/permits", "{card}");
    assert_eq!(
        card["facts"]["Approvers required"], "platform-team, person@example.org",
        "{card}"
    );
    assert!(
        card["facts"]["Status"]
            .as_str()
            .unwrap()
            .starts_with("waiting for approval"),
        "{card}"
    );
    assert!(!card["files"].as_array().unwrap().is_empty(), "{card}");
    assert!(card["diffs"].as_u64().unwrap() >= 1, "{card}");
    assert_eq!(
        plan["components"],
        serde_json::json!(["app", "db"]),
        "{plan}"
    );
    let cli = cli_timeline(&s);
    let shown: Vec<(String, String, String, String)> = plan["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap().to_owned();
            (f("event_commit"), f("kind"), f("time"), f("signature"))
        })
        .collect();
    let read: Vec<(String, String, String, String)> = cli
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap().to_owned();
            (f("event_commit"), f("kind"), f("time"), f("signature"))
        })
        .collect();
    assert!(read.len() >= 3, "{cli:?}");
    assert_eq!(shown, read);
    assert_eq!(
        seen["audit"].as_array().unwrap().len(),
        read.len(),
        "{seen}"
    );

    // The catalog search finds PostgreSQL first for "database", and its
    // page lists where it runs.
    assert_eq!(seen["catalog"][0], "postgresql", "{seen}");
    assert_eq!(
        seen["block"]["placements"],
        serde_json::json!(["meters/dev", "permits/dev", "permits/prod"]),
        "{seen}"
    );

    // No serious or critical WCAG 2.1 AA violation on any page.
    for (page, result) in seen["axe"].as_object().unwrap() {
        let bad: Vec<&Value> = result["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect();
        assert!(bad.is_empty(), "{page}: {bad:?}");
        assert!(result["passes"].as_u64().unwrap() > 10, "{page}: {result}");
    }
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen}");
    for shot in seen["screenshots"].as_array().unwrap() {
        let path = artefacts().join(shot.as_str().unwrap());
        assert!(
            std::fs::metadata(&path).expect("a screenshot").len() > 10_000,
            "{path:?}"
        );
    }
    assert!(d.terminate().success());
}

#[test]
fn every_page_is_escaped_scrubbed_and_sent_with_a_strict_policy() {
    let s = board_setup();
    let d = Daemon::start(&s);
    let client = crate::prism::client();
    for (path, status) in [
        ("/", 200),
        ("/plans/permits", 200),
        ("/catalog", 200),
        ("/catalog?q=database", 200),
        ("/catalog/postgresql", 200),
        ("/audit", 200),
        ("/audit?plan=permits&kind=applied&since=1h", 200),
        ("/plans/unknown", 404),
        ("/catalog/unknown", 404),
        ("/audit?kind=deleted", 400),
        ("/audit?since=yesterday", 400),
    ] {
        let r = client.get(d.url(path)).send().expect("GET");
        assert_eq!(r.status().as_u16(), status, "{path}");
        let h = r.headers();
        assert_eq!(
            h["content-security-policy"],
            druppie::web::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(
            h["content-type"].to_str().unwrap().starts_with("text/html"),
            "{path}"
        );
        let body = r.text().expect("body");
        assert!(
            !body.contains("<script>window"),
            "{path}: markup from the spec"
        );
        assert!(!body.contains("<img"), "{path}: markup from the spec");
        assert!(!body.contains("javascript:"), "{path}: a script link");
        assert!(!body.contains(super::SECRET), "{path}: the webhook secret");
    }
    let api = client
        .get(d.url("/api/v1/plans/%3Cb%3E/status"))
        .send()
        .expect("GET");
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    let board = d.get("/").1;
    assert!(
        board.contains("&lt;script&gt;window.pwned=1&lt;"),
        "{board}"
    );
    let block = d.get("/catalog/postgresql").1;
    assert!(block.contains("the token ***."), "{block}");
    let (_, bad) = d.get("/audit?kind=deleted");
    assert!(bad.contains("no event kind `deleted`"), "{bad}");
    let filtered = d.get("/audit?plan=permits&kind=proposed").1;
    assert!(filtered.contains(r#"data-kind="proposed""#), "{filtered}");
    assert!(!filtered.contains(r#"data-kind="applied""#), "{filtered}");
    assert!(d.terminate().success());
}

#[test]
fn a_team_member_signed_in_through_the_issuer_sees_only_its_teams_plans_in_chromium() {
    let (_s, idp, d) = super::auth::start();
    // The daemon knows both teams' plans.
    let all: Value = crate::prism::client()
        .get(d.url("/api/v1/plans"))
        .bearer_auth(super::auth::API_TOKEN)
        .send()
        .expect("GET")
        .json()
        .expect("JSON");
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ledger", "permits"], "{all}");
    let password = &idp.users["ana"];
    let out = Command::new("python3")
        .arg(repo_root().join("tests/board-browser.py"))
        .arg("--sign-in")
        .arg(d.url(""))
        .arg(artefacts())
        .args(["ana", password, "ledger"])
        .output()
        .expect("python3 runs (pip install playwright; apt install chromium)");
    assert!(
        out.status.success(),
        "the browser script failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = String::from_utf8_lossy(&out.stdout);
    let said: Value = serde_json::from_str(last.lines().last().expect("a line")).expect("JSON");
    let seen = &said["done"];
    // Sent to the issuer's own login form, and back to the board.
    assert!(
        seen["sent_to"].as_str().unwrap().starts_with(&idp.issuer),
        "{seen}"
    );
    assert_eq!(seen["landed"], d.url("/"), "{seen}");
    assert_eq!(seen["signed_in_as"], "ana", "{seen}");
    // ana's group is team-permits: the board, its team filter and the
    // catalog's placements hold only its plan; another team's plan page
    // answers as an unknown one.
    assert_eq!(seen["plans"], serde_json::json!(["permits"]), "{seen}");
    assert_eq!(seen["teams"], serde_json::json!(["team-permits"]), "{seen}");
    assert_eq!(seen["hidden_plan"]["status"], 404, "{seen}");
    assert!(
        seen["hidden_plan"]["text"]
            .as_str()
            .unwrap()
            .contains("There is no plan `ledger`."),
        "{seen}"
    );
    let placements = seen["placements"].as_array().unwrap();
    assert!(!placements.is_empty(), "{seen}");
    assert!(placements.iter().all(|p| p == "permits"), "{seen}");
}
