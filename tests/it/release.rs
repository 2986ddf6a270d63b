//! What a packaged release needs: the version names its commit, shell
//! completions and the manual page are generated.

use std::process::Command;

use crate::support::druppie;

#[test]
fn version_names_the_commit_it_was_built_from() {
    let here = env!("CARGO_MANIFEST_DIR");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(here)
        .output()
        .expect("git runs");
    let run = druppie(std::path::Path::new(here), &["--version"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let expected = format!("druppie {} ({head})\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(run.stdout, expected);
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let bin = env!("CARGO_BIN_EXE_druppie");
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            "source <('{bin}' completions bash) && COMP_WORDS=({words}) && COMP_CWORD={cword} \
             && COMP_LINE='{line}' && COMP_POINT={point} && _druppie druppie '{cur}' '{prev}' \
             && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words = words.join(" "),
            cword = words.len() - 1,
            point = line.len(),
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let out = Command::new("bash")
            .args(["-c", &script])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(complete("druppie di"), "diff\n");
    let flags = complete("druppie diff --");
    for flag in ["--plan", "--env", "--json", "--infra"] {
        assert!(flags.lines().any(|l| l == flag), "{flag} in {flags}");
    }
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    for shell in ["zsh", "fish"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = druppie(dir.path(), &["completions", shell]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        for sub in ["validate", "diff", "apply", "audit", "serve", "completions"] {
            assert!(run.stdout.contains(sub), "{shell} lacks {sub}");
        }
    }
}

#[test]
fn the_manual_page_renders_with_man() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = druppie(dir.path(), &["man"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    let file = dir.path().join("druppie.1");
    std::fs::write(&file, &page.stdout).expect("write the page");
    let out = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .expect("man runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("A GitOps reconciler driven by spec files"),
        "{text}"
    );
    for sub in ["validate", "diff", "apply", "serve"] {
        assert!(text.contains(sub), "the page lacks {sub}");
    }
}

#[test]
fn completions_work_beside_a_broken_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("druppie.toml"), "[forge\n").expect("write");
    let run = druppie(dir.path(), &["completions", "bash"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("_druppie"));
}
