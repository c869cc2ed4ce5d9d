//! Leader election through a Consul session lock (the recipe of Consul's `api/lock.go`, spec
//! consul-http-api.md §5.4): a TTL session renewed every TTL/2, a KV lock acquired with it,
//! standbys blocking on the key, and a monitor that declares leadership lost as soon as the key
//! shows another session (or none). A leader that cannot renew within 9/10 of the TTL fences
//! itself: it stops before Consul can expire the session (no earlier than one TTL after the
//! last renewal) and hand the lock over. Every call is bounded (see [`fence_after`]).

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::consul::coordination::LOCK_FLAG;
use crate::consul::{ConsulClient, ConsulError};

/// Longest blocking query the agent makes (below the client's read timeout).
const BLOCK_WAIT: Duration = Duration::from_secs(15);
/// Pause after a refused acquisition (lock-delay in force) or an error.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A live session and the token that fires when it is lost.
pub struct Session {
    pub id: String,
    pub ttl: Duration,
    /// Cancelled when the session is invalidated, cannot be renewed for a TTL, or is given up.
    pub lost: CancellationToken,
    renewer: JoinHandle<()>,
}

impl Session {
    /// Creates a session and starts renewing it.
    pub async fn create(
        client: &ConsulClient,
        name: &str,
        ttl: Duration,
        lock_delay: Duration,
    ) -> Result<Self, ConsulError> {
        let id = client.session_create(name, ttl, lock_delay).await?;
        let lost = CancellationToken::new();
        let renewer = tokio::spawn(renew_loop(client.clone(), id.clone(), ttl, lost.clone()));
        tracing::debug!(session = %id, ttl = ?ttl, "session created");
        Ok(Session {
            id,
            ttl,
            lost,
            renewer,
        })
    }

    /// Stops renewing and destroys the session (releasing any lock it holds).
    pub async fn destroy(self, client: &ConsulClient) {
        self.lost.cancel();
        self.renewer.abort();
        if let Err(e) = client.session_destroy(&self.id).await {
            tracing::warn!(session = %self.id, error = %e, "could not destroy the session; it will expire");
        }
    }
}

/// The leader fences itself this long after the last renewal Consul accepted, measured from
/// when that request was sent: Consul expires the session no earlier than a TTL after the
/// renewal it processed, so stepping down at 9/10 of it leaves a margin.
pub fn fence_after(ttl: Duration) -> Duration {
    ttl.mul_f64(0.9)
}

/// What the renewer does next, `since_ok` after the last renewal Consul accepted: wait this
/// long and renew, or (`None`) step down now. Renewals come every TTL/2; after a failed one
/// they are retried every TTL/10; and no wait runs past the fence, so a leader whose renewals
/// fail steps down at [`fence_after`], not at the next attempt after it. Pure.
pub fn next_renewal(ttl: Duration, since_ok: Duration, last_failed: bool) -> Option<Duration> {
    let left = fence_after(ttl)
        .checked_sub(since_ok)
        .filter(|d| !d.is_zero())?;
    let period = if last_failed { ttl / 10 } else { ttl / 2 };
    Some(period.min(left))
}

async fn renew_loop(client: ConsulClient, id: String, ttl: Duration, lost: CancellationToken) {
    let mut ttl = ttl;
    let mut last_ok = Instant::now();
    let mut failed = false;
    loop {
        let Some(wait) = next_renewal(ttl, last_ok.elapsed(), failed) else {
            tracing::warn!(session = %id, "no renewal within the session TTL: stepping down before Consul can hand the lock to another agent");
            lost.cancel();
            return;
        };
        tokio::select! {
            () = lost.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let sent = Instant::now();
        // A hung Consul must not keep us leader past the fence: bound the call by it.
        let left = fence_after(ttl)
            .saturating_sub(last_ok.elapsed())
            .max(Duration::from_millis(100));
        let result = match tokio::time::timeout(left, client.session_renew(&id)).await {
            Ok(r) => r,
            Err(_) => Err(ConsulError::Connect {
                addr: client.addr().to_string(),
                detail: format!("session renew got no answer within {left:?}"),
            }),
        };
        match result {
            Ok(Some(new_ttl)) => {
                last_ok = sent;
                failed = false;
                if let Some(t) = new_ttl.filter(|t| *t > ttl) {
                    ttl = t; // Consul may raise the TTL under load; adopt it.
                }
            }
            Ok(None) => {
                tracing::warn!(session = %id, "the session was invalidated");
                lost.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "session renewal failed");
                failed = true;
            }
        }
    }
}

/// Why waiting for the lock ended without it.
#[derive(Debug)]
pub enum AcquireEnd {
    /// `stop` was cancelled (shutdown) or the session was lost.
    Stopped,
}

/// Waits until `session` holds `key`: blocks on the key while another session holds it, then
/// acquires. `value` is stored in the key (who holds it, for operators). `on_held` sees the
/// holder's value each time the key is read held by another session.
pub async fn acquire(
    client: &ConsulClient,
    key: &str,
    session: &Session,
    value: &[u8],
    on_held: &(dyn Fn(&[u8]) + Sync),
    stop: &CancellationToken,
) -> Result<(), AcquireEnd> {
    let mut index = 0u64;
    let mut logged = false;
    loop {
        if stop.is_cancelled() || session.lost.is_cancelled() {
            return Err(AcquireEnd::Stopped);
        }
        let got = tokio::select! {
            () = stop.cancelled() => return Err(AcquireEnd::Stopped),
            () = session.lost.cancelled() => return Err(AcquireEnd::Stopped),
            r = client.kv_get(key, index, BLOCK_WAIT, false) => r,
        };
        let pause = match got {
            Ok((Some(entry), new_index))
                if entry.session.as_deref().is_some_and(|s| s != session.id) =>
            {
                if !logged {
                    tracing::info!("Waiting to obtain leadership...");
                    logged = true;
                }
                if let Some(v) = entry.value.as_deref().and_then(|v| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(v).ok()
                }) {
                    on_held(&v);
                }
                // Reset if the index went backwards (e.g. after a snapshot restore).
                index = if new_index < index { 0 } else { new_index };
                continue;
            }
            Ok((Some(entry), _)) if entry.flags != LOCK_FLAG && entry.session.is_none() => {
                tracing::error!(key, flags = entry.flags, "the lock key exists but is not a lock (Existing key does not match lock use); change lock_key or delete the key");
                Duration::from_secs(5)
            }
            Ok(_) => match client.kv_acquire(key, &session.id, value.to_vec()).await {
                Ok(true) => return Ok(()),
                Ok(false) => RETRY_PAUSE, // lock-delay, or someone was faster
                Err(e) => {
                    tracing::warn!(error = %e, "lock acquisition failed");
                    RETRY_PAUSE * 4
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "reading the lock key failed");
                index = 0;
                RETRY_PAUSE * 4
            }
        };
        tokio::select! {
            () = stop.cancelled() => return Err(AcquireEnd::Stopped),
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Watches `key` with consistent blocking queries; cancels `lost` as soon as the key is gone or
/// held by another session.
pub fn monitor(
    client: ConsulClient,
    key: String,
    session_id: String,
    lost: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut index = 0u64;
        loop {
            let r = tokio::select! {
                () = lost.cancelled() => return,
                r = client.kv_get(&key, index, BLOCK_WAIT, true) => r,
            };
            match r {
                Ok((entry, new_index)) => {
                    if entry.as_ref().and_then(|e| e.session.as_deref())
                        != Some(session_id.as_str())
                    {
                        tracing::warn!(key, "lost leadership: the lock is no longer ours");
                        lost.cancel();
                        return;
                    }
                    index = if new_index < index { 0 } else { new_index };
                }
                Err(e) => {
                    // The renewer fences on prolonged failure; keep watching.
                    tracing::debug!(error = %e, "lock monitor query failed");
                    tokio::select! {
                        () = lost.cancelled() => return,
                        () = tokio::time::sleep(RETRY_PAUSE * 2) => {}
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_renewals_step_down_at_the_fence_not_after_it() {
        let ttl = Duration::from_secs(10);
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // Healthy: every TTL/2.
        assert_eq!(next_renewal(ttl, s(0), false), Some(s(5)));
        // A renewal failed fast at 5 s: retried every TTL/10, never waiting past 9 s.
        assert_eq!(next_renewal(ttl, s(5), true), Some(s(1)));
        assert_eq!(next_renewal(ttl, ms(8_500), true), Some(ms(500)));
        // At the fence (0.9 x TTL): step down, whatever the last attempt did.
        assert_eq!(next_renewal(ttl, s(9), true), None);
        assert_eq!(next_renewal(ttl, s(9), false), None);
        assert_eq!(next_renewal(ttl, s(12), false), None);
        // Walk the loop with renewals failing at once: the step-down comes at 9 s.
        let mut t = s(0);
        let mut failed = false;
        let mut steps = 0;
        while let Some(w) = next_renewal(ttl, t, failed) {
            t += w;
            failed = true;
            steps += 1;
            assert!(steps < 100, "bounded");
        }
        assert_eq!(t, s(9));
    }
}
