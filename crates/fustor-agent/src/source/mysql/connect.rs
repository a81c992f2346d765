//! Reaching the server: what a mysql source learns before its change stream starts (the
//! table's columns, the binlog files, the current position) and where the stream starts from.
//!
//! An agent may start before its database (a reboot, a maintenance window): nothing here
//! fails the source. Every failure is shown as the source's problem and retried with backoff
//! until the server answers, like the s3 source's listings.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use super::convert::Mapping;
use super::params::{MysqlParams, Target};
use super::position::{self, BinlogPos};
use super::{Shared, SourceError};
use crate::backoff::Backoff;

/// What the server says when it is reached.
struct Probe {
    columns: Vec<String>,
    binlogs: Vec<String>,
    current: BinlogPos,
}

async fn binlogs(conn: &mut mysql_async::Conn) -> Result<Vec<String>, mysql_async::Error> {
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
    Ok(logs
        .into_iter()
        .filter_map(|r| r.get::<String, usize>(0))
        .collect())
}

async fn current(conn: &mut mysql_async::Conn) -> Result<BinlogPos, mysql_async::Error> {
    let status: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
    Ok(status
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
        }))
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
    let binlogs = binlogs(&mut conn).await?;
    let current = current(&mut conn).await?;
    conn.disconnect().await?;
    Ok(Probe {
        columns,
        binlogs,
        current,
    })
}

/// The stream's start, from what the server has and the recorded position; sets what
/// snapshots need to know (the last step: snapshots wait for `table_mapping`).
fn decide(sh: &Shared, probe: Probe) -> Result<BinlogPos, String> {
    if probe.columns.is_empty() {
        return Err(format!(
            "mysql: table {}.{} not found",
            sh.target.database, sh.params.table
        ));
    }
    if probe.current.file.is_empty() {
        return Err(
            "mysql: the binary log is off (start the server with --log-bin --binlog-format=ROW)"
                .into(),
        );
    }
    let mapping = mapping_in(&probe.columns, &sh.params).map_err(|e| e.to_string())?;
    let recorded = sh.state_file.as_deref().and_then(position::load);
    let (start, resumed) = match recorded {
        Some(p) if p.clean => {
            tracing::info!(file = %p.file, pos = p.pos,
                "mysql: the previous run stopped cleanly and closed its session (Fusion resets the view); a snapshot follows");
            (probe.current, false)
        }
        Some(p) if probe.binlogs.contains(&p.file) => {
            tracing::info!(file = %p.file, pos = p.pos, "mysql: resuming the binlog from the recorded position; no snapshot");
            (p, true)
        }
        Some(p) => {
            tracing::warn!(file = %p.file, pos = p.pos,
                "mysql: needed_position_lost: the recorded binlog file is purged; a snapshot follows");
            (probe.current, false)
        }
        None => (probe.current, false),
    };
    sh.resumed.store(resumed, Ordering::SeqCst);
    sh.may_record.store(resumed, Ordering::SeqCst);
    // Set at most once (this runs until it succeeds once).
    let _ = sh.table_mapping.set(mapping);
    Ok(start)
}

/// Blocking. Retries until the server is reached; `None` when the source stopped first.
pub(super) fn until_ready(sh: &Shared) -> Option<BinlogPos> {
    let backoff = Backoff {
        error_retry_interval: 1.0,
        multiplier: 2.0,
        max_seconds: 30.0,
        alert_after: u32::MAX,
    };
    let mut failures = 0u32;
    while !sh.stop.load(Ordering::SeqCst) {
        let probed = sh
            .rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(15), probe(&sh.target, &sh.params)).await
            })
            .map_err(|_| "mysql: no answer within 15 s".to_string())
            .and_then(|r| {
                r.map_err(|e| format!("mysql {}:{}: {e}", sh.target.host, sh.target.port))
            });
        match probed.and_then(|p| decide(sh, p)) {
            Ok(start) => {
                if failures > 0 {
                    tracing::info!(table = %sh.params.table, "mysql server reached");
                }
                return Some(start);
            }
            Err(msg) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %msg, consecutive = failures,
                    retry_in_s = backoff.seconds(failures), "mysql source cannot start; retrying");
                sh.set_error(msg);
                let until = Instant::now() + backoff.delay(failures);
                while Instant::now() < until && !sh.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    None
}

/// Blocking. Waits until the server was reached; false when the source stopped first.
pub(super) fn wait_ready(sh: &Shared) -> bool {
    while sh.table_mapping.get().is_none() {
        if sh.stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// After a failed stream: the server's current position when it no longer has the binlog
/// file of `at` (purged: "needed_position_lost"), `None` when it has it (or cannot say, and
/// the stream is simply retried).
pub(super) async fn position_lost(sh: &Shared, at: &BinlogPos) -> Option<BinlogPos> {
    let check = async {
        let mut conn = mysql_async::Conn::new(sh.target.opts()).await?;
        let logs = binlogs(&mut conn).await?;
        let now = current(&mut conn).await?;
        conn.disconnect().await?;
        Ok::<_, mysql_async::Error>((logs, now))
    };
    match tokio::time::timeout(Duration::from_secs(15), check).await {
        Ok(Ok((logs, now))) if !logs.is_empty() && !logs.contains(&at.file) => Some(now),
        _ => None,
    }
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
