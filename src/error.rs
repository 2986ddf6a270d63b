//! Errors as text for people: one line with every cause, for logs and
//! the API (the CLI prints the causes on lines of their own), and the
//! commands an error tells someone to run.

/// `err` and its chain of sources, joined by `: `.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        // A message that already ends with its cause's text.
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// `text` quoted for a POSIX shell where it needs it, for a command in
/// a message.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@=,".contains(&b))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_quoted_only_when_they_need_it() {
        assert_eq!(
            super::shell_quote("/srv/git/infra.git"),
            "/srv/git/infra.git"
        );
        assert_eq!(
            super::shell_quote("/srv/my git/it's"),
            r"'/srv/my git/it'\''s'"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("infra: cannot move the branch")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_on_the_line_once() {
        let e = Outer(std::io::Error::other("no space left"));
        assert_eq!(
            super::chain(&e),
            "infra: cannot move the branch: no space left"
        );
    }
}
