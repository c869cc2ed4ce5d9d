//! A destination's clock, as its answers tell it: every HTTP answer of S3, GCS and Consul
//! carries a `Date` header (RFC 9110 §6.6.1). The last one seen, moved on by the monotonic
//! clock since, is an estimate of the server's time that does not depend on this host's wall
//! clock, which a resumed VM or an NTP step can put days off.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::units::parse_http_date;

/// A server's time and the monotonic instant it was seen at.
type Seen = (DateTime<Utc>, Instant);

/// The last `Date` a server sent, and when (by the monotonic clock) it arrived. Cloning
/// shares it.
#[derive(Debug, Clone, Default)]
pub struct ServerClock(Arc<Mutex<Option<Seen>>>);

impl ServerClock {
    /// Records a `Date` header value; values that do not parse are ignored.
    pub fn observe(&self, header: &str) {
        if let Some(t) = parse_http_date(header) {
            if let Ok(mut g) = self.0.lock() {
                *g = Some((t, Instant::now()));
            }
        }
    }

    /// The server's time now (the last `Date` plus the monotonic time since), or `None`
    /// before any answer carried one. One-second resolution, as the header's.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        let (t, at) = (*self.0.lock().ok()?)?;
        let since = chrono::Duration::from_std(at.elapsed()).ok()?;
        t.checked_add_signed(since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_parse_and_move_on_with_the_monotonic_clock() {
        assert_eq!(
            parse_http_date("Mon, 07 Dec 2026 08:41:47 GMT"),
            Utc.with_ymd_and_hms(2026, 12, 7, 8, 41, 47).single()
        );
        assert_eq!(parse_http_date("yesterday"), None);
        let c = ServerClock::default();
        assert_eq!(c.now(), None);
        c.observe("garbage");
        assert_eq!(c.now(), None);
        c.observe("Mon, 07 Dec 2026 08:41:47 GMT");
        let now = c.now().expect("observed");
        let base = Utc
            .with_ymd_and_hms(2026, 12, 7, 8, 41, 47)
            .single()
            .expect("t");
        assert!(
            now >= base && now < base + chrono::Duration::seconds(5),
            "{now}"
        );
    }
}
