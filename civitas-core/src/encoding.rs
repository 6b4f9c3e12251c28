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
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::keys::{KeyError, PublicKey};

    /// The multiformats/multibase vector folder (copied from shared/vectors, see README.txt).
    const MULTIBASE_VECTORS: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/multibase");

    /// One upstream test file, `tests/<name>.csv`: the input bytes, then one row per encoding.
    struct Vector {
        file: String,
        input: Vec<u8>,
        rows: Vec<Row>,
    }

    /// A row `<encoding name>, "<multibase string>"`.
    struct Row {
        encoding: String,
        text: String,
    }

    impl Row {
        /// The multibase prefix character.
        fn code(&self) -> char {
            self.text.chars().next().unwrap()
        }

        /// The encoded data without the prefix character.
        fn body(&self) -> &str {
            &self.text[self.code().len_utf8()..]
        }
    }

    /// Splits `name, "value"`.
    fn split_row(line: &str) -> (String, String) {
        let (name, value) = line.split_once(", ").unwrap();
        let value = value.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
        (name.to_owned(), value.to_owned())
    }

    /// Reads the input of the first row: text with `\xHH` escapes.
    fn unescape(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = text.as_bytes();
        while let Some((&first, tail)) = rest.split_first() {
            if first == b'\\' && tail.first() == Some(&b'x') {
                let hex = std::str::from_utf8(&tail[1..3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[3..];
            } else {
                out.push(first);
                rest = tail;
            }
        }
        out
    }

    fn load_vectors() -> Vec<Vector> {
        let dir = Path::new(MULTIBASE_VECTORS).join("tests");
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "csv"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 4, "multibase test files: {files:?}");
        files
            .iter()
            .map(|path| {
                let text = fs::read_to_string(path).unwrap();
                let mut lines = text.lines().filter(|line| !line.trim().is_empty());
                let (_, input) = split_row(lines.next().unwrap());
                let rows = lines
                    .map(|line| {
                        let (encoding, text) = split_row(line);
                        Row { encoding, text }
                    })
                    .collect();
                Vector {
                    file: path.file_name().unwrap().to_string_lossy().into_owned(),
                    input: unescape(&input),
                    rows,
                }
            })
            .collect()
    }

    /// The rows of one multibase encoding, with the file they come from and its input.
    fn rows<'a>(vectors: &'a [Vector], encoding: &str) -> Vec<(&'a Vector, &'a Row)> {
        vectors
            .iter()
            .flat_map(|v| v.rows.iter().map(move |row| (v, row)))
            .filter(|(_, row)| row.encoding == encoding)
            .collect()
    }

    /// multiformats/multibase multibase.csv: `z` is base58btc and `u` is base64url, and
    /// the `multibase` crate agrees.
    #[test]
    fn multibase_csv_prefixes() {
        let table = fs::read_to_string(Path::new(MULTIBASE_VECTORS).join("multibase.csv")).unwrap();
        let mut found = Vec::new();
        for line in table.lines().skip(1) {
            let columns: Vec<&str> = line.split(',').map(str::trim).collect();
            let (code, name) = (columns[1], columns[2]);
            let base = match name {
                "base58btc" => multibase::Base::Base58Btc,
                "base64url" => multibase::Base::Base64Url,
                _ => continue,
            };
            assert_eq!(code.chars().count(), 1, "{line}");
            let code = code.chars().next().unwrap();
            assert_eq!(base.code(), code, "{name}");
            assert_eq!(multibase::Base::from_code(code).unwrap(), base, "{name}");
            found.push(code);
        }
        assert_eq!(found, ['z', 'u']);
    }

    /// multiformats/multibase tests/*.csv: every base58btc (`z`) and base64url (`u`) row
    /// decodes to the file's input and is what the `multibase` crate encodes, leading zero
    /// bytes included (base58btc writes each leading zero byte as '1').
    #[test]
    fn multibase_tests_base58btc_and_base64url_rows() {
        let vectors = load_vectors();
        let mut checked = 0;
        for (encoding, base) in [
            ("base58btc", multibase::Base::Base58Btc),
            ("base64url", multibase::Base::Base64Url),
        ] {
            for (v, row) in rows(&vectors, encoding) {
                let context = format!("{} {encoding} {:?}", v.file, row.text);
                assert_eq!(row.code(), base.code(), "{context}");
                assert_eq!(
                    multibase::decode(&row.text).unwrap(),
                    (base, v.input.clone()),
                    "{context}"
                );
                assert_eq!(multibase::encode(base, &v.input), row.text, "{context}");
                checked += 1;
            }
        }
        // basic, leading_zero and two_leading_zeros have one row of each; the
        // case-insensitivity file has none (both alphabets are case-sensitive).
        assert_eq!(checked, 6);
        for (v, row) in rows(&vectors, "base58btc") {
            let zeros = v.input.iter().take_while(|&&b| b == 0).count();
            let ones = row.body().chars().take_while(|&c| c == '1').count();
            assert_eq!(ones, zeros, "{}", v.file);
        }
    }

    /// RFC 4648 §5 (`u`, base64url without padding), §4 (`M`, base64 with padding) and §6
    /// (`b`, base32 lower case without padding) rows of multiformats/multibase tests/*.csv:
    /// `b64url`, `b64` and `b32` write exactly the row, and their strict decoders read it
    /// back. Padded base64url (`U`) is accepted only where it has no padding, and base32 in
    /// upper or mixed case is refused, though multibase itself accepts it.
    #[test]
    fn rfc4648_wire_encodings_agree_with_multibase_rows() {
        let vectors = load_vectors();
        let mut checked = 0;
        for (v, row) in rows(&vectors, "base64url") {
            assert_eq!(b64url(&v.input), row.body(), "{}", v.file);
            assert_eq!(b64url_decode(row.body()).unwrap(), v.input, "{}", v.file);
            checked += 1;
        }
        for (v, row) in rows(&vectors, "base64urlpad") {
            let result = b64url_decode(row.body());
            if row.body().contains('=') {
                assert!(result.is_err(), "{} {:?}", v.file, row.text);
            } else {
                assert_eq!(result.unwrap(), v.input, "{}", v.file);
            }
            checked += 1;
        }
        for (v, row) in rows(&vectors, "base64pad") {
            assert_eq!(b64(&v.input), row.body(), "{}", v.file);
            assert_eq!(b64_decode(row.body()).unwrap(), v.input, "{}", v.file);
            checked += 1;
        }
        for (v, row) in rows(&vectors, "base32") {
            if v.file == "case_insensitivity.csv" {
                assert!(b32_decode(row.body()).is_err(), "{:?}", row.text);
                assert_eq!(multibase::decode(&row.text).unwrap().1, v.input);
            } else {
                assert_eq!(b32(&v.input), row.body(), "{}", v.file);
                assert_eq!(b32_decode(row.body()).unwrap(), v.input, "{}", v.file);
            }
            checked += 1;
        }
        for (v, row) in rows(&vectors, "base32upper") {
            assert!(b32_decode(row.body()).is_err(), "{} {:?}", v.file, row.text);
            checked += 1;
        }
        // Three files with u, U and M rows; four with b and B rows.
        assert_eq!(checked, 3 * 3 + 4 * 2);
    }

    /// No row of multiformats/multibase tests/*.csv is a 34-byte `ed25519-pub` Multikey
    /// ("yes mani !" and "hello world" are 10 and 11 bytes), so none is a key:
    /// `PublicKey::from_multibase` refuses the base58btc rows by their multicodec prefix and
    /// every other base by its prefix character.
    #[test]
    fn multibase_rows_are_not_ed25519_multikeys() {
        let vectors = load_vectors();
        for v in &vectors {
            for row in &v.rows {
                let result = PublicKey::from_multibase(&row.text);
                let context = format!("{} {}", v.file, row.encoding);
                if row.code() == 'z' {
                    let prefix: String =
                        v.input.iter().take(2).map(|b| format!("{b:02x}")).collect();
                    assert_eq!(result, Err(KeyError::Multicodec(prefix)), "{context}");
                } else {
                    assert!(matches!(result, Err(KeyError::Multibase(_))), "{context}");
                }
            }
        }
    }

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
