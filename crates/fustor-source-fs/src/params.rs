//! `driver_params` of an `fs` source (`configuration.md` §2.1).

/// The hard-coded reference limit, used when the kernel limit cannot be read.
pub const DEFAULT_WATCH_LIMIT: usize = 10_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct FsDriverParams {
    /// Glob on file basenames for snapshot/audit/on-demand; directories are always included and
    /// realtime is never filtered.
    pub file_pattern: String,
    pub max_scan_workers: usize,
    /// Minimum seconds between two partial-write events of one file.
    pub throttle_interval_sec: f64,
    pub min_monitoring_window_days: f64,
    /// `None`: the kernel's `max_user_watches` (see [`kernel_watch_limit`]).
    pub watch_limit: Option<usize>,
}

impl Default for FsDriverParams {
    fn default() -> Self {
        FsDriverParams {
            file_pattern: "*".to_string(),
            max_scan_workers: default_scan_workers(),
            throttle_interval_sec: 5.0,
            min_monitoring_window_days: 30.0,
            watch_limit: None,
        }
    }
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
