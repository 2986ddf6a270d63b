//! Rules for building blocks and skills.

use super::Check;
use crate::spec::diag::Diagnostic;
use crate::spec::model::{Block, InputType, Skill};
use crate::spec::names;
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
    c.unique("skill id", spec.skills.iter().map(|s| (s.file, &s.id)));
    // A pinned block, read from history, passes the same rules.
    for block in spec.blocks.iter().chain(&spec.pinned) {
        check_block(c, block);
    }
    for skill in &spec.skills {
        check_skill(c, skill);
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

fn check_skill(c: &mut Check, skill: &Skill) {
    let id = &skill.id;
    if skill.derived_id {
        // A Druppie catalog names the skill by its file; the listing
        // takes it as it is, and says when it is not a tidy name.
        if let Err(why) = names::dns_label(&id.value) {
            c.warn(
                skill.file,
                id,
                format!(
                    "skill id `{}` comes from the file name, which {why}",
                    id.value.escape_debug()
                ),
            )
            .help("add `id:` to the frontmatter, or rename the file to a DNS-1123 label (e.g. `code-reviewer.md`)");
        }
    } else if let Err(why) = names::id(&id.value) {
        c.error(skill.file, id, format!("skill id `{}` {why}", id.value));
    }
    if let Some(v) = &skill.meta.version
        && let Err(why) = names::semver(&v.value)
    {
        c.error(skill.file, v, format!("version `{}` {why}", v.value));
    }
}

fn check_block(c: &mut Check, block: &Block) {
    let m = &block.meta;
    let f = block.file;
    if let Err(why) = names::id(&m.id.value) {
        c.error(f, &m.id, format!("block id `{}` {why}", m.id.value))
            .help("a block id names `templates/<id>/`: lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit");
    }
    if let Err(why) = names::semver(&m.version.value) {
        c.error(
            f,
            &m.version,
            format!("version `{}` {why}", m.version.value),
        );
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
