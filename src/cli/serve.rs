//! `druppie serve`: the daemon, reconciling on webhooks, polls and file
//! edits, with an HTTP API.

use super::secrets::Var;
use super::{CommandError, CommandResult, Context, command_error::ok};
use crate::apply::Cache;
use crate::daemon::{Options, Reconciler, RenderCheck, SpecSource};

/// Run as a daemon: reconcile the spec repo on every push (webhooks),
/// every poll interval and, for a local checkout, every saved spec file;
/// serve the HTTP API (`/healthz`, `/readyz`, `/metrics`, `/api/v1/…`)
/// and the webhooks (`/webhooks/gitea`, `/webhooks/github`). Logs are
/// JSON lines on stderr. Stops cleanly on SIGTERM.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: `[server] listen`]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// What `serve` takes from the process environment, resolved by `main`.
pub struct Environment {
    /// The variable `[server] webhook_secret_env` names.
    pub webhook: Var,
    /// The variable `[server] api_token_env` names.
    pub api_token: Var,
    /// The variables `[server.auth] client_secret_env` and
    /// `session_secret_env` name.
    pub oidc_client_secret: Var,
    pub session_secret: Var,
    pub cluster: Option<crate::kube::Source>,
    /// Pod name and namespace (the downward API), for the leader Lease.
    pub identity: String,
    pub namespace: String,
}

/// The render check runs this very binary with this config. Without a
/// path to the binary (an unusual platform) the daemon does not start:
/// it never renders a spec that no child rendered first.
fn render_check(ctx: &Context) -> Result<RenderCheck, CommandError> {
    let program = std::env::current_exe().map_err(|e| {
        CommandError::user(format!(
            "serve renders every spec revision in a child process first and cannot find its own binary: {e}"
        ))
    })?;
    let mut args = Vec::new();
    if let Some(config) = &ctx.config_file {
        args.push("--config".into());
        args.push(config.clone().into_os_string());
    }
    Ok(RenderCheck::new(
        program,
        args,
        std::time::Duration::from_secs(120),
    ))
}

/// Every `[[notify]]` sink with its URL. A sink whose variable is unset
/// or empty stops the start: notifications off by accident would go
/// unnoticed.
fn sinks(ctx: &Context) -> Result<Vec<crate::daemon::notify::Sink>, CommandError> {
    let settings = ctx.config.notify.iter();
    settings
        .zip(&ctx.secrets.notify)
        .map(|(settings, var)| {
            let Some(url) = var.secret() else {
                return Err(CommandError::hinted(
                    format!(
                        "[[notify]] `{}`: the variable {} is not set or empty",
                        settings.name, settings.url_env
                    ),
                    "set it to the sink's URL (a Slack or Teams incoming webhook, or a CloudEvents receiver), or remove the sink",
                ));
            };
            crate::daemon::notify::Sink::new(settings.clone(), url.clone())
                .map_err(CommandError::failed)
        })
        .collect()
}

pub fn run(ctx: &Context, args: &Args, env: Environment) -> CommandResult {
    crate::daemon::memory::no_huge_pages();
    let config = &ctx.config;
    let poll = crate::daemon::parse_duration(&config.server.poll_interval)
        .map_err(|e| CommandError::user(format!("[server] poll_interval: {e}")))?;
    let retry = |key: &str, text: &str| {
        crate::daemon::parse_duration(text)
            .map_err(|e| CommandError::user(format!("[server] {key}: {e}")))
    };
    let retry = (
        retry("retry_backoff", &config.server.retry_backoff)?,
        retry("retry_backoff_max", &config.server.retry_backoff_max)?,
    );
    let election = crate::daemon::Election {
        shards: match config.server.shards {
            n @ 1..=crate::daemon::MAX_SHARDS => n,
            n => {
                return Err(CommandError::user(format!(
                    "[server] shards: {n} is not between 1 and {}",
                    crate::daemon::MAX_SHARDS
                )));
            }
        },
        lease: crate::daemon::parse_duration(&config.server.lease_duration)
            .map_err(|e| CommandError::user(format!("[server] lease_duration: {e}")))?,
    };
    let webhook_secret = match env.webhook {
        Var::Set(secret) => Some(secret),
        Var::Unset => None,
        // Authentication off by accident is worse than not starting.
        Var::Empty { name } => {
            return Err(CommandError::hinted(
                format!(
                    "the variable {name} (named by `[server] webhook_secret_env`) is set but empty"
                ),
                "set it to the webhook secret, or unset it to accept unsigned webhooks",
            ));
        }
    };
    let api_token = match env.api_token {
        Var::Set(token) => Some(token),
        Var::Unset => None,
        Var::Empty { name } => {
            return Err(CommandError::hinted(
                format!("the variable {name} (named by `[server] api_token_env`) is set but empty"),
                "set it to the token write requests to the API carry, or unset it to refuse them all",
            ));
        }
    };
    let auth = match &config.server.auth {
        Some(auth) => Some(auth_settings(
            auth,
            env.oidc_client_secret,
            env.session_secret,
        )?),
        None => None,
    };
    let notify = sinks(ctx)?;
    let server =
        crate::daemon::Limits::from_config(&config.server).map_err(CommandError::failed)?;
    let forge = super::apply::forge(ctx).map_err(CommandError::failed)?;
    let signer = super::apply::signer(config)?;
    let identity = super::apply::identity(config);
    let cache_dir = config.resolve(&config.repos.cache_dir);
    let source = match &config.spec.url {
        Some(url) => SpecSource::Remote {
            url: url.clone(),
            branch: config.spec.branch.clone(),
            dir: cache_dir.join("spec"),
            signer: std::sync::Arc::new(signer.clone()),
            identity: identity.clone(),
            exact: std::sync::Arc::default(),
        },
        None => SpecSource::Local(ctx.spec_root.clone()),
    };
    let reconciler = Reconciler {
        source,
        cache: Cache::new(&cache_dir, forge.git_env())
            .waiting(crate::apply::LOCK_WAIT, "druppie serve"),
        forge,
        signer,
        identity,
        cluster: None,
        check: Some(render_check(ctx)?),
        checked: Default::default(),
        last: Default::default(),
        limits: config.render.limits(),
    };
    let options = Options {
        listen: args
            .listen
            .clone()
            .unwrap_or_else(|| config.server.listen.clone()),
        poll,
        retry,
        limits: server,
        scrubber: ctx.scrubber.clone(),
        webhook_secret,
        api_token,
        cluster: env.cluster,
        identity: env.identity,
        namespace: env.namespace,
        election,
        mcp: (&config.mcp).into(),
        allowed_signers: match &config.signing.allowed_signers {
            Some(path) => Some(
                crate::git::sign::AllowedSigners::from_file(&config.resolve(path))
                    .map_err(CommandError::failed)?,
            ),
            None => None,
        },
        chat: crate::daemon::ChatSettings {
            config: config.clone(),
            forge_token: ctx.secrets.forge_token.secret().cloned(),
            llm_key: ctx.secrets.llm_key.secret().cloned(),
        },
        auth,
        notify,
    };
    crate::daemon::serve(reconciler, options).map_err(CommandError::failed)?;
    ok()
}

/// `[server.auth]` with its secrets. An empty variable, or a session key
/// shorter than 32 characters, stops the daemon: a mistake, not a choice.
fn auth_settings(
    auth: &crate::config::Auth,
    client_secret: Var,
    session_secret: Var,
) -> Result<crate::daemon::auth::Settings, CommandError> {
    let empty = |name: String, key: &str| {
        CommandError::hinted(
            format!("the variable {name} (named by `[server.auth] {key}`) is set but empty"),
            "set it, or unset it",
        )
    };
    let client_secret = match client_secret {
        Var::Set(s) => Some(s),
        Var::Unset => None,
        Var::Empty { name } => return Err(empty(name, "client_secret_env")),
    };
    let session_secret = match session_secret {
        Var::Set(s) if s.expose().chars().count() < 32 => {
            return Err(CommandError::hinted(
                format!(
                    "the variable {} (named by `[server.auth] session_secret_env`) holds fewer than 32 characters",
                    auth.session_secret_env
                ),
                "make one with `openssl rand -hex 32`",
            ));
        }
        Var::Set(s) => Some(s),
        Var::Unset => None,
        Var::Empty { name } => return Err(empty(name, "session_secret_env")),
    };
    Ok(crate::daemon::auth::Settings::new(
        auth,
        client_secret,
        session_secret,
    ))
}
