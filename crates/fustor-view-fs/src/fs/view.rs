//! The shareable handle: one writer applies batches, queries read concurrently.
//!
//! The write lock is taken per batch (at most a few thousand rows), never for a whole snapshot,
//! so a query waits at most one batch. `parking_lot`'s lock is fair enough that a stream of
//! readers cannot starve the writer.

use fustor_core::view::{ApplyReport, PersistView, SnapshotError, SuspectUpdate, ViewContext};
use fustor_core::{Event, FsRow, Now};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::config::FsViewConfig;
use super::pattern::SearchPattern;
use super::query::QueryError;
use super::search::{self, SearchHits, SearchLimits};
use super::state::FsState;

/// Who sent a batch: the lineage of events that do not name their own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sender<'a> {
    pub agent_id: Option<&'a str>,
    pub source_uri: Option<&'a str>,
}

impl<'a> Sender<'a> {
    pub fn of(ctx: &ViewContext<'a>) -> Self {
        Sender {
            agent_id: Some(ctx.agent_id),
            source_uri: ctx.source_uri,
        }
    }
}

/// A serialized list answer and how it relates to all matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub json: Vec<u8>,
    /// Files that matched.
    pub total: usize,
    /// Whether `limit=` left matches out.
    pub truncated: bool,
    pub returned: usize,
}

pub struct FsView {
    id: String,
    state: RwLock<FsState>,
}

impl FsView {
    pub fn new(id: impl Into<String>, cfg: FsViewConfig) -> Self {
        FsView {
            id: id.into(),
            state: RwLock::new(FsState::new(cfg)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A view holding a state read back from persistence.
    pub(crate) fn from_state(id: impl Into<String>, st: FsState) -> Self {
        FsView {
            id: id.into(),
            state: RwLock::new(st),
        }
    }

    /// Applies events in order under one write lock.
    ///
    /// Between events (at most a few hundred rows) the lock is handed to waiting readers, with
    /// the aggregates made exact first: a query waits for one event, not for a whole batch.
    pub fn apply(&self, events: &[Event<FsRow>], now: Now) -> ApplyReport {
        self.apply_from(events, Sender::default(), now)
    }

    /// [`FsView::apply`] for events whose lineage is the sender's unless they carry their own.
    pub fn apply_from(&self, events: &[Event<FsRow>], sender: Sender<'_>, now: Now) -> ApplyReport {
        let mut st = self.state.write();
        let mut report = ApplyReport::default();
        for (i, ev) in events.iter().enumerate() {
            st.apply_event(ev, sender, now, &mut report);
            if i + 1 < events.len() {
                st.finish_write();
                RwLockWriteGuard::bump(&mut st);
            }
        }
        st.finish_write();
        st.totals.add(&report);
        report
    }

    pub fn audit_start(&self, now: Now) {
        self.state.write().audit_start(now);
    }

    pub fn audit_end(&self, now: Now) -> bool {
        self.state.write().audit_end(now)
    }

    pub fn session_started(&self) {
        self.state.write().session_started();
    }

    pub fn reset(&self) {
        self.state.write().reset();
    }

    pub fn expire_suspects(&self, now: Now) -> bool {
        self.state.write().expire_suspects(now)
    }

    /// Sentinel feedback; returns how many paths were suspects.
    pub fn update_suspects(&self, updates: &[SuspectUpdate], now: Now) -> usize {
        let mut st = self.state.write();
        updates.iter().filter(|u| st.update_suspect(u, now)).count()
    }

    /// `search` in steps that let the writer in (see [`super::search`]), hits in path order.
    pub fn search(&self, pattern: &str, limits: SearchLimits) -> Result<SearchHits, QueryError> {
        search::search(&self.state, &SearchPattern::new(pattern), limits)
    }

    /// [`FsView::search`] as the JSON array of `GET /search`, with how many files matched.
    /// The nodes are written in steps too: 100,000 of them take tens of milliseconds.
    pub fn search_json(&self, pattern: &str, limits: SearchLimits) -> Result<Page, QueryError> {
        let found = self.search(pattern, limits)?;
        let mut json = Vec::with_capacity(64 + found.hits.len() * 160);
        json.push(b'[');
        let mut written = 0;
        let mut st = self.state.read();
        for chunk in found.hits.chunks(2048) {
            written += st.hits_json(chunk, &mut json);
            RwLockReadGuard::bump(&mut st);
        }
        drop(st);
        json.push(b']');
        Ok(Page {
            json,
            total: found.total,
            truncated: found.truncated(),
            returned: written,
        })
    }

    /// [`FsView::search_json`] as `who` sees the tree (issue 14): every match is found first
    /// (within `max_items`), then those the user may not see are dropped before `limit=` and
    /// the count apply, so neither tells anything about hidden files.
    pub fn search_json_as(
        &self,
        pattern: &str,
        limits: SearchLimits,
        who: &fustor_core::view::Identity,
    ) -> Result<Page, QueryError> {
        let found = self.search(
            pattern,
            SearchLimits {
                first: None,
                ..limits
            },
        )?;
        let st = self.state.read();
        let vis = super::access::Visibility::new(&st.tree, who);
        let generation = st.tree.generation();
        let mut hits: Vec<_> = found
            .hits
            .into_iter()
            .filter(|h| {
                let id = if h.generation == generation {
                    Some(h.id)
                } else {
                    st.tree.lookup(&h.path)
                };
                id.is_some_and(|id| st.tree.is_live(id) && vis.shows(&st.tree, id))
            })
            .collect();
        let total = hits.len();
        if let Some(first) = limits.first {
            hits.truncate(first);
        }
        let mut json = Vec::with_capacity(64 + hits.len() * 160);
        json.push(b'[');
        let written = st.hits_json(&hits, &mut json);
        drop(st);
        json.push(b']');
        Ok(Page {
            json,
            total,
            truncated: total > hits.len(),
            returned: written,
        })
    }

    /// `GET /report` at the normalised `path` (issue 14), scanning in steps that let the writer in.
    pub fn report(
        &self,
        path: &str,
        q: &fustor_core::view::ReportQuery<'_>,
    ) -> Result<super::report::Report, QueryError> {
        super::report::report(&self.state, path, q)
    }

    /// A consistent read view for queries.
    pub fn read(&self) -> RwLockReadGuard<'_, FsState> {
        self.state.read()
    }

    /// Direct access for maintenance and tests.
    pub fn write(&self) -> RwLockWriteGuard<'_, FsState> {
        self.state.write()
    }
}

impl fustor_core::view::ViewDriver for FsView {
    fn id(&self) -> &str {
        &self.id
    }

    fn driver_name(&self) -> &'static str {
        fustor_core::config::ViewDriverKind::Fs.name()
    }

    fn election_key(&self, _pipe_id: &str) -> String {
        self.id.clone()
    }

    fn apply(&self, events: &[Event<FsRow>], ctx: &ViewContext<'_>, now: Now) -> ApplyReport {
        FsView::apply_from(self, events, Sender::of(ctx), now)
    }

    fn session_started(&self, _ctx: &ViewContext<'_>) {
        FsView::session_started(self);
    }

    fn session_closed(&self, _ctx: &ViewContext<'_>, last: bool) {
        // The fs view is always "live" (V2).
        if last {
            self.reset();
        }
    }

    fn audit_start(&self, now: Now) {
        FsView::audit_start(self, now);
    }

    fn audit_end(&self, now: Now) -> bool {
        FsView::audit_end(self, now)
    }

    fn reset(&self) {
        FsView::reset(self);
    }

    fn expire_suspects(&self, now: Now) {
        FsView::expire_suspects(self, now);
    }

    fn suspect_paths(&self) -> Vec<String> {
        self.read().suspect_paths()
    }

    fn update_suspects(&self, updates: &[SuspectUpdate], now: Now) -> usize {
        FsView::update_suspects(self, updates, now)
    }

    fn node_count(&self) -> usize {
        self.read().node_count()
    }

    fn persistence(&self) -> Option<&dyn PersistView> {
        Some(self)
    }
}

impl PersistView for FsView {
    fn write_snapshot(&self, out: &mut dyn std::io::Write, now: Now) -> std::io::Result<()> {
        super::persist::write_fs(&self.read(), out, now)
    }

    fn read_snapshot(&self, input: &mut dyn std::io::Read, now: Now) -> Result<(), SnapshotError> {
        let cfg = self.read().config().clone();
        match super::persist::read_fs(&cfg, input, now) {
            Ok(st) => {
                *self.state.write() = st;
                Ok(())
            }
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }
}
