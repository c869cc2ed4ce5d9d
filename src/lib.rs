//! consul-snapshot-agent: takes, verifies, stores and restores HashiCorp Consul snapshots.
//!
//! # Architecture in one page
//!
//! **The pipeline, from GET to commit** ([`agent::run_cycle`], [`pipeline::stream_verified`]):
//!
//! ```text
//! GET /v1/snapshot ──► 256 KiB blocks ──┬──► FanOut ──► each destination's upload (write)
//!   (consul::get_snapshot,  (BLOCK)     │
//!    retried before the first byte)     └──► bounded queue ──► archive::read_archive
//!                                              (VERIFY_QUEUE)    inflate ‖ archive SHA-256 ‖
//!                                                                tar → SHA256SUMS, meta.json,
//!                                                                state.bin records
//! verified?  yes ──► every upload commits (local: fsync + rename; S3: the manifest, then
//!                    CompleteMultipartUpload, HEAD check) ──► optional read-back ──► retention
//!                    per destination
//!            no  ──► every upload aborts (temp file removed, AbortMultipartUpload): nothing
//!                    is visible, nothing is deleted
//! ```
//!
//! Around the pipeline, a cycle ([`agent::cycle`]) first lists every destination for the
//! shrink guard's baseline (a destination whose listing fails gets no retention that cycle,
//! and a snapshot stored with no baseline is marked unjudged), checks this host's clock
//! against an independent one ([`agent::clock`]: a destination's `Date`, else Consul's;
//! [`storage::clock`]) before naming the backup and before time-based retention, skips a
//! destination for the rest of the cycle once it timed out ([`storage::StorageError::Timeout`]),
//! and sweeps leftovers only after the store. Storage failures carry a kind
//! ([`storage::ErrorKind`]: not found, denied, timeout, transient, invalid), decided where the
//! error is made and kept through the pipeline to the failure metric's `error` label. A read-back deletes a backup only on proven
//! damage (bytes other than those recorded).
//!
//! The bytes are read once. The slowest of the source, the verifier and the destinations sets
//! the pace; memory is the queues' size, never the archive's. Restore runs the same pipeline
//! from a stored backup into a private temporary file, then streams that file to
//! `PUT /v1/snapshot`, re-hashing it on the way.
//!
//! **The storage interface** ([`storage::Backend`], one trait every backend implements;
//! [`storage::Store`] holds one): a destination lists its backups (complete or an error),
//! heads one (size, stored digest), opens one for reading, deletes, sweeps the leftovers of
//! interrupted uploads, and begins an upload ([`storage::BackendUpload`], the one upload
//! interface: write, commit with the final metadata, abort) whose `commit` is called only
//! after verification, with the metadata the store's sink ([`storage::Upload`]) built once,
//! and whose `abort` leaves nothing. Each backend implements both in its own module. The
//! read-back after a store and `restore`'s fetch apply the same checks through one function
//! ([`storage::verify::verify_stored`]). The cycle, retention,
//! `list`, `prune` and `restore` use nothing else, and the tests wrap a real backend in a
//! fault-injecting one. Naming ([`storage::naming`]) is the only way a key becomes a backup:
//! objects it does not parse are never listed nor deleted. Retention
//! ([`retention::plan_at`]) is a pure function over a listing of one datacenter's backups.
//!
//! **Threads.** The tokio runtime ([`cli`]: one worker per core, at least 2) drives the HTTP
//! source, the uploads (S3 parts in flight at most `concurrency`) and the coordination with
//! Consul (session renewal, lock monitor, registration heartbeat, metrics server). The archive
//! verifier runs on the blocking pool as two threads: the *inflater* (reads the compressed
//! bytes, hashes them, inflates) and the *parser* (tar, per-entry SHA-256, state.bin records),
//! exchanging a fixed number of 256 KiB buffers ([`archive::read_archive`]).
//!
//! # Modules
//!
//! The folders follow the pipeline:
//! * [`archive`]: the snapshot format, the crate `consul-snapshot` of this workspace
//!   (`crates/consul-snapshot`: pure, synchronous, bytes in, typed results out; no tokio,
//!   HTTP or cloud dependency, fuzzed on its own);
//! * [`consul`]: the Consul HTTP client (typed errors for Consul's documented answers, the
//!   auth-method login that renews its own token);
//! * [`pipeline`]: one pass from a source to a sink with verification alongside;
//! * [`storage`]: destinations that publish atomically, backup naming and metadata, each
//!   destination's clock;
//! * [`retention`]: which backups to keep, as a pure function;
//! * [`schedule`]: when to run next (interval, crontab(5), jitter), as a pure function;
//! * [`retry`]: the one retry policy (exponential back-off with jitter);
//! * [`agent`]: the backup cycle and the daemon around it (leader election, registration,
//!   telemetry, webhooks);
//! * [`restore`]: choose ([`restore::select`], pure: future-named, anomalous and safety
//!   backups passed over), fetch and verify into an unnamed file ([`restore::scratch`]), and
//!   push a backup back into Consul; selective KV recovery ([`restore::kv`]: select while
//!   streaming, plan (pure), check-and-set transactions), snapshot comparison
//!   ([`restore::diff`]: key-ordered spools merged), drills, `peers.json`, and the fleet
//!   summary of `list --summary` ([`restore::fleet`], pure: the newest usable backup per
//!   datacenter, as `--latest` chooses);
//! * `devserver` (cargo feature `dev`): the Consul API test server (a test double, not
//!   Consul);
//! * [`config`]: one typed struct per section, filled by defaults (written once,
//!   [`config::AgentOptions::defaults`]) < files < environment < flags, merged once into the
//!   tree `--print-config` prints, each section resolved next to its type
//!   ([`config::S3Options::resolve`]...);
//! * [`units`]: sizes and Go durations, parsed and printed (a leaf: the configuration, the
//!   Consul client and the backends read values through it);
//! * [`cli`]: the command line that composes them.

pub mod agent;
/// The snapshot format: the `consul-snapshot` crate (`crates/consul-snapshot`).
pub use consul_snapshot as archive;
pub mod cli;
pub mod config;
pub mod consul;
pub mod crypto;
#[cfg(feature = "dev")]
pub mod devserver;
pub mod guard;
pub mod pipeline;
pub mod restore;
pub mod retention;
pub mod retry;
pub mod schedule;
pub mod storage;
pub mod units;
