//! The Fustor agent runtime (`agent-runtime.md`).
//!
//! * [`Agent`]: the process — loads `$FUSTOR_HOME/agent-config/*.yaml`, starts the selected
//!   pipes, hot-reloads, stops and writes `agent-state.json`.
//! * [`Pipe`]: one AgentPipe — session, heartbeat, snapshot, audits, sentinel, realtime sync
//!   and commands against a [`fustor_transport_http::Sender`].
//! * [`Source`] / [`SourceRegistry`]: one running source driver and one [`EventBus`] per
//!   source, shared by the pipes of that source and reference-counted.
//! * [`drivers`]: the source and sender drivers by configured name.
//!
//! Improvements over the reference are marked where they happen: sequence-numbered bus
//! positions, overflow turned into targeted rescans, exactly one snapshot per session, the
//! previous role kept on a failed heartbeat, realtime restarted after a watcher failure.

pub mod agent_id;
pub mod app;
pub mod backoff;
pub mod bus;
pub mod driver_report;
pub mod drivers;
pub mod exec;
pub mod pipe;
pub mod registry_config;
pub mod rescan;
pub mod source;
pub mod state;
pub mod statefile;
pub mod steer;

pub use app::{Agent, AgentError, AgentOptions, ReloadOutcome};
pub use backoff::Backoff;
pub use bus::{EventBus, RescanSet};
pub use pipe::{AppRequest, BATCH_EVENTS, Pipe, PipeSpec};
pub use source::{Capabilities, FsSource, Source, SourceError, SourceRegistry};
pub use state::{PipeState, PipeStatus};
