//! `driver: s3` parameters and the client built from them.

use std::sync::Arc;
use std::time::Duration;

use fustor_core::config::{Credential, DriverParams, KeyShape, SourceConfig};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as KeyPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::Deserialize;

use crate::source::SourceError;

fn d_poll() -> f64 {
    30.0
}

/// `driver_params` of an s3 source. The endpoint may also be given as the definition's `uri`
/// (`http://127.0.0.1:9000`), so a MinIO or Ceph source reads like the other drivers.
#[derive(Debug, Clone, Deserialize)]
pub struct S3Params {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// Seconds between two listings that find creates, overwrites and deletes.
    #[serde(default = "d_poll")]
    pub poll_interval_sec: f64,
    /// Plain-HTTP endpoints; defaults to true when the endpoint is `http://`.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// Virtual-hosted style (`bucket.host`); S3-compatible servers on an address want path
    /// style, the default.
    #[serde(default)]
    pub virtual_hosted_style: bool,
}

impl DriverParams for S3Params {
    const KEYS: &'static KeyShape = &KeyShape::Keys(&[
        ("bucket", KeyShape::Any),
        ("prefix", KeyShape::Any),
        ("endpoint", KeyShape::Any),
        ("region", KeyShape::Any),
        ("poll_interval_sec", KeyShape::Any),
        ("allow_http", KeyShape::Any),
        ("virtual_hosted_style", KeyShape::Any),
    ]);
}

impl S3Params {
    /// The key prefix without surrounding slashes (`None`: the whole bucket).
    pub fn key_prefix(&self) -> Option<KeyPath> {
        let p = self.prefix.trim_matches('/');
        (!p.is_empty()).then(|| KeyPath::from(p))
    }

    pub fn poll_interval(&self) -> Duration {
        fustor_core::time::duration_from_secs(self.poll_interval_sec.max(0.05))
    }

    fn endpoint<'a>(&'a self, uri: &'a str) -> Option<&'a str> {
        self.endpoint
            .as_deref()
            .or_else(|| (uri.starts_with("http://") || uri.starts_with("https://")).then_some(uri))
    }

    /// The client: environment (`AWS_*`) first, then the definition. Its own retries are few
    /// and short so a failure reaches the source's backoff and status within seconds instead
    /// of minutes.
    pub fn store(&self, cfg: &SourceConfig) -> Result<Arc<dyn ObjectStore>, SourceError> {
        if self.bucket.is_empty() {
            return Err(SourceError::Params("driver_params.bucket is empty".into()));
        }
        if !self.poll_interval_sec.is_finite() || self.poll_interval_sec <= 0.0 {
            return Err(SourceError::Params(
                "driver_params.poll_interval_sec must be a positive number".into(),
            ));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_virtual_hosted_style_request(self.virtual_hosted_style)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(60)),
            );
        if let Some(region) = &self.region {
            b = b.with_region(region);
        }
        if let Some(ep) = self.endpoint(&cfg.uri) {
            b = b
                .with_endpoint(ep)
                .with_allow_http(self.allow_http.unwrap_or(ep.starts_with("http://")));
        } else if let Some(allow) = self.allow_http {
            b = b.with_allow_http(allow);
        }
        match &cfg.credential {
            Some(Credential::Passwd {
                user,
                passwd: Some(secret),
            }) => {
                b = b.with_access_key_id(user).with_secret_access_key(secret);
            }
            Some(Credential::Passwd { passwd: None, .. }) => {
                return Err(SourceError::Params(
                    "s3 credential needs user (access key id) and passwd (secret key)".into(),
                ));
            }
            Some(Credential::ApiKey { .. }) => {
                return Err(SourceError::Params(
                    "s3 credential is {user: <access key id>, passwd: <secret key>}, not a key"
                        .into(),
                ));
            }
            None => {}
        }
        let store = b
            .build()
            .map_err(|e| SourceError::Params(format!("s3 client: {e}")))?;
        Ok(Arc::new(store))
    }
}
