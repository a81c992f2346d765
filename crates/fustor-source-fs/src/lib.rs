//! The `fs` source driver (`agent-runtime.md` §10).
//!
//! * [`Scanner`]: pre-scan and drift, snapshot, audit and on-demand scans, sentinel checks. Each
//!   scan runs a pool of walker threads and streams its output through a bounded channel, so the
//!   sender's pace limits the walk instead of memory.
//! * [`Realtime`]: the inotify reader with the hot-directory watch set ([`WatchSet`]).
//!
//! Nothing here panics or fails on a single file: vanished entries produce no row, unreadable
//! ones are logged and skipped. The only fatal condition is a watch window violation.

mod audit;
mod batch;
mod drift;
mod error;
mod mapping;
pub mod owners;
mod params;
mod pattern;
mod realtime;
mod scan;
mod sentinel;
mod stat;
mod walk;
mod watch;
mod watcher;

pub use audit::{AuditItem, AuditStream, MtimeCache, SILENT_EPSILON};
pub use batch::BATCH_ROWS;
pub use drift::{Drift, PreScan, compute_drift, p99_index, prescan};
pub use error::FsError;
pub use params::{DEFAULT_WATCH_LIMIT, FsDriverParams, default_scan_workers, kernel_watch_limit};
pub use pattern::FilePattern;
pub use realtime::{Realtime, RealtimeConfig, RealtimeItem};
pub use scan::{RowStream, Scanner};
pub use sentinel::{SentinelStatus, SentinelUpdate};
pub use stat::{Meta, abs_of, epoch_now, rel_path, row_for};
pub use watch::{Scheduled, WatchHook, WatchSet};
