//! Signing keys and signed files (`pocketrec keygen`, `pocketrec sign`): Ed25519 with
//! ed25519-dalek, the signature in a trailer after the file (layout in `docs/FORMAT.md`,
//! *Signatures*, and [`pocketrec::signature`], the one definition of it).
//!
//! Key files are text: a first line that names what the file holds, then the key's 32 bytes in
//! hex. The secret key file is written with mode 0600.
//!
//! ```
//! # fn main() -> pocketrec_export::Result<()> {
//! use pocketrec_export::sign::{SecretKey, sign_bytes};
//! let key = SecretKey::generate()?;
//! let model = pocketrec::builder::tiny_example_model().unwrap();
//! let signed = sign_bytes(&model, &key);
//! let opened = pocketrec::Model::from_bytes_signed(&signed, &key.public_key()).unwrap();
//! assert_eq!(opened.bytes(), &model[..]);
//! # Ok(()) }
//! ```

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use pocketrec::signature::{self, Trailer};

use crate::atomic::{write_atomic, write_atomic_with_mode};
use crate::error::{ExportError, Result};

const SECRET_HEADER: &str = "pocketrec ed25519 secret key";
const PUBLIC_HEADER: &str = "pocketrec ed25519 public key";

/// An Ed25519 signing key (its 32-byte seed; zeroed when dropped).
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(key id {})", hex(&self.key_id()))
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<SecretKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| ExportError::Patch(format!("no random source for a new key: {e}")))?;
        let key = SecretKey(SigningKey::from_bytes(&seed));
        seed.fill(0);
        Ok(key)
    }

    /// The key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The public key apps check signatures with.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The key id written in signatures (first 8 bytes of the public key's SHA-256).
    pub fn key_id(&self) -> [u8; 8] {
        signature::key_id(&self.public_key())
    }

    /// Reads a secret key file written by [`write_key_pair`].
    pub fn read(path: &Path) -> Result<SecretKey> {
        let seed = read_key_file(path, SECRET_HEADER)?;
        Ok(SecretKey::from_seed(&seed))
    }
}

/// Reads a public key file written by [`write_key_pair`] (or any file of that form).
pub fn read_public_key(path: &Path) -> Result<[u8; 32]> {
    read_key_file(path, PUBLIC_HEADER)
}

/// Writes `PREFIX.key` (secret, mode 0600) and `PREFIX.pub` (public), and returns their paths.
/// Refuses to overwrite an existing secret key.
pub fn write_key_pair(
    key: &SecretKey,
    prefix: &Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let secret = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    if secret.exists() {
        return Err(ExportError::Usage(format!(
            "{} exists: refusing to overwrite a secret key",
            secret.display()
        )));
    }
    let seed = key.0.to_bytes();
    let text = format!("{SECRET_HEADER}\n{}\n", hex(&seed));
    write_atomic_with_mode(&secret, text.as_bytes(), 0o600)?;
    let text = format!(
        "{PUBLIC_HEADER}\n{}\n# key id {}\n",
        hex(&key.public_key()),
        hex(&key.key_id())
    );
    write_atomic(&public, text.as_bytes())?;
    Ok((secret, public))
}

fn read_key_file(path: &Path, header: &str) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).map_err(|e| ExportError::io(path, e))?;
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(header) {
        return Err(ExportError::parse(
            path,
            format!("not a key file of this kind: the first line must be '{header}'"),
        ));
    }
    let line = lines.next().unwrap_or("").trim();
    parse_hex_key(line).ok_or_else(|| {
        ExportError::parse(path, "line 2 must be the key's 32 bytes as 64 hex digits")
    })
}

fn parse_hex_key(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs a model or a patch: the bytes before any existing trailer, followed by a new trailer
/// (signing again replaces a signature).
pub fn sign_bytes(bytes: &[u8], key: &SecretKey) -> Vec<u8> {
    let content = match signature::split(bytes) {
        Ok((content, _)) => content,
        Err(_) => bytes,
    };
    let content_sha256 = signature::sha256(content);
    let message = signature::signed_message(content.len() as u64, &content_sha256);
    let trailer = Trailer {
        key_id: key.key_id(),
        content_sha256,
        signature: key.0.sign(&message).to_bytes(),
        content_length: content.len() as u64,
    };
    let mut out = content.to_vec();
    out.extend_from_slice(&trailer.to_bytes());
    out
}

/// Signs the file at `path` and writes the signed file to `output` atomically (the same path to
/// sign in place). The file must be a model or a patch that opens.
pub fn sign_file(path: &Path, key: &SecretKey, output: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| ExportError::io(path, e))?;
    let (content, _) = signature::split(&bytes).map_err(|source| ExportError::Model {
        path: path.to_path_buf(),
        source,
    })?;
    let opens = pocketrec::Model::from_bytes(content)
        .map(|_| ())
        .or_else(|_| pocketrec::patch::Patch::parse(content).map(|_| ()));
    opens.map_err(|source| ExportError::Model {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(output, &sign_bytes(content, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pocketrec::{Error, Model};

    fn model() -> Vec<u8> {
        pocketrec::builder::tiny_example_model().unwrap()
    }

    #[test]
    fn signed_models_open_with_their_key_only() {
        let key = SecretKey::from_seed(&[1; 32]);
        let other = SecretKey::from_seed(&[2; 32]);
        let plain = model();
        let signed = sign_bytes(&plain, &key);
        assert_eq!(signed.len(), plain.len() + signature::TRAILER_SIZE);
        Model::from_bytes_signed(&signed, &key.public_key()).unwrap();
        // Unsigned readers still open a signed file.
        Model::from_bytes(&signed).unwrap().verify().unwrap();
        assert!(matches!(
            Model::from_bytes_signed(&plain, &key.public_key()),
            Err(Error::Unsigned)
        ));
        assert!(matches!(
            Model::from_bytes_signed(&signed, &other.public_key()),
            Err(Error::WrongKey { .. })
        ));
        // Any changed byte of the content, or of the signature, is tampering.
        for at in [0, 70, plain.len() / 2, plain.len() - 1, plain.len() + 50] {
            let mut bad = signed.clone();
            bad[at] ^= 0x10;
            let e = Model::from_bytes_signed(&bad, &key.public_key()).unwrap_err();
            assert!(matches!(e, Error::Tampered(_)), "byte {at}: {e}");
        }
        // Signing again replaces the signature.
        assert_eq!(sign_bytes(&signed, &other).len(), signed.len());
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        let (secret, public) = write_key_pair(&key, &dir.path().join("app")).unwrap();
        assert_eq!(
            SecretKey::read(&secret).unwrap().public_key(),
            key.public_key()
        );
        assert_eq!(read_public_key(&public).unwrap(), key.public_key());
        assert!(write_key_pair(&key, &dir.path().join("app")).is_err());
        let e = read_public_key(&secret).unwrap_err();
        assert!(e.to_string().contains("public key"), "{e}");
    }
}
