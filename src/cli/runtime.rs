//! The tokio runtime for commands that do network I/O. Workers: one per core the process may
//! use (at least 2), or `CONSUL_SNAPSHOT_WORKERS`; the archive verifier runs on the blocking
//! pool beside them.

use std::future::Future;

/// Environment variable that overrides the number of runtime worker threads.
pub const WORKERS_ENV: &str = "CONSUL_SNAPSHOT_WORKERS";

/// Worker threads: `override_` if it is a positive number, else the available parallelism,
/// at least 2 (one can wait on Consul while the other drives the uploads).
pub fn workers(override_: Option<&str>, available: usize) -> usize {
    override_
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(available.max(2))
}

/// Runs `fut` to completion on a fresh multi-threaded runtime.
pub fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    let available = std::thread::available_parallelism().map_or(2, usize::from);
    let n = workers(std::env::var(WORKERS_ENV).ok().as_deref(), available);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    Ok(rt.block_on(fut))
}

#[cfg(test)]
mod tests {
    use super::workers;

    #[test]
    fn workers_follow_the_machine_unless_overridden() {
        assert_eq!(workers(None, 1), 2);
        assert_eq!(workers(None, 8), 8);
        assert_eq!(workers(Some("3"), 8), 3);
        assert_eq!(workers(Some("0"), 8), 8, "0 is not a thread count");
        assert_eq!(workers(Some("many"), 8), 8);
    }
}
