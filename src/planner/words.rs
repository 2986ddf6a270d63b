//! Reading a request: its words, the phrases joined by "with" or "and",
//! and the capabilities everyday words ask for.

/// Words that say nothing about what is asked for.
const STOP: [&str; 34] = [
    "a", "an", "the", "i", "we", "need", "want", "would", "like", "please", "give", "me", "us",
    "our", "my", "some", "new", "for", "of", "to", "with", "and", "plus", "that", "has", "have",
    "its", "own", "in", "on", "using", "set", "up", "create",
];

/// Everyday words and the capabilities they ask for, after the planner
/// skill's "extract the needs": a word not listed here still counts
/// when it is a capability or a block id of the catalog itself.
const SYNONYMS: [(&str, &[&str]); 31] = [
    ("portal", &["web"]),
    ("website", &["web"]),
    ("site", &["web"]),
    ("webapp", &["web"]),
    ("app", &["web"]),
    ("application", &["web"]),
    ("frontend", &["web"]),
    ("ui", &["web"]),
    ("service", &["web"]),
    ("backend", &["api"]),
    ("db", &["database"]),
    ("databases", &["database"]),
    ("postgres", &["postgresql", "database"]),
    ("sql", &["database"]),
    ("caching", &["cache"]),
    ("sessions", &["cache"]),
    ("session", &["cache"]),
    ("docs", &["static"]),
    ("documentation", &["static"]),
    ("landing", &["static"]),
    ("uploads", &["object-storage"]),
    ("documents", &["object-storage"]),
    ("bucket", &["object-storage"]),
    ("s3", &["object-storage"]),
    ("login", &["iam"]),
    ("sso", &["iam"]),
    ("authentication", &["iam"]),
    ("monitoring", &["observability"]),
    ("metrics", &["observability"]),
    ("dashboards", &["observability"]),
    ("logs", &["observability"]),
];

/// Words of `text`, lower case: letters, digits, `-`, `_` and `.` (so
/// `team-x` and `docs-portal` stay whole).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .map(|w| w.trim_matches(['.', '-', '_']).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether `word` says nothing about what is asked for.
pub fn is_stop(word: &str) -> bool {
    STOP.contains(&word)
}

/// The capabilities `word` may ask for: itself (a capability or a block
/// id, when the catalog has it), and what the synonym table says.
pub fn asks_for(word: &str) -> Vec<&str> {
    let mut out = vec![word];
    if let Some((_, caps)) = SYNONYMS.iter().find(|(w, _)| *w == word) {
        out.extend(caps.iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_dashes_stay_one_word() {
        assert_eq!(
            words("A Redis cache for docs-portal, owned by team-x."),
            [
                "a",
                "redis",
                "cache",
                "for",
                "docs-portal",
                "owned",
                "by",
                "team-x"
            ]
        );
    }
}
