//! Rules for every name that becomes a path, a ref or a URL segment, and
//! the one place where such names are computed.
//!
//! `validate` checks names with these rules; compose, render, diff and
//! apply compute the names a validated spec produces with the functions
//! here ([`project_repo`], [`namespace`], [`infra_dir`], [`plan_dir`],
//! [`flux_dir`], [`flux_plan_dir`], [`flux_name`]), so
//! no later stage makes a name validation has not seen.
//!
//! | name | rule |
//! |---|---|
//! | plan, stack, component, environment | DNS-1123 label ([`dns_label`]) |
//! | block and skill id | [`id`]: `[a-z0-9][a-z0-9._-]*`, at most 63 |
//! | infra and project repo | [`repo`]: what Gitea and GitHub both accept, minus their special names |
//! | default branch | [`branch`]: `git check-ref-format --branch`, minus `druppie/…` and `@` |
//! | environment path, rendered path | [`paths::repo_path`]: relative, every segment passes git's own check with NTFS, HFS and Windows protection |

pub mod paths;

pub use paths::{PathError, nested, repo_path};

/// Why a name is refused. The message completes "name `x` …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("may hold only {allowed}")]
    Chars { allowed: &'static str },
    #[error("must start and end with a letter or digit")]
    Edges,
    #[error("must start with {what}")]
    Start { what: &'static str },
    #[error("holds `..`")]
    DoubleDot,
    #[error("ends with `{suffix}`, which forges reserve (`<repo>{suffix}` names another resource)")]
    ReservedSuffix { suffix: &'static str },
    #[error("is reserved: {why}")]
    Reserved { why: &'static str },
    #[error("is not a valid git branch name: {why}")]
    Branch { why: String },
    #[error("is not a semantic version (MAJOR.MINOR.PATCH): {why}")]
    Semver { why: String },
}

/// Why a name pattern (`{{ plan }}-{{ component }}`) cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("`{{{{` without a closing `}}}}`")]
    Unclosed,
    #[error("unknown variable `{name}`")]
    UnknownVariable { name: String },
}

/// The longest repo name Gitea and GitHub accept.
pub const MAX_REPO_NAME: usize = 100;

/// Checks a DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63
/// characters (plans, stacks, components, environments, namespaces).
///
/// # Errors
/// What is wrong with `name`.
pub fn dns_label(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 63 {
        return Err(NameError::TooLong { max: 63 });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(NameError::Chars {
            allowed: "lowercase letters, digits and `-`",
        });
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameError::Edges);
    }
    Ok(())
}

/// Checks a block or skill id: `[a-z0-9][a-z0-9._-]*`, at most 63
/// characters, without `..` (a block id names `templates/<id>/`, one
/// plain path segment).
///
/// # Errors
/// What is wrong with `id`.
pub fn id(id: &str) -> Result<(), NameError> {
    if id.is_empty() {
        return Err(NameError::Empty);
    }
    if id.len() > 63 {
        return Err(NameError::TooLong { max: 63 });
    }
    let first = id.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(NameError::Start {
            what: "a lowercase letter or digit",
        });
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(NameError::Chars {
            allowed: "lowercase letters, digits, `-`, `_` and `.`",
        });
    }
    if id.contains("..") {
        return Err(NameError::DoubleDot);
    }
    paths::component(id).map_err(|_| NameError::Reserved {
        why: "git or a filesystem gives it a meaning of its own",
    })?;
    Ok(())
}

/// Checks a semantic version.
///
/// # Errors
/// [`NameError::Semver`] with the parser's reason.
pub fn semver(version: &str) -> Result<(), NameError> {
    semver::Version::parse(version)
        .map(|_| ())
        .map_err(|e| NameError::Semver { why: e.to_string() })
}

/// Checks a repo name (the infra repo, every project repo) against what
/// Gitea and GitHub both accept, and what neither treats specially:
/// `[A-Za-z0-9._-]`, at most 100 characters, not starting with `.` or
/// `-` (`.github` and `.profile` are special repos, `-x` reads as an
/// option), no `..`, and no `.git`, `.wiki`, `.rss` or `.atom` suffix in
/// any case (Gitea reserves them; `<repo>.wiki` is GitHub's wiki repo).
///
/// # Errors
/// What is wrong with `name`.
pub fn repo(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_REPO_NAME {
        return Err(NameError::TooLong { max: MAX_REPO_NAME });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(NameError::Chars {
            allowed: "ASCII letters, digits, `.`, `_` and `-`",
        });
    }
    if name.starts_with(['.', '-']) {
        return Err(NameError::Start {
            what: "a letter, digit or `_`",
        });
    }
    if name.contains("..") {
        return Err(NameError::DoubleDot);
    }
    let lower = name.to_ascii_lowercase();
    for suffix in [".git", ".wiki", ".rss", ".atom"] {
        if lower.ends_with(suffix) {
            return Err(NameError::ReservedSuffix { suffix });
        }
    }
    Ok(())
}

/// Checks a default branch name: what `git check-ref-format --branch`
/// accepts (no leading `-`, no `..`, `@{`, `//`, control characters,
/// spaces or any of `~^:?*[\`, no segment starting with `.` or ending in
/// `.lock`, not `HEAD`), except `@` alone (git's shorthand for `HEAD` in
/// revisions) and names under `druppie/` (druppie's proposal branches).
///
/// # Errors
/// [`NameError::Branch`] saying why.
pub fn branch(name: &str) -> Result<(), NameError> {
    let refuse = |why: &str| {
        Err(NameError::Branch {
            why: why.to_owned(),
        })
    };
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.starts_with('-') {
        return refuse("it starts with `-` (git would read it as an option)");
    }
    if name == "HEAD" || name == "@" {
        return refuse("git reads it as `HEAD`");
    }
    if name.starts_with("druppie/") {
        return Err(NameError::Reserved {
            why: "`druppie/…` branches are druppie's proposals",
        });
    }
    let full = format!("refs/heads/{name}");
    match gix::validate::reference::branch_name(full.as_bytes().into()) {
        Ok(_) => Ok(()),
        Err(e) => refuse(&ref_reason(&e)),
    }
}

fn ref_reason(e: &gix::validate::reference::name::Error) -> String {
    use gix::validate::reference::name::Error as E;
    match e {
        E::InvalidByte { byte } => format!("it holds {byte:?}"),
        E::StartsWithSlash | E::EndsWithSlash => "it starts or ends with `/`".into(),
        E::RepeatedSlash => "it holds `//`".into(),
        E::RepeatedDot => "it holds `..`".into(),
        E::LockFileSuffix => "a segment ends with `.lock`".into(),
        E::ReflogPortion => "it holds `@{`".into(),
        E::Asterisk => "it holds `*`".into(),
        E::StartsWithDot => "a segment starts with `.`".into(),
        E::EndsWithDot => "it ends with `.`".into(),
        E::Empty => "it is empty".into(),
        other => other.to_string(),
    }
}

/// Expands a name pattern such as `{{ plan }}-{{ component }}`: each
/// `{{ name }}` is replaced by the value `lookup` gives for it.
///
/// # Errors
/// An unknown variable, or a `{{` without `}}`.
pub fn expand_pattern<'a>(
    pattern: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, PatternError> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(start) = find_pair(rest, b'{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = find_pair(after, b'}').ok_or(PatternError::Unclosed)?;
        let name = after[..end].trim();
        let value = lookup(name).ok_or_else(|| PatternError::UnknownVariable {
            name: name.to_owned(),
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where `{{` (`byte` `{`) or `}}` first starts in `text`. A byte loop:
/// `str::find` with a two-byte needle sets up a two-way search on every
/// call, which cost more than the search itself on names this short
/// (every plan's repo and namespace, each validation).
fn find_pair(text: &str, byte: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(1)).find(|&i| bytes[i] == byte && bytes[i + 1] == byte)
}

/// A project repo name from the platform's naming pattern.
///
/// # Errors
/// The pattern uses a variable other than `plan` and `component`.
pub fn project_repo(pattern: &str, plan: &str, component: &str) -> Result<String, PatternError> {
    expand_pattern(pattern, |v| match v {
        "plan" => Some(plan),
        "component" => Some(component),
        _ => None,
    })
}

/// The image a project repo's CI publishes, from the platform's
/// `projects.image` pattern.
///
/// # Errors
/// The pattern uses a variable other than `owner`, `plan`, `component`
/// and `repo`.
pub fn project_image(
    pattern: &str,
    owner: &str,
    plan: &str,
    component: &str,
    repo: &str,
) -> Result<String, PatternError> {
    expand_pattern(pattern, |v| match v {
        "owner" => Some(owner),
        "plan" => Some(plan),
        "component" => Some(component),
        "repo" => Some(repo),
        _ => None,
    })
}

/// A namespace from an environment's namespace pattern.
///
/// # Errors
/// The pattern uses a variable other than `plan` and `env`.
pub fn namespace(pattern: &str, plan: &str, env: &str) -> Result<String, PatternError> {
    expand_pattern(pattern, |v| match v {
        "plan" => Some(plan),
        "env" => Some(env),
        _ => None,
    })
}

/// An environment's directory in the infra repo: its `path` without a
/// trailing `/`.
pub fn infra_dir(env_path: &str) -> &str {
    env_path.trim_end_matches('/')
}

/// A plan's directory in one environment of the infra repo:
/// `<env path>/<plan>`.
pub fn plan_dir(env_path: &str, plan: &str) -> String {
    format!("{}/{plan}", infra_dir(env_path))
}

/// druppie's Flux directory of one environment in the infra repo:
/// `clusters/<env>/druppie`. It holds one directory per plan (its Flux
/// `Kustomization`) and the `kustomization.yaml` listing them, which the
/// cluster's own Flux configuration includes with one line.
pub fn flux_dir(env: &str) -> String {
    format!("clusters/{env}/druppie")
}

/// A plan's Flux directory in one environment of the infra repo:
/// `clusters/<env>/druppie/<plan>`.
pub fn flux_plan_dir(env: &str, plan: &str) -> String {
    format!("{}/{plan}", flux_dir(env))
}

/// The name of a plan's Flux `Kustomization` in one environment:
/// `<plan>-<env>`. Flux labels every object it applies with it, so it
/// must be a label value (at most 63 characters).
pub fn flux_name(plan: &str, env: &str) -> String {
    format!("{plan}-{env}")
}

/// A component's directory in the infra repo:
/// `<env path>/<plan>/<component>`.
pub fn component_dir(env_path: &str, plan: &str, component: &str) -> String {
    format!("{}/{component}", plan_dir(env_path, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label("permits-dev"), Ok(()));
        assert_eq!(dns_label("a"), Ok(()));
        assert!(dns_label("Permits").is_err());
        assert_eq!(dns_label("-x"), Err(NameError::Edges));
        assert!(dns_label("x_y").is_err());
        assert_eq!(
            dns_label(&"a".repeat(64)),
            Err(NameError::TooLong { max: 63 })
        );
        assert_eq!(dns_label(""), Err(NameError::Empty));
    }

    #[test]
    fn ids_allow_catalog_style_and_stay_one_segment() {
        assert_eq!(id("ai_image-sdxl.v2"), Ok(()));
        assert!(id("_x").is_err());
        assert!(id("A").is_err());
        assert!(id("a/b").is_err());
        assert_eq!(id("a..b"), Err(NameError::DoubleDot));
        assert!(id("x.").is_err(), "a trailing dot is dropped by Windows");
    }

    #[test]
    fn semver_versions() {
        assert_eq!(semver("1.2.0"), Ok(()));
        assert!(matches!(semver("1.2"), Err(NameError::Semver { .. })));
    }

    #[test]
    fn repo_names_follow_the_forges() {
        for ok in [
            "infra",
            "Infra_2",
            "permits-app",
            "a.b",
            "x",
            &"a".repeat(100),
        ] {
            assert_eq!(repo(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../../X",
            "a/b",
            "a b",
            "-x",
            ".github",
            "a..b",
            "x.git",
            "x.GIT",
            "x.wiki",
            "x.rss",
            "x.atom",
            "é",
            "a%2fb",
            "a\0",
            &"a".repeat(101),
        ] {
            assert!(repo(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn branches_refuse_options_ranges_and_druppie_branches() {
        assert_eq!(branch("main"), Ok(()));
        assert_eq!(branch("release/1.x"), Ok(()));
        for bad in ["--upload-pack=x", "../x", "@", "HEAD", "druppie/x", "a@{1}"] {
            assert!(branch(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn patterns() {
        let look = |n: &str| match n {
            "plan" => Some("permits"),
            "component" => Some("db"),
            _ => None,
        };
        assert_eq!(
            expand_pattern("{{ plan }}-{{component}}", look).as_deref(),
            Ok("permits-db")
        );
        assert_eq!(
            expand_pattern("{{ tenant }}", look),
            Err(PatternError::UnknownVariable {
                name: "tenant".into()
            })
        );
        assert_eq!(expand_pattern("{{ plan", look), Err(PatternError::Unclosed));
    }

    proptest::proptest! {
        /// The byte loop finds `{{` and `}}` where `str::find` does, in
        /// text with braces, multi-byte characters and neither.
        #[test]
        fn pairs_are_found_where_str_find_finds_them(text in "[{}a é€-]{0,12}") {
            proptest::prop_assert_eq!(find_pair(&text, b'{'), text.find("{{"));
            proptest::prop_assert_eq!(find_pair(&text, b'}'), text.find("}}"));
        }
    }

    #[test]
    fn directories_are_made_in_one_place() {
        assert_eq!(infra_dir("apps/dev/"), "apps/dev");
        assert_eq!(plan_dir("apps/dev/", "permits"), "apps/dev/permits");
        assert_eq!(component_dir("apps/dev", "p", "db"), "apps/dev/p/db");
        assert_eq!(flux_dir("dev"), "clusters/dev/druppie");
        assert_eq!(flux_plan_dir("dev", "p"), "clusters/dev/druppie/p");
        assert_eq!(flux_name("p", "dev"), "p-dev");
    }
}
