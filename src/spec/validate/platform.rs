//! Rules for `spec/platform.yaml` and `spec/policies/`.

use super::Check;
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::names::{dns_label_problem, expand_pattern, path_problem};

pub(super) fn check(c: &mut Check) {
    let spec = c.spec;
    let Some(platform) = &spec.platform else {
        if !spec.stacks.is_empty() || !spec.plans.is_empty() {
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
    if let Err(why) = expand_pattern(&platform.projects.naming.value, |v| {
        matches!(v, "plan" | "component").then_some("x")
    }) {
        c.error(
            f,
            &platform.projects.naming,
            format!("project naming pattern: {why}"),
        )
        .help("the pattern may use `{{ plan }}` and `{{ component }}`");
    }
    if platform.environments.is_empty() {
        c.out.push(Diagnostic::error(
            "spec/platform.yaml declares no environments",
            Location::file(spec.file(f).path.clone()),
        ));
    }
    for (name, env) in platform.environments.iter() {
        if let Some(p) = dns_label_problem(&name.value) {
            c.error(f, name, format!("environment name `{}` {p}", name.value))
                .help("environment names become Kubernetes and repo names (DNS-1123 labels)");
        }
        if let Some(why) = path_problem(&env.path.value) {
            c.error(
                f,
                &env.path,
                format!("infra path `{}` {why}", env.path.value),
            );
        }
        if let Err(why) = expand_pattern(&env.namespace.value, |v| {
            matches!(v, "plan" | "env").then_some("x")
        }) {
            c.error(f, &env.namespace, format!("namespace pattern: {why}"))
                .help("the pattern may use `{{ plan }}` and `{{ env }}`");
        }
        for approver in &env.approvers {
            if approver.value.trim().is_empty() {
                c.error(f, approver, "approver is empty");
            }
        }
    }
    check_policies(c);
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
