//! Rules for names: DNS-1123 labels, block ids, versions, and the small
//! `{{ plan }}`-style patterns of `spec/platform.yaml`.

/// Why a name is not a DNS-1123 label, or `None` when it is one.
pub fn dns_label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > 63 {
        return Some("is longer than 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("may hold only lowercase letters, digits and `-`");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("must start and end with a letter or digit");
    }
    None
}

/// Why a block or skill id is invalid, or `None`.
pub fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return Some("is empty");
    }
    if id.len() > 63 {
        return Some("is longer than 63 characters");
    }
    let first = id.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Some("must start with a lowercase letter or digit");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Some("may hold only lowercase letters, digits, `-`, `_` and `.`");
    }
    None
}

/// Why a version is not semver, or `None`.
pub fn semver_problem(version: &str) -> Option<String> {
    semver::Version::parse(version)
        .err()
        .map(|e| format!("is not a semantic version (MAJOR.MINOR.PATCH): {e}"))
}

/// Expands a name pattern such as `{{ plan }}-{{ component }}`: each
/// `{{ name }}` is replaced by the value `lookup` gives for it.
///
/// # Errors
/// The name of an unknown variable, or a description of a malformed
/// placeholder.
pub fn expand_pattern<'a>(
    pattern: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "`{{` without a closing `}}`".to_owned())?;
        let name = after[..end].trim();
        let value = lookup(name).ok_or_else(|| format!("unknown variable `{name}`"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A project repo name from the platform's naming pattern.
///
/// # Errors
/// The pattern uses a variable other than `plan` and `component`.
pub fn repo_name(pattern: &str, plan: &str, component: &str) -> Result<String, String> {
    expand_pattern(pattern, |v| match v {
        "plan" => Some(plan),
        "component" => Some(component),
        _ => None,
    })
}

/// A namespace from an environment's namespace pattern.
///
/// # Errors
/// The pattern uses a variable other than `plan` and `env`.
pub fn namespace(pattern: &str, plan: &str, env: &str) -> Result<String, String> {
    expand_pattern(pattern, |v| match v {
        "plan" => Some(plan),
        "env" => Some(env),
        _ => None,
    })
}

/// Why a repo-relative directory path is unsafe, or `None`.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("is empty");
    }
    if path.starts_with('/') {
        return Some("must be relative to the repo root");
    }
    if path.contains(['\\', '\0']) {
        return Some("may not hold a backslash or NUL");
    }
    for seg in path.trim_end_matches('/').split('/') {
        match seg {
            "" => return Some("has an empty segment (`//`)"),
            "." | ".." => return Some("may not hold `.` or `..` segments"),
            s if s.eq_ignore_ascii_case(".git") => return Some("may not enter `.git`"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label_problem("permits-dev"), None);
        assert_eq!(dns_label_problem("a"), None);
        assert!(dns_label_problem("Permits").is_some());
        assert!(dns_label_problem("-x").is_some());
        assert!(dns_label_problem("x_y").is_some());
        assert!(dns_label_problem(&"a".repeat(64)).is_some());
        assert!(dns_label_problem("").is_some());
    }

    #[test]
    fn ids_allow_catalog_style() {
        assert_eq!(id_problem("ai_image-sdxl.v2"), None);
        assert!(id_problem("_x").is_some());
        assert!(id_problem("A").is_some());
        assert!(id_problem("a/b").is_some());
    }

    #[test]
    fn semver() {
        assert!(semver_problem("1.2.0").is_none());
        assert!(semver_problem("1.2").is_some());
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
            Err("unknown variable `tenant`".to_owned())
        );
        assert!(expand_pattern("{{ plan", look).is_err());
    }

    #[test]
    fn infra_paths() {
        assert_eq!(path_problem("apps/dev"), None);
        assert_eq!(path_problem("apps/dev/"), None);
        assert!(path_problem("../x").is_some());
        assert!(path_problem("/abs").is_some());
        assert!(path_problem("a//b").is_some());
        assert!(path_problem("a/.GIT/b").is_some());
    }
}
