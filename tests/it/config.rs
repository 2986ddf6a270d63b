//! `druppie.toml` as people write it: relative paths resolve against the
//! file's own directory, wherever druppie runs from.

use crate::apply::setup;
use crate::support::{druppie, git};

/// The config of [`setup`] with every path written relative to it.
const RELATIVE: &str = "[forge]\nkind = \"git\"\nbase = \"forge\"\n\n[repos]\ncache_dir = \"cache\"\n\n[signing]\nkey = \"druppie_ed25519\"\nname = \"druppie\"\nemail = \"druppie@example.org\"\nallowed_signers = \"allowed_signers\"\n";

#[test]
fn relative_paths_in_the_default_config_resolve_against_its_directory() {
    let s = setup("platform-team");
    std::fs::write(&s.config, RELATIVE).expect("write config");
    let spec = s.f.path().to_str().expect("utf-8").to_owned();
    // No --config: ./druppie.toml of the working directory.
    let run = druppie(s.tmp.path(), &["--spec", &spec, "apply", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("infra (dev) permits: committed "),
        "{}",
        run.stdout
    );
    let log = git(
        &s.forge().join("infra.git"),
        &["log", "--format=%s", "main"],
    );
    assert_eq!(
        log.lines().count(),
        2,
        "one commit on top of the start: {log}"
    );
    assert!(s.tmp.path().join("cache/infra.git").is_dir());
    assert!(!s.tmp.path().join("cache/forge").exists());
    // The same file named from elsewhere, by a relative --config.
    let elsewhere = s.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let audit = druppie(
        &elsewhere,
        &[
            "--spec",
            &spec,
            "--config",
            "../druppie.toml",
            "audit",
            "--verify",
        ],
    );
    assert_eq!(audit.code, 0, "{}", audit.transcript());
    let again = druppie(
        &elsewhere,
        &[
            "--spec",
            &spec,
            "--config",
            "../druppie.toml",
            "apply",
            "--yes",
        ],
    );
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(
        !elsewhere.join("cache").exists(),
        "the cache stays beside the config"
    );
}
