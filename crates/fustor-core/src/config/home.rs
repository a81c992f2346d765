//! `$FUSTOR_HOME` and the files the daemons keep in it (`configuration.md` §1).
//!
//! The CLI, the daemons and the tests must agree on these locations, so they are derived in one
//! place from one root instead of being joined ad hoc.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Which daemon a path belongs to; both share the home directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Daemon {
    Agent,
    Fusion,
}

impl Daemon {
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Agent => "agent",
            Daemon::Fusion => "fusion",
        }
    }
}

/// Resolves the home directory from the process environment.
///
/// Never fails: a missing `$HOME` or an unresolvable current directory degrades to a relative
/// path rather than refusing to start, which matches the reference.
pub fn fustor_home() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    resolve_home(
        std::env::var_os("FUSTOR_HOME").as_deref(),
        home.as_deref(),
        &cwd,
    )
}

/// The pure part of [`fustor_home`], so the rules can be tested without touching the environment.
pub fn resolve_home(fustor_home: Option<&OsStr>, user_home: Option<&Path>, cwd: &Path) -> PathBuf {
    let user_home = user_home.unwrap_or(cwd);
    match fustor_home.filter(|v| !v.is_empty()) {
        Some(raw) => absolutise(&expand_tilde(Path::new(raw), user_home), cwd),
        None => absolutise(&user_home.join(".fustor"), cwd),
    }
}

/// Only `~` and `~/...` are expanded; `~user` has no portable meaning without a passwd lookup.
fn expand_tilde(p: &Path, user_home: &Path) -> PathBuf {
    let mut comps = p.components();
    match comps.next() {
        Some(std::path::Component::Normal(first)) if first == "~" => {
            user_home.join(comps.as_path())
        }
        _ => p.to_path_buf(),
    }
}

fn absolutise(p: &Path, cwd: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// Every well-known path under one home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FustorPaths {
    pub home: PathBuf,
}

impl FustorPaths {
    pub fn new(home: impl Into<PathBuf>) -> Self {
        FustorPaths { home: home.into() }
    }

    /// Paths under [`fustor_home`].
    pub fn from_env() -> Self {
        FustorPaths::new(fustor_home())
    }

    /// `agent-config/` or `fusion-config/`.
    pub fn config_dir(&self, d: Daemon) -> PathBuf {
        self.home.join(format!("{}-config", d.name()))
    }

    pub fn pid_file(&self, d: Daemon) -> PathBuf {
        self.home.join(format!("{}.pid", d.name()))
    }

    /// The running daemon's verdict on its latest reload (`fustor_core::process::ReloadRecord`).
    pub fn reload_result_file(&self, d: Daemon) -> PathBuf {
        self.home.join(format!("{}.reload.json", d.name()))
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.home.join("logs")
    }

    pub fn log_file(&self, d: Daemon) -> PathBuf {
        self.logs_dir().join(format!("{}.log", d.name()))
    }

    /// The log file when `logging.dir` may move it; a relative `dir` is under the home.
    pub fn log_file_in(&self, d: Daemon, dir: Option<&Path>) -> PathBuf {
        match dir {
            Some(dir) => self.home.join(dir).join(format!("{}.log", d.name())),
            None => self.log_file(d),
        }
    }

    /// Informational shutdown dump of the agent; never read back.
    pub fn agent_state_file(&self) -> PathBuf {
        self.home.join("agent-state.json")
    }
}
