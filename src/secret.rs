//! Secret values and keeping them out of everything druppie says.
//!
//! A [`Secret`] (a forge token, a webhook secret, an LLM key) never
//! prints: its `Debug` and `Display` show `***`. That stops druppie's own
//! formatting from leaking one, but not a peer's: a forge whose error body
//! echoes the token, git quoting a URL with its password. A [`Scrubber`]
//! knows every configured secret and replaces each one, and the encodings
//! a server may echo it in, with `***` in any text; druppie applies it
//! where text leaves the process (the CLI's output, the log writer
//! [`ScrubbedWriter`], the daemon's HTTP answers, bodies posted to the
//! forge, the forge client's error messages).

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::{Arc, PoisonError, RwLock};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Encoded forms shorter than this are not searched for: they would match
/// ordinary text by chance. The secret itself is always searched for.
const MIN_ENCODED: usize = 8;

/// Replaces every secret it was given, in any text, with [`MASK`].
///
/// One scrubber is made when the process starts and filled once the
/// configuration is read; clones share it, so the log writer made before
/// the configuration was read scrubs what is added later.
///
/// Besides the value itself it finds the forms a server may echo it in:
/// percent-encoded (either case of hex), as a JSON string's content, and
/// in base64 (standard and URL-safe alphabet, at any alignment, so
/// `Basic base64(user:secret)` is found too).
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Every form of every secret, longest first.
    patterns: Arc<RwLock<Vec<String>>>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber").finish_non_exhaustive()
    }
}

impl Scrubber {
    pub fn new() -> Scrubber {
        Scrubber::default()
    }

    /// Scrubs `secret` and its encodings from now on (an empty one is
    /// ignored).
    pub fn add(&self, secret: &Secret) {
        if !secret.is_empty() {
            self.extend(forms(secret.expose()));
        }
    }

    /// Scrubs `text` as written only (a line of a key file, which is
    /// itself an encoding).
    pub fn add_plain(&self, text: &str) {
        if !text.is_empty() {
            self.extend([text.to_owned()]);
        }
    }

    fn extend(&self, forms: impl IntoIterator<Item = String>) {
        let mut patterns = self
            .patterns
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for form in forms {
            if !patterns.contains(&form) {
                patterns.push(form);
            }
        }
        // Longest first: a form that contains another is replaced whole.
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
    }

    /// Scrubs the password of `url` (`scheme://user:password@host/…`),
    /// as written and percent-decoded, when it has one.
    pub fn add_url(&self, url: &str) {
        if let Some(password) = url_password(url) {
            self.add(&Secret::new(percent_decode(password)));
            self.add(&Secret::new(password));
        }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.patterns
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let patterns = self.patterns.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = Cow::Borrowed(text);
        for p in patterns.iter() {
            if out.contains(p.as_str()) {
                out = Cow::Owned(out.replace(p.as_str(), MASK));
            }
        }
        out
    }

    /// [`Scrubber::scrub`] for bytes that may not be UTF-8 (a child's
    /// output): invalid sequences are replaced first.
    pub fn scrub_bytes(&self, bytes: &[u8]) -> String {
        self.scrub(&String::from_utf8_lossy(bytes)).into_owned()
    }
}

/// The forms of `secret` a server may echo.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    let mut encoded = Vec::new();
    encoded.push(percent_encode(secret, false));
    encoded.push(percent_encode(secret, true));
    if let Ok(json) = serde_json::to_string(secret) {
        encoded.push(json[1..json.len() - 1].to_owned());
    }
    for engine in [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        encoded.extend(base64_cores(&engine, secret.as_bytes()));
    }
    for form in encoded {
        if form != secret && form.len() >= MIN_ENCODED && !out.contains(&form) {
            out.push(form);
        }
    }
    out
}

/// The parts of the base64 encoding of `secret` that are the same in any
/// text containing it, one per alignment: the secret may start at any
/// of the three byte offsets of a 3-byte group, and only the groups made
/// of the secret's bytes alone encode the same whatever surrounds it.
fn base64_cores(engine: &impl base64::Engine, secret: &[u8]) -> Vec<String> {
    (0..3)
        .filter_map(|shift: usize| {
            let mut bytes = vec![0u8; shift];
            bytes.extend_from_slice(secret);
            let text = engine.encode(&bytes);
            let start = if shift == 0 { 0 } else { 4 };
            let end = 4 * (bytes.len() / 3);
            (end > start).then(|| text[start..end].to_owned())
        })
        .collect()
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(text: &str, lower: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The password in `scheme://user:password@host…`, if any.
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// A log writer (for `tracing_subscriber::fmt().with_writer`) that scrubs
/// each line before it reaches `inner`.
pub struct ScrubbedWriter<M> {
    inner: M,
    scrubber: Scrubber,
}

impl<M> ScrubbedWriter<M> {
    pub fn new(inner: M, scrubber: Scrubber) -> ScrubbedWriter<M> {
        ScrubbedWriter { inner, scrubber }
    }
}

impl<'a, M> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedWriter<M>
where
    M: tracing_subscriber::fmt::MakeWriter<'a>,
{
    type Writer = Line<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            buf: Vec::new(),
            inner: self.inner.make_writer(),
            scrubber: self.scrubber.clone(),
        }
    }
}

/// One log record, collected and written scrubbed when it is complete
/// (the formatter writes a record, then drops its writer).
pub struct Line<W: io::Write> {
    buf: Vec<u8>,
    inner: W,
    scrubber: Scrubber,
}

impl<W: io::Write> io::Write for Line<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: io::Write> Drop for Line<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = self.scrubber.scrub_bytes(&self.buf);
        let _ = self.inner.write_all(text.as_bytes());
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "gh0-t0ken/with+odd=chars&more";

    fn scrubber() -> Scrubber {
        let s = Scrubber::new();
        s.add(&Secret::new(TOKEN));
        s
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        let shown = format!("{s} {s:?} {:?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_secret_is_scrubbed_as_is_and_percent_encoded_in_either_case() {
        let s = scrubber();
        let text = format!(
            "bad token {TOKEN}; url ?t={}; lower {}",
            percent_encode(TOKEN, false),
            percent_encode(TOKEN, true)
        );
        let out = s.scrub(&text);
        assert_eq!(out, "bad token ***; url ?t=***; lower ***");
    }

    #[test]
    fn a_secret_in_a_basic_header_or_plain_base64_is_scrubbed_at_any_alignment() {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let s = scrubber();
        for user in ["druppie", "x", "ab", "x-access-token", ""] {
            for engine in [STANDARD, URL_SAFE] {
                let basic = engine.encode(format!("{user}:{TOKEN}"));
                let header = format!("Authorization: Basic {basic}");
                let out = s.scrub(&header);
                // What is left of the encoding cannot be decoded back to
                // more than a few of the token's bytes.
                // Left: the groups holding the user's bytes, one group
                // shared with the token on either side, and the mask.
                let left = out.trim_start_matches("Authorization: Basic ");
                assert!(out.contains(MASK), "{user}: {out}");
                assert!(
                    left.len() <= 4 * (user.len() + 1).div_ceil(3) + 4 + MASK.len() + 4,
                    "{user}: {out}"
                );
                let plain = engine.encode(TOKEN);
                assert!(!s.scrub(&plain).contains(&plain[4..plain.len() - 4]));
            }
        }
    }

    #[test]
    fn a_secret_inside_json_is_scrubbed_whatever_it_must_escape() {
        let s = Scrubber::new();
        let secret = "quote\"back\\slash";
        s.add(&Secret::new(secret));
        let json = serde_json::json!({ "last_error": format!("said {secret}") }).to_string();
        assert_eq!(s.scrub(&json), r#"{"last_error":"said ***"}"#);
    }

    #[test]
    fn a_url_password_is_scrubbed_as_written_and_decoded() {
        let s = Scrubber::new();
        s.add_url("https://bot:p%40ss-w0rd-long@git.example.org/platform/spec.git");
        s.add_url("https://git.example.org/no/password.git");
        s.add_url("git@git.example.org:platform/spec.git");
        assert_eq!(
            s.scrub("fatal: https://bot:p%40ss-w0rd-long@host and p@ss-w0rd-long"),
            "fatal: https://bot:***@host and ***"
        );
    }

    #[test]
    fn nothing_is_scrubbed_without_secrets_and_an_empty_secret_is_ignored() {
        let s = Scrubber::new();
        s.add(&Secret::new(""));
        assert!(s.is_empty());
        assert!(matches!(s.scrub("anything"), Cow::Borrowed("anything")));
    }

    #[test]
    fn the_log_writer_scrubs_each_line_and_clones_share_what_is_added_later() {
        use std::io::Write as _;
        use tracing_subscriber::fmt::MakeWriter as _;
        let shared = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = shared.clone();
        let scrubber = Scrubber::new();
        let writer = ScrubbedWriter::new(move || Sink(sink.clone()), scrubber.clone());
        scrubber.add(&Secret::new(TOKEN));
        {
            let mut w = writer.make_writer();
            w.write_all(b"{\"error\":\"401: ").unwrap();
            w.write_all(TOKEN.as_bytes()).unwrap();
            w.write_all(b"\"}\n").unwrap();
        }
        let written = String::from_utf8(shared.lock().unwrap().clone()).unwrap();
        assert_eq!(written, "{\"error\":\"401: ***\"}\n");
    }

    struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
