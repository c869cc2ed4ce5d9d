//! The agent: one backup cycle ([`cycle`]) — save from Consul, verify and inspect in the same
//! stream, store to every destination, apply retention per destination.

pub mod cycle;

pub use cycle::{run_cycle, CycleConfig, CycleError, CycleOutcome, DestinationOutcome};
