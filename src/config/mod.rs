//! `druppie.toml`: the runtime configuration of a deployment (where repos
//! live, the forge, the signing key, the LLM). Every key is optional; a
//! missing file means "this checkout, plain git, nothing remote". Unknown
//! keys are errors, located at their line.
//!
//! The file names environment variables that hold secrets (`token_env`,
//! `webhook_secret_env`, `api_key_env`, a sink's `url_env`); it never
//! holds a secret itself.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::diag::{Diagnostic, Location};
use crate::spec::source::{Pos, SourceFile};

mod auth;
mod llm;
mod notify;

pub use auth::Auth;
pub use llm::{LLM_MAX_REQUESTS, LLM_MAX_ROUNDS, Llm, Span};
pub use notify::{Format as NotifyFormat, Kind as NotifyKind, MAX_BACKOFF, Notify};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub spec: SpecSource,
    pub forge: Forge,
    pub repos: Repos,
    pub signing: Signing,
    pub server: Server,
    pub render: Render,
    pub llm: Option<Llm>,
    pub mcp: Mcp,
    /// `[[notify]]`: where the daemon sends its events.
    pub notify: Vec<Notify>,
    /// Directory of the config file; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpecSource {
    /// A local checkout of the spec repo.
    pub path: Option<PathBuf>,
    /// A remote spec repo (cloned by the daemon).
    pub url: Option<String>,
    pub branch: String,
}

impl Default for SpecSource {
    fn default() -> Self {
        SpecSource {
            path: None,
            url: None,
            branch: "main".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// Plain git: a directory (or URL prefix) of bare repos.
    #[default]
    Git,
    Gitea,
    Github,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Forge {
    pub kind: ForgeKind,
    /// git: directory or URL prefix holding `<repo>.git`; gitea/github: API base URL.
    pub base: Option<String>,
    /// Org or user that owns project and infra repos.
    pub owner: Option<String>,
    /// gitea/github: where git fetches and pushes `<owner>/<repo>.git`
    /// when it is not the forge's web address (a mirror, or a directory).
    pub git_url: Option<String>,
    /// Name of the environment variable holding the forge token.
    pub token_env: String,
}

impl Default for Forge {
    fn default() -> Self {
        Forge {
            kind: ForgeKind::Git,
            base: None,
            owner: None,
            git_url: None,
            token_env: "DRUPPIE_FORGE_TOKEN".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Repos {
    /// Bare clones of target repos.
    pub cache_dir: PathBuf,
    /// A local directory holding one repo per target (`<name>` or `<name>.git`).
    pub dir: Option<PathBuf>,
    /// The infra repo's local path (default: `infra-example/` in the spec checkout).
    pub infra: Option<PathBuf>,
}

impl Default for Repos {
    fn default() -> Self {
        Repos {
            cache_dir: PathBuf::from(".druppie/cache"),
            dir: None,
            infra: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Signing {
    /// SSH ed25519 private key file.
    pub key: Option<PathBuf>,
    pub name: String,
    pub email: String,
    /// allowed_signers file used by `druppie audit --verify`.
    pub allowed_signers: Option<PathBuf>,
}

impl Default for Signing {
    fn default() -> Self {
        Signing {
            key: None,
            name: "druppie".into(),
            email: "druppie@example.org".into(),
            allowed_signers: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: String,
    pub webhook_secret_env: String,
    /// The variable holding the bearer token that write requests to the
    /// API (`POST /api/v1/promote`) must carry; without it they are
    /// refused.
    pub api_token_env: String,
    /// e.g. `60s`, `5m`.
    pub poll_interval: String,
    /// A request's head (request line and headers) must arrive in full
    /// within this, counted from when the server starts waiting for it:
    /// on a new connection and between requests on a kept-alive one.
    pub header_timeout: String,
    /// A connection on which no byte moves either way for this long is
    /// closed (a client that stopped reading an answer, for one).
    pub idle_timeout: String,
    /// A request must be answered within this, its body read included;
    /// an event stream, once answered, is not cut.
    pub request_timeout: String,
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// The first wait before a reconcile that failed for a passing reason
    /// (git, the forge, the network) is tried again; each further failure
    /// doubles it (with jitter) up to `retry_backoff_max`.
    pub retry_backoff: String,
    pub retry_backoff_max: String,
    /// Replicas split the plans into this many shards, each held by one
    /// replica through its own Lease (with a cluster); 1: one leader
    /// reconciles every plan.
    pub shards: u32,
    /// How long a replica's Lease (the leader's, or a shard's) holds
    /// after its last renewal; another replica takes it over only then.
    pub lease_duration: String,
    /// `[server.auth]`: sign-in with an OIDC issuer; without it every
    /// request sees every plan.
    pub auth: Option<Auth>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:8080".into(),
            webhook_secret_env: "DRUPPIE_WEBHOOK_SECRET".into(),
            api_token_env: "DRUPPIE_API_TOKEN".into(),
            poll_interval: "60s".into(),
            header_timeout: "10s".into(),
            idle_timeout: "60s".into(),
            request_timeout: "30s".into(),
            max_connections: 4096,
            retry_backoff: "1s".into(),
            retry_backoff_max: "5m".into(),
            shards: 1,
            lease_duration: "15s".into(),
            auth: None,
        }
    }
}

/// `[render]`: what rendering a spec may hold and produce
/// ([`crate::template::Limits`]); sizes are bytes or `64MiB`-style text.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Render {
    pub max_template_memory: ByteSize,
    pub max_file_bytes: ByteSize,
    pub max_instance_bytes: ByteSize,
    pub max_run_bytes: ByteSize,
    pub max_instance_files: usize,
    pub max_run_files: usize,
}

impl Default for Render {
    fn default() -> Self {
        let d = crate::template::Limits::default();
        Render {
            max_template_memory: ByteSize(d.template_memory),
            max_file_bytes: ByteSize(d.file_bytes),
            max_instance_bytes: ByteSize(d.instance_bytes),
            max_run_bytes: ByteSize(d.run_bytes),
            max_instance_files: d.instance_files,
            max_run_files: d.run_files,
        }
    }
}

impl Render {
    /// The limits these settings give.
    pub fn limits(&self) -> crate::template::Limits {
        crate::template::Limits {
            template_memory: self.max_template_memory.0,
            file_bytes: self.max_file_bytes.0,
            instance_bytes: self.max_instance_bytes.0,
            run_bytes: self.max_run_bytes.0,
            instance_files: self.max_instance_files,
            run_files: self.max_run_files,
        }
    }
}

/// A number of bytes, written as an integer (`4194304`) or with a unit
/// (`4MiB`, `512 KiB`, `1GiB`, `10MB`, `100B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl ByteSize {
    /// Parses `64MiB`, `64 MiB`, `1GB`, `100B` or `4096`.
    ///
    /// # Errors
    /// Why the text is not a size.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = (&text[..split], text[split..].trim());
        let bad = || {
            format!(
                "`{text}` is not a size: write bytes (`4194304`) or a number with one of B, KiB, MiB, GiB, KB, MB, GB (`4MiB`)"
            )
        };
        let n: usize = number.parse().map_err(|_| bad())?;
        let scale: usize = match unit {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(bad()),
        };
        n.checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size in bytes (`4194304`) or with a unit (`4MiB`)")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                usize::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{v} is not a size")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                usize::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0 as u64)
    }
}

/// `[mcp]`: the MCP server (`druppie mcp`, `/mcp` on the daemon).
/// Read-only unless a switch here turns a writing tool on.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Mcp {
    /// Offer the `propose` tool, which opens spec pull requests (it
    /// never writes to project or infra repos). Off by default.
    pub allow_propose: bool,
}

impl Config {
    /// Reads and checks a config file.
    ///
    /// # Errors
    /// A located diagnostic: unreadable file, TOML syntax, unknown key, wrong
    /// type, or an inconsistent setting.
    pub fn load(path: &Path) -> Result<Config, Box<Diagnostic>> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Box::new(Diagnostic::error(
                format!("cannot read config file: {e}"),
                Location::file(&shown),
            ))
        })?;
        let file = SourceFile {
            path: shown,
            disk_path: path.to_owned(),
            text,
            yaml_line_offset: 0,
        };
        let mut config: Config = toml::from_str(&file.text).map_err(|e| {
            let pos = e
                .span()
                .map(|s| Pos::at_offset(&file.text, s.start, s.len()))
                .unwrap_or_default();
            Box::new(Diagnostic::error(
                format!("invalid druppie.toml: {}", e.message().trim()),
                Location::new(&file, pos),
            ))
        })?;
        if config.spec.path.is_some() && config.spec.url.is_some() {
            let pos = find_key(&file.text, "url");
            return Err(Box::new(
                Diagnostic::error(
                    "[spec] sets both `path` and `url`",
                    Location::new(&file, pos),
                )
                .with_help(
                    "use `path` for a local checkout or `url` for a remote spec repo, not both",
                ),
            ));
        }
        if let Some((key, value, range)) = config.llm.as_ref().and_then(Llm::out_of_range) {
            return Err(Box::new(Diagnostic::error(
                format!("[llm] {key} is {value}: it must be {range}"),
                Location::new(&file, find_key_in(&file.text, "llm", key)),
            )));
        }
        if let Some((key, why)) = config.server.auth.as_ref().and_then(Auth::invalid) {
            return Err(Box::new(Diagnostic::error(
                format!("[server.auth] {key}: {why}"),
                Location::new(&file, find_key_in(&file.text, "server.auth", key)),
            )));
        }
        if let Some(wrong) = notify::check(&config.notify) {
            return Err(Box::new(Diagnostic::error(
                wrong.message,
                Location::new(&file, notify::locate(&file.text, wrong.index, wrong.key)),
            )));
        }
        config.base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
        Ok(config)
    }

    /// `path` resolved against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// Line and column (1-based, in characters) of byte `offset` in `text`.
fn find_key(text: &str, key: &str) -> Pos {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map(|i| Pos {
            line: i as u32 + 1,
            col: 1,
            len: key.len() as u32,
        })
        .unwrap_or_default()
}

/// Where `key` is set in the table `[table]` (its first line there).
fn find_key_in(text: &str, table: &str, key: &str) -> Pos {
    let header = format!("[{table}]");
    let start = text
        .lines()
        .position(|l| l.trim() == header)
        .unwrap_or_default();
    text.lines()
        .enumerate()
        .skip(start)
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| Pos {
            line: i as u32 + 1,
            col: 1,
            len: key.len() as u32,
        })
        .unwrap_or_default()
}

/// `text` loaded as a druppie.toml file, for tests of its sections.
#[cfg(test)]
pub(crate) fn load_text(text: &str) -> Result<Config, Box<Diagnostic>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("druppie.toml");
    std::fs::write(&path, text).expect("write");
    Config::load(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("druppie.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn every_key_is_optional() {
        let (_d, p) = write("");
        let c = Config::load(&p).expect("empty config is valid");
        assert_eq!(c.forge.kind, ForgeKind::Git);
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.server.header_timeout, "10s");
        assert_eq!(c.server.max_connections, 4096);
    }

    #[test]
    fn server_limits_are_read_and_unknown_server_keys_are_located() {
        let (_d, p) = write(
            "[server]\nheader_timeout = \"2s\"\nidle_timeout = \"30s\"\nrequest_timeout = \"5s\"\nmax_connections = 64\n",
        );
        let c = Config::load(&p).expect("valid");
        assert_eq!(c.server.header_timeout, "2s");
        assert_eq!(c.server.max_connections, 64);
        let (_d, p) = write("[server]\nheader_timout = \"2s\"\n");
        let d = Config::load(&p).expect_err("unknown key");
        assert_eq!(d.location.pos.line, 2);
        assert!(d.message.contains("header_timout"), "{}", d.message);
    }

    #[test]
    fn mcp_is_read_only_unless_propose_is_allowed() {
        let (_d, p) = write("");
        assert!(!Config::load(&p).expect("valid").mcp.allow_propose);
        let (_d, p) = write("[mcp]\nallow_propose = true\n");
        assert!(Config::load(&p).expect("valid").mcp.allow_propose);
        let (_d, p) = write("[mcp]\nallow_apply = true\n");
        let d = Config::load(&p).expect_err("unknown key");
        assert_eq!(d.location.pos.line, 2);
    }

    #[test]
    fn design_example_parses() {
        let (_d, p) = write(
            "[spec]\npath = \".\"\nbranch = \"main\"\n[forge]\nkind = \"gitea\"\nbase = \"https://git.example.org\"\nowner = \"platform\"\ntoken_env = \"T\"\n[repos]\ncache_dir = \".druppie/cache\"\n[signing]\nkey = \"keys/k\"\nname = \"druppie\"\nemail = \"d@example.org\"\n[server]\nlisten = \"0.0.0.0:8080\"\nwebhook_secret_env = \"W\"\npoll_interval = \"60s\"\n[llm]\nbase_url = \"http://127.0.0.1:11434/v1\"\nmodel = \"qwen2.5\"\napi_key_env = \"K\"\n",
        );
        let c = Config::load(&p).expect("valid");
        assert_eq!(c.forge.kind, ForgeKind::Gitea);
        assert_eq!(c.llm.expect("llm set").model, "qwen2.5");
    }

    #[test]
    fn unknown_key_is_located() {
        let (_d, p) = write("[forge]\nkind = \"git\"\ntokn_env = \"X\"\n");
        let d = Config::load(&p).expect_err("unknown key");
        assert_eq!((d.location.pos.line, d.location.pos.col), (3, 1));
        assert!(d.message.contains("tokn_env"), "{}", d.message);
    }

    #[test]
    fn render_limits_take_sizes_with_units_or_bytes_and_bad_ones_are_located() {
        let (_d, p) = write(
            "[render]\nmax_template_memory = \"128MiB\"\nmax_file_bytes = 1000\nmax_run_bytes = \"1 GiB\"\nmax_run_files = 7\n",
        );
        let limits = Config::load(&p).expect("valid").render.limits();
        assert_eq!(limits.template_memory, 128 << 20);
        assert_eq!(limits.file_bytes, 1000);
        assert_eq!(limits.run_bytes, 1 << 30);
        assert_eq!(limits.run_files, 7);
        assert_eq!(
            limits.instance_bytes,
            crate::template::Limits::default().instance_bytes
        );
        let (_d, p) = write("[render]\nmax_file_bytes = 1\nmax_run_bytes = \"64 lots\"\n");
        let d = Config::load(&p).expect_err("not a size");
        assert_eq!((d.location.pos.line, d.location.pos.col), (3, 17));
        assert!(
            d.message.contains("`64 lots` is not a size"),
            "{}",
            d.message
        );
        let (_d, p) = write("[render]\nmax_memory = \"1MiB\"\n");
        let d = Config::load(&p).expect_err("unknown key");
        assert_eq!(d.location.pos.line, 2);
    }

    #[test]
    fn llm_limits_have_defaults_and_bad_ones_are_located() {
        let (_d, p) = write("[llm]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n");
        let llm = Config::load(&p).expect("valid").llm.expect("set");
        assert_eq!(llm.timeout, Span(std::time::Duration::from_secs(60)));
        assert_eq!(
            (llm.max_tokens, llm.repair_rounds, llm.max_requests),
            (4096, 2, 16)
        );
        assert_eq!(llm.token_budget, 100_000);
        let (_d, p) = write(
            "[llm]\nbase_url = \"http://x/v1\"\nmodel = \"m\"\ntimeout = \"90s\"\nmax_tokens = 512\ntoken_budget = 9000\nrepair_rounds = 0\nmax_requests = 3\n",
        );
        let llm = Config::load(&p).expect("valid").llm.expect("set");
        assert_eq!(llm.timeout.0, std::time::Duration::from_secs(90));
        assert_eq!((llm.max_tokens, llm.token_budget), (512, 9000));
        assert_eq!((llm.repair_rounds, llm.max_requests), (0, 3));
        let (_d, p) =
            write("[llm]\nbase_url = \"http://x/v1\"\nmodel = \"m\"\ntimeout = \"soon\"\n");
        let d = Config::load(&p).expect_err("not a span");
        assert_eq!((d.location.pos.line, d.location.pos.col), (4, 11));
        assert!(
            d.message.contains("`soon` is not a duration"),
            "{}",
            d.message
        );
        let (_d, p) = write(
            "[server]\nmax_requests = 1\n[llm]\nbase_url = \"http://x/v1\"\nmodel = \"m\"\nrepair_rounds = 50\n",
        );
        let d = Config::load(&p).expect_err("unknown server key");
        assert_eq!(d.location.pos.line, 2);
        let (_d, p) =
            write("[llm]\nbase_url = \"http://x/v1\"\nmodel = \"m\"\nrepair_rounds = 50\n");
        let d = Config::load(&p).expect_err("too many rounds");
        assert_eq!(d.location.pos.line, 4);
        assert!(
            d.message
                .contains("repair_rounds is 50: it must be from 0 to 10"),
            "{}",
            d.message
        );
        let (_d, p) = write("[llm]\nbase_url = \"http://x/v1\"\nmodel = \"m\"\nmax_tokens = 0\n");
        let d = Config::load(&p).expect_err("no tokens");
        assert_eq!(d.location.pos.line, 4);
    }

    #[test]
    fn path_and_url_conflict() {
        let (_d, p) = write("[spec]\npath = \".\"\nurl = \"https://x/y.git\"\n");
        let d = Config::load(&p).expect_err("conflict");
        assert_eq!(d.location.pos.line, 3);
    }
}
