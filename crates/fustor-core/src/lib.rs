//! Fustor's shared model.
//!
//! Everything the agent and fusion must agree on lives here so that the two daemons cannot drift
//! apart: the wire types of events and fs rows (`wire-protocol.md` §4), path normalisation, the
//! logical clock (`consistency.md` §12) and the fields_mapping projection (`agent-runtime.md` §12).

pub mod clock;
pub mod config;
pub mod event;
pub mod logfile;
pub mod lossless;
pub mod mapping;
pub mod path;
pub mod process;
pub mod row;
pub mod time;
pub mod view;
pub mod wire;

pub use clock::LogicalClock;
pub use event::{BatchKind, Event, EventBatch, EventType, MessageSource};
pub use path::{PathError, normalize_path};
pub use row::FsRow;
pub use time::Now;
