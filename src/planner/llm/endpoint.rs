//! The chat completions endpoint, through `async-openai`: one request at
//! a time on a small current-thread runtime of its own, each bounded by
//! `[llm] timeout`. The planner above it is synchronous; when it is
//! called from inside a runtime (the daemon's API), the request runs on
//! a thread of its own, so runtimes are never nested.

use std::time::Duration;

use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};

use super::Failure;
use crate::secret::{Scrubber, Secret};

/// Where requests go and how they authenticate: `async-openai`'s own
/// `OpenAIConfig` reads `OPENAI_*` variables from the environment, which
/// the library never does, so this one holds only what it is given.
struct Target {
    base: String,
    key: SecretString,
}

impl async_openai::config::Config for Target {
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let key = self.key.expose_secret();
        if !key.is_empty()
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {key}"))
        {
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        headers
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn query(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }

    fn api_base(&self) -> &str {
        &self.base
    }

    fn api_key(&self) -> &SecretString {
        &self.key
    }
}

/// A model that answers chat completion requests.
pub(super) trait Model {
    /// The model's answer to `request`.
    ///
    /// # Errors
    /// The endpoint cannot be reached, times out, or answers with an
    /// error or with something that is not a chat completion.
    fn complete(
        &self,
        request: &CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, Failure>;
}

/// An OpenAI-compatible endpoint.
pub(super) struct Endpoint {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    client: async_openai::Client<Target>,
    timeout: Duration,
    scrubber: Scrubber,
}

impl Endpoint {
    /// A client for `base_url`, sending `key` (when there is one) as a
    /// bearer token.
    pub(super) fn new(
        base_url: &str,
        key: Option<&Secret>,
        timeout: Duration,
        scrubber: Scrubber,
    ) -> Result<Endpoint, Failure> {
        // One TLS provider for the process; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Unreachable(format!("cannot start a runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("druppie/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            // The key goes to the configured endpoint only.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::Unreachable(scrubber.scrub(&chain(&e)).into_owned()))?;
        let target = Target {
            base: base_url.trim_end_matches('/').to_owned(),
            key: SecretString::from(key.map(|k| k.expose().to_owned()).unwrap_or_default()),
        };
        Ok(Endpoint {
            runtime: Some(runtime),
            client: async_openai::Client::build(http, target),
            timeout,
            scrubber,
        })
    }

    fn send(
        &self,
        request: &CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, Failure> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("set until the endpoint is dropped");
        let call = || {
            runtime.block_on(async {
                tokio::time::timeout(self.timeout, self.client.chat().create(request.clone())).await
            })
        };
        let answered = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(call).join())
                .map_err(|_| Failure::Unreachable("the request's thread stopped".to_owned()))?
        } else {
            call()
        };
        match answered {
            Err(_) => Err(Failure::TimedOut(self.timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.failure(e)),
        }
    }

    /// What went wrong, in words that hold no secret.
    fn failure(&self, e: async_openai::error::OpenAIError) -> Failure {
        use async_openai::error::OpenAIError;
        let scrub = |text: String| self.scrubber.scrub(&one_line(&text, 300)).into_owned();
        match e {
            OpenAIError::Reqwest(e) if e.is_timeout() => Failure::TimedOut(self.timeout),
            OpenAIError::Reqwest(e) => Failure::Unreachable(scrub(chain(&e))),
            OpenAIError::ApiError(api) => Failure::Http {
                status: api.status_code.as_u16(),
                said: scrub(api.api_error.to_string()),
            },
            // The content is not repeated: it is the endpoint's, and long.
            OpenAIError::JSONDeserialize(e, _) => Failure::Nonsense(scrub(format!(
                "the endpoint's answer is not a chat completion ({e})"
            ))),
            other => Failure::Unreachable(scrub(chain(&other))),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // Without waiting, which a runtime's task may not do: the planner
        // may be called from one.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Model for Endpoint {
    fn complete(
        &self,
        request: &CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, Failure> {
        self.send(request)
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    crate::error::chain(e)
}

/// `text` on one line, at most `max` characters.
pub(super) fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use async_openai::config::Config as _;

    use super::*;

    fn target(key: &str) -> Target {
        Target {
            base: "http://127.0.0.1:1/v1".to_owned(),
            key: SecretString::from(key.to_owned()),
        }
    }

    #[test]
    fn the_key_is_a_sensitive_bearer_header_and_no_key_sends_none() {
        let headers = target("sk-one-two").headers();
        let auth = headers.get(AUTHORIZATION).expect("authorization");
        assert_eq!(auth.to_str().ok(), Some("Bearer sk-one-two"));
        assert!(
            auth.is_sensitive(),
            "hidden from reqwest's and hyper's Debug"
        );
        assert!(target("").headers().is_empty());
        assert_eq!(
            target("").url("/chat/completions"),
            "http://127.0.0.1:1/v1/chat/completions"
        );
    }

    #[test]
    fn a_request_made_from_inside_a_runtime_runs_beside_it_not_inside() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let endpoint = Endpoint::new(
            &format!("http://127.0.0.1:{port}/v1"),
            None,
            Duration::from_secs(5),
            Scrubber::new(),
        )
        .expect("a client");
        let request = CreateChatCompletionRequest {
            model: "m".to_owned(),
            ..Default::default()
        };
        // Called straight from a task of another runtime (a handler of
        // the daemon's API), where blocking on a runtime would panic.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let answered = runtime.block_on(async move { endpoint.complete(&request) });
        assert!(
            matches!(&answered, Err(Failure::Unreachable(why)) if why.contains("Connect")),
            "{answered:?}"
        );
    }

    #[test]
    fn what_the_endpoint_says_is_scrubbed_of_the_key() {
        let scrubber = Scrubber::new();
        scrubber.add(&Secret::new("sk-canary-123456789"));
        let endpoint = Endpoint::new(
            "http://127.0.0.1:1/v1",
            None,
            Duration::from_secs(1),
            scrubber,
        )
        .expect("a client");
        let said =
            async_openai::error::OpenAIError::ApiError(async_openai::error::ApiErrorResponse {
                status_code: reqwest::StatusCode::UNAUTHORIZED,
                api_error: async_openai::error::ApiError {
                    message: "bad key Bearer sk-canary-123456789\nsecond line".to_owned(),
                    ..Default::default()
                },
            });
        assert_eq!(
            endpoint.failure(said),
            Failure::Http {
                status: 401,
                said: "bad key Bearer *** second line".to_owned()
            }
        );
    }
}
