//! `[llm]`: the optional language-model planner's endpoint and limits.

use serde::{Deserialize, Serialize};

/// `[llm]`: the optional language-model planner, any OpenAI-compatible
/// chat completions endpoint.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Llm {
    /// The API's base (`http://127.0.0.1:11434/v1`); requests go to
    /// `<base_url>/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// The variable holding the API key (none set: no `Authorization`).
    #[serde(default = "default_llm_key_env")]
    pub api_key_env: String,
    /// One request to the model, connecting and its answer included
    /// (`60s`, `2m`).
    #[serde(default = "default_llm_timeout")]
    pub timeout: Span,
    /// The most tokens the model may answer with in one request
    /// (`max_completion_tokens`).
    #[serde(default = "default_llm_max_tokens")]
    pub max_tokens: u32,
    /// The most tokens (prompt and answer, as the endpoint reports them)
    /// one proposal may use over all its requests; past it the model is
    /// left and the rule-based planner drafts.
    #[serde(default = "default_llm_token_budget")]
    pub token_budget: u64,
    /// How many times a draft (or an answer) that does not check out goes
    /// back to the model with its diagnostics before it is given up.
    #[serde(default = "default_llm_repair_rounds")]
    pub repair_rounds: u32,
    /// The most requests one proposal sends, tool calls included.
    #[serde(default = "default_llm_max_requests")]
    pub max_requests: u32,
}

/// The most `repair_rounds` and `max_requests` may be.
pub const LLM_MAX_ROUNDS: u32 = 10;
pub const LLM_MAX_REQUESTS: u32 = 64;

fn default_llm_key_env() -> String {
    "DRUPPIE_LLM_API_KEY".into()
}
fn default_llm_timeout() -> Span {
    Span(std::time::Duration::from_secs(60))
}
fn default_llm_max_tokens() -> u32 {
    4096
}
fn default_llm_token_budget() -> u64 {
    100_000
}
fn default_llm_repair_rounds() -> u32 {
    2
}
fn default_llm_max_requests() -> u32 {
    16
}

/// A span of time, written as `druppie.toml` writes them (`500ms`,
/// `30s`, `5m`, `1h30m`; a bare number is seconds), more than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub std::time::Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Span;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a span of time (`30s`, `5m`, `500ms`) or a number of seconds")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Span, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Span, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Span, E> {
                crate::daemon::parse_duration(v)
                    .map(Span)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

impl Llm {
    /// The first limit outside its range: the key, its value and the
    /// range it must be in.
    pub(super) fn out_of_range(&self) -> Option<(&'static str, u64, String)> {
        let bounds = [
            (
                "max_tokens",
                u64::from(self.max_tokens),
                1,
                u64::from(u32::MAX),
            ),
            ("token_budget", self.token_budget, 1, u64::MAX),
            (
                "repair_rounds",
                u64::from(self.repair_rounds),
                0,
                u64::from(LLM_MAX_ROUNDS),
            ),
            (
                "max_requests",
                u64::from(self.max_requests),
                1,
                u64::from(LLM_MAX_REQUESTS),
            ),
        ];
        bounds
            .into_iter()
            .find(|(_, value, min, max)| value < min || value > max)
            .map(|(key, value, min, max)| {
                let range = if max == u64::MAX || max == u64::from(u32::MAX) {
                    format!("at least {min}")
                } else {
                    format!("from {min} to {max}")
                };
                (key, value, range)
            })
    }
}
