//! The read side of the view contract (`query-api.md` §2–§5).
//!
//! Fusion's HTTP layer knows routes, auth and readiness; what a route answers for a given view is
//! the driver's business. A driver that has no meaning for a route says so through
//! [`ViewQuery::supports`] and answers [`QueryError::Unsupported`], which the route turns into the
//! same 404 it gives for an unknown route, so a new driver plugs in without touching HTTP code.

use serde::Serialize;
use serde_json::Value;

use crate::Now;

/// The query routes of a view, for capability answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryRoute {
    Tree,
    /// `on_demand_scan` and `dry_run` of `/tree`: a scan only makes sense for a view fed by the
    /// agents of its own sessions.
    OnDemandScan,
    Search,
    Stats,
    Metadata,
    BlindSpots,
    Suspects,
    PutSuspects,
    Diff,
    /// `GET /report` (issue 14): usage by owner, group, size and age.
    Report,
}

impl QueryRoute {
    /// Routes that wait for the leader's initial snapshot (`query-api.md` §1) unless the driver
    /// answers per member (forest views).
    pub fn readiness_gated(self) -> bool {
        matches!(
            self,
            QueryRoute::Tree | QueryRoute::Search | QueryRoute::Stats | QueryRoute::Metadata
        )
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("path not found")]
    NotFound,
    #[error("{count} items exceed the limit of {limit}")]
    LimitExceeded { count: usize, limit: usize },
    /// The route does not apply to this driver.
    #[error("not supported by this view driver")]
    Unsupported,
}

/// Options of `GET /tree`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeOptions {
    pub recursive: bool,
    pub max_depth: Option<u32>,
    pub only_path: bool,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            recursive: true,
            max_depth: None,
            only_path: false,
        }
    }
}

/// `GET /tree`.
#[derive(Debug, Clone)]
pub struct TreeQuery<'a> {
    /// The path as the client sent it; each driver normalises it its own way.
    pub path: &'a str,
    pub options: TreeOptions,
    /// `best=` of forest views.
    pub best: Option<&'a str>,
    /// `max_tree_items` of the view.
    pub limit: Option<usize>,
    /// Fields Fusion adds to the answer (on-demand job state), written after the driver's own.
    pub extra: &'a [(&'a str, Value)],
    /// `dir_stats=true` (Rust only): every directory of the answer carries its `subtree`
    /// aggregates, so a listing shows each directory's size and file count without one
    /// `metadata` request per directory. Drivers without aggregates ignore it.
    pub dir_stats: bool,
    /// Answer as this user sees the tree (issue 14).
    pub identity: Option<&'a Identity>,
}

/// `GET /search`.
#[derive(Debug, Clone, Copy)]
pub struct SearchQuery<'a> {
    pub pattern: &'a str,
    /// `max_tree_items` of the view: an fs answer with more files than this is refused.
    pub max_items: Option<usize>,
    /// `limit=`: answer the first files in path order and say how many matched.
    pub limit: Option<usize>,
    pub identity: Option<&'a Identity>,
}

/// `GET /stats`.
#[derive(Debug, Clone, Copy)]
pub struct StatsQuery<'a> {
    /// `path=` as sent, if any.
    pub path: Option<&'a str>,
    pub best: Option<&'a str>,
    pub now: Now,
    pub identity: Option<&'a Identity>,
}

/// Who a query key stands for (issue 14): answers then show only what this user could see
/// through POSIX permission bits. Keys without identity see everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub uid: u32,
    /// Every group of the user, the primary one included.
    pub gids: Vec<u32>,
    /// Sees everything, like root on a server without root squash.
    pub admin: bool,
}

/// The section of `GET /report` asked for with `by=`; `None` asks for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportBy {
    /// Files and bytes per owner.
    Owner,
    /// Files and bytes per group.
    Group,
    /// Power-of-two size histogram and the largest files.
    Size,
    /// Age histogram by mtime and the oldest files.
    Age,
}

impl ReportBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "owner" => ReportBy::Owner,
            "group" => ReportBy::Group,
            "size" => ReportBy::Size,
            "age" => ReportBy::Age,
            _ => return None,
        })
    }
}

/// `GET /report`.
#[derive(Debug, Clone, Copy)]
pub struct ReportQuery<'a> {
    /// `path=` as sent.
    pub path: &'a str,
    pub by: Option<ReportBy>,
    /// How many owners/groups and largest/oldest files to list.
    pub top: usize,
    pub best: Option<&'a str>,
    pub now: Now,
    pub identity: Option<&'a Identity>,
}

/// A JSON answer. Large answers come already serialized, so the hot query paths make no
/// intermediate `Value`; small ones are values that the HTTP layer writes with the lossless
/// name escaping of [`crate::lossless`].
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Serialized JSON, names already escaped losslessly.
    Bytes(Vec<u8>),
    Value(Value),
    /// Serialized JSON in parts sent one after the other, so large pieces made separately (the
    /// members of a forest `tree`) are not copied into one buffer.
    Parts(Vec<Vec<u8>>),
    /// A serialized list that may leave matches out (`search?limit=`).
    Page {
        json: Vec<u8>,
        /// How many items matched.
        total: usize,
        truncated: bool,
    },
}

/// One entry of `GET /suspect-list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuspectEntry {
    pub path: String,
    pub suspect_until: f64,
}

pub type QueryResult<T> = Result<T, QueryError>;

/// The read side of a view driver. Calls are synchronous and may take the driver's read lock:
/// callers run them off the async threads. Every query defaults to
/// [`QueryError::Unsupported`], so a driver implements only what it answers.
pub trait ViewQuery: Send + Sync {
    /// Whether the driver answers `route`; unsupported routes keep their readiness gate so that
    /// an unsupported route answers as it would for the view it was written for.
    fn supports(&self, route: QueryRoute) -> bool;

    /// False for drivers whose members answer for themselves (forest views): their routes are
    /// not held back by the readiness of one leader.
    fn readiness_gated(&self) -> bool {
        true
    }

    fn tree(&self, _q: &TreeQuery<'_>) -> QueryResult<Answer> {
        Err(QueryError::Unsupported)
    }

    fn search(&self, _q: &SearchQuery<'_>) -> QueryResult<Answer> {
        Err(QueryError::Unsupported)
    }

    fn stats(&self, _q: &StatsQuery<'_>) -> QueryResult<Value> {
        Err(QueryError::Unsupported)
    }

    /// `path` as sent by the client.
    fn metadata(&self, _path: &str) -> QueryResult<Value> {
        Err(QueryError::Unsupported)
    }

    fn blind_spots(&self) -> QueryResult<Value> {
        Err(QueryError::Unsupported)
    }

    fn suspect_list(&self) -> QueryResult<Vec<SuspectEntry>> {
        Err(QueryError::Unsupported)
    }

    fn diff(&self, _path: &str, _max_items: Option<usize>) -> QueryResult<Value> {
        Err(QueryError::Unsupported)
    }

    fn report(&self, _q: &ReportQuery<'_>) -> QueryResult<Value> {
        Err(QueryError::Unsupported)
    }

    /// Whether every supported route answers as the user of a bound key (issue 14). A driver
    /// that does not is refused to such keys rather than showing them everything.
    fn answers_as_user(&self) -> bool {
        false
    }

    /// Which of `paths` `who` may see (issue 14), for routes that list paths (suspects, blind
    /// spots). A driver that cannot tell shows none of them to a key bound to a user.
    fn visible_paths(&self, paths: &[String], _who: &Identity) -> Vec<bool> {
        vec![false; paths.len()]
    }

    /// The name the agents reported for `uid` (issue 14), so the console can say whom a bound
    /// key stands for in the words of the site's NIS/LDAP rather than as a number.
    fn user_name(&self, _uid: u32) -> Option<String> {
        None
    }

    /// The name the agents reported for `gid`; see [`ViewQuery::user_name`].
    fn group_name(&self, _gid: u32) -> Option<String> {
        None
    }
}
