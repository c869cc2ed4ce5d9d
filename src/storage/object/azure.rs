//! Azure Blob Storage: a container under a key prefix, through `object_store`'s Azure client
//! (blocks staged with Put Block, committed with Put Block List only after verification).
//!
//! Credentials, first found wins: the account key given (`account_key`,
//! `--azure-blob-account-key`), else what the Azure SDKs read from the environment
//! (`AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_SAS_KEY`, a service principal's
//! `AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`/`AZURE_TENANT_ID`, workload identity's
//! `AZURE_FEDERATED_TOKEN_FILE`), else the managed identity of the VM or pod.

use std::sync::Arc;
use std::time::Duration;

use object_store::azure::MicrosoftAzureBuilder;
use object_store::{ClientOptions, RetryConfig};

use super::ObjectBackend;
use crate::consul::Secret;
use crate::storage::StorageError;

/// Consul Enterprise's `azure_blob_storage.environment` values, and the blob endpoint suffix of
/// each cloud.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum AzureEnvironment {
    #[default]
    #[serde(rename = "AZUREPUBLICCLOUD")]
    #[value(name = "AZUREPUBLICCLOUD")]
    Public,
    #[serde(rename = "AZURECHINACLOUD")]
    #[value(name = "AZURECHINACLOUD")]
    China,
    #[serde(rename = "AZUREUSGOVERNMENTCLOUD")]
    #[value(name = "AZUREUSGOVERNMENTCLOUD")]
    UsGovernment,
    #[serde(rename = "AZUREGERMANCLOUD")]
    #[value(name = "AZUREGERMANCLOUD")]
    German,
}

impl AzureEnvironment {
    /// The blob service host suffix (per Azure's cloud endpoints).
    pub fn blob_suffix(self) -> &'static str {
        match self {
            AzureEnvironment::Public => "blob.core.windows.net",
            AzureEnvironment::China => "blob.core.chinacloudapi.cn",
            AzureEnvironment::UsGovernment => "blob.core.usgovcloudapi.net",
            AzureEnvironment::German => "blob.core.cloudapi.de",
        }
    }
}

/// Everything needed to reach one container under one prefix.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// Storage account name.
    pub account: String,
    /// Shared key; `None` uses the environment's credentials (see the module docs).
    pub account_key: Option<Secret>,
    pub container: String,
    pub environment: AzureEnvironment,
    /// The account's blob endpoint, e.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite
    /// or a private endpoint; default `https://<account>.<environment's suffix>`.
    pub endpoint: Option<String>,
    /// Key prefix, e.g. `consul-snapshot` (a `/` is added to a non-empty prefix without one).
    pub prefix: String,
    /// Block size, in bytes (Azure allows up to 4000 MiB per block, 50,000 blocks per blob).
    pub block_size: u64,
    /// Blocks uploaded at once; memory is about `block_size × (concurrency + 1)`.
    pub concurrency: usize,
    /// Bound on each request (and each silence of a streamed body).
    pub request_timeout: Duration,
}

impl AzureConfig {
    /// The account endpoint in effect.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| {
            format!(
                "https://{}.{}",
                self.account,
                self.environment.blob_suffix()
            )
        })
    }

    /// Checks what can be checked without a request.
    ///
    /// # Errors
    /// A missing account or container, a block size outside 1 MiB..=4000 MiB, or 0
    /// concurrency.
    pub fn validate(&self) -> Result<(), String> {
        if self.account.is_empty() {
            return Err("azure_blob_storage.account_name is required".into());
        }
        if self.container.is_empty() {
            return Err("azure_blob_storage.container_name is required".into());
        }
        if !(1 << 20..=4000 << 20).contains(&self.block_size) {
            return Err(format!(
                "Azure block size {} is outside 1MiB..4000MiB",
                crate::units::format_size(self.block_size)
            ));
        }
        if self.concurrency == 0 {
            return Err("Azure block concurrency must be at least 1".into());
        }
        Ok(())
    }

    /// Builds the backend (no request is made).
    ///
    /// # Errors
    /// [`StorageError::Config`] for invalid settings or an endpoint that is not a URL.
    pub fn backend(&self) -> Result<ObjectBackend, StorageError> {
        self.validate().map_err(StorageError::Config)?;
        let endpoint = self.endpoint();
        let mut builder = MicrosoftAzureBuilder::from_env()
            .with_account(&self.account)
            .with_container_name(&self.container)
            .with_endpoint(endpoint.clone())
            .with_client_options(
                // A bound on each silence, not on the whole request: a multi-GiB read-back or
                // restore may take longer than any per-request total, but a peer that stops
                // answering is still given up after `request_timeout`.
                ClientOptions::new()
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_timeout_disabled()
                    .with_read_timeout(self.request_timeout)
                    .with_connect_timeout(self.request_timeout.min(Duration::from_secs(30))),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: self.request_timeout,
                ..RetryConfig::default()
            });
        if let Some(key) = &self.account_key {
            builder = builder.with_access_key(key.expose());
        }
        let store = builder
            .build()
            .map_err(|e| StorageError::Config(format!("Azure Blob Storage settings: {e}")))?;
        Ok(ObjectBackend::new(
            Arc::new(store),
            "azure",
            format!(
                "azure://{}/{}/{}",
                self.account, self.container, self.prefix
            ),
            &self.prefix,
            self.block_size,
            self.concurrency,
        ))
    }
}
