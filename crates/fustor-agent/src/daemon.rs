//! Process plumbing for the CLI (`configuration.md` §1, §5): pid file, signals, and the
//! rotating log file (10 MiB × 5 backups).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustix::process::{Pid, Signal};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub const LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const LOG_BACKUPS: usize = 5;

/// The pid recorded in the file, if it parses.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn pid_alive(pid: i32) -> bool {
    Pid::from_raw(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

/// The live pid from the pid file; a stale file is removed.
pub fn running_pid(pid_file: &Path) -> Option<i32> {
    if !pid_file.exists() {
        return None;
    }
    match read_pid(pid_file) {
        Some(pid) if pid_alive(pid) => Some(pid),
        _ => {
            let _ = std::fs::remove_file(pid_file);
            None
        }
    }
}

pub fn write_pid_file(pid_file: &Path) -> io::Result<()> {
    if let Some(dir) = pid_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(pid_file, format!("{}\n", std::process::id()))
}

/// Removes the pid file only if it still names this process.
pub fn remove_own_pid_file(pid_file: &Path) {
    if read_pid(pid_file) == Some(std::process::id() as i32) {
        let _ = std::fs::remove_file(pid_file);
    }
}

pub fn send_signal(pid: i32, sig: Signal) -> io::Result<()> {
    let p = Pid::from_raw(pid).ok_or_else(|| io::Error::other("invalid pid"))?;
    rustix::process::kill_process(p, sig).map_err(io::Error::from)
}

/// A size-rotating log file: `agent.log` → `agent.log.1` … `agent.log.N`.
pub struct RotatingWriter {
    path: PathBuf,
    max_bytes: u64,
    backups: usize,
    file: Option<File>,
    size: u64,
}

impl RotatingWriter {
    pub fn open(path: &Path, max_bytes: u64, backups: usize) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingWriter {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1),
            backups,
            file: Some(file),
            size,
        })
    }

    fn numbered(&self, i: usize) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{i}"));
        PathBuf::from(s)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.backups == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(self.numbered(self.backups));
            for i in (1..self.backups).rev() {
                let from = self.numbered(i);
                if from.exists() {
                    std::fs::rename(&from, self.numbered(i + 1))?;
                }
            }
            if self.path.exists() {
                std::fs::rename(&self.path, self.numbered(1))?;
            }
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                self.rotate()?;
                self.file
                    .as_mut()
                    .ok_or_else(|| io::Error::other("log file unavailable"))?
            }
        };
        let n = file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Installs the global subscriber: the rotating `log_file` (if any) and, unless `console` is
/// false, stderr. Noisy HTTP internals are capped at INFO.
pub fn init_logging(
    level: tracing::Level,
    log_file: Option<&Path>,
    console: bool,
) -> io::Result<()> {
    let filter = || {
        // The default level must be a directive of its own: `with_default_directive` only
        // applies when no other directive is given.
        let quiet = "hyper=info,hyper_util=info,reqwest=info,rustls=info,h2=info";
        EnvFilter::builder().parse_lossy(format!("{},{quiet}", LevelFilter::from_level(level)))
    };
    let file_layer = match log_file {
        Some(p) => {
            let w = RotatingWriter::open(p, LOG_MAX_BYTES, LOG_BACKUPS)?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(w))
                    .with_filter(filter()),
            )
        }
        None => None,
    };
    let console_layer = console.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_filter(filter())
    });
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(console_layer)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_backups() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("logs/agent.log");
        let mut w = RotatingWriter::open(&p, 10, 2).unwrap();
        for i in 0..5 {
            w.write_all(format!("line-{i}-xx\n").as_bytes()).unwrap(); // 10 bytes each
        }
        w.flush().unwrap();
        let read = |q: &Path| std::fs::read_to_string(q).unwrap();
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
        write_pid_file(&p).unwrap();
        assert_eq!(running_pid(&p), Some(std::process::id() as i32));
        std::fs::write(&p, "999999999\n").unwrap();
        assert_eq!(running_pid(&p), None, "stale pid");
        assert!(!p.exists(), "stale file removed");
        write_pid_file(&p).unwrap();
        remove_own_pid_file(&p);
        assert!(!p.exists());
    }
}
