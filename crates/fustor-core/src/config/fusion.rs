//! Fusion's schema (`configuration.md` §3).
//!
//! Unknown keys are ignored for compatibility but kept in `extra` (filled by the loader), so
//! options the Rust Fusion adds later can be read without another schema change and old
//! binaries do not reject new files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::LoggingConfig;
use super::de::{
    FieldError, duration_secs, from_value, interval_secs, opt_interval_secs, positive_secs_u64,
};

pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const DEFAULT_PORT: u16 = 8101;
pub const DEFAULT_RECEIVER_PORT: u16 = 8102;
pub const DEFAULT_SESSION_CLEANUP_INTERVAL: f64 = 5.0;

/// The merged Fusion configuration of all files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FusionConfig {
    /// Main API bind address.
    pub host: String,
    /// Main API port.
    pub port: u16,
    /// Seconds between session-expiry sweeps.
    pub session_cleanup_interval: f64,
    pub logging: LoggingConfig,
    /// Part of the reference model but never enforced there; kept so a future admin API can.
    pub management_api_key: Option<String>,
    pub receivers: BTreeMap<String, ReceiverConfig>,
    pub views: BTreeMap<String, ViewConfig>,
    pub pipes: BTreeMap<String, FusionPipeConfig>,
    /// Unknown top-level keys, later files overriding earlier ones.
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

impl Default for FusionConfig {
    fn default() -> Self {
        FusionConfig {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            session_cleanup_interval: DEFAULT_SESSION_CLEANUP_INTERVAL,
            logging: LoggingConfig::default(),
            management_api_key: None,
            receivers: BTreeMap::new(),
            views: BTreeMap::new(),
            pipes: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

/// Top-level keys of one Fusion file; absent keys leave the merged value alone.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct FusionGlobals {
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default, deserialize_with = "opt_interval_secs")]
    pub session_cleanup_interval: Option<f64>,
    pub logging: Option<LoggingConfig>,
    pub management_api_key: Option<String>,
}

pub(crate) const GLOBAL_KEYS: &[&str] = &[
    "host",
    "port",
    "session_cleanup_interval",
    "logging",
    "management_api_key",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiverConfig {
    #[serde(default = "d_http")]
    pub driver: String,
    #[serde(default = "d_host")]
    pub bind_host: String,
    /// Receivers with equal `(driver, port)` are served by one listener.
    #[serde(default = "d_receiver_port")]
    pub port: u16,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyEntry>,
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

impl ReceiverConfig {
    pub(crate) const KEYS: &[&str] = &["driver", "bind_host", "port", "disabled", "api_keys"];
}

/// Binds one agent key to exactly one Fusion pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyEntry {
    pub key: String,
    /// `fusion_pipe_id` is accepted too (the forest design document's spelling).
    #[serde(alias = "fusion_pipe_id")]
    pub pipe_id: String,
}

/// A view's query key: a plain string (sees the whole view), or an entry that binds the key to
/// a user, whose answers then show only what that user may see through POSIX permissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueryKey {
    Plain(String),
    Bound(BoundKey),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundKey {
    pub key: String,
    /// Absent with `admin: true`: the key sees everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Every group of the user; the primary group must be listed too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gids: Vec<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
}

impl QueryKey {
    pub fn key(&self) -> &str {
        match self {
            QueryKey::Plain(k) => k,
            QueryKey::Bound(b) => &b.key,
        }
    }

    /// Who the key stands for; `None` for keys that see the whole view.
    pub fn identity(&self) -> Option<crate::view::Identity> {
        match self {
            QueryKey::Plain(_) => None,
            QueryKey::Bound(b) if b.uid.is_none() && !b.admin => None,
            QueryKey::Bound(b) => Some(crate::view::Identity {
                uid: b.uid.unwrap_or(0),
                gids: b.gids.clone(),
                admin: b.admin,
            }),
        }
    }
}

impl PartialEq<&str> for QueryKey {
    fn eq(&self, other: &&str) -> bool {
        self.key() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewConfig {
    /// `fs` or `forest-fs`; see [`ViewDriverKind`].
    #[serde(default = "d_fs")]
    pub driver: String,
    #[serde(default)]
    pub disabled: bool,
    /// Query keys that resolve to this view id; an entry may bind its key to a user
    /// (issue 14).
    #[serde(default)]
    pub api_keys: Vec<QueryKey>,
    #[serde(default)]
    pub driver_params: Map<String, Value>,
    /// Keep the view on disk (snapshot + write-ahead log) so it survives restarts. Absent: on
    /// for drivers that can persist (`fs`, `forest-fs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<bool>,
    /// Where the view's files live; default `$FUSTOR_HOME/fusion-data/<view>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist_dir: Option<String>,
    /// Seconds between snapshots (the log is replayed only from the last one).
    #[serde(
        default = "d_snapshot_interval",
        deserialize_with = "interval_secs",
        skip_serializing_if = "is_default_snapshot_interval"
    )]
    pub persist_snapshot_interval_seconds: f64,
    /// `fsync` the log before a batch is acknowledged (survives power loss); `false` only
    /// writes it to the OS before the answer (survives a crash of Fusion, not of the machine).
    #[serde(default = "d_true", skip_serializing_if = "is_true")]
    pub persist_fsync: bool,
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

/// Snapshot period when `persist_snapshot_interval_seconds` is absent.
pub const DEFAULT_SNAPSHOT_INTERVAL: f64 = 300.0;

fn d_snapshot_interval() -> f64 {
    DEFAULT_SNAPSHOT_INTERVAL
}

fn is_default_snapshot_interval(v: &f64) -> bool {
    *v == DEFAULT_SNAPSHOT_INTERVAL
}

fn is_true(v: &bool) -> bool {
    *v
}

impl ViewConfig {
    pub(crate) const KEYS: &[&str] = &[
        "driver",
        "disabled",
        "api_keys",
        "driver_params",
        "persist",
        "persist_dir",
        "persist_snapshot_interval_seconds",
        "persist_fsync",
    ];

    /// Whether this view is persisted: `persist`, else on for drivers that can.
    pub fn persisted(&self) -> bool {
        self.persist.unwrap_or(self.view_driver().is_some())
    }

    /// The installed driver this view names, if any.
    pub fn view_driver(&self) -> Option<ViewDriverKind> {
        ViewDriverKind::from_name(&self.driver)
    }

    /// Typed view of `driver_params` for `fs` and `forest-fs`; errors name `driver_params.<key>`.
    pub fn fs_params(&self) -> Result<FsViewParams, FieldError> {
        from_value::<FsViewParams>(&Value::Object(self.driver_params.clone()))
            .map_err(|e| e.within_keys(&["driver_params"]))
    }

    pub(crate) fn check(&self) -> Result<(), FieldError> {
        if self.view_driver().is_some() {
            self.fs_params()?;
        }
        if self
            .persist_dir
            .as_deref()
            .is_some_and(|d| d.trim().is_empty())
        {
            return Err(FieldError::new("must be a directory path, not empty")
                .within_keys(&["persist_dir"]));
        }
        Ok(())
    }
}

/// View drivers, keyed by their configured name rather than by target schema: both serve the
/// `fs` schema, and keying by schema made `fs` views come up as forests (§8.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewDriverKind {
    Fs,
    ForestFs,
}

impl ViewDriverKind {
    /// Every driver whose `driver_params` configuration checks, in the order diagnostics list
    /// them; Fusion builds views through its registry of the same names.
    pub const ALL: [ViewDriverKind; 2] = [ViewDriverKind::Fs, ViewDriverKind::ForestFs];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            ViewDriverKind::Fs => "fs",
            ViewDriverKind::ForestFs => "forest-fs",
        }
    }

    /// Event schema the driver consumes; used for routing only, never for lookup.
    pub fn target_schema(self) -> &'static str {
        "fs"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionPipeConfig {
    pub receiver: String,
    /// The first entry is the pipe's primary view.
    #[serde(default)]
    pub views: Vec<String>,
    #[serde(default = "d_true")]
    pub allow_concurrent_push: bool,
    #[serde(default = "d_session_timeout", deserialize_with = "positive_secs_u64")]
    pub session_timeout_seconds: u64,
    /// Pushed to agents in the session response (authoritative).
    #[serde(default = "d_43200", deserialize_with = "duration_secs")]
    pub audit_interval_sec: f64,
    /// Pushed to agents in the session response (authoritative).
    #[serde(default = "d_120", deserialize_with = "duration_secs")]
    pub sentinel_interval_sec: f64,
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

impl FusionPipeConfig {
    pub(crate) const KEYS: &[&str] = &[
        "receiver",
        "views",
        "allow_concurrent_push",
        "session_timeout_seconds",
        "audit_interval_sec",
        "sentinel_interval_sec",
    ];

    pub fn primary_view(&self) -> Option<&str> {
        self.views.first().map(String::as_str)
    }
}

/// `driver_params` of `fs` / `forest-fs` views.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsViewParams {
    /// Seconds; 0, negative or absent means 30.
    #[serde(default = "d_30", deserialize_with = "hot_threshold")]
    pub hot_file_threshold: f64,
    /// API metadata limit; `<= 0` means unlimited.
    #[serde(default = "d_max_tree_items")]
    pub max_tree_items: i64,
    #[serde(default)]
    pub consistency: ConsistencyParams,
    #[serde(default)]
    pub limits: LimitParams,
}

impl Default for FsViewParams {
    fn default() -> Self {
        FsViewParams {
            hot_file_threshold: 30.0,
            max_tree_items: d_max_tree_items(),
            consistency: ConsistencyParams::default(),
            limits: LimitParams::default(),
        }
    }
}

impl FsViewParams {
    pub fn max_tree_items_limit(&self) -> Option<u64> {
        u64::try_from(self.max_tree_items).ok().filter(|n| *n > 0)
    }

    pub fn max_nodes_limit(&self) -> Option<u64> {
        Some(self.limits.max_nodes).filter(|n| *n > 0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyParams {
    #[serde(default = "d_3600", deserialize_with = "duration_secs")]
    pub tombstone_ttl_seconds: f64,
}

impl Default for ConsistencyParams {
    fn default() -> Self {
        ConsistencyParams {
            tombstone_ttl_seconds: d_3600(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitParams {
    /// Tree node cap (OOM guard); 0 = unlimited.
    #[serde(default)]
    pub max_nodes: u64,
    /// Memory bound on tombstones, a Rust addition; `None` leaves the view's own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tombstones: Option<u64>,
}

/// The reference reads `params.get(...) or 30.0`, so an explicit 0 (or null) also means 30;
/// negative values are treated the same, as the fs view does, since they cannot mean anything.
fn hot_threshold<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = Option::<f64>::deserialize(d)?;
    if let Some(s) = v.filter(|s| !s.is_finite() || *s > crate::time::MAX_SECS) {
        return Err(serde::de::Error::custom(format!(
            "must be a number of seconds up to {} (2^32), got {s}",
            crate::time::MAX_SECS
        )));
    }
    Ok(v.filter(|s| *s > 0.0).unwrap_or(30.0))
}

fn d_http() -> String {
    "http".to_string()
}
fn d_host() -> String {
    DEFAULT_HOST.to_string()
}
fn d_fs() -> String {
    "fs".to_string()
}
fn d_receiver_port() -> u16 {
    DEFAULT_RECEIVER_PORT
}
fn d_true() -> bool {
    true
}
fn d_session_timeout() -> u64 {
    30
}
fn d_43200() -> f64 {
    43200.0
}
fn d_120() -> f64 {
    120.0
}
fn d_30() -> f64 {
    30.0
}
fn d_3600() -> f64 {
    3600.0
}
fn d_max_tree_items() -> i64 {
    100_000
}
