//! The command line: global flags, one module per subcommand. This is the
//! only part of the library that prints.

mod apply;
mod audit;
mod blocks;
mod catalog;
mod command_error;
mod completions;
mod diff;
mod man;
mod mcp;
mod output;
mod preview;
mod promote;
mod propose;
mod render;
mod render_check;
mod secrets;
mod serve;
mod skills;
mod status;
mod ui;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;

/// A GitOps reconciler driven by spec files.
///
/// Building blocks, stacks and plans declared in a spec repo are rendered
/// into project repos and an infra repo.
#[derive(Debug, Parser)]
#[command(
    name = "druppie",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DRUPPIE_COMMIT"), ")")
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// The spec repo checkout [default: `[spec] path` from the config, else `.`]
    #[arg(long, global = true, value_name = "DIR")]
    pub spec: Option<PathBuf>,
    /// Runtime configuration [default: `./druppie.toml` when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// When to colour output (`NO_COLOR` turns `auto` off)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Validate(validate::Args),
    Blocks(blocks::Args),
    Skills(skills::Args),
    Render(render::Args),
    Diff(diff::Args),
    Apply(apply::Args),
    Promote(promote::Args),
    Propose(propose::Args),
    Audit(audit::Args),
    Status(status::Args),
    Preview(preview::Args),
    Serve(serve::Args),
    Mcp(mcp::Args),
    Completions(completions::Args),
    Man(man::Args),
    #[command(hide = true)]
    RenderCheck(render_check::Args),
}

/// Which plans and environments a command covers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SelectArgs {
    /// Only this plan
    #[arg(long)]
    pub plan: Option<String>,
    /// Only this environment
    #[arg(long)]
    pub env: Option<String>,
    /// Only the plans of shard I of N (`--shard 0/4`): plans are split
    /// by a stable hash of their name, so N jobs with 0/N .. N-1/N
    /// together cover every plan once
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::spec::Shards>,
}

impl SelectArgs {
    pub fn options(&self) -> crate::compose::ComposeOptions {
        crate::compose::ComposeOptions {
            plan: self.plan.clone(),
            env: self.env.clone(),
            shards: self.shard.clone(),
        }
    }
}

/// Facts about the process that `main` reads and the library does not.
#[derive(Debug, Clone)]
pub struct Env {
    pub cwd: PathBuf,
    /// `NO_COLOR` is set to a non-empty value.
    pub no_color: bool,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    /// Reads an environment variable.
    pub var: fn(&str) -> Option<String>,
    /// Filled with every configured secret once the configuration is
    /// read; the log writer and everything the CLI prints scrub with it.
    pub scrubber: crate::secret::Scrubber,
}

impl Env {
    /// An environment variable; empty counts as unset.
    fn var(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|v| !v.is_empty())
    }
}

/// Exit codes: 0 success, 1 error, 2 changes pending (`diff`).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES: u8 = 2;
}

pub use command_error::{CommandError, CommandResult};
pub use ui::{Ui, scrub_panics};

/// Settings every subcommand shares, resolved from flags and config.
pub struct Context {
    pub config: Config,
    /// The config file read, absolute (`None`: none, the defaults).
    pub config_file: Option<PathBuf>,
    pub spec_root: PathBuf,
    /// The secrets the configuration names, from the environment.
    pub secrets: secrets::Secrets,
    /// Scrubs every one of them (and URL passwords) from text.
    pub scrubber: crate::secret::Scrubber,
}

impl Context {
    /// The same settings for the spec at `root`.
    pub fn with_spec(&self, root: &Path) -> Context {
        Context {
            config: self.config.clone(),
            config_file: self.config_file.clone(),
            spec_root: root.to_owned(),
            secrets: self.secrets.clone(),
            scrubber: self.scrubber.clone(),
        }
    }
}

/// Runs a command line: every subcommand returns its exit code or a
/// [`CommandError`], which is reported here, in one place.
pub fn run(cli: Cli, env: &Env) -> ExitCode {
    let color = |tty: bool| match cli.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => tty && !env.no_color,
    };
    let ui = Ui::new(
        color(env.stdout_tty),
        color(env.stderr_tty),
        env.scrubber.clone(),
    );
    dispatch(cli, env, &ui).unwrap_or_else(|e| e.report(&ui))
}

fn dispatch(cli: Cli, env: &Env, ui: &Ui) -> CommandResult {
    // Generated from the command line alone: no configuration to read.
    match &cli.command {
        Command::Completions(args) => return completions::run(ui, args),
        Command::Man(_) => return man::run(ui),
        _ => {}
    }
    let (config, config_file) = load_config(cli.global.config.as_deref(), env)?;
    let secrets = secrets::Secrets::read(&config, env);
    secrets.scrub_with(&config, &env.scrubber);
    let spec_root = match (&cli.global.spec, &config.spec.path) {
        (Some(dir), _) => dir.clone(),
        (None, Some(path)) => config.resolve(path),
        (None, None) => PathBuf::from("."),
    };
    let ctx = Context {
        config,
        config_file,
        spec_root,
        secrets,
        scrubber: env.scrubber.clone(),
    };
    match cli.command {
        Command::Validate(args) => validate::run(&ctx, ui, &args),
        Command::Blocks(args) => blocks::run(&ctx, ui, &args),
        Command::Skills(args) => skills::run(&ctx, ui, &args),
        Command::Render(args) => render::run(&ctx, ui, &args),
        Command::Diff(args) => diff::run(&ctx, ui, &args),
        Command::Apply(args) => apply::run(&ctx, ui, &args),
        Command::Promote(args) => promote::run(&ctx, ui, &args),
        Command::Propose(args) => propose::run(&ctx, ui, &args),
        Command::Audit(args) => audit::run(&ctx, ui, &args),
        Command::Status(args) => status::run(&ctx, ui, &args),
        Command::Preview(args) => preview::run(&ctx, ui, &args),
        Command::Mcp(args) => mcp::run(&ctx, &args),
        Command::Completions(args) => completions::run(ui, &args),
        Command::Man(_) => man::run(ui),
        Command::RenderCheck(args) => render_check::run(&ctx, ui, &args),
        Command::Serve(args) => {
            let environment = serve_environment(&ctx, env);
            serve::run(&ctx, &args, environment)
        }
    }
}

/// What the daemon reads from the environment: the webhook secret, the
/// cluster (in-cluster when `KUBERNETES_SERVICE_HOST` is set, else
/// `$KUBECONFIG` or `~/.kube/config` when it exists), and the pod's name
/// and namespace.
fn serve_environment(ctx: &Context, env: &Env) -> serve::Environment {
    let kubeconfig = env
        .var("KUBECONFIG")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".kube/config")))
        .filter(|p| p.is_file());
    let cluster = if env.var("KUBERNETES_SERVICE_HOST").is_some() {
        Some(crate::kube::Source::InCluster)
    } else {
        kubeconfig.map(crate::kube::Source::Kubeconfig)
    };
    serve::Environment {
        webhook: ctx.secrets.webhook.clone(),
        api_token: ctx.secrets.api_token.clone(),
        oidc_client_secret: ctx.secrets.oidc_client_secret.clone(),
        session_secret: ctx.secrets.session_secret.clone(),
        cluster,
        identity: env
            .var("POD_NAME")
            .or_else(|| env.var("HOSTNAME"))
            .unwrap_or_else(|| format!("druppie-{}", std::process::id())),
        namespace: env
            .var("POD_NAMESPACE")
            .unwrap_or_else(|| "default".to_owned()),
    }
}

/// Opens the spec (load → validate → select what `args` covers),
/// printing its warnings.
///
/// # Errors
/// What stopped it: unreadable, invalid, or a selection of nothing.
pub(crate) fn open(
    ctx: &Context,
    ui: &Ui,
    options: &crate::spec::LoadOptions,
    args: &SelectArgs,
) -> Result<crate::spec::Opened, CommandError> {
    let opened = crate::spec::open(&ctx.spec_root, options, &args.options())?;
    ui.diagnostics(&opened.valid.warnings);
    Ok(opened)
}

/// The commit of the spec checkout, when it is a git repository; locks
/// record it.
pub(crate) fn spec_commit(ctx: &Context) -> Option<String> {
    crate::git::head_commit(&ctx.spec_root).map(|c| c.to_string())
}

/// Opens the spec, then composes and renders what `args` selects.
///
/// # Errors
/// As [`open`], and every compose and render diagnostic.
pub(crate) fn render_spec(
    ctx: &Context,
    ui: &Ui,
    args: &SelectArgs,
) -> Result<crate::render::Desired, CommandError> {
    let opened = open(ctx, ui, &crate::spec::LoadOptions::default(), args)?;
    let started = std::time::Instant::now();
    let limits = ctx.config.render.limits();
    let resolved = crate::compose::compose(&opened.valid, &opened.selection, &limits)?;
    tracing::debug!(elapsed = ?started.elapsed(), "compose");
    let commit = spec_commit(ctx);
    Ok(crate::render::render(
        &opened.valid,
        &resolved,
        commit.as_deref(),
        &limits,
    )?)
}

/// The config file `--config` names, else `./druppie.toml` when it
/// exists. Its relative paths resolve against its own directory, made
/// absolute here: git runs in other directories (the cache), where a
/// relative `base = "forge"` would name something else.
fn load_config(
    flag: Option<&Path>,
    env: &Env,
) -> Result<(Config, Option<PathBuf>), Box<crate::spec::Diagnostic>> {
    let path = match flag {
        Some(path) => path,
        None if env.cwd.join("druppie.toml").is_file() => Path::new("druppie.toml"),
        None => return Ok((Config::default(), None)),
    };
    let mut config = Config::load(path)?;
    config.base_dir = env.cwd.join(&config.base_dir);
    Ok((config, Some(env.cwd.join(path))))
}
