//! Fustor's view engines.
//!
//! [`fs`] holds one file tree per view and arbitrates between realtime, snapshot, audit and
//! on-demand evidence (`consistency.md`). [`forest`] (one such tree per pipe, `forest-fs`) builds
//! on it.

pub mod forest;
pub mod fs;
mod registry;

/// Cores available to this process, read once: `available_parallelism` reads the cgroup files
/// on every call, which costs more than a small member query.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

pub use forest::ForestView;
pub use fs::{FsView, FsViewConfig};
pub use registry::register;
