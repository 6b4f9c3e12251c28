//! Ed25519 keys: the one signature scheme of Civitas.
//!
//! Every signature in the system is checked by [`PublicKey::verify`], which has
//! `verify_strict` semantics: canonical `S`, and small-order public keys and `R` refused.
//! That matters because ledger object ids hash signatures: a malleable signature would give
//! one operation two ids. Weak (small-order) public keys are refused when decoded, so a
//! [`PublicKey`] value is always usable.
//!
//! Keys travel as `Multikey` (`publicKeyMultibase`, base58btc of the multicodec
//! `ed25519-pub` prefix `0xed 0x01` and the 32 key bytes, exactly as did:key) and, where
//! JOSE needs it, as an OKP JWK.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Ed25519 verifications attempted by this process (see [`verification_count`]).
static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many Ed25519 verifications this process has attempted through
/// [`PublicKey::verify`]: services export it and tests assert the cost of a warm path.
pub fn verification_count() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

/// The multicodec prefix of an Ed25519 public key (`ed25519-pub`, varint 0xed).
const ED25519_PUB_MULTICODEC: [u8; 2] = [0xed, 0x01];

/// A decoded error about key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key bytes do not have the expected length.
    #[error("expected a {expected}-byte key, found {found} bytes")]
    Length {
        /// Expected length.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// The bytes are not a point on the curve.
    #[error("the key bytes are not a valid ed25519 point")]
    NotAPoint,
    /// The key has small order: anyone could forge signatures that verify under it.
    #[error("the key is a weak (small-order) ed25519 key")]
    Weak,
    /// The multibase text is malformed.
    #[error("expected a base58btc multibase string starting with 'z', found {0:?}")]
    Multibase(String),
    /// The multicodec prefix is not `ed25519-pub`.
    #[error("expected the ed25519-pub multicodec prefix 0xed01, found {0}")]
    Multicodec(String),
    /// The JWK is not an OKP Ed25519 public key.
    #[error("expected an OKP Ed25519 JWK, found {0}")]
    Jwk(String),
}

/// A signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not have 64 bytes.
    #[error("expected a 64-byte ed25519 signature, found {0} bytes")]
    Length(usize),
    /// The signature is not valid under strict verification.
    #[error("the ed25519 signature does not verify")]
    Invalid,
}

/// An Ed25519 public key that is known not to be weak.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Decodes 32 key bytes, refusing non-points and small-order keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(KeyError::Weak);
        }
        Ok(Self(key))
    }

    /// Decodes a key from a slice, checking its length first.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let array: &[u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
            expected: 32,
            found: bytes.len(),
        })?;
        Self::from_bytes(array)
    }

    /// The 32 compressed key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verifies `sig` over `msg` with `verify_strict` semantics. This is the only
    /// Ed25519 verification in Civitas.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
        let sig: &[u8; 64] = sig
            .try_into()
            .map_err(|_| SignatureError::Length(sig.len()))?;
        let sig = Signature::from_bytes(sig);
        self.0
            .verify_strict(msg, &sig)
            .map_err(|_| SignatureError::Invalid)
    }

    /// The `publicKeyMultibase` form: `z` + base58btc(0xed01 || key).
    pub fn to_multibase(&self) -> String {
        let mut bytes = Vec::with_capacity(34);
        bytes.extend_from_slice(&ED25519_PUB_MULTICODEC);
        bytes.extend_from_slice(self.0.as_bytes());
        multibase::encode(multibase::Base::Base58Btc, bytes)
    }

    /// Parses the `publicKeyMultibase` form.
    pub fn from_multibase(text: &str) -> Result<Self, KeyError> {
        if !text.starts_with('z') {
            return Err(KeyError::Multibase(truncate(text)));
        }
        let (_, bytes) =
            multibase::decode(text).map_err(|_| KeyError::Multibase(truncate(text)))?;
        match bytes.split_first_chunk::<2>() {
            Some((prefix, key)) if *prefix == ED25519_PUB_MULTICODEC => Self::from_slice(key),
            _ => Err(KeyError::Multicodec(
                bytes
                    .iter()
                    .take(2)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            )),
        }
    }

    /// The key as an OKP JWK (RFC 8037).
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: URL_SAFE_NO_PAD.encode(self.0.as_bytes()),
        }
    }

    /// Reads an OKP Ed25519 JWK.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
            return Err(KeyError::Jwk(format!(
                "kty {:?} crv {:?}",
                jwk.kty, jwk.crv
            )));
        }
        let bytes = crate::encoding::b64url_decode(&jwk.x)
            .map_err(|_| KeyError::Jwk("an x that is not canonical base64url".to_owned()))?;
        Self::from_slice(&bytes)
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey")
            .field(&self.to_multibase())
            .finish()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_multibase())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_multibase(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_multibase())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_multibase(&text).map_err(serde::de::Error::custom)
    }
}

/// An OKP public JWK (RFC 8037), the only JWK shape Civitas uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type, `OKP`.
    pub kty: String,
    /// Curve, `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
}

/// An Ed25519 signing key. Its `Debug` never shows the secret, and it is zeroized on drop.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Makes a new key from the operating system's random source.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Rebuilds a key from its 32-byte seed.
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, in a buffer that is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The seed as text for key files: `z` + base58btc of the 32 seed bytes, in a buffer
    /// that is wiped when dropped.
    pub fn to_multibase_secret(&self) -> Zeroizing<String> {
        Zeroizing::new(multibase::encode(
            multibase::Base::Base58Btc,
            *self.to_bytes(),
        ))
    }

    /// Reads the key-file text form.
    pub fn from_multibase_secret(text: &str) -> Result<Self, KeyError> {
        let (base, bytes) =
            multibase::decode(text).map_err(|_| KeyError::Multibase("<secret>".to_owned()))?;
        let bytes = Zeroizing::new(bytes);
        if base != multibase::Base::Base58Btc {
            return Err(KeyError::Multibase("<secret>".to_owned()));
        }
        let seed: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Length {
            expected: 32,
            found: bytes.len(),
        })?;
        Ok(Self::from_bytes(seed))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibase_round_trip() {
        let key = SecretKey::generate().public_key();
        let text = key.to_multibase();
        assert!(text.starts_with("z6Mk"));
        assert_eq!(PublicKey::from_multibase(&text).unwrap(), key);
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::Weak));
    }

    #[test]
    fn non_canonical_signature_is_refused() {
        let secret = SecretKey::generate();
        let mut sig = secret.sign(b"m");
        assert!(secret.public_key().verify(b"m", &sig).is_ok());
        // Adding the group order to S makes S non-canonical; strict verification refuses it.
        const ELL: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(sig[32 + i]) + u16::from(ELL[i]) + carry;
            sig[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(
            secret.public_key().verify(b"m", &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = SecretKey::from_bytes(&[7u8; 32]);
        let shown = format!("{secret:?}");
        assert!(!shown.contains("[7, 7"));
        assert!(!shown.contains("0707"));
    }

    /// Key files hold the seed as base58btc, which writes each leading zero byte as '1'.
    /// The seeds of the w3c-ccg did:key vectors (0, 1, 2, 3, 5 as 32-byte big-endian
    /// numbers) are all leading zeros; they must survive the round trip.
    #[test]
    fn multibase_secret_keeps_leading_zero_bytes() {
        let alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        for n in [0u8, 1, 2, 3, 5] {
            let mut seed = [0u8; 32];
            seed[31] = n;
            let secret = SecretKey::from_bytes(&seed);
            let expected = if n == 0 {
                format!("z{}", "1".repeat(32))
            } else {
                format!("z{}{}", "1".repeat(31), &alphabet[n as usize..=n as usize])
            };
            assert_eq!(*secret.to_multibase_secret(), expected);
            let back = SecretKey::from_multibase_secret(&expected).unwrap();
            assert_eq!(*back.to_bytes(), seed);
        }
        // One '1' fewer is 31 bytes, not a seed.
        assert_eq!(
            SecretKey::from_multibase_secret(&format!("z{}", "1".repeat(31))).unwrap_err(),
            KeyError::Length {
                expected: 32,
                found: 31
            }
        );
    }

    #[test]
    fn jwk_round_trip() {
        let key = SecretKey::generate().public_key();
        assert_eq!(PublicKey::from_jwk(&key.to_jwk()).unwrap(), key);
    }
}
