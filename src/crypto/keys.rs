//! Recipients and identities, parsed by the `age` crate, with fingerprints.
//!
//! A fingerprint names a key without being it: `SHA256:` and the unpadded base64 SHA-256 of
//! the SSH public key blob for SSH keys (what `ssh-keygen -l` prints), or of the `age1...`
//! string for X25519 keys (age defines no fingerprint of its own), after the key type:
//! `ssh-ed25519 SHA256:...`, `age SHA256:...`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Why a key could not be used. Never quotes a private key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0:?} is not an age recipient (age1...) or an SSH public key (ssh-ed25519, ssh-rsa)")]
    Recipient(String),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: not an age recipient or an SSH public key")]
    RecipientsFile { path: PathBuf, line: usize },
    #[error(
        "{path} holds no age identity (AGE-SECRET-KEY-1...) and no unencrypted OpenSSH private key"
    )]
    Identity { path: PathBuf },
    #[error("{path} is a passphrase-protected SSH key; decrypt it to a separate file (ssh-keygen -p) or use an age identity")]
    EncryptedSshKey { path: PathBuf },
    #[error("{path}: {why}")]
    UnsupportedSshKey { path: PathBuf, why: String },
    #[error("no recipient: give --encrypt-age-recipient or --encrypt-age-recipients-file")]
    NoRecipients,
}

fn sha256_fingerprint(bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!("SHA256:{}", b64.encode(Sha256::digest(bytes)))
}

/// The fingerprint of a recipient given as text (`age1...` or an OpenSSH public key line).
pub fn fingerprint(recipient: &str) -> String {
    let mut parts = recipient.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(kind @ ("ssh-ed25519" | "ssh-rsa")), Some(blob)) => {
            let b64 = base64::engine::general_purpose::STANDARD;
            match b64.decode(blob) {
                Ok(raw) => format!("{kind} {}", sha256_fingerprint(&raw)),
                Err(_) => format!("{kind} {}", sha256_fingerprint(blob.as_bytes())),
            }
        }
        _ => format!("age {}", sha256_fingerprint(recipient.trim().as_bytes())),
    }
}

enum Recipient {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    fn as_dyn(&self) -> &dyn age::Recipient {
        match self {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }
}

/// The recipients every backup is encrypted to: any of them can decrypt it.
pub struct Recipients {
    keys: Vec<Recipient>,
    fingerprints: Vec<String>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.fingerprints).finish()
    }
}

impl Recipients {
    /// Parses recipients given inline and the lines of recipients files (one per line; empty
    /// lines and `#` comments skipped, as in age's `-R` files).
    ///
    /// Errors: a text that is neither kind, an unreadable file, or none at all.
    pub fn parse(inline: &[String], files: &[PathBuf]) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        let mut fingerprints = Vec::new();
        let mut add = |text: &str| -> Result<(), ()> {
            let text = text.trim();
            let key = if text.starts_with("ssh-") {
                age::ssh::Recipient::from_str(text)
                    .map(Recipient::Ssh)
                    .map_err(|_| ())?
            } else {
                age::x25519::Recipient::from_str(text)
                    .map(Recipient::X25519)
                    .map_err(|_| ())?
            };
            keys.push(key);
            fingerprints.push(fingerprint(text));
            Ok(())
        };
        for r in inline {
            add(r).map_err(|()| KeyError::Recipient(r.clone()))?;
        }
        for path in files {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                path: path.clone(),
                source,
            })?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                add(line).map_err(|()| KeyError::RecipientsFile {
                    path: path.clone(),
                    line: i + 1,
                })?;
            }
        }
        if keys.is_empty() {
            return Err(KeyError::NoRecipients);
        }
        Ok(Recipients { keys, fingerprints })
    }

    /// The recipients' fingerprints, in the order given.
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// An encryptor to all recipients (a fresh file key each time).
    pub(crate) fn encryptor(&self) -> Result<age::Encryptor, age::EncryptError> {
        age::Encryptor::with_recipients(self.keys.iter().map(Recipient::as_dyn))
    }
}

/// Identities that can decrypt backups, each with the fingerprint of its recipient.
#[derive(Default)]
pub struct Identities {
    keys: Vec<Box<dyn age::Identity + Send + Sync>>,
    fingerprints: Vec<String>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.fingerprints).finish()
    }
}

impl Identities {
    /// Loads identity files: age identity files (`AGE-SECRET-KEY-1...` lines, `#` comments, as
    /// `age-keygen` writes them) or unencrypted OpenSSH private keys (ed25519, RSA).
    ///
    /// Errors: an unreadable file, a file with neither, a passphrase-protected SSH key.
    pub fn load(files: &[PathBuf]) -> Result<Self, KeyError> {
        let mut ids = Identities::default();
        for path in files {
            ids.load_one(path)?;
        }
        Ok(ids)
    }

    fn load_one(&mut self, path: &Path) -> Result<(), KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            let id = age::ssh::Identity::from_buffer(
                std::io::BufReader::new(text.as_bytes()),
                Some(path.display().to_string()),
            )
            .map_err(|_| KeyError::Identity {
                path: path.to_path_buf(),
            })?;
            let recipient = match &id {
                age::ssh::Identity::Unencrypted(_) => age::ssh::Recipient::try_from(id.clone())
                    .map_err(|_| KeyError::Identity {
                        path: path.to_path_buf(),
                    })?,
                age::ssh::Identity::Encrypted(_) => {
                    return Err(KeyError::EncryptedSshKey {
                        path: path.to_path_buf(),
                    })
                }
                age::ssh::Identity::Unsupported(k) => {
                    return Err(KeyError::UnsupportedSshKey {
                        path: path.to_path_buf(),
                        why: format!("{k:?}"),
                    })
                }
            };
            self.fingerprints.push(fingerprint(&recipient.to_string()));
            self.keys.push(Box::new(id));
            return Ok(());
        }
        let mut found = false;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Never echo the line: it is a secret key, or garbage next to one.
            let id = age::x25519::Identity::from_str(line).map_err(|_| KeyError::Identity {
                path: path.to_path_buf(),
            })?;
            self.fingerprints
                .push(fingerprint(&id.to_public().to_string()));
            self.keys.push(Box::new(id));
            found = true;
        }
        if !found {
            return Err(KeyError::Identity {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Whether no identity was given.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The fingerprints of the identities' recipients.
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity)
    }
}

/// A fresh X25519 identity as `age-keygen` writes it (for tests and demos): the file text and
/// the recipient.
pub fn generate_identity() -> (String, String) {
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let text = format!(
        "# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    );
    (text, public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_and_identities_match_by_fingerprint() {
        let dir = tempfile::tempdir().expect("tmp");
        let (text, public) = generate_identity();
        let id_file = dir.path().join("id.txt");
        std::fs::write(&id_file, &text).expect("write");
        let rcpt_file = dir.path().join("recipients.txt");
        std::fs::write(&rcpt_file, format!("# ops team\n\n{public}\n")).expect("write");
        let r = Recipients::parse(&[], &[rcpt_file]).expect("recipients");
        let ids = Identities::load(&[id_file]).expect("identities");
        assert_eq!(r.fingerprints(), ids.fingerprints());
        assert!(r.fingerprints()[0].starts_with("age SHA256:"));
        assert!(!r.fingerprints()[0].contains(&public));
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_secrets() {
        assert!(matches!(
            Recipients::parse(&["not-a-key".into()], &[]),
            Err(KeyError::Recipient(_))
        ));
        assert!(matches!(
            Recipients::parse(&[], &[]),
            Err(KeyError::NoRecipients)
        ));
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("id.txt");
        let secret = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQBROKEN";
        std::fs::write(&f, format!("{secret}\n")).expect("write");
        let err = Identities::load(&[f]).expect_err("broken key").to_string();
        assert!(!err.contains("QQQQ"), "{err}");
    }

    #[test]
    fn ssh_fingerprint_matches_ssh_keygen_form() {
        // The blob of an ed25519 key; the fingerprint is over the decoded blob.
        let line =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN";
        let fp = fingerprint(line);
        assert!(fp.starts_with("ssh-ed25519 SHA256:"), "{fp}");
        let r = Recipients::parse(&[line.to_string()], &[]).expect("ssh recipient");
        assert_eq!(r.fingerprints(), [fp]);
    }
}
