//! Carrying out a selective restore plan: transactions within Consul's limits, each write a
//! check-and-set; a transaction that rolls back on conflicts is resubmitted without them; a
//! value too large for a transaction is written alone. Every key ends in exactly one list of
//! [`Applied`], so a stop part-way says what was written and what was not.

use crate::consul::kv::{KvOp, TxnOutcome, MAX_TXN_BODY, MAX_TXN_OPS};
use crate::consul::ConsulClient;

use super::plan::Step;

/// Body bytes kept free in a transaction for the array brackets and headroom.
const BODY_MARGIN: usize = 1024;

/// Groups `ops` (by position) into transactions of at most `max_ops` operations and
/// `max_body` bytes of body; an operation too large for any transaction is returned apart,
/// to be written alone. Order is kept.
pub fn batches(ops: &[KvOp], max_ops: usize, max_body: usize) -> (Vec<Vec<usize>>, Vec<usize>) {
    let budget = max_body.saturating_sub(BODY_MARGIN);
    let (mut out, mut alone) = (Vec::new(), Vec::new());
    let (mut cur, mut size) = (Vec::new(), 0usize);
    for (i, op) in ops.iter().enumerate() {
        let len = op.body_len();
        if len > budget {
            alone.push(i);
            continue;
        }
        if cur.len() == max_ops || size + len > budget {
            out.push(std::mem::take(&mut cur));
            size = 0;
        }
        cur.push(i);
        size += len;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    (out, alone)
}

/// One request of a run: a transaction of operations, or one operation too large for any
/// transaction, written alone (by position in the operations).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Work {
    Txn(Vec<usize>),
    Alone(usize),
}

/// The requests that carry `ops`, in order: [`batches`], then the operations too large for
/// a transaction.
fn work(ops: &[KvOp]) -> Vec<Work> {
    let (groups, alone) = batches(ops, MAX_TXN_OPS, MAX_TXN_BODY);
    groups
        .into_iter()
        .map(Work::Txn)
        .chain(alone.into_iter().map(Work::Alone))
        .collect()
}

/// What became of every key of a plan.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Written (or deleted) as planned.
    pub written: Vec<String>,
    /// Not written: changed by someone else since the plan (Consul's reason).
    pub conflicts: Vec<(String, String)>,
    /// Not written because the run stopped first.
    pub not_written: Vec<String>,
    /// Sent in a transaction whose answer was lost: written or not, Consul knows.
    pub unknown: Vec<String>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

/// Keys the token may not write, per a probe that cannot write anything: every step as a
/// check-and-set at index `u64::MAX` with an empty value (no key is ever at that index), so
/// Consul's ACL check, which runs over all operations before any is applied, names the
/// denied ones and the transaction then fails on the first index check.
pub async fn denied_keys(
    client: &ConsulClient,
    steps: &[Step],
) -> Result<Vec<String>, crate::consul::ConsulError> {
    let probe: Vec<KvOp> = steps
        .iter()
        .map(|s| match s.action {
            super::plan::Action::Delete => KvOp::DeleteCas {
                key: s.key.clone(),
                index: u64::MAX,
            },
            _ => KvOp::Cas {
                key: s.key.clone(),
                value: Vec::new(),
                flags: 0,
                index: u64::MAX,
            },
        })
        .collect();
    let mut denied = Vec::new();
    for w in work(&probe) {
        // Probes carry no value, so only an absurdly long key is alone: probed by itself,
        // still as a transaction.
        let chunk: Vec<KvOp> = match w {
            Work::Txn(group) => group.iter().map(|&i| probe[i].clone()).collect(),
            Work::Alone(i) => vec![probe[i].clone()],
        };
        match client.txn(&chunk).await? {
            TxnOutcome::RolledBack(errors) => denied.extend(
                errors
                    .iter()
                    .filter(|e| e.is_permission_denied())
                    .filter_map(|e| chunk.get(e.op_index).map(|o| o.key().to_string())),
            ),
            TxnOutcome::Applied => {
                // Cannot happen (no key is at index u64::MAX); nothing was written either
                // way: every operation was a check-and-set that could not match.
            }
        }
    }
    Ok(denied)
}

/// Whether Consul refused a request outright (a 4xx answer: nothing of it was applied), as
/// opposed to a lost answer or a server error, after which the writes may or may not stand.
fn refused(e: &crate::consul::ConsulError) -> bool {
    use crate::consul::ConsulError as E;
    match e {
        E::Status { status, .. } => (400..500).contains(status),
        E::AclNotFound { .. } | E::PermissionDenied { .. } => true,
        _ => false,
    }
}

/// Applies `steps` (check-and-set, or unconditional with `force`), reporting progress to
/// `progress` (keys done so far). A failure that stops the run marks every key not yet
/// written as not written.
pub async fn apply(
    client: &ConsulClient,
    steps: &[Step],
    force: bool,
    progress: &dyn Fn(usize),
) -> Applied {
    let ops: Vec<KvOp> = steps.iter().map(|s| s.op(force)).collect();
    let mut out = Applied::default();
    let mut done = 0usize;
    let keys_of = |w: Work| match w {
        Work::Txn(group) => group,
        Work::Alone(i) => vec![i],
    };
    let mut it = work(&ops).into_iter();
    while let Some(w) = it.next() {
        let (n, next) = match w {
            Work::Alone(i) => (1, put_alone(client, &steps[i], force, &mut out).await),
            Work::Txn(group) => (
                group.len(),
                transact(client, &ops, steps, group, &mut out).await,
            ),
        };
        if let Next::Stop(why, mine) = next {
            out.stopped = Some(why);
            out.not_written.extend(
                mine.into_iter()
                    .chain(it.flat_map(keys_of))
                    .map(|i| steps[i].key.clone()),
            );
            return out;
        }
        done += n;
        progress(done);
    }
    out
}

/// What one unit of work says to the run.
enum Next {
    /// Go on with the next.
    Go,
    /// Stop, for this reason; these keys (indices into the steps) of the unit are not
    /// written, beyond what it recorded itself.
    Stop(String, Vec<usize>),
}

/// One key too large for a transaction: `PUT /v1/kv/K?cas=N&flags=F`.
async fn put_alone(client: &ConsulClient, s: &Step, force: bool, out: &mut Applied) -> Next {
    let index = (!force).then_some(s.index);
    match client.kv_put(&s.key, s.value.clone(), s.flags, index).await {
        Ok(true) => out.written.push(s.key.clone()),
        Ok(false) => out.conflicts.push((
            s.key.clone(),
            format!(
                "changed since the plan (its ModifyIndex is no longer {})",
                s.index
            ),
        )),
        Err(e) => {
            if refused(&e) {
                out.not_written.push(s.key.clone());
            } else {
                out.unknown.push(s.key.clone());
            }
            return Next::Stop(e.to_string(), Vec::new());
        }
    }
    Next::Go
}

/// One transaction of `group` (indices into `ops` and `steps`). A conflict (an operation
/// Consul names in its rollback) is reported and dropped and the rest resubmitted; each round
/// drops at least one operation, so there are at most `group.len() + 1` rounds. A denial, a
/// rollback naming nothing to drop, or a failed request stops the run.
async fn transact(
    client: &ConsulClient,
    ops: &[KvOp],
    steps: &[Step],
    group: Vec<usize>,
    out: &mut Applied,
) -> Next {
    let n = group.len();
    let mut pending = group;
    for round in 1.. {
        if pending.is_empty() {
            break;
        }
        let batch: Vec<KvOp> = pending.iter().map(|&i| ops[i].clone()).collect();
        match client.txn(&batch).await {
            Ok(TxnOutcome::Applied) => {
                out.written
                    .extend(pending.iter().map(|&i| steps[i].key.clone()));
                break;
            }
            Ok(TxnOutcome::RolledBack(errors)) => {
                let failed: Vec<(usize, String)> = errors
                    .iter()
                    .filter(|e| e.op_index < pending.len())
                    .map(|e| (e.op_index, e.what.clone()))
                    .collect();
                if let Some(e) = errors.iter().find(|e| e.is_permission_denied()) {
                    let key = batch.get(e.op_index).map(|o| o.key()).unwrap_or("?");
                    return Next::Stop(
                        format!("Consul refused a write: {} ({key})", e.what),
                        pending,
                    );
                }
                if failed.is_empty() || round > n {
                    return Next::Stop(
                        format!(
                            "Consul rolled back a transaction without naming an operation to drop: {errors:?}"
                        ),
                        pending,
                    );
                }
                for (pos, what) in &failed {
                    out.conflicts
                        .push((steps[pending[*pos]].key.clone(), what.clone()));
                }
                pending = pending
                    .into_iter()
                    .enumerate()
                    .filter(|(p, _)| !failed.iter().any(|(f, _)| f == p))
                    .map(|(_, i)| i)
                    .collect();
            }
            Err(e) => {
                let keys = pending.iter().map(|&i| steps[i].key.clone());
                if refused(&e) {
                    out.not_written.extend(keys);
                } else {
                    out.unknown.extend(keys);
                }
                return Next::Stop(e.to_string(), Vec::new());
            }
        }
    }
    Next::Go
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, len: usize) -> KvOp {
        KvOp::Set {
            key: key.into(),
            value: vec![b'x'; len],
            flags: 0,
        }
    }

    #[test]
    fn batches_keep_order_and_both_limits() {
        let ops: Vec<KvOp> = (0..130).map(|i| set(&format!("k{i}"), 1)).collect();
        let (b, alone) = batches(&ops, 64, 512 * 1024);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [64, 64, 2]);
        assert_eq!(b.concat(), (0..130).collect::<Vec<_>>());
        assert!(alone.is_empty());

        // 100 KiB values (136 KiB of base64 each): three per 512 KiB body.
        let ops: Vec<KvOp> = (0..7).map(|i| set(&format!("k{i}"), 100 * 1024)).collect();
        let (b, _) = batches(&ops, 64, 512 * 1024);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
        for group in &b {
            let body: usize = group.iter().map(|&i| ops[i].body_len()).sum();
            assert!(body + 2 <= 512 * 1024, "{body}");
        }
    }

    #[test]
    fn an_operation_larger_than_a_transaction_goes_alone() {
        let ops = vec![set("a", 1), set("big", 400 * 1024), set("c", 1)];
        let (b, alone) = batches(&ops, 64, 512 * 1024);
        assert_eq!(b, [vec![0, 2]]);
        assert_eq!(alone, [1]);
    }
}
