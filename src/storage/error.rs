//! Storage errors, typed at the module boundary: what failed ([`StorageError`]) and what kind
//! of failure it is ([`ErrorKind`]: not found, denied, timeout, transient, invalid), decided
//! from the error's type, status or I/O kind where it is made, never from its text.

use std::io;

/// The kind of a storage failure: the `error` label of the failure metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The object or directory is not there (404, ENOENT).
    NotFound,
    /// Credentials or a policy refused the request (401, 403, EACCES).
    Denied,
    /// No answer within the deadline.
    Timeout,
    /// The server or the network failed (5xx, 429, a reset connection, a full disk): may
    /// succeed later.
    Transient,
    /// The request, the settings or the server's answer is wrong (other 4xx, a malformed
    /// listing, bytes that do not verify): retrying the same will not help.
    Invalid,
}

impl ErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::NotFound,
        ErrorKind::Denied,
        ErrorKind::Timeout,
        ErrorKind::Transient,
        ErrorKind::Invalid,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Denied => "denied",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transient => "transient",
            ErrorKind::Invalid => "invalid",
        }
    }

    /// The kind of an HTTP error status.
    pub fn of_status(status: u16) -> Self {
        match status {
            401 | 403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            429 | 500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Invalid,
        }
    }

    /// The kind of an I/O error: the [`StorageError`] inside it when there is one
    /// ([`StorageError::into_io`]), else its I/O kind.
    pub fn of_io(e: &io::Error) -> Self {
        if let Some(s) = e.get_ref().and_then(|r| r.downcast_ref::<StorageError>()) {
            return s.kind();
        }
        match e.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => ErrorKind::Denied,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => ErrorKind::Invalid,
            _ => ErrorKind::Transient,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Storage failures. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage settings: {0}")]
    Config(String),
    /// The retention policy cannot be applied (it keeps nothing explicitly).
    #[error("{0}")]
    Policy(crate::retention::PolicyError),
    /// A listing that is complete but not to be trusted for deletions (it lacks what was just
    /// stored: eventual consistency, a wrong prefix). Nothing is deleted.
    #[error("the listing of {destination} cannot be trusted: {why}; retention skipped")]
    UntrustedListing { destination: String, why: String },
    #[error("no backup {0:?}")]
    NotFound(String),
    #[error("{0:?} is not a backup of this agent (its name does not match the naming scheme)")]
    NotOurs(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// An S3 request failed; `class` says how (from the answer's status or the transport).
    #[error("S3 {op} failed: {detail}")]
    S3 {
        op: String,
        detail: String,
        class: ErrorKind,
    },
    /// An object-store backend (`kind`: azure, gcs) failed; `class` says how.
    #[error("{kind} {op} failed: {detail}")]
    Object {
        kind: String,
        op: String,
        detail: String,
        class: ErrorKind,
    },
    /// A request got no answer within its deadline (`backend`: s3, azure, gcs). Recognised by
    /// the error's kind (the SDK's or the HTTP client's timeout), never by its text; a cycle
    /// skips the rest of its steps at a destination that timed out.
    #[error("{backend} {op} failed: {detail}")]
    Timeout {
        backend: String,
        op: String,
        detail: String,
    },
    /// An upload could not be published as a verified backup (a stored length other than
    /// what was verified, a completion that failed); `detail` also says what was cleaned up.
    #[error("{key}: {detail}")]
    Publish {
        key: String,
        detail: String,
        class: ErrorKind,
    },
    /// The stored bytes were read and are not what was verified: the backup is damaged.
    #[error("read-back of {key} failed: {detail}")]
    Readback { key: String, detail: String },
    /// The stored bytes could not be read back (after retries); nothing is known to be wrong.
    #[error("read-back of {key} could not be completed: {detail}")]
    ReadbackUnavailable { key: String, detail: String },
    #[error("backups of several datacenters are stored here ({}); choose one with --datacenter", .0.join(", "))]
    SeveralDatacenters(Vec<String>),
}

impl StorageError {
    /// An I/O error with what was being done.
    pub fn io(context: String, source: io::Error) -> Self {
        StorageError::Io { context, source }
    }

    /// Whether a request timed out (the destination did not answer in time).
    pub fn is_timeout(&self) -> bool {
        match self {
            StorageError::Timeout { .. } => true,
            StorageError::Io { source, .. } => source.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// What kind of failure this is: the `error` label of the failure metrics, and what an
    /// operator acts on (a denial is a policy to fix, a timeout a server to look at).
    pub fn kind(&self) -> ErrorKind {
        match self {
            StorageError::NotFound(_) => ErrorKind::NotFound,
            StorageError::Timeout { .. } => ErrorKind::Timeout,
            StorageError::S3 { class, .. }
            | StorageError::Object { class, .. }
            | StorageError::Publish { class, .. } => *class,
            StorageError::Io { source, .. } => ErrorKind::of_io(source),
            StorageError::ReadbackUnavailable { .. } => ErrorKind::Transient,
            StorageError::Config(_)
            | StorageError::Policy(_)
            | StorageError::UntrustedListing { .. }
            | StorageError::NotOurs(_)
            | StorageError::Readback { .. }
            | StorageError::SeveralDatacenters(_) => ErrorKind::Invalid,
        }
    }

    /// As an I/O error for the pipeline: the storage error itself is its inner error
    /// ([`ErrorKind::of_io`] finds it again), and a timeout keeps the I/O kind
    /// [`io::ErrorKind::TimedOut`].
    pub fn into_io(self) -> io::Error {
        let kind = if self.is_timeout() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::Other
        };
        io::Error::new(kind, self)
    }
}

/// Whether `e` or any error in its source chain is a timeout: an I/O error of kind
/// `TimedOut`, or an HTTP client's timeout. By kind, never by message text.
pub fn caused_by_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
            || err
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_statuses_io_kinds_and_the_error_inside() {
        assert_eq!(ErrorKind::of_status(403), ErrorKind::Denied);
        assert_eq!(ErrorKind::of_status(404), ErrorKind::NotFound);
        assert_eq!(ErrorKind::of_status(503), ErrorKind::Transient);
        assert_eq!(ErrorKind::of_status(400), ErrorKind::Invalid);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(ErrorKind::of_io(&denied), ErrorKind::Denied);
        // A storage error carried through the pipeline as an I/O error keeps its kind.
        let s3 = StorageError::S3 {
            op: "PutObject".into(),
            detail: "AccessDenied".into(),
            class: ErrorKind::Denied,
        };
        let io = s3.into_io();
        assert_eq!(io.kind(), io::ErrorKind::Other);
        assert_eq!(ErrorKind::of_io(&io), ErrorKind::Denied);
        let t = StorageError::Timeout {
            backend: "s3".into(),
            op: "UploadPart".into(),
            detail: "timed out".into(),
        }
        .into_io();
        assert_eq!(t.kind(), io::ErrorKind::TimedOut);
        assert_eq!(ErrorKind::of_io(&t), ErrorKind::Timeout);
    }
}
