//! The change stream of a mysql source: the server's row-based binlog, read as a replica.
//!
//! Events go on the bus as they are decoded; the position is saved only at a transaction end
//! whose events every pipe has delivered (the bus is empty), so a crash replays a little
//! (idempotent) and never skips a change.

use std::time::{Duration, Instant};

use fustor_core::{EventType, FsRow, MessageSource};
use futures_util::StreamExt;
use mysql_async::binlog::events::EventData;
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::{BinlogStreamRequest, Conn, Value};

use super::position::{self, BinlogPos};
use super::{Shared, connect, event};
use crate::backoff::Backoff;
use crate::bus::EventBus;
use crate::source::PositionLost;
use std::sync::atomic::Ordering;

/// Reconnects with backoff until the source stops.
/// Returns the position delivered when it stopped.
/// A purged binlog (position lost) restarts the stream from the server's current position and,
/// once it streams, signals `lost` so the pipes take a new snapshot.
pub(super) fn run(sh: &Shared, bus: &EventBus, lost: &PositionLost, start: BinlogPos) -> BinlogPos {
    let backoff = Backoff {
        error_retry_interval: 1.0,
        multiplier: 2.0,
        max_seconds: 30.0,
        alert_after: u32::MAX,
    };
    let mut reader = Reader {
        sh,
        bus,
        // Differs from any real position: the start is recorded as soon as it may be.
        delivered: BinlogPos {
            file: String::new(),
            pos: 0,
            clean: false,
        },
        committed: start,
        saved_at: Instant::now(),
        lost,
        lost_pending: false,
    };
    let mut failures = 0u32;
    while !sh.stop.load(Ordering::SeqCst) {
        let result = sh.rt.block_on(reader.stream());
        sh.streaming.store(false, Ordering::SeqCst);
        reader.save(true);
        match result {
            Ok(()) => break,
            Err(e) => {
                if let Some(now) = sh
                    .rt
                    .block_on(connect::position_lost(sh, &reader.committed))
                {
                    tracing::warn!(file = %reader.committed.file, pos = reader.committed.pos,
                        new_file = %now.file, new_pos = now.pos, error = %e,
                        "mysql: needed_position_lost: the binlog file of the position is purged; \
                         continuing from the server's current position, a snapshot follows");
                    // Nothing is recorded until the new snapshot's listing ended.
                    sh.may_record.store(false, Ordering::SeqCst);
                    reader.committed = now;
                    reader.lost_pending = true;
                    failures = 0;
                    continue;
                }
                failures = failures.saturating_add(1);
                let msg = format!(
                    "mysql binlog from {}:{}: {e}",
                    reader.committed.file, reader.committed.pos
                );
                tracing::error!(error = %e, consecutive = failures,
                    retry_in_s = backoff.seconds(failures), "mysql binlog stream failed; reconnecting");
                sh.set_error(msg);
                let until = Instant::now() + backoff.delay(failures);
                while Instant::now() < until && !sh.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    reader.delivered
}

struct Reader<'a> {
    sh: &'a Shared,
    bus: &'a EventBus,
    /// End of the last transaction read (where a reconnect starts).
    committed: BinlogPos,
    /// What the state file says.
    delivered: BinlogPos,
    saved_at: Instant,
    lost: &'a PositionLost,
    /// The position was lost: signal it once the stream runs from the new one.
    lost_pending: bool,
}

fn value(r: &BinlogRow, i: usize) -> Option<Value> {
    match r.as_ref(i) {
        Some(BinlogValue::Value(v)) => Some(v.clone()),
        _ => None,
    }
}

impl Reader<'_> {
    /// Saves the committed position when every event before it was delivered (or at once
    /// when `now` and the bus is empty).
    fn save(&mut self, now: bool) {
        if self.committed == self.delivered {
            return;
        }
        if !now && self.saved_at.elapsed() < Duration::from_millis(200) {
            return;
        }
        if !self.sh.may_record.load(Ordering::SeqCst)
            || self.bus.stats().buffered > 0
            || self.bus.subscriber_count() == 0
        {
            return;
        }
        let Some(file) = &self.sh.state_file else {
            return;
        };
        match position::save(file, &self.committed) {
            Ok(()) => {
                self.delivered = self.committed.clone();
                self.saved_at = Instant::now();
            }
            Err(e) => tracing::warn!(file = ?file, error = %e, "cannot save the binlog position"),
        }
    }

    async fn stream(&mut self) -> Result<(), mysql_async::Error> {
        let conn = Conn::new(self.sh.target.opts()).await?;
        let file = self.committed.file.clone();
        let req = BinlogStreamRequest::new(self.sh.params.server_id)
            .with_filename(file.as_bytes())
            .with_pos(self.committed.pos);
        let mut stream = conn.get_binlog_stream(req).await?;
        let db = self.sh.target.database.as_str();
        let table = self.sh.params.table.as_str();
        let mut file_now = self.committed.file.clone();
        tracing::info!(file = %file_now, pos = self.committed.pos, "mysql binlog streaming");
        self.sh.streaming.store(true, Ordering::SeqCst);
        *self.sh.error.lock() = None;
        if std::mem::take(&mut self.lost_pending) {
            self.lost.signal();
        }
        let Some(m) = self.sh.table_mapping.get() else {
            return Ok(());
        };
        while !self.sh.stop.load(Ordering::SeqCst) {
            let next = match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
                Err(_) => {
                    self.save(false);
                    continue;
                }
                Ok(None) => return Ok(()),
                Ok(Some(ev)) => ev?,
            };
            let end = u64::from(next.header().log_pos());
            let data = next.read_data().map_err(mysql_async::Error::from)?;
            let (mut ups, mut dels) = (Vec::new(), Vec::new());
            match data {
                Some(EventData::RotateEvent(r)) => {
                    if end == 0 {
                        // The server's announcement of where it starts, sent before the format
                        // description: its name still carries the 4 checksum bytes.
                        let raw = r.name_raw();
                        file_now = if raw.starts_with(self.committed.file.as_bytes()) {
                            self.committed.file.clone()
                        } else {
                            String::from_utf8_lossy(&raw[..raw.len().saturating_sub(4)])
                                .into_owned()
                        };
                        continue;
                    }
                    file_now = r.name().into_owned();
                    self.committed = BinlogPos {
                        file: file_now.clone(),
                        pos: r.position(),
                        clean: false,
                    };
                    continue;
                }
                Some(EventData::RowsEvent(rows)) => {
                    let Some(tme) = stream.get_tme(rows.table_id()) else {
                        continue;
                    };
                    if tme.database_name() != db || tme.table_name() != table {
                        continue;
                    }
                    for pair in rows.rows(tme) {
                        let (before, after) = pair.map_err(mysql_async::Error::from)?;
                        let old = before.as_ref().and_then(|b| m.path(&|i| value(b, i)));
                        let new = after.as_ref().and_then(|a| m.row(&|i| value(a, i)));
                        match (old, new) {
                            (Some(o), Some(n)) if n.path.as_deref() != Some(o.as_str()) => {
                                dels.push(FsRow::delete(o));
                                ups.push(n);
                            }
                            (_, Some(n)) => ups.push(n),
                            (Some(o), None) => dels.push(FsRow::delete(o)),
                            (None, None) => {}
                        }
                    }
                }
                Some(EventData::XidEvent(_)) => {
                    self.committed = BinlogPos {
                        file: file_now.clone(),
                        pos: end,
                        clean: false,
                    };
                }
                Some(EventData::QueryEvent(q)) if q.query_raw() == b"COMMIT" => {
                    self.committed = BinlogPos {
                        file: file_now.clone(),
                        pos: end,
                        clean: false,
                    };
                }
                _ => {}
            }
            if !ups.is_empty() {
                self.bus
                    .put(event(EventType::Update, MessageSource::Realtime, ups));
            }
            if !dels.is_empty() {
                self.bus
                    .put(event(EventType::Delete, MessageSource::Realtime, dels));
            }
            self.save(false);
        }
        Ok(())
    }
}
