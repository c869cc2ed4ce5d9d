//! The agent as a child process for daemon tests: logs captured to a file, signals by pid,
//! killed and reaped on drop.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct AgentProcess {
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl AgentProcess {
    /// Starts `consul-snapshot-agent agent <args>` with `env` (CONSUL_* of the outer
    /// environment removed).
    pub fn start(args: &[String], env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("agent.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CONSUL_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .arg("--log-level")
            .arg("debug")
            .arg("agent")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn agent");
        AgentProcess {
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// The service ID it registered under (from its start-up log line).
    pub fn service_id(&self) -> Option<String> {
        let log = self.log();
        let at = log.find("service_id=")? + "service_id=".len();
        Some(log[at..].split_whitespace().next()?.to_string())
    }

    /// SIGKILL: no clean-up at all.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        self.wait_exit(timeout)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 50 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
