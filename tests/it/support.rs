//! Fixture spec repos in temp dirs, and running the real binary on them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A spec repo in a temp dir.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout, stderr and the exit code as one text for snapshots.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub const PLATFORM: &str = "\
infra:
  repo: infra
  branch: main
environments:
  dev:
    trust: deploy
    path: apps/dev
    namespace: \"{{ plan }}-dev\"
  prod:
    trust: propose
    path: apps/prod
    namespace: \"{{ plan }}\"
    approvers: [platform-team]
";

pub const WEBAPP: &str = "\
---
id: webapp-python
name: Python web app
type: service
version: 1.0.0
description: A FastAPI service.
capabilities: [web, api]
requires: [database]
inputs:
  image: {type: string, required: true}
  replicas: {type: integer, default: 1, minimum: 1, maximum: 20}
  database_secret: {type: string, default: \"\"}
outputs:
  url: \"http://{{ plan }}-{{ component }}.{{ namespace }}.svc:8000\"
---
# Python web app

Serves HTTP.
";

pub const POSTGRES: &str = "\
---
id: postgresql
name: PostgreSQL
type: database
version: 1.0.0
description: A CloudNativePG cluster.
capabilities: [database, sql]
inputs:
  instances: {type: integer, default: 1, minimum: 1, maximum: 9}
  storage: {type: string, default: 1Gi, pattern: \"[0-9]+(Mi|Gi|Ti)\"}
outputs:
  secret: \"{{ plan }}-{{ component }}-app\"
---
# PostgreSQL
";

pub const STACK: &str = "\
name: webapp-db
description: A web app with its database.
components:
  db:
    block: postgresql
  app:
    block: webapp-python
    inputs:
      database_secret: \"{{ components.db.outputs.secret }}\"
environments:
  prod:
    db: {instances: 3}
";

pub const PLAN: &str = "\
name: permits
stack: webapp-db
owner: team-permits
environments: [dev, prod]
inputs:
  app: {image: registry.example.org/permits:1.0.0}
overrides:
  prod:
    app: {replicas: 2}
";

impl Fixture {
    /// An empty spec repo.
    pub fn empty() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    /// A small valid spec repo: two blocks with templates, a stack, a plan.
    pub fn valid() -> Self {
        Fixture::empty()
            .with("spec/platform.yaml", PLATFORM)
            .with("bouwblokken/webapp-python.md", WEBAPP)
            .with("bouwblokken/postgresql.md", POSTGRES)
            .with(
                "templates/webapp-python/infra/deployment.yaml.j2",
                "kind: Deployment\n",
            )
            .with(
                "templates/postgresql/infra/cluster.yaml.j2",
                "kind: Cluster\n",
            )
            .with("spec/stacks/webapp-db.yaml", STACK)
            .with("spec/plans/permits.yaml", PLAN)
    }

    /// A copy of this repository's example spec content (blocks, skills,
    /// templates, spec, infra-example), outside any git repository.
    pub fn example() -> Self {
        let f = Fixture::empty();
        for dir in [
            "bouwblokken",
            "skills",
            "templates",
            "spec",
            "infra-example",
        ] {
            copy_dir(&repo_root().join(dir), &f.path().join(dir));
        }
        f
    }

    /// Writes (or overwrites) a file.
    pub fn with(self, path: &str, content: impl AsRef<[u8]>) -> Self {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("has parent")).expect("mkdir");
        std::fs::write(full, content).expect("write fixture");
        self
    }

    /// Replaces `from` by `to` in an existing file; the text must occur.
    pub fn edit(self, path: &str, from: &str, to: &str) -> Self {
        let full = self.dir.path().join(path);
        let text = std::fs::read_to_string(&full).expect("read fixture");
        assert!(text.contains(from), "{path} does not contain {from:?}");
        std::fs::write(full, text.replacen(from, to, 1)).expect("write fixture");
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs druppie with `--spec <this repo>` and `args`, in this repo.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["--spec", self.path().to_str().expect("utf-8 temp path")];
        full.extend_from_slice(args);
        druppie(self.path(), &full)
    }
}

/// Runs the druppie binary in `cwd`, without colour.
pub fn druppie(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_druppie"))
        .args(args)
        .current_dir(cwd)
        .env_remove("DRUPPIE_LOG")
        .env("NO_COLOR", "1")
        // The forge token the Gitea tests' configs name.
        .env("DRUPPIE_IT_TOKEN", "it-token")
        .output()
        .expect("run druppie");
    let clean = |b: &[u8]| {
        let text = String::from_utf8_lossy(b).into_owned();
        text.replace(cwd.to_str().expect("utf-8"), "[ROOT]")
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: clean(&out.stdout),
        stderr: clean(&out.stderr),
    }
}

/// The root of this repository (the example spec repo).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Runs git in `dir` as a person (not druppie); panics with git's output
/// when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Person",
            "-c",
            "user.email=person@example.org",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The example spec of this repository (blocks, skills, templates, spec),
/// copied into a fixture.
pub fn example_spec() -> Fixture {
    let f = Fixture::empty();
    for dir in ["bouwblokken", "skills", "templates", "spec"] {
        copy_dir(&repo_root().join(dir), &f.path().join(dir));
    }
    f
}

/// A fresh ed25519 key for druppie, `dir/druppie_ed25519` (and `.pub`).
pub fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("druppie_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "druppie", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    key
}

/// The daemon's way to the remote spec repo at `url`: a clone of its
/// own in `cache/spec`, whose trail events it signs with the key at
/// `key` as `druppie <druppie@example.org>`.
pub fn remote_spec(url: &Path, cache: &Path, key: &Path) -> druppie::daemon::SpecSource {
    druppie::daemon::SpecSource::Remote {
        url: url.to_str().expect("utf-8").to_owned(),
        branch: "main".to_owned(),
        dir: cache.join("spec"),
        signer: std::sync::Arc::new(druppie::git::sign::Signer::load(key).expect("the key loads")),
        identity: druppie::git::write::Identity {
            name: "druppie".into(),
            email: "druppie@example.org".into(),
        },
        exact: std::sync::Arc::default(),
    }
}

/// An empty plain-git forge at `dir/forge`, druppie's signing key (and
/// `dir/allowed_signers` naming it), and `dir/druppie.toml` for them;
/// returns the config's path.
pub fn empty_forge_config(dir: &Path) -> PathBuf {
    let forge = dir.join("forge");
    std::fs::create_dir_all(&forge).expect("forge dir");
    let key = keygen(dir);
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    std::fs::write(
        dir.join("allowed_signers"),
        format!("druppie@example.org {public}"),
    )
    .expect("allowed signers");
    let config = dir.join("druppie.toml");
    std::fs::write(
        &config,
        format!(
            "[forge]\nkind = \"git\"\nbase = \"{}\"\n\n[repos]\ncache_dir = \"{}\"\n\n[signing]\nkey = \"{}\"\nname = \"druppie\"\nemail = \"druppie@example.org\"\n",
            forge.display(),
            dir.join("cache").display(),
            key.display(),
        ),
    )
    .expect("config");
    config
}

/// [`empty_forge_config`], and the spec of `f` committed as a git repo
/// (the audit trail lives there).
pub fn on_an_empty_forge(dir: &Path, f: &Fixture) -> PathBuf {
    let config = empty_forge_config(dir);
    git(f.path(), &["init", "-q"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-qm", "spec"]);
    config
}
