//! The snapshot of a mysql source: the table in pages of `page_size` rows ordered by the key
//! column, each page starting after the last key of the previous one. A failed page is
//! retried with backoff from that key, never reported as a complete snapshot.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fustor_core::{Event, EventType, FsRow, MessageSource};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use super::Shared;
use super::convert::Mapping;

pub struct Snapshot {
    sh: Arc<Shared>,
    conn: Option<Conn>,
    last: Option<Value>,
    done: bool,
    failures: u32,
    sql_first: String,
    sql_next: String,
    /// Positions in the SELECT list: the key is column 0.
    mapping: Mapping,
}

impl Snapshot {
    pub(super) fn new(sh: Arc<Shared>) -> Self {
        let p = &sh.params;
        let mut cols = vec![format!("`{}`", p.key_column)];
        let mut pos = |field: &str| {
            p.fields_mapping.get(field).map(|c| {
                cols.push(format!("`{c}`"));
                cols.len() - 1
            })
        };
        let mapping = Mapping {
            path: pos("path").unwrap_or(1),
            size: pos("size"),
            mtime: pos("modified_time"),
            ctime: pos("created_time"),
            is_dir: pos("is_directory"),
        };
        let from = format!(
            "SELECT {} FROM `{}`.`{}`",
            cols.join(", "),
            sh.target.database,
            p.table
        );
        let order = format!("ORDER BY `{}` LIMIT {}", p.key_column, p.page_size.max(1));
        Snapshot {
            sql_first: format!("{from} {order}"),
            sql_next: format!("{from} WHERE `{}` > ? {order}", p.key_column),
            sh,
            conn: None,
            last: None,
            done: false,
            failures: 0,
            mapping,
        }
    }

    async fn page(&mut self) -> Result<Vec<Row>, mysql_async::Error> {
        let conn = match self.conn.as_mut() {
            Some(c) => c,
            None => self.conn.insert(Conn::new(self.sh.target.opts()).await?),
        };
        match &self.last {
            None => conn.query(&self.sql_first).await,
            Some(k) => conn.exec(&self.sql_next, (k.clone(),)).await,
        }
    }
}

impl Iterator for Snapshot {
    type Item = Event<FsRow>;

    fn next(&mut self) -> Option<Event<FsRow>> {
        loop {
            if self.done {
                self.sh.may_record.store(true, Ordering::SeqCst);
                return None;
            }
            if self.sh.stop.load(Ordering::SeqCst) {
                return None;
            }
            let rt = self.sh.rt.clone();
            match rt.block_on(self.page()) {
                Ok(rows) => {
                    self.failures = 0;
                    if (rows.len() as u64) < self.sh.params.page_size.max(1) {
                        self.done = true;
                    }
                    let Some(last) = rows.last() else {
                        continue;
                    };
                    self.last = last.as_ref(0).cloned();
                    let out: Vec<FsRow> = rows
                        .iter()
                        .filter_map(|r| self.mapping.row(&|i| r.as_ref(i).cloned()))
                        .collect();
                    if self.last.is_none() {
                        // A NULL key cannot be paged after: stop rather than loop.
                        self.done = true;
                    }
                    if !out.is_empty() {
                        return Some(super::event(
                            EventType::Update,
                            MessageSource::Snapshot,
                            out,
                        ));
                    }
                }
                Err(e) => {
                    self.conn = None;
                    self.failures = self.failures.saturating_add(1);
                    let msg = format!("mysql snapshot of {}: {e}", self.sh.params.table);
                    tracing::error!(error = %e, consecutive = self.failures,
                        "mysql snapshot page failed; retrying from the last key");
                    self.sh.set_error(msg);
                    let wait = Duration::from_secs(1 << self.failures.min(6));
                    std::thread::sleep(wait);
                }
            }
        }
    }
}
