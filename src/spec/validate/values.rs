//! Checking an input value against its declaration.

use serde_json::Value;

use crate::spec::model::{InputDecl, InputType};

/// Whether `value` holds a template expression: it is resolved during
/// compose and checked then, not here.
pub fn is_template(value: &Value) -> bool {
    matches!(value, Value::String(s) if crate::template::is_template(s))
}

/// The compiled form of an input's `pattern`, which the whole value must
/// match; `None` when it does not compile.
pub fn full_match(pattern: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})$")).ok()
}

/// Why a value does not fit its declaration. The message completes
/// "value …".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("is {found}, expected {expected}")]
    Type {
        found: String,
        expected: &'static str,
    },
    #[error("{value} is not one of {allowed}")]
    NotAllowed { value: String, allowed: String },
    #[error("{value} is below the minimum {min}")]
    BelowMinimum { value: String, min: f64 },
    #[error("{value} is above the maximum {max}")]
    AboveMaximum { value: String, max: f64 },
    #[error("{value} does not match the pattern `{pattern}`")]
    Pattern { value: String, pattern: String },
}

/// Checks `value` against `decl`'s type and constraints. `pattern` is the
/// compiled form of `decl.pattern`, if it has one that compiles.
///
/// # Errors
/// The first constraint `value` breaks.
pub fn check_value(
    decl: &InputDecl,
    value: &Value,
    pattern: Option<&regex::Regex>,
) -> Result<(), ValueError> {
    if is_template(value) {
        return Ok(());
    }
    if !type_matches(decl.kind, value) {
        return Err(ValueError::Type {
            found: describe(value),
            expected: decl.kind.name(),
        });
    }
    if let Some(allowed) = &decl.allowed
        && !allowed.value.contains(value)
    {
        let list: Vec<String> = allowed.value.iter().map(compact).collect();
        return Err(ValueError::NotAllowed {
            value: compact(value),
            allowed: list.join(", "),
        });
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = &decl.minimum
            && n < min.value
        {
            return Err(ValueError::BelowMinimum {
                value: compact(value),
                min: min.value,
            });
        }
        if let Some(max) = &decl.maximum
            && n > max.value
        {
            return Err(ValueError::AboveMaximum {
                value: compact(value),
                max: max.value,
            });
        }
    }
    if let (Some(re), Value::String(s), Some(p)) = (pattern, value, &decl.pattern)
        && !re.is_match(s)
    {
        return Err(ValueError::Pattern {
            value: compact(value),
            pattern: p.value.clone(),
        });
    }
    Ok(())
}

pub fn type_matches(kind: InputType, value: &Value) -> bool {
    match kind {
        InputType::Any => true,
        InputType::String => value.is_string(),
        InputType::Integer => value.is_i64() || value.is_u64(),
        InputType::Number => value.is_number(),
        InputType::Boolean => value.is_boolean(),
        InputType::List => value.is_array(),
        InputType::Object => value.is_object(),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "empty (null)".into(),
        Value::Bool(_) => format!("the boolean {value}"),
        Value::Number(n) if n.is_f64() => format!("the number {value}"),
        Value::Number(_) => format!("the integer {value}"),
        Value::String(_) => format!("the string {value}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn compact(value: &Value) -> String {
    let s = value.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(57)])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl(yaml: &str) -> InputDecl {
        serde_saphyr::from_str(yaml).expect("valid decl")
    }

    #[test]
    fn types() {
        let d = decl("type: integer");
        assert!(check_value(&d, &json!(3), None).is_ok());
        assert_eq!(
            check_value(&d, &json!("3"), None).map_err(|e| e.to_string()),
            Err("is the string \"3\", expected integer".into())
        );
        assert!(check_value(&d, &json!(1.5), None).is_err());
        assert!(check_value(&decl("type: number"), &json!(1.5), None).is_ok());
        assert!(check_value(&decl("type: list"), &json!([1]), None).is_ok());
        assert!(check_value(&decl("{}"), &json!(null), None).is_ok());
    }

    #[test]
    fn constraints() {
        let d = decl("{type: integer, minimum: 1, maximum: 5}");
        assert_eq!(
            check_value(&d, &json!(0), None).map_err(|e| e.to_string()),
            Err("0 is below the minimum 1".into())
        );
        assert!(check_value(&d, &json!(6), None).is_err());
        let e = decl("{type: string, enum: [a, b]}");
        assert_eq!(
            check_value(&e, &json!("c"), None).map_err(|e| e.to_string()),
            Err("\"c\" is not one of \"a\", \"b\"".into())
        );
        let p = decl("{type: string, pattern: '[0-9]+Gi'}");
        let re = regex::Regex::new("^(?:[0-9]+Gi)$").expect("valid");
        assert!(check_value(&p, &json!("10Gi"), Some(&re)).is_ok());
        assert!(check_value(&p, &json!("10Gix"), Some(&re)).is_err());
    }

    #[test]
    fn templates_are_checked_later() {
        let d = decl("type: integer");
        assert!(check_value(&d, &json!("{{ components.db.outputs.port }}"), None).is_ok());
    }
}
