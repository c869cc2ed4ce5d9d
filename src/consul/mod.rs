//! Talking to Consul's HTTP API: configuration as the `consul` CLI reads it, the client, and
//! the snapshot endpoints.

pub mod check;
pub mod client;
pub mod config;
pub mod coordination;
pub mod kv;
pub mod secret;
pub mod snapshot;

pub use check::CheckStatus;
pub use client::{AgentSelf, ConsulClient, ConsulError};
pub use config::{ConsulArgs, ConsulConfig};
pub use secret::Secret;
pub use snapshot::{get_snapshot, put_snapshot, RetryPolicy, SnapshotDownload};
