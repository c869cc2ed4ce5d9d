//! The agent's service in Consul's catalog: service `consul-snapshot` (configurable) with a TTL
//! check "Consul Snapshot Agent Alive" on every instance and, on the leader only, "Consul
//! Snapshot Agent Saving Snapshots" (the check names of Consul Enterprise's snapshot agent).

use std::time::Duration;

use serde_json::json;

pub use crate::consul::CheckStatus;
use crate::consul::{ConsulClient, ConsulError};
use crate::units::duration::format_go_duration;

/// TTL of the alive check; it is passed every third of it.
pub const ALIVE_TTL: Duration = Duration::from_secs(30);

/// One agent instance's registration.
#[derive(Debug, Clone)]
pub struct Registration {
    pub service: String,
    pub service_id: String,
    pub deregister_after: Duration,
}

impl Registration {
    pub fn alive_check(&self) -> String {
        format!("{}:alive", self.service_id)
    }

    pub fn saving_check(&self) -> String {
        format!("{}:saving", self.service_id)
    }

    /// Registers (or re-registers) the service with its alive check, passing.
    pub async fn register(&self, client: &ConsulClient) -> Result<(), ConsulError> {
        client
            .service_register(&json!({
                "ID": self.service_id,
                "Name": self.service,
                "Tags": [],
                "Meta": {"version": env!("CARGO_PKG_VERSION")},
                "Check": {
                    "CheckID": self.alive_check(),
                    "Name": "Consul Snapshot Agent Alive",
                    "TTL": format_go_duration(ALIVE_TTL),
                    "Status": "passing",
                    "DeregisterCriticalServiceAfter": format_go_duration(self.deregister_after),
                }
            }))
            .await
    }

    /// Passes the alive check; re-registers if Consul forgot the check (agent restart).
    pub async fn heartbeat(&self, client: &ConsulClient) -> Result<(), ConsulError> {
        match client
            .check_update(&self.alive_check(), "passing", "alive")
            .await
        {
            Err(ConsulError::Status { status: 404, .. })
            | Err(ConsulError::Status { status: 500, .. }) => self.register(client).await,
            other => other,
        }
    }

    /// Adds the leader's check, passing, with a TTL of `ttl`.
    pub async fn add_saving_check(
        &self,
        client: &ConsulClient,
        ttl: Duration,
    ) -> Result<(), ConsulError> {
        client
            .check_register(&json!({
                "ID": self.saving_check(),
                "Name": "Consul Snapshot Agent Saving Snapshots",
                "ServiceID": self.service_id,
                "TTL": format_go_duration(ttl),
                "Status": "passing",
                "Notes": "the leader's snapshots: passing after a stored snapshot, warning while a shrink-guard anomaly is unacknowledged, critical after a failed one",
            }))
            .await
    }

    /// Reports a cycle on the leader's check.
    pub async fn report(
        &self,
        client: &ConsulClient,
        status: CheckStatus,
        output: &str,
    ) -> Result<(), ConsulError> {
        client
            .check_update(&self.saving_check(), status.as_str(), output)
            .await
    }

    /// Removes the leader's check.
    pub async fn remove_saving_check(&self, client: &ConsulClient) -> Result<(), ConsulError> {
        client.check_deregister(&self.saving_check()).await
    }

    /// Removes the service and its checks.
    pub async fn deregister(&self, client: &ConsulClient) -> Result<(), ConsulError> {
        client.service_deregister(&self.service_id).await
    }
}
