//! Fustor's view engines.
//!
//! [`fs`] holds one file tree per view and arbitrates between realtime, snapshot, audit and
//! on-demand evidence (`consistency.md`). [`forest`] (one such tree per pipe, `forest-fs`) builds
//! on it.

pub mod forest;
pub mod fs;
mod registry;

pub use forest::ForestView;
pub use fs::{FsView, FsViewConfig};
pub use registry::register;
