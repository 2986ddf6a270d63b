//! Rules for `spec/platform.yaml` and `spec/policies/`.

use super::Check;
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::model::Platform;
use crate::spec::names;

pub(super) fn check(c: &mut Check) {
    let spec = c.spec;
    let Some(platform) = &spec.platform else {
        if !spec.platform_unparsed && (!spec.stacks.is_empty() || !spec.plans.is_empty()) {
            c.out.push(
                Diagnostic::error(
                    "spec/platform.yaml is missing",
                    Location::file("spec/platform.yaml"),
                )
                .with_help("stacks and plans need the platform's environments; see the README"),
            );
        }
        check_policies(c);
        return;
    };
    let f = platform.file;
    check_repo_names(c, platform);
    if platform.environments.is_empty() {
        c.out.push(Diagnostic::error(
            "spec/platform.yaml declares no environments",
            Location::file(spec.file(f).path.clone()),
        ));
    }
    for (name, env) in platform.environments.iter() {
        if let Err(why) = names::dns_label(&name.value) {
            c.error(f, name, format!("environment name `{}` {why}", name.value))
                .help("environment names become Kubernetes and repo names (DNS-1123 labels)");
        }
        if let Err(why) = names::repo_path(names::infra_dir(&env.path.value)) {
            c.error(
                f,
                &env.path,
                format!("infra path `{}` {why}", env.path.value.escape_debug()),
            )
            .help(PATH_HELP);
        }
        if let Err(why) = names::namespace(&env.namespace.value, "x", "x") {
            c.error(f, &env.namespace, format!("namespace pattern: {why}"))
                .help("the pattern may use `{{ plan }}` and `{{ env }}`");
        }
        for approver in &env.approvers {
            if approver.value.trim().is_empty() {
                c.error(f, approver, "approver is empty");
            }
        }
    }
    check_nesting(c, platform);
    check_flux_dirs(c, platform);
    check_policies(c);
}

const PATH_HELP: &str = "an infra path is relative to the infra repo's root, `/`-separated, without `.` or `..` segments; each segment must be a name git accepts in a tree on every filesystem (NTFS, HFS+, Windows)";

/// The infra repo's name, the default branches, and the repo names the
/// naming pattern makes.
fn check_repo_names(c: &mut Check, platform: &Platform) {
    let f = platform.file;
    let infra = &platform.infra;
    if let Err(why) = names::repo(&infra.repo.value) {
        c.error(
            f,
            &infra.repo,
            format!(
                "infra repo name `{}` {why}",
                infra.repo.value.escape_debug()
            ),
        )
        .help(REPO_HELP);
    }
    for (what, branch) in [
        ("infra.branch", &infra.branch),
        ("projects.branch", &platform.projects.branch),
    ] {
        if let Err(why) = names::branch(&branch.value) {
            c.error(
                f,
                branch,
                format!("`{what}` `{}` {why}", branch.value.escape_debug()),
            )
            .help("a default branch must pass `git check-ref-format --branch`, e.g. `main`");
        }
    }
    if let Some(image) = &platform.projects.image
        && let Err(why) = names::project_image(&image.value, "x", "x", "x", "x")
    {
        c.error(f, image, format!("project image pattern: {why}"))
            .help("the pattern may use `{{ owner }}`, `{{ plan }}`, `{{ component }}` and `{{ repo }}`");
    }
    let naming = &platform.projects.naming;
    // Plans and components are DNS labels; a pattern that fails with the
    // simplest of them fails for every plan, so it is reported here once.
    match names::project_repo(&naming.value, "x", "x") {
        Err(why) => {
            c.error(f, naming, format!("project naming pattern: {why}"))
                .help("the pattern may use `{{ plan }}` and `{{ component }}`");
        }
        Ok(example) => {
            if let Err(why) = names::repo(&example).and_then(|()| names::dns_label(&example)) {
                c.error(
                    f,
                    naming,
                    format!(
                        "project naming pattern makes repo names such as `{}`, which {why}",
                        example.escape_debug()
                    ),
                )
                .help("project repo names are DNS-1123 labels: lowercase letters, digits and `-`, e.g. `{{ plan }}-{{ component }}`");
            }
        }
    }
}

/// What repo names may be, for help texts.
pub(super) const REPO_HELP: &str = "repo names follow Gitea's and GitHub's rules: ASCII letters, digits, `.`, `_` and `-`, at most 100, not starting with `.` or `-`, no `..`, no `.git`, `.wiki`, `.rss` or `.atom` suffix";

/// No environment's path is another's or lies inside it: plans render
/// under `<path>/<plan>/`, so a path inside another environment's would
/// put one environment's files in the other's plan directories.
fn check_nesting(c: &mut Check, platform: &Platform) {
    let f = platform.file;
    let envs: Vec<_> = platform
        .environments
        .iter()
        .filter(|(_, e)| names::repo_path(names::infra_dir(&e.path.value)).is_ok())
        .collect();
    for (i, (name, env)) in envs.iter().enumerate() {
        for (other_name, other) in &envs[..i] {
            if !names::nested(&env.path.value, &other.path.value) {
                continue;
            }
            let (a, b) = (
                names::infra_dir(&env.path.value),
                names::infra_dir(&other.path.value),
            );
            let relation = relation(a, b);
            let note = c.at(f, &other.path);
            c.error(
                f,
                &env.path,
                format!(
                    "infra path `{a}` of environment `{}` {relation} the path `{b}` of environment `{}`",
                    name.value, other_name.value
                ),
            )
            .note(format!("environment `{}` renders here", other_name.value), note)
            .help("plans render under `<path>/<plan>/`: give every environment a directory of its own, none inside another (e.g. `apps/dev` and `apps/prod`)");
        }
    }
}

/// How the nested paths `a` and `b` lie: `a` "is the same as", "lies
/// inside" or "holds" `b`.
fn relation(a: &str, b: &str) -> &'static str {
    if a.to_lowercase() == b.to_lowercase() {
        "is the same as"
    } else if a.split('/').count() > b.split('/').count() {
        "lies inside"
    } else {
        "holds"
    }
}

/// No environment's path is, holds or lies inside any environment's
/// Flux directory (`clusters/<env>/druppie`): druppie writes there, and
/// plans rendered into it would mix with the Flux objects and the list.
fn check_flux_dirs(c: &mut Check, platform: &Platform) {
    let f = platform.file;
    for (_, env) in platform.environments.iter() {
        let path = names::infra_dir(&env.path.value);
        if names::repo_path(path).is_err() {
            continue;
        }
        for (other, _) in platform.environments.iter() {
            let flux = names::flux_dir(&other.value);
            if !names::nested(path, &flux) {
                continue;
            }
            c.error(
                f,
                &env.path,
                format!(
                    "infra path `{path}` {} `{flux}`, where druppie writes the Flux objects of environment `{}`",
                    relation(path, &flux),
                    other.value
                ),
            )
            .help("`clusters/<env>/druppie` is druppie's: give the environment a path outside it (e.g. `apps/dev`)");
            break;
        }
    }
}

fn check_policies(c: &mut Check) {
    let spec = c.spec;
    c.unique("policy", spec.policies.iter().map(|p| (p.file, &p.name)));
    let envs: Vec<&str> = spec
        .platform
        .iter()
        .flat_map(|p| p.environments.keys())
        .collect();
    let plans: Vec<&str> = spec.plans.iter().map(|p| p.name.value.as_str()).collect();
    for policy in &spec.policies {
        let f = policy.file;
        if policy.rule.value.trim().is_empty() {
            c.error(f, &policy.rule, "policy rule is empty");
        } else if let Err(e) = crate::policy::compile_rule(&policy.rule.value) {
            let file = spec.file(f);
            let rule = &policy.rule.value;
            let offset = crate::spec::source::offset_of(rule, e.line, e.col);
            let start = file.pos(&policy.rule.referenced);
            let pos = file.pos_in_scalar(start, rule, offset);
            c.out.push(
                Diagnostic::error(
                    format!("policy rule is not valid CEL: {}", e.message),
                    Location::new(file, pos),
                )
                .with_help(
                    "rules are CEL expressions over `object`, as in a ValidatingAdmissionPolicy",
                ),
            );
        }
        if policy.message.value.trim().is_empty() {
            c.error(f, &policy.message, "policy message is empty");
        }
        for env in &policy.matches.envs {
            if spec.platform.is_some() && !envs.contains(&env.value.as_str()) {
                c.unknown(f, env, "environment", envs.iter().copied());
            }
        }
        for plan in &policy.matches.plans {
            if !plans.contains(&plan.value.as_str()) {
                c.unknown(f, plan, "plan", plans.iter().copied());
            }
        }
    }
}
