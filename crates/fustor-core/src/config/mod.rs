//! Configuration of both daemons: schema, YAML loading and the rules derived from it
//! (`configuration.md`).
//!
//! Loading is tolerant by design (a broken file must not stop the pipes of the others) and
//! reports problems as [`Diagnostic`]s with file and key path, so daemons can print precise
//! errors and `check-config` can fail on them.
//!
//! ```no_run
//! use fustor_core::config::{AgentDriverSchemas, FustorPaths, load_agent, validate_agent};
//! // The agent passes the schemas of its registered drivers (`fustor_agent::drivers`).
//! let drivers = AgentDriverSchemas::default();
//! let mut loaded = load_agent(&FustorPaths::from_env(), &drivers);
//! let problems = validate_agent(&loaded, &drivers);
//! loaded.diagnostics.extend(problems);
//! for d in &loaded.diagnostics {
//!     eprintln!("{d}");
//! }
//! ```

mod agent;
mod common;
mod de;
mod diag;
mod driver;
mod fusion;
mod home;
mod keys;
mod load;
mod loose;
mod start;
mod validate;

#[cfg(test)]
mod tests;

pub use agent::{AgentConfig, AgentPipeConfig, RegistrySettings, SenderConfig, SourceConfig};
pub use common::{Credential, LoggingConfig, SenderCredential};
/// `deserialize_with` helpers for drivers' parameter types, with the ranges the schema uses.
pub use de::{
    FieldError, KeyPath, Segment, check_interval_secs, duration_days, duration_secs, from_value,
    interval_secs, opt_interval_secs, opt_thread_count,
};
pub use diag::{Diagnostic, Loaded, Severity};
pub use driver::{AgentDriverSchemas, DriverParams, DriverTable, ParamsSchema};
pub use fusion::{
    ApiKeyEntry, BoundKey, ConsistencyParams, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_RECEIVER_PORT,
    DEFAULT_SESSION_CLEANUP_INTERVAL, FsViewParams, FusionConfig, FusionPipeConfig, LimitParams,
    QueryKey, ReceiverConfig, ViewConfig, ViewDriverKind,
};
pub use home::{Daemon, FustorPaths, fustor_home, resolve_home};
pub use keys::{DriverSection, Shape as KeyShape, suggest, unknown_key};
pub use load::{
    DEFAULT_FILE, load_agent, load_agent_dir, load_agent_text, load_fusion, load_fusion_dir,
};
pub use start::{
    ConfigSignature, ReloadPlan, StartSelection, agent_reload_plan, agent_start_selection,
    fusion_start_selection,
};
pub use validate::{
    ReceiverServer, check_http_uri, validate_agent, validate_fusion, validate_fusion_with,
};
