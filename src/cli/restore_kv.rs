//! `restore --kv-prefix`: bring back the KV entries under some prefixes from a backup and
//! touch nothing else. Read the backup's entries (verified, one pass), plan against the live
//! subtree, show the plan, confirm, save the current values of the keys the plan touches,
//! then write with check-and-set transactions.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail};

use crate::archive::TypePolicy;
use crate::consul::ConsulClient;
use crate::crypto::Identities;
use crate::restore::kv::apply::{apply, denied_keys, Applied};
use crate::restore::kv::export::{ExportEntry, ExportWriter, KvSelect, Output};
use crate::restore::kv::plan::{plan, Action, Current, Plan, Wanted};
use crate::restore::{read_verified, Source};

/// The options of a selective restore.
pub struct KvRestore {
    pub prefixes: Vec<String>,
    pub delete_extra: bool,
    pub force: bool,
    pub save_current: Option<PathBuf>,
    pub dry_run: bool,
    pub yes: bool,
}

/// Unchanged keys listed by name in the plan; more are counted.
const UNCHANGED_SHOWN: usize = 20;

pub async fn run(
    opts: KvRestore,
    client: &ConsulClient,
    source: &Source,
    ids: &Arc<Identities>,
) -> anyhow::Result<ExitCode> {
    let (index, wanted) = backup_entries(&opts.prefixes, source, ids).await?;
    let live = live_subtree(client, &opts.prefixes).await?;
    let the_plan = plan(wanted, live, opts.delete_extra, opts.force);
    let mut out = std::io::stdout();
    let _ = write!(out, "{}", show_plan(&the_plan, &opts, source, index));
    let _ = out.flush();
    if opts.dry_run {
        let _ = writeln!(out, "Dry run: nothing written.");
        return Ok(ExitCode::SUCCESS);
    }
    if the_plan.steps.is_empty() {
        let _ = writeln!(
            out,
            "Nothing to write: the live keys already match the backup."
        );
        return Ok(ExitCode::SUCCESS);
    }
    let denied = denied_keys(client, &the_plan.steps)
        .await
        .map_err(|e| anyhow!("checking the token's KV permissions: {e}; nothing restored"))?;
    if !denied.is_empty() {
        bail!("{}", denial_message(&denied, &opts.prefixes));
    }
    if !opts.yes {
        super::confirm::confirm(&format!(
            "Write {} key(s) under {} in the live cluster?",
            the_plan.steps.len(),
            quoted(&opts.prefixes)
        ))?;
    }
    let saved = opts.save_current.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "consul-kv-before-restore-{}.json",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let created = save_current(&saved, &the_plan).map_err(|e| {
        anyhow!(
            "saving the current values to {}: {e}; nothing restored",
            saved.display()
        )
    })?;
    let _ = writeln!(out, "{}", undo_help(&saved, &created, &the_plan));
    let bar = super::progress::bar(None, "writing keys");
    let progress = |n: usize| {
        if let Some(b) = &bar {
            b.set_position(n as u64);
        }
    };
    let applied = apply(client, &the_plan.steps, opts.force, &progress).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let _ = write!(out, "{}", show_applied(&applied));
    Ok(
        if applied.stopped.is_some() || !applied.conflicts.is_empty() || !applied.unknown.is_empty()
        {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// The backup's KV entries under `prefixes`, read from `source` once it verified whole, and
/// the snapshot's Raft index.
///
/// # Errors
/// The archive does not verify, a prefix matches nothing (naming the nearest directories),
/// or a key is not UTF-8 (Consul's HTTP API cannot write it).
async fn backup_entries(
    prefixes: &[String],
    source: &Source,
    ids: &Arc<Identities>,
) -> anyhow::Result<(u64, Vec<Wanted>)> {
    let bytes: Vec<Vec<u8>> = prefixes.iter().map(|p| p.as_bytes().to_vec()).collect();
    let select = KvSelect::new(bytes, Output::Memory(Vec::new()));
    let (report, select) = read_verified(source, TypePolicy::AnyBelowFlag, ids, select)
        .await
        .map_err(|e| anyhow!("Error verifying snapshot {source}: {e}; nothing restored"))?;
    if let Some(e) = &select.error {
        bail!("reading the KV entries of {source}: {e}; nothing restored");
    }
    super::kv_export::check_prefixes(&select, "--kv-prefix")
        .map_err(|e| anyhow!("{e}; nothing restored"))?;
    let Output::Memory(entries) = select.output else {
        bail!("internal: the entries were not kept");
    };
    let mut wanted = Vec::with_capacity(entries.len());
    for e in entries {
        let key = String::from_utf8(e.key).map_err(|e| {
            anyhow!(
                "the backup has a key that is not UTF-8 ({:?}); Consul's HTTP API cannot write it; nothing restored",
                String::from_utf8_lossy(e.as_bytes())
            )
        })?;
        wanted.push(Wanted {
            key,
            flags: e.flags,
            value: e.value,
        });
    }
    Ok((report.meta.index, wanted))
}

/// The live keys under `prefixes` (`GET /v1/kv/P?recurse`), with their index and session.
async fn live_subtree(client: &ConsulClient, prefixes: &[String]) -> anyhow::Result<Vec<Current>> {
    let mut live = Vec::new();
    for p in prefixes {
        for e in client
            .kv_list(p)
            .await
            .map_err(|e| anyhow!("reading the live subtree {p:?}: {e}; nothing restored"))?
        {
            live.push(Current {
                value: e.value_bytes()?,
                key: e.key,
                flags: e.flags,
                modify_index: e.modify_index,
                session: e.session,
            });
        }
    }
    Ok(live)
}

fn quoted(prefixes: &[String]) -> String {
    prefixes
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plan for people: counts, then every key written or skipped, and some unchanged ones.
fn show_plan(p: &Plan, opts: &KvRestore, source: &Source, index: u64) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Selective restore of the KV entries under {} from {source} (index {index}); nothing else is touched.",
        quoted(&opts.prefixes)
    );
    let _ = writeln!(
        s,
        "Plan: {} to create, {} to update, {} to delete, {} unchanged, {} skipped (held by a session){}",
        p.count(Action::Create),
        p.count(Action::Update),
        p.count(Action::Delete),
        p.unchanged.len(),
        p.locked.len(),
        if opts.delete_extra {
            ""
        } else {
            "; live keys the backup lacks are kept (--delete-extra deletes them)"
        }
    );
    for step in &p.steps {
        let mark = match step.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        };
        let _ = writeln!(s, "  {mark:<9} {}", step.key);
    }
    for (key, session) in &p.locked {
        let _ = writeln!(
            s,
            "  skip      {key} (held by session {session}: a lock; --force writes it)"
        );
    }
    for key in p.unchanged.iter().take(UNCHANGED_SHOWN) {
        let _ = writeln!(s, "  unchanged {key}");
    }
    if p.unchanged.len() > UNCHANGED_SHOWN {
        let _ = writeln!(
            s,
            "  unchanged ... and {} more",
            p.unchanged.len() - UNCHANGED_SHOWN
        );
    }
    s
}

/// Writes the live values of every key the plan updates or deletes to `path` in
/// `kv-export` format (never replacing a file), and the keys it creates to `<path>.created`,
/// one per line. Returns the second file's path, if there are created keys.
fn save_current(path: &Path, p: &Plan) -> std::io::Result<Option<PathBuf>> {
    // Values may be secrets (Vault's data lives in KV): readable by the owner only, as the
    // spool and `kv-export -o` files are.
    let create_new = |p: &Path| {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(p)
    };
    let mut w = ExportWriter::new(std::io::BufWriter::new(create_new(path)?));
    for c in &p.replaced {
        w.entry(&ExportEntry::new(c.key.as_bytes(), c.flags, &c.value))?;
    }
    let f = w.finish()?.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    let created: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| s.action == Action::Create)
        .map(|s| s.key.as_str())
        .collect();
    if created.is_empty() {
        return Ok(None);
    }
    let mut list = path.as_os_str().to_owned();
    list.push(".created");
    let list = PathBuf::from(list);
    let mut f = create_new(&list)?;
    for k in created {
        writeln!(f, "{k}")?;
    }
    f.sync_all()?;
    Ok(Some(list))
}

/// How to put the touched keys back, printed before anything is written.
fn undo_help(saved: &Path, created: &Option<PathBuf>, p: &Plan) -> String {
    let mut s = format!(
        "The current values of the {} key(s) this restore updates or deletes are saved in {}.\nTo put things back:\n  consul kv import @{}",
        p.count(Action::Update) + p.count(Action::Delete),
        saved.display(),
        saved.display()
    );
    if let Some(list) = created {
        s.push_str(&format!(
            "\n  xargs -d '\\n' -n 1 consul kv delete < {}   # the {} key(s) this restore creates",
            list.display(),
            p.count(Action::Create)
        ));
    }
    s
}

/// What happened to every key.
fn show_applied(a: &Applied) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "Written: {} key(s).", a.written.len());
    if !a.conflicts.is_empty() {
        let _ = writeln!(
            s,
            "Not written, changed by someone else since the plan ({}; rerun to plan again, or --force to overwrite):",
            a.conflicts.len()
        );
        for (k, why) in &a.conflicts {
            let _ = writeln!(s, "  {k}: {why}");
        }
    }
    if let Some(why) = &a.stopped {
        let _ = writeln!(s, "Stopped: {why}");
    }
    if !a.unknown.is_empty() {
        let _ = writeln!(
            s,
            "Unknown (sent, but Consul's answer was lost; check them): {}",
            a.unknown.join(", ")
        );
    }
    if !a.not_written.is_empty() {
        let _ = writeln!(s, "Not written ({}):", a.not_written.len());
        for k in &a.not_written {
            let _ = writeln!(s, "  {k}");
        }
    }
    s
}

/// The error for keys the token may not write: which, and the rule that is missing.
fn denial_message(denied: &[String], prefixes: &[String]) -> String {
    let rules: std::collections::BTreeSet<String> = denied
        .iter()
        .map(|k| {
            let p = prefixes
                .iter()
                .filter(|p| k.starts_with(p.as_str()))
                .max_by_key(|p| p.len())
                .cloned()
                .unwrap_or_else(|| k.clone());
            format!("key_prefix {p:?} {{ policy = \"write\" }}")
        })
        .collect();
    let shown: Vec<&str> = denied.iter().take(10).map(String::as_str).collect();
    format!(
        "the ACL token may not write {} of the keys to restore ({}{}); nothing restored. The token needs: {}",
        denied.len(),
        shown.join(", "),
        if denied.len() > shown.len() { ", ..." } else { "" },
        rules.into_iter().collect::<Vec<_>>().join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_names_the_missing_rule_per_prefix() {
        let m = denial_message(
            &["app/a".into(), "app/web/b".into()],
            &["app/".into(), "app/web/".into()],
        );
        assert!(
            m.contains(r#"key_prefix "app/" { policy = "write" }"#),
            "{m}"
        );
        assert!(
            m.contains(r#"key_prefix "app/web/" { policy = "write" }"#),
            "{m}"
        );
        assert!(m.contains("nothing restored"), "{m}");
    }

    #[test]
    fn the_saved_file_holds_touched_keys_and_the_created_list_the_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("before.json");
        let live = vec![
            Current {
                key: "app/b".into(),
                flags: 3,
                value: b"live".to_vec(),
                modify_index: 9,
                session: None,
            },
            Current {
                key: "app/same".into(),
                flags: 0,
                value: b"x".to_vec(),
                modify_index: 10,
                session: None,
            },
        ];
        let p = plan(
            vec![
                Wanted {
                    key: "app/a".into(),
                    flags: 0,
                    value: b"1".to_vec(),
                },
                Wanted {
                    key: "app/b".into(),
                    flags: 0,
                    value: b"old".to_vec(),
                },
                Wanted {
                    key: "app/same".into(),
                    flags: 0,
                    value: b"x".to_vec(),
                },
            ],
            live.clone(),
            false,
            false,
        );
        let created = save_current(&path, &p).unwrap().unwrap();
        let saved: Vec<ExportEntry> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved, [ExportEntry::new(b"app/b", 3, b"live")]);
        assert_eq!(std::fs::read_to_string(&created).unwrap(), "app/a\n");
        // Owner-only, and never replaces a file.
        use std::os::unix::fs::PermissionsExt;
        for f in [&path, &created] {
            let mode = std::fs::metadata(f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", f.display());
        }
        assert!(save_current(&path, &p).is_err());
    }
}
