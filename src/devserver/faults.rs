//! Faults the test server injects, switchable while it runs (through [`super::DevServer`] or
//! `PUT /_testserver/faults` with this structure as JSON). All off by default.

use serde::{Deserialize, Serialize};

/// The fault switches. Byte offsets count bytes of the snapshot archive body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// No cluster leader: consistent reads and writes answer 500 `No cluster leader`;
    /// `?stale` reads still work; `/v1/status/leader` answers `""`.
    pub no_leader: bool,
    /// Every request answers 403 `Permission denied` whatever its token.
    pub forbidden: bool,
    /// `GET /v1/snapshot` answers 500 with this text before streaming.
    pub snapshot_error: Option<String>,
    /// Only the next N snapshot requests get `snapshot_error` (or a generic 500); then they work.
    pub snapshot_error_times: Option<u32>,
    /// The snapshot body ends cleanly after this many bytes (a 200 cut short, as when Consul's
    /// streaming fails: the client sees a normal end of a truncated archive).
    pub truncate_after: Option<u64>,
    /// The connection is dropped after this many bytes of the body.
    pub drop_after: Option<u64>,
    /// The byte at this offset is flipped (XOR 0x01).
    pub flip_byte_at: Option<u64>,
    /// The body is sent at this many bytes per second.
    pub rate_bytes_per_sec: Option<u64>,
    /// The body stops after this many bytes and the connection stays open, silent.
    pub stall_after: Option<u64>,
    /// Status of the `snapshot_error` answers (default 500; 429 and 503 are what an
    /// overloaded Consul or a proxy in front of it sends).
    pub snapshot_error_status: Option<u16>,
    /// The `snapshot_error` answer's body goes on with this many more bytes, streamed (an
    /// error page of any size); what the client pulls is counted.
    pub snapshot_error_padding: Option<u64>,
    /// `PUT /v1/snapshot` reads and verifies the whole body, then waits this long before
    /// answering (Consul answers a restore only once it has applied it).
    pub restore_delay_ms: Option<u64>,
    /// `PUT /v1/session/renew/...` accepts the request and never answers (a hung server).
    pub stall_session_renew: bool,
    /// A restore loses the KV entries under this prefix (a scratch cluster that does not
    /// restore faithfully, for drills to catch).
    pub restore_drop_kv_prefix: Option<String>,
}
