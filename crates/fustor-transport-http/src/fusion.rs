//! The `fusion` sender: an HTTP client for a Fusion receiver (`wire-protocol.md` §3–§5).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fustor_core::EventBatch;
use fustor_core::config::{
    DriverParams, KeyShape, SenderConfig, check_http_uri, opt_interval_secs,
};
use fustor_core::wire::{
    CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, HeartbeatResponse,
    SentinelFeedback, SentinelTasks,
};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::tls::TlsFiles;
use crate::{AnySender, SendError, Sender, SenderDriver};

/// Status code Fusion uses for "Session Obsoleted".
const SESSION_OBSOLETE: u16 = 419;
/// Error bodies are quoted in messages up to this many characters.
const BODY_EXCERPT: usize = 300;

/// HTTP client bound to one receiver base URL and one API key. Cloning shares the connection
/// pool.
#[derive(Debug, Clone)]
pub struct FusionSender {
    client: Client,
    base: String,
    /// Whether this Fusion said it takes `\udcXX` names (its last session answer); until then,
    /// and for the Python Fusion, undecodable bytes go out as `?`.
    lossless: Arc<AtomicBool>,
}

impl FusionSender {
    /// `base` is the receiver URL (`http://fusion:18888`); a trailing `/` is ignored.
    pub fn new(base: &str, api_key: Option<&str>, timeout: Duration) -> Result<Self, SendError> {
        Self::with_tls(base, api_key, timeout, &TlsFiles::default())
    }

    /// [`FusionSender::new`] with the CA that signs Fusion's certificate and an optional client
    /// certificate, for `https://` receivers.
    pub fn with_tls(
        base: &str,
        api_key: Option<&str>,
        timeout: Duration,
        tls: &TlsFiles,
    ) -> Result<Self, SendError> {
        let base = base.trim_end_matches('/').to_string();
        reqwest::Url::parse(&base)
            .map_err(|e| SendError::Config(format!("invalid sender uri {base:?}: {e}")))?;
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key {
            let mut v = HeaderValue::from_str(key).map_err(|_| {
                SendError::Config("the API key contains characters not allowed in a header".into())
            })?;
            v.set_sensitive(true);
            headers.insert("X-API-Key", v);
        }
        let builder = tls.apply(Client::builder())?;
        let client = builder
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| SendError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(FusionSender {
            client,
            base,
            lossless: Arc::new(AtomicBool::new(false)),
        })
    }

    /// From a sender definition: `uri`, `credential.key`, `driver_params.timeout` (default 30 s).
    pub fn from_config(cfg: &SenderConfig) -> Result<Self, SendError> {
        let params = FusionParams::from_params(&cfg.driver_params)
            .map_err(|e| SendError::Config(e.to_string()))?;
        Self::with_params(cfg, &params)
    }

    fn with_params(cfg: &SenderConfig, params: &FusionParams) -> Result<Self, SendError> {
        let timeout = params.timeout;
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(SendError::Config(format!(
                "driver_params.timeout must be a positive number of seconds, got {timeout}"
            )));
        }
        if cfg.api_key().is_none() {
            tracing::warn!(
                uri = %cfg.uri,
                "sender has no credential key: Fusion will refuse the session with 401"
            );
        }
        FusionSender::with_tls(
            &cfg.uri,
            cfg.api_key(),
            fustor_core::time::duration_from_secs(timeout),
            &params.tls,
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Response, SendError> {
        let url = self.url(path);
        let bytes = if self.lossless.load(Ordering::Relaxed) {
            fustor_core::lossless::to_vec(body)
        } else {
            fustor_core::lossless::to_vec_replacing(body)
        };
        let bytes = bytes.map_err(|e| SendError::Encode {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let r = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes)
            .send()
            .await;
        check(r, &url).await
    }

    async fn post_empty(&self, path: &str) -> Result<Response, SendError> {
        let url = self.url(path);
        let r = self.client.post(&url).send().await;
        check(r, &url).await
    }
}

/// Maps transport failures and statuses onto [`SendError`].
async fn check(r: reqwest::Result<Response>, url: &str) -> Result<Response, SendError> {
    let resp = r.map_err(|e| SendError::Connection {
        url: url.to_string(),
        message: crate::tls::explain(error_chain(&e), &e),
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let detail = detail_of(&body);
    Err(match status.as_u16() {
        SESSION_OBSOLETE => SendError::SessionObsolete(detail),
        401 => SendError::Unauthorized {
            url: url.to_string(),
            detail,
        },
        413 => SendError::TooLarge {
            url: url.to_string(),
        },
        s => SendError::Status {
            status: s,
            url: url.to_string(),
            body: detail,
        },
    })
}

/// `{"detail": "..."}` bodies are reduced to their detail; others are quoted, shortened.
fn detail_of(body: &str) -> String {
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(body)
        && let Some(d) = m.get("detail")
    {
        return match d {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
    let mut s: String = body.chars().take(BODY_EXCERPT).collect();
    if body.chars().count() > BODY_EXCERPT {
        s.push('…');
    }
    s
}

/// reqwest's top-level message ("error sending request") hides the cause.
fn error_chain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_timeout() {
        msg.push_str(" (timed out)");
    }
    msg
}

async fn json<T: DeserializeOwned>(resp: Response, url: &str) -> Result<T, SendError> {
    let bytes = resp.bytes().await.map_err(|e| SendError::Connection {
        url: url.to_string(),
        message: error_chain(&e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| SendError::Decode {
        url: url.to_string(),
        message: format!("{e}; body: {}", detail_of(&String::from_utf8_lossy(&bytes))),
    })
}

/// Session ids come from Fusion; they are UUIDs, but nothing forces a hostile server to send
/// one, so they are percent-encoded as a path segment.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Sender for FusionSender {
    async fn create_session(
        &self,
        req: &CreateSessionRequest,
    ) -> Result<CreateSessionResponse, SendError> {
        let path = "/api/v1/pipe/session/";
        let resp = self.post(path, req).await?;
        let answer: CreateSessionResponse = json(resp, &self.url(path)).await?;
        if self.lossless.swap(answer.lossless_names, Ordering::Relaxed) != answer.lossless_names {
            tracing::info!(
                uri = %self.base,
                lossless = answer.lossless_names,
                "undecodable name bytes are sent as {}",
                if answer.lossless_names { "\\udcXX" } else { "'?' (the receiver cannot take \\udcXX)" }
            );
        }
        Ok(answer)
    }

    async fn heartbeat(
        &self,
        session_id: &str,
        req: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, SendError> {
        let path = format!("/api/v1/pipe/session/{}/heartbeat", seg(session_id));
        let resp = self.post(&path, req).await?;
        let hb: HeartbeatResponse = json(resp, &self.url(&path)).await?;
        if hb.status == "error" {
            return Err(SendError::SessionObsolete(
                hb.message
                    .unwrap_or_else(|| "heartbeat answered status=error".to_string()),
            ));
        }
        Ok(hb)
    }

    async fn send_batch<R: Serialize + Sync>(
        &self,
        session_id: &str,
        batch: &EventBatch<R>,
    ) -> Result<(), SendError> {
        let path = format!("/api/v1/pipe/ingest/{}/events", seg(session_id));
        // Drain the body so that the connection goes back to the pool.
        let resp = match self.post(&path, batch).await {
            Ok(r) => r,
            // "Session <id> not found or expired" (wire §4.3): Fusion forgot the session, e.g.
            // after a restart; waiting for the next heartbeat's 419 would only delay recovery.
            Err(SendError::Status {
                status: 404, body, ..
            }) if body.contains("not found or expired") => {
                return Err(SendError::SessionObsolete(body));
            }
            Err(e) => return Err(e),
        };
        let _ = resp.bytes().await;
        Ok(())
    }

    async fn close_session(&self, session_id: &str) -> Result<(), SendError> {
        let url = self.url(&format!("/api/v1/pipe/session/{}", seg(session_id)));
        let r = self.client.delete(&url).send().await;
        let resp = check(r, &url).await?;
        let _ = resp.bytes().await;
        Ok(())
    }

    async fn audit_end(&self) -> Result<(), SendError> {
        let resp = self
            .post_empty("/api/v1/pipe/consistency/audit/end")
            .await?;
        let _ = resp.bytes().await;
        Ok(())
    }

    async fn sentinel_tasks(&self) -> Result<SentinelTasks, SendError> {
        let url = self.url("/api/v1/pipe/consistency/sentinel/tasks");
        let r = self.client.get(&url).send().await;
        let resp = check(r, &url).await?;
        json(resp, &url).await
    }

    async fn sentinel_feedback(&self, feedback: &SentinelFeedback) -> Result<(), SendError> {
        let resp = self
            .post("/api/v1/pipe/consistency/sentinel/feedback", feedback)
            .await?;
        let _ = resp.bytes().await;
        Ok(())
    }

    fn endpoint(&self) -> &str {
        &self.base
    }
}

/// `driver_params` of a `fusion` sender.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct FusionParams {
    /// HTTP client timeout in seconds; absent or null: 30.
    #[serde(deserialize_with = "timeout_secs")]
    pub timeout: f64,
    /// `ca_file`, `client_cert_file`, `client_key_file` (for `https://` receivers).
    #[serde(flatten)]
    pub tls: TlsFiles,
}

impl Default for FusionParams {
    fn default() -> Self {
        FusionParams {
            timeout: 30.0,
            tls: TlsFiles::default(),
        }
    }
}

fn timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(opt_interval_secs(d)?.unwrap_or(FusionParams::default().timeout))
}

impl DriverParams for FusionParams {
    const KEYS: &'static KeyShape = &KeyShape::Keys(&[
        ("timeout", KeyShape::Any),
        ("ca_file", KeyShape::Any),
        ("client_cert_file", KeyShape::Any),
        ("client_key_file", KeyShape::Any),
    ]);
}

impl SenderDriver for FusionSender {
    const SUPPORTS: crate::SenderSupports = crate::SenderSupports {
        remote: true,
        election: true,
        consistency: true,
        declared_by_driver: false,
    };

    type Params = FusionParams;

    fn build(cfg: &SenderConfig, params: FusionParams) -> Result<AnySender, SendError> {
        Self::with_params(cfg, &params).map(AnySender::Fusion)
    }

    /// Without this, `127.0.0.1:8102` passed `validate` and only failed at the first connect.
    fn check_uri(uri: &str) -> Result<(), String> {
        check_http_uri(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_extracted() {
        assert_eq!(
            detail_of(r#"{"detail":"Session obsoleted"}"#),
            "Session obsoleted"
        );
        assert_eq!(detail_of("plain"), "plain");
        assert_eq!(
            detail_of(&"x".repeat(400)).chars().count(),
            BODY_EXCERPT + 1
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("6f0c-ab_1"), "6f0c-ab_1");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn bad_uri_is_a_config_error() {
        let e = FusionSender::new("not a url", None, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, SendError::Config(_)), "{e:?}");
    }

    /// Issue 9: `driver_params.timeout: 1e300` made the agent exit 101 in
    /// `Duration::from_secs_f64`; it is now refused, and the conversion saturates anyway.
    #[test]
    fn huge_timeout_saturates() {
        let cfg: SenderConfig = serde_json::from_value(serde_json::json!({
            "driver": "fusion",
            "uri": "http://127.0.0.1:1",
            "credential": {"key": "k"},
            "driver_params": {"timeout": 1e300},
        }))
        .unwrap();
        // The loader refuses it with the key named; nothing on the way panics.
        let built = std::panic::catch_unwind(|| FusionSender::from_config(&cfg));
        assert!(matches!(built, Ok(Err(SendError::Config(_)))));
        let huge = fustor_core::time::duration_from_secs(1e300);
        assert!(FusionSender::new("http://127.0.0.1:1", Some("k"), huge).is_ok());
    }
}
