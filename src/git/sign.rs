//! SSH signatures on commits: SSHSIG over the commit without its `gpgsig`
//! header, namespace `git`, as `git verify-commit` with `gpg.format=ssh`
//! checks them.
//!
//! Two questions, answered two ways:
//! - *Did druppie sign this?* ([`OwnKey`]): the signature is by druppie's
//!   own key, in namespace `git`, over these bytes. No allowed-signers
//!   file is involved, so this is checked in Rust.
//! - *Does an allowed-signers file accept this signature?*
//!   ([`AllowedSigners`], [`Repo::check_signature`]): answered by
//!   `ssh-keygen -Y find-principals` and `-Y verify`, run exactly as git
//!   runs them (`-Overify-time=` the committer's time), so druppie and
//!   `git verify-commit` never disagree on an option of the format
//!   (`namespaces`, `valid-after`, `valid-before`, `cert-authority`,
//!   principal patterns).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gix::bstr::ByteSlice as _;
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use super::{ObjectId, Repo};

/// The program git runs for SSH signatures (`gpg.ssh.program`).
const SSH_KEYGEN: &str = "ssh-keygen";
/// The namespace git signs commits in.
const NAMESPACE: &str = "git";

/// A loaded ed25519 signing key. Its secret never reaches a message.
pub struct Signer {
    key: PrivateKey,
    path: PathBuf,
}

/// Why a key cannot be used; names the file, never its content.
#[derive(Debug, thiserror::Error)]
#[error("signing key {}: {why}", path.display())]
pub struct KeyError {
    pub path: PathBuf,
    pub why: String,
}

impl Signer {
    /// Reads an OpenSSH ed25519 private key. Like ssh, refuses a key file
    /// that others may read.
    ///
    /// # Errors
    /// The file is missing or unreadable, readable by group or others,
    /// encrypted, not an OpenSSH private key, or not ed25519.
    pub fn load(path: &Path) -> Result<Signer, KeyError> {
        let fail = |why: String| KeyError {
            path: path.to_owned(),
            why,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(fail(format!(
                    "permissions {mode:04o} are too open; it must be readable by its owner only (chmod 600)"
                )));
            }
        }
        let _ = meta;
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let key = PrivateKey::from_openssh(&text)
            .map_err(|_| fail("not an OpenSSH private key".to_owned()))?;
        if key.is_encrypted() {
            return Err(fail(
                "it is passphrase-protected; druppie needs a key it can use unattended".to_owned(),
            ));
        }
        if key.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(fail(format!(
                "it is a {} key; druppie signs with ed25519",
                key.algorithm()
            )));
        }
        Ok(Signer {
            key,
            path: path.to_owned(),
        })
    }

    /// The public key, as a line of an allowed-signers file needs it.
    pub fn public_key(&self) -> String {
        self.key
            .public_key()
            .to_openssh()
            .expect("an ed25519 public key encodes")
    }

    /// The public half, to recognise druppie's own commits by.
    pub fn own_key(&self) -> OwnKey {
        OwnKey(self.key.public_key().clone())
    }

    /// The armored SSHSIG of `payload` (namespace `git`, SHA-512).
    ///
    /// # Errors
    /// The signature could not be made (reported with the key's path).
    pub fn sign(&self, payload: &[u8]) -> Result<String, KeyError> {
        let sig = self
            .key
            .sign(NAMESPACE, HashAlg::Sha512, payload)
            .map_err(|e| KeyError {
                path: self.path.clone(),
                why: format!("cannot sign: {e}"),
            })?;
        sig.to_pem(LineEnding::LF).map_err(|e| KeyError {
            path: self.path.clone(),
            why: format!("cannot encode the signature: {e}"),
        })
    }
}

/// druppie's own public key: what it trusts when it reads back its own
/// state (proposal branches, its commits at branch tips, the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnKey(ssh_key::PublicKey);

impl OwnKey {
    /// Whether `signature` (armored SSHSIG) is this key's, in namespace
    /// `git`, over exactly `payload`.
    pub fn signed(&self, signature: &[u8], payload: &[u8]) -> bool {
        let Ok(sig) = ssh_key::SshSig::from_pem(signature) else {
            return false;
        };
        sig.public_key() == self.0.key_data()
            && sig.namespace() == NAMESPACE
            && self.0.verify(NAMESPACE, payload, &sig).is_ok()
    }

    /// The key as an allowed-signers line for `principal`.
    pub fn allowed_line(&self, principal: &str) -> String {
        let key = self.0.to_openssh().expect("an ed25519 public key encodes");
        format!("{principal} {key}\n")
    }
}

/// A line of an allowed-signers file that ssh-keygen would not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{shown}:{line}: {why}")]
pub struct AllowedSignersError {
    /// The file, as the user knows it (`spec/approvers.allowed_signers`).
    pub shown: String,
    pub line: usize,
    pub why: String,
}

/// Why a signature could not be checked at all (as opposed to a
/// [`Verdict`], which is the answer).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// ssh-keygen could not be started (it is what git runs, and
    /// druppie needs it for the same reason).
    #[error("cannot run {SSH_KEYGEN} to check signatures")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
    /// The signature could not be handed to ssh-keygen.
    #[error("cannot write a temporary file for {SSH_KEYGEN}")]
    Temp {
        #[source]
        source: std::io::Error,
    },
    /// The commit could not be read.
    #[error("cannot read the signature of commit {commit}")]
    Read {
        commit: ObjectId,
        #[source]
        source: super::Error,
    },
}

impl VerifyError {
    /// Whether trying again may help: a missing ssh-keygen or an
    /// unreadable commit stays so; a temporary file may be writable later.
    pub fn is_transient(&self) -> bool {
        match self {
            VerifyError::Spawn { source } => source.kind() != std::io::ErrorKind::NotFound,
            VerifyError::Temp { .. } => true,
            VerifyError::Read { .. } => false,
        }
    }
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

    fn path(&self) -> &Path {
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

/// What a commit's signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `git verify-commit` calls it good, and the committer's email is a
    /// principal the allowed signers accept for the key.
    Verified {
        principal: String,
    },
    Unsigned,
    /// Signed by a key the allowed signers do not list.
    UnknownKey,
    /// The allowed signers list the key but refuse it here (expired, not
    /// yet valid, another namespace, a certificate where a key is
    /// expected, …): ssh-keygen's reason.
    Refused(String),
    /// The signature does not match the commit (tampered, or not SSHSIG).
    BadSignature(String),
    /// A valid signature by an allowed key of somebody other than the
    /// committer: git would call it good, druppie does not.
    NotCommitter {
        principal: String,
        committer: String,
    },
}

impl Verdict {
    /// One word for the verdict, as `druppie audit` shows it.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Verified { .. } => "verified",
            Verdict::Unsigned => "unsigned",
            Verdict::UnknownKey => "unknown-key",
            Verdict::Refused(_) => "refused",
            Verdict::BadSignature(_) => "bad-signature",
            Verdict::NotCommitter { .. } => "not-committer",
        }
    }
}

/// A signed commit's parts, as git hands them to ssh-keygen.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The armored signature (`gpgsig`).
    pub signature: Vec<u8>,
    /// The commit without its signature: what was signed.
    pub payload: Vec<u8>,
    pub committer_email: String,
    /// Seconds since the epoch: the time the signature is judged at.
    pub committer_time: i64,
}

impl Signed {
    /// Checks the signature against `allowed` exactly as `git
    /// verify-commit` does (find the principals of the key, then verify
    /// as each until one is good), then that the committer's email is
    /// a principal the file accepts for the key.
    ///
    /// # Errors
    /// ssh-keygen cannot be run, or the signature cannot be written for it.
    pub fn verify(&self, allowed: &AllowedSigners) -> Result<Verdict, VerifyError> {
        let keygen = Keygen::new(self, allowed)?;
        let found = keygen.run(&["-Y", "find-principals", "-f"], true, false)?;
        let principals: Vec<String> = if found.ok {
            found
                .stdout
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        if principals.is_empty() {
            let alone = keygen.run(&["-Y", "check-novalidate", "-n", NAMESPACE], false, true)?;
            if !alone.ok {
                return Ok(Verdict::BadSignature(alone.reason()));
            }
            let reason = found.reason();
            return Ok(if reason.is_empty() || reason == "No principal matched." {
                Verdict::UnknownKey
            } else {
                Verdict::Refused(reason)
            });
        }
        let mut last = None;
        for principal in &principals {
            let said = keygen.verify_as(principal)?;
            if said.good() {
                if *principal == self.committer_email
                    || keygen.verify_as(&self.committer_email)?.good()
                {
                    return Ok(Verdict::Verified {
                        principal: self.committer_email.clone(),
                    });
                }
                return Ok(Verdict::NotCommitter {
                    principal: principal.clone(),
                    committer: self.committer_email.clone(),
                });
            }
            last = Some(said);
        }
        let reason = last.map(|s| s.reason()).unwrap_or_default();
        Ok(if reason.contains("Signature verification failed") {
            Verdict::BadSignature(reason)
        } else {
            Verdict::Refused(reason)
        })
    }

    /// Whether `allowed` accepts the signature for `principal` (a name
    /// or, as the file allows, a pattern it matches), judged as git
    /// judges it: at the committer's time, in namespace `git`.
    ///
    /// # Errors
    /// ssh-keygen cannot be run, or the signature cannot be written for it.
    pub fn signed_as(
        &self,
        allowed: &AllowedSigners,
        principal: &str,
    ) -> Result<bool, VerifyError> {
        Ok(Keygen::new(self, allowed)?.verify_as(principal)?.good())
    }
}

/// ssh-keygen with the signature in a temporary file.
struct Keygen<'a> {
    signed: &'a Signed,
    allowed: &'a AllowedSigners,
    sig: tempfile::TempPath,
    time: String,
}

struct Said {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Said {
    fn good(&self) -> bool {
        self.ok && self.stdout.starts_with("Good")
    }

    /// ssh-keygen's own words, one line.
    fn reason(&self) -> String {
        self.stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl<'a> Keygen<'a> {
    fn new(signed: &'a Signed, allowed: &'a AllowedSigners) -> Result<Keygen<'a>, VerifyError> {
        let temp = |source| VerifyError::Temp { source };
        let mut file = tempfile::Builder::new()
            .prefix(".druppie-sig-")
            .tempfile()
            .map_err(temp)?;
        file.write_all(&signed.signature).map_err(temp)?;
        file.flush().map_err(temp)?;
        // git passes the committer's time in local time and ssh-keygen
        // reads it so; UTC with `Z` names the same instant.
        let time = gix::date::Time::new(signed.committer_time, 0)
            .format(gix::date::time::CustomFormat::new("%Y%m%d%H%M%SZ"))
            .unwrap_or_default();
        Ok(Keygen {
            signed,
            allowed,
            sig: file.into_temp_path(),
            time: format!("-Overify-time={time}"),
        })
    }

    fn verify_as(&self, principal: &str) -> Result<Said, VerifyError> {
        self.run(
            &["-Y", "verify", "-n", NAMESPACE, "-I", principal, "-f"],
            true,
            true,
        )
    }

    /// Runs ssh-keygen with `args`, then (when `file`) the allowed
    /// signers, then `-s SIG` and the verify time, in git's order; the
    /// payload on stdin when `payload`.
    fn run(&self, args: &[&str], file: bool, payload: bool) -> Result<Said, VerifyError> {
        let mut cmd = Command::new(SSH_KEYGEN);
        cmd.args(args);
        if file {
            cmd.arg(self.allowed.path());
        }
        cmd.arg("-s")
            .arg(&*self.sig)
            .arg(&self.time)
            .stdin(if payload {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|source| VerifyError::Spawn { source })?;
        if payload && let Some(mut stdin) = child.stdin.take() {
            // ssh-keygen may stop reading early (a bad signature): a
            // broken pipe here is its answer, not an error.
            let _ = stdin.write_all(&self.signed.payload);
        }
        let out = child
            .wait_with_output()
            .map_err(|source| VerifyError::Spawn { source })?;
        Ok(Said {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

impl Repo {
    /// The signature and signed bytes of `commit`; `Ok(None)` when it is
    /// not signed.
    ///
    /// # Errors
    /// The commit cannot be read.
    pub fn signed(&self, commit: ObjectId) -> Result<Option<Signed>, VerifyError> {
        let read = |e: &dyn std::fmt::Display| VerifyError::Read {
            commit,
            source: super::Error::new(e.to_string()),
        };
        let repo = self.repo.to_thread_local();
        let found = repo.find_commit(commit).map_err(|e| read(&e))?;
        let committer = found.committer().map_err(|e| read(&e))?;
        let (email, time) = (
            committer.email.to_str_lossy().into_owned(),
            committer.seconds(),
        );
        let Some((signature, data)) = found.signature().map_err(|e| read(&e))? else {
            return Ok(None);
        };
        Ok(Some(Signed {
            signature: signature.to_vec(),
            payload: data.to_bstring().to_vec(),
            committer_email: email,
            committer_time: time,
        }))
    }

    /// What `allowed` says of `commit`'s signature (see [`Signed::verify`]).
    ///
    /// # Errors
    /// The commit cannot be read, or ssh-keygen cannot be run.
    pub fn check_signature(
        &self,
        commit: ObjectId,
        allowed: &AllowedSigners,
    ) -> Result<Verdict, VerifyError> {
        match self.signed(commit)? {
            None => Ok(Verdict::Unsigned),
            Some(s) => s.verify(allowed),
        }
    }

    /// Whether `commit` carries a valid signature by `key`.
    ///
    /// # Errors
    /// The commit cannot be read.
    pub fn signed_by(&self, commit: ObjectId, key: &OwnKey) -> Result<bool, VerifyError> {
        Ok(self
            .signed(commit)?
            .is_some_and(|s| key.signed(&s.signature, &s.payload)))
    }
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
