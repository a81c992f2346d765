//! `driver: exec`: sources and senders implemented by any executable that speaks the JSON-lines
//! protocol of `docs/drivers.md` over its stdin and stdout.
//!
//! The agent owns the process: it starts it, checks the handshake, pings it, restarts it with
//! backoff when it exits, hangs or writes garbage, and reports each of these in the pipe status
//! and the log. Nothing a driver does can stop the agent: every read and write is on threads of
//! their own with bounded queues and timeouts ([`process`]).

pub mod process;
pub mod protocol;
mod sender;
mod source;
mod supervisor;

use std::time::Duration;

use fustor_core::config::{DriverParams, KeyShape};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use process::Launch;
pub use sender::ExecSender;
pub use source::ExecSource;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("invalid exec driver configuration: {0}")]
    Config(String),
    #[error("cannot start the driver: {0}")]
    Spawn(String),
    #[error("driver protocol error: {0}")]
    Protocol(String),
    #[error("driver does not answer: {0}")]
    Hung(String),
    #[error("the driver process is gone")]
    Gone,
    #[error("driver error: {0}")]
    Driver(String),
}

/// `driver_params` of an exec source or sender.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    /// Program and arguments (no shell).
    pub command: Vec<String>,
    /// Passed to the driver in `hello`, untouched.
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default = "d_10")]
    pub handshake_timeout_s: f64,
    /// How long a ping, a sentinel request or a sender request may stay unanswered.
    #[serde(default = "d_10")]
    pub reply_timeout_s: f64,
    #[serde(default = "d_5")]
    pub ping_interval_s: f64,
    #[serde(default = "d_line")]
    pub max_line_bytes: usize,
    /// First restart delay; doubled per consecutive failure up to `max_restart_delay_s`.
    #[serde(default = "d_1")]
    pub restart_delay_s: f64,
    #[serde(default = "d_60")]
    pub max_restart_delay_s: f64,
}

fn d_1() -> f64 {
    1.0
}
fn d_5() -> f64 {
    5.0
}
fn d_10() -> f64 {
    10.0
}
fn d_60() -> f64 {
    60.0
}
fn d_line() -> usize {
    1 << 20
}

impl DriverParams for ExecParams {
    const KEYS: &'static KeyShape = &KeyShape::Keys(&[
        ("command", KeyShape::Any),
        ("config", KeyShape::Any),
        ("handshake_timeout_s", KeyShape::Any),
        ("reply_timeout_s", KeyShape::Any),
        ("ping_interval_s", KeyShape::Any),
        ("max_line_bytes", KeyShape::Any),
        ("restart_delay_s", KeyShape::Any),
        ("max_restart_delay_s", KeyShape::Any),
    ]);
}

impl ExecParams {
    /// The name logs and status give the driver: the command line, cut in the middle when
    /// long, because the script and its arguments at the end tell drivers apart while a
    /// deep install path at the start does not.
    pub fn display_name(&self) -> String {
        const KEEP_HEAD: usize = 24;
        const KEEP_TAIL: usize = 56;
        let cmd: Vec<char> = self.command.join(" ").chars().collect();
        let shown: String = if cmd.len() <= KEEP_HEAD + KEEP_TAIL + 1 {
            cmd.iter().collect()
        } else {
            let head: String = cmd[..KEEP_HEAD].iter().collect();
            let tail: String = cmd[cmd.len() - KEEP_TAIL..].iter().collect();
            format!("{head}…{tail}")
        };
        format!("exec:{}", shown.escape_debug())
    }

    pub fn launch(&self, name: &str) -> Result<Launch, ExecError> {
        if self.command.is_empty() {
            return Err(ExecError::Config(
                "driver_params.command must name a program".into(),
            ));
        }
        Ok(Launch {
            command: self.command.clone(),
            max_line_bytes: self.max_line_bytes,
            name: name.to_string(),
        })
    }

    pub fn handshake_timeout(&self) -> Duration {
        fustor_core::time::duration_from_secs(self.handshake_timeout_s)
    }

    pub fn reply_timeout(&self) -> Duration {
        fustor_core::time::duration_from_secs(self.reply_timeout_s)
    }

    pub fn ping_interval(&self) -> Duration {
        fustor_core::time::duration_from_secs(self.ping_interval_s.max(0.05))
    }

    /// Delay before restart number `n` (1-based) of a crash loop.
    pub fn restart_delay(&self, n: u32) -> Duration {
        let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let s = (self.restart_delay_s.max(0.0) * 2f64.powi(exp)).min(self.max_restart_delay_s);
        fustor_core::time::duration_from_secs(if s.is_finite() { s } else { 60.0 })
    }
}

#[cfg(test)]
mod name_tests {
    use super::ExecParams;

    fn params(command: &[&str]) -> ExecParams {
        let v = serde_json::json!({ "command": command });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_long_command_keeps_its_script_and_arguments() {
        let deep = format!("/{}/drivers/broken.py", "very-long-dir/".repeat(12));
        let name = params(&["python3", &deep, "crash"]).display_name();
        assert!(name.starts_with("exec:python3 /very-long"), "{name}");
        assert!(name.ends_with("drivers/broken.py crash"), "{name}");
        assert!(name.chars().count() <= 5 + 24 + 1 + 56, "{name}");
        assert_eq!(
            params(&["./x.py", "a"]).display_name(),
            "exec:./x.py a",
            "a short one is whole"
        );
    }
}
