//! The agent: one backup cycle ([`cycle`]) — save from Consul, verify and inspect in the same
//! stream, store to every destination, apply retention per destination — and the daemon around
//! it ([`daemon`]): schedule, leader election ([`leader`]), registration ([`registration`]),
//! metrics and health ([`telemetry`]), scheduled restore drills ([`drill`]).

pub mod clock;
pub mod cycle;
pub mod daemon;
pub mod drill;
pub mod leader;
pub mod notify;
pub mod registration;
pub mod telemetry;

pub use cycle::{run_cycle, CycleConfig, CycleError, CycleOutcome, DestinationOutcome};
