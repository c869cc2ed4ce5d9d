//! `--age-identity` for the commands that read archive files (`verify`, `inspect`): an
//! age-encrypted file is decrypted as it is read, a plain one read as it is.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use indicatif::ProgressBar;

use crate::crypto::{open_read, Identities};
use crate::storage::BackupMeta;

#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Encryption")]
pub struct IdentityArgs {
    /// Decrypt an age-encrypted backup (`.snap.age`) with this identity: an age identity file
    /// (from `age-keygen`) or an unencrypted OpenSSH private key; repeatable.
    #[arg(
        long = "age-identity",
        value_name = "FILE",
        env = "CONSUL_SNAPSHOT_AGE_IDENTITY"
    )]
    pub age_identities: Vec<PathBuf>,
}

/// Opens `path` for reading its plaintext archive, with a progress bar over the file's bytes
/// labelled `label`. The recipients named in errors come from the backup's metadata sidecar
/// (`<file>.meta.json`, as local storage writes it), when there is one.
pub fn open_archive(
    path: &Path,
    ids: &IdentityArgs,
    label: &str,
) -> anyhow::Result<(Box<dyn Read + Send>, Option<ProgressBar>)> {
    let ids = Identities::load(&ids.age_identities)?;
    let file = File::open(path)
        .map_err(|e| anyhow!("Error opening snapshot file {}: {e}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (reader, bar) = super::progress::wrap(file, len, label);
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(crate::storage::local::SIDECAR);
    let recipients = std::fs::read(&sidecar)
        .ok()
        .and_then(|b| serde_json::from_slice::<BackupMeta>(&b).ok())
        .and_then(|m| m.recipients)
        .unwrap_or_default();
    let reader = open_read(reader, &ids, &recipients)
        .map_err(|e| anyhow!("Error opening snapshot file {}: {e}", path.display()))?;
    Ok((reader, bar))
}
