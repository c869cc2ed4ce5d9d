//! Assuming an IAM role for S3, as Consul Enterprise's `role_arn`, `role_session_name`,
//! `web_identity_token_file` and `sts_endpoint` do: AssumeRole signed with the base
//! credentials (the SDK's provider), or AssumeRoleWithWebIdentity with a token read from its
//! file at every renewal (a Kubernetes projected token rotates). The temporary credentials go
//! through the SDK's identity cache, which renews them before they expire.

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::{self, error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::SharedCredentialsProvider;

/// An IAM role to assume: with the base credentials (AssumeRole), or with a web identity
/// token read from a file at every renewal (AssumeRoleWithWebIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    /// The role session's name; `None`: `consul-snapshot-agent`.
    pub session_name: Option<String>,
    pub web_identity_token_file: Option<std::path::PathBuf>,
    /// STS endpoint; the region's AWS STS endpoint when unset.
    pub sts_endpoint: Option<String>,
}

/// Session name when none is configured.
pub const DEFAULT_SESSION_NAME: &str = "consul-snapshot-agent";

/// `sdk` with credentials from assuming `role`. STS is reached at `role.sts_endpoint`, never
/// at the S3 endpoint `sdk` carries.
pub async fn with_role(sdk: SdkConfig, role: &AssumeRole) -> SdkConfig {
    let session = role
        .session_name
        .clone()
        .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string());
    let mut sts = sdk.clone().into_builder();
    sts.set_endpoint_url(role.sts_endpoint.clone());
    let sts = sts.build();
    let provider = match &role.web_identity_token_file {
        Some(file) => SharedCredentialsProvider::new(WebIdentity {
            token_file: file.clone(),
            role_arn: role.role_arn.clone(),
            session,
            sts: aws_sdk_sts::Client::new(&sts),
        }),
        None => SharedCredentialsProvider::new(
            AssumeRoleProvider::builder(role.role_arn.clone())
                .session_name(session)
                .configure(&sts)
                .build()
                .await,
        ),
    };
    sdk.into_builder().credentials_provider(provider).build()
}

/// AssumeRoleWithWebIdentity with the token in `token_file`, read afresh for every call.
#[derive(Debug)]
struct WebIdentity {
    token_file: std::path::PathBuf,
    role_arn: String,
    session: String,
    sts: aws_sdk_sts::Client,
}

impl WebIdentity {
    async fn assume(&self) -> provider::Result {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| {
                CredentialsError::provider_error(format!(
                    "reading the web identity token file {}: {e}",
                    self.token_file.display()
                ))
            })?;
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session)
            .web_identity_token(token.trim())
            .send()
            .await
            .map_err(|e| {
                CredentialsError::provider_error(format!(
                    "AssumeRoleWithWebIdentity for {}: {}",
                    self.role_arn,
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                ))
            })?;
        let c = out
            .credentials
            .ok_or_else(|| CredentialsError::unhandled("STS answered without credentials"))?;
        let expiry = std::time::SystemTime::try_from(c.expiration)
            .map_err(|_| CredentialsError::unhandled("STS credentials expire out of range"))?;
        tracing::debug!(role = %self.role_arn, "assumed the role with the web identity token");
        Ok(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            Some(expiry),
            "WebIdentityToken",
        ))
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.assume())
    }
}
