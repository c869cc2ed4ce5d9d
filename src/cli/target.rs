//! The choice of one backup shared by `kv-export` and `diff`: a local file, or a stored
//! backup chosen by `--latest`, `--key` or `--before` (the selection rules of `restore`).

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::config::{resolve_storage, FileArgs, StorageArgs};
use crate::restore::select::{parse_time, Selection};
use crate::restore::Source;

/// FILE | --latest | --key KEY | --before TIME.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupChoice {
    /// A local snapshot archive (`.snap`, or `.snap.age` with --age-identity). Without it,
    /// choose a stored backup with --latest, --key or --before.
    #[arg(conflicts_with_all = ["latest", "key", "before"])]
    pub file: Option<PathBuf>,
    /// The newest usable backup at the configured destinations (future-named, anomaly and
    /// safety backups are passed over, as restore does), of the datacenter given by
    /// --datacenter when several are stored there.
    #[arg(long, conflicts_with_all = ["key", "before"])]
    pub latest: bool,
    /// The backup with this key (or file name).
    #[arg(long, value_name = "KEY", conflicts_with = "before")]
    pub key: Option<String>,
    /// The newest usable backup taken at or before this time (RFC 3339, or 20261121T190000Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub before: Option<chrono::DateTime<chrono::Utc>>,
}

impl BackupChoice {
    /// The stored-backup selection, `None` for a local file. Errors: nothing chosen (usage).
    pub fn selection(&self, verb: &str) -> anyhow::Result<Option<Selection>> {
        Ok(match (&self.file, self.latest, &self.key, self.before) {
            (Some(_), ..) => None,
            (None, true, _, _) => Some(Selection::Latest),
            (None, _, Some(k), _) => Some(Selection::Key(k.clone())),
            (None, _, _, Some(t)) => Some(Selection::Before(t)),
            (None, false, None, None) => {
                return Err(super::usage(anyhow!(
                    "say what to {verb}: a FILE, or --latest, --key KEY or --before TIME"
                )))
            }
        })
    }
}

/// The source `sel` names at the configured destinations (which must exist), or the local
/// `file`.
pub async fn source_of(
    file: Option<&Path>,
    sel: Option<&Selection>,
    storage: &StorageArgs,
    files: &FileArgs,
    datacenter: Option<&str>,
) -> anyhow::Result<Source> {
    match (file, sel) {
        (Some(f), _) => Ok(Source::File(f.to_path_buf())),
        (None, Some(sel)) => {
            let env = |k: &str| std::env::var(k).ok();
            let cfg = crate::config::load_files(files).map_err(super::usage)?;
            let stores = resolve_storage(storage, &cfg, &env)?
                .existing_stores()
                .await?;
            let (i, backup) = super::restore::choose_backup(&stores, sel, datacenter).await?;
            Ok(Source::Stored {
                store: Box::new(stores[i].clone()),
                backup: Box::new(backup),
            })
        }
        (None, None) => Err(super::usage(anyhow!("nothing chosen"))),
    }
}
