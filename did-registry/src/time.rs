//! Ledger times: unix milliseconds, shown as RFC 3339 UTC.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T01:02:03.456Z`.
pub(crate) fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or_else(String::new, |t| {
            t.to_rfc3339_opts(SecondsFormat::Millis, true)
        })
}

/// Parses an RFC 3339 time (fractional seconds accepted) to unix milliseconds; times with
/// sub-millisecond digits round down.
pub(crate) fn parse_time_ms(text: &str) -> Option<u64> {
    let time = DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(time.timestamp_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_seconds_are_accepted() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_time_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time_ms("1970-01-01T08:00:01+08:00"), Some(1000));
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(rfc3339(1500), "1970-01-01T00:00:01.500Z");
    }
}
