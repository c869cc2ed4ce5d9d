//! Fault-matrix rows that need a fault in the middle of the storage interface, not on the
//! wire: the backup cycle (`run_cycle`, the agent's own code) runs in-process against the
//! Consul API test server and two local destinations, one of them wrapped in a
//! fault-injecting `Backend` (tests/support/faulty.rs). Each scenario asserts what is stored,
//! what is deleted and what is reported, and appends a row to the fault matrix table.

mod support;

use std::time::Duration;

use consul_snapshot_agent::agent::{run_cycle, CycleConfig, CycleOutcome};
use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::archive::TypePolicy;
use consul_snapshot_agent::consul::{ConsulArgs, ConsulClient, RetryPolicy};
use consul_snapshot_agent::devserver::{DevServerConfig, SnapshotSource};
use consul_snapshot_agent::retention::RetentionPolicy;
use consul_snapshot_agent::storage::{LocalStore, Store};
use support::faulty::{Call, Fault, Faulty, Rule};
use support::{record_fault_row, TestConsul};

/// The test server, a client for it, two destinations (the first wrapped in `rules`) and a
/// runtime.
struct Bench {
    /// Stopped when dropped (its own runtime); nothing else is started.
    _consul: TestConsul,
    client: ConsulClient,
    faulty: Faulty<LocalStore>,
    stores: Vec<Store>,
    dirs: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Bench {
    fn new(rules: Vec<Rule>) -> Self {
        let consul = TestConsul::start(DevServerConfig {
            snapshot: SnapshotSource::Synthetic(SynthSpec::with_state_size(64 << 10)),
            ..DevServerConfig::default()
        });
        let cfg = ConsulArgs {
            http_addr: Some(consul.url()),
            ..ConsulArgs::default()
        }
        .resolve(&|_| None)
        .expect("consul config");
        let client = ConsulClient::new(&cfg).expect("client");
        let dirs = tempfile::tempdir().expect("tmp");
        let faulty = Faulty::new(
            LocalStore::new(dirs.path().join("faulty")).expect("store"),
            rules,
        );
        let plain = LocalStore::new(dirs.path().join("plain")).expect("store");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Bench {
            _consul: consul,
            client,
            stores: vec![Store::new(faulty.clone()), Store::new(plain)],
            faulty,
            dirs,
            rt,
        }
    }

    /// One cycle with `retain`, in a new second (backup names have one-second resolution).
    fn cycle(&self, retain: u32, readback: bool) -> CycleOutcome {
        self.cycle_guarded(retain, readback, None)
    }

    /// [`Bench::cycle`] with the shrink guard set to `guard`.
    fn cycle_guarded(
        &self,
        retain: u32,
        readback: bool,
        guard: Option<consul_snapshot_agent::guard::GuardConfig>,
    ) -> CycleOutcome {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        std::thread::sleep(Duration::from_nanos(
            1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
        ));
        let cfg = CycleConfig {
            stale: false,
            retry: RetryPolicy::default(),
            datacenter: Some("dc1".into()),
            types: TypePolicy::Restorable,
            verify_readback: readback,
            retention: RetentionPolicy {
                retain: Some(retain),
                ..RetentionPolicy::default()
            },
            encryption: None,
            identities: Default::default(),
            // Off unless asked: these rows count the calls of the cycle's own steps; the
            // guard's listing and metadata reads have their own row (tests/shrink_guard.rs).
            guard,
            safety_snapshot: false,
        };
        self.rt
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(60),
                    run_cycle(&self.client, &self.stores, &cfg, None),
                )
                .await
            })
            .expect("cycle within 60 s")
            .expect("cycle reached storage")
    }

    /// Backup files (`.snap`) and leftovers (`.partial`) in one destination's directory.
    fn files(&self, which: &str) -> (usize, usize) {
        let mut snaps = 0;
        let mut partials = 0;
        for e in std::fs::read_dir(self.dirs.path().join(which)).expect("dir") {
            let name = e.expect("entry").file_name().to_string_lossy().to_string();
            if name.ends_with(".snap") {
                snaps += 1;
            } else if name.ends_with(".partial") {
                partials += 1;
            }
        }
        (snaps, partials)
    }
}

#[test]
fn a_failed_listing_after_the_upload_deletes_nothing_there_and_spares_the_other_destination() {
    // Cycle 3's listing at the faulty destination fails.
    let b = Bench::new(vec![Rule::nth(Call::List, 3, Fault::Fail)]);
    for _ in 0..2 {
        assert!(b.cycle(1, false).all_ok());
    }
    let out = b.cycle(1, false);
    let [faulty, plain] = &out.destinations[..] else {
        panic!("two destinations: {out:?}");
    };
    assert!(faulty.stored.is_ok(), "{faulty:?}");
    let err = match &faulty.retention {
        Some(Err(e)) => e.clone(),
        other => panic!("retention must have failed there: {other:?}"),
    };
    assert!(err.contains("injected List failure"), "{err}");
    assert!(matches!(plain.retention, Some(Ok(_))), "{plain:?}");
    assert!(!out.all_ok());
    assert_eq!(
        b.files("faulty"),
        (2, 0),
        "the new backup and the one before it"
    );
    assert_eq!(b.files("plain"), (1, 0));
    assert_eq!(
        b.faulty.calls(Call::Delete),
        1,
        "only cycle 2 deleted there"
    );
    record_fault_row(
        "listing fails at one of two destinations after its upload (retain 1)",
        "backup stored there, retention skipped there with the error, the other destination applies retention",
        &format!(
            "faulty: {} backups, retention error '{err}'; plain: {} backup",
            b.files("faulty").0,
            b.files("plain").0
        ),
    );
}

#[test]
fn a_failed_delete_is_reported_and_the_next_cycle_catches_up() {
    let b = Bench::new(vec![Rule::nth(Call::Delete, 1, Fault::Fail)]);
    assert!(b.cycle(1, false).all_ok());
    let out = b.cycle(1, false);
    let faulty = &out.destinations[0];
    assert!(faulty.stored.is_ok());
    assert!(
        matches!(&faulty.retention, Some(Err(e)) if e.contains("injected Delete failure")),
        "{faulty:?}"
    );
    assert_eq!(b.files("faulty"), (2, 0), "nothing lost, nothing deleted");
    let after_failure = b.files("faulty").0;
    let out = b.cycle(1, false);
    assert!(out.all_ok(), "{out:?}");
    assert_eq!(
        b.files("faulty"),
        (1, 0),
        "the next cycle deletes both old ones"
    );
    record_fault_row(
        "retention's delete fails (retain 1)",
        "reported as a retention failure, both backups kept; the next cycle applies retention",
        &format!(
            "{after_failure} backups after the failure, {} after the next cycle",
            b.files("faulty").0
        ),
    );
}

#[test]
fn a_failed_commit_at_one_destination_publishes_nothing_there_and_keeps_its_old_backups() {
    let b = Bench::new(vec![Rule::nth(Call::Commit, 2, Fault::Fail)]);
    assert!(b.cycle(1, false).all_ok());
    let out = b.cycle(1, false);
    let [faulty, plain] = &out.destinations[..] else {
        panic!("two destinations: {out:?}");
    };
    assert!(
        matches!(&faulty.stored, Err(e) if e.message.contains("injected Commit failure")),
        "{faulty:?}"
    );
    assert!(
        faulty.retention.is_none(),
        "no retention after a failed store"
    );
    assert!(plain.stored.is_ok() && matches!(plain.retention, Some(Ok(_))));
    assert_eq!(b.files("faulty"), (1, 0), "the old backup, no partial file");
    assert_eq!(b.faulty.calls(Call::List), 1, "cycle 2 never listed there");
    record_fault_row(
        "commit fails at one of two destinations",
        "nothing published there, no retention there, old backup kept; the other stores",
        &format!(
            "faulty: {:?} (snap, partial); plain stored {}",
            b.files("faulty"),
            plain.stored.is_ok()
        ),
    );
}

#[test]
fn a_read_back_cut_every_time_keeps_the_backup_and_skips_retention() {
    let b = Bench::new(vec![Rule::every(Call::Get, Fault::CutAfter(10_000))]);
    assert!(b.cycle(1, false).all_ok());
    let out = b.cycle(1, true);
    let faulty = &out.destinations[0];
    let err = faulty.stored.clone().expect_err("read-back must fail");
    assert!(
        err.message.contains("could not be completed") && err.message.contains("kept"),
        "{err}"
    );
    assert!(faulty.retention.is_none());
    assert_eq!(
        b.faulty.calls(Call::Get),
        3,
        "read three times before giving up"
    );
    assert_eq!(
        b.files("faulty"),
        (2, 0),
        "the new backup kept, the old one too"
    );
    assert!(out.destinations[1].stored.is_ok());
    record_fault_row(
        "read-back stream cut after 10 kB on every try (--verify-readback)",
        "3 tries, then reported; backup kept (it verified on upload), retention skipped",
        &format!(
            "{} reads; {} backups kept; '{err}'",
            b.faulty.calls(Call::Get),
            b.files("faulty").0
        ),
    );
}

#[test]
fn a_destination_that_times_out_is_skipped_for_the_rest_of_the_cycle() {
    // Every write to the faulty destination times out: no read-back, no retention listing and
    // no sweep there afterwards; the other destination stores and rotates as usual.
    let b = Bench::new(vec![Rule::every(Call::Write, Fault::TimeOut)]);
    let out = b.cycle(1, true);
    let [faulty, plain] = &out.destinations[..] else {
        panic!("two destinations: {out:?}");
    };
    let err = faulty.stored.as_ref().expect_err("the write timed out");
    assert!(err.message.contains("injected Write timeout"), "{err}");
    assert_eq!(
        err.kind,
        consul_snapshot_agent::storage::ErrorKind::Timeout,
        "the failure metric's error label"
    );
    assert!(faulty.retention.is_none(), "{faulty:?}");
    assert!(
        plain.stored.is_ok() && matches!(plain.retention, Some(Ok(_))),
        "{plain:?}"
    );
    assert_eq!(
        b.faulty.calls(Call::List),
        0,
        "no listing after the timeout"
    );
    assert_eq!(
        b.faulty.calls(Call::Get),
        0,
        "no read-back after the timeout"
    );
    assert_eq!(b.faulty.calls(Call::Sweep), 0, "no sweep after the timeout");
    assert_eq!(b.files("faulty"), (0, 0));

    // With the shrink guard on, a listing that times out before the snapshot skips the
    // upload, the retention and the sweep there.
    let b = Bench::new(vec![Rule::every(Call::List, Fault::TimeOut)]);
    let guard = consul_snapshot_agent::guard::GuardConfig::new(&[], None);
    assert!(guard.is_some(), "the guard's defaults are on");
    let out = b.cycle_guarded(1, false, guard);
    let [faulty, plain] = &out.destinations[..] else {
        panic!("two destinations: {out:?}");
    };
    let err = faulty.stored.as_ref().expect_err("skipped");
    assert!(
        err.message.contains("skipped this cycle")
            && err.message.contains("timed out")
            && err.kind == consul_snapshot_agent::storage::ErrorKind::Timeout,
        "{err}"
    );
    assert_eq!(
        b.faulty.calls(Call::List),
        1,
        "one listing, not one per step"
    );
    assert_eq!(b.faulty.calls(Call::Begin), 0, "no upload begun");
    assert_eq!(b.faulty.calls(Call::Sweep), 0, "no sweep");
    assert!(plain.stored.is_ok(), "{plain:?}");
    record_fault_row(
        "A destination times out (a write; then the guard's listing)",
        "its remaining steps are skipped this cycle (one timeout, not one per step); the other destination carries on",
        "write timeout: no read-back, listing or sweep there; listing timeout: no upload, retention or sweep there; plain stored",
    );
}

#[test]
fn a_failed_guard_listing_deletes_nothing_there_and_the_unjudged_backup_is_judged_later() {
    // The shrink guard's listing (the first List of cycle 3) fails at the faulty destination
    // while the other lists fine: retention deletes nothing at the faulty one.
    let guard = consul_snapshot_agent::guard::GuardConfig::new(&[], None);
    let b = Bench::new(vec![Rule::nth(Call::List, 5, Fault::Fail)]);
    for _ in 0..2 {
        let out = b.cycle_guarded(1, false, guard.clone());
        assert!(out.all_ok(), "{out:?}");
    }
    assert_eq!(b.faulty.calls(Call::List), 4, "guard + retention per cycle");
    let out = b.cycle_guarded(1, false, guard.clone());
    let [faulty, plain] = &out.destinations[..] else {
        panic!("two destinations: {out:?}");
    };
    assert!(faulty.stored.is_ok(), "{faulty:?}");
    let err = match &faulty.retention {
        Some(Err(e)) => e.clone(),
        other => panic!("retention must not have run there: {other:?}"),
    };
    assert!(err.contains("could not list"), "{err}");
    assert_eq!(b.faulty.calls(Call::List), 5, "no retention listing there");
    assert!(matches!(plain.retention, Some(Ok(_))), "{plain:?}");
    assert!(!out.unjudged, "the other destination gave a baseline");
    assert_eq!(b.files("faulty"), (2, 0), "nothing deleted there");
    assert_eq!(b.files("plain"), (1, 0));
}
