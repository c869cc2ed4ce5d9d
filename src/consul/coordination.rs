//! Sessions, KV locks and agent service registration: the Consul calls leader election and
//! registration need (spec consul-http-api.md §4–§6; lock recipe as Consul's `api/lock.go`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{status_error, ConsulClient, ConsulError};
use crate::units::duration::format_go_duration;

/// The `Flags` value Consul's Go lock helper puts on lock keys; a key with other flags is not a
/// lock and is never acquired.
pub const LOCK_FLAG: u64 = 0x2ddc_cbc0_58a5_0c18;

/// A KV entry as the lock logic needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvEntry {
    pub key: String,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub lock_index: u64,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub modify_index: u64,
    #[serde(default)]
    pub value: Option<String>,
}

fn decode_err(what: &str, e: impl std::fmt::Display) -> ConsulError {
    ConsulError::Decode {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

async fn json_of(resp: reqwest::Response, what: &str, addr: &str) -> Result<Value, ConsulError> {
    let body = super::client::bounded_body(resp, what, addr).await?;
    serde_json::from_slice(&body).map_err(|e| decode_err(what, e))
}

impl ConsulClient {
    /// `PUT /v1/session/create`: a TTL session bound to no health check (only the TTL and
    /// explicit destroy end it), releasing held keys when invalidated. Returns its ID.
    pub async fn session_create(
        &self,
        name: &str,
        ttl: Duration,
        lock_delay: Duration,
    ) -> Result<String, ConsulError> {
        let body = json!({
            "Name": name,
            "TTL": format_go_duration(ttl),
            "LockDelay": format_go_duration(lock_delay),
            "Behavior": "release",
            "NodeChecks": [],
        });
        let resp = self
            .send(
                self.request(Method::PUT, "/v1/session/create", &[])
                    .json(&body),
            )
            .await?;
        let v = json_of(resp, "session create", self.addr()).await?;
        v["ID"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| decode_err("session create", "no ID"))
    }

    /// `PUT /v1/session/renew/<id>`: `Ok(Some(ttl))` renewed (Consul may raise the TTL),
    /// `Ok(None)` the session is gone (404).
    pub async fn session_renew(&self, id: &str) -> Result<Option<Option<Duration>>, ConsulError> {
        let req = self.request(Method::PUT, &format!("/v1/session/renew/{id}"), &[]);
        let resp = req
            .send()
            .await
            .map_err(|e| ConsulError::from_transport(self.addr(), &e))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let v = json_of(resp, "session renew", self.addr()).await?;
        let ttl = v[0]["TTL"]
            .as_str()
            .and_then(crate::units::duration::parse_go_duration);
        Ok(Some(ttl))
    }

    /// `PUT /v1/session/destroy/<id>` (idempotent).
    pub async fn session_destroy(&self, id: &str) -> Result<(), ConsulError> {
        self.send(self.request(Method::PUT, &format!("/v1/session/destroy/{id}"), &[]))
            .await
            .map(drop)
    }

    /// `GET /v1/kv/<key>`, blocking while its index stays at `index` (up to `wait`). Returns the
    /// entry (`None` when absent) and `X-Consul-Index`.
    pub async fn kv_get(
        &self,
        key: &str,
        index: u64,
        wait: Duration,
        consistent: bool,
    ) -> Result<(Option<KvEntry>, u64), ConsulError> {
        let index_s = index.to_string();
        let wait_s = format!("{}ms", wait.as_millis());
        let mut q: Vec<(&str, &str)> = Vec::new();
        if index > 0 {
            q.push(("index", &index_s));
            q.push(("wait", &wait_s));
        }
        if consistent {
            q.push(("consistent", ""));
        }
        let mut req = self.request(Method::GET, &format!("/v1/kv/{key}"), &q);
        if let Some(t) = self.call_timeout() {
            // A blocking query answers after up to `wait` (+1/16 jitter, spec §1.3).
            req = req.timeout(wait + wait / 16 + t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ConsulError::from_transport(self.addr(), &e))?;
        let new_index = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match resp.status() {
            StatusCode::NOT_FOUND => Ok((None, new_index)),
            s if s.is_success() => {
                let body = super::client::bounded_body(resp, "kv get", self.addr()).await?;
                let entries: Vec<KvEntry> =
                    serde_json::from_slice(&body).map_err(|e| decode_err("kv get", e))?;
                Ok((entries.into_iter().next(), new_index))
            }
            _ => Err(status_error(resp).await),
        }
    }

    /// `PUT /v1/kv/<key>?acquire=<session>&flags=LOCK_FLAG` with `value`: whether we hold it.
    pub async fn kv_acquire(
        &self,
        key: &str,
        session: &str,
        value: Vec<u8>,
    ) -> Result<bool, ConsulError> {
        let flags = LOCK_FLAG.to_string();
        let req = self
            .request(
                Method::PUT,
                &format!("/v1/kv/{key}"),
                &[("acquire", session), ("flags", &flags)],
            )
            .body(value);
        let v = json_of(self.send(req).await?, "kv acquire", self.addr()).await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// `PUT /v1/kv/<key>?release=<session>`: whether it was ours to release.
    pub async fn kv_release(&self, key: &str, session: &str) -> Result<bool, ConsulError> {
        let flags = LOCK_FLAG.to_string();
        let req = self.request(
            Method::PUT,
            &format!("/v1/kv/{key}"),
            &[("release", session), ("flags", &flags)],
        );
        let v = json_of(self.send(req).await?, "kv release", self.addr()).await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// `PUT /v1/agent/service/register` with one TTL check.
    pub async fn service_register(&self, body: &Value) -> Result<(), ConsulError> {
        self.send(
            self.request(Method::PUT, "/v1/agent/service/register", &[])
                .json(body),
        )
        .await
        .map(drop)
    }

    /// `PUT /v1/agent/service/deregister/<id>`.
    pub async fn service_deregister(&self, id: &str) -> Result<(), ConsulError> {
        self.send(self.request(
            Method::PUT,
            &format!("/v1/agent/service/deregister/{id}"),
            &[],
        ))
        .await
        .map(drop)
    }

    /// `PUT /v1/agent/check/register`.
    pub async fn check_register(&self, body: &Value) -> Result<(), ConsulError> {
        self.send(
            self.request(Method::PUT, "/v1/agent/check/register", &[])
                .json(body),
        )
        .await
        .map(drop)
    }

    /// `PUT /v1/agent/check/deregister/<id>`.
    pub async fn check_deregister(&self, id: &str) -> Result<(), ConsulError> {
        self.send(self.request(
            Method::PUT,
            &format!("/v1/agent/check/deregister/{id}"),
            &[],
        ))
        .await
        .map(drop)
    }

    /// `PUT /v1/agent/check/update/<id>` with a status (`passing`/`warning`/`critical`).
    pub async fn check_update(
        &self,
        id: &str,
        status: &str,
        output: &str,
    ) -> Result<(), ConsulError> {
        let body = json!({"Status": status, "Output": output});
        self.send(
            self.request(Method::PUT, &format!("/v1/agent/check/update/{id}"), &[])
                .json(&body),
        )
        .await
        .map(drop)
    }
}
