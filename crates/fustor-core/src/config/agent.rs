//! The agent's schema (`configuration.md` §2, §2.1).
//!
//! Defaults are those of the agent loader of the reference, not of its older core model (§8.2):
//! e.g. a pipe's sentinel interval is 300 s until Fusion's session response overrides it.
//! Keys outside the schema are ignored, as the reference does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Credential, LoggingConfig, SenderCredential};
use super::de::{
    FieldError, check_interval_secs, duration_days, duration_secs, factor, from_value,
    interval_secs, opt_duration_secs, opt_thread_count, positive_u64,
};
use crate::mapping::FieldMapping;

/// The merged agent configuration of all files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentConfig {
    /// Configured identity; when absent the daemon derives one (`wire-protocol.md` §2).
    pub agent_id: Option<String>,
    pub logging: LoggingConfig,
    /// Parsed for compatibility; the daemon uses `driver_params.max_scan_workers` (§8.7).
    pub fs_scan_workers: u32,
    pub sources: BTreeMap<String, SourceConfig>,
    pub senders: BTreeMap<String, SenderConfig>,
    pub pipes: BTreeMap<String, AgentPipeConfig>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            agent_id: None,
            logging: LoggingConfig::default(),
            fs_scan_workers: 4,
            sources: BTreeMap::new(),
            senders: BTreeMap::new(),
            pipes: BTreeMap::new(),
        }
    }
}

/// Top-level keys of one agent file; absent keys leave the merged value alone.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AgentGlobals {
    pub agent_id: Option<String>,
    pub logging: Option<LoggingConfig>,
    pub fs_scan_workers: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceConfig {
    pub driver: String,
    /// For `fs`: the absolute root directory.
    pub uri: String,
    #[serde(default)]
    pub credential: Option<Credential>,
    /// Capacity of this source's in-memory event bus.
    #[serde(default = "d_1000", deserialize_with = "positive_u64")]
    pub max_queue_size: u64,
    #[serde(default = "d_10", deserialize_with = "positive_u64")]
    pub max_retries: u64,
    #[serde(default = "d_5", deserialize_with = "positive_u64")]
    pub retry_delay_sec: u64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub driver_params: Map<String, Value>,
}

impl SourceConfig {
    /// Typed view of `driver_params` for the `fs` driver; errors name `driver_params.<key>`.
    pub fn fs_params(&self) -> Result<FsSourceParams, FieldError> {
        from_value::<FsSourceParams>(&Value::Object(self.driver_params.clone()))
            .map_err(|e| e.within_keys(&["driver_params"]))
    }

    /// Driver-specific checks that should fail at load time rather than when the pipe starts.
    pub(crate) fn check(&self) -> Result<(), FieldError> {
        if self.driver == "fs" {
            self.fs_params()?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SenderConfig {
    /// `fusion` (HTTP) or `echo` (log only).
    pub driver: String,
    /// Fusion receiver base URL.
    pub uri: String,
    #[serde(default)]
    pub credential: Option<SenderCredential>,
    /// Parsed but unused by the HTTP sender: the pipe batch is 100.
    #[serde(default = "d_1000", deserialize_with = "positive_u64")]
    pub batch_size: u64,
    #[serde(default = "d_10", deserialize_with = "positive_u64")]
    pub max_retries: u64,
    #[serde(default = "d_5", deserialize_with = "positive_u64")]
    pub retry_delay_sec: u64,
    /// Unused by the HTTP sender; `driver_params.timeout` is the effective timeout.
    #[serde(default = "d_30", deserialize_with = "positive_u64")]
    pub timeout_sec: u64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub driver_params: Map<String, Value>,
}

impl SenderConfig {
    /// The key sent as `X-API-Key`.
    pub fn api_key(&self) -> Option<&str> {
        self.credential.as_ref().and_then(SenderCredential::api_key)
    }

    /// HTTP client timeout in seconds (`driver_params.timeout`, default 30).
    pub fn http_timeout_secs(&self) -> Result<f64, FieldError> {
        match self.driver_params.get("timeout") {
            None | Some(Value::Null) => Ok(30.0),
            Some(v) => from_value::<f64>(v)
                .and_then(check_interval_secs)
                .map_err(|e| e.within_keys(&["driver_params", "timeout"])),
        }
    }

    pub(crate) fn check(&self) -> Result<(), FieldError> {
        self.http_timeout_secs().map(|_| ())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentPipeConfig {
    pub source: String,
    pub sender: String,
    /// Used until Fusion's session response supplies the authoritative value.
    #[serde(default = "d_43200", deserialize_with = "duration_secs")]
    pub audit_interval_sec: f64,
    /// Used until Fusion's session response supplies the authoritative value.
    #[serde(default = "d_300", deserialize_with = "duration_secs")]
    pub sentinel_interval_sec: f64,
    /// Hint sent when opening a session; Fusion's pipe setting applies otherwise.
    #[serde(default, deserialize_with = "opt_duration_secs")]
    pub session_timeout_seconds: Option<f64>,
    #[serde(default = "d_5f", deserialize_with = "duration_secs")]
    pub error_retry_interval: f64,
    #[serde(default = "d_5u")]
    pub max_consecutive_errors: u32,
    #[serde(default = "d_2f", deserialize_with = "factor")]
    pub backoff_multiplier: f64,
    #[serde(default = "d_60f", deserialize_with = "duration_secs")]
    pub max_backoff_seconds: f64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub fields_mapping: Vec<FieldMapping>,
}

/// `driver_params` of an `fs` source (§2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsSourceParams {
    /// Minimum seconds between two partial-write events of one file.
    #[serde(default = "d_5f", deserialize_with = "duration_secs")]
    pub throttle_interval_sec: f64,
    /// Watches younger than this may not be evicted.
    #[serde(default = "d_30f", deserialize_with = "duration_days")]
    pub min_monitoring_window_days: f64,
    /// `None` means min(4, CPU count); see [`FsSourceParams::scan_workers`].
    #[serde(default, deserialize_with = "opt_thread_count")]
    pub max_scan_workers: Option<usize>,
    /// Glob on basenames for snapshot/audit/on-demand scans.
    #[serde(default = "d_star")]
    pub file_pattern: String,
    /// `message-only` makes the snapshot produce nothing.
    #[serde(default)]
    pub startup_mode: Option<String>,
    /// Poll timeout of the driver's realtime queue.
    #[serde(default = "d_1f", deserialize_with = "interval_secs")]
    pub max_sync_delay_seconds: f64,
}

impl FsSourceParams {
    /// Effective number of scan threads (at least one).
    pub fn scan_workers(&self) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        self.max_scan_workers.unwrap_or(cpus.min(4)).max(1)
    }

    pub fn message_only(&self) -> bool {
        self.startup_mode.as_deref() == Some("message-only")
    }
}

fn d_1000() -> u64 {
    1000
}
fn d_10() -> u64 {
    10
}
fn d_5() -> u64 {
    5
}
fn d_30() -> u64 {
    30
}
fn d_5u() -> u32 {
    5
}
fn d_1f() -> f64 {
    1.0
}
fn d_2f() -> f64 {
    2.0
}
fn d_5f() -> f64 {
    5.0
}
fn d_30f() -> f64 {
    30.0
}
fn d_60f() -> f64 {
    60.0
}
fn d_300() -> f64 {
    300.0
}
fn d_43200() -> f64 {
    43200.0
}
fn d_star() -> String {
    "*".to_string()
}
