//! Errors as one line of text, for logs and the API: the message and
//! every cause under it, outermost first (the CLI prints the causes on
//! lines of their own).

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

#[cfg(test)]
mod tests {
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
