//! Signed files: a 128-byte trailer after a model or a patch, holding an Ed25519 signature over
//! the SHA-256 of everything before it (see `docs/FORMAT.md`, *Signatures*).
//!
//! The trailer is appended, never woven in, so the bytes it signs are exactly the file as it was
//! before signing: signing does not change a model's layout, and a patch made between two signed
//! files carries the new file's trailer like any other bytes. Readers that do not check
//! signatures ([`crate::Model::from_bytes`]) skip a well-formed trailer; the `_signed` entry points
//! ([`crate::Model::from_bytes_signed`], [`crate::patch::apply_signed`]) refuse a file that is
//! unsigned ([`Error::Unsigned`]), signed by another key ([`Error::WrongKey`]) or changed after
//! signing ([`Error::Tampered`]).
//!
//! Checking a signature needs the `signatures` feature (ed25519-dalek, `no_std`, no allocator);
//! splitting off a trailer and reading it does not.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::format::crc32c;
use crate::le::{read_u32, read_u64};

/// Bytes in a signature trailer.
pub const TRAILER_SIZE: usize = 128;

/// The trailer's last 8 bytes: `\x89PSIG\r\n\x1a` (the pattern of the `.prec` magic).
pub const TRAILER_MAGIC: [u8; 8] = [0x89, b'P', b'S', b'I', b'G', 0x0D, 0x0A, 0x1A];

/// The trailer version this runtime writes and reads.
pub const TRAILER_VERSION: u32 = 1;

/// What is signed starts with these bytes (domain separation: a pocketrec signature cannot be
/// replayed as a signature of anything else).
pub const SIGNED_CONTEXT: &[u8; 22] = b"pocketrec signature 1\0";

/// Bytes in a key id: the first 8 bytes of the SHA-256 of the 32-byte public key.
pub const KEY_ID_SIZE: usize = 8;

/// A parsed signature trailer (its checksum checked, its signature not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Which key signed: the first 8 bytes of the SHA-256 of its public key.
    pub key_id: [u8; KEY_ID_SIZE],
    /// SHA-256 of the signed bytes (the file before the trailer).
    pub content_sha256: [u8; 32],
    /// The Ed25519 signature of [`signed_message`].
    pub signature: [u8; 64],
    /// Bytes before the trailer.
    pub content_length: u64,
}

/// The key id of an Ed25519 public key: the first 8 bytes of its SHA-256.
///
/// ```
/// let id = pocketrec::signature::key_id(&[0u8; 32]);
/// assert_eq!(id.len(), 8);
/// ```
pub fn key_id(public_key: &[u8; 32]) -> [u8; KEY_ID_SIZE] {
    let digest = sha256(public_key);
    let mut id = [0u8; KEY_ID_SIZE];
    id.copy_from_slice(&digest[..KEY_ID_SIZE]);
    id
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The 62 bytes an Ed25519 key signs for a file: [`SIGNED_CONTEXT`], the content's length
/// (u64, little-endian) and its SHA-256.
pub fn signed_message(content_length: u64, content_sha256: &[u8; 32]) -> [u8; 62] {
    let mut message = [0u8; 62];
    message[..22].copy_from_slice(SIGNED_CONTEXT);
    message[22..30].copy_from_slice(&content_length.to_le_bytes());
    message[30..].copy_from_slice(content_sha256);
    message
}

impl Trailer {
    /// The trailer's 128 bytes, as `docs/FORMAT.md` lays them out.
    pub fn to_bytes(&self) -> [u8; TRAILER_SIZE] {
        let mut out = [0u8; TRAILER_SIZE];
        out[0..8].copy_from_slice(&self.key_id);
        out[8..40].copy_from_slice(&self.content_sha256);
        out[40..104].copy_from_slice(&self.signature);
        out[104..112].copy_from_slice(&self.content_length.to_le_bytes());
        out[112..116].copy_from_slice(&TRAILER_VERSION.to_le_bytes());
        let crc = crc32c(&out[..116]);
        out[116..120].copy_from_slice(&crc.to_le_bytes());
        out[120..128].copy_from_slice(&TRAILER_MAGIC);
        out
    }

    /// Reads a trailer from its 128 bytes: the magic, the version and the checksum.
    fn parse(raw: &[u8]) -> Result<Trailer> {
        if raw.len() != TRAILER_SIZE || raw[120..128] != TRAILER_MAGIC {
            return Err(Error::Unsigned);
        }
        let stored = read_u32(raw, 116).ok_or(Error::Unsigned)?;
        if crc32c(&raw[..116]) != stored {
            return Err(Error::Tampered(
                "the signature trailer's checksum does not match",
            ));
        }
        let version = read_u32(raw, 112).ok_or(Error::Unsigned)?;
        if version != TRAILER_VERSION {
            return Err(Error::Unsupported {
                what: "signature trailer version",
                code: version,
            });
        }
        let mut trailer = Trailer {
            key_id: [0; KEY_ID_SIZE],
            content_sha256: [0; 32],
            signature: [0; 64],
            content_length: read_u64(raw, 104).ok_or(Error::Unsigned)?,
        };
        trailer.key_id.copy_from_slice(&raw[0..8]);
        trailer.content_sha256.copy_from_slice(&raw[8..40]);
        trailer.signature.copy_from_slice(&raw[40..104]);
        Ok(trailer)
    }
}

/// Splits a file into the bytes before its signature trailer and the trailer, if it has one
/// (its last 8 bytes are [`TRAILER_MAGIC`]). A trailer that is there but damaged, or whose
/// length disagrees with the file's, is an error, not "unsigned".
///
/// ```
/// let (content, trailer) = pocketrec::signature::split(b"not signed").unwrap();
/// assert_eq!(content, b"not signed");
/// assert!(trailer.is_none());
/// ```
pub fn split(bytes: &[u8]) -> Result<(&[u8], Option<Trailer>)> {
    let Some(start) = bytes.len().checked_sub(TRAILER_SIZE) else {
        return Ok((bytes, None));
    };
    if bytes[bytes.len() - TRAILER_MAGIC.len()..] != TRAILER_MAGIC {
        return Ok((bytes, None));
    }
    let trailer = Trailer::parse(&bytes[start..])?;
    if trailer.content_length != start as u64 {
        return Err(Error::Tampered(
            "the signature trailer's length does not match the file",
        ));
    }
    Ok((&bytes[..start], Some(trailer)))
}

/// Checks that `bytes` (a model or a patch, trailer included) is signed by `public_key`, and
/// returns the signed bytes (the file without its trailer).
///
/// Errors: [`Error::Unsigned`] (no trailer), [`Error::WrongKey`] (another key's id),
/// [`Error::Tampered`] (the bytes or the trailer changed after signing), and
/// [`Error::InvalidQuery`] for a public key that is not a valid Ed25519 point.
#[cfg(feature = "signatures")]
pub fn verify<'a>(bytes: &'a [u8], public_key: &[u8; 32]) -> Result<&'a [u8]> {
    let (content, trailer) = split(bytes)?;
    let trailer = trailer.ok_or(Error::Unsigned)?;
    let expected = key_id(public_key);
    if trailer.key_id != expected {
        return Err(Error::WrongKey {
            signed_by: trailer.key_id,
            expected,
        });
    }
    if sha256(content) != trailer.content_sha256 {
        return Err(Error::Tampered(
            "the file's SHA-256 differs from the one signed",
        ));
    }
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|_| Error::InvalidQuery {
            index: None,
            reason: "the public key is not a valid Ed25519 key",
        })?;
    let signature = ed25519_dalek::Signature::from_bytes(&trailer.signature);
    let message = signed_message(trailer.content_length, &trailer.content_sha256);
    key.verify_strict(&message, &signature)
        .map_err(|_| Error::Tampered("the signature does not verify"))?;
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer_for(content: &[u8]) -> Trailer {
        Trailer {
            key_id: [7; 8],
            content_sha256: sha256(content),
            signature: [1; 64],
            content_length: content.len() as u64,
        }
    }

    #[test]
    fn split_finds_a_trailer_and_round_trips_it() {
        let content = b"model bytes";
        let trailer = trailer_for(content);
        let mut file = content.to_vec();
        file.extend_from_slice(&trailer.to_bytes());
        let (body, found) = split(&file).unwrap();
        assert_eq!(body, content);
        assert_eq!(found, Some(trailer));
    }

    #[test]
    fn a_damaged_trailer_is_tampered_not_unsigned() {
        let content = b"model bytes";
        let mut file = content.to_vec();
        file.extend_from_slice(&trailer_for(content).to_bytes());
        let at = file.len() - 30;
        file[at] ^= 1;
        assert!(matches!(split(&file), Err(Error::Tampered(_))));
        // A trailer whose length names another file.
        let mut shifted = b"x".to_vec();
        shifted.extend_from_slice(&file[..content.len()]);
        shifted.extend_from_slice(&trailer_for(content).to_bytes());
        assert!(matches!(split(&shifted), Err(Error::Tampered(_))));
    }

    #[test]
    fn short_or_unmarked_files_have_no_trailer() {
        assert_eq!(split(b"").unwrap(), (&b""[..], None));
        let plain = [0u8; 300];
        assert_eq!(split(&plain).unwrap().1, None);
    }
}
