#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! * [`reader`]: [`read_archive`], one pass, bounded memory, every check Consul makes plus
//!   record checks ([`error`] names each failure);
//! * [`writer`]: [`write_archive`], Consul's exact layout; [`state`]: [`StateWriter`] and the
//!   push parser of state.bin ([`msgpack`], [`types`] for the record types);
//! * [`tar`], [`sums`], [`meta`]: the three layers of the archive;
//! * [`stats`], [`pretty`], [`gojson`]: `consul snapshot inspect` statistics and layouts;
//! * [`counts`]: records per kind;
//! * [`records`]: KV entries and catalog registrations decoded from record values;
//! * `synth` (feature `synth`): a deterministic synthetic state of any size.

pub mod counts;
pub mod error;
pub mod gojson;
pub mod meta;
pub mod msgpack;
pub mod pretty;
pub mod reader;
pub mod records;
pub mod state;
pub mod stats;
pub mod sums;
#[cfg(feature = "synth")]
pub mod synth;
pub mod tar;
pub mod types;
pub mod writer;

pub use counts::RecordCounts;
pub use error::{ArchiveError, GzipError, IntegrityError, RaftError, ReadError, StateError};
pub use meta::SnapshotMeta;
pub use reader::{read_archive, ArchiveReport, ReadOptions};
pub use records::{KvRecord, RecordError, Registration, ServiceInstance};
pub use state::{RecordInfo, RecordVisitor, StateParser, StateSummary, StateWriter};
pub use stats::{InspectReport, InspectStats, KvOptions};
pub use types::TypePolicy;
pub use writer::{archive_bytes, write_archive, SumsOrder, WriteOptions, Written};
