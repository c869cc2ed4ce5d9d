//! consul-snapshot-agent: takes, verifies, stores and restores HashiCorp Consul snapshots.
//!
//! The folders follow the pipeline: [`archive`] is the snapshot format (pure, synchronous);
//! [`cli`] is the command line that composes it.

pub mod archive;
pub mod cli;
