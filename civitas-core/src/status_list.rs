//! IETF Token Status List (draft-ietf-oauth-status-list): the compressed status array, the
//! JSON the draft defines around it, and the pure check a verifier runs on a Status List
//! Token whose signature it has already verified.
//!
//! A list holds `len` statuses of `bits` ∈ {1, 2, 4, 8} bits each. Status `i` lives in byte
//! `i * bits / 8` at bit offset `(i * bits) % 8`, least significant bit first (draft § 4).
//! On the wire the byte array is zlib (RFC 1950) DEFLATE, highest compression, then
//! base64url without padding: the `lst` member of `{"bits": 2, "lst": "…"}`.
//!
//! ```text
//!  issuer:   StatusList::new(2, n) ─ set(idx, Status::Invalid) ─ to_claim() ─▶ Status List Token
//!  verifier: token payload (signature verified) ─ check_token(typ, payload, uri, idx, now, max_age)
//!            ─▶ Status::{Valid, Invalid, Suspended}  (or StatusListError → invalid-status-list)
//! ```
//!
//! ```
//! use civitas_core::status_list::{Status, StatusList};
//! let mut list = StatusList::new(2, 1 << 17).unwrap();
//! list.set(4242, Status::Suspended.into()).unwrap();
//! let decoded = StatusList::decode(2, &list.encode(), 1 << 17).unwrap();
//! assert_eq!(Status::try_from(decoded.get(4242).unwrap()).unwrap(), Status::Suspended);
//! ```
//!
//! Unknown JSON members are accepted and ignored everywhere: the draft lets a Status List
//! Token carry other claims ("The JWT MAY contain other claims"), lets the `status_list`
//! object and the Referenced Token's `status_list` reference carry more than the members it
//! names ("MUST at least contain"), and lets other specifications add status mechanisms
//! beside `status_list` in the `status` claim. Members the draft does define are typed
//! strictly: times and indices are JSON integers, an optional member is either absent or
//! of its type (never `null`), and a duplicated member is refused.

use std::fmt;
use std::io::Write as _;

use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress};
use serde::{Deserialize, Deserializer, Serialize};

use crate::encoding::{EncodingError, b64url, b64url_decode};
use crate::problem::{self, ProblemType};

/// The JOSE header `typ` of a Status List Token in JWT form.
pub const STATUS_LIST_TYP: &str = "statuslist+jwt";

/// The media type a Status List Token in JWT form is served with.
pub const STATUS_LIST_MEDIA_TYPE: &str = "application/statuslist+jwt";

/// How far in the future (seconds) a Status List Token's `iat` may lie, for clock skew
/// between its issuer and the verifier.
pub const MAX_CLOCK_SKEW: i64 = 60;

/// The most entries [`check_token`] decompresses: 2^22 (1 MiB of 2-bit statuses, 4 MiB at
/// 8 bits). A larger list is refused as a possible decompression bomb.
pub const MAX_LIST_LEN: usize = 1 << 22;

/// The first output buffer when inflating; it doubles up to the caller's limit.
const INFLATE_CHUNK: usize = 16 * 1024;

/// Why a status list or a Status List Token is refused, or an index or value does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusListError {
    /// `bits` is not 1, 2, 4 or 8.
    #[error("expected bits 1, 2, 4 or 8, found {0}")]
    Bits(u8),
    /// An index at or past the end of the list.
    #[error("expected an index below {len}, found {idx}")]
    IndexOutOfRange {
        /// The index asked for.
        idx: u64,
        /// The number of entries in the list.
        len: usize,
    },
    /// A status value that does not fit in `bits` bits.
    #[error("expected a status value below {limit} for {bits}-bit statuses, found {value}", limit = 1u16 << bits)]
    ValueTooLarge {
        /// The value given.
        value: u8,
        /// The list's bits per status.
        bits: u8,
    },
    /// A list too large to hold in memory.
    #[error("expected a status list of at most {max_len} entries, found more")]
    TooLarge {
        /// The most entries allowed.
        max_len: usize,
    },
    /// `lst` is not canonical base64url without padding.
    #[error("expected lst in base64url without padding: {0}")]
    Base64(EncodingError),
    /// `lst` does not hold exactly one valid zlib stream.
    #[error("expected lst to hold one zlib stream, found {0}")]
    Zlib(String),
    /// The JOSE header `typ` is not `statuslist+jwt`.
    #[error("expected typ {STATUS_LIST_TYP:?}, found {0:?}")]
    Typ(Option<String>),
    /// The token's `sub` is not the status list URI the credential names.
    #[error("expected a status list token for {expected:?}, found sub {found:?}")]
    Subject {
        /// The `uri` of the credential's `status_list` reference.
        expected: String,
        /// The token's `sub`.
        found: String,
    },
    /// `ttl` is present and not positive.
    #[error("expected a positive ttl, found 0")]
    Ttl,
    /// The token's `exp` has passed.
    #[error("expected a status list token unexpired at {now}, found exp {exp}")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's time.
        now: i64,
    },
    /// The token was issued longer ago than the verifier accepts.
    #[error("expected a status list token issued at or after {oldest}, found iat {iat}", oldest = i128::from(*now) - i128::from(*max_age))]
    TooOld {
        /// The token's `iat`.
        iat: i64,
        /// The greatest age accepted, in seconds.
        max_age: u64,
        /// The verifier's time.
        now: i64,
    },
    /// The token's `iat` lies further in the future than the allowed clock skew.
    #[error("expected a status list token issued by {latest}, found iat {iat}", latest = i128::from(*now) + i128::from(MAX_CLOCK_SKEW))]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The verifier's time.
        now: i64,
    },
    /// A status value other than valid (0), invalid (1) or suspended (2): the draft's
    /// application-specific and reserved values have no meaning in Civitas, so no
    /// statement about the credential can be made and it is refused.
    #[error("expected status 0 (valid), 1 (invalid) or 2 (suspended), found {0}")]
    UnknownStatus(u8),
}

impl StatusListError {
    /// The problem type a verifier answers with: always `invalid-status-list`, because no
    /// statement about the credential's status can be made.
    pub fn problem(&self) -> ProblemType {
        match self {
            Self::Bits(_)
            | Self::IndexOutOfRange { .. }
            | Self::ValueTooLarge { .. }
            | Self::TooLarge { .. }
            | Self::Base64(_)
            | Self::Zlib(_)
            | Self::Typ(_)
            | Self::Subject { .. }
            | Self::Ttl
            | Self::Expired { .. }
            | Self::TooOld { .. }
            | Self::IssuedInFuture { .. }
            | Self::UnknownStatus(_) => problem::INVALID_STATUS_LIST,
        }
    }
}

/// The status of a credential, as the draft's Status Types registry defines it (§ 7.1).
/// Values 3 and up (application-specific or reserved) are refused by [`Status::try_from`]
/// with [`StatusListError::UnknownStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `0x00` VALID.
    Valid,
    /// `0x01` INVALID: revoked, for good.
    Invalid,
    /// `0x02` SUSPENDED: invalid for now, reversible.
    Suspended,
}

impl Status {
    /// The problem type a verifier refuses a credential of this status with, or `None` for
    /// [`Status::Valid`].
    pub fn problem(self) -> Option<ProblemType> {
        match self {
            Self::Valid => None,
            Self::Invalid => Some(problem::CREDENTIAL_REVOKED),
            Self::Suspended => Some(problem::CREDENTIAL_SUSPENDED),
        }
    }
}

impl From<Status> for u8 {
    fn from(status: Status) -> Self {
        match status {
            Status::Valid => 0,
            Status::Invalid => 1,
            Status::Suspended => 2,
        }
    }
}

impl TryFrom<u8> for Status {
    type Error = StatusListError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Self::Valid),
            1 => Ok(Self::Invalid),
            2 => Ok(Self::Suspended),
            other => Err(StatusListError::UnknownStatus(other)),
        }
    }
}

/// A status list: `len` statuses of `bits` bits each, packed as the draft lays them out.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    len: usize,
    bytes: Vec<u8>,
}

impl fmt::Debug for StatusList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes can be megabytes long; the shape is what a reader needs.
        f.debug_struct("StatusList")
            .field("bits", &self.bits)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

fn check_bits(bits: u8) -> Result<u8, StatusListError> {
    match bits {
        1 | 2 | 4 | 8 => Ok(bits),
        other => Err(StatusListError::Bits(other)),
    }
}

/// The number of bytes that hold `len` statuses of `bits` bits, if it fits in `usize`.
fn byte_len(bits: u8, len: usize) -> Option<usize> {
    len.checked_mul(usize::from(bits)).map(|b| b.div_ceil(8))
}

impl StatusList {
    /// A list of `len` statuses of `bits` bits, all 0 (valid).
    pub fn new(bits: u8, len: usize) -> Result<Self, StatusListError> {
        let bits = check_bits(bits)?;
        let bytes = byte_len(bits, len).ok_or(StatusListError::TooLarge {
            max_len: usize::MAX / usize::from(bits),
        })?;
        Ok(Self {
            bits,
            len,
            bytes: vec![0; bytes],
        })
    }

    /// The list a byte array holds: as many entries as fit, `bytes.len() * 8 / bits`.
    pub fn from_bytes(bits: u8, bytes: Vec<u8>) -> Result<Self, StatusListError> {
        let bits = check_bits(bits)?;
        let len = bytes
            .len()
            .checked_mul(8)
            .ok_or(StatusListError::TooLarge {
                max_len: usize::MAX / usize::from(bits),
            })?
            / usize::from(bits);
        Ok(Self { bits, len, bytes })
    }

    /// Bits per status: 1, 2, 4 or 8.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// The number of statuses.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The packed byte array (padding bits past `len` are 0 in lists made by [`Self::new`]).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The byte index, bit shift and mask of entry `idx`, or an error when it is out of range.
    fn locate(&self, idx: usize) -> Result<(usize, u32, u8), StatusListError> {
        if idx >= self.len {
            return Err(StatusListError::IndexOutOfRange {
                idx: idx as u64,
                len: self.len,
            });
        }
        // idx < len and len * bits fitted in usize when the list was made, so no overflow.
        let bit = idx * usize::from(self.bits);
        let mask = ((1u16 << self.bits) - 1) as u8;
        Ok((bit / 8, (bit % 8) as u32, mask))
    }

    /// The status value of entry `idx`.
    pub fn get(&self, idx: usize) -> Result<u8, StatusListError> {
        let (byte, shift, mask) = self.locate(idx)?;
        Ok((self.bytes[byte] >> shift) & mask)
    }

    /// Sets entry `idx` to `value`, which must fit in `bits` bits.
    pub fn set(&mut self, idx: usize, value: u8) -> Result<(), StatusListError> {
        let (byte, shift, mask) = self.locate(idx)?;
        if value > mask {
            return Err(StatusListError::ValueTooLarge {
                value,
                bits: self.bits,
            });
        }
        let cell = &mut self.bytes[byte];
        *cell = (*cell & !(mask << shift)) | (value << shift);
        Ok(())
    }

    /// `lst`: base64url without padding of the zlib stream of the bytes, at the highest
    /// compression level.
    pub fn encode(&self) -> String {
        let mut encoder = ZlibEncoder::new(
            Vec::with_capacity(self.bytes.len() / 64 + 64),
            Compression::best(),
        );
        // Invariant: the sink is a Vec, whose writes never fail, and deflating in-memory
        // bytes has no failure mode of its own.
        encoder
            .write_all(&self.bytes)
            .expect("deflating into a Vec cannot fail");
        let compressed = encoder.finish().expect("deflating into a Vec cannot fail");
        b64url(&compressed)
    }

    /// Decodes `lst` into a list of `bits`-bit statuses, decompressing at most `max_len`
    /// entries (rounded up to a whole byte): a longer list is refused as soon as the
    /// limit is passed, without inflating the rest. `lst` must be canonical base64url
    /// without padding and hold exactly one complete zlib stream with a correct checksum
    /// and nothing after it. The list has `bytes * 8 / bits` entries.
    pub fn decode(bits: u8, lst: &str, max_len: usize) -> Result<Self, StatusListError> {
        let bits = check_bits(bits)?;
        let compressed = b64url_decode(lst).map_err(StatusListError::Base64)?;
        let limit = byte_len(bits, max_len).unwrap_or(usize::MAX);
        let bytes = inflate(&compressed, limit).map_err(|e| match e {
            InflateError::TooLarge => StatusListError::TooLarge { max_len },
            InflateError::Stream(detail) => StatusListError::Zlib(detail),
        })?;
        let len = bytes.len() * 8 / usize::from(bits);
        Ok(Self { bits, len, bytes })
    }

    /// The JSON Status List object of this list, without `aggregation_uri`.
    pub fn to_claim(&self) -> StatusListClaim {
        StatusListClaim {
            bits: self.bits,
            lst: self.encode(),
            aggregation_uri: None,
        }
    }
}

enum InflateError {
    TooLarge,
    Stream(String),
}

/// Inflates one zlib stream that must make up all of `input`, refusing to produce more than
/// `limit` bytes.
fn inflate(input: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut inflater = Decompress::new(true);
    let mut out: Vec<u8> = Vec::with_capacity(limit.min(INFLATE_CHUNK).saturating_add(1));
    loop {
        if out.len() >= out.capacity() {
            if out.len() > limit {
                return Err(InflateError::TooLarge);
            }
            // Grow by doubling, but never past limit + 1: one byte over proves a bomb.
            let room = limit.saturating_add(1) - out.len();
            out.reserve_exact(out.len().max(INFLATE_CHUNK).min(room));
        }
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let consumed = usize::try_from(in_before).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let status = inflater
            .decompress_vec(rest, &mut out, FlushDecompress::None)
            .map_err(|e| InflateError::Stream(format!("an invalid stream ({e})")))?;
        if out.len() > limit {
            return Err(InflateError::TooLarge);
        }
        match status {
            flate2::Status::StreamEnd => break,
            flate2::Status::Ok | flate2::Status::BufError => {
                let stuck = inflater.total_in() == in_before && inflater.total_out() == out_before;
                if stuck && out.len() < out.capacity() {
                    return Err(InflateError::Stream("a truncated stream".to_owned()));
                }
            }
        }
    }
    let used = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
    if used != input.len() {
        return Err(InflateError::Stream(format!(
            "{} bytes after the end of the stream",
            input.len().saturating_sub(used)
        )));
    }
    Ok(out)
}

/// Deserializes a member that, when present, must have its type: `null` is refused.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The JSON Status List (draft § 4.2): `{"bits": 2, "lst": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListClaim {
    /// Bits per status: 1, 2, 4 or 8 (checked when `lst` is decoded).
    pub bits: u8,
    /// base64url of the zlib-compressed byte array.
    pub lst: String,
    /// A URI listing all the issuer's Status List Tokens (draft § 9); not used by Civitas.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub aggregation_uri: Option<String>,
}

/// The claims set of a Status List Token in JWT form (draft § 5.1), `typ: statuslist+jwt`.
/// Other claims are allowed and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListTokenPayload {
    /// The issuer (in Civitas, the issuer's DID); not required by the draft.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub iss: Option<String>,
    /// The URI of this status list: equal to the `uri` in the credentials it covers.
    pub sub: String,
    /// When the token was issued (Unix seconds).
    pub iat: i64,
    /// When the token expires (Unix seconds).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub exp: Option<i64>,
    /// How long (seconds) a consumer may cache the token before fetching it again.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl: Option<u64>,
    /// The status list.
    pub status_list: StatusListClaim,
}

/// The `status` claim of a Referenced Token (a credential), draft § 6.1. Civitas knows one
/// status mechanism, `status_list`, so it is required here; other members are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClaim {
    /// Where the credential's status is.
    pub status_list: StatusListReference,
}

/// A credential's place in a status list: `{"idx": N, "uri": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListReference {
    /// The index of the credential's status in the list.
    pub idx: u64,
    /// The URI of the Status List Token (its `sub`).
    pub uri: String,
}

/// Whether a JOSE `typ` names `application/statuslist+jwt`: RFC 7515 § 4.1.9 lets the
/// `application/` prefix be omitted, and media types compare case-insensitively.
fn is_status_list_typ(typ: &str) -> bool {
    const PREFIX: &str = "application/";
    let bare = match (typ.get(..PREFIX.len()), typ.get(PREFIX.len()..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case(PREFIX) => rest,
        _ => typ,
    };
    bare.eq_ignore_ascii_case(STATUS_LIST_TYP)
}

/// Checks a Status List Token whose signature the caller has already verified (with the key
/// of the credential's issuer) and returns the status of entry `idx`.
///
/// `header_typ` is the JOSE header's `typ`; `expected_uri` and `idx` come from the
/// credential's `status.status_list`; `now` is the verifier's clock (Unix seconds);
/// `max_age` is the greatest age (seconds) of a token the verifier accepts.
///
/// Refused, cheapest check first: a `typ` other than `statuslist+jwt`; `sub` other than
/// `expected_uri`; `ttl` of 0; `iat` more than [`MAX_CLOCK_SKEW`] after `now`; `exp` at or
/// before `now` (RFC 7519 § 4.1.4: the token is valid only before `exp`); `iat + max_age <
/// now`; `bits` other than 1, 2, 4, 8; a bad `lst` or one of more than [`MAX_LIST_LEN`]
/// entries; `idx` out of range; a status value other than 0, 1, 2. The returned status may
/// be [`Status::Invalid`] or [`Status::Suspended`]: refusing the credential then is the
/// caller's decision ([`Status::problem`]).
pub fn check_token(
    header_typ: Option<&str>,
    payload: &StatusListTokenPayload,
    expected_uri: &str,
    idx: u64,
    now: i64,
    max_age: u64,
) -> Result<Status, StatusListError> {
    OpenedToken::open(header_typ, payload)?.status(expected_uri, idx, now, max_age)
}

/// A status list token whose shape is checked and whose list is decoded, to be asked about
/// many indices (verifiers cache one per list URI, so that the warm path neither verifies a
/// signature nor inflates the list again).
#[derive(Debug, Clone)]
pub struct OpenedToken {
    sub: String,
    iat: i64,
    exp: Option<i64>,
    list: StatusList,
}

impl OpenedToken {
    /// Checks `typ` and `ttl` and decodes the list (signature checked by the caller).
    pub fn open(
        header_typ: Option<&str>,
        payload: &StatusListTokenPayload,
    ) -> Result<Self, StatusListError> {
        if !header_typ.is_some_and(is_status_list_typ) {
            return Err(StatusListError::Typ(header_typ.map(str::to_owned)));
        }
        if payload.ttl == Some(0) {
            return Err(StatusListError::Ttl);
        }
        let claim = &payload.status_list;
        let list = StatusList::decode(claim.bits, &claim.lst, MAX_LIST_LEN)?;
        Ok(Self {
            sub: payload.sub.clone(),
            iat: payload.iat,
            exp: payload.exp,
            list,
        })
    }

    /// When the token was issued, unix seconds.
    pub fn iat(&self) -> i64 {
        self.iat
    }

    /// The status at `idx` of the list at `expected_uri`, at `now`, for a token at most
    /// `max_age` seconds old.
    pub fn status(
        &self,
        expected_uri: &str,
        idx: u64,
        now: i64,
        max_age: u64,
    ) -> Result<Status, StatusListError> {
        if self.sub != expected_uri {
            return Err(StatusListError::Subject {
                expected: expected_uri.to_owned(),
                found: self.sub.clone(),
            });
        }
        let (iat, now_wide) = (i128::from(self.iat), i128::from(now));
        if iat > now_wide + i128::from(MAX_CLOCK_SKEW) {
            return Err(StatusListError::IssuedInFuture { iat: self.iat, now });
        }
        if let Some(exp) = self.exp
            && exp <= now
        {
            return Err(StatusListError::Expired { exp, now });
        }
        if iat + i128::from(max_age) < now_wide {
            return Err(StatusListError::TooOld {
                iat: self.iat,
                max_age,
                now,
            });
        }
        let list = &self.list;
        let value = usize::try_from(idx)
            .ok()
            .and_then(|index| list.get(index).ok())
            .ok_or(StatusListError::IndexOutOfRange {
                idx,
                len: list.len(),
            })?;
        Status::try_from(value)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::time::Instant;

    use rand::rngs::StdRng;
    use rand::{Rng as _, SeedableRng as _};
    use serde::Deserialize;

    use super::*;

    /// draft-ietf-oauth-status-list test vectors (copied from shared/vectors, see README.txt).
    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/status-list/status-list-vectors.json"
    );

    #[derive(Deserialize)]
    struct Vectors {
        small_examples: Vec<SmallExample>,
        test_vectors_2pow20: Vec<LargeVector>,
        status_list_jwt_example: JwtExample,
    }

    #[derive(Deserialize)]
    struct SmallExample {
        byte_array: Vec<u8>,
        bits: u8,
        lst: String,
    }

    #[derive(Deserialize)]
    struct LargeVector {
        name: String,
        size: usize,
        bits: u8,
        lst: String,
        non_zero_statuses: BTreeMap<String, u8>,
        all_listed_statuses: BTreeMap<String, u8>,
    }

    #[derive(Deserialize)]
    struct JwtExample {
        jwt: String,
    }

    fn vectors() -> Vectors {
        let text = fs::read_to_string(VECTORS).expect("read the status list vectors");
        serde_json::from_str(&text).expect("parse the status list vectors")
    }

    fn zlib(bytes: &[u8], level: Compression) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), level);
        encoder.write_all(bytes).expect("deflate");
        encoder.finish().expect("deflate")
    }

    /// The statuses the draft lists for its two small examples (§ 4, 1-bit, and § 10.1,
    /// 2-bit), in index order; the vector file gives their byte arrays and `lst`.
    const DRAFT_STATUSES: [&[u8]; 2] = [
        &[1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1],
        &[1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3],
    ];

    #[test]
    fn draft_small_examples_decode_to_their_bytes_and_layout() {
        let vectors = vectors();
        assert_eq!(vectors.small_examples.len(), DRAFT_STATUSES.len());
        for (example, statuses) in vectors.small_examples.iter().zip(DRAFT_STATUSES) {
            let decoded = StatusList::decode(example.bits, &example.lst, 1 << 10).unwrap();
            assert_eq!(decoded.as_bytes(), example.byte_array.as_slice());
            assert_eq!(decoded.len(), statuses.len());
            for (idx, &value) in statuses.iter().enumerate() {
                assert_eq!(decoded.get(idx).unwrap(), value, "decoded entry {idx}");
            }

            // Setting the draft's statuses one by one lays out the draft's bytes.
            let mut built = StatusList::new(example.bits, statuses.len()).unwrap();
            for (idx, &value) in statuses.iter().enumerate() {
                built.set(idx, value).unwrap();
            }
            assert_eq!(built.as_bytes(), example.byte_array.as_slice());

            // Our own encoding decodes back to the same bytes (zlib streams are not unique,
            // so the lst strings are not compared).
            let ours = StatusList::from_bytes(example.bits, example.byte_array.clone()).unwrap();
            let again = StatusList::decode(example.bits, &ours.encode(), 1 << 10).unwrap();
            assert_eq!(again, ours);
            assert_eq!(built, ours);
        }
    }

    #[test]
    fn draft_2pow20_vectors_decode_to_the_listed_statuses() {
        let vectors = vectors();
        assert_eq!(vectors.test_vectors_2pow20.len(), 4);
        for vector in &vectors.test_vectors_2pow20 {
            let name = &vector.name;
            let list = StatusList::decode(vector.bits, &vector.lst, vector.size).unwrap();
            assert_eq!(list.bits(), vector.bits, "{name}");
            assert_eq!(list.len(), vector.size, "{name}");
            for (idx, &value) in &vector.all_listed_statuses {
                let idx: usize = idx.parse().unwrap();
                assert_eq!(list.get(idx).unwrap(), value, "{name} entry {idx}");
            }
            let non_zero = (0..list.len())
                .filter(|&idx| list.get(idx).unwrap() != 0)
                .count();
            assert_eq!(non_zero, vector.non_zero_statuses.len(), "{name}");
            for (idx, &value) in &vector.non_zero_statuses {
                assert_ne!(value, 0, "{name} lists {idx} as non-zero");
            }

            // Re-encoded by us, the list decodes to the same bytes.
            let again = StatusList::decode(vector.bits, &list.encode(), vector.size).unwrap();
            assert_eq!(again, list, "{name}");

            // One entry short of the limit is refused.
            assert_eq!(
                StatusList::decode(
                    vector.bits,
                    &vector.lst,
                    vector.size - 8 / usize::from(vector.bits)
                ),
                Err(StatusListError::TooLarge {
                    max_len: vector.size - 8 / usize::from(vector.bits)
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn draft_jwt_example_checks_out() {
        let vectors = vectors();
        let parts: Vec<&str> = vectors.status_list_jwt_example.jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&b64url_decode(parts[0]).unwrap()).unwrap();
        let payload: StatusListTokenPayload =
            serde_json::from_slice(&b64url_decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload.iss.as_deref(), Some("https://example.com"));
        assert_eq!(payload.ttl, Some(43200));
        let typ = header["typ"].as_str();
        let uri = "https://example.com/statuslists/1";
        let now = payload.iat + 10;
        // The list is the draft's 1-bit example: status[0] = 1, status[1] = 0.
        assert_eq!(
            check_token(typ, &payload, uri, 0, now, 60),
            Ok(Status::Invalid)
        );
        assert_eq!(
            check_token(typ, &payload, uri, 1, now, 60),
            Ok(Status::Valid)
        );
        assert_eq!(
            check_token(typ, &payload, uri, 16, now, 60),
            Err(StatusListError::IndexOutOfRange { idx: 16, len: 16 })
        );
    }

    #[test]
    fn random_sets_match_a_model_and_round_trip() {
        let mut rng = StdRng::seed_from_u64(0x5747_5455);
        for bits in [1u8, 2, 4, 8] {
            for len in [0usize, 1, 7, 9, 1000, 4099] {
                let mut list = StatusList::new(bits, len).unwrap();
                let mut model = vec![0u8; len];
                assert_eq!(list.len(), len);
                assert_eq!(list.is_empty(), len == 0);
                for _ in 0..len * 2 {
                    let idx = rng.gen_range(0..len);
                    let value = rng.gen_range(0..=((1u16 << bits) - 1) as u8);
                    list.set(idx, value).unwrap();
                    model[idx] = value;
                }
                for (idx, &value) in model.iter().enumerate() {
                    assert_eq!(
                        list.get(idx).unwrap(),
                        value,
                        "bits {bits} len {len} idx {idx}"
                    );
                }
                let decoded = StatusList::decode(bits, &list.encode(), len.max(1) * 2).unwrap();
                assert_eq!(decoded.as_bytes(), list.as_bytes());
                // Decoding yields whole bytes of entries; the padding entries are 0.
                let per_byte = 8 / usize::from(bits);
                assert_eq!(decoded.len(), len.div_ceil(per_byte) * per_byte);
                for idx in 0..decoded.len() {
                    let expected = model.get(idx).copied().unwrap_or(0);
                    assert_eq!(decoded.get(idx).unwrap(), expected);
                }
            }
        }
    }

    #[test]
    fn set_touches_only_its_own_bits() {
        for bits in [1u8, 2, 4, 8] {
            let max = ((1u16 << bits) - 1) as u8;
            let mut list = StatusList::new(bits, 64).unwrap();
            for idx in 0..64 {
                list.set(idx, max).unwrap();
            }
            list.set(13, 0).unwrap();
            for idx in 0..64 {
                assert_eq!(list.get(idx).unwrap(), if idx == 13 { 0 } else { max });
            }
            list.set(13, max).unwrap();
            list.set(13, 1).unwrap();
            assert_eq!(list.get(13).unwrap(), 1);
            assert_eq!(list.get(12).unwrap(), max);
            assert_eq!(list.get(14).unwrap(), max);
        }
    }

    #[test]
    fn out_of_range_and_oversized_values_are_refused() {
        let mut list = StatusList::new(2, 10).unwrap();
        assert_eq!(
            list.get(10),
            Err(StatusListError::IndexOutOfRange { idx: 10, len: 10 })
        );
        assert_eq!(
            list.set(10, 1),
            Err(StatusListError::IndexOutOfRange { idx: 10, len: 10 })
        );
        // Index 10 is padding inside the last byte: still out of range.
        assert_eq!(list.as_bytes().len(), 3);
        assert_eq!(
            list.set(usize::MAX, 1),
            Err(StatusListError::IndexOutOfRange {
                idx: usize::MAX as u64,
                len: 10
            })
        );
        assert_eq!(
            list.set(3, 4),
            Err(StatusListError::ValueTooLarge { value: 4, bits: 2 })
        );
        assert_eq!(list.get(3), Ok(0));
        assert!(list.set(3, 3).is_ok());
        let mut one_bit = StatusList::new(1, 8).unwrap();
        assert_eq!(
            one_bit.set(0, 2),
            Err(StatusListError::ValueTooLarge { value: 2, bits: 1 })
        );
        assert_eq!(
            StatusListError::ValueTooLarge { value: 2, bits: 1 }.to_string(),
            "expected a status value below 2 for 1-bit statuses, found 2"
        );
        let mut eight_bit = StatusList::new(8, 1).unwrap();
        assert!(eight_bit.set(0, 255).is_ok());
        assert_eq!(eight_bit.get(0), Ok(255));
    }

    #[test]
    fn wrong_bits_are_refused() {
        for bits in [0u8, 3, 5, 6, 7, 9, 16, 255] {
            assert_eq!(StatusList::new(bits, 8), Err(StatusListError::Bits(bits)));
            assert_eq!(
                StatusList::from_bytes(bits, vec![0; 2]),
                Err(StatusListError::Bits(bits))
            );
            // The draft's own 1-bit lst is refused under a bits it does not allow.
            assert_eq!(
                StatusList::decode(bits, "eNrbuRgAAhcBXQ", 64),
                Err(StatusListError::Bits(bits))
            );
        }
        assert_eq!(
            StatusList::new(8, usize::MAX),
            Err(StatusListError::TooLarge {
                max_len: usize::MAX / 8
            })
        );
    }

    #[test]
    fn bad_base64_is_refused() {
        let good = "eNrbuRgAAhcBXQ";
        assert!(StatusList::decode(1, good, 64).is_ok());
        for bad in [
            "eNrbuRgAAhcBXQ==", // padding
            "eNrbuRgAAhcBXR",   // non-zero trailing bits: not canonical
            "eNrb+RgAAhcBXQ",   // standard alphabet
            "eNrb/RgAAhcBXQ",   // standard alphabet
            "eNrbuRgA AhcBXQ",  // whitespace
            "eNrbuRgAAhcBXQ\n", // newline
            "eNrbuRgAAhcBX",    // impossible length
            "",                 // empty: not a zlib stream either way
        ] {
            let result = StatusList::decode(1, bad, 64);
            if bad.is_empty() {
                assert!(matches!(result, Err(StatusListError::Zlib(_))), "{bad:?}");
            } else {
                assert!(
                    matches!(result, Err(StatusListError::Base64(_))),
                    "{bad:?}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn malformed_zlib_streams_are_refused() {
        let bytes = [0xB9u8, 0xA3, 0, 0, 7];
        let stream = zlib(&bytes, Compression::best());
        assert!(StatusList::decode(1, &b64url(&stream), 64).is_ok());

        let truncated = &stream[..stream.len() - 1];
        let mut trailing = stream.clone();
        trailing.push(0);
        let mut bad_checksum = stream.clone();
        *bad_checksum.last_mut().unwrap() ^= 1;
        let raw_deflate = &stream[2..stream.len() - 4];
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
        gzip.write_all(&bytes).unwrap();
        let gzip = gzip.finish().unwrap();
        let mut two_streams = stream.clone();
        two_streams.extend_from_slice(&stream);

        for (what, bad) in [
            ("truncated", truncated.to_vec()),
            ("only the header", stream[..2].to_vec()),
            ("trailing byte", trailing),
            ("two streams", two_streams),
            ("bad adler-32", bad_checksum),
            ("raw deflate", raw_deflate.to_vec()),
            ("gzip", gzip),
            ("garbage", b"not zlib at all".to_vec()),
        ] {
            let result = StatusList::decode(1, &b64url(&bad), 64);
            assert!(
                matches!(result, Err(StatusListError::Zlib(_))),
                "{what}: {result:?}"
            );
        }
    }

    #[test]
    fn decompression_bombs_stop_at_the_limit() {
        // 16 MiB of zeros deflates to about 16 KiB.
        let bomb = b64url(&zlib(&vec![0u8; 16 << 20], Compression::best()));
        assert!(bomb.len() < 30_000, "bomb lst is {} chars", bomb.len());
        let started = Instant::now();
        assert_eq!(
            StatusList::decode(2, &bomb, MAX_LIST_LEN),
            Err(StatusListError::TooLarge {
                max_len: MAX_LIST_LEN
            })
        );
        println!("bomb refused after {:?}", started.elapsed());

        // The limit is exact: 1 MiB of 8-bit entries passes at 2^20 and fails one entry below.
        let mib = b64url(&zlib(&vec![0u8; 1 << 20], Compression::best()));
        assert_eq!(StatusList::decode(8, &mib, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(
            StatusList::decode(8, &mib, (1 << 20) - 1),
            Err(StatusListError::TooLarge {
                max_len: (1 << 20) - 1
            })
        );
        // At 1 bit the same bytes are 2^23 entries.
        assert_eq!(StatusList::decode(1, &mib, 1 << 23).unwrap().len(), 1 << 23);
        assert!(StatusList::decode(1, &mib, (1 << 23) - 8).is_err());
        // A limit of zero entries admits only an empty list.
        let empty = b64url(&zlib(&[], Compression::best()));
        assert!(StatusList::decode(2, &empty, 0).unwrap().is_empty());
        assert!(StatusList::decode(2, &mib, 0).is_err());

        // check_token applies MAX_LIST_LEN.
        let mut payload = payload_with(StatusList::new(2, 16).unwrap());
        payload.status_list.lst = bomb;
        assert_eq!(
            check(&payload, 0),
            Err(StatusListError::TooLarge {
                max_len: MAX_LIST_LEN
            })
        );
    }

    #[test]
    fn a_sparse_2pow17_list_encodes_small_and_fast() {
        let mut rng = StdRng::seed_from_u64(17);
        let mut list = StatusList::new(2, 1 << 17).unwrap();
        let mut set = BTreeMap::new();
        while set.len() < 100 {
            let idx = rng.gen_range(0..1usize << 17);
            let value = rng.gen_range(1..=2u8);
            list.set(idx, value).unwrap();
            set.insert(idx, value);
        }
        let started = Instant::now();
        let lst = list.encode();
        let took = started.elapsed();
        println!(
            "2^17 entries, 2 bits, {} non-zero: {} bytes raw, lst {} chars, encoded in {took:?}",
            set.len(),
            list.as_bytes().len(),
            lst.len()
        );
        assert_eq!(list.as_bytes().len(), 32 * 1024);
        assert!(lst.len() < 1500, "lst is {} chars", lst.len());
        let decoded = StatusList::decode(2, &lst, 1 << 17).unwrap();
        assert_eq!(decoded, list);
        for (&idx, &value) in &set {
            assert_eq!(decoded.get(idx).unwrap(), value);
        }
    }

    #[test]
    fn status_values() {
        for status in [Status::Valid, Status::Invalid, Status::Suspended] {
            assert_eq!(Status::try_from(u8::from(status)), Ok(status));
        }
        assert_eq!(u8::from(Status::Valid), 0);
        assert_eq!(u8::from(Status::Invalid), 1);
        assert_eq!(u8::from(Status::Suspended), 2);
        for value in 3..=255u8 {
            assert_eq!(
                Status::try_from(value),
                Err(StatusListError::UnknownStatus(value))
            );
        }
        assert_eq!(Status::Valid.problem(), None);
        assert_eq!(Status::Invalid.problem(), Some(problem::CREDENTIAL_REVOKED));
        assert_eq!(
            Status::Suspended.problem(),
            Some(problem::CREDENTIAL_SUSPENDED)
        );
    }

    const URI: &str = "https://issuer.example/status/7";
    const NOW: i64 = 1_800_000_000;

    fn payload_with(list: StatusList) -> StatusListTokenPayload {
        StatusListTokenPayload {
            iss: Some("did:civ:issuer".to_owned()),
            sub: URI.to_owned(),
            iat: NOW - 30,
            exp: Some(NOW + 3600),
            ttl: Some(300),
            status_list: list.to_claim(),
        }
    }

    /// A 2-bit list of 16 entries: 1 is invalid, 2 suspended, 3 application-specific.
    fn sample_payload() -> StatusListTokenPayload {
        let mut list = StatusList::new(2, 16).unwrap();
        list.set(1, 1).unwrap();
        list.set(2, 2).unwrap();
        list.set(3, 3).unwrap();
        payload_with(list)
    }

    fn check(payload: &StatusListTokenPayload, idx: u64) -> Result<Status, StatusListError> {
        check_token(Some(STATUS_LIST_TYP), payload, URI, idx, NOW, 600)
    }

    #[test]
    fn check_token_reads_the_status() {
        let payload = sample_payload();
        assert_eq!(check(&payload, 0), Ok(Status::Valid));
        assert_eq!(check(&payload, 1), Ok(Status::Invalid));
        assert_eq!(check(&payload, 2), Ok(Status::Suspended));
        assert_eq!(check(&payload, 15), Ok(Status::Valid));
        assert_eq!(check(&payload, 3), Err(StatusListError::UnknownStatus(3)));
    }

    #[test]
    fn check_token_refuses_a_wrong_typ() {
        let payload = sample_payload();
        for typ in [
            "statuslist+jwt",
            "application/statuslist+jwt",
            "StatusList+JWT",
            "APPLICATION/statuslist+jwt",
        ] {
            assert_eq!(
                check_token(Some(typ), &payload, URI, 1, NOW, 600),
                Ok(Status::Invalid),
                "{typ}"
            );
        }
        for typ in [
            "jwt",
            "JWT",
            "dc+sd-jwt",
            "statuslist+cwt",
            "statuslist+jwt ",
            "application/",
            "application/application/statuslist+jwt",
            "text/statuslist+jwt",
            "",
            "applicatioñ/statuslist+jwt",
        ] {
            assert_eq!(
                check_token(Some(typ), &payload, URI, 1, NOW, 600),
                Err(StatusListError::Typ(Some(typ.to_owned()))),
                "{typ}"
            );
        }
        assert_eq!(
            check_token(None, &payload, URI, 1, NOW, 600),
            Err(StatusListError::Typ(None))
        );
    }

    #[test]
    fn check_token_refuses_another_list() {
        let payload = sample_payload();
        for other in [
            "https://issuer.example/status/8",
            "https://issuer.example/status/7/",
            "HTTPS://issuer.example/status/7",
            "",
        ] {
            assert_eq!(
                check_token(Some(STATUS_LIST_TYP), &payload, other, 1, NOW, 600),
                Err(StatusListError::Subject {
                    expected: other.to_owned(),
                    found: URI.to_owned()
                })
            );
        }
    }

    #[test]
    fn check_token_refuses_a_zero_ttl() {
        let mut payload = sample_payload();
        payload.ttl = Some(0);
        assert_eq!(check(&payload, 1), Err(StatusListError::Ttl));
        payload.ttl = None;
        assert_eq!(check(&payload, 1), Ok(Status::Invalid));
    }

    #[test]
    fn check_token_refuses_an_expired_token() {
        let mut payload = sample_payload();
        payload.exp = Some(NOW);
        assert_eq!(
            check(&payload, 1),
            Err(StatusListError::Expired { exp: NOW, now: NOW })
        );
        payload.exp = Some(NOW - 1000);
        assert_eq!(
            check(&payload, 1),
            Err(StatusListError::Expired {
                exp: NOW - 1000,
                now: NOW
            })
        );
        payload.exp = Some(NOW + 1);
        assert_eq!(check(&payload, 1), Ok(Status::Invalid));
        payload.exp = None;
        assert_eq!(check(&payload, 1), Ok(Status::Invalid));
    }

    #[test]
    fn check_token_refuses_a_token_too_old() {
        let mut payload = sample_payload();
        payload.iat = NOW - 601;
        assert_eq!(
            check(&payload, 1),
            Err(StatusListError::TooOld {
                iat: NOW - 601,
                max_age: 600,
                now: NOW
            })
        );
        assert_eq!(
            check(&payload, 1).unwrap_err().to_string(),
            format!(
                "expected a status list token issued at or after {}, found iat {}",
                NOW - 600,
                NOW - 601
            )
        );
        payload.iat = NOW - 600;
        assert_eq!(check(&payload, 1), Ok(Status::Invalid));
        // max_age 0: issued now or later.
        payload.iat = NOW;
        assert_eq!(
            check_token(Some(STATUS_LIST_TYP), &payload, URI, 1, NOW, 0),
            Ok(Status::Invalid)
        );
        payload.iat = NOW - 1;
        assert!(matches!(
            check_token(Some(STATUS_LIST_TYP), &payload, URI, 1, NOW, 0),
            Err(StatusListError::TooOld { .. })
        ));
        // Extreme values do not overflow: i64::MIN + u64::MAX is i64::MAX.
        payload.iat = i64::MIN;
        payload.exp = None;
        assert_eq!(
            check_token(Some(STATUS_LIST_TYP), &payload, URI, 1, i64::MAX, u64::MAX),
            Ok(Status::Invalid)
        );
        assert!(matches!(
            check_token(
                Some(STATUS_LIST_TYP),
                &payload,
                URI,
                1,
                i64::MAX,
                u64::MAX - 1
            ),
            Err(StatusListError::TooOld { .. })
        ));
        payload.iat = i64::MAX;
        assert!(matches!(
            check_token(Some(STATUS_LIST_TYP), &payload, URI, 1, i64::MIN, u64::MAX),
            Err(StatusListError::IssuedInFuture { .. })
        ));
    }

    #[test]
    fn check_token_refuses_a_token_from_the_future() {
        let mut payload = sample_payload();
        payload.iat = NOW + MAX_CLOCK_SKEW;
        assert_eq!(check(&payload, 1), Ok(Status::Invalid));
        payload.iat = NOW + MAX_CLOCK_SKEW + 1;
        assert_eq!(
            check(&payload, 1),
            Err(StatusListError::IssuedInFuture {
                iat: NOW + MAX_CLOCK_SKEW + 1,
                now: NOW
            })
        );
    }

    #[test]
    fn check_token_refuses_an_index_out_of_range() {
        let payload = sample_payload();
        for idx in [16, 17, 1 << 40, u64::MAX] {
            assert_eq!(
                check(&payload, idx),
                Err(StatusListError::IndexOutOfRange { idx, len: 16 })
            );
        }
    }

    #[test]
    fn check_token_refuses_bad_lists() {
        let mut payload = sample_payload();
        payload.status_list.bits = 3;
        assert_eq!(check(&payload, 1), Err(StatusListError::Bits(3)));
        payload.status_list.bits = 0;
        assert_eq!(check(&payload, 1), Err(StatusListError::Bits(0)));
        let mut payload = sample_payload();
        payload.status_list.lst.push('=');
        assert!(matches!(
            check(&payload, 1),
            Err(StatusListError::Base64(_))
        ));
        payload.status_list.lst = b64url(b"\x78\xda");
        assert!(matches!(check(&payload, 1), Err(StatusListError::Zlib(_))));
        // The same list read as 1-bit: entry 2 is then bit 2 of byte 0 (0b1110_0100 → 1).
        let mut payload = sample_payload();
        payload.status_list.bits = 1;
        assert_eq!(check(&payload, 2), Ok(Status::Invalid));
        assert_eq!(check(&payload, 0), Ok(Status::Valid));
    }

    #[test]
    fn every_error_is_an_invalid_status_list() {
        let errors = [
            StatusListError::Bits(3),
            StatusListError::IndexOutOfRange { idx: 1, len: 0 },
            StatusListError::ValueTooLarge { value: 4, bits: 2 },
            StatusListError::TooLarge { max_len: 1 },
            StatusListError::Base64(b64url_decode("=").unwrap_err()),
            StatusListError::Zlib("x".to_owned()),
            StatusListError::Typ(None),
            StatusListError::Subject {
                expected: "a".to_owned(),
                found: "b".to_owned(),
            },
            StatusListError::Ttl,
            StatusListError::Expired { exp: 0, now: 1 },
            StatusListError::TooOld {
                iat: 0,
                max_age: 0,
                now: 1,
            },
            StatusListError::IssuedInFuture { iat: 1000, now: 0 },
            StatusListError::UnknownStatus(3),
        ];
        for error in errors {
            assert_eq!(error.problem().slug(), "invalid-status-list", "{error}");
            let text = error.to_string();
            assert!(text.starts_with("expected "), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
    }

    #[test]
    fn payload_json_round_trips_and_ignores_other_claims() {
        let payload = sample_payload();
        let json = serde_json::to_value(&payload).unwrap();
        assert_eq!(json["status_list"]["bits"], 2);
        assert!(json["status_list"].get("aggregation_uri").is_none());
        let back: StatusListTokenPayload = serde_json::from_value(json).unwrap();
        assert_eq!(back, payload);

        let minimal = StatusListTokenPayload {
            iss: None,
            exp: None,
            ttl: None,
            ..sample_payload()
        };
        let json = serde_json::to_value(&minimal).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["sub", "iat", "status_list"]);

        let with_others = r#"{"sub":"s","iat":1,"jti":"x","nbf":0,"cnf":{"a":1},
            "status_list":{"bits":1,"lst":"eNrbuRgAAhcBXQ","aggregation_uri":"https://a/","x":2}}"#;
        let parsed: StatusListTokenPayload = serde_json::from_str(with_others).unwrap();
        assert_eq!(
            parsed.status_list.aggregation_uri.as_deref(),
            Some("https://a/")
        );
        assert_eq!(parsed.exp, None);
    }

    #[test]
    fn payload_json_is_typed_strictly() {
        let list = r#""status_list":{"bits":1,"lst":"eNrbuRgAAhcBXQ"}"#;
        let ok = format!(r#"{{"sub":"s","iat":1,{list}}}"#);
        assert!(serde_json::from_str::<StatusListTokenPayload>(&ok).is_ok());
        for bad in [
            format!(r#"{{"iat":1,{list}}}"#),                      // no sub
            format!(r#"{{"sub":"s",{list}}}"#),                    // no iat
            r#"{"sub":"s","iat":1}"#.to_owned(),                   // no status_list
            format!(r#"{{"sub":"s","iat":1.5,{list}}}"#),          // fractional iat
            format!(r#"{{"sub":"s","iat":1.0,{list}}}"#),          // float iat
            format!(r#"{{"sub":"s","iat":"1",{list}}}"#),          // string iat
            format!(r#"{{"sub":"s","iat":1,"exp":null,{list}}}"#), // null exp
            format!(r#"{{"sub":"s","iat":1,"exp":2.5,{list}}}"#),  // fractional exp
            format!(r#"{{"sub":"s","iat":1,"ttl":-1,{list}}}"#),   // negative ttl
            format!(r#"{{"sub":"s","iat":1,"ttl":null,{list}}}"#), // null ttl
            format!(r#"{{"sub":"s","sub":"t","iat":1,{list}}}"#),  // duplicate sub
            format!(r#"{{"sub":1,"iat":1,{list}}}"#),              // sub not a string
            r#"{"sub":"s","iat":1,"status_list":{"bits":256,"lst":""}}"#.to_owned(),
            r#"{"sub":"s","iat":1,"status_list":{"bits":1}}"#.to_owned(),
            r#"{"sub":"s","iat":1,"status_list":{"bits":1,"lst":"","aggregation_uri":null}}"#
                .to_owned(),
        ] {
            assert!(
                serde_json::from_str::<StatusListTokenPayload>(&bad).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn status_claim_json() {
        let claim: StatusClaim = serde_json::from_str(
            r#"{"status_list":{"idx":0,"uri":"https://example.com/statuslists/1"},"other_mechanism":{}}"#,
        )
        .unwrap();
        assert_eq!(claim.status_list.idx, 0);
        assert_eq!(claim.status_list.uri, "https://example.com/statuslists/1");
        let big: StatusClaim =
            serde_json::from_str(r#"{"status_list":{"idx":18446744073709551615,"uri":"u","x":1}}"#)
                .unwrap();
        assert_eq!(big.status_list.idx, u64::MAX);
        assert_eq!(
            serde_json::to_string(&claim).unwrap(),
            r#"{"status_list":{"idx":0,"uri":"https://example.com/statuslists/1"}}"#
        );
        for bad in [
            r#"{"status_list":{"idx":-1,"uri":"u"}}"#,
            r#"{"status_list":{"idx":1.0,"uri":"u"}}"#,
            r#"{"status_list":{"idx":"1","uri":"u"}}"#,
            r#"{"status_list":{"idx":18446744073709551616,"uri":"u"}}"#,
            r#"{"status_list":{"uri":"u"}}"#,
            r#"{"status_list":{"idx":1}}"#,
            r#"{"status_list":{"idx":1,"idx":2,"uri":"u"}}"#,
            r#"{"other_mechanism":{}}"#,
            r#"{"status_list":null}"#,
        ] {
            assert!(
                serde_json::from_str::<StatusClaim>(bad).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn debug_shows_the_shape_not_the_bytes() {
        let list = StatusList::new(2, 1 << 12).unwrap();
        let shown = format!("{list:?}");
        assert_eq!(shown, "StatusList { bits: 2, len: 4096, .. }");
    }
}
