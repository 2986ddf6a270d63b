//! Splitting a Markdown file into its YAML frontmatter and its body.

/// A Markdown file split at its `---` lines.
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// The YAML between the fences.
    pub yaml: &'a str,
    /// Everything after the closing fence.
    pub body: &'a str,
}

/// Why a file could not be split.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    /// The file does not start with `---`: it is plain Markdown.
    NoFrontmatter,
    /// The opening `---` has no closing `---` (or `...`) line.
    Unclosed,
}

/// Splits `text` into frontmatter and body. The opening fence must be the
/// first line (a UTF-8 byte order mark before it is allowed); the closing
/// fence is the next line that is exactly `---` or `...`.
///
/// # Errors
/// [`SplitError::NoFrontmatter`] or [`SplitError::Unclosed`].
pub fn split(text: &str) -> Result<Split<'_>, SplitError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = strip_fence(text).ok_or(SplitError::NoFrontmatter)?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" || bare == "..." {
            return Ok(Split {
                yaml: &rest[..offset],
                body: &rest[offset + line.len()..],
            });
        }
        offset += line.len();
    }
    Err(SplitError::Unclosed)
}

fn strip_fence(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("---")?;
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_yaml_and_body() {
        let s = split("---\nid: x\n---\n# Title\n").expect("valid");
        assert_eq!(s.yaml, "id: x\n");
        assert_eq!(s.body, "# Title\n");
    }

    #[test]
    fn crlf_and_bom() {
        let s = split("\u{feff}---\r\nid: x\r\n---\r\nbody").expect("valid");
        assert_eq!(s.yaml, "id: x\r\n");
        assert_eq!(s.body, "body");
    }

    #[test]
    fn a_later_horizontal_rule_stays_in_the_body() {
        let s = split("---\nid: x\n---\ntext\n---\nmore\n").expect("valid");
        assert_eq!(s.body, "text\n---\nmore\n");
    }

    #[test]
    fn unclosed_and_missing() {
        assert_eq!(split("---\nid: x\n# no end\n"), Err(SplitError::Unclosed));
        assert_eq!(split("# Just markdown\n"), Err(SplitError::NoFrontmatter));
        assert_eq!(split("----\nx\n"), Err(SplitError::NoFrontmatter));
    }
}
