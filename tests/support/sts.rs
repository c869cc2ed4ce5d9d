//! A loopback stand-in for AWS STS: answers `AssumeRole` and `AssumeRoleWithWebIdentity`
//! (the query protocol's form body, XML answers as STS writes them) with fixed credentials —
//! the S3 server's own key, so that an upload made with the assumed credentials reaches the
//! real Garage — a session token, and an expiry a test chooses. Every call is recorded.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// One call: the action and its parameters (`RoleArn`, `RoleSessionName`, `WebIdentityToken`).
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    pub role_arn: String,
    pub session_name: String,
    pub token: Option<String>,
    /// Whether the request carried an AWS signature (AssumeRole must; web identity need not).
    pub signed: bool,
}

struct StsState {
    key_id: String,
    secret: String,
    expiry: Duration,
    calls: Mutex<Vec<Call>>,
}

/// The running stand-in; `url` is its endpoint.
pub struct StsStandIn {
    pub url: String,
    state: Arc<StsState>,
    _served: super::serve::Served,
}

impl StsStandIn {
    /// Hands out `key_id`/`secret` as temporary credentials valid for `expiry`.
    pub fn start(key_id: &str, secret: &str, expiry: Duration) -> Self {
        let state = Arc::new(StsState {
            key_id: key_id.into(),
            secret: secret.into(),
            expiry,
            calls: Mutex::new(Vec::new()),
        });
        let served = super::serve::Served::start(
            axum::Router::new()
                .fallback(handle)
                .with_state(state.clone()),
        );
        StsStandIn {
            url: served.url(),
            state,
            _served: served,
        }
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().expect("lock").clone()
    }
}

async fn handle(
    State(st): State<Arc<StsState>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let action = get("Action");
    if action != "AssumeRole" && action != "AssumeRoleWithWebIdentity" {
        return (
            StatusCode::BAD_REQUEST,
            format!("unknown action {action:?}"),
        )
            .into_response();
    }
    let n = {
        let mut calls = st.calls.lock().expect("lock");
        calls.push(Call {
            action: action.clone(),
            role_arn: get("RoleArn"),
            session_name: get("RoleSessionName"),
            token: form.get("WebIdentityToken").cloned(),
            signed: headers.contains_key("authorization"),
        });
        calls.len()
    };
    let expiration = chrono::Utc::now()
        + chrono::Duration::from_std(st.expiry).unwrap_or(chrono::Duration::hours(1));
    let xml = format!(
        r#"<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <{action}Result>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/backup/{session}</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{key}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>stand-in-session-{n}</SessionToken>
      <Expiration>{exp}</Expiration>
    </Credentials>
  </{action}Result>
  <ResponseMetadata><RequestId>stand-in-{n}</RequestId></ResponseMetadata>
</{action}Response>"#,
        session = get("RoleSessionName"),
        key = st.key_id,
        secret = st.secret,
        exp = expiration.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    (StatusCode::OK, [("content-type", "text/xml")], xml).into_response()
}
