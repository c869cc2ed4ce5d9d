//! Client-side encryption of backups with age (<https://age-encryption.org/v1>), through the
//! `age` crate, the library behind rage: no cryptography of our own.
//!
//! - [`keys`]: recipients (`age1...` X25519, `ssh-ed25519`, `ssh-rsa`) and identities (age
//!   identity files, unencrypted OpenSSH private keys), each with a fingerprint that is stored
//!   and shown instead of the key.
//! - [`seal`]: a pipeline sink that encrypts the verified plaintext on its way to the
//!   destinations, so only ciphertext is ever stored.
//! - [`open`]: readers and streams that pass a plain archive through and decrypt an age file,
//!   told apart by their first bytes (gzip's `1f 8b` vs age's `age-encryption.org/v1`).

pub mod keys;
pub mod open;
pub mod seal;

pub use keys::{Identities, KeyError, Recipients};
pub use open::{open_read, open_stream, OpenError, AGE_MAGIC};
pub use seal::{Envelope, Sealing};
