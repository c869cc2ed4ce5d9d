//! A storage backend wrapper that injects faults: it implements the agent's `Backend` trait
//! around any real backend (here a local directory), so the cycle, retention and read-back run
//! their real code against it. A rule fails the nth call of one kind, stalls it, or cuts the
//! stream it returns after some bytes. Calls are counted per kind, so tests can also assert
//! what was (not) called.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use consul_snapshot_agent::storage::{
    Backend, BackendUpload, BackupMeta, BackupName, ByteStream, StorageError, StoredBackup,
};
use futures_util::StreamExt;

/// The kinds of call a rule can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    List,
    Head,
    Get,
    Delete,
    SetMeta,
    Begin,
    Sweep,
    Write,
    Commit,
}

/// What happens to a targeted call.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The call fails (an I/O error naming the fault).
    Fail,
    /// The call waits this long first (a slow or hung backend), then proceeds.
    Stall(Duration),
    /// `Get` only: the stream ends with an error after this many bytes.
    CutAfter(usize),
    /// The call fails as a request that got no answer in time does: an error of kind
    /// `TimedOut` (what the backends make of their clients' timeouts).
    TimeOut,
}

/// Fault `fault` on calls of kind `call` numbered `from..=to` (1-based; `to` `usize::MAX` for
/// every later call).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub call: Call,
    pub from: usize,
    pub to: usize,
    pub fault: Fault,
}

impl Rule {
    /// The nth call of a kind only.
    pub fn nth(call: Call, n: usize, fault: Fault) -> Self {
        Rule {
            call,
            from: n,
            to: n,
            fault,
        }
    }

    /// Every call of a kind.
    pub fn every(call: Call, fault: Fault) -> Self {
        Rule {
            call,
            from: 1,
            to: usize::MAX,
            fault,
        }
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    counts: HashMap<Call, usize>,
}

/// The wrapper; clones share rules and counts.
#[derive(Clone)]
pub struct Faulty<B> {
    inner: Arc<B>,
    state: Arc<Mutex<State>>,
}

impl<B> Faulty<B> {
    pub fn new(inner: B, rules: Vec<Rule>) -> Self {
        Faulty {
            inner: Arc::new(inner),
            state: Arc::new(Mutex::new(State {
                rules,
                counts: HashMap::new(),
            })),
        }
    }

    /// How many calls of `call` were made.
    pub fn calls(&self, call: Call) -> usize {
        self.state
            .lock()
            .map(|s| s.counts.get(&call).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Counts a call and returns the fault that applies to it, if any.
    fn hit(&self, call: Call) -> Option<Fault> {
        let mut s = self.state.lock().ok()?;
        let n = {
            let c = s.counts.entry(call).or_insert(0);
            *c += 1;
            *c
        };
        s.rules
            .iter()
            .find(|r| r.call == call && (r.from..=r.to).contains(&n))
            .map(|r| r.fault)
    }

    /// Applies the fault of this call: `Err` for `Fail`, a sleep for `Stall`.
    async fn apply(&self, call: Call) -> Result<Option<Fault>, io::Error> {
        match self.hit(call) {
            Some(Fault::Fail) => Err(io::Error::other(format!("injected {call:?} failure"))),
            Some(Fault::TimeOut) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("injected {call:?} timeout"),
            )),
            Some(Fault::Stall(d)) => {
                tokio::time::sleep(d).await;
                Ok(None)
            }
            other => Ok(other),
        }
    }
}

fn storage_err(call: Call, e: io::Error) -> StorageError {
    StorageError::io(format!("{call:?}"), e)
}

impl<B: fmt::Display> fmt::Display for Faulty<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<B: fmt::Debug> fmt::Debug for Faulty<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({:?})", self.inner)
    }
}

#[async_trait]
impl<B: Backend + 'static> Backend for Faulty<B> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn list(&self) -> Result<Vec<StoredBackup>, StorageError> {
        self.apply(Call::List)
            .await
            .map_err(|e| storage_err(Call::List, e))?;
        self.inner.list().await
    }

    async fn head(&self, key: &str) -> Result<StoredBackup, StorageError> {
        self.apply(Call::Head)
            .await
            .map_err(|e| storage_err(Call::Head, e))?;
        self.inner.head(key).await
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        let fault = self
            .apply(Call::Get)
            .await
            .map_err(|e| storage_err(Call::Get, e))?;
        let body = self.inner.get(key).await?;
        Ok(match fault {
            Some(Fault::CutAfter(limit)) => cut(body, limit),
            _ => body,
        })
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        self.apply(Call::Delete)
            .await
            .map_err(|e| storage_err(Call::Delete, e))?;
        self.inner.delete(keys).await
    }

    async fn set_meta(&self, key: &str, meta: &BackupMeta) -> Result<(), StorageError> {
        self.apply(Call::SetMeta)
            .await
            .map_err(|e| storage_err(Call::SetMeta, e))?;
        self.inner.set_meta(key, meta).await
    }

    async fn begin(
        &self,
        name: &BackupName,
        pending: BackupMeta,
    ) -> Result<Box<dyn BackendUpload>, StorageError> {
        self.apply(Call::Begin)
            .await
            .map_err(|e| storage_err(Call::Begin, e))?;
        let inner = self.inner.begin(name, pending).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            faults: Faulty {
                inner: Arc::new(()),
                state: self.state.clone(),
            },
        }))
    }

    async fn sweep(&self, older_than: Duration) -> Result<usize, StorageError> {
        self.apply(Call::Sweep)
            .await
            .map_err(|e| storage_err(Call::Sweep, e))?;
        self.inner.sweep(older_than).await
    }
}

/// `body`, ending with an error (as a reset connection does) in place of the chunk that would
/// carry it past `limit` bytes.
fn cut(body: ByteStream, limit: usize) -> ByteStream {
    let mut sent = 0usize;
    body.map(move |item| {
        let chunk = item?;
        if sent + chunk.len() > limit {
            sent = limit;
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "injected cut",
            ));
        }
        sent += chunk.len();
        Ok(chunk)
    })
    .boxed()
}

/// An upload whose writes and commit obey the same rules.
struct FaultyUpload {
    inner: Box<dyn BackendUpload>,
    faults: Faulty<()>,
}

impl fmt::Debug for FaultyUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyUpload({:?})", self.inner)
    }
}

#[async_trait]
impl BackendUpload for FaultyUpload {
    async fn write(&mut self, chunk: &Bytes) -> Result<(), StorageError> {
        self.faults
            .apply(Call::Write)
            .await
            .map_err(|e| storage_err(Call::Write, e))?;
        self.inner.write(chunk).await
    }

    async fn commit(self: Box<Self>, meta: BackupMeta) -> Result<StoredBackup, StorageError> {
        if let Err(e) = self.faults.apply(Call::Commit).await {
            // A commit that fails publishes nothing: what was written is discarded.
            self.inner.abort().await;
            return Err(storage_err(Call::Commit, e));
        }
        self.inner.commit(meta).await
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}
