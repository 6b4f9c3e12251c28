//! The wallet's encrypted-at-rest secret store.
//!
//! A keystore file holds one opaque plaintext blob (the wallet's serialized secrets), encrypted
//! under a key derived from the user's passphrase:
//!
//! ```text
//! passphrase ──Argon2id(m, t, p, salt)──▶ 256-bit key
//!                                            │
//! plaintext ──XChaCha20-Poly1305(key, nonce, aad = header)──▶ ciphertext ‖ tag
//! ```
//!
//! The file is JSON:
//!
//! ```text
//! {
//!   "version": 1,
//!   "kdf": { "alg": "argon2id", "m_kib": 65536, "t": 3, "p": 1, "salt": "<base64, 16 bytes>" },
//!   "aead": { "alg": "xchacha20poly1305", "nonce": "<base64, 24 bytes>" },
//!   "ciphertext": "<base64, plaintext length + 16 bytes>"
//! }
//! ```
//!
//! # Guarantees
//!
//! - **Header binding.** The format version, both algorithm names, the Argon2id parameters,
//!   the salt and the nonce are encoded canonically and passed to the AEAD as associated data,
//!   so altering any of them makes decryption fail.
//! - **No downgrade.** Argon2id parameters read from a file are checked against
//!   [`KdfParams::MINIMUM`] (and [`KdfParams::MAXIMUM`]) *before* any key is derived; a file
//!   whose parameters were lowered is refused, never decrypted.
//! - **Fresh nonces.** Every [`Keystore::save`] draws a new random 24-byte nonce from the OS.
//!   The salt, and therefore the derived key, stay fixed for the life of the file.
//! - **Atomic, private writes.** Files are written to a temporary file in the same directory
//!   with mode `0600`, fsynced, moved into place with a rename (or, for a new keystore, a
//!   hard link that fails if the target exists) and the directory is fsynced. A crash leaves
//!   either the old file or the new one, never a mix.
//! - **Permission check.** [`Keystore::open`] refuses a file that group or other users can
//!   access, as `ssh` does for private keys.
//! - **Zeroization.** The derived key, the Argon2 working memory and every plaintext buffer
//!   this module allocates are zeroized when dropped. The passphrase is borrowed and never
//!   copied. Errors never contain the passphrase, the key or plaintext.
//!
//! The passphrase's UTF-8 bytes are used as they are, without Unicode normalization.
//!
//! # Usage
//!
//! Create a keystore with [`Keystore::create`], later [`Keystore::open`] it to get the
//! plaintext back together with a [`Keystore`] handle, and call [`Keystore::save`] on that
//! handle to store updated secrets without deriving the key again. Use [`exists`] to decide
//! between creating and opening.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// The only file format version this module reads and writes.
const FORMAT_VERSION: u32 = 1;
/// The `kdf.alg` value.
const KDF_ALG: &str = "argon2id";
/// The `aead.alg` value.
const AEAD_ALG: &str = "xchacha20poly1305";
/// Domain separation prefix of the associated data.
const AAD_CONTEXT: &[u8] = b"civitas-wallet-keystore";

const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The largest plaintext a keystore holds. Wallet secrets are a few kilobytes.
const MAX_PLAINTEXT_LEN: usize = 16 * 1024 * 1024;
/// The largest file [`Keystore::open`] reads: the base64 ciphertext plus room for the header.
const MAX_FILE_LEN: u64 = ((MAX_PLAINTEXT_LEN + TAG_LEN).div_ceil(3) * 4 + 4096) as u64;

/// Mode bits that give group or other users any access.
const GROUP_OTHER_BITS: u32 = 0o077;
/// The mode of every file this module writes.
const PRIVATE_MODE: u32 = 0o600;

/// Argon2id cost parameters.
///
/// A value of this type always lies between [`KdfParams::MINIMUM`] and [`KdfParams::MAXIMUM`],
/// component by component; [`KdfParams::new`] is the only way to build other values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    m_kib: u32,
    t: u32,
    p: u32,
}

impl KdfParams {
    /// The weakest parameters accepted when creating or opening a keystore: 19 MiB of memory,
    /// two passes, one lane (OWASP Password Storage Cheat Sheet, second Argon2id
    /// configuration). Each component is a separate floor, so trading memory for passes below
    /// these values is refused too.
    pub const MINIMUM: Self = Self {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };

    /// The strongest parameters accepted: 4 GiB of memory, 64 passes, 64 lanes. The ceiling
    /// keeps a tampered file from making the wallet allocate without bound.
    pub const MAXIMUM: Self = Self {
        m_kib: 4 * 1024 * 1024,
        t: 64,
        p: 64,
    };

    /// The parameters of new keystores: 64 MiB of memory, three passes, one lane (RFC 9106
    /// §4, second recommended option, with a single lane because derivation runs on one
    /// thread).
    pub const DEFAULT: Self = Self {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Checks Argon2id parameters: memory in KiB, passes and lanes.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::ParamsBelowMinimum`] or [`KeystoreError::ParamsAboveMaximum`] naming
    /// the first parameter out of range.
    pub fn new(m_kib: u32, t: u32, p: u32) -> Result<Self, KeystoreError> {
        let checks = [
            ("m_kib", m_kib, Self::MINIMUM.m_kib, Self::MAXIMUM.m_kib),
            ("t", t, Self::MINIMUM.t, Self::MAXIMUM.t),
            ("p", p, Self::MINIMUM.p, Self::MAXIMUM.p),
        ];
        for (param, found, minimum, maximum) in checks {
            if found < minimum {
                return Err(KeystoreError::ParamsBelowMinimum {
                    param,
                    found,
                    minimum,
                });
            }
            if found > maximum {
                return Err(KeystoreError::ParamsAboveMaximum {
                    param,
                    found,
                    maximum,
                });
            }
        }
        Ok(Self { m_kib, t, p })
    }

    /// Memory cost in KiB.
    pub fn m_kib(&self) -> u32 {
        self.m_kib
    }

    /// Number of passes over memory.
    pub fn t(&self) -> u32 {
        self.t
    }

    /// Degree of parallelism (lanes).
    pub fn p(&self) -> u32 {
        self.p
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for KdfParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m_kib={}, t={}, p={}", self.m_kib, self.t, self.p)
    }
}

/// Why a keystore operation failed.
///
/// Messages name the file and what was expected; they never contain the passphrase, key
/// material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// Authenticated decryption failed: the passphrase is wrong, or the file was altered.
    #[error("wrong passphrase or corrupted keystore")]
    WrongPassphrase,

    /// There is no file at the path.
    #[error("no keystore at {}", path.display())]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },

    /// [`Keystore::create`] found something at the path already.
    #[error("a keystore already exists at {}: refusing to overwrite it", path.display())]
    AlreadyExists {
        /// The path that was to be created.
        path: PathBuf,
    },

    /// The keystore file can be accessed by users other than its owner.
    #[error(
        "keystore {} is accessible by other users (mode {mode:04o}, expected 0600): run `chmod 600 {}`",
        path.display(),
        shell_quote(path)
    )]
    InsecurePermissions {
        /// The keystore file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The file's format version is not one this build reads.
    #[error("unsupported keystore version {found}: expected {expected}")]
    UnsupportedVersion {
        /// The version in the file.
        found: u64,
        /// The version this build reads.
        expected: u32,
    },

    /// The file names an algorithm this build does not implement.
    #[error("unsupported {field} algorithm {found:?}: expected {expected:?}")]
    UnsupportedAlgorithm {
        /// Which algorithm field: `"kdf"` or `"aead"`.
        field: &'static str,
        /// The algorithm named in the file.
        found: String,
        /// The algorithm this build implements.
        expected: &'static str,
    },

    /// An Argon2id parameter is weaker than [`KdfParams::MINIMUM`]. When opening, this means
    /// the file was made by something else or tampered with; it is not decrypted.
    #[error("argon2id parameter {param} is {found}, below the minimum {minimum}")]
    ParamsBelowMinimum {
        /// The parameter: `"m_kib"`, `"t"` or `"p"`.
        param: &'static str,
        /// Its value.
        found: u32,
        /// The smallest value accepted.
        minimum: u32,
    },

    /// An Argon2id parameter exceeds [`KdfParams::MAXIMUM`].
    #[error("argon2id parameter {param} is {found}, above the maximum {maximum}")]
    ParamsAboveMaximum {
        /// The parameter: `"m_kib"`, `"t"` or `"p"`.
        param: &'static str,
        /// Its value.
        found: u32,
        /// The largest value accepted.
        maximum: u32,
    },

    /// The file is not a well-formed keystore.
    #[error("malformed keystore {}: {detail}", path.display())]
    Malformed {
        /// The keystore file.
        path: PathBuf,
        /// What was expected and what was found.
        detail: String,
    },

    /// The plaintext to store is larger than a keystore holds.
    #[error("plaintext of {len} bytes is too large for a keystore: expected at most {max} bytes")]
    PlaintextTooLarge {
        /// The plaintext length.
        len: usize,
        /// The largest plaintext accepted.
        max: usize,
    },

    /// A filesystem operation failed.
    #[error("could not {action} {}", path.display())]
    Io {
        /// What was being done, e.g. `"read keystore"`.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A cryptographic primitive failed for a reason other than authentication, e.g. the OS
    /// random number generator or the key derivation's memory allocation.
    #[error("cryptographic failure while {operation}")]
    Crypto {
        /// What was being done.
        operation: &'static str,
    },
}

/// An open keystore: its path and the key derived from the passphrase.
///
/// The key is zeroized on drop and `Debug` does not print it.
pub struct Keystore {
    path: PathBuf,
    params: KdfParams,
    salt: [u8; SALT_LEN],
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("path", &self.path)
            .field("params", &self.params)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Whether anything exists at `path` (a dangling symbolic link counts), i.e. whether
/// [`Keystore::create`] would refuse it.
///
/// An error while checking, such as a directory that cannot be searched, counts as "exists",
/// so a caller choosing between creating and opening opens, and reports the real error.
pub fn exists(path: impl AsRef<Path>) -> bool {
    match fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

impl Keystore {
    /// Creates a keystore at `path` with [`KdfParams::DEFAULT`], holding `plaintext`
    /// encrypted under `passphrase`.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::AlreadyExists`] if anything exists at `path` (it is left alone),
    /// [`KeystoreError::PlaintextTooLarge`], [`KeystoreError::Io`] or
    /// [`KeystoreError::Crypto`].
    pub fn create(
        path: impl AsRef<Path>,
        passphrase: &str,
        plaintext: &[u8],
    ) -> Result<Self, KeystoreError> {
        Self::create_with_params(path, passphrase, plaintext, KdfParams::DEFAULT)
    }

    /// Like [`Keystore::create`] with explicit Argon2id parameters. [`KdfParams`] cannot hold
    /// values below [`KdfParams::MINIMUM`], so weak parameters are refused by
    /// [`KdfParams::new`].
    ///
    /// # Errors
    ///
    /// As [`Keystore::create`].
    pub fn create_with_params(
        path: impl AsRef<Path>,
        passphrase: &str,
        plaintext: &[u8],
        params: KdfParams,
    ) -> Result<Self, KeystoreError> {
        let path = path.as_ref();
        check_plaintext_len(plaintext)?;
        // Fail fast before the expensive derivation; `write_atomic` checks again atomically.
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeystoreError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let key = derive_key(passphrase, &salt, params)?;
        let keystore = Self {
            path: path.to_path_buf(),
            params,
            salt,
            key,
        };
        let contents = keystore.seal(plaintext)?;
        write_atomic(path, &contents, WriteMode::CreateNew)?;
        Ok(keystore)
    }

    /// Opens the keystore at `path`, returning it and the decrypted plaintext.
    ///
    /// # Errors
    ///
    /// - [`KeystoreError::NotFound`] if there is no file,
    /// - [`KeystoreError::InsecurePermissions`] if group or other users can access it,
    /// - [`KeystoreError::Malformed`], [`KeystoreError::UnsupportedVersion`] or
    ///   [`KeystoreError::UnsupportedAlgorithm`] if it is not a keystore this build reads,
    /// - [`KeystoreError::ParamsBelowMinimum`] or [`KeystoreError::ParamsAboveMaximum`] if its
    ///   Argon2id parameters are out of range (checked before any key is derived),
    /// - [`KeystoreError::WrongPassphrase`] if decryption fails,
    /// - [`KeystoreError::Io`] or [`KeystoreError::Crypto`] otherwise.
    pub fn open(
        path: impl AsRef<Path>,
        passphrase: &str,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), KeystoreError> {
        let path = path.as_ref();
        let bytes = read_private(path)?;
        let parsed = ParsedFile::parse(path, &bytes)?;
        let key = derive_key(passphrase, &parsed.header.salt, parsed.header.params)?;
        let keystore = Self {
            path: path.to_path_buf(),
            params: parsed.header.params,
            salt: parsed.header.salt,
            key,
        };
        let plaintext = keystore.unseal(&parsed.header, parsed.ciphertext)?;
        Ok((keystore, plaintext))
    }

    /// Replaces the stored plaintext, encrypting it under the same key and salt with a fresh
    /// nonce, and writes the file atomically.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::PlaintextTooLarge`], [`KeystoreError::Io`] or
    /// [`KeystoreError::Crypto`].
    pub fn save(&self, plaintext: &[u8]) -> Result<(), KeystoreError> {
        let contents = self.seal(plaintext)?;
        write_atomic(&self.path, &contents, WriteMode::Replace)
    }

    /// The keystore file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The Argon2id parameters of the keystore file.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// Encrypts `plaintext` under a fresh nonce and serializes the keystore file.
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        check_plaintext_len(plaintext)?;
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let header = Header {
            params: self.params,
            salt: self.salt,
            nonce,
        };

        // Reserve room for the tag up front so the buffer never reallocates and leaves an
        // unzeroized copy of the plaintext behind.
        let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        buffer.extend_from_slice(plaintext);
        self.cipher()
            .encrypt_in_place(
                XNonce::from_slice(&nonce),
                &header.associated_data(),
                &mut *buffer,
            )
            .map_err(|_| KeystoreError::Crypto {
                operation: "encrypting the keystore",
            })?;

        let file = KeystoreFile {
            version: u64::from(FORMAT_VERSION),
            kdf: KdfSection {
                alg: KDF_ALG.to_owned(),
                m_kib: header.params.m_kib,
                t: header.params.t,
                p: header.params.p,
                salt: BASE64.encode(header.salt),
            },
            aead: AeadSection {
                alg: AEAD_ALG.to_owned(),
                nonce: BASE64.encode(header.nonce),
            },
            ciphertext: BASE64.encode(&*buffer),
        };
        let mut contents = serde_json::to_vec_pretty(&file).map_err(|e| KeystoreError::Io {
            action: "serialize keystore",
            path: self.path.clone(),
            source: e.into(),
        })?;
        contents.push(b'\n');
        Ok(contents)
    }

    /// Authenticates and decrypts `ciphertext` (with its tag) in place.
    fn unseal(
        &self,
        header: &Header,
        ciphertext: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
        let mut buffer = Zeroizing::new(ciphertext);
        self.cipher()
            .decrypt_in_place(
                XNonce::from_slice(&header.nonce),
                &header.associated_data(),
                &mut *buffer,
            )
            .map_err(|_| KeystoreError::WrongPassphrase)?;
        Ok(buffer)
    }

    /// The AEAD instance; it keeps its own copy of the key and zeroizes it on drop.
    ///
    /// `Key::from_slice` and `XNonce::from_slice` panic only on a length mismatch, which the
    /// fixed-size arrays they are given rule out.
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.key.as_slice()))
    }
}

/// The authenticated header of a keystore file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
}

impl Header {
    /// The canonical encoding of the header, bound as AEAD associated data: a context string,
    /// then the version, algorithm names, parameters, salt and nonce, each variable-length
    /// field prefixed with its length as a big-endian `u32`.
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(128);
        push_field(&mut aad, AAD_CONTEXT);
        aad.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        push_field(&mut aad, KDF_ALG.as_bytes());
        aad.extend_from_slice(&self.params.m_kib.to_be_bytes());
        aad.extend_from_slice(&self.params.t.to_be_bytes());
        aad.extend_from_slice(&self.params.p.to_be_bytes());
        push_field(&mut aad, &self.salt);
        push_field(&mut aad, AEAD_ALG.as_bytes());
        push_field(&mut aad, &self.nonce);
        aad
    }
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    // The fields are constants or fixed-size arrays, far shorter than `u32::MAX`.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

/// The on-disk JSON layout.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeystoreFile {
    version: u64,
    kdf: KdfSection,
    aead: AeadSection,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfSection {
    alg: String,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AeadSection {
    alg: String,
    nonce: String,
}

/// Just the version, read first so a newer file reports its version rather than a shape error.
#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

/// A keystore file whose header has been checked, ready to decrypt.
struct ParsedFile {
    header: Header,
    ciphertext: Vec<u8>,
}

impl ParsedFile {
    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, KeystoreError> {
        let malformed = |detail: String| KeystoreError::Malformed {
            path: path.to_path_buf(),
            detail,
        };

        let probe: VersionProbe = serde_json::from_slice(bytes).map_err(|e| {
            malformed(format!(
                "expected a JSON object with a numeric \"version\": {e}"
            ))
        })?;
        if probe.version != u64::from(FORMAT_VERSION) {
            return Err(KeystoreError::UnsupportedVersion {
                found: probe.version,
                expected: FORMAT_VERSION,
            });
        }

        let file: KeystoreFile = serde_json::from_slice(bytes)
            .map_err(|e| malformed(format!("expected a version 1 keystore: {e}")))?;
        if file.kdf.alg != KDF_ALG {
            return Err(KeystoreError::UnsupportedAlgorithm {
                field: "kdf",
                found: file.kdf.alg,
                expected: KDF_ALG,
            });
        }
        if file.aead.alg != AEAD_ALG {
            return Err(KeystoreError::UnsupportedAlgorithm {
                field: "aead",
                found: file.aead.alg,
                expected: AEAD_ALG,
            });
        }
        // The downgrade check: out-of-range parameters never reach the key derivation.
        let params = KdfParams::new(file.kdf.m_kib, file.kdf.t, file.kdf.p)?;

        let salt = decode_fixed::<SALT_LEN>("kdf.salt", &file.kdf.salt).map_err(malformed)?;
        let nonce = decode_fixed::<NONCE_LEN>("aead.nonce", &file.aead.nonce).map_err(malformed)?;
        let ciphertext = BASE64
            .decode(&file.ciphertext)
            .map_err(|e| malformed(format!("ciphertext: expected base64: {e}")))?;
        if ciphertext.len() < TAG_LEN {
            return Err(malformed(format!(
                "ciphertext: expected at least {TAG_LEN} bytes, found {}",
                ciphertext.len()
            )));
        }

        Ok(Self {
            header: Header {
                params,
                salt,
                nonce,
            },
            ciphertext,
        })
    }
}

/// Decodes standard padded base64 of exactly `N` bytes; the error says what was wrong.
fn decode_fixed<const N: usize>(field: &str, encoded: &str) -> Result<[u8; N], String> {
    let bytes = BASE64
        .decode(encoded)
        .map_err(|e| format!("{field}: expected base64: {e}"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{field}: expected {N} bytes, found {}", bytes.len()))
}

fn check_plaintext_len(plaintext: &[u8]) -> Result<(), KeystoreError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(KeystoreError::PlaintextTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        });
    }
    Ok(())
}

fn fill_random(out: &mut [u8]) -> Result<(), KeystoreError> {
    OsRng
        .try_fill_bytes(out)
        .map_err(|_| KeystoreError::Crypto {
            operation: "reading the OS random number generator",
        })
}

/// Argon2 working memory, zeroized on drop (argon2 only does so itself with its optional
/// `zeroize` feature).
struct ArgonMemory(Vec<Block>);

impl Drop for ArgonMemory {
    fn drop(&mut self) {
        for block in &mut self.0 {
            AsMut::<[u64]>::as_mut(block).zeroize();
        }
    }
}

/// Derives the AEAD key from the passphrase with Argon2id (version 0x13).
fn derive_key(
    passphrase: &str,
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, KeystoreError> {
    const OPERATION: &str = "deriving the key from the passphrase";
    let failed = |_| KeystoreError::Crypto {
        operation: OPERATION,
    };

    let argon_params =
        Params::new(params.m_kib, params.t, params.p, Some(KEY_LEN)).map_err(failed)?;
    let block_count = argon_params.block_count();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);

    let mut memory = ArgonMemory(Vec::new());
    memory
        .0
        .try_reserve_exact(block_count)
        .map_err(|_| KeystoreError::Crypto {
            operation: OPERATION,
        })?;
    memory.0.resize(block_count, Block::default());

    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into_with_memory(
            passphrase.as_bytes(),
            salt,
            key.as_mut_slice(),
            memory.0.as_mut_slice(),
        )
        .map_err(failed)?;
    Ok(key)
}

/// Reads a keystore file after checking that it is a regular file only its owner can access.
fn read_private(path: &Path) -> Result<Vec<u8>, KeystoreError> {
    let io_error = |action, source| KeystoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };

    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => KeystoreError::NotFound {
            path: path.to_path_buf(),
        },
        _ => io_error("open keystore", e),
    })?;
    // Check the handle we read from, not the path, so the file cannot be swapped in between.
    let metadata = file
        .metadata()
        .map_err(|e| io_error("inspect keystore", e))?;
    if !metadata.is_file() {
        return Err(KeystoreError::Malformed {
            path: path.to_path_buf(),
            detail: "expected a regular file".to_owned(),
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(KeystoreError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }

    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("read keystore", e))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(KeystoreError::Malformed {
            path: path.to_path_buf(),
            detail: format!("expected at most {MAX_FILE_LEN} bytes"),
        });
    }
    Ok(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    /// Fail with [`KeystoreError::AlreadyExists`] if the target exists.
    CreateNew,
    /// Atomically replace the target.
    Replace,
}

/// Removes the temporary file on every path that does not consume it.
struct TempFile {
    path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: after a successful rename the file is gone and this fails harmlessly.
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes `contents` to `path` through a `0600` temporary file in the same directory, then
/// fsyncs the file, moves it into place and fsyncs the directory.
fn write_atomic(path: &Path, contents: &[u8], mode: WriteMode) -> Result<(), KeystoreError> {
    let io_error = |action, path: &Path, source| KeystoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };

    let Some(file_name) = path.file_name() else {
        return Err(io_error(
            "write keystore",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        ));
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };

    let mut suffix = [0u8; 8];
    fill_random(&mut suffix)?;
    let mut temp_name = OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{:016x}.tmp", u64::from_be_bytes(suffix)));
    let temp = TempFile {
        path: dir.join(temp_name),
    };

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .open(&temp.path)
        .map_err(|e| io_error("create temporary file", &temp.path, e))?;
    // The umask may have cleared bits of the requested mode; set it exactly.
    file.set_permissions(Permissions::from_mode(PRIVATE_MODE))
        .map_err(|e| io_error("set permissions of", &temp.path, e))?;
    file.write_all(contents)
        .map_err(|e| io_error("write", &temp.path, e))?;
    file.sync_all()
        .map_err(|e| io_error("sync", &temp.path, e))?;
    drop(file);

    match mode {
        WriteMode::Replace => {
            fs::rename(&temp.path, path).map_err(|e| io_error("replace keystore", path, e))?
        }
        WriteMode::CreateNew => match fs::hard_link(&temp.path, path) {
            // The link is the atomic "create unless it exists"; `temp` is removed on drop.
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(KeystoreError::AlreadyExists {
                    path: path.to_path_buf(),
                });
            }
            // Filesystems without hard links: check, then rename. This leaves a window in
            // which a concurrently created file could be replaced.
            Err(_) => {
                if fs::symlink_metadata(path).is_ok() {
                    return Err(KeystoreError::AlreadyExists {
                        path: path.to_path_buf(),
                    });
                }
                fs::rename(&temp.path, path).map_err(|e| io_error("create keystore", path, e))?;
            }
        },
    }
    drop(temp);

    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync directory", dir, e))
}

/// Quotes `path` for a POSIX shell if it contains anything beyond a safe set of characters.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,%=~".contains(c));
    if safe {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tempfile::TempDir;

    use super::*;

    const PASSPHRASE: &str = "correct horse battery staple";
    const SECRETS: &[u8] = b"{\"keys\":[\"not really a key\"]}";

    fn keystore_path() -> (TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.keystore");
        (dir, path)
    }

    /// Creates a keystore with the weakest accepted parameters, which keep tests fast.
    fn create_minimum(path: &Path, plaintext: &[u8]) -> Keystore {
        Keystore::create_with_params(path, PASSPHRASE, plaintext, KdfParams::MINIMUM).unwrap()
    }

    fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    /// Rewrites the keystore JSON in place; the file keeps its mode.
    fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
        let mut json = read_json(path);
        edit(&mut json);
        fs::write(path, serde_json::to_vec(&json).unwrap()).unwrap();
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    fn file_mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn entries(dir: &TempDir) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn round_trip() {
        let (dir, path) = keystore_path();
        assert!(!exists(&path));
        let created = create_minimum(&path, SECRETS);
        assert!(exists(&path));
        assert_eq!(created.params(), KdfParams::MINIMUM);

        let (opened, plaintext) = Keystore::open(&path, PASSPHRASE).unwrap();
        assert_eq!(plaintext.as_slice(), SECRETS);
        assert_eq!(opened.path(), path);
        assert_eq!(opened.params(), KdfParams::MINIMUM);

        opened.save(b"updated").unwrap();
        let (_, plaintext) = Keystore::open(&path, PASSPHRASE).unwrap();
        assert_eq!(plaintext.as_slice(), b"updated");

        // Only the keystore is left: no temporary files.
        assert_eq!(entries(&dir), ["wallet.keystore"]);
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, b"");
        let (_, plaintext) = Keystore::open(&path, PASSPHRASE).unwrap();
        assert!(plaintext.is_empty());
    }

    #[test]
    fn file_has_the_documented_format() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        let json = read_json(&path);
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["version", "kdf", "aead", "ciphertext"]);
        assert_eq!(json["version"], 1);
        assert_eq!(json["kdf"]["alg"], "argon2id");
        assert_eq!(json["kdf"]["m_kib"], 19456);
        assert_eq!(json["kdf"]["t"], 2);
        assert_eq!(json["kdf"]["p"], 1);
        assert_eq!(json["aead"]["alg"], "xchacha20poly1305");
        let salt = BASE64
            .decode(json["kdf"]["salt"].as_str().unwrap())
            .unwrap();
        let nonce = BASE64
            .decode(json["aead"]["nonce"].as_str().unwrap())
            .unwrap();
        let ciphertext = BASE64.decode(json["ciphertext"].as_str().unwrap()).unwrap();
        assert_eq!(salt.len(), 16);
        assert_eq!(nonce.len(), 24);
        assert_eq!(ciphertext.len(), SECRETS.len() + 16);
    }

    #[test]
    fn wrong_passphrase_fails() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        let err = Keystore::open(&path, "correct horse battery stapler").unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase), "{err:?}");
        assert_eq!(err.to_string(), "wrong passphrase or corrupted keystore");
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        edit_json(&path, |json| {
            let mut ciphertext = BASE64.decode(json["ciphertext"].as_str().unwrap()).unwrap();
            ciphertext[0] ^= 1;
            json["ciphertext"] = BASE64.encode(ciphertext).into();
        });
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase), "{err:?}");
    }

    #[test]
    fn truncated_ciphertext_fails() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        edit_json(&path, |json| {
            let ciphertext = BASE64.decode(json["ciphertext"].as_str().unwrap()).unwrap();
            json["ciphertext"] = BASE64.encode(&ciphertext[..ciphertext.len() - 1]).into();
        });
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase), "{err:?}");
    }

    #[test]
    fn tampered_nonce_fails() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        edit_json(&path, |json| {
            json["aead"]["nonce"] = BASE64.encode([7u8; NONCE_LEN]).into();
        });
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase), "{err:?}");
    }

    #[test]
    fn tampered_salt_fails() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        edit_json(&path, |json| {
            json["kdf"]["salt"] = BASE64.encode([7u8; SALT_LEN]).into();
        });
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase), "{err:?}");
    }

    #[test]
    fn raised_params_fail() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        edit_json(&path, |json| json["kdf"]["t"] = 3.into());
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase), "{err:?}");
    }

    /// Header fields are bound as associated data, so changing one fails authentication even
    /// for someone who holds the right key and nonce.
    #[test]
    fn header_is_bound_even_under_the_right_key() {
        let (_dir, path) = keystore_path();
        let keystore = create_minimum(&path, SECRETS);
        let parsed = ParsedFile::parse(&path, &fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            keystore
                .unseal(&parsed.header, parsed.ciphertext.clone())
                .unwrap()
                .as_slice(),
            SECRETS
        );

        let altered = [
            Header {
                params: KdfParams::new(19 * 1024, 3, 1).unwrap(),
                ..parsed.header.clone()
            },
            Header {
                params: KdfParams::new(20 * 1024, 2, 1).unwrap(),
                ..parsed.header.clone()
            },
            Header {
                params: KdfParams::new(19 * 1024, 2, 2).unwrap(),
                ..parsed.header.clone()
            },
            Header {
                salt: [0; SALT_LEN],
                ..parsed.header
            },
        ];
        for header in altered {
            let err = keystore
                .unseal(&header, parsed.ciphertext.clone())
                .unwrap_err();
            assert!(matches!(err, KeystoreError::WrongPassphrase), "{err:?}");
        }
    }

    #[test]
    fn unsupported_version_and_algorithms_fail() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        let original = fs::read(&path).unwrap();

        edit_json(&path, |json| json["version"] = 2.into());
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(
            matches!(
                err,
                KeystoreError::UnsupportedVersion {
                    found: 2,
                    expected: 1
                }
            ),
            "{err:?}"
        );

        fs::write(&path, &original).unwrap();
        edit_json(&path, |json| json["kdf"]["alg"] = "argon2i".into());
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(
            matches!(
                err,
                KeystoreError::UnsupportedAlgorithm { field: "kdf", .. }
            ),
            "{err:?}"
        );

        fs::write(&path, &original).unwrap();
        edit_json(&path, |json| json["aead"]["alg"] = "aes256gcm".into());
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(
            matches!(
                err,
                KeystoreError::UnsupportedAlgorithm { field: "aead", .. }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "unsupported aead algorithm \"aes256gcm\": expected \"xchacha20poly1305\""
        );
    }

    #[test]
    fn malformed_files_fail() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        let original = fs::read(&path).unwrap();

        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 5] = [
            ("kdf.salt: expected 16 bytes, found 12", |json| {
                json["kdf"]["salt"] = BASE64.encode([0u8; 12]).into()
            }),
            ("aead.nonce: expected base64", |json| {
                json["aead"]["nonce"] = "not base64!".into()
            }),
            ("unknown field `extra`", |json| {
                json["kdf"]["extra"] = 1.into()
            }),
            ("missing field `ciphertext`", |json| {
                json.as_object_mut().unwrap().remove("ciphertext");
            }),
            ("ciphertext: expected at least 16 bytes, found 3", |json| {
                json["ciphertext"] = BASE64.encode([1u8, 2, 3]).into()
            }),
        ];
        for (expected, edit) in cases {
            fs::write(&path, &original).unwrap();
            edit_json(&path, edit);
            let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
            assert!(matches!(err, KeystoreError::Malformed { .. }), "{err:?}");
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }

        fs::write(&path, b"not json").unwrap();
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, KeystoreError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn each_save_uses_a_new_nonce() {
        let (_dir, path) = keystore_path();
        let keystore = create_minimum(&path, SECRETS);
        let first = read_json(&path);
        keystore.save(SECRETS).unwrap();
        let second = read_json(&path);
        keystore.save(SECRETS).unwrap();
        let third = read_json(&path);

        let nonces = [&first, &second, &third].map(|json| json["aead"]["nonce"].clone());
        assert_ne!(nonces[0], nonces[1]);
        assert_ne!(nonces[1], nonces[2]);
        assert_ne!(nonces[0], nonces[2]);
        assert_ne!(first["ciphertext"], second["ciphertext"]);
        // Same key: the salt and parameters are unchanged.
        assert_eq!(first["kdf"], third["kdf"]);

        let (_, plaintext) = Keystore::open(&path, PASSPHRASE).unwrap();
        assert_eq!(plaintext.as_slice(), SECRETS);
    }

    #[test]
    fn files_are_written_with_mode_0600() {
        let (_dir, path) = keystore_path();
        let keystore = create_minimum(&path, SECRETS);
        assert_eq!(file_mode(&path), 0o600);
        keystore.save(b"again").unwrap();
        assert_eq!(file_mode(&path), 0o600);
    }

    #[test]
    fn save_restores_mode_0600() {
        let (_dir, path) = keystore_path();
        let keystore = create_minimum(&path, SECRETS);
        set_mode(&path, 0o644);
        keystore.save(SECRETS).unwrap();
        assert_eq!(file_mode(&path), 0o600);
    }

    #[test]
    fn insecure_mode_is_refused() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
            set_mode(&path, mode);
            let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
            assert!(
                matches!(err, KeystoreError::InsecurePermissions { mode: m, .. } if m == mode),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains(&format!("run `chmod 600 {}`", path.display())),
                "{message}"
            );
        }
        set_mode(&path, 0o400);
        Keystore::open(&path, PASSPHRASE).unwrap();
    }

    #[test]
    fn chmod_hint_quotes_unusual_paths() {
        assert_eq!(
            shell_quote(Path::new("/home/a/.civitas/wallet.keystore")),
            "/home/a/.civitas/wallet.keystore"
        );
        assert_eq!(shell_quote(Path::new("/tmp/my wallet")), "'/tmp/my wallet'");
        assert_eq!(shell_quote(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }

    #[test]
    fn create_refuses_to_overwrite() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        let before = fs::read(&path).unwrap();

        let err =
            Keystore::create_with_params(&path, "other", b"other", KdfParams::MINIMUM).unwrap_err();
        assert!(
            matches!(err, KeystoreError::AlreadyExists { .. }),
            "{err:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        let (_, plaintext) = Keystore::open(&path, PASSPHRASE).unwrap();
        assert_eq!(plaintext.as_slice(), SECRETS);
    }

    #[test]
    fn create_refuses_to_overwrite_after_the_key_derivation() {
        // The target appears after the early check: the final no-clobber link must catch it.
        let (dir, path) = keystore_path();
        let keystore = create_minimum(&path, SECRETS);
        let other = dir.path().join("other.keystore");
        fs::write(&other, b"precious").unwrap();
        let contents = keystore.seal(b"new").unwrap();
        let err = write_atomic(&other, &contents, WriteMode::CreateNew).unwrap_err();
        assert!(
            matches!(err, KeystoreError::AlreadyExists { .. }),
            "{err:?}"
        );
        assert_eq!(fs::read(&other).unwrap(), b"precious");
        assert_eq!(entries(&dir), ["other.keystore", "wallet.keystore"]);
    }

    #[test]
    fn below_minimum_params_are_refused_at_create() {
        let below = [
            (19 * 1024 - 1, 2, 1, "m_kib"),
            (64 * 1024, 1, 1, "t"),
            (64 * 1024, 3, 0, "p"),
        ];
        for (m_kib, t, p, name) in below {
            let err = KdfParams::new(m_kib, t, p).unwrap_err();
            assert!(
                matches!(err, KeystoreError::ParamsBelowMinimum { param, .. } if param == name),
                "{err:?}"
            );
        }
        let err = KdfParams::new(8 * 1024, 2, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "argon2id parameter m_kib is 8192, below the minimum 19456"
        );
        assert!(KdfParams::new(5 * 1024 * 1024, 3, 1).is_err());
        assert_eq!(KdfParams::new(19 * 1024, 2, 1).unwrap(), KdfParams::MINIMUM);
        assert_eq!(KdfParams::default(), KdfParams::new(65536, 3, 1).unwrap());
    }

    #[test]
    fn lowered_params_in_file_are_refused() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        for (field, value) in [("m_kib", 8192), ("t", 1), ("p", 0)] {
            let original = fs::read(&path).unwrap();
            edit_json(&path, |json| json["kdf"][field] = value.into());
            let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
            assert!(
                matches!(err, KeystoreError::ParamsBelowMinimum { param, .. } if param == field),
                "{err:?}"
            );
            fs::write(&path, original).unwrap();
        }
    }

    /// A file that really was encrypted under weak parameters, with the right passphrase, is
    /// refused rather than decrypted.
    #[test]
    fn valid_file_with_weak_params_is_not_decrypted() {
        let (_dir, path) = keystore_path();
        // Bypasses `KdfParams::new`, as a file produced by other software could.
        let weak = KdfParams {
            m_kib: 8 * 1024,
            t: 1,
            p: 1,
        };
        let salt = [3u8; SALT_LEN];
        let keystore = Keystore {
            path: path.clone(),
            params: weak,
            salt,
            key: derive_key(PASSPHRASE, &salt, weak).unwrap(),
        };
        let contents = keystore.seal(SECRETS).unwrap();
        write_atomic(&path, &contents, WriteMode::CreateNew).unwrap();

        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(
            matches!(
                err,
                KeystoreError::ParamsBelowMinimum {
                    param: "m_kib",
                    found: 8192,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn excessive_params_in_file_are_refused() {
        let (_dir, path) = keystore_path();
        create_minimum(&path, SECRETS);
        edit_json(&path, |json| json["kdf"]["m_kib"] = u32::MAX.into());
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(
            matches!(
                err,
                KeystoreError::ParamsAboveMaximum { param: "m_kib", .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn missing_file_is_not_found() {
        let (_dir, path) = keystore_path();
        let err = Keystore::open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, KeystoreError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn directory_is_not_a_keystore() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), Permissions::from_mode(0o700)).unwrap();
        let err = Keystore::open(dir.path(), PASSPHRASE).unwrap_err();
        assert!(matches!(err, KeystoreError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let (_dir, path) = keystore_path();
        let big = vec![0u8; MAX_PLAINTEXT_LEN + 1];
        let err = Keystore::create(&path, PASSPHRASE, &big).unwrap_err();
        assert!(
            matches!(err, KeystoreError::PlaintextTooLarge { .. }),
            "{err:?}"
        );
        assert!(!exists(&path));
    }

    #[test]
    fn io_errors_name_the_path_and_action() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("wallet.keystore");
        let err = Keystore::create_with_params(&path, PASSPHRASE, SECRETS, KdfParams::MINIMUM)
            .unwrap_err();
        assert!(matches!(err, KeystoreError::Io { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("could not create temporary file "),
            "{message}"
        );
        assert!(message.contains("missing-dir"), "{message}");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let (_dir, path) = keystore_path();
        let keystore = create_minimum(&path, SECRETS);
        let debug = format!("{keystore:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(
            !debug.contains(&format!("{:?}", &keystore.key[..4])),
            "{debug}"
        );

        let err = Keystore::open(&path, "hunter2").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }
}
