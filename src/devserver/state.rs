//! The cluster state of the test server: Raft index, KV store with locks, sessions with TTL
//! and lock-delay, agent services and TTL checks. Pure data and rules, no HTTP; behaviour per
//! spec consul-http-api.md §4–§6.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Longest lock-delay Consul applies.
pub const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);

/// One KV entry as the test server stores it (the client side of the wire is
/// `consul::coordination::KvEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKv {
    pub value: Option<Vec<u8>>,
    pub flags: u64,
    pub lock_index: u64,
    pub session: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// What happens to held keys when a session is invalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Release,
    Delete,
}

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub name: String,
    pub node: String,
    pub lock_delay: Duration,
    pub behavior: Behavior,
    pub ttl: Option<Duration>,
    pub node_checks: Vec<String>,
    pub create_index: u64,
    /// When the server invalidates it without a renewal (2 × TTL, as Consul's multiplier).
    pub expires_at: Option<Instant>,
}

pub use crate::consul::CheckStatus;

/// A TTL check.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub name: String,
    pub service_id: String,
    pub ttl: Duration,
    pub status: CheckStatus,
    pub output: String,
    pub deregister_after: Option<Duration>,
    pub last_update: Instant,
    pub critical_since: Option<Instant>,
}

impl Check {
    /// Status with TTL expiry applied: a check not updated within its TTL is critical.
    pub fn effective_status(&self, now: Instant) -> CheckStatus {
        if now.duration_since(self.last_update) > self.ttl {
            CheckStatus::Critical
        } else {
            self.status
        }
    }
}

/// An agent service.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub port: u64,
}

/// The whole mutable state.
#[derive(Debug, Default)]
pub struct Cluster {
    pub index: u64,
    /// Highest index of any KV change, deletions included (`X-Consul-Index` of KV listings).
    pub kv_index: u64,
    pub kv: BTreeMap<String, StoredKv>,
    pub sessions: HashMap<String, Session>,
    pub lock_delays: HashMap<String, Instant>,
    pub services: BTreeMap<String, Service>,
    pub checks: BTreeMap<String, Check>,
}

/// Outcome of a KV write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvWrite {
    Done(bool),
    /// 500 with this text.
    Error(String),
}

impl Cluster {
    /// A fresh state starting at `index`.
    pub fn new(index: u64) -> Self {
        Cluster {
            index: index.max(1),
            kv_index: 1,
            ..Default::default()
        }
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// `PUT /v1/kv/<key>` with at most one of `acquire`/`release`/`cas` (spec §5.2).
    pub fn kv_put(
        &mut self,
        key: &str,
        value: Vec<u8>,
        flags: Option<u64>,
        op: KvOp,
        now: Instant,
    ) -> KvWrite {
        let existing = self.kv.get(key).cloned();
        match &op {
            KvOp::Acquire(sid) => {
                if sid.is_empty() {
                    return KvWrite::Error("missing session".into());
                }
                if !self.sessions.contains_key(sid) {
                    return KvWrite::Error(format!("invalid session {sid:?}"));
                }
                if self.lock_delays.get(key).is_some_and(|until| *until > now) {
                    return KvWrite::Done(false);
                }
                if let Some(e) = &existing {
                    if e.session.as_deref().is_some_and(|s| s != sid) {
                        return KvWrite::Done(false);
                    }
                }
            }
            KvOp::Release(sid) => {
                if existing.as_ref().and_then(|e| e.session.as_deref()) != Some(sid.as_str()) {
                    return KvWrite::Done(false);
                }
            }
            KvOp::Cas(idx) => {
                let current = existing.as_ref().map_or(0, |e| e.modify_index);
                if *idx != current {
                    return KvWrite::Done(false);
                }
            }
            KvOp::Set => {}
        }
        let index = self.bump();
        let value = (!value.is_empty()).then_some(value);
        let entry = match (existing, &op) {
            (None, op) => StoredKv {
                value,
                flags: flags.unwrap_or(0),
                lock_index: u64::from(matches!(op, KvOp::Acquire(_))),
                session: match op {
                    KvOp::Acquire(s) => Some(s.clone()),
                    _ => None,
                },
                create_index: index,
                modify_index: index,
            },
            (Some(mut e), op) => {
                e.value = value;
                if let Some(f) = flags {
                    e.flags = f;
                }
                match op {
                    KvOp::Acquire(s) if e.session.is_none() => {
                        e.lock_index += 1;
                        e.session = Some(s.clone());
                    }
                    KvOp::Release(_) => e.session = None,
                    _ => {}
                }
                e.modify_index = index;
                e
            }
        };
        self.kv.insert(key.to_string(), entry);
        self.kv_index = index;
        KvWrite::Done(true)
    }

    /// `DELETE /v1/kv/<key>[?recurse][?cas]`.
    pub fn kv_delete(&mut self, key: &str, recurse: bool, cas: Option<u64>) -> bool {
        if let Some(c) = cas {
            if self.kv.get(key).map(|e| e.modify_index) != Some(c) {
                return false;
            }
        }
        let keys: Vec<String> = if recurse {
            self.kv
                .range(key.to_string()..)
                .take_while(|(k, _)| k.starts_with(key))
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            vec![key.to_string()]
        };
        let mut any = false;
        for k in keys {
            any |= self.kv.remove(&k).is_some();
        }
        if any {
            self.kv_index = self.bump();
        }
        true
    }

    /// Creates a session; returns its ID or Consul's error text.
    pub fn session_create(&mut self, mut s: Session, now: Instant) -> String {
        s.create_index = self.bump();
        s.expires_at = s.ttl.map(|t| now + 2 * t);
        let id = s.id.clone();
        self.sessions.insert(id.clone(), s);
        id
    }

    /// Renews a TTL session; `None` if it does not exist (any more).
    pub fn session_renew(&mut self, id: &str, now: Instant) -> Option<Session> {
        let s = self.sessions.get_mut(id)?;
        s.expires_at = s.ttl.map(|t| now + 2 * t);
        Some(s.clone())
    }

    /// Destroys or expires a session: held keys are released or deleted per its behaviour, and
    /// the lock-delay starts for them. Returns whether it existed.
    pub fn session_invalidate(&mut self, id: &str, now: Instant) -> bool {
        let Some(s) = self.sessions.remove(id) else {
            return false;
        };
        let held: Vec<String> = self
            .kv
            .iter()
            .filter(|(_, e)| e.session.as_deref() == Some(id))
            .map(|(k, _)| k.clone())
            .collect();
        let index = self.bump();
        for key in held {
            if !s.lock_delay.is_zero() {
                self.lock_delays
                    .insert(key.clone(), now + s.lock_delay.min(MAX_LOCK_DELAY));
            }
            match s.behavior {
                Behavior::Delete => {
                    self.kv.remove(&key);
                }
                Behavior::Release => {
                    if let Some(e) = self.kv.get_mut(&key) {
                        e.session = None;
                        e.modify_index = index;
                    }
                }
            }
            self.kv_index = index;
        }
        true
    }

    /// Expires sessions past their TTL and reaps services whose checks were critical longer than
    /// their `DeregisterCriticalServiceAfter`. Returns whether anything changed.
    pub fn reap(&mut self, now: Instant) -> bool {
        let expired: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.expires_at.is_some_and(|t| t <= now))
            .map(|s| s.id.clone())
            .collect();
        let mut changed = !expired.is_empty();
        for id in expired {
            self.session_invalidate(&id, now);
        }
        let mut dead_services = Vec::new();
        for c in self.checks.values_mut() {
            let critical = c.effective_status(now) == CheckStatus::Critical;
            match (critical, c.critical_since) {
                (true, None) => c.critical_since = Some(now),
                (false, Some(_)) => c.critical_since = None,
                _ => {}
            }
            if let (Some(since), Some(after)) = (c.critical_since, c.deregister_after) {
                if now.duration_since(since) >= after && !c.service_id.is_empty() {
                    dead_services.push(c.service_id.clone());
                }
            }
        }
        for sid in dead_services {
            changed |= self.service_deregister(&sid);
        }
        changed
    }

    /// Registers (or replaces) a service and its checks.
    pub fn service_register(&mut self, svc: Service, checks: Vec<Check>) {
        self.service_deregister(&svc.id);
        for c in checks {
            self.checks.insert(c.id.clone(), c);
        }
        self.services.insert(svc.id.clone(), svc);
        self.bump();
    }

    /// Removes a service and its checks; whether it existed.
    pub fn service_deregister(&mut self, id: &str) -> bool {
        let existed = self.services.remove(id).is_some();
        self.checks.retain(|_, c| c.service_id != id);
        if existed {
            self.bump();
        }
        existed
    }

    /// A TTL update (`pass`/`warn`/`fail`/`update`); `Err` with the 404 text for unknown IDs.
    pub fn check_update(
        &mut self,
        id: &str,
        status: CheckStatus,
        output: String,
        now: Instant,
    ) -> Result<(), String> {
        let Some(c) = self.checks.get_mut(id) else {
            return Err(format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            ));
        };
        c.status = status;
        c.output = output.chars().take(4096).collect();
        c.last_update = now;
        self.bump();
        Ok(())
    }

    /// JSON of a KV entry, in Consul's field order.
    pub fn kv_json(key: &str, e: &StoredKv) -> Value {
        use base64::Engine;
        let mut v = json!({
            "LockIndex": e.lock_index,
            "Key": key,
            "Flags": e.flags,
            "Value": e.value.as_ref().map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        });
        if let (Some(s), Some(map)) = (&e.session, v.as_object_mut()) {
            map.insert("Session".into(), json!(s));
        }
        if let Some(map) = v.as_object_mut() {
            map.insert("CreateIndex".into(), json!(e.create_index));
            map.insert("ModifyIndex".into(), json!(e.modify_index));
        }
        v
    }

    /// JSON of a session.
    pub fn session_json(s: &Session) -> Value {
        json!({
            "ID": s.id, "Name": s.name, "Node": s.node,
            "LockDelay": s.lock_delay.as_nanos() as u64,
            "Behavior": match s.behavior { Behavior::Release => "release", Behavior::Delete => "delete" },
            "TTL": s.ttl.map(|t| format!("{}s", t.as_secs_f64())).unwrap_or_default(),
            "NodeChecks": s.node_checks, "ServiceChecks": null,
            "CreateIndex": s.create_index, "ModifyIndex": s.create_index,
        })
    }
}

/// The conditional part of a KV write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    Set,
    Acquire(String),
    Release(String),
    Cas(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, ttl: Option<u64>, delay: u64) -> Session {
        Session {
            id: id.into(),
            name: "t".into(),
            node: "n".into(),
            lock_delay: Duration::from_secs(delay),
            behavior: Behavior::Release,
            ttl: ttl.map(Duration::from_secs),
            node_checks: vec![],
            create_index: 0,
            expires_at: None,
        }
    }

    #[test]
    fn lock_acquire_release_and_delay() {
        let t0 = Instant::now();
        let mut c = Cluster::new(10);
        c.session_create(session("a", Some(10), 15), t0);
        c.session_create(session("b", Some(10), 15), t0);
        assert_eq!(
            c.kv_put("lock", vec![], None, KvOp::Acquire("zzz".into()), t0),
            KvWrite::Error("invalid session \"zzz\"".into())
        );
        assert_eq!(
            c.kv_put("lock", vec![], Some(7), KvOp::Acquire("a".into()), t0),
            KvWrite::Done(true)
        );
        assert_eq!(c.kv["lock"].lock_index, 1);
        assert_eq!(
            c.kv_put("lock", vec![], None, KvOp::Acquire("b".into()), t0),
            KvWrite::Done(false)
        );
        assert_eq!(
            c.kv_put("lock", vec![], None, KvOp::Acquire("a".into()), t0),
            KvWrite::Done(true)
        );
        assert_eq!(
            c.kv["lock"].lock_index, 1,
            "re-acquire by the holder keeps LockIndex"
        );
        assert_eq!(
            c.kv_put("lock", vec![], None, KvOp::Release("b".into()), t0),
            KvWrite::Done(false)
        );
        // Invalidation releases with lock-delay: b cannot take it for 15 s.
        assert!(c.session_invalidate("a", t0));
        assert_eq!(c.kv["lock"].session, None);
        assert_eq!(
            c.kv_put(
                "lock",
                vec![],
                None,
                KvOp::Acquire("b".into()),
                t0 + Duration::from_secs(5)
            ),
            KvWrite::Done(false)
        );
        assert_eq!(
            c.kv_put(
                "lock",
                vec![],
                None,
                KvOp::Acquire("b".into()),
                t0 + Duration::from_secs(16)
            ),
            KvWrite::Done(true)
        );
        assert_eq!(c.kv["lock"].lock_index, 2);
    }

    #[test]
    fn ttl_expiry_at_twice_the_ttl() {
        let t0 = Instant::now();
        let mut c = Cluster::new(1);
        c.session_create(session("a", Some(10), 0), t0);
        c.kv_put("k", vec![1], None, KvOp::Acquire("a".into()), t0);
        assert!(!c.reap(t0 + Duration::from_secs(19)));
        assert!(c.reap(t0 + Duration::from_secs(20)));
        assert!(!c.sessions.contains_key("a"));
        assert_eq!(c.kv["k"].session, None);
        assert!(c.session_renew("a", t0).is_none());
    }

    #[test]
    fn cas_and_delete() {
        let t0 = Instant::now();
        let mut c = Cluster::new(1);
        assert_eq!(
            c.kv_put("x", b"1".to_vec(), None, KvOp::Cas(0), t0),
            KvWrite::Done(true)
        );
        assert_eq!(
            c.kv_put("x", b"2".to_vec(), None, KvOp::Cas(0), t0),
            KvWrite::Done(false)
        );
        let mi = c.kv["x"].modify_index;
        assert_eq!(
            c.kv_put("x", b"2".to_vec(), None, KvOp::Cas(mi), t0),
            KvWrite::Done(true)
        );
        c.kv_put("x/y", vec![], None, KvOp::Set, t0);
        assert_eq!(c.kv["x/y"].value, None, "empty body is stored as nil");
        assert!(c.kv_delete("x", true, None));
        assert!(c.kv.is_empty());
    }

    #[test]
    fn check_ttl_and_deregister_after() {
        let t0 = Instant::now();
        let mut c = Cluster::new(1);
        let svc = Service {
            id: "s".into(),
            name: "s".into(),
            tags: vec![],
            meta: BTreeMap::new(),
            port: 0,
        };
        let check = Check {
            id: "s:alive".into(),
            name: "alive".into(),
            service_id: "s".into(),
            ttl: Duration::from_secs(5),
            status: CheckStatus::Passing,
            output: String::new(),
            deregister_after: Some(Duration::from_secs(60)),
            last_update: t0,
            critical_since: None,
        };
        c.service_register(svc, vec![check]);
        assert_eq!(
            c.checks["s:alive"].effective_status(t0 + Duration::from_secs(6)),
            CheckStatus::Critical
        );
        assert!(c
            .check_update("nope", CheckStatus::Passing, String::new(), t0)
            .is_err());
        c.reap(t0 + Duration::from_secs(6));
        assert!(c.services.contains_key("s"));
        c.reap(t0 + Duration::from_secs(67));
        assert!(!c.services.contains_key("s"), "critical for 61 s > 60 s");
    }
}
