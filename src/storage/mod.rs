//! Destinations for verified archives. Today: an atomically published local file. Object
//! storage and retention come with the storage backends.

pub mod atomic_file;

pub use atomic_file::AtomicFile;
