//! Dates as HTTP writes them: the `Date` header of every answer (RFC 9110 §5.6.7, the
//! IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`).

use chrono::{DateTime, Utc};

/// Parses an HTTP date; `None` for anything else.
pub fn parse_http_date(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(v.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
