//! The snapshot of an s3 source: the bucket's paginated listing streamed as events of
//! [`ROWS_PER_EVENT`] rows, so memory stays bounded whatever the bucket holds. A failed page
//! is retried with backoff from the last key listed (`list_with_offset`), never reported as a
//! complete snapshot.

use std::sync::Arc;

use fustor_core::{Event, EventType, FsRow, MessageSource};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::ObjectMeta;
use object_store::path::Path as KeyPath;

use super::Shared;
use super::state::{self, ROWS_PER_EVENT};

type Pages = BoxStream<'static, object_store::Result<ObjectMeta>>;

pub struct Snapshot {
    sh: Arc<Shared>,
    started: bool,
    done: bool,
    stream: Option<Pages>,
    last: Option<KeyPath>,
    failures: u32,
}

enum Page {
    Rows(Vec<FsRow>, bool),
    Failed(Vec<FsRow>, object_store::Error),
}

impl Snapshot {
    pub(super) fn new(sh: Arc<Shared>) -> Self {
        Snapshot {
            sh,
            started: false,
            done: false,
            stream: None,
            last: None,
            failures: 0,
        }
    }

    fn open(&self) -> Pages {
        let store = &self.sh.store;
        match &self.last {
            None => store.list(self.sh.prefix.as_ref()),
            Some(k) => store.list_with_offset(self.sh.prefix.as_ref(), k),
        }
    }

    /// Up to one event's rows; the flag says the listing ended.
    fn page(&mut self, mut stream: Pages) -> (Page, Option<Pages>) {
        let prefix = self.sh.prefix.clone();
        let mut last = self.last.clone();
        let (page, stream, last) = self.sh.rt.block_on(async move {
            let mut rows = Vec::with_capacity(ROWS_PER_EVENT);
            while rows.len() < ROWS_PER_EVENT {
                match stream.next().await {
                    None => return (Page::Rows(rows, true), None, last),
                    Some(Err(e)) => return (Page::Failed(rows, e), None, last),
                    Some(Ok(meta)) => {
                        if let Some(p) = state::view_path(prefix.as_ref(), &meta.location) {
                            rows.push(state::row(&p, &state::key_state(&meta)));
                        }
                        last = Some(meta.location);
                    }
                }
            }
            (Page::Rows(rows, false), Some(stream), last)
        });
        self.last = last;
        (page, stream)
    }
}

fn event(rows: Vec<FsRow>) -> Event<FsRow> {
    state::event(EventType::Update, MessageSource::Snapshot, rows)
}

impl Iterator for Snapshot {
    type Item = Event<FsRow>;

    fn next(&mut self) -> Option<Event<FsRow>> {
        if !self.started {
            if !self.sh.wait_baseline() {
                return None;
            }
            self.started = true;
        }
        loop {
            if self.done || self.sh.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            let stream = match self.stream.take() {
                Some(s) => s,
                None => self.open(),
            };
            let (page, stream) = self.page(stream);
            self.stream = stream;
            match page {
                Page::Rows(rows, end) => {
                    self.done = end;
                    self.failures = 0;
                    if !rows.is_empty() {
                        return Some(event(rows));
                    }
                }
                Page::Failed(rows, e) => {
                    self.failures = self.failures.saturating_add(1);
                    self.sh.set_error("snapshot listing", &e);
                    tracing::error!(bucket = ?self.sh.bucket, error = %e,
                        retry_in_s = self.sh.backoff.seconds(self.failures),
                        "s3 snapshot listing failed; resuming after the last key listed");
                    if !rows.is_empty() {
                        return Some(event(rows));
                    }
                    if !self.sh.sleep(self.sh.backoff.delay(self.failures)) {
                        return None;
                    }
                }
            }
        }
    }
}
