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
