//! A size-rotated log file (`logs/*.log`, 10 MiB × 5 backups, as the reference).
//!
//! Plain `std::io::Write` so both daemons can put it behind their tracing subscriber.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;
pub const DEFAULT_BACKUPS: usize = 5;

struct Inner {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    backups: usize,
}

/// Cloneable handle; writes go through one mutex so lines never interleave.
#[derive(Clone)]
pub struct RotatingFile {
    inner: Arc<Mutex<Inner>>,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, backups: usize) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile {
            inner: Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                file,
                written,
                max_bytes,
                backups,
            })),
        })
    }
}

impl Inner {
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        for i in (1..self.backups).rev() {
            let from = backup(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, backup(&self.path, i + 1))?;
            }
        }
        if self.backups > 0 {
            std::fs::rename(&self.path, backup(&self.path, 1))?;
        }
        // Append mode, like the first open: an external `logrotate copytruncate` then makes the
        // next line land at the start of the emptied file, not at the old offset behind a hole.
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        if self.backups == 0 {
            self.file.set_len(0)?;
        }
        self.written = 0;
        Ok(())
    }
}

fn backup(path: &Path, i: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("log file lock poisoned"))?;
        if inner.max_bytes > 0
            && inner.written + buf.len() as u64 > inner.max_bytes
            && inner.written > 0
        {
            // A failed rotation must not stop logging: keep appending to the current file.
            let _ = inner.rotate();
        }
        inner.file.write_all(buf)?;
        inner.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("log file lock poisoned"))?;
        inner.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/x.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            writeln!(f, "{i:060}").unwrap();
        }
        assert!(path.exists());
        assert!(backup(&path, 1).exists());
        assert!(backup(&path, 2).exists());
        assert!(!backup(&path, 3).exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
    }

    /// `logrotate copytruncate` empties the file under the daemon: the next line must start the
    /// file again, before and after our own rotation.
    #[test]
    fn an_external_truncation_leaves_no_hole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut f = RotatingFile::open(&path, 100, 1).unwrap();
        for i in 0..3 {
            writeln!(f, "{i:060}").unwrap();
        }
        assert!(backup(&path, 1).exists(), "rotated once");
        for _ in 0..2 {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(0)
                .unwrap();
            writeln!(f, "after").unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        }
    }

    #[test]
    fn without_backups_rotation_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut f = RotatingFile::open(&path, 100, 0).unwrap();
        for i in 0..3 {
            // One write per line, as the log layer does (`writeln!` writes padding apart).
            f.write_all(format!("{i:060}\n").as_bytes()).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{:060}\n", 2)
        );
    }
}
