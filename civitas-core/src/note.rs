//! C2SP signed notes and transparency log checkpoints.
//!
//! A [signed note](https://c2sp.org/signed-note) is UTF-8 text followed by a
//! blank line and one or more signature lines `— <key name> base64(key id ||
//! signature)`. Civitas signs its log heads as [checkpoints](https://c2sp.org/tlog-checkpoint):
//! notes whose text is `origin\nsize\nbase64(root)\n` plus optional extension
//! lines. Only Ed25519 keys (signature type `0x01`) are supported. Civitas
//! uses one extension line, `time <unix-ms>`, the time the log signed the
//! checkpoint ([`Checkpoint::with_time`], [`Checkpoint::time_ms`]).
//!
//! ```text
//!  Checkpoint --sign(&[&NoteSigner])--> Note --to_string()--> bytes on the wire
//!  bytes --Checkpoint::open(&[NoteVerifier], min)--> VerifiedCheckpoint
//!  bytes --Note::parse--> Note --verify(&[NoteVerifier], min)--> VerifiedNote
//! ```
//!
//! Keys travel as strings: a verifier key `name+<8 hex key id>+base64(0x01 ||
//! public key)` ([`NoteVerifier`]) and a signer key
//! `PRIVATE+KEY+name+<key id>+base64(0x01 || seed)` ([`NoteSigner`]). The key id
//! is the first four bytes, big-endian, of
//! `SHA-256(name || 0x0A || 0x01 || public key)`.
//!
//! Opening a note follows the Go `sumdb/note` package: signatures from unknown
//! keys are ignored, a bad signature from a known key rejects the whole note,
//! and at least one (or a given number of distinct) known keys must have signed.
//!
//! ```
//! # use civitas_core::note::{Checkpoint, NoteSigner};
//! let log = NoteSigner::generate("example.com/log")?;
//! let checkpoint = Checkpoint::with_time("example.com/log", 1, [0; 32], 1_700_000_000_000)?;
//! let note = checkpoint.sign(&[&log])?.to_string();
//! let opened = Checkpoint::open(note.as_bytes(), &[log.verifier()], 1)?;
//! assert_eq!(opened.checkpoint().time_ms(), Some(1_700_000_000_000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::keys::{KeyError, PublicKey, SecretKey, SignatureError};
use crate::tlog::Hash;

/// The start of every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Signature type byte of Ed25519 note signatures.
const ED25519: u8 = 0x01;
/// Most signature lines a note may carry, as in Go's `sumdb/note`.
pub const MAX_SIGNATURES: usize = 100;
/// Prefix of the signer key string.
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";
/// Prefix of the checkpoint time extension line.
const TIME_EXTENSION: &str = "time ";
/// Longest excerpt of untrusted input quoted in an error message.
const EXCERPT_CHARS: usize = 64;

/// Quotes at most [`EXCERPT_CHARS`] characters of untrusted input.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// Whether `name` is a valid key name: non-empty, with no Unicode spaces and
/// no `+` (C2SP signed-note), nor the ASCII control characters a note may
/// not contain.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < ' ')
}

/// Fails unless `name` is a valid key name.
fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName {
            found: excerpt(name),
        })
    }
}

/// The key id of an Ed25519 key: `SHA-256(name || 0x0A || 0x01 || key)[..4]`,
/// big-endian.
fn ed25519_key_id(name: &str, key: &PublicKey) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ED25519])
        .chain_update(key.to_bytes())
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Parses exactly eight hex digits.
fn parse_key_id(hex: &str) -> Option<u32> {
    if hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(hex, 16).ok()
    } else {
        None
    }
}

/// Parses a decimal number with no sign and no leading zeros (except `0`).
fn parse_decimal(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// The offset and value of the first ASCII control character other than
/// newline, if any.
fn find_control(s: &str) -> Option<(usize, u8)> {
    s.bytes().enumerate().find(|&(_, b)| b < 0x20 && b != b'\n')
}

/// Why a key, note or signature was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is not valid UTF-8.
    #[error("malformed note: expected valid utf-8, found an invalid sequence at byte {offset}")]
    NotUtf8 {
        /// Length of the valid prefix.
        offset: usize,
    },
    /// The note or its text contains an ASCII control character other than newline.
    #[error(
        "malformed note: expected no control characters but newline, found {found:#04x} at byte {offset}"
    )]
    ControlCharacter {
        /// Byte offset of the character.
        offset: usize,
        /// The control character.
        found: u8,
    },
    /// The note text is empty or does not end with a newline.
    #[error("malformed note: expected the text to end with a newline")]
    TextWithoutNewline,
    /// There is no blank line between the text and the signatures.
    #[error("malformed note: expected a blank line before the signature lines, found none")]
    MissingSeparator,
    /// There are no signature lines after the blank line.
    #[error("malformed note: expected at least one signature line, found none")]
    NoSignatures,
    /// The last signature line does not end with a newline.
    #[error("malformed note: expected the last signature line to end with a newline")]
    MissingFinalNewline,
    /// The note has more signatures than [`MAX_SIGNATURES`].
    #[error("malformed note: expected at most {max} signatures, found {found}")]
    TooManySignatures {
        /// The limit.
        max: usize,
        /// The number of signature lines.
        found: usize,
    },
    /// A signature line is malformed.
    #[error("malformed note: signature line {line}: {reason}")]
    MalformedSignatureLine {
        /// The 1-based number of the line within the signature block.
        line: usize,
        /// What was expected and found.
        reason: String,
    },
    /// A key name is empty or contains a space, a plus sign or a control character.
    #[error(
        "invalid key name {found:?}: expected a non-empty name without spaces, '+' or control characters"
    )]
    InvalidKeyName {
        /// The name, shortened if long.
        found: String,
    },
    /// A verifier key string is malformed.
    #[error("malformed verifier key: {reason}")]
    MalformedVerifierKey {
        /// What was expected and found.
        reason: String,
    },
    /// A signer key string is malformed. The message never quotes the key.
    #[error("malformed signer key: {reason}")]
    MalformedSignerKey {
        /// What was expected; never any part of the secret.
        reason: &'static str,
    },
    /// A key string's key id does not match its name and key.
    #[error(
        "key id mismatch for key {name}: expected {expected:08x} computed from the key, found {found:08x}"
    )]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The id computed from the name and public key.
        expected: u32,
        /// The id written in the key string.
        found: u32,
    },
    /// A key string uses a signature type other than Ed25519.
    #[error("unsupported signature type {found:#04x}: expected 0x01 (ed25519)")]
    UnsupportedKeyType {
        /// The signature type byte.
        found: u8,
    },
    /// A verifier key string holds a public key that is not usable.
    #[error("invalid ed25519 public key for key {name}: {source}")]
    InvalidPublicKey {
        /// The key name.
        name: String,
        /// Why the key was rejected.
        source: KeyError,
    },
    /// Two different verifier keys share a name and key id.
    #[error(
        "ambiguous verifier keys: expected one key named {name} with id {key_id:08x}, found several"
    )]
    AmbiguousVerifiers {
        /// The shared name.
        name: String,
        /// The shared key id.
        key_id: u32,
    },
    /// A signature from a known key does not verify.
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// Fewer distinct known keys signed the note than required.
    #[error(
        "note has too few verified signatures: expected at least {required} from distinct known keys, found {found}"
    )]
    TooFewSignatures {
        /// The number of distinct known keys required.
        required: usize,
        /// The number of distinct known keys whose signatures verified.
        found: usize,
    },
}

/// The broad class of a [`NoteError`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteErrorKind {
    /// The note text or signature block does not follow the format.
    MalformedNote,
    /// A key name, key string or key is invalid.
    InvalidKey,
    /// A known key's signature failed to verify.
    InvalidSignature,
    /// Not enough known keys signed the note.
    TooFewSignatures,
}

impl NoteError {
    /// Returns the broad class of this error.
    pub fn kind(&self) -> NoteErrorKind {
        match self {
            Self::NotUtf8 { .. }
            | Self::ControlCharacter { .. }
            | Self::TextWithoutNewline
            | Self::MissingSeparator
            | Self::NoSignatures
            | Self::MissingFinalNewline
            | Self::TooManySignatures { .. }
            | Self::MalformedSignatureLine { .. } => NoteErrorKind::MalformedNote,
            Self::InvalidKeyName { .. }
            | Self::MalformedVerifierKey { .. }
            | Self::MalformedSignerKey { .. }
            | Self::KeyIdMismatch { .. }
            | Self::UnsupportedKeyType { .. }
            | Self::InvalidPublicKey { .. }
            | Self::AmbiguousVerifiers { .. } => NoteErrorKind::InvalidKey,
            Self::InvalidSignature { .. } => NoteErrorKind::InvalidSignature,
            Self::TooFewSignatures { .. } => NoteErrorKind::TooFewSignatures,
        }
    }
}

/// An Ed25519 note verifier key: a key name, its key id and a public key.
///
/// Parse one from `name+<8 hex key id>+base64(0x01 || public key)` with
/// [`FromStr`]; [`Display`](fmt::Display) writes that form back with a
/// lowercase key id.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: PublicKey,
}

impl NoteVerifier {
    /// Creates a verifier for `key` under `name`, computing its key id.
    pub fn new(name: &str, key: PublicKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: ed25519_key_id(name, &key),
            key,
        })
    }

    /// Returns the key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Returns the public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Verifies an Ed25519 signature (without the key id prefix) over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        self.key.verify(msg, sig)
    }
}

impl FromStr for NoteVerifier {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = |reason: String| NoteError::MalformedVerifierKey { reason };
        let (name, rest) = s.split_once('+').ok_or_else(|| {
            malformed("expected name+keyid+key, found no '+' separator".to_owned())
        })?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or_else(|| {
            malformed("expected name+keyid+key, found only one '+' separator".to_owned())
        })?;
        check_name(name)?;
        let key_id = parse_key_id(id_hex).ok_or_else(|| {
            malformed(format!(
                "expected an 8-digit hex key id, found {:?}",
                excerpt(id_hex)
            ))
        })?;
        let bytes = STANDARD.decode(key_b64).map_err(|_| {
            malformed(format!(
                "expected standard padded base64 key, found {:?}",
                excerpt(key_b64)
            ))
        })?;
        let (&key_type, key) = bytes.split_first().ok_or_else(|| {
            malformed("expected a signature type byte and key, found 0 bytes".to_owned())
        })?;
        if key_type != ED25519 {
            return Err(NoteError::UnsupportedKeyType { found: key_type });
        }
        let key: &[u8; 32] = key.try_into().map_err(|_| {
            malformed(format!(
                "expected a 32-byte ed25519 public key, found {} bytes",
                key.len()
            ))
        })?;
        let key = PublicKey::from_bytes(key).map_err(|source| NoteError::InvalidPublicKey {
            name: name.to_owned(),
            source,
        })?;
        let verifier = Self::new(name, key)?;
        if verifier.key_id != key_id {
            return Err(NoteError::KeyIdMismatch {
                name: name.to_owned(),
                expected: verifier.key_id,
                found: key_id,
            });
        }
        Ok(verifier)
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = Vec::with_capacity(33);
        key.push(ED25519);
        key.extend_from_slice(&self.key.to_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(&*key)
        )
    }
}

/// An Ed25519 note signer: a key name, its key id and a secret key.
///
/// Its [`Debug`](fmt::Debug) output shows the name and key id only. Parse one
/// from `PRIVATE+KEY+name+<8 hex key id>+base64(0x01 || seed)` with [`FromStr`]
/// and write it back with [`encode`](Self::encode).
pub struct NoteSigner {
    name: String,
    key_id: u32,
    secret: SecretKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// Creates a signer for `secret` under `name`.
    pub fn new(name: &str, secret: SecretKey) -> Result<Self, NoteError> {
        check_name(name)?;
        let key_id = ed25519_key_id(name, &secret.public_key());
        Ok(Self {
            name: name.to_owned(),
            key_id,
            secret,
        })
    }

    /// Creates a signer under `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        Self::new(name, SecretKey::from_bytes(seed))
    }

    /// Creates a signer under `name` with a fresh random key.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Self::new(name, SecretKey::generate())
    }

    /// Returns the key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Returns the matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.secret.public_key(),
        }
    }

    /// Encodes the signer as `PRIVATE+KEY+name+<key id>+base64(0x01 || seed)`.
    ///
    /// The result is secret: store it like a private key and never log it.
    pub fn encode(&self) -> Result<String, NoteError> {
        let seed = self.secret.to_bytes();
        let mut key = zeroize::Zeroizing::new(Vec::with_capacity(33));
        key.push(ED25519);
        key.extend_from_slice(&*seed);
        Ok(format!(
            "{PRIVATE_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(&*key)
        ))
    }

    /// Signs the note text.
    fn sign(&self, text: &str) -> [u8; 64] {
        self.secret.sign(text.as_bytes())
    }
}

impl FromStr for NoteSigner {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = |reason| NoteError::MalformedSignerKey { reason };
        let rest = s
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or_else(|| malformed("expected the prefix PRIVATE+KEY+"))?;
        let (name, rest) = rest.split_once('+').ok_or_else(|| {
            malformed("expected PRIVATE+KEY+name+keyid+key, found too few fields")
        })?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or_else(|| {
            malformed("expected PRIVATE+KEY+name+keyid+key, found too few fields")
        })?;
        check_name(name)?;
        let key_id =
            parse_key_id(id_hex).ok_or_else(|| malformed("expected an 8-digit hex key id"))?;
        let bytes = STANDARD
            .decode(key_b64)
            .map_err(|_| malformed("expected a standard padded base64 key"))?;
        let (&key_type, seed) = bytes
            .split_first()
            .ok_or_else(|| malformed("expected a signature type byte and a seed"))?;
        if key_type != ED25519 {
            return Err(NoteError::UnsupportedKeyType { found: key_type });
        }
        let seed: &[u8; 32] = seed
            .try_into()
            .map_err(|_| malformed("expected a 32-byte ed25519 seed"))?;
        let signer = Self::from_seed(name, seed)?;
        if signer.key_id != key_id {
            return Err(NoteError::KeyIdMismatch {
                name: name.to_owned(),
                expected: signer.key_id,
                found: key_id,
            });
        }
        Ok(signer)
    }
}

/// One signature line of a note.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NoteSignature {
    name: String,
    key_id: u32,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// Returns the key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Returns the signature bytes after the key id.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Parses one signature line without its newline; `line` numbers errors.
    fn parse(text: &str, line: usize) -> Result<Self, NoteError> {
        let malformed = |reason: String| NoteError::MalformedSignatureLine { line, reason };
        let rest = text.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
            malformed("expected it to start with an em dash (U+2014) and a space".to_owned())
        })?;
        let (name, b64) = rest.split_once(' ').ok_or_else(|| {
            malformed("expected a key name, a space and a signature, found no space".to_owned())
        })?;
        if !is_valid_name(name) {
            return Err(malformed(format!(
                "expected a valid key name, found {:?}",
                excerpt(name)
            )));
        }
        let bytes = STANDARD.decode(b64).map_err(|_| {
            malformed(format!(
                "expected a standard padded base64 signature, found {:?}",
                excerpt(b64)
            ))
        })?;
        if bytes.len() < 5 {
            return Err(malformed(format!(
                "expected a 4-byte key id and a signature, found {} bytes",
                bytes.len()
            )));
        }
        let (id, signature) = bytes.split_at(4);
        Ok(Self {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
            signature: signature.to_vec(),
        })
    }
}

impl fmt::Display for NoteSignature {
    /// Writes the signature line without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(4 + self.signature.len());
        bytes.extend_from_slice(&self.key_id.to_be_bytes());
        bytes.extend_from_slice(&self.signature);
        write!(
            f,
            "{SIGNATURE_PREFIX}{} {}",
            self.name,
            STANDARD.encode(bytes)
        )
    }
}

/// A parsed, not yet verified, signed note.
///
/// Its text must be ignored until [`verify`](Self::verify) or
/// [`open`](Self::open) has checked it against trusted keys; only
/// [`VerifiedNote`] hands the text out without the `unverified_` warning.
/// [`Display`](fmt::Display) writes the note in its wire form.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// Fails unless `text` can be the text of a note: it ends with a newline and
/// has no control characters besides newlines.
fn check_text(text: &str) -> Result<(), NoteError> {
    if let Some((offset, found)) = find_control(text) {
        return Err(NoteError::ControlCharacter { offset, found });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::TextWithoutNewline);
    }
    Ok(())
}

impl Note {
    /// Parses a note strictly per C2SP signed-note: valid UTF-8, no control
    /// characters but newlines, text ending in a newline, a blank line, then
    /// 1 to [`MAX_SIGNATURES`] well-formed signature lines each ending in a
    /// newline. Signatures are not checked.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        let note = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        if let Some((offset, found)) = find_control(note) {
            return Err(NoteError::ControlCharacter { offset, found });
        }
        // The text ends at the last blank line; it keeps its final newline.
        let split = note.rfind("\n\n").ok_or(NoteError::MissingSeparator)?;
        let (text, block) = (&note[..=split], &note[split + 2..]);
        if block.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let block = block
            .strip_suffix('\n')
            .ok_or(NoteError::MissingFinalNewline)?;
        let count = block.split('\n').count();
        if count > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                max: MAX_SIGNATURES,
                found: count,
            });
        }
        let signatures = block
            .split('\n')
            .enumerate()
            .map(|(i, line)| NoteSignature::parse(line, i + 1))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Signs `text` with every signer; the text must end with a newline and
    /// hold no control characters but newlines.
    pub fn sign(text: &str, signers: &[&NoteSigner]) -> Result<Self, NoteError> {
        check_text(text)?;
        if signers.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let mut note = Self {
            text: text.to_owned(),
            signatures: Vec::with_capacity(signers.len()),
        };
        for signer in signers {
            note.add_signature(signer)?;
        }
        Ok(note)
    }

    /// Adds `signer`'s signature, replacing any signature with the same key
    /// name and key id.
    pub fn add_signature(&mut self, signer: &NoteSigner) -> Result<(), NoteError> {
        let signature = NoteSignature {
            name: signer.name.clone(),
            key_id: signer.key_id,
            signature: signer.sign(&self.text).to_vec(),
        };
        let existing = self
            .signatures
            .iter()
            .position(|s| s.name == signature.name && s.key_id == signature.key_id);
        match existing {
            Some(i) => self.signatures[i] = signature,
            None if self.signatures.len() >= MAX_SIGNATURES => {
                return Err(NoteError::TooManySignatures {
                    max: MAX_SIGNATURES,
                    found: self.signatures.len() + 1,
                });
            }
            None => self.signatures.push(signature),
        }
        Ok(())
    }

    /// Returns the note text, which must not be trusted before verification.
    pub fn unverified_text(&self) -> &str {
        &self.text
    }

    /// Returns the signatures in note order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Checks the signatures against `verifiers`.
    ///
    /// Signatures whose key name and id match no verifier are ignored. A
    /// signature from a known key that fails to verify rejects the note. At
    /// least `min_signers` distinct known public keys (and never fewer than
    /// one) must have signed; a key listed under two names counts once.
    pub fn verify(
        self,
        verifiers: &[NoteVerifier],
        min_signers: usize,
    ) -> Result<VerifiedNote, NoteError> {
        let required = min_signers.max(1);
        let mut verified: Vec<NoteSignature> = Vec::new();
        let mut verified_keys: Vec<&PublicKey> = Vec::new();
        let mut unverified: Vec<NoteSignature> = Vec::new();
        for signature in &self.signatures {
            let mut known = verifiers
                .iter()
                .filter(|v| v.name == signature.name && v.key_id == signature.key_id);
            let Some(verifier) = known.next() else {
                if !unverified.contains(signature) {
                    unverified.push(signature.clone());
                }
                continue;
            };
            if known.any(|other| other.key != verifier.key) {
                return Err(NoteError::AmbiguousVerifiers {
                    name: signature.name.clone(),
                    key_id: signature.key_id,
                });
            }
            verifier
                .verify(self.text.as_bytes(), &signature.signature)
                .map_err(|_| NoteError::InvalidSignature {
                    name: signature.name.clone(),
                    key_id: signature.key_id,
                })?;
            // Count each public key once, even when listed under two names.
            if !verified_keys.contains(&&verifier.key) {
                verified_keys.push(&verifier.key);
                verified.push(signature.clone());
            }
        }
        if verified.len() < required {
            return Err(NoteError::TooFewSignatures {
                required,
                found: verified.len(),
            });
        }
        Ok(VerifiedNote {
            note: self,
            verified,
            unverified,
        })
    }

    /// Parses `bytes` and verifies it with at least one known signer.
    pub fn open(bytes: &[u8], verifiers: &[NoteVerifier]) -> Result<VerifiedNote, NoteError> {
        Self::open_with_min(bytes, verifiers, 1)
    }

    /// Parses `bytes` and verifies it with at least `min_signers` distinct
    /// known signers; see [`verify`](Self::verify).
    pub fn open_with_min(
        bytes: &[u8],
        verifiers: &[NoteVerifier],
        min_signers: usize,
    ) -> Result<VerifiedNote, NoteError> {
        Self::parse(bytes)?.verify(verifiers, min_signers)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for signature in &self.signatures {
            writeln!(f, "{signature}")?;
        }
        Ok(())
    }
}

/// A note whose signatures from known keys all verified.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedNote {
    note: Note,
    verified: Vec<NoteSignature>,
    unverified: Vec<NoteSignature>,
}

impl VerifiedNote {
    /// Returns the verified note text.
    pub fn text(&self) -> &str {
        &self.note.text
    }

    /// Returns one verified signature per distinct known public key, in note
    /// order.
    pub fn verified_signatures(&self) -> &[NoteSignature] {
        &self.verified
    }

    /// Returns the signatures from unknown keys, without exact duplicates.
    pub fn unverified_signatures(&self) -> &[NoteSignature] {
        &self.unverified
    }

    /// Returns the whole note, for forwarding or adding signatures.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// Returns the whole note.
    pub fn into_note(self) -> Note {
        self.note
    }
}

/// Why a checkpoint was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed note around the checkpoint was rejected.
    #[error("invalid checkpoint note: {0}")]
    Note(NoteError),
    /// The text does not end with a newline.
    #[error("malformed checkpoint: expected the text to end with a newline")]
    MissingFinalNewline,
    /// The text has fewer than three lines.
    #[error(
        "malformed checkpoint: expected at least 3 lines (origin, tree size, root hash), found {found}"
    )]
    TooFewLines {
        /// The number of lines.
        found: usize,
    },
    /// A line is empty.
    #[error("malformed checkpoint: expected line {line} to be non-empty")]
    EmptyLine {
        /// The 1-based line number.
        line: usize,
    },
    /// A line contains an ASCII control character.
    #[error(
        "malformed checkpoint: expected no control characters, found {found:#04x} on line {line}"
    )]
    ControlCharacter {
        /// The 1-based line number.
        line: usize,
        /// The control character.
        found: u8,
    },
    /// The tree size is not a canonical decimal number.
    #[error(
        "malformed checkpoint: expected the tree size in decimal without leading zeros, found {found:?}"
    )]
    InvalidSize {
        /// The size line, shortened if long.
        found: String,
    },
    /// The root hash is not standard padded base64.
    #[error(
        "malformed checkpoint: expected the root hash in standard padded base64, found {found:?}"
    )]
    InvalidRootEncoding {
        /// The root line, shortened if long.
        found: String,
    },
    /// The root hash is not 32 bytes.
    #[error("malformed checkpoint: expected a 32-byte root hash, found {found} bytes")]
    InvalidRootLength {
        /// The decoded length.
        found: usize,
    },
}

impl CheckpointError {
    /// Returns the note error, if the note rather than the checkpoint text
    /// was rejected.
    pub fn note_error(&self) -> Option<&NoteError> {
        match self {
            Self::Note(e) => Some(e),
            _ => None,
        }
    }
}

/// A C2SP tlog checkpoint: the text of a signed log head.
///
/// Its text is `origin\nsize\nbase64(root)\n` followed by one line per
/// extension. [`Display`](fmt::Display) writes that text; [`FromStr`] and
/// [`parse`](Self::parse) read it strictly.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

/// Fails unless `line` (the 1-based line `number`) is non-empty and free of
/// control characters and newlines.
fn check_line(line: &str, number: usize) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(CheckpointError::EmptyLine { line: number });
    }
    if let Some(found) = line.bytes().find(|&b| b < 0x20) {
        return Err(CheckpointError::ControlCharacter {
            line: number,
            found,
        });
    }
    Ok(())
}

impl Checkpoint {
    /// Creates a checkpoint without extension lines. The origin must be a
    /// non-empty line without control characters.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        Self::with_extensions(origin, size, root, Vec::new())
    }

    /// Creates a checkpoint with one extension line, `time <time_ms>`: the
    /// Unix time in milliseconds at which the log signed it.
    pub fn with_time(
        origin: &str,
        size: u64,
        root: Hash,
        time_ms: u64,
    ) -> Result<Self, CheckpointError> {
        Self::with_extensions(
            origin,
            size,
            root,
            vec![format!("{TIME_EXTENSION}{time_ms}")],
        )
    }

    /// Creates a checkpoint with the given extension lines, each non-empty and
    /// without control characters or newlines.
    pub fn with_extensions(
        origin: &str,
        size: u64,
        root: Hash,
        extensions: Vec<String>,
    ) -> Result<Self, CheckpointError> {
        check_line(origin, 1)?;
        for (i, line) in extensions.iter().enumerate() {
            check_line(line, i + 4)?;
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Parses checkpoint text strictly: at least three non-empty lines, each
    /// ending in a newline; a decimal size without leading zeros; a root of
    /// 32 bytes in standard padded base64; non-empty extension lines.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            check_line(line, i + 1)?;
        }
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { found: lines.len() });
        };
        let size = parse_decimal(size).ok_or_else(|| CheckpointError::InvalidSize {
            found: excerpt(size),
        })?;
        let root_bytes =
            STANDARD
                .decode(root)
                .map_err(|_| CheckpointError::InvalidRootEncoding {
                    found: excerpt(root),
                })?;
        let root = Hash::try_from(root_bytes.as_slice()).map_err(|_| {
            CheckpointError::InvalidRootLength {
                found: root_bytes.len(),
            }
        })?;
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|&line| line.to_owned()).collect(),
        })
    }

    /// Returns the origin line, the log's identity.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Returns the tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Returns the tree root hash.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// Returns the extension lines, without newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Returns the signing time from the `time <unix-ms>` extension line.
    ///
    /// `None` unless exactly one extension line starts with `time ` and its
    /// value is a decimal number without leading zeros.
    pub fn time_ms(&self) -> Option<u64> {
        let mut times = self
            .extensions
            .iter()
            .filter_map(|line| line.strip_prefix(TIME_EXTENSION));
        let time = times.next()?;
        if times.next().is_some() {
            return None;
        }
        parse_decimal(time)
    }

    /// Signs the checkpoint text with every signer, giving a signed note.
    pub fn sign(&self, signers: &[&NoteSigner]) -> Result<Note, CheckpointError> {
        Note::sign(&self.to_string(), signers).map_err(CheckpointError::Note)
    }

    /// Opens a signed checkpoint note: parses it, requires signatures from at
    /// least `min_signers` distinct known keys (see [`Note::verify`]), then
    /// parses the verified text.
    ///
    /// The caller chooses `verifiers`; C2SP recommends that the log's key
    /// name match the origin, which callers may check on the result.
    pub fn open(
        bytes: &[u8],
        verifiers: &[NoteVerifier],
        min_signers: usize,
    ) -> Result<VerifiedCheckpoint, CheckpointError> {
        let note =
            Note::open_with_min(bytes, verifiers, min_signers).map_err(CheckpointError::Note)?;
        let checkpoint = Self::parse(note.text())?;
        Ok(VerifiedCheckpoint { checkpoint, note })
    }
}

impl FromStr for Checkpoint {
    type Err = CheckpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.origin)?;
        writeln!(f, "{}", self.size)?;
        writeln!(f, "{}", STANDARD.encode(self.root))?;
        for line in &self.extensions {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// A checkpoint whose note verified against trusted keys.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    note: VerifiedNote,
}

impl VerifiedCheckpoint {
    /// Returns the checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Returns the verified note carrying it.
    pub fn note(&self) -> &VerifiedNote {
        &self.note
    }

    /// Returns the checkpoint and its note.
    pub fn into_parts(self) -> (Checkpoint, VerifiedNote) {
        (self.checkpoint, self.note)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde::Deserialize;

    use super::*;
    use crate::tlog::leaf_hash;

    /// The C2SP signed-note vector file (copied from shared/vectors).
    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/signed-note/signed-note-vectors.json"
    );

    #[derive(Deserialize)]
    struct VectorFile {
        cases: Vec<Case>,
        keys: serde_json::Map<String, serde_json::Value>,
        go_sumdb_tree_note: TreeNote,
    }

    #[derive(Deserialize)]
    struct Case {
        id: String,
        note: Option<String>,
        note_bytes_hex: Option<String>,
        verifier_keys: Option<Vec<String>>,
        signer_key: Option<String>,
        text: Option<String>,
        expect: String,
        expect_text: Option<String>,
        #[serde(default)]
        expect_exact_sign_output: bool,
        expect_verified_signers: Option<Vec<String>>,
        expect_unverified_signers: Option<Vec<String>>,
        error: Option<String>,
        checkpoint: Option<CheckpointFields>,
    }

    #[derive(Deserialize)]
    struct CheckpointFields {
        origin: String,
        size: u64,
        root_hash_b64: String,
    }

    #[derive(Deserialize)]
    struct TreeNote {
        record_hash_of: String,
        tree_size: u64,
        golden_text: String,
        bad_texts: Vec<String>,
    }

    fn load() -> VectorFile {
        serde_json::from_str(&fs::read_to_string(VECTORS).unwrap()).unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn names(signatures: &[NoteSignature]) -> Vec<&str> {
        signatures.iter().map(NoteSignature::name).collect()
    }

    fn check_checkpoint(id: &str, checkpoint: &Checkpoint, want: &CheckpointFields) {
        assert_eq!(checkpoint.origin(), want.origin, "{id}");
        assert_eq!(checkpoint.size(), want.size, "{id}");
        assert_eq!(
            STANDARD.encode(checkpoint.root()),
            want.root_hash_b64,
            "{id}"
        );
        assert!(checkpoint.extensions().is_empty(), "{id}");
    }

    /// Every case of signed-note-vectors.json (C2SP signed-note and
    /// tlog-checkpoint examples, Go sumdb/note, transparency-dev formats).
    #[test]
    fn c2sp_signed_note_vectors() {
        let file = load();
        assert_eq!(file.cases.len(), 17);
        for case in &file.cases {
            let id = case.id.as_str();
            let bytes = match (&case.note, &case.note_bytes_hex) {
                (_, Some(hex)) => unhex(hex),
                (Some(note), None) => note.clone().into_bytes(),
                (None, None) => panic!("{id}: no note"),
            };
            let verifiers: Option<Vec<NoteVerifier>> = case
                .verifier_keys
                .as_ref()
                .map(|keys| keys.iter().map(|k| k.parse().unwrap()).collect());
            for (verifier, key) in verifiers
                .iter()
                .flatten()
                .zip(case.verifier_keys.iter().flatten())
            {
                assert_eq!(&verifier.to_string(), key, "{id}: verifier key round trip");
            }
            match case.expect.as_str() {
                "verified" => {
                    let verifiers = verifiers.unwrap();
                    let opened =
                        Note::open(&bytes, &verifiers).unwrap_or_else(|e| panic!("{id}: {e}"));
                    if let Some(text) = &case.expect_text {
                        assert_eq!(opened.text(), text, "{id}");
                    }
                    let want: Vec<&str> = case
                        .expect_verified_signers
                        .iter()
                        .flatten()
                        .map(String::as_str)
                        .collect();
                    assert_eq!(names(opened.verified_signatures()), want, "{id}");
                    let want: Vec<&str> = case
                        .expect_unverified_signers
                        .iter()
                        .flatten()
                        .map(String::as_str)
                        .collect();
                    assert_eq!(names(opened.unverified_signatures()), want, "{id}");
                    assert_eq!(
                        opened.note().to_string().as_bytes(),
                        bytes,
                        "{id}: round trip"
                    );
                    if let Some(skey) = &case.signer_key {
                        let signer: NoteSigner = skey.parse().unwrap();
                        assert_eq!(&signer.encode().unwrap(), skey, "{id}");
                        assert_eq!(signer.verifier(), verifiers[0], "{id}");
                        if case.expect_exact_sign_output {
                            let text = case.text.as_deref().unwrap();
                            let signed = Note::sign(text, &[&signer]).unwrap();
                            assert_eq!(signed.to_string().as_bytes(), bytes, "{id}: sign output");
                        }
                    }
                    if let Some(want) = &case.checkpoint {
                        let opened = Checkpoint::open(&bytes, &verifiers, 1).unwrap();
                        check_checkpoint(id, opened.checkpoint(), want);
                    }
                }
                "error" => {
                    let err = Note::open(&bytes, &verifiers.unwrap()).unwrap_err();
                    match case.error.as_deref().unwrap() {
                        "malformed note" => {
                            assert_eq!(err.kind(), NoteErrorKind::MalformedNote, "{id}: {err}");
                        }
                        "note has no verifiable signatures" => assert!(
                            matches!(
                                err,
                                NoteError::TooFewSignatures {
                                    required: 1,
                                    found: 0
                                }
                            ),
                            "{id}: {err}"
                        ),
                        go if go.starts_with("invalid signature for key ") => {
                            assert_eq!(err.kind(), NoteErrorKind::InvalidSignature, "{id}");
                            assert_eq!(err.to_string(), go, "{id}");
                        }
                        other => panic!("{id}: unknown expected error {other:?}"),
                    }
                }
                "parse-only" => {
                    let note = Note::parse(&bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
                    assert_eq!(note.to_string().as_bytes(), bytes, "{id}: round trip");
                    let checkpoint = Checkpoint::parse(note.unverified_text()).unwrap();
                    check_checkpoint(id, &checkpoint, case.checkpoint.as_ref().unwrap());
                    assert_eq!(checkpoint.to_string(), note.unverified_text(), "{id}");
                }
                other => panic!("{id}: unknown expectation {other:?}"),
            }
        }
    }

    /// The transparency-dev and Go key pairs: each signer key gives its
    /// verifier key, and both strings round-trip.
    #[test]
    fn c2sp_signed_note_vector_key_pairs() {
        let file = load();
        let mut pairs = 0;
        for group in file.keys.values() {
            for pair in group.as_object().unwrap().values() {
                let pair = pair.as_array().unwrap();
                let vkey = pair[0].as_str().unwrap();
                let verifier: NoteVerifier = vkey.parse().unwrap();
                assert_eq!(verifier.to_string(), vkey);
                if let Some(skey) = pair[1].as_str() {
                    let signer: NoteSigner = skey.parse().unwrap();
                    assert_eq!(signer.encode().unwrap(), skey);
                    assert_eq!(signer.verifier(), verifier);
                    pairs += 1;
                }
            }
        }
        assert_eq!(pairs, 5);
        // EnochRoot's key comes from the all-zero seed (Go example_test.go).
        let enoch = NoteSigner::from_seed("EnochRoot", &[0; 32]).unwrap();
        assert_eq!(
            enoch.verifier().to_string(),
            "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
        );
    }

    /// Go sumdb/tlog note_test.go: the go.sum tree note, a checkpoint body.
    #[test]
    fn go_sumdb_tree_note_as_checkpoint() {
        let tree = load().go_sumdb_tree_note;
        let root = leaf_hash(tree.record_hash_of.as_bytes());
        let checkpoint = Checkpoint::new("go.sum database tree", tree.tree_size, root).unwrap();
        assert_eq!(checkpoint.to_string(), tree.golden_text);
        assert_eq!(Checkpoint::parse(&tree.golden_text).unwrap(), checkpoint);
        // The first bad text is a well-formed checkpoint of another origin.
        let other: Checkpoint = tree.bad_texts[0].parse().unwrap();
        assert_ne!(other.origin(), checkpoint.origin());
        assert!(matches!(
            Checkpoint::parse(&tree.bad_texts[1]),
            Err(CheckpointError::InvalidSize { .. })
        ));
        // "…BTOOBIG=" has non-zero padding bits, which strict base64 refuses.
        assert!(matches!(
            Checkpoint::parse(&tree.bad_texts[2]),
            Err(CheckpointError::InvalidRootEncoding { .. })
        ));
    }

    fn signers(n: usize) -> Vec<NoteSigner> {
        (0..n)
            .map(|i| NoteSigner::generate(&format!("witness.example/w{i}")).unwrap())
            .collect()
    }

    #[test]
    fn sign_then_open_with_one_signer() {
        let log = NoteSigner::generate("example.com/log").unwrap();
        let note = Note::sign("hello\n\nworld\n", &[&log]).unwrap().to_string();
        let opened = Note::open(note.as_bytes(), &[log.verifier()]).unwrap();
        assert_eq!(opened.text(), "hello\n\nworld\n");
        assert_eq!(names(opened.verified_signatures()), ["example.com/log"]);
        let stranger = NoteSigner::generate("example.com/log").unwrap();
        assert!(matches!(
            Note::open(note.as_bytes(), &[stranger.verifier()]),
            Err(NoteError::TooFewSignatures {
                required: 1,
                found: 0
            })
        ));
    }

    #[test]
    fn sign_then_open_with_three_signers_and_minimums() {
        let all = signers(3);
        let refs: Vec<&NoteSigner> = all.iter().collect();
        let verifiers: Vec<NoteVerifier> = all.iter().map(NoteSigner::verifier).collect();
        let note = Note::sign("text\n", &refs).unwrap().to_string();

        for min in 0..=3 {
            let opened = Note::open_with_min(note.as_bytes(), &verifiers, min).unwrap();
            assert_eq!(opened.verified_signatures().len(), 3);
        }
        let err = Note::open_with_min(note.as_bytes(), &verifiers, 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "note has too few verified signatures: expected at least 4 from distinct known keys, found 3"
        );
        // Only two of the keys are known: the third signature is ignored.
        let opened = Note::open_with_min(note.as_bytes(), &verifiers[..2], 2).unwrap();
        assert_eq!(opened.unverified_signatures().len(), 1);
        assert!(Note::open_with_min(note.as_bytes(), &verifiers[..2], 3).is_err());
        // Listing a verifier twice does not count twice.
        let twice = [verifiers[0].clone(), verifiers[0].clone()];
        assert!(Note::open_with_min(note.as_bytes(), &twice, 2).is_err());
    }

    #[test]
    fn duplicate_signatures_count_once() {
        let all = signers(1);
        let note = Note::sign("text\n", &[&all[0]]).unwrap().to_string();
        let line = note.split("\n\n").nth(1).unwrap();
        let doubled = format!("{note}{line}");
        assert_eq!(
            Note::parse(doubled.as_bytes()).unwrap().signatures().len(),
            2
        );
        let verifier = all[0].verifier();
        let opened = Note::open(doubled.as_bytes(), std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(opened.verified_signatures().len(), 1);
        assert!(Note::open_with_min(doubled.as_bytes(), &[verifier], 2).is_err());
    }

    #[test]
    fn bad_signature_from_known_key_rejects_note() {
        let all = signers(2);
        let mut note = Note::sign("text\n", &[&all[0], &all[1]]).unwrap();
        note.signatures[1].signature[0] ^= 1;
        let wire = note.to_string();
        let verifiers = [all[0].verifier(), all[1].verifier()];
        let err = Note::open(wire.as_bytes(), &verifiers).unwrap_err();
        assert_eq!(err.kind(), NoteErrorKind::InvalidSignature);
        // Unknown to this verifier set, the bad signature is ignored.
        Note::open(wire.as_bytes(), &verifiers[..1]).unwrap();
        // A signature of the wrong length from a known key is invalid too.
        note.signatures[1].signature.truncate(10);
        let err = Note::open(note.to_string().as_bytes(), &verifiers).unwrap_err();
        assert_eq!(err.kind(), NoteErrorKind::InvalidSignature);
    }

    #[test]
    fn same_name_other_id_is_ignored_and_ambiguous_keys_fail() {
        let a = NoteSigner::generate("example.com/log").unwrap();
        let b = NoteSigner::generate("example.com/log").unwrap();
        let note = Note::sign("text\n", &[&a, &b]).unwrap().to_string();
        let opened = Note::open(note.as_bytes(), &[a.verifier()]).unwrap();
        assert_eq!(opened.unverified_signatures().len(), 1);
        // A forged verifier with a's name and id but another key.
        let forged = NoteVerifier {
            key: b.verifier().key,
            ..a.verifier()
        };
        let err = Note::open(note.as_bytes(), &[a.verifier(), forged]).unwrap_err();
        assert!(matches!(err, NoteError::AmbiguousVerifiers { .. }));
    }

    #[test]
    fn one_key_under_two_names_counts_once() {
        let seed = [9; 32];
        let a = NoteSigner::from_seed("example.com/a", &seed).unwrap();
        let b = NoteSigner::from_seed("example.com/b", &seed).unwrap();
        let note = Note::sign("text\n", &[&a, &b]).unwrap().to_string();
        let verifiers = [a.verifier(), b.verifier()];
        let opened = Note::open(note.as_bytes(), &verifiers).unwrap();
        assert_eq!(names(opened.verified_signatures()), ["example.com/a"]);
        assert!(matches!(
            Note::open_with_min(note.as_bytes(), &verifiers, 2),
            Err(NoteError::TooFewSignatures {
                required: 2,
                found: 1
            })
        ));
    }

    #[test]
    fn add_signature_replaces_same_key_and_caps_count() {
        let all = signers(2);
        let mut note = Note::sign("text\n", &[&all[0]]).unwrap();
        note.add_signature(&all[0]).unwrap();
        assert_eq!(note.signatures().len(), 1);
        note.add_signature(&all[1]).unwrap();
        assert_eq!(
            names(note.signatures()),
            ["witness.example/w0", "witness.example/w1"]
        );

        let many = signers(MAX_SIGNATURES + 1);
        let refs: Vec<&NoteSigner> = many.iter().collect();
        assert!(matches!(
            Note::sign("text\n", &refs),
            Err(NoteError::TooManySignatures {
                max: 100,
                found: 101
            })
        ));
        let note = Note::sign("text\n", &refs[..MAX_SIGNATURES])
            .unwrap()
            .to_string();
        let verifiers: Vec<NoteVerifier> = many.iter().map(NoteSigner::verifier).collect();
        let opened = Note::open_with_min(note.as_bytes(), &verifiers, 100).unwrap();
        assert_eq!(opened.verified_signatures().len(), 100);
    }

    #[test]
    fn sign_rejects_bad_text_and_no_signers() {
        let all = signers(1);
        assert!(matches!(
            Note::sign("no newline", &[&all[0]]),
            Err(NoteError::TextWithoutNewline)
        ));
        assert!(matches!(
            Note::sign("", &[&all[0]]),
            Err(NoteError::TextWithoutNewline)
        ));
        assert!(matches!(
            Note::sign("tab\there\n", &[&all[0]]),
            Err(NoteError::ControlCharacter {
                offset: 3,
                found: 0x09
            })
        ));
        assert!(matches!(
            Note::sign("text\n", &[]),
            Err(NoteError::NoSignatures)
        ));
    }

    #[test]
    fn parse_rejects_malformed_notes() {
        let all = signers(1);
        let good = Note::sign("text\n", &[&all[0]]).unwrap().to_string();
        let sig_line = good.split("\n\n").nth(1).unwrap().trim_end();
        let (_, b64) = sig_line.rsplit_once(' ').unwrap();
        let cases: Vec<(String, &str)> = vec![
            ("text\n".to_owned(), "blank line"),
            ("text\n\n".to_owned(), "at least one signature"),
            (format!("text\n\n{sig_line}"), "end with a newline"),
            (format!("text\r\n\n{sig_line}\n"), "control characters"),
            (format!("text\n\n- name {b64}\n"), "em dash"),
            (format!("text\n\n\u{2014} name{b64}\n"), "no space"),
            (format!("text\n\n\u{2014} a+b {b64}\n"), "valid key name"),
            (
                format!("text\n\n\u{2014} \u{a0}x {b64}\n"),
                "valid key name",
            ),
            (format!("text\n\n\u{2014}  {b64}\n"), "valid key name"),
            ("text\n\n\u{2014} name AAAA\n".to_owned(), "found 3 bytes"),
            (
                "text\n\n\u{2014} name AAAAAAA=\n".to_owned(),
                "found 5 bytes",
            ),
            ("text\n\n\u{2014} name \n".to_owned(), "found 0 bytes"),
            ("text\n\n\u{2014} name AAAAAAB=\n".to_owned(), "base64"),
            ("text\n\n\u{2014} name AAAAAAA\n".to_owned(), "base64"),
        ];
        for (note, want) in cases {
            match Note::parse(note.as_bytes()) {
                Err(err) => {
                    assert_eq!(err.kind(), NoteErrorKind::MalformedNote, "{note:?}");
                    assert!(err.to_string().contains(want), "{note:?}: {err}");
                }
                Ok(parsed) if want == "found 5 bytes" => {
                    // Five bytes is the minimum a line may carry.
                    assert_eq!(parsed.signatures()[0].signature().len(), 1);
                }
                Ok(_) => panic!("{note:?} parsed"),
            }
        }
        assert!(matches!(
            Note::parse(b"te\xffxt\n\n"),
            Err(NoteError::NotUtf8 { offset: 2 })
        ));
        // The text is split off at the last blank line.
        let note = Note::parse(format!("a\n\n\nb\n\n{sig_line}\n").as_bytes()).unwrap();
        assert_eq!(note.unverified_text(), "a\n\n\nb\n");
        let note = Note::parse(format!("a\n\n{sig_line}\n\n{sig_line}\n").as_bytes()).unwrap();
        assert_eq!(note.unverified_text(), format!("a\n\n{sig_line}\n"));
        assert_eq!(note.signatures().len(), 1);
    }

    #[test]
    fn key_strings_are_parsed_strictly() {
        let signer = NoteSigner::from_seed("example.com/k", &[7; 32]).unwrap();
        let vkey = signer.verifier().to_string();
        let (name_and_id, key) = vkey.rsplit_once('+').unwrap();
        let upper = vkey.replacen(
            &format!("{:08x}", signer.key_id()),
            &format!("{:08X}", signer.key_id()),
            1,
        );
        assert_eq!(upper.parse::<NoteVerifier>().unwrap(), signer.verifier());
        let bad = [
            ("example.com/k".to_owned(), "no '+'"),
            (name_and_id.to_owned(), "only one '+'"),
            (format!("example.com/k+0000000+{key}"), "8-digit hex"),
            (format!("example.com/k++0000000+{key}"), "8-digit hex"),
            (format!("example.com/k+00000000+{key}"), "key id mismatch"),
            (
                format!("other+{}", &vkey["example.com/k+".len()..]),
                "key id mismatch",
            ),
            (format!("{name_and_id}+AQ=="), "found 0 bytes"),
            (format!("{name_and_id}+"), "found 0 bytes"),
            (
                format!("{name_and_id}+Ag=="),
                "unsupported signature type 0x02",
            ),
            (format!("{name_and_id}+{key}x"), "base64"),
            (
                format!("bad name+{}", &vkey["example.com/k+".len()..]),
                "invalid key name",
            ),
        ];
        for (s, want) in bad {
            let err = s.parse::<NoteVerifier>().unwrap_err();
            assert_eq!(err.kind(), NoteErrorKind::InvalidKey, "{s}");
            assert!(err.to_string().contains(want), "{s}: {err}");
        }
        // A small-order public key is refused.
        let mut weak = vec![ED25519];
        weak.extend_from_slice(&[0; 32]);
        weak[1] = 1; // The identity point.
        let key = PublicKey::from_bytes(&weak[1..].try_into().unwrap());
        assert!(key.is_err());
        let err = format!("x+00000000+{}", STANDARD.encode(&weak))
            .parse::<NoteVerifier>()
            .unwrap_err();
        assert!(matches!(err, NoteError::InvalidPublicKey { .. }), "{err}");

        let skey = signer.encode().unwrap();
        assert!("PRIVATE+KEY+".parse::<NoteSigner>().is_err());
        assert!(
            skey.replacen("PRIVATE", "PUBLIC", 1)
                .parse::<NoteSigner>()
                .is_err()
        );
        let wrong_id = skey.replacen(&format!("{:08x}", signer.key_id()), "00000000", 1);
        let err = wrong_id.parse::<NoteSigner>().unwrap_err();
        assert!(matches!(err, NoteError::KeyIdMismatch { .. }));
        // Errors about signer keys never quote the secret.
        let seed_b64 = skey.rsplit_once('+').unwrap().1;
        for bad in [
            format!("{skey}="),
            format!("{skey}A"),
            skey.replace("example.com/k", "a b"),
        ] {
            let err = bad.parse::<NoteSigner>().unwrap_err().to_string();
            assert!(!err.contains(&seed_b64[..8]), "{err}");
        }
    }

    #[test]
    fn signer_debug_hides_the_secret() {
        let signer = NoteSigner::from_seed("example.com/k", &[7; 32]).unwrap();
        let debug = format!("{signer:?}");
        let skey = signer.encode().unwrap();
        let seed_b64 = skey.rsplit_once('+').unwrap().1;
        assert!(debug.contains("example.com/k"), "{debug}");
        assert!(!debug.contains(&seed_b64[..8]), "{debug}");
        assert!(!debug.contains("7, 7"), "{debug}");
        let opaque = NoteSigner::new("example.com/k", SecretKey::from_bytes(&[7; 32])).unwrap();
        assert_eq!(opaque.verifier(), signer.verifier());
        assert_eq!(opaque.encode().unwrap(), skey);
    }

    #[test]
    fn checkpoint_round_trip_with_time_and_cosigners() {
        let log = NoteSigner::generate("example.com/log").unwrap();
        let witnesses = signers(3);
        let root = leaf_hash(b"root");
        let checkpoint =
            Checkpoint::with_time("example.com/log", 42, root, 1_720_000_000_123).unwrap();
        assert_eq!(checkpoint.time_ms(), Some(1_720_000_000_123));
        let text = checkpoint.to_string();
        assert_eq!(text.lines().nth(3), Some("time 1720000000123"));

        let mut note = checkpoint.sign(&[&log]).unwrap();
        for witness in &witnesses {
            note.add_signature(witness).unwrap();
        }
        let wire = note.to_string();
        let mut verifiers: Vec<NoteVerifier> = witnesses.iter().map(NoteSigner::verifier).collect();
        verifiers.push(log.verifier());
        let opened = Checkpoint::open(wire.as_bytes(), &verifiers, 4).unwrap();
        assert_eq!(opened.checkpoint(), &checkpoint);
        assert_eq!(opened.note().verified_signatures().len(), 4);
        let err = Checkpoint::open(wire.as_bytes(), &verifiers[..2], 3).unwrap_err();
        assert!(matches!(
            err.note_error(),
            Some(NoteError::TooFewSignatures {
                required: 3,
                found: 2
            })
        ));
        assert!(
            err.to_string().starts_with("invalid checkpoint note: "),
            "{err}"
        );

        // A signed note whose text is not a checkpoint.
        let junk = Note::sign("just text\n", &[&log]).unwrap().to_string();
        assert!(matches!(
            Checkpoint::open(junk.as_bytes(), &verifiers, 1),
            Err(CheckpointError::TooFewLines { found: 1 })
        ));
    }

    #[test]
    fn checkpoint_parse_is_strict() {
        let root = STANDARD.encode([5u8; 32]);
        let ok = format!("example.com/log\n0\n{root}\n");
        assert_eq!(Checkpoint::parse(&ok).unwrap().size(), 0);
        let bad: Vec<(String, &str)> = vec![
            (format!("example.com/log\n0\n{root}"), "end with a newline"),
            ("example.com/log\n0\n".to_owned(), "found 2"),
            (format!("\n0\n{root}\n"), "line 1 to be non-empty"),
            (
                format!("example.com/log\n0\n{root}\n\n"),
                "line 4 to be non-empty",
            ),
            (format!("example.com/log\n00\n{root}\n"), "leading zeros"),
            (format!("example.com/log\n01\n{root}\n"), "leading zeros"),
            (format!("example.com/log\n+1\n{root}\n"), "leading zeros"),
            (format!("example.com/log\n-1\n{root}\n"), "leading zeros"),
            (format!("example.com/log\n 1\n{root}\n"), "leading zeros"),
            (
                format!("example.com/log\n18446744073709551616\n{root}\n"),
                "leading zeros",
            ),
            (
                "example.com/log\n1\nAAAA\n".to_owned(),
                "32-byte root hash, found 3",
            ),
            (
                format!("example.com/log\n1\n{}\n", root.trim_end_matches('=')),
                "base64",
            ),
            (
                format!("example.com/log\n1\n{}\n", STANDARD_URL_SAFE_ROOT),
                "base64",
            ),
            (
                format!("example.com/log\r\n1\n{root}\n"),
                "control characters",
            ),
        ];
        for (text, want) in bad {
            let err = Checkpoint::parse(&text).unwrap_err();
            assert!(err.to_string().contains(want), "{text:?}: {err}");
        }
        assert_eq!(
            Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\next\n"))
                .unwrap()
                .extensions(),
            ["ext"]
        );
        assert!(Checkpoint::new("", 1, [0; 32]).is_err());
        assert!(Checkpoint::new("a\nb", 1, [0; 32]).is_err());
        assert!(Checkpoint::with_extensions("o", 1, [0; 32], vec![String::new()]).is_err());
    }

    /// A root in the URL-safe alphabet, which the standard alphabet rejects.
    const STANDARD_URL_SAFE_ROOT: &str = "____________________________________________8=";

    #[test]
    fn checkpoint_time_extension() {
        let at = |extensions: &[&str]| {
            let extensions = extensions.iter().map(|s| (*s).to_owned()).collect();
            Checkpoint::with_extensions("o", 1, [0; 32], extensions)
                .unwrap()
                .time_ms()
        };
        assert_eq!(at(&[]), None);
        assert_eq!(at(&["time 0"]), Some(0));
        assert_eq!(at(&["other", "time 17"]), Some(17));
        assert_eq!(at(&["time 17", "time 17"]), None);
        assert_eq!(at(&["time 017"]), None);
        assert_eq!(at(&["time -1"]), None);
        assert_eq!(at(&["time"]), None);
        assert_eq!(at(&["time 1.5"]), None);
    }
}
