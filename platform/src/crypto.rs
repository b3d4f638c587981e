//! Secrets at rest: AES-256-GCM with one portal-wide key.
//!
//! Every sealed value is bound to a purpose string (the associated data), such
//! as `management_cluster:<id>:kubeconfig`, so a ciphertext copied into
//! another row or column fails to open instead of revealing its plaintext
//! there.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use sha2::{Digest, Sha256};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "LOOPBACK_SECRET_KEY must be {KEY_LEN} bytes encoded as base64 (generate one with `openssl rand -base64 32`)"
    )]
    BadEnvKey,
    #[error(
        "secret key file {path} must hold {KEY_LEN} bytes encoded as base64; restore the original file or remove it only if no secrets were stored yet"
    )]
    BadKeyFile { path: PathBuf },
    #[error(
        "secret key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    #[error("cannot read or create secret key file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value is damaged or belongs to another purpose")]
    Open,
    #[error("value could not be sealed")]
    Seal,
}

/// Seals and opens secrets with the portal's key.
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl SecretBox {
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
        }
    }

    /// The key from `LOOPBACK_SECRET_KEY` (base64).
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        decode_key(encoded.trim())
            .map(Self::from_key)
            .ok_or(KeyError::BadEnvKey)
    }

    /// Reads the key file, creating it with a fresh random key (mode 0600) when
    /// it does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io_err = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(contents) => {
                let mode = fs::metadata(path).map_err(io_err)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyError::KeyFileTooOpen {
                        path: path.to_path_buf(),
                        mode,
                    });
                }
                decode_key(contents.trim())
                    .map(Self::from_key)
                    .ok_or_else(|| KeyError::BadKeyFile {
                        path: path.to_path_buf(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                rand::rng().fill_bytes(&mut key);
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io_err)?;
                writeln!(file, "{}", BASE64.encode(key)).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok(Self::from_key(key))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Encrypts `plaintext` for `purpose`. The output carries its own nonce.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts a value sealed for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

fn decode_key(encoded: &str) -> Option<[u8; KEY_LEN]> {
    BASE64.decode(encoded).ok()?.try_into().ok()
}

/// A high-entropy bearer secret (setup links, API keys, agent tokens): shown
/// once, stored only as its SHA-256 digest. A slow password hash adds nothing
/// for 256 random bits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The digest under which a bearer token is stored and looked up.
pub fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> SecretBox {
        SecretBox::from_key([7u8; KEY_LEN])
    }

    #[test]
    fn sealed_value_opens_only_for_its_purpose() {
        let sb = sealer();
        let sealed = sb.seal("cluster:1:kubeconfig", b"apiVersion: v1").unwrap();
        assert_ne!(&sealed[NONCE_LEN..], b"apiVersion: v1");
        assert_eq!(
            sb.open("cluster:1:kubeconfig", &sealed).unwrap(),
            b"apiVersion: v1"
        );
        assert_eq!(
            sb.open("cluster:2:kubeconfig", &sealed),
            Err(SealError::Open)
        );
    }

    #[test]
    fn tampered_or_truncated_values_do_not_open() {
        let sb = sealer();
        let mut sealed = sb.seal("p", b"secret").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(sb.open("p", &sealed), Err(SealError::Open));
        assert_eq!(sb.open("p", &sealed[..5]), Err(SealError::Open));
    }

    #[test]
    fn another_key_cannot_open() {
        let sealed = sealer().seal("p", b"secret").unwrap();
        let other = SecretBox::from_key([8u8; KEY_LEN]);
        assert_eq!(other.open("p", &sealed), Err(SealError::Open));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("loopback-key-{}", uuid::Uuid::now_v7()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = first.seal("p", b"kept across restarts").unwrap();
        let second = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(second.open("p", &sealed).unwrap(), b"kept across restarts");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SecretBox::load_or_create(&path),
            Err(KeyError::KeyFileTooOpen { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_key_must_be_32_bytes_of_base64() {
        assert!(SecretBox::from_base64(&BASE64.encode([1u8; 32])).is_ok());
        assert!(matches!(
            SecretBox::from_base64("c2hvcnQ="),
            Err(KeyError::BadEnvKey)
        ));
        assert!(matches!(
            SecretBox::from_base64("not base64!"),
            Err(KeyError::BadEnvKey)
        ));
    }

    #[test]
    fn tokens_are_unique_and_digest_stably() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_digest(&a), token_digest(&a));
        assert_ne!(token_digest(&a), token_digest(&b));
    }
}
