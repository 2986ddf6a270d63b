//! Instants as people and druppie write them: an RFC 3339 time with any
//! offset (`2026-11-21T00:00:00Z`, `2026-11-21T02:00:00+02:00`), or a
//! span back from now (`90s`, `30m`, `1h`, `7d`, `2w`). Both become one
//! [`Timestamp`], so times are compared as instants, never as text.

pub use jiff::Timestamp;
use jiff::{SignedDuration, Span, SpanRelativeTo};

/// A time that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    /// Neither an RFC 3339 time nor a span back from now.
    #[error(
        "`{text}` is not a time: use an RFC 3339 time with its offset (2026-11-21T00:00:00Z, 2026-11-21T00:00:00+02:00) or a span back from now (90s, 30m, 1h, 7d, 2w)"
    )]
    Syntax { text: String },
    /// A span that reaches before the year -9999.
    #[error("`{text}` is not a span back from now that druppie can count")]
    Range { text: String },
}

/// Reads `text` as an instant: an RFC 3339 time (any offset, `Z` for
/// UTC), or a span back from `now` (a whole number of seconds `s`,
/// minutes `m`, hours `h`, days `d` of 24 hours, or weeks `w`; jiff's
/// friendly spans such as `1h30m` are read too).
///
/// # Errors
/// Neither form, a span with months or years (their length depends on
/// the calendar), or a negative span.
pub fn since(text: &str, now: Timestamp) -> Result<Timestamp, WhenError> {
    let t = text.trim();
    if let Ok(instant) = instant(t) {
        return Ok(instant);
    }
    let back = span(t).ok_or_else(|| WhenError::Syntax {
        text: text.to_owned(),
    })?;
    SignedDuration::try_from(back)
        .ok()
        .and_then(|back| now.checked_sub(back).ok())
        .ok_or_else(|| WhenError::Range {
            text: text.to_owned(),
        })
}

/// Reads a span of time as people write one: `250ms`, `90s`, `30m`,
/// `1h30m`, `7d` (a day is 24 hours), `2w` (jiff's friendly format).
/// `None` for anything else: a bare number (which unit?), a span with
/// months or years (their length depends on the calendar), a negative
/// span. The one reading of durations, for the command line and for
/// druppie.toml alike.
pub fn span(text: &str) -> Option<std::time::Duration> {
    let t = text.trim();
    if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let span: Span = t.parse().ok()?;
    let length = span.to_duration(SpanRelativeTo::days_are_24_hours()).ok()?;
    std::time::Duration::try_from(length).ok()
}

/// Reads an RFC 3339 time with its offset (`Z`, `+00:00`, `+02:00`), as
/// druppie writes event times.
///
/// # Errors
/// Not such a time (no offset, or not a time at all).
pub fn instant(text: &str) -> Result<Timestamp, WhenError> {
    text.trim().parse().map_err(|_| WhenError::Syntax {
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a test instant")
    }

    #[test]
    fn offsets_name_the_same_instant() {
        let utc = instant("2026-11-21T00:00:00Z").unwrap();
        assert_eq!(instant("2026-11-21T02:00:00+02:00").unwrap(), utc);
        assert_eq!(instant("2026-11-20T19:00:00-05:00").unwrap(), utc);
        // As druppie writes event times (gix's ISO 8601 strict).
        assert_eq!(instant("2026-11-21T00:00:00+00:00").unwrap(), utc);
        assert_eq!(
            since("2026-11-21T00:00:00Z", at("2030-01-01T00:00:00Z")).unwrap(),
            utc
        );
    }

    #[test]
    fn spans_count_back_from_now() {
        let now = at("2026-11-21T12:00:00Z");
        for (text, expected) in [
            ("90s", "2026-11-21T11:58:30Z"),
            ("30m", "2026-11-21T11:30:00Z"),
            ("1h", "2026-11-21T11:00:00Z"),
            ("7d", "2026-11-14T12:00:00Z"),
            ("2w", "2026-11-07T12:00:00Z"),
            ("1h30m", "2026-11-21T10:30:00Z"),
        ] {
            assert_eq!(since(text, now).unwrap(), at(expected), "{text}");
        }
    }

    #[test]
    fn what_is_neither_is_refused_with_the_forms_accepted() {
        let now = at("2026-11-21T12:00:00Z");
        for bad in [
            "",
            "soon",
            "7",
            "2026-11-21",
            "2026-11-21T00:00:00",
            "2026-11-21 00:00:00",
            "1mo",
            "1y",
        ] {
            let e = since(bad, now).unwrap_err();
            let said = e.to_string();
            assert!(
                said.contains("RFC 3339") && said.contains("7d"),
                "{bad}: {said}"
            );
        }
        assert!(matches!(since("-1h", now), Err(WhenError::Syntax { .. })));
        assert!(instant("1h").is_err());
    }
}
