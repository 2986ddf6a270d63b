//! A scripted API server for tests: a real `kube::Client` whose HTTP
//! requests arrive here one at a time, to be checked and answered.

use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use serde::Serialize;
use serde_json::Value;
use tower_test::mock::{Handle, SendResponse};

use super::Cluster;

/// A cluster whose API server is the returned [`ApiServer`].
pub(crate) fn mock_cluster() -> (Cluster, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (Cluster::from_client(client), ApiServer(handle))
}

pub(crate) struct ApiServer(Handle<Request<Body>, Response<Body>>);

/// A request the client sent: its JSON body, and how to answer.
pub(crate) struct Received {
    pub body: Value,
    reply: SendResponse<Response<Body>>,
}

impl ApiServer {
    /// Waits for the next request and asserts its method and path.
    pub async fn expect(&mut self, method: Method, path: &str) -> Received {
        let (request, reply) = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request arrived; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        assert_eq!(
            (request.method(), request.uri().path()),
            (&method, path),
            "unexpected request {}",
            request.uri()
        );
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        Received { body, reply }
    }

    /// Asserts the client sends nothing more: fails on its next request,
    /// passes once every handle to the client has been dropped.
    pub async fn expect_done(mut self) {
        let next = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .expect("client still alive");
        if let Some((request, _)) = next {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

impl Received {
    /// Answers with `status` and `body` as JSON.
    pub fn reply(self, status: u16, body: &impl Serialize) {
        let bytes = serde_json::to_vec(body).expect("serializable reply");
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .expect("valid response");
        self.reply.send_response(response);
    }

    /// Answers with a Kubernetes `Status` error, as the API server does.
    pub fn fail(self, code: u16, reason: &str) {
        let status =
            kube::core::Status::failure(&format!("scripted {reason}"), reason).with_code(code);
        self.reply(code, &status);
    }
}
