//! Consul's snapshot archive (`.snap`), the format every path of the product streams through.
//!
//! Layout per Consul's `snapshot/archive.go` (spec `consul-snapshot-format.md`):
//! `gzip( tar( meta.json, state.bin, SHA256SUMS ) )`, with `state.bin` a msgpack record stream.
//! This module is synchronous and knows nothing of HTTP, storage or the CLI: bytes in
//! (`std::io::Read`), typed results out.
//!
//! * [`read_archive`]: one pass, bounded memory, every check Consul makes plus record checks.
//! * [`write_archive`]: Consul's exact layout; [`StateWriter`] for state.bin.
//! * [`InspectStats`], [`pretty`]: `consul snapshot inspect` statistics and layouts.

pub mod counts;
pub mod error;
pub mod gojson;
pub mod meta;
pub mod msgpack;
pub mod pretty;
pub mod reader;
pub mod state;
pub mod stats;
pub mod sums;
#[cfg(feature = "dev")]
pub mod synth;
pub mod tar;
pub mod types;
pub mod writer;

pub use counts::RecordCounts;
pub use error::{ArchiveError, GzipError, IntegrityError, RaftError, ReadError, StateError};
pub use meta::SnapshotMeta;
pub use reader::{read_archive, ArchiveReport, ReadOptions};
pub use state::{RecordInfo, RecordVisitor, StateParser, StateSummary, StateWriter};
pub use stats::{InspectReport, InspectStats, KvOptions};
pub use types::TypePolicy;
pub use writer::{archive_bytes, write_archive, SumsOrder, WriteOptions, Written};
