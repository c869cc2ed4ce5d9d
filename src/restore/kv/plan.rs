//! The plan of a selective KV restore (pure): which keys under the prefixes to create,
//! update or delete so that the live subtree matches the backup's, each write guarded by
//! the ModifyIndex read when planning.

use crate::consul::kv::KvOp;

/// A backup entry to bring back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub key: String,
    pub flags: u64,
    pub value: Vec<u8>,
}

/// A live entry under the prefixes, as read when planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub key: String,
    pub flags: u64,
    pub value: Vec<u8>,
    /// Its ModifyIndex: the check-and-set index of a write to it.
    pub modify_index: u64,
    /// The session holding it as a lock, if any.
    pub session: Option<String>,
}

/// What happens to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// In the backup, not live: written, the key must still not exist.
    Create,
    /// In both, value or flags differ: written, the key must still be at its index.
    Update,
    /// Live only (with `--delete-extra`): deleted, the key must still be at its index.
    Delete,
}

/// One write of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub key: String,
    /// The backup's value and flags (empty for a delete).
    pub value: Vec<u8>,
    pub flags: u64,
    /// The ModifyIndex the key must still have (0: it must not exist).
    pub index: u64,
}

impl Step {
    /// The transaction operation: check-and-set, or unconditional with `force`.
    pub fn op(&self, force: bool) -> KvOp {
        let key = self.key.clone();
        match (self.action, force) {
            (Action::Delete, false) => KvOp::DeleteCas {
                key,
                index: self.index,
            },
            (Action::Delete, true) => KvOp::Delete { key },
            (_, false) => KvOp::Cas {
                key,
                value: self.value.clone(),
                flags: self.flags,
                index: self.index,
            },
            (_, true) => KvOp::Set {
                key,
                value: self.value.clone(),
                flags: self.flags,
            },
        }
    }
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Writes, in key order.
    pub steps: Vec<Step>,
    /// Keys identical in the backup and live.
    pub unchanged: Vec<String>,
    /// Keys the plan would write but leaves alone: held by a live session (a lock), with the
    /// session ID. Written anyway with `force`.
    pub locked: Vec<(String, String)>,
    /// The live entries the steps update or delete, in key order: what is saved before the
    /// writes so that they can be put back.
    pub replaced: Vec<Current>,
}

impl Plan {
    /// Number of steps doing `action`.
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }
}

/// Plans the restore of `wanted` (the backup's entries under the prefixes) over `live` (the
/// live entries under the same prefixes). Both may come in any order and with repeats (two
/// overlapping prefixes). With `delete_extra`, live keys absent from the backup are deleted;
/// with `force`, keys held by a session are written too.
pub fn plan(
    mut wanted: Vec<Wanted>,
    mut live: Vec<Current>,
    delete_extra: bool,
    force: bool,
) -> Plan {
    wanted.sort_by(|a, b| a.key.cmp(&b.key));
    wanted.dedup_by(|a, b| a.key == b.key);
    live.sort_by(|a, b| a.key.cmp(&b.key));
    live.dedup_by(|a, b| a.key == b.key);
    let mut out = Plan::default();
    let (mut w, mut l) = (wanted.into_iter().peekable(), live.into_iter().peekable());
    loop {
        let order = match (w.peek(), l.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(a), Some(b)) => a.key.cmp(&b.key),
        };
        let (want, cur) = match order {
            std::cmp::Ordering::Less => (w.next(), None),
            std::cmp::Ordering::Greater => (None, l.next()),
            std::cmp::Ordering::Equal => (w.next(), l.next()),
        };
        let want_is_some = want.is_some();
        let step = match (want, cur) {
            (Some(want), None) => Step {
                action: Action::Create,
                key: want.key,
                value: want.value,
                flags: want.flags,
                index: 0,
            },
            (Some(want), Some(cur)) if want.value == cur.value && want.flags == cur.flags => {
                out.unchanged.push(want.key);
                continue;
            }
            // A write over a key held by a session (a lock) waits for --force.
            (_, Some(cur)) if cur.session.is_some() && !force && (want_is_some || delete_extra) => {
                out.locked.push((cur.key, cur.session.unwrap_or_default()));
                continue;
            }
            (Some(want), Some(cur)) => {
                let index = cur.modify_index;
                out.replaced.push(cur);
                Step {
                    action: Action::Update,
                    key: want.key,
                    value: want.value,
                    flags: want.flags,
                    index,
                }
            }
            (None, Some(cur)) if delete_extra => {
                let step = Step {
                    action: Action::Delete,
                    key: cur.key.clone(),
                    value: Vec::new(),
                    flags: 0,
                    index: cur.modify_index,
                };
                out.replaced.push(cur);
                step
            }
            _ => continue,
        };
        out.steps.push(step);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(key: &str, value: &str, flags: u64) -> Wanted {
        Wanted {
            key: key.into(),
            flags,
            value: value.into(),
        }
    }

    fn cur(key: &str, value: &str, flags: u64, index: u64, session: Option<&str>) -> Current {
        Current {
            key: key.into(),
            flags,
            value: value.into(),
            modify_index: index,
            session: session.map(str::to_string),
        }
    }

    fn summary(p: &Plan) -> Vec<(Action, &str, u64)> {
        p.steps
            .iter()
            .map(|s| (s.action, s.key.as_str(), s.index))
            .collect()
    }

    #[test]
    fn missing_keys_are_created_changed_ones_updated_at_their_index_and_equal_ones_left() {
        let p = plan(
            vec![
                want("app/a", "1", 0),
                want("app/b", "2", 0),
                want("app/c", "3", 5),
            ],
            vec![
                cur("app/b", "2", 0, 11, None),
                cur("app/c", "3", 0, 12, None),
            ],
            false,
            false,
        );
        assert_eq!(
            summary(&p),
            [(Action::Create, "app/a", 0), (Action::Update, "app/c", 12)]
        );
        assert_eq!(p.unchanged, ["app/b"]);
        assert_eq!(p.steps[1].flags, 5, "flags alone are a difference");
    }

    #[test]
    fn live_extras_are_deleted_only_when_asked() {
        let live = vec![cur("app/new", "x", 0, 20, None)];
        assert!(plan(vec![], live.clone(), false, false).steps.is_empty());
        let p = plan(vec![], live, true, false);
        assert_eq!(summary(&p), [(Action::Delete, "app/new", 20)]);
        assert_eq!(
            p.steps[0].op(false),
            KvOp::DeleteCas {
                key: "app/new".into(),
                index: 20
            }
        );
        assert_eq!(
            p.steps[0].op(true),
            KvOp::Delete {
                key: "app/new".into()
            }
        );
    }

    #[test]
    fn keys_held_by_a_session_are_skipped_unless_forced() {
        let live = vec![
            cur("app/lock", "held", 0, 30, Some("s1")),
            cur("app/other-lock", "x", 0, 31, Some("s2")),
        ];
        let wanted = vec![want("app/lock", "old", 0)];
        let p = plan(wanted.clone(), live.clone(), true, false);
        assert!(p.steps.is_empty());
        assert_eq!(
            p.locked,
            [
                ("app/lock".to_string(), "s1".to_string()),
                ("app/other-lock".to_string(), "s2".to_string())
            ]
        );
        let p = plan(wanted, live, true, true);
        assert_eq!(
            summary(&p),
            [
                (Action::Update, "app/lock", 30),
                (Action::Delete, "app/other-lock", 31)
            ]
        );
        assert!(matches!(p.steps[0].op(true), KvOp::Set { .. }));
    }

    #[test]
    fn overlapping_prefixes_plan_each_key_once() {
        let p = plan(
            vec![want("app/a", "1", 0), want("app/a", "1", 0)],
            vec![],
            false,
            false,
        );
        assert_eq!(summary(&p), [(Action::Create, "app/a", 0)]);
        assert_eq!(
            p.steps[0].op(false),
            KvOp::Cas {
                key: "app/a".into(),
                value: b"1".to_vec(),
                flags: 0,
                index: 0
            }
        );
    }
}
