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
mod convert;
mod params;
pub mod position;
mod snapshot;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use fustor_core::config::SourceConfig;
use fustor_core::{Event, EventType, FsRow, MessageSource};
use mysql_async::prelude::Queryable;
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
    resumed: AtomicBool,
    cdc: Mutex<Option<JoinHandle<BinlogPos>>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

/// What the change reader and the snapshots share.
struct Shared {
    target: Target,
    params: MysqlParams,
    /// Column positions in the table (binlog rows carry every column by position).
    table_mapping: Mapping,
    rt: tokio::runtime::Handle,
    stop: AtomicBool,
    error: Mutex<Option<String>>,
    streaming: AtomicBool,
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

/// What the server says at open.
struct Probe {
    columns: Vec<String>,
    binlogs: Vec<String>,
    current: BinlogPos,
}

async fn probe(target: &Target, params: &MysqlParams) -> Result<Probe, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(target.opts()).await?;
    let columns: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (target.database.as_str(), params.table.as_str()),
        )
        .await?;
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
    let binlogs = logs
        .into_iter()
        .filter_map(|r| r.get::<String, usize>(0))
        .collect();
    let status: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
    let current = status
        .and_then(|r| {
            Some(BinlogPos {
                file: r.get::<String, usize>(0)?,
                pos: r.get::<u64, usize>(1)?,
                clean: false,
            })
        })
        .unwrap_or(BinlogPos {
            file: String::new(),
            pos: 4,
            clean: false,
        });
    conn.disconnect().await?;
    Ok(Probe {
        columns,
        binlogs,
        current,
    })
}

fn mapping_in(columns: &[String], params: &MysqlParams) -> Result<Mapping, SourceError> {
    let find = |field: &str| -> Result<Option<usize>, SourceError> {
        let Some(col) = params.fields_mapping.get(field) else {
            return Ok(None);
        };
        columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(col))
            .map(Some)
            .ok_or_else(|| {
                SourceError::Params(format!(
                    "fields_mapping.{field}: table {:?} has no column {col:?}",
                    params.table
                ))
            })
    };
    Ok(Mapping {
        path: find("path")?.unwrap_or(0),
        size: find("size")?,
        mtime: find("modified_time")?,
        ctime: find("created_time")?,
        is_dir: find("is_directory")?,
    })
}

impl MysqlSource {
    pub fn start(cfg: &SourceConfig, params: MysqlParams) -> Result<Arc<MysqlSource>, SourceError> {
        let target = params.target(cfg)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mysql-io")
            .enable_all()
            .build()
            .map_err(|e| SourceError::Unavailable(format!("mysql client runtime: {e}")))?;
        let probe = runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(15), probe(&target, &params)).await
            })
            .map_err(|_| SourceError::Unavailable("mysql: no answer within 15 s".into()))?
            .map_err(|e| {
                SourceError::Unavailable(format!("mysql {}:{}: {e}", target.host, target.port))
            })?;
        if probe.columns.is_empty() {
            return Err(SourceError::Params(format!(
                "mysql: table {}.{} not found",
                target.database, params.table
            )));
        }
        if probe.current.file.is_empty() {
            return Err(SourceError::Unavailable(
                "mysql: the binary log is off (start the server with --log-bin --binlog-format=ROW)"
                    .into(),
            ));
        }
        let table_mapping = mapping_in(&probe.columns, &params)?;
        let signature = super::source_signature(cfg);
        let state_file = position::file_for(&format!("{signature}\u{0}{}", params.table));
        let recorded = state_file.as_deref().and_then(position::load);
        let (start, resumed) = match recorded {
            Some(p) if p.clean => {
                tracing::info!(file = %p.file, pos = p.pos,
                    "mysql: the previous run stopped cleanly and closed its session (Fusion resets the view); a snapshot follows");
                (probe.current.clone(), false)
            }
            Some(p) if probe.binlogs.contains(&p.file) => {
                tracing::info!(file = %p.file, pos = p.pos, "mysql: resuming the binlog from the recorded position; no snapshot");
                (p, true)
            }
            Some(p) => {
                tracing::warn!(file = %p.file, pos = p.pos,
                    "mysql: needed_position_lost: the recorded binlog file is purged; a snapshot follows");
                (probe.current.clone(), false)
            }
            None => (probe.current.clone(), false),
        };
        let sh = Arc::new(Shared {
            target,
            params,
            table_mapping,
            rt: runtime.handle().clone(),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
            streaming: AtomicBool::new(false),
            may_record: AtomicBool::new(resumed),
            state_file,
        });
        let src = Arc::new(MysqlSource {
            core: SourceCore::new(cfg),
            sh: sh.clone(),
            resumed: AtomicBool::new(resumed),
            cdc: Mutex::new(None),
            runtime: Mutex::new(Some(runtime)),
        });
        let bus = src.core.bus.clone();
        let handle = std::thread::Builder::new()
            .name("mysql-binlog".to_string())
            .spawn(move || cdc::run(&sh, &bus, start))
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
                Ok(mut last) => {
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
        if self.resumed.swap(false, Ordering::SeqCst) {
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
