//! Logs through `tracing` to stderr: text by default, JSON with `--log-json`. Secrets never reach
//! a log line: they are wrapped in `Secret` (redacting `Debug`) and the token header is marked
//! sensitive for the HTTP layers.

use tracing_subscriber::EnvFilter;

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// Parses a level name as config files spell it (`INFO`, `debug`...).
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "err" | "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// Installs the global subscriber. `level` applies to every crate, dependencies included.
pub fn init(level: Level, json: bool) {
    let name = match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    let filter = EnvFilter::new(name);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
