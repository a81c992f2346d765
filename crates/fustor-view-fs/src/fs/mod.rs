//! The `fs` view driver: one in-memory tree with Fustor's consistency rules.

mod audit;
mod childindex;
pub mod config;
mod dircache;
mod invariants;
mod json;
mod lineage;
mod names;
pub mod persist;
mod query;
mod rules;
mod state;
mod suspects;
mod tree;
mod view;
mod view_query;

pub use config::FsViewConfig;
pub use json::Depth;
pub use query::{QueryError, SearchPattern, SubtreeStats, TreeOptions, ViewStats};
pub use state::{ApplyReport, FsState, Tombstone};
pub use suspects::SuspectUpdate;
pub use tree::NodeId;
pub use view::{FsView, Sender};
