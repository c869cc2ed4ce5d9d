//! The one retry policy of the crate: exponential back-off with jitter, by `backon`. Every
//! retried call (the snapshot request before its first byte, webhook deliveries, service
//! registration, S3 deletes and read-backs) is bounded in attempts and in delay.

use std::time::Duration;

use backon::ExponentialBuilder;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First back-off delay; doubled each retry, plus a random jitter of up to the delay
    /// (so that agents that failed together do not retry together).
    pub base: Duration,
    /// Longest back-off delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries, from 1 s, at most 30 s apart.
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy of `retries` retries from `base`, at most `max` apart.
    pub const fn new(retries: u32, base: Duration, max: Duration) -> Self {
        RetryPolicy { retries, base, max }
    }

    /// The back-off for `backon`'s `Retryable::retry`.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_max_times(self.retries as usize)
            .with_jitter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn delays_grow_are_capped_jittered_and_bounded_in_number() {
        let p = RetryPolicy::new(5, Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<Duration> = p.backoff().build().collect();
        assert_eq!(delays.len(), 5, "{delays:?}");
        for (i, d) in delays.iter().enumerate() {
            let floor = (Duration::from_millis(100) * (1 << i)).min(Duration::from_millis(500));
            assert!(
                *d >= floor && *d <= floor * 2,
                "delay {i}: {d:?} (floor {floor:?})"
            );
        }
        assert_eq!(
            RetryPolicy::new(0, Duration::from_secs(1), Duration::from_secs(1))
                .backoff()
                .build()
                .count(),
            0
        );
    }
}
