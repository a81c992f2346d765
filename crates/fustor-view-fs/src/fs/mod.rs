//! The `fs` view driver: one in-memory tree with Fustor's consistency rules.

pub mod access;
mod as_user;
mod audit;
mod childindex;
pub mod config;
mod dircache;
mod invariants;
mod json;
mod lineage;
mod nameindex;
mod names;
pub mod owners;
mod pattern;
pub mod persist;
mod query;
mod report;
mod report_walk;
mod rules;
mod search;
mod state;
mod suspects;
mod tree;
mod view;
mod view_query;

pub use config::FsViewConfig;
pub use json::Depth;
pub use pattern::SearchPattern;
pub use query::{QueryError, SubtreeStats, TreeOptions, ViewStats};
pub use report::{MAX_TOP as REPORT_MAX_TOP, Report};
pub use search::{SearchHits, SearchLimits};
pub use state::{ApplyReport, FsState, Tombstone};
pub use suspects::SuspectUpdate;
pub use tree::NodeId;
pub use view::{FsView, Page, Sender};
