//! The key never leaves, whatever the endpoint echoes.

use super::*;

/// A server that answers every request with `status` and a body (and a
/// header) echoing the `Authorization` header it got, as is and in
/// base64.
struct Echo {
    url: String,
    child: Child,
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ECHO: &str = r#"
import base64, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

status = int(sys.argv[1])

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        auth = self.headers.get("authorization", "")
        said = "invalid key: " + auth + "; base64 " + base64.b64encode(auth.encode()).decode()
        if status == 200:
            body = ("not a completion " + said).encode()
        else:
            body = json.dumps({"error": {"message": said, "type": "invalid_request_error",
                                         "param": None, "code": "invalid_api_key"}}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo", auth)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_port, flush=True)
server.serve_forever()
"#;

fn echo(status: u16) -> Echo {
    let mut child = Command::new("python3")
        .args(["-c", ECHO, &status.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut port)
        .expect("the server says its port");
    Echo {
        url: format!("http://127.0.0.1:{}/v1", port.trim()),
        child,
    }
}

#[test]
fn the_llm_key_never_leaves_whatever_the_endpoint_echoes() {
    for status in [401, 500, 200] {
        let server = echo(status);
        let s = setup(&server.url, "");
        let run = assert_the_key_stays_in(&s);
        assert_eq!(run.code, 0, "{status}: {}", run.stderr);
        let expected = match status {
            200 => "rules (language model's answer rejected)",
            _ => &format!("rules (language model answered HTTP {status})"),
        };
        assert_eq!(
            s.proposals(),
            [(
                "druppie/propose/permit-portal".to_owned(),
                expected.to_owned()
            )],
            "{}",
            run.stdout
        );
        // The echo reached druppie, scrubbed.
        if status == 401 {
            assert!(
                run.stdout.contains("invalid key: Bearer ***"),
                "{}",
                run.stdout
            );
        }
    }
}
