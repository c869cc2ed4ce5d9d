//! Any bytes as state.bin, fed in two chunks split at the first byte's value: the push parser
//! must behave the same for every split and never panic.
#![no_main]

use consul_snapshot::{InspectStats, KvOptions, StateParser, TypePolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut whole = StateParser::new(TypePolicy::AnyBelowFlag);
    let mut stats = InspectStats::new(Some(KvOptions::default()));
    let a = whole.feed(data, &mut stats).and_then(|()| whole.finish());
    let mut parts = StateParser::new(TypePolicy::AnyBelowFlag);
    let b = parts
        .feed(&data[..split], &mut ())
        .and_then(|()| parts.feed(&data[split..], &mut ()))
        .and_then(|()| parts.finish());
    assert_eq!(a, b);
});
