//! Per-view tunables (`configuration.md` §3 `driver_params`).

use fustor_core::config::FsViewParams;

/// Float equality of mtimes (`consistency.md` §1).
pub const EPS: f64 = 1e-6;
/// Reincarnation margin over a tombstone's logical timestamp.
pub const TOMB_EPS: f64 = 1e-5;
/// Window in which a second audit start continues the first (A1).
pub const LATE_AUDIT_START_SECS: f64 = 5.0;
/// Suspect expiry runs at most this often (rule S).
pub const SUSPECT_CLEANUP_PERIOD: f64 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct FsViewConfig {
    /// Seconds a file stays "hot" (suspect age and TTL).
    pub hot_file_threshold: f64,
    /// Seconds a tombstone outlives its deletion before the audit-end purge may drop it.
    pub tombstone_ttl: f64,
    /// 0 = unlimited; otherwise no node is created once the tree holds this many (§7.2).
    pub max_nodes: usize,
    /// Memory bound on tombstones. The reference only purges at audit end (every 12 h by
    /// default), which at 1000 deletes/s would hold tens of millions; past this many, tombstones
    /// older than the TTL are purged immediately, and if that is not enough the oldest go first.
    pub max_tombstones: usize,
}

/// Tombstones kept at most when `limits.max_tombstones` is not configured.
pub const DEFAULT_MAX_TOMBSTONES: usize = 2_000_000;

/// The defaults of the configuration file ([`FsViewParams`]) are the only ones.
impl Default for FsViewConfig {
    fn default() -> Self {
        FsViewConfig::from(&FsViewParams::default())
    }
}

impl From<&FsViewParams> for FsViewConfig {
    fn from(p: &FsViewParams) -> Self {
        FsViewConfig {
            hot_file_threshold: 0.0,
            tombstone_ttl: p.consistency.tombstone_ttl_seconds,
            max_nodes: p.max_nodes_limit().map_or(0, |n| n as usize),
            max_tombstones: p
                .limits
                .max_tombstones
                .map_or(DEFAULT_MAX_TOMBSTONES, |t| t as usize),
        }
        .with_hot(p.hot_file_threshold)
    }
}

impl FsViewConfig {
    /// `hot_file_threshold` of 0 or less means the default (spec: "0/absent ⇒ 30").
    pub fn with_hot(mut self, secs: f64) -> Self {
        self.hot_file_threshold = if secs > 0.0 && secs.is_finite() {
            secs
        } else {
            30.0
        };
        self
    }
}
