//! Where the commands that read backups find them: the one "target" argument group
//! ([`TargetArgs`]: configuration files and storage flags) of `list`, `prune`, `restore`,
//! `drill`, `peers-json`, `kv-export` and `diff`, its loading code ([`Target`]), and the
//! choice of one backup ([`BackupChoice`]: a local file, or a stored backup chosen by
//! `--latest`, `--key` or `--before`, the selection rules of `restore`).

use std::path::PathBuf;

use anyhow::anyhow;

use crate::config::{
    load_files, resolve_consul, resolve_storage, FileArgs, FileConfig, StorageArgs,
};
use crate::consul::{ConsulArgs, ConsulConfig};
use crate::restore::select::{parse_time, Selection};
use crate::restore::Source;
use crate::storage::{Store, StoredBackup};

/// The configuration files and the storage flags: where backups are.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetArgs {
    /// `--config-file`, `--config-dir`.
    #[command(flatten)]
    pub files: FileArgs,
    /// `--local-path`, `--aws-*`, `--azure-blob-*`, `--gcs-*`.
    #[command(flatten)]
    pub storage: StorageArgs,
}

impl TargetArgs {
    /// Reads the configuration files, once per command.
    ///
    /// # Errors
    /// An unreadable or invalid file, as a usage error (exit 2).
    pub fn load(&self) -> anyhow::Result<Target<'_>> {
        Ok(Target {
            file: load_files(&self.files).map_err(super::usage)?,
            storage: &self.storage,
        })
    }
}

/// The configuration files read, with the storage flags: opens destinations and resolves the
/// Consul connection with the process environment as the layer between them.
pub struct Target<'a> {
    /// The files' configuration, for the command's other sections (retention, shrink guard,
    /// encryption).
    pub file: FileConfig,
    storage: &'a StorageArgs,
}

impl Target<'_> {
    /// The configured destinations, which must exist (a local directory is never created).
    ///
    /// # Errors
    /// Invalid storage settings, a missing local directory, a client that cannot be built.
    pub async fn stores(&self) -> anyhow::Result<Vec<Store>> {
        let env = |k: &str| std::env::var(k).ok();
        resolve_storage(self.storage, &self.file, &env)?
            .existing_stores()
            .await
    }

    /// The Consul connection `flags` (over `CONSUL_*` and the files) configure.
    ///
    /// # Errors
    /// A bad address, token file or TLS pair, as a usage error.
    pub fn consul(&self, flags: &ConsulArgs) -> anyhow::Result<ConsulConfig> {
        let env = |k: &str| std::env::var(k).ok();
        resolve_consul(flags, &self.file, &env).map_err(super::usage)
    }

    /// The backup `choice` names: the local file, or the stored backup at the configured
    /// destinations.
    ///
    /// # Errors
    /// Nothing chosen (usage), or as [`Target::stores`] and [`choose_backup`].
    pub async fn chosen(
        &self,
        choice: &BackupChoice,
        verb: &str,
        datacenter: Option<&str>,
    ) -> anyhow::Result<Source> {
        match (&choice.file, choice.selection(verb)?) {
            (Some(f), _) => Ok(Source::File(f.clone())),
            (None, Some(sel)) => stored(&self.stores().await?, &sel, datacenter).await,
            (None, None) => Err(super::usage(anyhow!("nothing chosen"))),
        }
    }
}

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

/// The stored backup `sel` names among `stores` (of `datacenter` when several are
/// stored), as a source to read.
///
/// # Errors
/// As [`choose_backup`].
pub async fn stored(
    stores: &[Store],
    sel: &Selection,
    datacenter: Option<&str>,
) -> anyhow::Result<Source> {
    let (i, backup) = choose_backup(stores, sel, datacenter).await?;
    Ok(Source::Stored {
        store: Box::new(stores[i].clone()),
        backup: Box::new(backup),
    })
}

/// The backup `sel` names across `stores`, and the index of the store holding it. `--latest`
/// and `--before` look at one datacenter's backups only: `datacenter` if given, else the only
/// one present; several and no choice is refused with the list.
pub async fn choose_backup(
    stores: &[Store],
    sel: &Selection,
    datacenter: Option<&str>,
) -> anyhow::Result<(usize, StoredBackup)> {
    let mut listed = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let backups = store
            .list()
            .await
            .map_err(|e| anyhow!("listing {}: {e}", store))?;
        listed.extend(backups.into_iter().map(|b| (i, b)));
    }
    let all: Vec<StoredBackup> = listed.iter().map(|(_, b)| b.clone()).collect();
    let dc = match sel {
        Selection::Key(_) => None,
        _ => crate::storage::choose_datacenter(&all, datacenter)
            .map_err(|e| super::usage(anyhow!("{e}")))?,
    };
    let candidates: Vec<(usize, StoredBackup)> = listed
        .into_iter()
        .filter(|(_, b)| dc.as_deref().is_none_or(|d| b.name.datacenter == d))
        .collect();
    let picked = crate::restore::pick(stores, candidates, sel).await;
    let skipped = match &picked {
        Ok(p) => &p.skipped,
        Err(s) => s,
    };
    for (key, why) in skipped {
        eprintln!("Passed over {key}: {why}; choose it with --key if it is the one.");
    }
    let p = picked.map_err(|_| {
        anyhow!(
            "no backup matches {sel}{} at {}",
            dc.as_deref()
                .map(|d| format!(" for datacenter {d}"))
                .unwrap_or_default(),
            stores
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok((p.store, p.backup))
}
