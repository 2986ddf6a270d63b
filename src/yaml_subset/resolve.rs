//! What an untagged plain scalar means: the YAML 1.2 core schema as the
//! spec parser (serde-saphyr with [`crate::spec::yaml::options`]) resolves
//! it for a value of any type (`deserialize_any`), so that a document the
//! subset reads has the values the full parser would give it.
//!
//! In order: an empty scalar, `~` and `null` in any case are null; `true`
//! and `false` in any case are booleans (YAML 1.2: `yes`, `no`, `on`, `off`
//! are strings); then integers (decimal without a leading zero, `0x`, `0o`,
//! `0b`, an optional sign, `_` between digits), signed when written with
//! `-`; then floats (`.inf`, `.nan` and what Rust's `f64` parser reads,
//! finite or overflowing a numeral); everything else is a string. A
//! non-finite float is refused, as the full parser refuses it.

/// A resolved plain scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    /// Written with a leading `-`.
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

/// The full parser refuses the scalar (a non-finite float).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// Resolves a plain scalar's text (no surrounding spaces).
///
/// # Errors
/// A float that is not finite (`.inf`, `.nan`, `1e999`).
pub fn plain(text: &str) -> Result<Scalar<'_>, Refused> {
    let Some(&first) = text.as_bytes().first() else {
        return Ok(Scalar::Null);
    };
    // Every number starts with a digit, a sign or a dot; a word is a
    // string unless it spells null or a boolean.
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.' | b'~')) {
        return Ok(if text.eq_ignore_ascii_case("null") {
            Scalar::Null
        } else if text.eq_ignore_ascii_case("true") {
            Scalar::Bool(true)
        } else if text.eq_ignore_ascii_case("false") {
            Scalar::Bool(false)
        } else {
            Scalar::Str(text)
        });
    }
    if text == "~" {
        return Ok(Scalar::Null);
    }
    let t = trim(text);
    if t.starts_with('-') {
        if !leading_zero_decimal(t)
            && let Some(v) = int_signed(t)
        {
            return Ok(Scalar::Int(v));
        }
    } else if let Some(v) = int_unsigned(t) {
        return Ok(Scalar::UInt(v));
    }
    match float(text) {
        Some(v) if v.is_finite() => Ok(Scalar::Float(v)),
        Some(_) => Err(Refused),
        None => Ok(Scalar::Str(text)),
    }
}

/// The padding the full parser trims before reading a number.
fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// `0127`, `+0127`, `-0127`: a decimal with a redundant leading zero.
fn leading_zero_decimal(t: &str) -> bool {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    match digits
        .strip_prefix('0')
        .and_then(|rest| rest.chars().next())
    {
        Some(next) => !matches!(next, 'x' | 'X' | 'o' | 'O' | 'b' | 'B'),
        None => false,
    }
}

/// The radix and the digits after its prefix.
fn radix(rest: &str) -> (u32, &str) {
    for (prefixes, radix) in [(["0x", "0X"], 16), (["0o", "0O"], 8), (["0b", "0B"], 2)] {
        for p in prefixes {
            if let Some(digits) = rest.strip_prefix(p) {
                return (radix, digits);
            }
        }
    }
    (10, rest)
}

/// Digits in `radix` with single `_` between them, as a magnitude.
fn digits(digits: &str, radix: u32) -> Option<u128> {
    let bytes = digits.as_bytes();
    let mut val: u128 = 0;
    let mut saw = false;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let prev_ok = i > 0 && bytes[i - 1] != b'_';
            let next_ok = i + 1 < bytes.len() && bytes[i + 1] != b'_';
            if !prev_ok || !next_ok {
                return None;
            }
            continue;
        }
        let d = char::from(b).to_digit(radix)?;
        val = val
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(d))?;
        saw = true;
    }
    saw.then_some(val)
}

/// A decimal must not start with `0` unless it is `0`.
fn magnitude(rest: &str) -> Option<u128> {
    let (radix, d) = radix(rest);
    if radix == 10 && d.starts_with('0') && d != "0" {
        return None;
    }
    digits(d, radix)
}

fn int_signed(t: &str) -> Option<i64> {
    let (neg, rest) = match t.strip_prefix('+') {
        Some(r) => (false, r),
        None => match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t),
        },
    };
    let mag = magnitude(rest)?;
    let value = if neg {
        0i128.checked_sub(i128::try_from(mag).ok()?)?
    } else {
        i128::try_from(mag).ok()?
    };
    i64::try_from(value).ok()
}

fn int_unsigned(t: &str) -> Option<u64> {
    if t.starts_with('-') {
        return None;
    }
    u64::try_from(magnitude(t.strip_prefix('+').unwrap_or(t))?).ok()
}

/// A float, finite or not; `None` for a string.
fn float(s: &str) -> Option<f64> {
    let t = trim(s);
    match t.to_ascii_lowercase().as_str() {
        ".nan" | "+.nan" | "-.nan" => return Some(f64::NAN),
        ".inf" | "+.inf" => return Some(f64::INFINITY),
        "-.inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        // Rust also reads `inf` and `nan`: YAML keeps those as strings, and
        // only a numeral that overflows is a (non-finite) float.
        Ok(v) => {
            let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
            let numeral = unsigned.as_bytes().first().is_some_and(u8::is_ascii_digit);
            (numeral && v.is_infinite()).then_some(v)
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_spellings() {
        use Scalar::*;
        let cases: &[(&str, Result<Scalar<'_>, Refused>)] = &[
            ("", Ok(Null)),
            ("~", Ok(Null)),
            ("Null", Ok(Null)),
            ("NULL", Ok(Null)),
            ("TRUE", Ok(Bool(true))),
            ("no", Ok(Str("no"))),
            ("yes", Ok(Str("yes"))),
            ("0x1F", Ok(UInt(31))),
            ("0o17", Ok(UInt(15))),
            ("-0x10", Ok(Int(-16))),
            ("+5", Ok(UInt(5))),
            ("-0", Ok(Int(0))),
            ("1_000", Ok(UInt(1000))),
            ("007", Ok(Float(7.0))),
            ("1.5", Ok(Float(1.5))),
            ("1e3", Ok(Float(1000.0))),
            ("99999999999999999999", Ok(Float(1e20))),
            (".inf", Err(Refused)),
            ("1e999", Err(Refused)),
            ("inf", Ok(Str("inf"))),
            ("1Gi", Ok(Str("1Gi"))),
            ("1.0.0", Ok(Str("1.0.0"))),
        ];
        for (text, want) in cases {
            assert_eq!(plain(text), *want, "{text:?}");
        }
    }
}
