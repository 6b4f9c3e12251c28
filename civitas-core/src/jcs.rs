//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! JCS gives every JSON value exactly one byte representation, so that the bytes can be hashed or
//! signed and a verifier that re-serializes the same value gets the same bytes:
//!
//! ```text
//! JSON text ──parse──▶ serde_json::Value ──canonicalize──▶ canonical UTF-8 bytes ──▶ hash / sign
//!                                                               ▲
//! received bytes ──parse_canonical── (reject unless bytes == canonical form of their own value)
//! ```
//!
//! The rules (RFC 8785 §3.2):
//!
//! - No whitespace between tokens.
//! - Object members are sorted by their names compared as arrays of UTF-16 code units
//!   (§3.2.3), which differs from UTF-8 byte order for characters above U+FFFF.
//! - Strings are escaped per §3.2.2.2: only `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and
//!   `\u00xx` (lowercase hex) for the remaining control characters; everything else is written as
//!   literal UTF-8. Unicode normalization is not applied.
//! - Numbers are IEEE 754 doubles written the way ECMAScript's `Number.prototype.toString` writes
//!   them (§3.2.2.3): `4.50` becomes `4.5`, `1E30` becomes `1e+30`, `-0` becomes `0`. Numbers
//!   that do not fit a finite double are rejected.
//!
//! The workspace enables serde_json's `arbitrary_precision` feature, so a parsed
//! [`serde_json::Number`] keeps its text as written; this module re-parses that text as an `f64`
//! and re-serializes it, so the feature does not leak into the canonical form. It also enables
//! `preserve_order`; member order is always imposed here, never taken from the map.
//!
//! serde_json keeps only one of several members with the same name. Signed data with duplicate
//! names is ambiguous (different parsers pick different members), so [`canonicalize_str`] and
//! [`parse_canonical`] reject duplicate names instead (I-JSON, RFC 7493 §2.3).
//!
//! # Example
//!
//! ```
//! use civitas_core::jcs::{canonicalize_str, parse_canonical};
//!
//! let input = r#"{ "b": 4.50, "a": [1E30, "\u00e9", "\u000F"] }"#;
//! let canonical = canonicalize_str(input).unwrap();
//! assert_eq!(canonical, r#"{"a":[1e+30,"é","\u000f"],"b":4.5}"#.as_bytes());
//!
//! // Received bytes are accepted only in exactly this form.
//! assert!(parse_canonical(&canonical).is_ok());
//! assert!(parse_canonical(input.as_bytes()).is_err());
//! ```

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{Map, Number, Value};
use thiserror::Error;

/// The deepest nesting of arrays and objects that [`canonicalize`] accepts.
///
/// serde_json's parser stops at 128 levels, so anything it parsed is accepted; the limit only
/// guards against stack exhaustion on values built in code.
pub const MAX_DEPTH: usize = 256;

/// Longest excerpt of an offending number or name kept in a [`JcsError`].
const EXCERPT_CHARS: usize = 64;

/// Why a JSON text or value could not be canonicalized.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JcsError {
    /// The input is not valid JSON (or not valid UTF-8).
    #[error(
        "invalid json at line {line} column {column}: expected a single json value, found {detail}"
    )]
    InvalidJson {
        /// One-based line of the error, as reported by the parser (0 if unknown).
        line: usize,
        /// One-based column of the error, as reported by the parser (0 if unknown).
        column: usize,
        /// The parser's description of what it found.
        detail: String,
    },
    /// An object has two members with the same name (after unescaping).
    #[error("duplicate member name: expected unique names in each object, found {name:?} twice")]
    DuplicateName {
        /// The repeated name, truncated to 64 characters.
        name: String,
    },
    /// A number does not denote a finite IEEE 754 double (for example `1e400`).
    #[error("number out of range: expected a finite ieee 754 double, found {number}")]
    NumberOutOfRange {
        /// The number as written, truncated to 64 characters.
        number: String,
    },
    /// Arrays and objects are nested more deeply than [`MAX_DEPTH`].
    #[error("nesting too deep: expected at most {max} levels of arrays and objects, found more")]
    TooDeep {
        /// The limit that was exceeded.
        max: usize,
    },
    /// The bytes parse, but are not the canonical form of the value they denote.
    #[error(
        "not canonical: expected the {expected_len}-byte jcs form, found {found_len} bytes \
         differing from it at byte {offset}"
    )]
    NotCanonical {
        /// Offset of the first byte that differs from the canonical form (or where one of the
        /// two ends).
        offset: usize,
        /// Length of the canonical form.
        expected_len: usize,
        /// Length of the input.
        found_len: usize,
    },
}

/// Returns the RFC 8785 canonical form of `value`.
///
/// # Errors
///
/// [`JcsError::NumberOutOfRange`] if a number is not a finite double, [`JcsError::TooDeep`] if the
/// value nests deeper than [`MAX_DEPTH`].
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// Parses `json` and returns the RFC 8785 canonical form of its value.
///
/// Unlike parsing with serde_json and calling [`canonicalize`], this rejects objects with
/// duplicate member names instead of silently keeping one of them.
///
/// # Errors
///
/// [`JcsError::InvalidJson`] if `json` does not parse, [`JcsError::DuplicateName`] if an object
/// repeats a name, and the errors of [`canonicalize`].
pub fn canonicalize_str(json: &str) -> Result<Vec<u8>, JcsError> {
    let value = parse_strict(json.as_bytes())?;
    canonicalize(&value)
}

/// Parses `bytes` and returns the value only if `bytes` is exactly its canonical form.
///
/// Use this on received data that claims to be canonical (for example a signed ledger entry): it
/// rejects whitespace, unsorted or duplicate members, non-canonical escapes and numbers such as
/// `1.0`, so each accepted value has exactly one accepted encoding.
///
/// # Errors
///
/// [`JcsError::InvalidJson`], [`JcsError::DuplicateName`], the errors of [`canonicalize`], and
/// [`JcsError::NotCanonical`] if the bytes differ from the canonical form.
pub fn parse_canonical(bytes: &[u8]) -> Result<Value, JcsError> {
    let value = parse_strict(bytes)?;
    let canonical = canonicalize(&value)?;
    if canonical != bytes {
        let offset = canonical
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| canonical.len().min(bytes.len()));
        return Err(JcsError::NotCanonical {
            offset,
            expected_len: canonical.len(),
            found_len: bytes.len(),
        });
    }
    Ok(value)
}

/// Parses JSON and rejects duplicate member names.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, JcsError> {
    let value = serde_json::from_slice(bytes).map_err(|e| {
        // The position has fields of its own; keep only serde_json's description.
        let detail = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        JcsError::InvalidJson {
            line: e.line(),
            column: e.column(),
            detail: detail.strip_suffix(&position).unwrap_or(&detail).to_owned(),
        }
    })?;
    // Only runs on text serde_json has accepted as a single valid JSON value.
    reject_duplicate_names(bytes)?;
    Ok(value)
}

/// One open container while scanning for duplicate names.
enum Frame<'a> {
    /// An object: the names seen so far, and whether the next string is a name.
    Object {
        names: HashSet<Cow<'a, str>>,
        expect_name: bool,
    },
    /// An array.
    Array,
}

/// Scans JSON text that has already been validated and fails on a repeated member name.
///
/// Because the text is known to be valid, the scan only needs to track containers, commas and
/// string boundaries; names with escapes are decoded by serde_json so that `"a"` and `"\u0061"`
/// count as the same name.
fn reject_duplicate_names(text: &[u8]) -> Result<(), JcsError> {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        match byte {
            b'{' => stack.push(Frame::Object {
                names: HashSet::new(),
                expect_name: true,
            }),
            b'[' => stack.push(Frame::Array),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(Frame::Object { expect_name, .. }) = stack.last_mut() {
                    *expect_name = true;
                }
            }
            b'"' => {
                let start = i;
                let mut escaped = false;
                i += 1;
                while let Some(&b) = text.get(i) {
                    match b {
                        b'\\' => {
                            escaped = true;
                            i += 2;
                        }
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if let Some(Frame::Object { names, expect_name }) = stack.last_mut()
                    && *expect_name
                {
                    *expect_name = false;
                    let name = decode_name(text, start, i, escaped)?;
                    if names.contains(&name) {
                        return Err(JcsError::DuplicateName {
                            name: excerpt(&name),
                        });
                    }
                    names.insert(name);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Decodes the string token `text[open..=close]` (both quotes included).
fn decode_name(
    text: &[u8],
    open: usize,
    close: usize,
    escaped: bool,
) -> Result<Cow<'_, str>, JcsError> {
    let unexpected = || JcsError::InvalidJson {
        line: 0,
        column: 0,
        detail: format!("an unterminated or undecodable member name at byte {open}"),
    };
    if escaped {
        let token = text.get(open..=close).ok_or_else(unexpected)?;
        let name: String = serde_json::from_slice(token).map_err(|_| unexpected())?;
        Ok(Cow::Owned(name))
    } else {
        let raw = text.get(open + 1..close).ok_or_else(unexpected)?;
        let name = std::str::from_utf8(raw).map_err(|_| unexpected())?;
        Ok(Cow::Borrowed(name))
    }
}

/// Truncates `s` for inclusion in an error message.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), JcsError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(out, number)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            let depth = enter(depth)?;
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item, depth)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let depth = enter(depth)?;
            write_object(out, map, depth)?;
        }
    }
    Ok(())
}

fn enter(depth: usize) -> Result<usize, JcsError> {
    if depth >= MAX_DEPTH {
        return Err(JcsError::TooDeep { max: MAX_DEPTH });
    }
    Ok(depth + 1)
}

fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>, depth: usize) -> Result<(), JcsError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // Names in a map are unique, so an unstable sort is deterministic.
    members.sort_unstable_by(|(a, _), (b, _)| cmp_utf16(a, b));
    out.push(b'{');
    for (index, (name, member)) in members.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_value(out, member, depth)?;
    }
    out.push(b'}');
    Ok(())
}

/// Compares two strings as sequences of UTF-16 code units (RFC 8785 §3.2.3).
fn cmp_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    // UTF-8 byte order equals code point order, which equals UTF-16 order except when a
    // character in U+E000..=U+FFFF meets one above U+FFFF. Both are at least three bytes long in
    // UTF-8, so pure-ASCII-and-Latin prefixes take the fast path.
    let common = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.len().min(b.len()));
    // Back up to the start of the character that differs. `a[..start]` and `b[..start]` are the
    // same whole characters, so `start` is a character boundary of `b` as well and neither slice
    // below can panic.
    let mut start = common;
    while !a.is_char_boundary(start) {
        start -= 1;
    }
    a[start..].encode_utf16().cmp(b[start..].encode_utf16())
}

/// Refuses any number in `value` that is not a finite double (as [`canonicalize`] would),
/// without serializing anything.
pub(crate) fn check_numbers(value: &Value) -> Result<(), JcsError> {
    match value {
        Value::Number(number) => {
            let text = number.as_str();
            if text.parse::<f64>().is_ok_and(f64::is_finite) {
                Ok(())
            } else {
                Err(JcsError::NumberOutOfRange {
                    number: excerpt(text),
                })
            }
        }
        Value::Array(items) => items.iter().try_for_each(check_numbers),
        Value::Object(map) => map.values().try_for_each(check_numbers),
        _ => Ok(()),
    }
}

fn write_number(out: &mut Vec<u8>, number: &Number) -> Result<(), JcsError> {
    let text = number.as_str();
    // With `arbitrary_precision` the text is kept as written; Rust's parser rounds it to the
    // nearest double exactly as ECMAScript's does.
    let parsed = text.parse::<f64>().ok().filter(|f| f.is_finite());
    let Some(float) = parsed else {
        return Err(JcsError::NumberOutOfRange {
            number: excerpt(text),
        });
    };
    if float == 0.0 {
        // Covers -0, which ECMAScript writes as "0".
        out.push(b'0');
    } else {
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(float).as_bytes());
    }
    Ok(())
}

pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0x0f)],
            ],
            // Everything else, including all bytes of multi-byte characters, is copied as is.
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.extend_from_slice(escape);
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/jcs");

    fn unhex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|c| match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => c - b'A' + 10,
            })
            .collect();
        assert_eq!(digits.len() % 2, 0, "odd number of hex digits");
        digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
    }

    /// cyberphone/json-canonicalization testdata, the RFC 8785 author's vectors (README.txt).
    #[test]
    fn rfc8785_reference_vectors() {
        let dir = Path::new(VECTORS);
        let mut names: Vec<String> = fs::read_dir(dir.join("input"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".json"))
            .collect();
        names.sort();
        assert!(
            names.len() >= 6,
            "expected the six reference vectors, found {names:?}"
        );
        for name in &names {
            let stem = name.trim_end_matches(".json");
            let input = fs::read_to_string(dir.join("input").join(name)).unwrap();
            let expected = fs::read(dir.join("output").join(name)).unwrap();
            let hex = fs::read_to_string(dir.join("outhex").join(format!("{stem}.txt"))).unwrap();
            assert_eq!(
                unhex(&hex),
                expected,
                "{stem}: outhex disagrees with output"
            );

            let actual = canonicalize_str(&input).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&actual),
                String::from_utf8_lossy(&expected),
                "{stem}"
            );
            assert_eq!(actual, expected, "{stem}");

            // The expected output is itself canonical and round-trips.
            let value = parse_canonical(&expected).unwrap();
            assert_eq!(canonicalize(&value).unwrap(), expected, "{stem}");
        }
    }

    fn canon(json: &str) -> String {
        String::from_utf8(canonicalize_str(json).unwrap()).unwrap()
    }

    /// RFC 8785 §3.2.2.3 and Appendix B number samples.
    #[test]
    fn rfc8785_numbers() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0e5", "0"),
            ("1", "1"),
            ("-1", "-1"),
            ("1.0", "1"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("1E30", "1e+30"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("333333333.33333329", "333333333.3333333"),
            ("9007199254740993", "9007199254740992"),
            ("295147905179352830000", "295147905179352830000"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("-5e-324", "-5e-324"),
            ("1e-400", "0"),
            ("0.1", "0.1"),
            ("123456789012345680000", "123456789012345680000"),
        ];
        for (input, expected) in cases {
            assert_eq!(canon(input), expected, "{input}");
        }
    }

    #[test]
    fn numbers_out_of_range_are_rejected() {
        for input in ["1e400", "-1e400", "1.8e308", "[1, 2e999]"] {
            let err = canonicalize_str(input).unwrap_err();
            assert!(
                matches!(err, JcsError::NumberOutOfRange { .. }),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn rfc8785_string_escapes() {
        assert_eq!(
            canon(r#""\u0000\u0001\u001f\u0020\b\f\n\r\t\"\\\/\u007f\u0080\u2028""#),
            "\"\\u0000\\u0001\\u001f \\b\\f\\n\\r\\t\\\"\\\\/\u{7f}\u{80}\u{2028}\""
        );
        assert_eq!(canon(r#""\u001A\u000B""#), r#""\u001a\u000b""#);
        assert_eq!(canon(r#""\ud83d\ude00""#), "\"\u{1f600}\"");
    }

    #[test]
    fn names_sort_by_utf16_code_units() {
        // U+1F600 is D83D DE00 in UTF-16, which sorts before U+E000 although its code point (and
        // UTF-8 encoding) is larger.
        let value = json!({ "\u{e000}": 1, "\u{1f600}": 2, "a": 3, "": 4, "ab": 5, "\u{ffff}": 6 });
        assert_eq!(
            String::from_utf8(canonicalize(&value).unwrap()).unwrap(),
            "{\"\":4,\"a\":3,\"ab\":5,\"\u{1f600}\":2,\"\u{e000}\":1,\"\u{ffff}\":6}"
        );
        assert_eq!(cmp_utf16("\u{1f600}", "\u{e000}"), std::cmp::Ordering::Less);
        assert_eq!(
            cmp_utf16("x\u{1f600}", "x\u{e000}"),
            std::cmp::Ordering::Less
        );
        assert_eq!(cmp_utf16("\u{e9}", "\u{e8}z"), std::cmp::Ordering::Greater);
        assert_eq!(cmp_utf16("ab", "a"), std::cmp::Ordering::Greater);
        assert_eq!(cmp_utf16("\u{e9}", "\u{e9}"), std::cmp::Ordering::Equal);
    }

    #[test]
    fn insertion_order_is_ignored() {
        let a = canonicalize_str(r#"{"z":{"b":1,"a":2},"y":[{"d":0,"c":0}]}"#).unwrap();
        let b = canonicalize_str(r#"{"y":[{"c":0,"d":0}],"z":{"a":2,"b":1}}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, br#"{"y":[{"c":0,"d":0}],"z":{"a":2,"b":1}}"#);
    }

    #[test]
    fn duplicate_names_are_rejected() {
        for input in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"x":[{"b":{"a":"a","a":0}}]}"#,
            r#" { "k" : "v" , "k" : "v" } "#,
        ] {
            let err = canonicalize_str(input).unwrap_err();
            assert!(
                matches!(err, JcsError::DuplicateName { .. }),
                "{input}: {err}"
            );
            let err = parse_canonical(input.as_bytes()).unwrap_err();
            assert!(
                matches!(err, JcsError::DuplicateName { .. }),
                "{input}: {err}"
            );
        }
        // Same names in different objects, and names equal to string values, are fine.
        for input in [
            r#"{"a":{"a":1},"b":{"a":1}}"#,
            r#"{"a":"b","b":"a"}"#,
            r#"[{"a":1},{"a":1}]"#,
            r#"{"a\"":1,"a":2,"\\":"\"a\""}"#,
        ] {
            canonicalize_str(input).unwrap();
        }
    }

    #[test]
    fn parse_canonical_rejects_non_canonical_bytes() {
        let canonical = br#"{"a":[1,"x"],"b":{"c":null}}"#;
        let value = parse_canonical(canonical).unwrap();
        assert_eq!(value, json!({"a":[1,"x"],"b":{"c":null}}));

        for input in [
            &br#"{"b":{"c":null},"a":[1,"x"]}"#[..],
            br#"{"a":[1,"x"], "b":{"c":null}}"#,
            br#"{"a":[1,"x"],"b":{"c":null}} "#,
            br#"{"a":[1.0,"x"],"b":{"c":null}}"#,
            br#"{"a":[1,"\u0078"],"b":{"c":null}}"#,
            br#"{"a":[1,"x"],"b":{"c":null},"a":[1,"x"]}"#,
            b"\"\\u001F\"",
            b"\"\\/\"",
            b"1E2",
        ] {
            let err = parse_canonical(input).unwrap_err();
            assert!(
                matches!(
                    err,
                    JcsError::NotCanonical { .. } | JcsError::DuplicateName { .. }
                ),
                "{}: {err}",
                String::from_utf8_lossy(input)
            );
        }
        let err = parse_canonical(br#"{"a":1} "#).unwrap_err();
        assert_eq!(
            err,
            JcsError::NotCanonical {
                offset: 7,
                expected_len: 7,
                found_len: 8
            }
        );
    }

    #[test]
    fn invalid_json_reports_position_once() {
        let err = canonicalize_str("{\"a\":1,}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid json at line 1 column 8: expected a single json value, found trailing comma"
        );
    }

    #[test]
    fn invalid_json_is_rejected() {
        for input in [
            &b""[..],
            b"{",
            b"[1,]",
            b"\"\\ud800\"",
            b"\xff",
            b"1 2",
            b"NaN",
        ] {
            let err = parse_canonical(input).unwrap_err();
            assert!(matches!(err, JcsError::InvalidJson { .. }), "{err}");
        }
    }

    #[test]
    fn excessive_depth_is_rejected_not_overflowed() {
        let mut value = json!(0);
        for _ in 0..MAX_DEPTH {
            value = json!([value]);
        }
        assert!(canonicalize(&value).is_ok());
        let value = json!({ "deeper": value });
        assert_eq!(
            canonicalize(&value).unwrap_err(),
            JcsError::TooDeep { max: MAX_DEPTH }
        );
    }

    #[test]
    fn numbers_built_in_code_are_reformatted() {
        let value = json!({ "f": 0.1_f64 + 0.2, "i": u64::MAX, "n": -1.5e-7 });
        assert_eq!(
            String::from_utf8(canonicalize(&value).unwrap()).unwrap(),
            r#"{"f":0.30000000000000004,"i":18446744073709552000,"n":-1.5e-7}"#
        );
    }

    #[test]
    fn error_messages_say_expected_and_found() {
        let err = canonicalize_str(r#"{"n":-2e999}"#).unwrap_err();
        // serde_json normalizes the exponent's spelling, so only the start is fixed.
        assert!(
            err.to_string()
                .starts_with("number out of range: expected a finite ieee 754 double, found -2"),
            "{err}"
        );
        let err = canonicalize_str(r#"{"a":1,"a":2}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "duplicate member name: expected unique names in each object, found \"a\" twice"
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_filter_map("finite", Number::from_f64)
                .prop_map(Value::Number),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_form_is_accepted_and_stable(value in json_value()) {
            let canonical = canonicalize(&value).unwrap();
            let reparsed = parse_canonical(&canonical).unwrap();
            prop_assert_eq!(&canonicalize(&reparsed).unwrap(), &canonical);
            let text = String::from_utf8(canonical.clone()).unwrap();
            prop_assert_eq!(canonicalize_str(&text).unwrap(), canonical);
            // Pretty-printed text denotes the same value, so it has the same canonical form.
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            prop_assert_eq!(canonicalize_str(&pretty).unwrap(), text.into_bytes());
        }

        #[test]
        fn numbers_round_trip_to_the_same_double(bits in any::<u64>()) {
            let float = f64::from_bits(bits);
            prop_assume!(float.is_finite());
            let text = String::from_utf8(canonicalize(&json!(float)).unwrap()).unwrap();
            let back: f64 = text.parse().unwrap();
            prop_assert!(back == float, "{} -> {} -> {}", float, text, back);
            // Re-canonicalizing the output is the identity.
            prop_assert_eq!(canon(&text), text);
        }
    }
}
