//! Pid files, signals, readiness and reload answers for the two daemons'
//! `start -D | stop | reload | status` commands (`configuration.md` §5).
//!
//! The CLI must never report success for something that failed, and never act on a process
//! that is not ours: a pid file only counts when its process runs our executable, a pid file is
//! only ever removed by the instance that wrote it (or when stale), `start -D` waits for the
//! child to be ready, and `reload` waits for the daemon's verdict.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};

/// LSB exit status of `status` when the daemon is not running.
pub const EXIT_NOT_RUNNING: u8 = 3;

/// Writes one line to stdout, ignoring write errors: `status | head -1` closes the pipe early,
/// and `println!` would panic on the broken pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::process::write_stdout(format_args!("")) };
    ($($t:tt)*) => { $crate::process::write_stdout(format_args!($($t)*)) };
}

#[doc(hidden)]
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{args}").and_then(|()| out.flush());
}

#[derive(Debug, thiserror::Error)]
pub enum PidError {
    #[error("already running with PID: {0}")]
    Running(i32),
    #[error("cannot write the pid file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The pid recorded in `pid_file` if that process is alive *and runs our executable*; a
/// missing or unparsable file yields `None`, a stale one (process gone, or the pid reused by
/// another program) is removed.
pub fn running_pid(pid_file: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let pid = text.trim().parse::<i32>().ok().filter(|p| *p > 0);
    match pid {
        Some(pid) if alive(pid) && is_ours(pid) => Some(pid),
        _ => {
            let _ = std::fs::remove_file(pid_file);
            None
        }
    }
}

pub fn alive(pid: i32) -> bool {
    Pid::from_raw(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

/// Whether `pid` runs the same executable as this process (by file name, so that a rebuilt
/// or reinstalled binary still counts). `/proc/<pid>/exe` is tried first; when it cannot be read
/// (another user's process) the first word of `/proc/<pid>/cmdline` is used.
pub fn is_ours(pid: i32) -> bool {
    if u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
        return true;
    }
    let Some(ours) = std::env::current_exe().ok().and_then(|p| exe_name(&p)) else {
        return true;
    };
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if let Ok(target) = std::fs::read_link(proc.join("exe")) {
        return exe_name(&target).is_some_and(|n| n == ours);
    }
    match std::fs::read(proc.join("cmdline")) {
        Ok(cmd) => {
            let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
            let argv0 = Path::new(std::str::from_utf8(argv0).unwrap_or_default());
            exe_name(argv0).is_some_and(|n| n == ours)
        }
        // No /proc (not Linux): trust the pid file, as before.
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// File name of an executable path, without the ` (deleted)` the kernel appends once the
/// file was replaced (a rebuild while the daemon runs).
fn exe_name(p: &Path) -> Option<String> {
    let name = p.file_name()?.to_string_lossy();
    Some(name.trim_end_matches(" (deleted)").to_string())
}

pub fn signal(pid: i32, sig: Signal) -> std::io::Result<()> {
    let p =
        Pid::from_raw(pid).ok_or_else(|| std::io::Error::other(format!("invalid pid {pid}")))?;
    rustix::process::kill_process(p, sig).map_err(std::io::Error::from)
}

pub fn hangup(pid: i32) -> std::io::Result<()> {
    signal(pid, Signal::HUP)
}

/// SIGTERM, then poll up to `patience`, then SIGKILL. Returns whether the process had to be
/// killed.
pub fn terminate(pid: i32, patience: Duration) -> std::io::Result<bool> {
    signal(pid, Signal::TERM)?;
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
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

/// Our pid file; dropping it removes the file if it still holds our pid.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Creates the pid file, refusing when a live instance of our executable owns it. The file
    /// is created exclusively, so a second instance can never overwrite (and later delete) the
    /// first one's file; a stale file is replaced.
    pub fn create(path: &Path) -> Result<PidFile, PidError> {
        let io = |source| PidError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(format!("{}\n", std::process::id()).as_bytes())
                        .map_err(io)?;
                    return Ok(PidFile {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // `running_pid` removes the file when it is stale; then retry.
                    if let Some(pid) = running_pid(path) {
                        if u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
                            return Ok(PidFile {
                                path: path.to_path_buf(),
                            });
                        }
                        return Err(PidError::Running(pid));
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other(
            "the pid file keeps reappearing; another instance is starting",
        )))
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

/// Why a `start -D` child did not come up.
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    #[error("the daemon exited during startup ({0})")]
    Exited(ExitStatus),
    #[error("the daemon did not become ready within {0:?}")]
    Timeout(Duration),
    #[error("cannot watch the daemon: {0}")]
    Io(#[from] std::io::Error),
}

/// Waits until the `start -D` child is ready. Daemons write their pid file only once they
/// serve (listeners bound, pipes started), so readiness is "the pid file names the child".
pub fn wait_ready(
    child: &mut Child,
    pid_file: &Path,
    timeout: Duration,
) -> Result<(), StartFailure> {
    let deadline = Instant::now() + timeout;
    let id = i32::try_from(child.id()).unwrap_or(-1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(StartFailure::Exited(status));
        }
        let recorded = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        if recorded == Some(id) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StartFailure::Timeout(timeout));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `max_lines` lines written to `log` after byte `from` (what a failed child said),
/// each cut to 300 characters.
pub fn log_tail(log: &Path, from: u64, max_lines: usize) -> Vec<String> {
    let mut text = Vec::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        // A rotation in between makes `from` meaningless; read the whole (small) new file.
        let start = if from <= len { from } else { 0 };
        let start = start.max(len.saturating_sub(64 * 1024));
        if f.seek(SeekFrom::Start(start)).is_ok() {
            let _ = f.read_to_end(&mut text);
        }
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(max_lines)..]
        .iter()
        .map(|l| l.chars().take(300).collect())
        .collect()
}

/// The daemon's verdict on its latest reload, kept next to the pid file so that `reload` can
/// exit non-zero when the new configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadRecord {
    pub pid: u32,
    /// Increases with every reload of that process.
    pub seq: u64,
    pub ok: bool,
    pub message: String,
}

static RELOADS: AtomicU64 = AtomicU64::new(0);

/// Records the outcome of a reload of this process (atomically: temp file + rename).
pub fn record_reload(path: &Path, ok: bool, message: &str) {
    let rec = ReloadRecord {
        pid: std::process::id(),
        seq: RELOADS.fetch_add(1, Ordering::Relaxed) + 1,
        ok,
        message: message.chars().take(2000).collect(),
    };
    let Ok(json) = serde_json::to_vec(&rec) else {
        return;
    };
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot record the reload result");
    }
}

pub fn read_reload(path: &Path) -> Option<ReloadRecord> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Waits for a reload record of `pid` newer than `before`.
pub fn wait_reload(
    path: &Path,
    pid: i32,
    before: Option<&ReloadRecord>,
    timeout: Duration,
) -> Option<ReloadRecord> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(rec) = read_reload(path)
            && i64::from(rec.pid) == i64::from(pid)
            && before.is_none_or(|b| b.pid != rec.pid || b.seq < rec.seq)
        {
            return Some(rec);
        }
        if Instant::now() >= deadline || !alive(pid) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

    /// Issue 9: a stale pid file holding a reused PID made `stop` kill an unrelated process.
    #[test]
    fn a_pid_of_another_program_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(&path, format!("{}\n", other.id())).unwrap();
        assert!(alive(other.id() as i32));
        assert!(!is_ours(other.id() as i32));
        assert_eq!(running_pid(&path), None);
        assert!(!path.exists(), "foreign pid file treated as stale");
        // A new instance may then create its own file.
        drop(PidFile::create(&path).unwrap());
        let _ = other.kill();
        let _ = other.wait();
    }

    /// Issue 9: a failed second `start` deleted the running instance's pid file.
    #[test]
    fn a_live_pid_file_is_neither_overwritten_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        // A live process of our executable: a copy of this test binary, idling.
        let exe = std::env::current_exe().unwrap();
        let mut twin = std::process::Command::new(&exe)
            .args(["--exact", "process::tests::idle_helper", "--ignored"])
            .env("FUSTOR_IDLE_HELPER", "1")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::fs::write(&path, format!("{}\n", twin.id())).unwrap();
        match PidFile::create(&path) {
            Err(PidError::Running(p)) => assert_eq!(p, twin.id() as i32),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("took over a live instance's pid file"),
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            twin.id().to_string()
        );
        let _ = twin.kill();
        let _ = twin.wait();
    }

    #[test]
    #[ignore = "helper process for a_live_pid_file_is_neither_overwritten_nor_removed"]
    fn idle_helper() {
        if std::env::var_os("FUSTOR_IDLE_HELPER").is_some() {
            std::thread::sleep(Duration::from_secs(30));
        }
    }

    #[test]
    fn reload_records_are_matched_by_pid_and_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.reload");
        let me = std::process::id() as i32;
        assert_eq!(wait_reload(&path, me, None, Duration::ZERO), None);
        record_reload(&path, false, "bad");
        let first = wait_reload(&path, me, None, Duration::ZERO).unwrap();
        assert!(!first.ok);
        assert_eq!(wait_reload(&path, me, Some(&first), Duration::ZERO), None);
        record_reload(&path, true, "");
        let second = wait_reload(&path, me, Some(&first), Duration::ZERO).unwrap();
        assert!(second.ok && second.seq > first.seq);
    }

    #[test]
    fn log_tail_keeps_the_last_lines_after_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("l.log");
        std::fs::write(&log, "old\n").unwrap();
        let from = 4;
        std::fs::write(&log, "old\na\n\nb\nc\n").unwrap();
        assert_eq!(log_tail(&log, from, 2), vec!["b", "c"]);
        assert_eq!(log_tail(&log, 1000, 5), vec!["old", "a", "b", "c"]);
    }
}
