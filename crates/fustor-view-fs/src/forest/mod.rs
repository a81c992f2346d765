//! The `forest-fs` view driver: one fs tree per Fusion pipe behind a single view
//! (`consistency.md` §14, `query-api.md` §5).
//!
//! Several NFS clients may see the same share, or several shares may hold copies of one data set.
//! A single `fs` view would merge their evidence and let one leader's audit delete the other's
//! files (§9); the forest keeps every pipe's tree separate, with all fs rules applied per tree,
//! and answers queries that compare the trees side by side (`stats`, `tree`, `search`, `diff`).
//!
//! * [`view`]: the container, event/session routing and the `ViewDriver` contract.
//! * [`best`]: which member is "best" for a path (`file_count`, `total_size`, `latest_mtime`).
//! * [`query`]: `stats` and `search` answers as JSON values.
//! * [`tree`]: `tree` answers, as a JSON value or as bytes (the fast path).
//! * [`diff`]: per-file comparison of one path across members.

pub mod best;
mod diff;
mod member;
mod persist;
mod query;
mod report;
mod tree;
mod view;
mod view_query;

#[cfg(test)]
mod tests;

pub use best::BestStrategy;
pub use tree::NO_VALID_VIEWS;
pub use view::ForestView;
