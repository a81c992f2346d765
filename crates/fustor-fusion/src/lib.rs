//! fustor-fusion: the central daemon.
//!
//! Agents open sessions and push event batches through receivers; each Fusion pipe queues them
//! and applies them to its views on its own thread; users query the views over HTTP.

pub mod daemon;
pub mod drivers;
pub mod http;
pub mod jobs;
pub mod limits;
pub mod persist;
pub mod pipe;
pub mod registry;
pub mod service;
pub mod sessions;
pub mod state;
pub mod status;
pub mod tls;

pub use state::Fusion;
