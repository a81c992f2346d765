//! Sources: the drivers that produce rows, and the table that shares one running source between
//! the pipes that name the same `(driver, uri, credential)` (`agent-runtime.md` §1, §10; §14
//! item 9: closing one pipe must not stop the others' realtime).
//!
//! A source driver is a [`SourceDriver`]: its own `driver_params` type, read once, and an
//! `open` that starts a [`Source`]. Drivers are listed by name in a [`SourceDrivers`] table
//! (`crate::drivers`), so adding one is its module plus one registration line.
//!
//! The pipe runtime knows sources only through [`Source`]: the snapshot and change streams
//! every driver has, and the optional audit, sentinel, rescan and on-demand scan methods that
//! a driver declares in [`Capabilities`] (the defaults answer "not supported", and the pipe
//! then skips the task instead of faking it).

mod fs;
mod lost;
mod mysql;
#[cfg(test)]
mod null;
mod s3;

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use fustor_core::config::{
    AgentDriverSchemas, DriverParams, DriverTable, ParamsSchema, SourceConfig,
};
use fustor_core::event::FS_FIELDS;
use fustor_core::{Event, FsRow};
use fustor_source_fs::{AuditItem, FsError, MtimeCache, SentinelUpdate};

use crate::bus::{EventBus, RescanSet};
use crate::exec::ExecError;

pub use fs::FsSource;
pub use lost::PositionLost;
pub use mysql::MysqlSource;
pub use mysql::position::set_state_dir;
pub use s3::S3Source;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source driver {driver:?} is not supported by this agent (expected {known})")]
    UnsupportedDriver { driver: String, known: String },
    #[error("invalid driver_params: {0}")]
    Params(String),
    #[error("fs driver: {0}")]
    Fs(#[from] FsError),
    #[error("source unavailable: {0}")]
    Unavailable(String),
    #[error("exec driver: {0}")]
    Exec(#[from] ExecError),
    #[error("source start was interrupted")]
    Interrupted,
}

/// What a driver can do, as `fustor-agent drivers` lists it (static: known without starting
/// the driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supports {
    pub snapshot: bool,
    pub changes: bool,
    pub audit: bool,
    pub sentinel: bool,
    pub on_demand: bool,
    /// Changes resume from a recorded position after a restart.
    pub positions: bool,
    /// The executable declares its capabilities at its handshake (`exec`).
    pub declared_by_driver: bool,
}

impl Supports {
    /// A driver that only has its two streams.
    pub const STREAMS: Supports = Supports {
        snapshot: true,
        changes: true,
        audit: false,
        sentinel: false,
        on_demand: false,
        positions: false,
        declared_by_driver: false,
    };
    pub const DECLARED_BY_DRIVER: Supports = Supports {
        snapshot: false,
        changes: false,
        declared_by_driver: true,
        ..Supports::STREAMS
    };
}

/// An audit pass: rows plus the directory mtimes that the next pass may skip.
pub type AuditStream = Box<dyn Iterator<Item = AuditItem> + Send>;

/// What a source offers beyond its snapshot and change streams; a pipe starts only the tasks
/// its source supports (the others are skipped, never faked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Periodic audits and the rescans of lost events (`agent-runtime.md` §6.2).
    pub audit: bool,
    /// Checks of the suspect files Fusion asks about (§6.3).
    pub sentinel: bool,
    /// `scan` commands (§9); without it a job is answered complete and empty.
    pub on_demand: bool,
}

/// A snapshot: rows of the whole source, produced on a blocking thread.
pub type SnapshotStream = Box<dyn Iterator<Item = Event<FsRow>> + Send>;

/// What every running source has: its identity and its change stream.
pub struct SourceCore {
    signature: String,
    uri: String,
    pub(crate) bus: Arc<EventBus>,
    pub(crate) lost: PositionLost,
}

impl SourceCore {
    /// The bus holds `max_queue_size` events.
    pub fn new(cfg: &SourceConfig) -> Self {
        let capacity = usize::try_from(cfg.max_queue_size).unwrap_or(usize::MAX);
        SourceCore {
            signature: source_signature(cfg),
            uri: cfg.uri.clone(),
            bus: Arc::new(EventBus::new(capacity)),
            lost: PositionLost::default(),
        }
    }
}

/// A running source, shared by the pipes of its signature; dropping the last reference stops it
/// (off the async threads, see [`release`]).
pub trait Source: Send + Sync + 'static {
    /// Sent as the session's `source_type`.
    fn driver(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    fn core(&self) -> &SourceCore;
    /// See [`source_signature`].
    fn signature(&self) -> &str {
        &self.core().signature
    }
    /// The configured `uri` (sent as `client_info.source_uri`).
    fn uri(&self) -> &str {
        &self.core().uri
    }
    /// The change stream: the driver puts realtime events here, each pipe reads at its own
    /// position.
    fn bus(&self) -> &Arc<EventBus> {
        &self.core().bus
    }
    /// How many times the change stream lost its position ("needed_position_lost") while
    /// running; a leader pipe that sees it grow takes a new snapshot.
    fn positions_lost(&self) -> u64 {
        self.core().lost.count()
    }
    /// False while the change stream is down (degraded mode: pipes send `can_realtime=false`).
    fn realtime_ok(&self) -> bool;
    /// Watches in use and their limit, when the driver has such a budget (health reports).
    fn watch_budget(&self) -> Option<(usize, usize)> {
        None
    }
    /// Blocking; the pipe calls it on the blocking pool.
    fn snapshot(&self) -> SnapshotStream;
    /// What is wrong with the source right now (a driver that crashed, hangs, or is being
    /// restarted), for the pipe status; `None` when healthy.
    fn problem(&self) -> Option<String> {
        None
    }
    /// Blocking. One audit pass (`agent-runtime.md` §6.2); `cache` holds the directory mtimes
    /// of the last pass, which a driver may use to skip unchanged directories. `None`: no
    /// audits ([`Capabilities::audit`]).
    fn audit(&self, _cache: Arc<MtimeCache>) -> Option<AuditStream> {
        None
    }
    /// Blocking. The event that opens an audit at Fusion before anything is listed (see
    /// `pipe::tasks::open_audit`); `None`: the audit opens with its first batch.
    fn audit_start(&self) -> Option<Event<FsRow>> {
        None
    }
    /// Blocking. Emits the current state of the directories of `set` (a targeted rescan of
    /// lost events) until `emit` returns false.
    fn rescan(&self, _set: &RescanSet, _emit: &mut dyn FnMut(Event<FsRow>) -> bool) {}
    /// Whether [`Source::rescan`] works; without it a leader's rescan is a full audit pass.
    fn targeted_rescan(&self) -> bool {
        false
    }
    /// Blocking. Rows at or below `path` (§9 `scan`); `None`: no on-demand scans.
    fn scan(&self, _path: &str, _recursive: bool) -> Option<SnapshotStream> {
        None
    }
    /// Blocking. The current state of the suspect paths Fusion asks about (§6.3).
    fn sentinel(&self, _paths: &[String]) -> Vec<SentinelUpdate> {
        Vec::new()
    }
}

/// One source driver: its parameter type and how to start it.
pub trait SourceDriver {
    type Params: DriverParams + 'static;

    /// For `fustor-agent drivers`.
    const SUPPORTS: Supports = Supports::STREAMS;

    /// Blocking (runs on the blocking pool). When it returns, changes are captured
    /// (message-first, wire §7).
    fn open(cfg: &SourceConfig, params: Self::Params) -> Result<Arc<dyn Source>, SourceError>;

    /// What `validate` requires of the definition's `uri`.
    fn check_uri(_uri: &str) -> Result<(), String> {
        Ok(())
    }

    /// Blocking. Checks that the source can be reached (without keeping it running) and
    /// returns the row fields it fills (`available_fields`).
    fn test_connection(
        _cfg: &SourceConfig,
        _params: Self::Params,
    ) -> Result<Vec<String>, SourceError> {
        Ok(FS_FIELDS.iter().map(|f| f.to_string()).collect())
    }
}

type Open = fn(&SourceConfig) -> Result<Arc<dyn Source>, SourceError>;
type Test = fn(&SourceConfig) -> Result<Vec<String>, SourceError>;

/// One registered driver.
#[derive(Clone, Copy)]
pub struct SourceEntry {
    open: Open,
    test: Test,
    pub supports: Supports,
}

/// Source drivers by configured `driver` name.
#[derive(Clone, Default)]
pub struct SourceDrivers(DriverTable<SourceEntry>);

impl SourceDrivers {
    pub fn register<D: SourceDriver>(&mut self, name: &'static str) -> &mut Self {
        let schema = ParamsSchema::of::<D::Params>().with_uri_check(D::check_uri);
        let entry = SourceEntry {
            open: open::<D>,
            test: test::<D>,
            supports: D::SUPPORTS,
        };
        self.0.insert(name, schema, entry);
        self
    }

    /// Each driver's name and what it supports, for `fustor-agent drivers`.
    pub fn supports(&self) -> Vec<(&'static str, Supports)> {
        self.0
            .names()
            .filter_map(|n| self.0.get(n).map(|e| (n, e.supports)))
            .collect()
    }

    /// Blocking: [`SourceDriver::test_connection`] of a definition.
    pub fn test_connection(&self, cfg: &SourceConfig) -> Result<Vec<String>, SourceError> {
        (self.entry(cfg)?.test)(cfg)
    }

    fn entry(&self, cfg: &SourceConfig) -> Result<SourceEntry, SourceError> {
        self.0
            .get(&cfg.driver)
            .ok_or_else(|| SourceError::UnsupportedDriver {
                driver: cfg.driver.clone(),
                known: self.0.expected(),
            })
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.names()
    }

    /// Blocking: starts the source of a definition, reading its `driver_params` once.
    pub fn open(&self, cfg: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
        (self.entry(cfg)?.open)(cfg)
    }

    /// Adds what the configuration loader checks of each driver.
    pub fn add_schemas(&self, out: &mut AgentDriverSchemas) {
        for (name, schema) in self.0.schemas() {
            out.source(name, schema);
        }
    }
}

fn open<D: SourceDriver>(cfg: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
    let params = D::Params::from_params(&cfg.driver_params)
        .map_err(|e| SourceError::Params(e.to_string()))?;
    D::open(cfg, params)
}

fn test<D: SourceDriver>(cfg: &SourceConfig) -> Result<Vec<String>, SourceError> {
    let params = D::Params::from_params(&cfg.driver_params)
        .map_err(|e| SourceError::Params(e.to_string()))?;
    D::test_connection(cfg, params)
}

/// The identity under which pipes share a source: `(driver, uri, credential)`.
pub fn source_signature(cfg: &SourceConfig) -> String {
    let cred = serde_json::to_string(&cfg.credential).unwrap_or_default();
    format!("{}\u{0}{}\u{0}{}", cfg.driver, cfg.uri, cred)
}

/// Running sources by signature; a source lives while a pipe holds it.
pub struct SourceRegistry {
    drivers: SourceDrivers,
    map: tokio::sync::Mutex<HashMap<String, Weak<dyn Source>>>,
}

impl Default for SourceRegistry {
    fn default() -> Self {
        SourceRegistry::with_drivers(crate::drivers::source_drivers())
    }
}

impl SourceRegistry {
    /// With this build's drivers.
    pub fn new() -> Self {
        SourceRegistry::default()
    }

    pub fn with_drivers(drivers: SourceDrivers) -> Self {
        SourceRegistry {
            drivers,
            map: tokio::sync::Mutex::default(),
        }
    }

    /// The running source for this configuration, started (blocking work off the async
    /// threads) if no pipe holds one.
    pub async fn acquire(&self, cfg: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
        let sig = source_signature(cfg);
        let mut map = self.map.lock().await;
        if let Some(src) = map.get(&sig).and_then(Weak::upgrade) {
            return Ok(src);
        }
        let cfg = cfg.clone();
        let drivers = self.drivers.clone();
        let src = tokio::task::spawn_blocking(move || drivers.open(&cfg))
            .await
            .map_err(|_| SourceError::Interrupted)??;
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(sig, Arc::downgrade(&src));
        Ok(src)
    }

    /// Number of live sources.
    pub async fn live(&self) -> usize {
        self.map
            .lock()
            .await
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

/// Drops a pipe's reference; the last one stops the source (joins threads, off the async
/// threads).
pub async fn release(src: Arc<dyn Source>) {
    let _ = tokio::task::spawn_blocking(move || drop(src)).await;
}
