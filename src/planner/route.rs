//! Routing a sentence: a request to create a plan or to change one, a
//! question about the catalog, or a question about what is deployed.

use serde::Serialize;

use super::words::words;

/// What a sentence asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "route", rename_all = "snake_case")]
pub enum Route {
    /// A new plan.
    Create,
    /// A change to the existing plan it names.
    Change { plan: String },
    /// Which blocks give something ("which blocks give me a database?").
    Catalog { query: String },
    /// Where a plan stands ("why is permits pending in prod?").
    Status { plan: Option<String> },
}

/// Words that ask where things stand.
const STATUS: [&str; 12] = [
    "status", "pending", "deployed", "live", "waiting", "stuck", "running", "promoted", "applied",
    "verified", "failed", "released",
];

/// Words that open a question.
const QUESTION: [&str; 13] = [
    "which", "what", "why", "where", "when", "is", "are", "does", "do", "can", "how", "list",
    "show",
];

/// Words that ask for something to be made.
const MAKE: [&str; 9] = [
    "need", "want", "create", "add", "give", "make", "set", "build", "deploy",
];

/// Routes `sentence`, given the names of the spec's plans.
pub fn route(sentence: &str, plans: &[&str]) -> Route {
    let all = words(sentence);
    // A plan is named as the object of "for", "to", "in", "of" or "on",
    // a whole word between spaces (not inside an image path).
    let spaced: Vec<String> = sentence
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_lowercase()
        })
        .collect();
    let named = spaced
        .windows(2)
        .find(|pair| {
            ["for", "to", "in", "of", "on"].contains(&pair[0].as_str())
                && plans.contains(&pair[1].as_str())
        })
        .map(|pair| pair[1].clone());
    let first = all.first().map(String::as_str).unwrap_or("");
    let question = sentence.trim_end().ends_with('?') || QUESTION.contains(&first);
    let asks_status = all.iter().any(|w| STATUS.contains(&w.as_str()));
    let asks_make = all.iter().any(|w| MAKE.contains(&w.as_str())) && !QUESTION.contains(&first);
    if question && asks_status && !asks_make {
        // A question may name the plan anywhere.
        let plan = named.or_else(|| spaced.iter().find(|w| plans.contains(&w.as_str())).cloned());
        return Route::Status { plan };
    }
    if question && !asks_make {
        return Route::Catalog {
            query: sentence.trim().trim_end_matches('?').to_owned(),
        };
    }
    match named {
        Some(plan) => Route::Change { plan },
        None => Route::Create,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_route_to_what_they_ask() {
        let plans = ["permits", "docs-portal"];
        let r = |s| route(s, &plans);
        assert_eq!(r("a permit portal with a database"), Route::Create);
        assert_eq!(
            r("a static documentation site for team docs"),
            Route::Create
        );
        assert_eq!(
            r("a redis cache for permits"),
            Route::Change {
                plan: "permits".into()
            }
        );
        assert_eq!(
            r("which blocks give me a database?"),
            Route::Catalog {
                query: "which blocks give me a database".into()
            }
        );
        assert_eq!(
            r("why is permits pending in prod?"),
            Route::Status {
                plan: Some("permits".into())
            }
        );
        assert_eq!(r("what is deployed?"), Route::Status { plan: None });
        assert_eq!(
            r("Add a database to docs-portal"),
            Route::Change {
                plan: "docs-portal".into()
            }
        );
    }
}
