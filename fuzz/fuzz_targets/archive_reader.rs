//! Any bytes into the archive reader: it must return, never panic, and never allocate by a
//! size read from the input. Seed the corpus with `../shared/fixtures/*.snap`.
#![no_main]

use consul_snapshot::{read_archive, InspectStats, KvOptions, ReadOptions, TypePolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut stats = InspectStats::new(Some(KvOptions::default()));
    let _ = read_archive(data, ReadOptions { types: TypePolicy::AnyBelowFlag }, &mut stats);
    let _ = read_archive(data, ReadOptions::default(), &mut ());
});
