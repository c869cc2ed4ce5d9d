//! The tokio runtime for commands that do network I/O: two workers match the machines this
//! runs on, and the archive verifier runs on the blocking pool beside them.

use std::future::Future;

/// Runs `fut` to completion on a fresh multi-threaded runtime.
pub fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    Ok(rt.block_on(fut))
}
