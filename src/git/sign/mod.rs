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
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, SshSig};

mod allowed;

pub use allowed::{AllowedSigners, AllowedSignersError, check};

use super::{ObjectId, Repo};

/// The program git runs for SSH signatures (`gpg.ssh.program`).
const SSH_KEYGEN: &str = "ssh-keygen";
/// The namespace git signs commits in.
const NAMESPACE: &str = "git";

/// A loaded ed25519 signing key. Its secret never reaches a message.
#[derive(Clone)]
pub struct Signer {
    key: PrivateKey,
    /// `key`'s secret, expanded once: a run signs thousands of commits.
    signing: ed25519_dalek::SigningKey,
    path: PathBuf,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key", &"***")
            .field("path", &self.path)
            .finish()
    }
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
        let Some(pair) = key.key_data().ed25519() else {
            return Err(fail(format!(
                "it is a {} key; druppie signs with ed25519",
                key.algorithm()
            )));
        };
        let signing = ed25519_dalek::SigningKey::try_from(pair)
            .map_err(|_| fail("its public half is not its secret's".to_owned()))?;
        Ok(Signer {
            key,
            signing,
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
        let fail = |e: ssh_key::Error| KeyError {
            path: self.path.clone(),
            why: format!("cannot sign: {e}"),
        };
        // What `PrivateKey::sign` does, with the key expanded already.
        let data = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, payload).map_err(fail)?;
        let raw = ed25519_dalek::Signer::sign(&self.signing, &data);
        let signature =
            ssh_key::Signature::new(Algorithm::Ed25519, raw.to_bytes().to_vec()).map_err(fail)?;
        let public = self.key.public_key().key_data().clone();
        let sig = SshSig::new(public, NAMESPACE, HashAlg::Sha512, signature).map_err(fail)?;
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
        let Ok(sig) = SshSig::from_pem(signature) else {
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

    /// A new ed25519 key made by ssh-keygen in `dir`; its path.
    fn new_key(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("key");
        let made = Command::new(SSH_KEYGEN)
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen");
        assert!(made.success());
        path
    }

    #[test]
    fn a_signer_shown_for_debugging_shows_no_part_of_its_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = new_key(dir.path());
        let signer = Signer::load(&path).expect("loads");
        let shown = format!("{signer:?} {:?}", signer.clone());
        assert!(shown.contains("***"), "{shown}");
        let private = std::fs::read_to_string(&path).expect("read");
        for line in private.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(line), "{shown}");
        }
    }

    #[test]
    fn a_signature_is_the_one_ssh_key_makes_over_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = new_key(dir.path());
        let signer = Signer::load(&path).expect("loads");
        let payload = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
        let reference = signer
            .key
            .sign(NAMESPACE, HashAlg::Sha512, payload)
            .expect("signs")
            .to_pem(LineEnding::LF)
            .expect("encodes");
        let ours = signer.sign(payload).expect("signs");
        assert_eq!(ours, reference);
        assert!(signer.own_key().signed(ours.as_bytes(), payload));
    }
}
