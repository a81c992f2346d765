//! The agent's schema (`configuration.md` §2, §2.1).
//!
//! Defaults are those of the agent loader of the reference, not of its older core model (§8.2):
//! e.g. a pipe's sentinel interval is 300 s until Fusion's session response overrides it.
//! Keys outside the schema are ignored, as the reference does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Credential, LoggingConfig, SenderCredential};
use super::de::{duration_secs, factor, opt_duration_secs, positive_u64};
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
    /// Fusion's registry this agent is steered by (issue 15), like `start --registry URL
    /// --registry-key K`; the command line wins.
    pub registry: Option<RegistrySettings>,
}

/// `registry: {url, key}`: Fusion's main URL and an agent key of its receiver.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrySettings {
    pub url: String,
    pub key: String,
}

impl std::fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a credential: never in a log line or a diagnostic.
        f.debug_struct("RegistrySettings")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
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
            registry: None,
        }
    }
}

/// Top-level keys of one agent file; absent keys leave the merged value alone.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AgentGlobals {
    pub agent_id: Option<String>,
    pub logging: Option<LoggingConfig>,
    pub fs_scan_workers: Option<u32>,
    pub registry: Option<RegistrySettings>,
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
    /// Read by the driver into its own type (`config::DriverParams`).
    #[serde(default)]
    pub driver_params: Map<String, Value>,
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
    /// Read by the driver into its own type (`config::DriverParams`).
    #[serde(default)]
    pub driver_params: Map<String, Value>,
}

impl SenderConfig {
    /// The key sent as `X-API-Key`.
    pub fn api_key(&self) -> Option<&str> {
        self.credential.as_ref().and_then(SenderCredential::api_key)
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
fn d_2f() -> f64 {
    2.0
}
fn d_5f() -> f64 {
    5.0
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
