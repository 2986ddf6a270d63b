//! The daemon's render check, a child kept between checks (`druppie
//! render-check`): it reads again only the files a check names, and
//! says whether a failure is the spec's or its own.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use druppie::daemon::{CheckError, CheckOpen, RenderCheck};

use crate::support::Fixture;

fn check() -> RenderCheck {
    RenderCheck::new(
        env!("CARGO_BIN_EXE_druppie").into(),
        Vec::new(),
        Duration::from_secs(60),
    )
}

fn open(from: Option<&str>, to: &str, changed: Option<&[&str]>) -> CheckOpen {
    CheckOpen {
        from: from.map(str::to_owned),
        to: Some(to.to_owned()),
        changed: changed.map(|c| c.iter().map(|p| (*p).to_owned()).collect()),
    }
}

#[test]
fn the_kept_child_reads_again_only_the_files_named_and_a_refusal_ends_it() {
    let f = Fixture::valid();
    let root = f.path();
    let check = check();
    let plans = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
    let passed = check
        .start(root, &open(None, "a", None))
        .finish(None)
        .expect("passes");
    assert_eq!(
        passed.files_read_again, None,
        "a new child loads the whole spec"
    );

    let plan = root.join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    std::fs::write(&plan, text.replace("replicas: 2", "replicas: 3")).expect("write");
    let changed = ["spec/plans/permits.yaml"];
    let passed = check
        .start(root, &open(Some("a"), "b", Some(&changed)))
        .finish(Some(&plans(&["permits"])))
        .expect("passes");
    assert_eq!(passed.files_read_again, Some(1));
    // Told of a commit it does not hold, it loads the whole spec.
    let passed = check
        .start(root, &open(Some("x"), "c", Some(&changed)))
        .finish(Some(&plans(&[])))
        .expect("passes");
    assert_eq!(passed.files_read_again, None);

    // A plan input the block refuses: the spec's doing, located.
    std::fs::write(&plan, text.replace("replicas: 2", "replicas: 99")).expect("write");
    let refused = check
        .start(root, &open(Some("c"), "d", Some(&changed)))
        .finish(Some(&plans(&["permits"])))
        .expect_err("refused");
    assert!(matches!(refused, CheckError::Refused(_)), "{refused}");
    assert!(
        refused.to_string().contains("spec/plans/permits.yaml:"),
        "{refused}"
    );
    assert!(!refused.is_transient());

    // The refusing child ended: the next check loads the whole spec.
    std::fs::write(&plan, &text).expect("write");
    let passed = check
        .start(root, &open(Some("d"), "e", Some(&changed)))
        .finish(None)
        .expect("passes");
    assert_eq!(passed.files_read_again, None);
}

#[test]
fn a_request_the_child_cannot_read_is_its_own_failure_not_the_specs() {
    let f = Fixture::valid();
    let mut child = Command::new(env!("CARGO_BIN_EXE_druppie"))
        .arg("--spec")
        .arg(f.path())
        .arg("render-check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("druppie");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"{\"from\": 1}\n")
        .expect("write");
    let out = child.wait_with_output().expect("ends");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error"),
        "{out:?}"
    );
}
