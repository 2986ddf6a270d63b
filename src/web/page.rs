//! The board's pages: druppie's own templates (`templates/*.html`,
//! compiled into the binary) rendered with HTML escaping on for every
//! value, so nothing from the spec or the forge is ever markup, and the
//! headers every page carries.

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// Scripts and styles only from this site, no inline script or style,
/// no frames, no forms posting elsewhere, connections only back here
/// (the event stream and the page itself).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const TEMPLATES: [(&str, &str); 8] = [
    ("base.html", include_str!("templates/base.html")),
    ("board.html", include_str!("templates/board.html")),
    ("plan.html", include_str!("templates/plan.html")),
    ("catalog.html", include_str!("templates/catalog.html")),
    ("block.html", include_str!("templates/block.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("missing.html", include_str!("templates/missing.html")),
    ("timeline.html", include_str!("templates/timeline.html")),
];

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_filter("urlencode", |s: &str| segment(s));
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the board's templates compile (a test renders each)");
        }
        env
    })
}

/// What every page shows around its own content.
#[derive(Debug, Serialize)]
pub struct Frame<'a> {
    /// The page's title (and its `<h1>`).
    pub title: &'a str,
    /// Which entry of the navigation is this page.
    pub nav: &'a str,
    /// The signed-in person, when there is sign-in.
    pub viewer: Option<&'a str>,
}

/// `template` rendered with `frame` and `page` as an HTML answer.
pub fn html(
    status: StatusCode,
    template: &str,
    frame: &Frame<'_>,
    page: impl Serialize,
) -> Response {
    let ctx = minijinja::context! { frame => Serde(frame), page => Serde(&page) };
    let rendered = templates()
        .get_template(template)
        .and_then(|t| t.render(ctx));
    match rendered {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template, error = %crate::error::chain(&e), "a board page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the page could not be rendered; the log says why\n",
            )
                .into_response()
        }
    }
}

/// A page saying what was not found.
pub fn missing(what: &str, viewer: Option<&str>) -> Response {
    let frame = Frame {
        title: "Not found",
        nav: "",
        viewer,
    };
    html(
        StatusCode::NOT_FOUND,
        "missing.html",
        &frame,
        minijinja::context! { what => what },
    )
}

/// The headers every page and asset carries.
pub async fn headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `s` as one segment of a URL path: every byte but the unreserved ones
/// percent-encoded.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first 12 characters of a commit id.
pub fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// `url` when it is a web address to link to (`http` or `https`).
pub fn href(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    ((lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(char::is_control))
    .then(|| url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            templates().get_template(name).unwrap();
        }
    }

    #[test]
    fn a_path_segment_cannot_leave_its_segment() {
        assert_eq!(segment("permits"), "permits");
        assert_eq!(segment("../a b/?#\"é"), "..%2Fa%20b%2F%3F%23%22%C3%A9");
    }

    #[test]
    fn only_web_addresses_become_links() {
        assert_eq!(
            href("https://forge/pulls/1").as_deref(),
            Some("https://forge/pulls/1")
        );
        assert_eq!(href("druppie/prod/permits"), None);
        assert_eq!(href("javascript:alert(1)"), None);
    }
}
