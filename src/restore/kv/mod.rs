//! Selective recovery of KV subtrees from a snapshot: select the entries while the archive
//! streams ([`export`]), plan the writes against the live cluster ([`plan`], pure), carry
//! them out with check-and-set transactions ([`apply`]).

pub mod apply;
pub mod export;
pub mod plan;
