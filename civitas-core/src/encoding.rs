//! The byte encodings that appear on the wire: base64url without padding (signatures,
//! hashes in ledger objects), standard base64 (Merkle proofs, as RFC 9162 tools print
//! them), and base32 lower case without padding (object ids, did:civ ids).
//!
//! Decoding is strict: a string that does not re-encode to itself is refused, so each
//! value has exactly one text form.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

/// A text form that is not the one canonical encoding of some bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// Not base64url without padding, or not its canonical form.
    #[error("expected canonical base64url without padding, found {0:?}")]
    Base64Url(String),
    /// Not standard base64, or not its canonical form.
    #[error("expected canonical standard base64, found {0:?}")]
    Base64(String),
    /// Not lower-case base32 without padding, or not its canonical form.
    #[error("expected canonical lower-case base32 without padding, found {0:?}")]
    Base32(String),
    /// A hash of the wrong length.
    #[error("expected a 32-byte hash, found {0} bytes")]
    HashLength(usize),
}

fn shown(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Encodes base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes canonical base64url without padding.
pub fn b64url_decode(text: &str) -> Result<Vec<u8>, EncodingError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| EncodingError::Base64Url(shown(text)))?;
    if URL_SAFE_NO_PAD.encode(&bytes) != text {
        return Err(EncodingError::Base64Url(shown(text)));
    }
    Ok(bytes)
}

/// Encodes standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes canonical standard base64 with padding.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, EncodingError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| EncodingError::Base64(shown(text)))?;
    if STANDARD.encode(&bytes) != text {
        return Err(EncodingError::Base64(shown(text)));
    }
    Ok(bytes)
}

/// Decodes a standard-base64 32-byte hash.
pub fn b64_hash(text: &str) -> Result<[u8; 32], EncodingError> {
    let bytes = b64_decode(text)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| EncodingError::HashLength(bytes.len()))
}

/// Decodes a base64url 32-byte hash.
pub fn b64url_hash(text: &str) -> Result<[u8; 32], EncodingError> {
    let bytes = b64url_decode(text)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| EncodingError::HashLength(bytes.len()))
}

const BASE32_LOWER_NOPAD: data_encoding::Encoding = data_encoding::BASE32_NOPAD;

/// Encodes base32 (RFC 4648 alphabet) in lower case without padding.
pub fn b32(bytes: &[u8]) -> String {
    BASE32_LOWER_NOPAD.encode(bytes).to_ascii_lowercase()
}

/// Decodes canonical lower-case base32 without padding.
pub fn b32_decode(text: &str) -> Result<Vec<u8>, EncodingError> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(EncodingError::Base32(shown(text)));
    }
    let bytes = BASE32_LOWER_NOPAD
        .decode(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| EncodingError::Base32(shown(text)))?;
    if b32(&bytes) != text {
        return Err(EncodingError::Base32(shown(text)));
    }
    Ok(bytes)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_is_lower_case_rfc4648() {
        // RFC 4648 §10: BASE32("foobar") = "MZXW6YTBOI======".
        assert_eq!(b32(b"foobar"), "mzxw6ytboi");
        assert_eq!(b32_decode("mzxw6ytboi").unwrap(), b"foobar");
        assert!(b32_decode("MZXW6YTBOI").is_err());
        assert!(b32_decode("mzxw6ytboi======").is_err());
    }

    #[test]
    fn non_canonical_base64url_is_refused() {
        // "AB" and "AC" decode to the same byte when trailing bits are ignored.
        assert_eq!(b64url_decode("AA").unwrap(), vec![0]);
        assert!(b64url_decode("AB").is_err());
        assert!(b64url_decode("AA==").is_err());
    }
}
