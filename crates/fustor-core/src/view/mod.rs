//! The contract between Fusion's pipes and its view drivers.
//!
//! The pipe layer carries context (which pipe, which session, which agent) without interpreting
//! it; each driver decides what the context means. The fs view ignores the pipe, the forest view
//! routes by it. This is the "pass-through" contract of the forest design: no layer in between
//! unpacks or guesses at the context.

mod persist;
mod query;
mod registry;

pub use persist::{PersistView, SnapshotError};
pub use query::{
    Answer, Identity, QueryError, QueryResult, QueryRoute, ReportBy, ReportQuery, SearchQuery,
    StatsQuery, SuspectEntry, TreeOptions, TreeQuery, ViewQuery,
};
pub use registry::{BuildView, BuiltView, ViewBuildError, ViewRegistry};

use crate::{Event, FsRow, Now};

/// Who sent what is being applied.
#[derive(Debug, Clone, Copy, Default)]
pub struct ViewContext<'a> {
    /// The Fusion pipe the events or session belong to.
    pub pipe_id: &'a str,
    pub session_id: &'a str,
    pub agent_id: &'a str,
    /// The session's `client_info.source_uri`. With `agent_id`, the lineage of every event of
    /// the batch: passed once per batch rather than copied into each event's metadata.
    pub source_uri: Option<&'a str>,
}

/// Counters of what happened to rows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyReport {
    pub events: u64,
    pub rows: u64,
    /// Rows whose path was refused (`..`, NUL, too long).
    pub rejected: u64,
    /// Rows without a path (rule N).
    pub skipped: u64,
    /// Rows stopped by a tombstone (zombies).
    pub zombies: u64,
    /// Compensation rows that lost arbitration (C2, C3, 6.4).
    pub stale: u64,
    /// Rows with no effect because the node limit was reached.
    pub capacity_refused: u64,
}

impl ApplyReport {
    pub fn add(&mut self, o: &ApplyReport) {
        self.events += o.events;
        self.rows += o.rows;
        self.rejected += o.rejected;
        self.skipped += o.skipped;
        self.zombies += o.zombies;
        self.stale += o.stale;
        self.capacity_refused += o.capacity_refused;
    }
}

/// One sentinel observation of a suspect file (`wire-protocol.md` §5.4).
#[derive(Debug, Clone, PartialEq)]
pub struct SuspectUpdate {
    pub path: String,
    pub mtime: f64,
    pub size: Option<u64>,
}

/// A view driver hosted by Fusion: the write side, plus its [`ViewQuery`] read side so that one
/// object serves both. Calls are synchronous and may take the driver's write lock: callers run
/// them off the async threads.
pub trait ViewDriver: ViewQuery {
    fn id(&self) -> &str;
    /// The configured driver name (`fs`, `forest-fs`).
    fn driver_name(&self) -> &'static str;
    /// Events whose `event_schema` equals this (or any, when empty) are routed here.
    fn target_schema(&self) -> &str {
        "fs"
    }
    /// The leader-election key for sessions of `pipe_id` (rule L1).
    fn election_key(&self, pipe_id: &str) -> String;
    fn apply(&self, events: &[Event<FsRow>], ctx: &ViewContext<'_>, now: Now) -> ApplyReport;
    /// V1: a session of this view started.
    fn session_started(&self, ctx: &ViewContext<'_>);
    /// A session ended; `last` is true when no session of the view remains (V2 live reset).
    fn session_closed(&self, ctx: &ViewContext<'_>, last: bool);
    fn audit_start(&self, now: Now);
    /// Returns whether an audit was in progress (A3 is a no-op otherwise).
    fn audit_end(&self, now: Now) -> bool;
    fn reset(&self);
    fn expire_suspects(&self, now: Now);
    /// Paths the sentinel should check (forest views produce none).
    fn suspect_paths(&self) -> Vec<String>;
    fn update_suspects(&self, updates: &[SuspectUpdate], now: Now) -> usize;
    /// Nodes held, for metrics and limits.
    fn node_count(&self) -> usize;
    /// The driver's persistence, if it has one (`fs` and `forest-fs` do).
    fn persistence(&self) -> Option<&dyn PersistView> {
        None
    }
}
