//! The daemon shell shared by `fustor-fusion` and `fustor-agent`.
//!
//! Both binaries have the same verbs (`start [-D]`, `stop`, `reload`, `status`) with the same
//! promises: `start -D` returns only once the daemon serves, nothing is signalled that is not
//! ours, exit codes follow LSB. Keeping those promises in one place is what keeps the two
//! daemons from drifting apart; each binary only supplies its name, how to validate its
//! configuration and what its foreground `start` runs. Pid files, signals and readiness are
//! [`fustor_core::process`].

mod cli;
pub mod env;
pub mod generate;
pub mod logging;
pub mod notify;
mod shell;

pub use cli::{VERSION, compat_args};
pub use shell::{DAEMON_CHILD_FLAG, NO_CONSOLE_LOG_FLAG, Shell};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write;

    use fustor_core::logfile::RotatingFile;
    use fustor_core::process::{PidFile, running_pid};

    #[test]
    fn log_file_rotates_by_size_and_keeps_n_backups() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("logs/agent.log");
        let mut w = RotatingFile::open(&p, 10, 2).unwrap();
        for i in 0..5 {
            w.write_all(format!("line-{i}-xx\n").as_bytes()).unwrap(); // 10 bytes each
        }
        w.flush().unwrap();
        let read = |q: &std::path::Path| std::fs::read_to_string(q).unwrap();
        assert_eq!(read(&p), "line-4-xx\n");
        assert_eq!(read(&tmp.path().join("logs/agent.log.1")), "line-3-xx\n");
        assert_eq!(read(&tmp.path().join("logs/agent.log.2")), "line-2-xx\n");
        assert!(!tmp.path().join("logs/agent.log.3").exists());
    }

    #[test]
    fn pid_file_lifecycle() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("agent.pid");
        assert_eq!(running_pid(&p), None);
        let guard = PidFile::create(&p).unwrap();
        assert_eq!(running_pid(&p), Some(std::process::id() as i32));
        std::fs::write(&p, "999999999\n").unwrap();
        assert_eq!(running_pid(&p), None, "stale pid");
        assert!(!p.exists(), "stale file removed");
        drop(guard);
        let guard = PidFile::create(&p).unwrap();
        drop(guard);
        assert!(!p.exists(), "own pid file removed at exit");
    }
}
