//! consul-snapshot-agent: takes, verifies, stores and restores HashiCorp Consul snapshots.
//!
//! The folders follow the pipeline:
//! * [`archive`]: the snapshot format (pure, synchronous: bytes in, typed results out);
//! * [`consul`]: the Consul HTTP client;
//! * [`pipeline`]: one pass from a source to a sink with verification alongside;
//! * [`storage`]: destinations that publish atomically, backup naming and metadata;
//! * [`retention`]: which backups to keep, as a pure function;
//! * [`schedule`]: when to run next (interval, crontab(5), jitter), as a pure function;
//! * [`retry`]: the one retry policy (exponential back-off with jitter);
//! * [`agent`]: the backup cycle and the daemon around it (leader election, registration,
//!   telemetry, webhooks);
//! * [`restore`]: choose, fetch, verify and push a backup back into Consul;
//! * `devserver` (cargo feature `dev`): the Consul API test server (a test double, not
//!   Consul);
//! * [`config`]: defaults < files < environment < flags, resolved once;
//! * [`cli`]: the command line that composes them.

pub mod agent;
pub mod archive;
pub mod cli;
pub mod config;
pub mod consul;
#[cfg(feature = "dev")]
pub mod devserver;
pub mod pipeline;
pub mod restore;
pub mod retention;
pub mod retry;
pub mod schedule;
pub mod storage;
