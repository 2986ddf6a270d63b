//! Markdown documentation as HTML that cannot run anything: a block's
//! documentation comes from a spec pull request, so raw HTML in it is
//! shown as text, links go only to `http`, `https`, `mailto` or a place
//! on this site, and images become links (the page's policy loads none
//! from elsewhere).

use pulldown_cmark::{CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd};

/// `text` (CommonMark with tables, strikethrough and task lists) as an
/// HTML fragment, its headings `shift` levels down (a document's `#`
/// under the page's own heading), at most to `<h6>`.
pub fn to_html(text: &str, shift: usize) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Event::Start(Tag::Heading {
            level: lower(level, shift),
            id,
            classes,
            attrs,
        }),
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(lower(level, shift))),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn lower(level: HeadingLevel, shift: usize) -> HeadingLevel {
    let n = (level as usize + shift).min(6);
    HeadingLevel::try_from(n).unwrap_or(HeadingLevel::H6)
}

/// `url` when it is safe to follow, else `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let scheme_end = lower.find([':', '/', '?', '#']);
    let has_scheme = scheme_end.is_some_and(|i| lower[i..].starts_with(':'));
    let allowed = ["http:", "https:", "mailto:"]
        .iter()
        .any(|s| lower.starts_with(s));
    if (has_scheme && !allowed) || lower.starts_with("//") || url.chars().any(char::is_control) {
        CowStr::Borrowed("#")
    } else {
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_text_and_only_safe_links_are_kept() {
        let html = to_html(
            "# Title\n\n<script>alert(1)</script>\n\nText <img src=x onerror=alert(2)> and \
             [a](javascript:alert(3)) [b](JaVaScRiPt:alert(4)) [c](https://example.org/x) \
             [d](//evil.example) [e](#inputs) [f](data:text/html,hi)\n\n![pic](https://example.org/p.png)\n",
            1,
        );
        assert!(html.contains("<h2>Title</h2>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.to_ascii_lowercase().contains("javascript:"), "{html}");
        assert!(!html.contains("data:text"), "{html}");
        assert!(!html.contains("//evil"), "{html}");
        assert!(
            html.contains(r##"<a href="https://example.org/x">c</a>"##),
            "{html}"
        );
        assert!(html.contains(r##"<a href="#inputs">e</a>"##), "{html}");
        assert!(
            html.contains(r##"<a href="https://example.org/p.png">pic</a>"##),
            "{html}"
        );
    }

    #[test]
    fn tables_render() {
        let html = to_html("| a | b |\n|---|---|\n| 1 | 2 |\n\n###### deep\n", 1);
        assert!(
            html.contains("<table>") && html.contains("<td>2</td>"),
            "{html}"
        );
        assert!(html.contains("<h6>deep</h6>"), "{html}");
    }
}
