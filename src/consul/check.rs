//! Health check statuses, as Consul's agent API spells them (`api/health.go`:
//! `HealthPassing`, `HealthWarning`, `HealthCritical`).

/// A check status: what `PUT /v1/agent/check/update/:id` accepts in `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Passing,
    /// Working, but something needs a look (the agent: a shrink-guard anomaly).
    Warning,
    Critical,
}

impl CheckStatus {
    /// Consul's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }

    /// From Consul's spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "passing" => Some(CheckStatus::Passing),
            "warning" => Some(CheckStatus::Warning),
            "critical" => Some(CheckStatus::Critical),
            _ => None,
        }
    }
}
