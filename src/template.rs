//! The template engine shared by compose (wiring, outputs) and render:
//! minijinja with Jinja2 syntax, strict undefined variables, the trailing
//! newline kept, no auto-escaping, and a fuel limit so a runaway template
//! fails instead of hanging.

use minijinja::{Environment, UndefinedBehavior, Value};

/// Instructions one template evaluation may run before it is stopped.
pub const FUEL: u64 = 5_000_000;

/// A configured environment with no templates loaded.
pub fn environment<'s>() -> Environment<'s> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
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
    fn keeps_trailing_newline() {
        let env = environment();
        assert_eq!(
            env.render_str("a\n", minijinja::context! {}).expect("ok"),
            "a\n"
        );
    }
}
