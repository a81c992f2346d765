//! Pid files and signals for the two daemons' `start -D | stop | reload | status` commands
//! (`configuration.md` §5).

use std::path::Path;
use std::time::Duration;

use rustix::process::{Pid, Signal};

/// Reads a pid file; a missing, unparsable or stale file (process gone) yields `None`, and a
/// stale file is removed.
pub fn running_pid(pid_file: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let pid: i32 = match text.trim().parse() {
        Ok(p) => p,
        Err(_) => {
            let _ = std::fs::remove_file(pid_file);
            return None;
        }
    };
    if alive(pid) {
        Some(pid)
    } else {
        let _ = std::fs::remove_file(pid_file);
        None
    }
}

pub fn alive(pid: i32) -> bool {
    Pid::from_raw(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

pub fn signal(pid: i32, sig: Signal) -> std::io::Result<()> {
    let p =
        Pid::from_raw(pid).ok_or_else(|| std::io::Error::other(format!("invalid pid {pid}")))?;
    rustix::process::kill_process(p, sig).map_err(std::io::Error::from)
}

pub fn hangup(pid: i32) -> std::io::Result<()> {
    signal(pid, Signal::HUP)
}

/// SIGTERM, then poll once a second up to `patience`, then SIGKILL. Returns whether the
/// process had to be killed.
pub fn terminate(pid: i32, patience: Duration) -> std::io::Result<bool> {
    signal(pid, Signal::TERM)?;
    let deadline = std::time::Instant::now() + patience;
    while std::time::Instant::now() < deadline {
        if !alive(pid) {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if alive(pid) {
        signal(pid, Signal::KILL)?;
        return Ok(true);
    }
    Ok(false)
}

/// Writes our pid; the guard removes the file at exit if it still holds our pid.
pub struct PidFile {
    path: std::path::PathBuf,
}

impl PidFile {
    pub fn create(path: &Path) -> std::io::Result<PidFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .is_some_and(|p| p == std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Detaches the current process from its terminal session (the `-D` child calls this first).
pub fn detach() {
    let _ = rustix::process::setsid();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_round_trip_and_stale_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        {
            let _g = PidFile::create(&path).unwrap();
            assert_eq!(running_pid(&path), Some(std::process::id() as i32));
        }
        assert!(!path.exists());
        std::fs::write(&path, "999999999\n").unwrap();
        assert_eq!(running_pid(&path), None);
        assert!(!path.exists(), "stale pid file removed");
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(running_pid(&path), None);
    }
}
