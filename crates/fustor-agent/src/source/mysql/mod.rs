//! The `mysql` source driver (MySQL, MariaDB): a table whose rows describe files (a dataset
//! catalogue) seen as a file tree, through `fields_mapping` (column → fs row field).
//!
//! Snapshot: the table in pages ordered by `key_column` (keyset pagination, `WHERE key > last`,
//! so a page costs an index range scan however deep it is). Changes: the row-based binlog,
//! read as a replica from a position taken *before* the snapshot (message-first: whatever
//! changes during the snapshot is replayed after it; rows are idempotent upserts and deletes).
//!
//! Resume: the position whose events every pipe delivered is kept in
//! `$FUSTOR_HOME/agent-state/` ([`position`]); an agent restart continues from it and its
//! first snapshot is empty (only the end batch Fusion waits for). When the server no longer has that binlog file (`PURGE
//! BINARY LOGS`), the position is lost ("needed_position_lost") and a snapshot is taken again.

mod cdc;
mod connect;
mod convert;
mod params;
pub mod position;
mod snapshot;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use fustor_core::config::SourceConfig;
use fustor_core::{Event, EventType, FsRow, MessageSource};
use parking_lot::Mutex;

use super::{Capabilities, SnapshotStream, Source, SourceCore, SourceDriver, SourceError};
use convert::Mapping;
pub use params::MysqlParams;
use params::Target;
use position::BinlogPos;

/// A running mysql source.
pub struct MysqlSource {
    core: SourceCore,
    sh: Arc<Shared>,
    /// `None`: stopped before the server was reached.
    cdc: Mutex<Option<JoinHandle<Option<BinlogPos>>>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

/// What the change reader and the snapshots share.
struct Shared {
    target: Target,
    params: MysqlParams,
    /// Column positions in the table (binlog rows carry every column by position); set once
    /// the server was reached, which is what snapshots wait for.
    table_mapping: OnceLock<Mapping>,
    rt: tokio::runtime::Handle,
    stop: AtomicBool,
    error: Mutex<Option<String>>,
    streaming: AtomicBool,
    /// The change stream continues from the recorded position: the next snapshot is empty.
    resumed: AtomicBool,
    /// Positions are recorded only once the view holds every row before them: after a
    /// resume at once, else when the snapshot listing ended (a crash in the middle of a
    /// snapshot must bring a snapshot again, not a resume).
    may_record: AtomicBool,
    state_file: Option<PathBuf>,
}

impl Shared {
    fn set_error(&self, msg: String) {
        *self.error.lock() = Some(msg);
    }
}

/// Events with the agent clock's index and timestamp.
fn event(ty: EventType, source: MessageSource, rows: Vec<FsRow>) -> Event<FsRow> {
    let now = fustor_source_fs::epoch_now();
    let mut e = Event::fs(ty, source, rows);
    e.index = (now * 1000.0) as i64;
    e.timestamp = Some(now);
    e
}

impl MysqlSource {
    /// Never fails on the server's state: an unreachable server, a missing table or a binary
    /// log that is off are retried with backoff by the binlog thread and shown meanwhile as
    /// the source's [`Source::problem`]; snapshots wait until the server has been reached.
    pub fn start(cfg: &SourceConfig, params: MysqlParams) -> Result<Arc<MysqlSource>, SourceError> {
        let target = params.target(cfg)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mysql-io")
            .enable_all()
            .build()
            .map_err(|e| SourceError::Unavailable(format!("mysql client runtime: {e}")))?;
        let signature = super::source_signature(cfg);
        let state_file = position::file_for(&format!("{signature}\u{0}{}", params.table));
        let sh = Arc::new(Shared {
            target,
            params,
            table_mapping: OnceLock::new(),
            rt: runtime.handle().clone(),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
            streaming: AtomicBool::new(false),
            resumed: AtomicBool::new(false),
            may_record: AtomicBool::new(false),
            state_file,
        });
        let src = Arc::new(MysqlSource {
            core: SourceCore::new(cfg),
            sh: sh.clone(),
            cdc: Mutex::new(None),
            runtime: Mutex::new(Some(runtime)),
        });
        let bus = src.core.bus.clone();
        let lost = src.core.lost.clone();
        let handle = std::thread::Builder::new()
            .name("mysql-binlog".to_string())
            .spawn(move || {
                let start = connect::until_ready(&sh)?;
                Some(cdc::run(&sh, &bus, &lost, start))
            })
            .map_err(|e| {
                SourceError::Unavailable(format!("cannot start the binlog reader: {e}"))
            })?;
        *src.cdc.lock() = Some(handle);
        Ok(src)
    }
}

impl Drop for MysqlSource {
    fn drop(&mut self) {
        self.sh.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.cdc.lock().take() {
            match h.join() {
                // Stopped before the server was reached: the recorded position stays.
                Ok(None) => {}
                Ok(Some(mut last)) => {
                    last.clean = true;
                    if let Some(file) = &self.sh.state_file
                        && let Err(e) = position::save(file, &last)
                    {
                        tracing::warn!(file = ?file, error = %e, "cannot save the binlog position");
                    }
                }
                Err(_) => tracing::error!("the mysql binlog thread panicked"),
            }
        }
        if let Some(rt) = self.runtime.lock().take() {
            rt.shutdown_background();
        }
        tracing::info!(table = %self.sh.params.table, "source closed");
    }
}

impl Source for MysqlSource {
    fn driver(&self) -> &'static str {
        "mysql"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn core(&self) -> &SourceCore {
        &self.core
    }

    fn realtime_ok(&self) -> bool {
        self.sh.streaming.load(Ordering::SeqCst)
    }

    /// After a resume, the first snapshot is empty: the view already holds every row up to
    /// the recorded position, and the binlog brings the rest. Its end batch still tells
    /// Fusion that the new session's snapshot phase is over.
    fn snapshot(&self) -> SnapshotStream {
        if !connect::wait_ready(&self.sh) {
            return Box::new(std::iter::empty());
        }
        if self.sh.resumed.swap(false, Ordering::SeqCst) {
            tracing::info!(table = %self.sh.params.table,
                "mysql: resumed from the recorded binlog position; the snapshot is empty");
            return Box::new(std::iter::empty());
        }
        Box::new(snapshot::Snapshot::new(self.sh.clone()))
    }

    fn problem(&self) -> Option<String> {
        self.sh.error.lock().clone()
    }
}

impl SourceDriver for MysqlSource {
    type Params = MysqlParams;

    fn open(cfg: &SourceConfig, params: MysqlParams) -> Result<Arc<dyn Source>, SourceError> {
        Ok(MysqlSource::start(cfg, params)?)
    }

    fn check_uri(uri: &str) -> Result<(), String> {
        if uri.starts_with("mysql://") {
            Ok(())
        } else {
            Err("a mysql source's uri is mysql://host:port/database".into())
        }
    }
}
