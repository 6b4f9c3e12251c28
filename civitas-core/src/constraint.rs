//! Accreditation claim constraints: `CLAIM OP VALUE`, OP one of `== != < <= > >= in`,
//! VALUE as JSON; stored as `{claim, op, value}`. The issuer enforces them on all claims,
//! verifiers on the disclosed ones.
//!
//! ```
//! use civitas_core::constraint::{Constraint, Outcome};
//! let c: Constraint = r#"jurisdiction in ["310000", "320000"]"#.parse().unwrap();
//! let claims = serde_json::json!({"jurisdiction": "310000"});
//! assert_eq!(c.evaluate(&claims), Outcome::Satisfied);
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Op {
    /// Equal (JSON equality).
    #[serde(rename = "==")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
    /// Less than (numbers, or strings compared by code point).
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal.
    #[serde(rename = "<=")]
    Le,
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater than or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Member of a JSON array.
    #[serde(rename = "in")]
    In,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::In => "in",
        }
    }
}

/// A constraint on one claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// The claim name; nested claims by dotted path (`address.region`).
    pub claim: String,
    /// The operator.
    pub op: Op,
    /// The value, as JSON.
    pub value: Value,
}

/// Why a constraint text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseConstraintError {
    /// Not three parts.
    #[error("expected CLAIM OP VALUE (for example 'clearance <= 3'), found {0:?}")]
    Shape(String),
    /// A claim name with characters other than letters, digits, `_` and `.`.
    #[error("expected a claim name of letters, digits, '_' and '.', found {0:?}")]
    Claim(String),
    /// An unknown operator.
    #[error("expected one of == != < <= > >= in, found {0:?}")]
    Op(String),
    /// The value is not JSON.
    #[error("expected a JSON value, found {0:?}")]
    Value(String),
    /// The value does not suit the operator.
    #[error("operator {op} needs {expected}, found {found}")]
    Mismatch {
        /// The operator.
        op: &'static str,
        /// What it needs.
        expected: &'static str,
        /// What was given.
        found: String,
    },
}

impl Constraint {
    /// Checks that the value suits the operator.
    pub fn check(&self) -> Result<(), ParseConstraintError> {
        let valid_claim = !self.claim.is_empty()
            && self.claim.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !valid_claim {
            return Err(ParseConstraintError::Claim(self.claim.clone()));
        }
        if !safe_integers_only(&self.value) {
            return Err(ParseConstraintError::Value(format!(
                "{} (ledger objects carry only integers up to 2^53-1, no fractions or exponents)",
                self.value
            )));
        }
        let mismatch = |expected| ParseConstraintError::Mismatch {
            op: self.op.as_str(),
            expected,
            found: self.value.to_string(),
        };
        match self.op {
            Op::Eq | Op::Ne => Ok(()),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => match &self.value {
                Value::Number(_) | Value::String(_) => Ok(()),
                _ => Err(mismatch("a number or a string")),
            },
            Op::In => match &self.value {
                Value::Array(_) => Ok(()),
                _ => Err(mismatch("a JSON array")),
            },
        }
    }

    /// Evaluates the constraint against a claim set.
    pub fn evaluate(&self, claims: &Value) -> Outcome {
        let mut current = claims;
        for part in self.claim.split('.') {
            match current.get(part) {
                Some(next) => current = next,
                None => return Outcome::Absent,
            }
        }
        let holds = match self.op {
            Op::Eq => json_eq(current, &self.value),
            Op::Ne => !json_eq(current, &self.value),
            Op::In => match &self.value {
                Value::Array(items) => items.iter().any(|item| json_eq(current, item)),
                _ => false,
            },
            Op::Lt | Op::Le | Op::Gt | Op::Ge => match compare(current, &self.value) {
                Some(ordering) => match self.op {
                    Op::Lt => ordering == Ordering::Less,
                    Op::Le => ordering != Ordering::Greater,
                    Op::Gt => ordering == Ordering::Greater,
                    _ => ordering != Ordering::Less,
                },
                None => false,
            },
        };
        if holds {
            Outcome::Satisfied
        } else {
            Outcome::Violated
        }
    }
}

/// Whether every number in `value` is an integer of at most 2^53 − 1 in magnitude, as the
/// ledger's strict parsing requires.
fn safe_integers_only(value: &Value) -> bool {
    const MAX: u64 = (1 << 53) - 1;
    match value {
        Value::Number(n) => {
            n.as_u64().is_some_and(|v| v <= MAX)
                || n.as_i64().is_some_and(|v| v.unsigned_abs() <= MAX)
        }
        Value::Array(items) => items.iter().all(safe_integers_only),
        Value::Object(map) => map.values().all(safe_integers_only),
        _ => true,
    }
}

/// The result of evaluating a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The claim is there and satisfies the constraint.
    Satisfied,
    /// The claim is there and does not.
    Violated,
    /// The claim is not in the claim set (not issued, or not disclosed).
    Absent,
}

fn as_f64(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// JSON equality that compares numbers by value (`3` equals `3.0`), which matters because
/// arbitrary-precision numbers keep their text.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => as_f64(a) == as_f64(b),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => as_f64(a)?.partial_cmp(&as_f64(b)?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl FromStr for Constraint {
    type Err = ParseConstraintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let (claim, rest) = text
            .split_once(char::is_whitespace)
            .ok_or_else(|| ParseConstraintError::Shape(s.to_owned()))?;
        let rest = rest.trim_start();
        let (op, value) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| ParseConstraintError::Shape(s.to_owned()))?;
        let op = match op {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "in" => Op::In,
            other => return Err(ParseConstraintError::Op(other.to_owned())),
        };
        let value: Value = serde_json::from_str(value.trim())
            .map_err(|_| ParseConstraintError::Value(value.trim().to_owned()))?;
        let constraint = Self {
            claim: claim.to_owned(),
            op,
            value,
        };
        constraint.check()?;
        Ok(constraint)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.claim, self.op.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_every_operator() {
        for (text, op) in [
            ("a == 1", Op::Eq),
            ("a != \"x\"", Op::Ne),
            ("a < 1", Op::Lt),
            ("a <= 1", Op::Le),
            ("a > 1", Op::Gt),
            ("a >= 1", Op::Ge),
            ("a in [1, 2]", Op::In),
        ] {
            assert_eq!(text.parse::<Constraint>().unwrap().op, op, "{text}");
        }
    }

    #[test]
    fn refuses_malformed_constraints() {
        assert!(matches!(
            "clearance".parse::<Constraint>(),
            Err(ParseConstraintError::Shape(_))
        ));
        assert!(matches!(
            "clearance =~ 3".parse::<Constraint>(),
            Err(ParseConstraintError::Op(_))
        ));
        assert!(matches!(
            "clearance <= three".parse::<Constraint>(),
            Err(ParseConstraintError::Value(_))
        ));
        assert!(matches!(
            "jurisdiction in \"310000\"".parse::<Constraint>(),
            Err(ParseConstraintError::Mismatch { .. })
        ));
        assert!(matches!(
            "a-b == 1".parse::<Constraint>(),
            Err(ParseConstraintError::Claim(_))
        ));
        for text in [
            "clearance <= 3.5",
            "clearance <= 1e400",
            "level in [1, 9007199254740993]",
        ] {
            assert!(
                matches!(
                    text.parse::<Constraint>(),
                    Err(ParseConstraintError::Value(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn evaluates_against_claims() {
        let claims =
            json!({"clearance": 3, "jurisdiction": "310000", "address": {"region": "310104"}});
        let check = |text: &str| text.parse::<Constraint>().unwrap().evaluate(&claims);
        assert_eq!(check("clearance <= 3"), Outcome::Satisfied);
        assert_eq!(check("clearance < 3"), Outcome::Violated);
        assert_eq!(check(r#"jurisdiction in ["310000"]"#), Outcome::Satisfied);
        assert_eq!(check(r#"jurisdiction in ["320000"]"#), Outcome::Violated);
        assert_eq!(check(r#"address.region == "310104""#), Outcome::Satisfied);
        assert_eq!(check("missing == 1"), Outcome::Absent);
        assert_eq!(check(r#"clearance < "3""#), Outcome::Violated);
        // Claim values may be written as floats; they compare by value.
        let as_float = json!({"clearance": 3.0});
        let c: Constraint = "clearance == 3".parse().unwrap();
        assert_eq!(c.evaluate(&as_float), Outcome::Satisfied);
    }

    #[test]
    fn display_round_trips() {
        let c: Constraint = r#"jurisdiction in ["310000"]"#.parse().unwrap();
        assert_eq!(c.to_string().parse::<Constraint>().unwrap(), c);
    }
}
