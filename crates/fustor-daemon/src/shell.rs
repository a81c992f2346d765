//! `start -D`, foreground-start guards, `stop`, `reload` and the running check of `status`.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use fustor_core::config::{Daemon, FustorPaths};
use fustor_core::outln;
use fustor_core::process::{self, EXIT_NOT_RUNNING};

/// Hidden flag of `start`: this process is the detached child of `start -D`.
pub const DAEMON_CHILD_FLAG: &str = "--daemon-child";
/// Hidden flag of `start`: log to the log file only (the `-D` child's stderr is that file).
pub const NO_CONSOLE_LOG_FLAG: &str = "--no-console-log";

/// How long `start -D` waits for the child to serve, and `reload` for the daemon's verdict.
const READY_WAIT: Duration = Duration::from_secs(60);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_PATIENCE: Duration = Duration::from_secs(10);
/// `reload` when the daemon is not running (LSB "program is not running").
const EXIT_RELOAD_NOT_RUNNING: u8 = 7;

/// One daemon's identity for the shared verbs.
#[derive(Debug, Clone)]
pub struct Shell {
    pub daemon: Daemon,
    pub paths: FustorPaths,
    /// How messages name the daemon (`Fusion`, `Agent`).
    pub name: &'static str,
    /// How `start` messages name it (`Fusion`, `Fustor Agent`).
    pub title: &'static str,
}

impl Shell {
    pub fn pid_file(&self) -> PathBuf {
        self.paths.pid_file(self.daemon)
    }

    /// The pid of the running instance, if it is really ours.
    pub fn running_pid(&self) -> Option<i32> {
        process::running_pid(&self.pid_file())
    }

    /// `start -D`: runs `exe --home H start --no-console-log --daemon-child CHILD_ARGS` detached,
    /// its output appended to `log`, and returns once it serves (it writes the pid file only
    /// then), or prints what it logged before dying and exits 1.
    pub fn spawn_detached(&self, log: &Path, child_args: &[OsString]) -> io::Result<ExitCode> {
        if let Some(pid) = self.running_pid() {
            outln!("{} is already running with PID: {pid}", self.title);
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out = OpenOptions::new().create(true).append(true).open(log)?;
        let from = out.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("--home")
            .arg(&self.paths.home)
            .args(["start", NO_CONSOLE_LOG_FLAG, DAEMON_CHILD_FLAG])
            .args(child_args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let mut child = cmd.spawn()?;
        match process::wait_ready(&mut child, &self.pid_file(), READY_WAIT) {
            Ok(()) => {
                outln!("{} started with PID: {}", self.title, child.id());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{} failed to start: {e}", self.title);
                for line in process::log_tail(log, from, 15) {
                    eprintln!("  {line}");
                }
                if matches!(e, process::StartFailure::Timeout(_)) {
                    eprintln!(
                        "The daemon (PID {}) may still be starting; see {}",
                        child.id(),
                        log.display()
                    );
                }
                Ok(ExitCode::from(1))
            }
        }
    }

    /// First step of a foreground `start`: the `-D` child leaves the terminal session, and a
    /// second instance refuses to run — leaving the running one's pid file alone (issue 9).
    /// `Err` carries the exit code to return.
    pub fn begin_foreground(&self, daemon_child: bool) -> Result<(), ExitCode> {
        if daemon_child {
            // Spawned by the parent, so not a process-group leader: setsid cannot fail.
            process::detach();
        }
        match self.running_pid() {
            Some(pid) if u32::try_from(pid).ok() != Some(std::process::id()) => {
                eprintln!("{} is already running with PID: {pid}", self.title);
                Err(ExitCode::from(1))
            }
            _ => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&self) -> io::Result<ExitCode> {
        let Some(pid) = self.running_pid() else {
            outln!("{} is not running.", self.name);
            return Ok(ExitCode::SUCCESS);
        };
        outln!("Stopping {} (PID {pid}).", self.name);
        if process::terminate(pid, STOP_PATIENCE)? {
            outln!("{} did not stop within 10 s; killed it.", self.name);
            // It could not remove its own pid file.
            let _ = std::fs::remove_file(self.pid_file());
        }
        outln!("{} stopped.", self.name);
        Ok(ExitCode::SUCCESS)
    }

    /// Refuses a configuration with `errors` without disturbing the daemon, else sends SIGHUP
    /// and waits for the daemon's own verdict: 0 applied, 1 refused, 7 not running.
    pub fn reload(&self, errors: &[String]) -> io::Result<ExitCode> {
        let Some(pid) = self.running_pid() else {
            outln!("{} is not running.", self.name);
            return Ok(ExitCode::from(EXIT_RELOAD_NOT_RUNNING));
        };
        if !errors.is_empty() {
            for e in errors {
                eprintln!("ERROR: {e}");
            }
            eprintln!(
                "Reload refused: the running {} keeps its configuration.",
                self.name
            );
            return Ok(ExitCode::from(1));
        }
        let result_file = self.paths.reload_result_file(self.daemon);
        let before = process::read_reload(&result_file);
        process::hangup(pid)?;
        outln!("Reload signal sent to {} (PID {pid}).", self.name);
        match process::wait_reload(&result_file, pid, before.as_ref(), READY_WAIT) {
            Some(r) if r.ok => {
                outln!("Reload applied: {}", r.message);
                Ok(ExitCode::SUCCESS)
            }
            Some(r) => {
                eprintln!("Reload refused: {}", r.message);
                Ok(ExitCode::from(1))
            }
            None => {
                eprintln!(
                    "{} did not report the reload result within 60 s; see its log.",
                    self.name
                );
                Ok(ExitCode::from(1))
            }
        }
    }

    /// The `RUNNING (PID n)` / `STOPPED` line of `status` with its LSB code (0 / 3).
    pub fn status_line(&self, label: &str) -> (Option<i32>, ExitCode) {
        match self.running_pid() {
            Some(pid) => {
                outln!("{label}RUNNING (PID {pid})");
                (Some(pid), ExitCode::SUCCESS)
            }
            None => {
                outln!("{label}STOPPED");
                (None, ExitCode::from(EXIT_NOT_RUNNING))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(home: &Path) -> Shell {
        Shell {
            daemon: Daemon::Agent,
            paths: FustorPaths::new(home),
            name: "Agent",
            title: "Fustor Agent",
        }
    }

    #[test]
    fn verbs_on_a_stopped_daemon() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = shell(tmp.path());
        assert_eq!(s.running_pid(), None);
        assert_eq!(s.stop().ok(), Some(ExitCode::SUCCESS));
        assert_eq!(
            s.reload(&[]).ok(),
            Some(ExitCode::from(EXIT_RELOAD_NOT_RUNNING))
        );
        assert_eq!(s.status_line("").1, ExitCode::from(EXIT_NOT_RUNNING));
        assert!(s.begin_foreground(false).is_ok());
    }

    /// A pid file of this very process counts as running, but does not stop its own start.
    #[test]
    fn own_pid_file_is_running_and_not_a_second_instance() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = shell(tmp.path());
        let _g = process::PidFile::create(&s.pid_file()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.running_pid(), Some(std::process::id() as i32));
        assert_eq!(s.status_line("").1, ExitCode::SUCCESS);
        assert!(s.begin_foreground(false).is_ok());
    }
}
