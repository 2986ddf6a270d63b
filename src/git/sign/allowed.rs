//! Allowed-signers files (the format of `gpg.ssh.allowedSignersFile`,
//! ALLOWED SIGNERS in ssh-keygen(1)): every line checked as ssh-keygen
//! reads it, so a bad line is an error at its line and never a line
//! ssh-keygen silently skips.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::SSH_KEYGEN;

/// A line of an allowed-signers file that ssh-keygen would not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{shown}:{line}: {why}")]
pub struct AllowedSignersError {
    /// The file, as the user knows it (`spec/approvers.allowed_signers`).
    pub shown: String,
    pub line: usize,
    pub why: String,
}

/// An allowed-signers file (the format of `gpg.ssh.allowedSignersFile`,
/// ALLOWED SIGNERS in ssh-keygen(1)), checked line by line when read and
/// handed to ssh-keygen as a file.
#[derive(Debug)]
pub struct AllowedSigners {
    file: AllowedFile,
}

#[derive(Debug)]
enum AllowedFile {
    Path(PathBuf),
    Temp(tempfile::TempPath),
}

impl AllowedSigners {
    /// The allowed-signers file at `path`, as it is on disk.
    ///
    /// # Errors
    /// It cannot be read, or a line is malformed (`path:line`).
    pub fn from_file(path: &Path) -> Result<AllowedSigners, AllowedSignersError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| AllowedSignersError {
            shown: shown.clone(),
            line: 0,
            why: format!("cannot read it: {e}"),
        })?;
        check(&text, &shown)?;
        Ok(AllowedSigners {
            file: AllowedFile::Path(path.to_owned()),
        })
    }

    /// An allowed-signers file with this text (`shown` names it in
    /// errors), kept in a temporary file while the value lives.
    ///
    /// # Errors
    /// A line is malformed, or the temporary file cannot be written.
    pub fn parse(text: &str, shown: &str) -> Result<AllowedSigners, AllowedSignersError> {
        check(text, shown)?;
        let fail = |e: std::io::Error| AllowedSignersError {
            shown: shown.to_owned(),
            line: 0,
            why: format!("cannot keep a copy for {SSH_KEYGEN}: {e}"),
        };
        let mut file = tempfile::Builder::new()
            .prefix(".druppie-allowed-")
            .tempfile()
            .map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.flush().map_err(fail)?;
        Ok(AllowedSigners {
            file: AllowedFile::Temp(file.into_temp_path()),
        })
    }

    pub(super) fn path(&self) -> &Path {
        match &self.file {
            AllowedFile::Path(p) => p,
            AllowedFile::Temp(t) => t,
        }
    }
}

/// Checks every line of an allowed-signers file as ssh-keygen reads it:
/// `principals [options] keytype base64 [comment]`, `#` comments and
/// blank lines ignored, options among `cert-authority`,
/// `namespaces="…"`, `valid-after="…"`, `valid-before="…"`. ssh-keygen
/// stops at the first line it cannot read, so one bad line disables
/// every line after it: such a file is refused as a whole.
///
/// # Errors
/// The first malformed line, located.
pub fn check(text: &str, shown: &str) -> Result<(), AllowedSignersError> {
    for (n, line) in text.lines().enumerate() {
        check_line(line).map_err(|why| AllowedSignersError {
            shown: shown.to_owned(),
            line: n + 1,
            why,
        })?;
    }
    Ok(())
}

fn check_line(line: &str) -> Result<(), String> {
    let line = line.trim_start_matches([' ', '\t']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(());
    }
    let (principals, rest) = token(line)?;
    if principals.is_empty() || rest.trim().is_empty() {
        return Err("a line needs principals and a public key".to_owned());
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    if is_key(rest) {
        return Ok(());
    }
    let (options, key) = token(rest)?;
    if is_key_type(options) {
        return Err("no readable public key on this line".to_owned());
    }
    for option in split_options(options)? {
        check_option(option)?;
    }
    let key = key.trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err("no public key after the options".to_owned());
    }
    if !is_key(key) {
        return Err("no readable public key on this line".to_owned());
    }
    Ok(())
}

/// The first whitespace-separated field (quotes keep spaces), and the
/// rest of the line.
fn token(s: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Ok((&s[..i], &s[i..])),
            _ => {}
        }
    }
    if quoted {
        return Err("a quote is not closed".to_owned());
    }
    Ok((s, ""))
}

fn split_options(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    Ok(out)
}

fn check_option(option: &str) -> Result<(), String> {
    let lower = option.to_ascii_lowercase();
    if lower == "cert-authority" {
        return Ok(());
    }
    for name in ["namespaces", "valid-after", "valid-before"] {
        let Some(value) = lower.strip_prefix(name).and_then(|v| v.strip_prefix('=')) else {
            continue;
        };
        let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            return Err(format!("`{name}=` needs a quoted value"));
        };
        if name != "namespaces" && !is_time(inner) {
            return Err(format!(
                "`{name}` is not a time ssh-keygen reads (YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, optionally ending in Z)"
            ));
        }
        return Ok(());
    }
    Err(format!(
        "unknown option `{option}` (ssh-keygen knows cert-authority, namespaces, valid-after, valid-before)"
    ))
}

fn is_time(s: &str) -> bool {
    let digits = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    matches!(digits.len(), 8 | 12 | 14) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` starts with a public key ssh-keygen can read: a known key
/// type and its base64 blob.
fn is_key(s: &str) -> bool {
    if ssh_key::PublicKey::from_openssh(s.trim()).is_ok() {
        return true;
    }
    // Key types this build of ssh-key does not decode (RSA, ECDSA,
    // certificates) are still read by ssh-keygen.
    let mut fields = s.split_whitespace();
    let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
        return false;
    };
    is_key_type(kind)
        && blob.len() >= 16
        && blob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
}

/// Whether `kind` names an SSH key type.
fn is_key_type(kind: &str) -> bool {
    const KINDS: [&str; 7] = [
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-",
    ];
    KINDS
        .iter()
        .any(|k| kind == *k || (k.ends_with('-') && kind.starts_with(k)))
        || kind.ends_with("-cert-v01@openssh.com")
}
#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnubDLu16Q23oRbyjpN/C65riC3kRjo+UCe4aec2x1s druppie";

    #[test]
    fn every_option_of_the_format_reads_and_a_bad_line_is_located() {
        let good = format!(
            "# approvers\n\n  a@x {KEY}\na@x,b@y namespaces=\"git,file\" {KEY}\n\"a b@x\" cert-authority,valid-after=\"20260101\",valid-before=\"20270101120000Z\" {KEY}\n*@x,!c@x VALID-BEFORE=\"202601011200\" {KEY}\n"
        );
        assert_eq!(check(&good, "f"), Ok(()));
        let bad = |line: &str| check(&format!("# ok\n{line}\n"), "spec/a").unwrap_err();
        assert_eq!(
            bad("a@x").to_string(),
            "spec/a:2: a line needs principals and a public key"
        );
        assert!(
            bad(&format!("a@x expires=\"20260101\" {KEY}"))
                .why
                .contains("unknown option")
        );
        assert!(
            bad(&format!("a@x valid-before=20260101 {KEY}"))
                .why
                .contains("quoted")
        );
        assert!(
            bad(&format!("a@x valid-before=\"2026\" {KEY}"))
                .why
                .contains("not a time")
        );
        assert!(
            bad("a@x ssh-ed25519 !!!")
                .why
                .contains("no readable public key")
        );
        assert!(bad(&format!("\"a@x {KEY}")).why.contains("quote"));
    }
}
