//! Rules for building blocks and skills.

use super::Check;
use crate::spec::diag::Diagnostic;
use crate::spec::model::{Block, InputType};
use crate::spec::names::{id_problem, semver_problem};
use crate::spec::suggest;

/// Names the template context defines; an input may not use them.
pub const RESERVED: &[&str] = &[
    "plan",
    "component",
    "env",
    "namespace",
    "repo",
    "block",
    "components",
    "druppie",
];

pub(super) fn check(c: &mut Check) {
    let spec = c.spec;
    c.unique("block id", spec.blocks.iter().map(|b| (b.file, &b.meta.id)));
    c.unique("skill id", spec.skills.iter().map(|s| (s.file, &s.meta.id)));
    for block in &spec.blocks {
        check_block(c, block);
    }
    for skill in &spec.skills {
        if let Some(p) = id_problem(&skill.meta.id.value) {
            c.error(
                skill.file,
                &skill.meta.id,
                format!("skill id `{}` {p}", skill.meta.id.value),
            );
        }
        if let Some(v) = &skill.meta.version
            && let Some(p) = semver_problem(&v.value)
        {
            c.error(skill.file, v, format!("version `{}` {p}", v.value));
        }
    }
    for dir in &spec.template_dirs {
        if spec.block(dir).is_none() {
            let candidates = suggest::candidates(dir, spec.blocks.iter().map(Block::id));
            let d = Diagnostic::warning(
                format!("templates/{dir}/ belongs to no building block; it is never rendered"),
                crate::spec::diag::Location::file(format!("templates/{dir}")),
            )
            .with_candidates(&candidates);
            c.out.push(d);
        }
    }
}

fn check_block(c: &mut Check, block: &Block) {
    let m = &block.meta;
    let f = block.file;
    if let Some(p) = id_problem(&m.id.value) {
        c.error(f, &m.id, format!("block id `{}` {p}", m.id.value));
    }
    if let Some(p) = semver_problem(&m.version.value) {
        c.error(f, &m.version, format!("version `{}` {p}", m.version.value));
    }
    for cap in &m.capabilities {
        if cap.value.trim().is_empty() {
            c.error(f, cap, "capability is empty");
        }
    }
    for (glob, _) in m.ownership.iter().flat_map(|o| o.paths.iter()) {
        if !(glob.value.starts_with("project/") || glob.value.starts_with("infra/")) {
            c.error(
                f,
                glob,
                format!("ownership path `{}` names no template part", glob.value),
            )
            .help("paths are relative to templates/<id>/: start them with `project/` or `infra/`");
        }
    }
    for (name, decl) in m.inputs.iter() {
        if RESERVED.contains(&name.value.as_str()) {
            c.error(
                f,
                name,
                format!("input `{}` uses a reserved name", name.value),
            )
            .help(format!(
                "templates already define {}; rename the input",
                RESERVED.join(", ")
            ));
        } else if !is_identifier(&name.value) {
            c.error(
                f,
                name,
                format!("input name `{}` is not usable in templates", name.value),
            )
            .help("use letters, digits and `_`, starting with a letter or `_`");
        }
        let numeric = matches!(
            decl.kind,
            InputType::Integer | InputType::Number | InputType::Any
        );
        for bound in [&decl.minimum, &decl.maximum].into_iter().flatten() {
            if !numeric {
                c.error(
                    f,
                    bound,
                    format!(
                        "`minimum`/`maximum` apply to numbers, but `{}` is a {}",
                        name.value,
                        decl.kind.name()
                    ),
                );
            }
        }
        if let (Some(min), Some(max)) = (&decl.minimum, &decl.maximum)
            && min.value > max.value
        {
            c.error(
                f,
                max,
                format!("maximum {} is below minimum {}", max.value, min.value),
            );
        }
        let pattern_ok = match &decl.pattern {
            Some(p) if c.regex(&p.value).is_none() => {
                let err = regex::Regex::new(&p.value)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                let first = err.lines().last().unwrap_or("").trim().to_owned();
                c.error(
                    f,
                    p,
                    format!(
                        "pattern `{}` is not a valid regular expression: {first}",
                        p.value
                    ),
                );
                false
            }
            _ => true,
        };
        if let Some(allowed) = &decl.allowed {
            for v in &allowed.value {
                if !super::values::type_matches(decl.kind, v) {
                    c.error(
                        f,
                        allowed,
                        format!("enum value {v} is not a {}", decl.kind.name()),
                    );
                }
            }
        }
        if let Some(default) = &decl.default
            && pattern_ok
        {
            let re = decl
                .pattern
                .as_ref()
                .and_then(|p| c.regex(&p.value))
                .cloned();
            if let Err(why) = super::check_value(decl, &default.value, re.as_ref()) {
                c.error(
                    f,
                    default,
                    format!("default of input `{}` {why}", name.value),
                );
            }
        }
    }
    for (name, _) in m.outputs.iter() {
        if !is_identifier(&name.value) {
            c.error(
                f,
                name,
                format!("output name `{}` is not usable in templates", name.value),
            )
            .help("use letters, digits and `_`, starting with a letter or `_`");
        }
    }
    if !block.instantiable() && !m.outputs.is_empty() {
        c.warn(
            f,
            &m.id,
            format!(
                "block `{}` declares outputs but has no templates/{}/ directory",
                m.id.value, m.id.value
            ),
        )
        .help("a block without templates is catalog-only and cannot be used in a stack");
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a name a template can use as a variable.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
