//! SSH signatures on commits: SSHSIG over the commit without its `gpgsig`
//! header, namespace `git`, as `git verify-commit` with `gpg.format=ssh`
//! checks them.

use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, LineEnding, PrivateKey};

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

    /// The armored SSHSIG of `payload` (namespace `git`, SHA-512).
    ///
    /// # Errors
    /// The signature could not be made (reported with the key's path).
    pub fn sign(&self, payload: &[u8]) -> Result<String, KeyError> {
        let sig = self
            .key
            .sign("git", HashAlg::Sha512, payload)
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

/// An allowed-signers file (the format of `gpg.ssh.allowedSignersFile`):
/// per line, comma-separated principals, optional options, then the key.
#[derive(Debug, Default)]
pub struct AllowedSigners {
    entries: Vec<(Vec<String>, ssh_key::PublicKey)>,
}

impl AllowedSigners {
    /// Parses the file's text; `shown` names it in errors.
    ///
    /// # Errors
    /// A line without a readable public key (`shown:line`).
    pub fn parse(text: &str, shown: &str) -> Result<AllowedSigners, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let principals: Vec<String> = fields
                .next()
                .unwrap_or_default()
                .split(',')
                .map(str::to_owned)
                .collect();
            // Options (`namespaces="git"`, `valid-after=...`) come before
            // the key type.
            let rest: Vec<&str> = fields.collect();
            let key_at = rest.iter().position(|f| {
                f.starts_with("ssh-") || f.starts_with("ecdsa-") || f.starts_with("sk-")
            });
            let key = key_at
                .and_then(|i| ssh_key::PublicKey::from_openssh(&rest[i..].join(" ")).ok())
                .ok_or_else(|| format!("{shown}:{}: no public key on this line", n + 1))?;
            entries.push((principals, key));
        }
        Ok(AllowedSigners { entries })
    }
}

/// What a commit's signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by an allowed key whose principal is the committer's email.
    Verified {
        principal: String,
    },
    Unsigned,
    /// Signed by a key the allowed signers do not list.
    UnknownKey,
    /// The signature does not match the commit (tampered, or not SSHSIG).
    BadSignature(String),
    /// A valid signature by an allowed key of somebody other than the
    /// committer: git would call it good, druppie does not.
    NotCommitter {
        principal: String,
        committer: String,
    },
}

/// Checks `signature` (armored SSHSIG) over `payload` (the commit without
/// its signature) against `allowed`, and that the signer is `committer`
/// (an email).
pub fn verify(
    allowed: &AllowedSigners,
    signature: &[u8],
    payload: &[u8],
    committer: &str,
) -> Verdict {
    let sig = match ssh_key::SshSig::from_pem(signature) {
        Ok(s) => s,
        Err(e) => return Verdict::BadSignature(format!("not an SSH signature: {e}")),
    };
    let signers: Vec<&(Vec<String>, ssh_key::PublicKey)> = allowed
        .entries
        .iter()
        .filter(|(_, key)| key.key_data() == sig.public_key())
        .collect();
    let Some((_, key)) = signers.first() else {
        return Verdict::UnknownKey;
    };
    if let Err(e) = key.verify("git", payload, &sig) {
        return Verdict::BadSignature(e.to_string());
    }
    let principals: Vec<&String> = signers.iter().flat_map(|(p, _)| p).collect();
    match principals.iter().find(|p| p.as_str() == committer) {
        Some(p) => Verdict::Verified {
            principal: (*p).clone(),
        },
        None => Verdict::NotCommitter {
            principal: principals.first().map(|p| (*p).clone()).unwrap_or_default(),
            committer: committer.to_owned(),
        },
    }
}
