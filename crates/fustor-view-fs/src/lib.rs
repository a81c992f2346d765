//! Fustor's view engines.
//!
//! [`fs`] holds one file tree per view and arbitrates between realtime, snapshot, audit and
//! on-demand evidence (`consistency.md`). The forest view (one tree per pipe) builds on it.

pub mod fs;

pub use fs::{FsView, FsViewConfig};
