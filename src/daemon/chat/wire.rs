//! OpenAI's chat shapes, as far as druppie speaks them: the request read
//! (and checked) once, the answers written (`chat.completion`,
//! `chat.completion.chunk`, `list`, the error object).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::planner::Request;

/// The model druppie answers as: itself.
pub const MODEL: &str = "druppie";

/// The most messages a conversation may hold.
pub const MAX_MESSAGES: usize = 100;
/// The most characters of one message.
pub const MAX_MESSAGE: usize = 32 * 1024;
/// The most bytes of the request (the last user message, and a
/// question's answer joined to it): what the planner reads.
pub use crate::planner::propose::MAX_REQUEST;
/// The most characters of a metadata value.
const MAX_METADATA: usize = 512;

/// The body of `POST /v1/chat/completions`; what druppie does not use
/// (temperature, tools, …) is read and ignored, as an OpenAI-compatible
/// server does.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub n: Option<u64>,
    /// `owner`, `environments` (comma-separated), `name`.
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content: a string, or parts of which the text ones count.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Message {
    fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// A request druppie does not take, as OpenAI's error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub kind: &'static str,
    pub code: &'static str,
    pub param: Option<String>,
    pub message: String,
}

impl Refusal {
    pub fn invalid(param: &str, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status: 400,
            kind: "invalid_request_error",
            code,
            param: Some(param.to_owned()),
            message: message.into(),
        }
    }

    /// `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

/// The heading an answer's open questions are listed under: when the
/// last assistant message has it, the next user message answers them.
pub const QUESTIONS: &str = "Open questions:";

impl ChatRequest {
    /// Parses a body, with OpenAI's error for what does not parse.
    pub fn parse(body: &[u8]) -> Result<ChatRequest, Refusal> {
        serde_json::from_slice(body).map_err(|e| {
            Refusal::invalid(
                "body",
                "invalid_json",
                format!("the body is not a chat completion request: {e}"),
            )
        })
    }

    /// What the conversation asks, checked: the model is druppie, the
    /// conversation within its limits, the request a sentence without
    /// control characters, and the metadata names that are names.
    ///
    /// The request is the last user message; when the assistant's last
    /// answer asked questions, the user message before it comes first
    /// ("a permit portal with a database" + "for team-x").
    pub fn request(&self) -> Result<Request, Refusal> {
        if self.model != MODEL {
            return Err(Refusal {
                status: 404,
                kind: "invalid_request_error",
                code: "model_not_found",
                param: Some("model".into()),
                message: format!(
                    "The model `{}` does not exist: this server is druppie and answers as the model `{MODEL}`",
                    clip(&self.model)
                ),
            });
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(Refusal::invalid(
                "n",
                "unsupported_value",
                "druppie gives one answer: n must be 1",
            ));
        }
        if self.messages.len() > MAX_MESSAGES {
            return Err(Refusal::invalid(
                "messages",
                "too_many_messages",
                format!(
                    "the conversation has {} messages; druppie reads at most {MAX_MESSAGES}",
                    self.messages.len()
                ),
            ));
        }
        let texts: Vec<String> = self.messages.iter().map(Message::text).collect();
        for (i, t) in texts.iter().enumerate() {
            if t.chars().count() > MAX_MESSAGE {
                return Err(Refusal::invalid(
                    &format!("messages[{i}].content"),
                    "string_above_max_length",
                    format!("message {i} is longer than {MAX_MESSAGE} characters"),
                ));
            }
        }
        let users: Vec<usize> = (0..self.messages.len())
            .filter(|&i| self.messages[i].role == "user")
            .collect();
        let Some(&last) = users.last() else {
            return Err(Refusal::invalid(
                "messages",
                "no_user_message",
                "the conversation has no user message: druppie answers the last one",
            ));
        };
        let asked = self.messages[..last]
            .iter()
            .rposition(|m| m.role == "assistant")
            .is_some_and(|a| texts[a].contains(QUESTIONS));
        let earlier = users.iter().rev().nth(1).filter(|_| asked);
        let mut text = texts[last].trim().to_owned();
        if let Some(&e) = earlier {
            text = format!("{} {text}", texts[e].trim());
        }
        let param = format!("messages[{last}].content");
        if text.is_empty() {
            return Err(Refusal::invalid(
                &param,
                "empty_message",
                "the last user message is empty",
            ));
        }
        if text.len() > MAX_REQUEST {
            return Err(Refusal::invalid(
                &param,
                "string_above_max_length",
                format!(
                    "the request is {} bytes; druppie reads at most {MAX_REQUEST}: say what is needed in a sentence or two",
                    text.len()
                ),
            ));
        }
        control(&param, &text)?;
        let meta = |key: &str| -> Result<Option<String>, Refusal> {
            let Some(value) = self.metadata.as_ref().and_then(|m| m.get(key)) else {
                return Ok(None);
            };
            let param = format!("metadata.{key}");
            let Some(s) = value.as_str() else {
                return Err(Refusal::invalid(
                    &param,
                    "invalid_type",
                    "metadata values are strings",
                ));
            };
            if s.chars().count() > MAX_METADATA {
                return Err(Refusal::invalid(
                    &param,
                    "string_above_max_length",
                    format!("longer than {MAX_METADATA} characters"),
                ));
            }
            control(&param, s)?;
            Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
        };
        let label = |key: &str, value: &str, what: &str| -> Result<(), Refusal> {
            crate::spec::names::dns_label(value).map_err(|e| {
                Refusal::invalid(
                    &format!("metadata.{key}"),
                    "invalid_name",
                    format!("{what} {:?} is refused: {e}", clip(value)),
                )
            })
        };
        let owner = meta("owner")?;
        if let Some(o) = &owner {
            label("owner", o, "the owner")?;
        }
        let name = meta("name")?;
        if let Some(n) = &name {
            label("name", n, "the plan name")?;
        }
        let mut envs = Vec::new();
        for e in meta("environments")?.iter().flat_map(|s| s.split(',')) {
            let e = e.trim();
            if e.is_empty() {
                continue;
            }
            label("environments", e, "the environment")?;
            envs.push(e.to_owned());
        }
        Ok(Request {
            text,
            owner,
            envs,
            name,
        })
    }

    /// Words in the conversation, the "prompt tokens" druppie reports.
    pub fn words(&self) -> usize {
        self.messages.iter().map(|m| words(&m.text())).sum()
    }
}

/// Refuses control characters other than tab and line breaks.
fn control(param: &str, text: &str) -> Result<(), Refusal> {
    match text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some((at, c)) => Err(Refusal::invalid(
            param,
            "control_character",
            format!(
                "the text holds the control character U+{:04X} at character {at}",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// At most 64 characters of what a client sent, for a message.
fn clip(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

pub fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// One answer's identity, shared by its chunks.
pub struct Completion {
    pub id: String,
    pub created: u64,
}

impl Completion {
    pub fn new() -> Completion {
        Completion {
            id: format!(
                "chatcmpl-{:016x}{:08x}",
                fastrand::u64(..),
                fastrand::u32(..)
            ),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// The whole answer (`chat.completion`); `facts` is druppie's own
    /// field, what the answer says as data.
    pub fn whole(&self, content: &str, prompt: usize, facts: &Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": MODEL,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage(prompt, words(content)),
            "druppie": facts,
        })
    }

    /// A chunk with `delta`, and `finish_reason` on the last.
    pub fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": MODEL,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish,
            }],
        })
    }

    /// The usage chunk `stream_options.include_usage` asks for: no
    /// choices.
    pub fn usage_chunk(&self, prompt: usize, completion: usize) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": MODEL,
            "choices": [],
            "usage": usage(prompt, completion),
        })
    }
}

/// Usage in words: druppie has no tokenizer.
fn usage(prompt: usize, completion: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// `content` in the pieces a stream sends: a line at a time.
pub fn pieces(content: &str) -> Vec<&str> {
    content.split_inclusive('\n').collect()
}

/// `GET /v1/models`: druppie itself.
pub fn models(created: u64) -> Value {
    json!({
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": created, "owned_by": "druppie"}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> Result<Request, Refusal> {
        ChatRequest::parse(body.to_string().as_bytes())?.request()
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn the_last_user_message_is_the_request_and_metadata_says_the_rest() {
        let r = request(json!({
            "model": "druppie",
            "messages": [{"role": "system", "content": "be brief"}, user("a redis cache"), {"role": "assistant", "content": "ok"}, user("a permit portal")],
            "metadata": {"owner": "team-x", "environments": "dev, prod", "name": "permits-2"},
        }))
        .unwrap();
        assert_eq!(r.text, "a permit portal");
        assert_eq!(r.owner.as_deref(), Some("team-x"));
        assert_eq!(r.envs, ["dev", "prod"]);
        assert_eq!(r.name.as_deref(), Some("permits-2"));
    }

    #[test]
    fn an_answer_to_open_questions_joins_the_request_it_answers() {
        let r = request(json!({
            "model": "druppie",
            "messages": [user("a permit portal with a database"), {"role": "assistant", "content": format!("Not proposed.\n\n{QUESTIONS}\n- Which team owns it?")}, user("for team-x")],
        }))
        .unwrap();
        assert_eq!(r.text, "a permit portal with a database for team-x");
    }

    #[test]
    fn content_parts_count_by_their_text() {
        let r = request(json!({
            "model": "druppie",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "which blocks give a database?"}, {"type": "image_url", "image_url": {"url": "x"}}]}],
        }))
        .unwrap();
        assert_eq!(r.text, "which blocks give a database?");
    }

    #[test]
    fn hostile_requests_get_openai_errors_that_say_why() {
        let refused = |body: Value| request(body).unwrap_err();
        let e = refused(json!({"model": "gpt-4o", "messages": [user("hi")]}));
        assert_eq!((e.status, e.code), (404, "model_not_found"));
        let e = refused(json!({"model": "druppie", "messages": [user("a\u{0}b")]}));
        assert_eq!(e.code, "control_character");
        assert!(e.message.contains("U+0000"), "{}", e.message);
        let e = refused(json!({"model": "druppie", "messages": [user(&"x ".repeat(MAX_REQUEST))]}));
        assert_eq!(e.code, "string_above_max_length");
        let many: Vec<Value> = (0..=MAX_MESSAGES).map(|_| user("hi")).collect();
        assert_eq!(
            refused(json!({"model": "druppie", "messages": many})).code,
            "too_many_messages"
        );
        let e = refused(
            json!({"model": "druppie", "messages": [user("a portal")], "metadata": {"name": "../../x"}}),
        );
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("invalid_name", Some("metadata.name"))
        );
        let e = refused(
            json!({"model": "druppie", "messages": [user("a portal")], "metadata": {"environments": "dev,../prod"}}),
        );
        assert_eq!(e.code, "invalid_name");
        let e =
            refused(json!({"model": "druppie", "messages": [{"role": "system", "content": "x"}]}));
        assert_eq!(e.code, "no_user_message");
        let e = ChatRequest::parse(b"{").unwrap_err();
        assert_eq!((e.status, e.code), (400, "invalid_json"));
        assert_eq!(e.body()["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn a_stream_is_the_answer_line_by_line() {
        let text = "one\ntwo\n\nthree";
        assert_eq!(pieces(text).concat(), text);
        assert_eq!(pieces(text).len(), 4);
    }
}
