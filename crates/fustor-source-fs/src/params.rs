//! `driver_params` of an `fs` source (`configuration.md` §2.1): the one type the loader checks,
//! `check-config` validates and the running driver uses, with its defaults in [`Default`].

use fustor_core::config::{
    DriverParams, KeyShape, duration_days, duration_secs, interval_secs, opt_thread_count,
};
use serde::{Deserialize, Deserializer};

/// The hard-coded reference limit, used when the kernel limit cannot be read.
pub const DEFAULT_WATCH_LIMIT: usize = 10_000_000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct FsDriverParams {
    /// Glob on file basenames for snapshot/audit/on-demand; directories are always included and
    /// realtime is never filtered.
    pub file_pattern: String,
    /// Absent or null: [`default_scan_workers`].
    #[serde(deserialize_with = "scan_workers")]
    pub max_scan_workers: usize,
    /// Minimum seconds between two partial-write events of one file.
    #[serde(deserialize_with = "duration_secs")]
    pub throttle_interval_sec: f64,
    /// Watches younger than this may not be evicted.
    #[serde(deserialize_with = "duration_days")]
    pub min_monitoring_window_days: f64,
    /// `message-only` makes the snapshot produce nothing.
    pub startup_mode: Option<String>,
    /// Poll timeout of the driver's realtime queue.
    #[serde(deserialize_with = "interval_secs")]
    pub max_sync_delay_seconds: f64,
    /// `None`: the kernel's `max_user_watches` (see [`kernel_watch_limit`]). Not configurable.
    #[serde(skip)]
    pub watch_limit: Option<usize>,
}

impl Default for FsDriverParams {
    fn default() -> Self {
        FsDriverParams {
            file_pattern: "*".to_string(),
            max_scan_workers: default_scan_workers(),
            throttle_interval_sec: 5.0,
            min_monitoring_window_days: 30.0,
            startup_mode: None,
            max_sync_delay_seconds: 1.0,
            watch_limit: None,
        }
    }
}

impl FsDriverParams {
    /// `startup_mode: message-only`: the snapshot sends nothing.
    pub fn message_only(&self) -> bool {
        self.startup_mode.as_deref() == Some("message-only")
    }
}

impl DriverParams for FsDriverParams {
    const KEYS: &'static KeyShape = &KeyShape::Keys(&[
        ("throttle_interval_sec", KeyShape::Any),
        ("min_monitoring_window_days", KeyShape::Any),
        ("max_scan_workers", KeyShape::Any),
        ("file_pattern", KeyShape::Any),
        ("startup_mode", KeyShape::Any),
        ("max_sync_delay_seconds", KeyShape::Any),
    ]);
}

fn scan_workers<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(opt_thread_count(d)?.unwrap_or_else(default_scan_workers))
}

/// `min(4, CPU count)`: beyond a few threads an NFS client's RPC slots, not the CPUs, limit us.
pub fn default_scan_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

/// Starting with the kernel's per-user limit avoids relying on `ENOSPC` for the common case;
/// `ENOSPC` is still handled because other processes of the same user consume watches too.
pub fn kernel_watch_limit() -> usize {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_WATCH_LIMIT)
        .min(DEFAULT_WATCH_LIMIT)
}
