//! Output into a pipe that closes early (`| head`) ends quietly, as git
//! does: no panic, the command's own exit code.

use std::process::Command;

use crate::support::repo_root;

/// Runs `druppie ARGS | READER` and returns druppie's exit code and
/// stderr.
fn into(args: &str, reader: &str) -> (i32, String) {
    let bin = env!("CARGO_BIN_EXE_druppie");
    let script =
        format!("set -o pipefail; '{bin}' {args} 2>err | {reader} >/dev/null; echo $? >code");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("bash runs");
    assert!(out.status.code().is_some(), "bash ended by a signal");
    let code = std::fs::read_to_string(dir.path().join("code")).expect("code written");
    let err = std::fs::read_to_string(dir.path().join("err")).expect("stderr written");
    (code.trim().parse().expect("a number"), err)
}

#[test]
fn a_pipe_closed_early_ends_the_output_quietly() {
    let spec = repo_root();
    let spec = spec.to_str().expect("utf-8");
    // `true` reads nothing and is gone before druppie writes; `head`
    // closes the pipe part way.
    for reader in ["true", "head -c 600"] {
        for (args, expected) in [
            (format!("--spec '{spec}' blocks --json"), 0),
            (format!("--spec '{spec}' skills --json"), 0),
            (format!("--spec '{spec}' blocks"), 0),
            (format!("--spec '{spec}' validate"), 0),
            (format!("--spec '{spec}' diff"), 2),
            (format!("--spec '{spec}' diff --json"), 2),
        ] {
            let (code, err) = into(&args, reader);
            assert!(!err.contains("panicked"), "| {reader}, {args}: {err}");
            assert!(!err.contains("Broken pipe"), "| {reader}, {args}: {err}");
            assert_eq!(code, expected, "| {reader}, {args}: {err}");
        }
    }
}
