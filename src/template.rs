//! The template engine shared by compose (wiring, outputs) and render:
//! minijinja with Jinja2 syntax, strict undefined variables, the trailing
//! newline kept, no auto-escaping, and a fuel limit so a runaway template
//! fails instead of hanging. Templates come from spec pull requests, so
//! what one evaluation may hold ([`crate::budget`]) and what rendering may
//! produce ([`Limits`]) are bounded too.

use minijinja::{Environment, UndefinedBehavior, Value};

/// Instructions one template evaluation may run before it is stopped.
pub const FUEL: u64 = 5_000_000;

const MIB: usize = 1024 * 1024;

/// What rendering may hold and produce; `[render]` in druppie.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one template evaluation may hold (its values and output).
    pub template_memory: usize,
    /// Bytes one rendered file may have.
    pub file_bytes: usize,
    /// Bytes one plan in one environment may render, all files together
    /// (and the values its wiring and outputs give, together).
    pub instance_bytes: usize,
    /// Bytes one run may hold, all plans and environments together: its
    /// templates (read and compiled), the values composed, and the files
    /// rendered.
    pub run_bytes: usize,
    /// Files one plan in one environment may render.
    pub instance_files: usize,
    /// Files one run may render.
    pub run_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            template_memory: 64 * MIB,
            file_bytes: 4 * MIB,
            instance_bytes: 64 * MIB,
            run_bytes: 512 * MIB,
            instance_files: 10_000,
            run_files: 100_000,
        }
    }
}

/// Why a file did not render.
#[derive(Debug)]
pub enum FileError {
    /// The engine's error: syntax, undefined variable, out of fuel.
    Engine(minijinja::Error),
    /// The output grew past [`Limits::file_bytes`].
    TooLarge { limit: usize },
}

/// `bytes` as people read it: `64 MiB`, `1.5 KiB`, `100 bytes`.
pub fn size(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (scale, unit) in UNITS {
        if bytes >= scale {
            return if bytes.is_multiple_of(scale) {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{:.1} {unit}", bytes as f64 / scale as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// Renders one template into bytes: at most `limits.file_bytes` of
/// output, and at most `limits.template_memory` held while evaluating;
/// `what` names the template and what it renders for, `at` the template
/// file, in the error the memory budget ends the process with.
///
/// # Errors
/// [`FileError`].
pub fn render_file(
    template: &minijinja::Template<'_, '_>,
    ctx: &Value,
    limits: &Limits,
    what: &str,
    at: &str,
) -> Result<Vec<u8>, FileError> {
    let mut out = Capped {
        bytes: Vec::new(),
        limit: limits.file_bytes,
        over: false,
    };
    let result = crate::budget::within(limits.template_memory, what, at, || {
        template.render_captured_to(ctx, &mut out).map(drop)
    });
    if out.over {
        return Err(FileError::TooLarge {
            limit: limits.file_bytes,
        });
    }
    result.map_err(FileError::Engine)?;
    // The buffer grew by doubling; a render keeps thousands of these.
    out.bytes.shrink_to_fit();
    Ok(out.bytes)
}

/// A buffer that refuses to grow past `limit`.
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("the file is too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A configured environment with no templates loaded.
pub fn environment<'s>() -> Environment<'s> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Errors name the undefined expression (`image` in "`image` is
    // undefined"), in release builds too.
    env.set_debug(true);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .expect("the default syntax is valid");
    env.set_syntax(syntax);
    env
}

/// Whether a string holds template syntax.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// Evaluates a template string. A string that is exactly one expression
/// (`"{{ components.db.outputs.port }}"`) keeps the expression's type; any
/// other string renders to a string.
///
/// # Errors
/// The engine's error: syntax, undefined variable, out of fuel.
pub fn evaluate(
    env: &Environment<'_>,
    text: &str,
    ctx: &Value,
) -> Result<serde_json::Value, minijinja::Error> {
    if let Some(expr) = single_expression(text) {
        let value = env.compile_expression(expr)?.eval(ctx)?;
        if value.is_undefined() {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                format!("`{}` is undefined", expr.trim()),
            ));
        }
        return serde_json::to_value(&value).map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
        });
    }
    env.render_str(text, ctx).map(serde_json::Value::String)
}

/// The expression inside `{{ ... }}` when that is all the string holds.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner)
}

/// The expression an undefined-value error is about (`components.db.x`),
/// as the engine names it.
pub fn undefined_expression(err: &minijinja::Error) -> Option<&str> {
    if err.kind() != minijinja::ErrorKind::UndefinedError {
        return None;
    }
    let detail = err.detail()?;
    let start = detail.find('`')? + 1;
    let len = detail[start..].find('`')?;
    detail[start..]
        .starts_with(|c: char| c.is_alphabetic() || c == '_')
        .then(|| &detail[start..start + len])
}

/// For an undefined-value error: the expression, and a help naming the
/// defined names nearest to where it stops resolving in `ctx` (`did you
/// mean `components.db.outputs.secret`?`), or the names there are.
pub fn undefined_help(err: &minijinja::Error, ctx: &Value) -> Option<(String, String)> {
    let expr = undefined_expression(err)?;
    let parts: Vec<&str> = expr.split('.').collect();
    let mut value = ctx.clone();
    let mut depth = 0;
    for part in &parts {
        match value.get_attr(part) {
            Ok(v) if !v.is_undefined() => value = v,
            _ => break,
        }
        depth += 1;
    }
    let prefix = parts[..depth.min(parts.len())].join(".");
    let missing = parts.get(depth).copied().unwrap_or_default();
    let full = |name: &str| {
        if prefix.is_empty() {
            format!("`{name}`")
        } else {
            format!("`{prefix}.{name}`")
        }
    };
    let mut known: Vec<String> = if value.kind() == minijinja::value::ValueKind::Map {
        value
            .try_iter()
            .map(|keys| keys.filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    known.sort();
    let near = crate::spec::suggest::candidates(missing, known.iter().map(String::as_str));
    let help = if !near.is_empty() {
        let list: Vec<String> = near.iter().map(|n| full(n)).collect();
        format!("did you mean {}?", list.join(" or "))
    } else if known.is_empty() {
        format!("`{prefix}` holds no names")
    } else {
        const SHOWN: usize = 12;
        let list: Vec<String> = known.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
        let more = match known.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        if prefix.is_empty() {
            format!("defined here: {}{more}", list.join(", "))
        } else {
            format!("`{prefix}` holds {}{more}", list.join(", "))
        }
    };
    Some((expr.to_owned(), help))
}

/// The engine's message for an error and its causes, on one line.
pub fn message(err: &minijinja::Error) -> String {
    let mut msg = match err.detail() {
        Some(detail) => format!("{}: {detail}", kind_text(err.kind())),
        None => kind_text(err.kind()).to_owned(),
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        msg.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    msg
}

fn kind_text(kind: minijinja::ErrorKind) -> &'static str {
    use minijinja::ErrorKind as K;
    match kind {
        K::SyntaxError => "template syntax error",
        K::UndefinedError => "undefined value",
        K::UnknownFilter => "unknown filter",
        K::UnknownFunction => "unknown function",
        K::UnknownTest => "unknown test",
        K::TemplateNotFound => "template not found",
        K::OutOfFuel => "template ran too long (out of fuel)",
        K::InvalidOperation => "invalid operation",
        K::BadSerialization => "value cannot be used in a template",
        _ => "template error",
    }
}

/// Whether a JSON value holds template syntax anywhere inside it.
pub fn is_template_value(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => is_template(s),
        serde_json::Value::Array(items) => items.iter().any(is_template_value),
        serde_json::Value::Object(map) => map.values().any(is_template_value),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_expressions_keep_their_type() {
        let env = environment();
        let ctx = minijinja::context! { port => 5432, name => "db" };
        assert_eq!(
            evaluate(&env, "{{ port }}", &ctx).expect("ok"),
            serde_json::json!(5432)
        );
        assert_eq!(
            evaluate(&env, "{{ name }}:{{ port }}", &ctx).expect("ok"),
            serde_json::json!("db:5432")
        );
    }

    #[test]
    fn undefined_is_an_error() {
        let env = environment();
        let ctx = minijinja::context! {};
        assert!(evaluate(&env, "{{ nope }}", &ctx).is_err());
        assert!(evaluate(&env, "x {{ nope }}", &ctx).is_err());
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let env = environment();
        let ctx = minijinja::context! {};
        let err = env
            .render_str(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                ctx,
            )
            .expect_err("stopped");
        assert_eq!(err.kind(), minijinja::ErrorKind::OutOfFuel);
    }

    #[test]
    fn output_past_the_file_limit_stops_the_render() {
        let mut env = environment();
        env.add_template("big", "{% for i in range(1000) %}0123456789{% endfor %}")
            .expect("compiles");
        let template = env.get_template("big").expect("added");
        let ctx = minijinja::context! {};
        let mut limits = Limits {
            file_bytes: 10_000,
            ..Limits::default()
        };
        let ok = render_file(&template, &ctx, &limits, "big", "big").expect("fits");
        assert_eq!(ok.len(), 10_000);
        limits.file_bytes = 9_999;
        match render_file(&template, &ctx, &limits, "big", "big") {
            Err(FileError::TooLarge { limit }) => assert_eq!(limit, 9_999),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn an_undefined_error_names_the_expression() {
        let env = environment();
        let ctx = minijinja::context! { name => "x" };
        let err = env
            .render_str("a\n{{ nme }}", ctx.clone())
            .expect_err("undefined");
        assert_eq!(undefined_expression(&err), Some("nme"));
        let err = env
            .render_str("{{ name.first.second }}", ctx)
            .expect_err("undefined");
        assert_eq!(undefined_expression(&err), Some("name.first"));
    }

    #[test]
    fn an_undefined_name_is_matched_where_the_expression_stops_resolving() {
        let env = environment();
        let ctx = minijinja::context! {
            replicas => 2,
            components => minijinja::context! { db => minijinja::context! { outputs => minijinja::context! { secret => "s" } } },
        };
        let help = |text: &str| {
            let err = evaluate(&env, text, &ctx).expect_err("undefined");
            undefined_help(&err, &ctx).expect("an undefined value").1
        };
        assert_eq!(help("{{ replica }}"), "did you mean `replicas`?");
        assert_eq!(
            help("{{ components.db.outputs.secrt }}"),
            "did you mean `components.db.outputs.secret`?"
        );
        assert_eq!(
            help("{{ components.dbb.outputs.secret }}"),
            "did you mean `components.db`?"
        );
        assert_eq!(
            help("{{ components.db.outputs.zzzzzzzz }}"),
            "`components.db.outputs` holds `secret`"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(64 * MIB), "64 MiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(100), "100 bytes");
        assert_eq!(size(1 << 30), "1 GiB");
    }

    #[test]
    fn keeps_trailing_newline() {
        let env = environment();
        assert_eq!(
            env.render_str("a\n", minijinja::context! {}).expect("ok"),
            "a\n"
        );
    }
}
