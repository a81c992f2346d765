//! Crash-safe state files under `$FUSTOR_HOME/agent-state/` (issue 11): what lets an agent
//! skip work after its own restart (an audit's directory mtimes, a source's position such as a
//! database log offset).
//!
//! A file is one header line and a JSON payload:
//!
//! ```text
//! FUSTOR-STATE <kind> v<version> len=<bytes> crc32=<8 hex digits>\n
//! {...}
//! ```
//!
//! Text so that an operator can read it, versioned so that a newer agent can refuse (and
//! ignore) an older layout instead of misreading it, checksummed so that a torn or damaged
//! file is detected. It is replaced atomically (temporary file, fsync, rename, directory
//! fsync): a crash leaves the old file or the new one. A damaged or foreign file is never
//! fatal: [`StateFile::load_or_warn`] logs why, moves the file aside and starts without it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// `agent-state` under the agent's home.
pub const STATE_DIR: &str = "agent-state";

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: damaged state file ({why})")]
    Corrupt { path: String, why: String },
    #[error(
        "{path}: state file of kind {found:?} version {version}, expected {kind:?} version {expected}"
    )]
    Foreign {
        path: String,
        found: String,
        version: u32,
        kind: String,
        expected: u32,
    },
}

/// One state file: where it lives, what it holds and in which layout version.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
    kind: &'static str,
    version: u32,
}

impl StateFile {
    /// `dir/<name>.state`; `name` is escaped into one path component. `kind` names the
    /// payload (one word), `version` its layout: bump it when the payload changes shape.
    pub fn new(dir: &Path, name: &str, kind: &'static str, version: u32) -> StateFile {
        StateFile {
            path: dir.join(format!("{}.state", component(name))),
            kind,
            version,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> String {
        self.path.display().to_string().escape_debug().to_string()
    }

    fn io(&self, source: std::io::Error) -> StateFileError {
        StateFileError::Io {
            path: self.shown(),
            source,
        }
    }

    /// Replaces the file with `value` atomically (blocking: call off the async threads).
    pub fn save<T: Serialize>(&self, value: &T) -> Result<(), StateFileError> {
        let payload = serde_json::to_vec(value).map_err(|e| StateFileError::Corrupt {
            path: self.shown(),
            why: e.to_string(),
        })?;
        let head = format!(
            "FUSTOR-STATE {} v{} len={} crc32={:08x}\n",
            self.kind,
            self.version,
            payload.len(),
            crc32fast::hash(&payload)
        );
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(head.as_bytes())?;
            f.write_all(&payload)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &self.path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.io(e)
        })
    }

    /// The stored value; `Ok(None)` when there is no file.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>, StateFileError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let corrupt = |why: &str| StateFileError::Corrupt {
            path: self.shown(),
            why: why.to_string(),
        };
        let nl = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| corrupt("no header line"))?;
        let head = std::str::from_utf8(&bytes[..nl]).map_err(|_| corrupt("header not text"))?;
        let payload = &bytes[nl + 1..];
        let mut words = head.split(' ');
        if words.next() != Some("FUSTOR-STATE") {
            return Err(corrupt("not a Fustor state file"));
        }
        let kind = words.next().ok_or_else(|| corrupt("no kind"))?;
        let version: u32 = words
            .next()
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("no version"))?;
        if kind != self.kind || version != self.version {
            return Err(StateFileError::Foreign {
                path: self.shown(),
                found: kind.to_string(),
                version,
                kind: self.kind.to_string(),
                expected: self.version,
            });
        }
        let len: usize = words
            .next()
            .and_then(|v| v.strip_prefix("len="))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("no length"))?;
        let sum = words
            .next()
            .and_then(|v| v.strip_prefix("crc32="))
            .and_then(|v| u32::from_str_radix(v, 16).ok())
            .ok_or_else(|| corrupt("no checksum"))?;
        if payload.len() != len {
            return Err(corrupt(&format!(
                "{} bytes of payload, the header says {len} (torn write?)",
                payload.len()
            )));
        }
        if crc32fast::hash(payload) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        serde_json::from_slice(payload)
            .map(Some)
            .map_err(|e| corrupt(&e.to_string()))
    }

    /// [`StateFile::load`] for callers that can always start without the state: a damaged,
    /// foreign or unreadable file is logged with the reason and moved aside (`.bad`), so the
    /// next save starts clean and the operator can still inspect it.
    pub fn load_or_warn<T: DeserializeOwned>(&self) -> Option<T> {
        match self.load() {
            Ok(v) => v,
            Err(e) => {
                let mut bad = self.path.as_os_str().to_owned();
                bad.push(".bad");
                let moved = std::fs::rename(&self.path, &bad).is_ok();
                tracing::warn!(error = %e, moved_aside = moved,
                    "agent state file ignored: starting without it");
                None
            }
        }
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One path component: ASCII letters, digits, `-`, `_` and `.` (not leading) kept, the rest
/// `%XX` per byte.
fn component(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && !s.is_empty()) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pos {
        file: String,
        offset: u64,
    }

    fn pos() -> Pos {
        Pos {
            file: "binlog.000042".into(),
            offset: 1234,
        }
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path(), "mysql/src 1", "binlog", 1);
        assert_eq!(f.path().file_name().unwrap(), "mysql%2Fsrc%201.state");
        assert_eq!(f.load::<Pos>().unwrap(), None);
        f.save(&pos()).unwrap();
        assert_eq!(f.load::<Pos>().unwrap(), Some(pos()));
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(text.starts_with("FUSTOR-STATE binlog v1 len="), "{text}");
        assert!(!dir.path().join("mysql%2Fsrc%201.state.tmp").exists());
    }

    #[test]
    fn damage_torn_writes_and_other_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path(), "p", "binlog", 1);
        f.save(&pos()).unwrap();
        let good = std::fs::read(f.path()).unwrap();
        // A flipped payload byte.
        let mut bad = good.clone();
        let last = bad.len() - 3;
        bad[last] ^= 0x01;
        std::fs::write(f.path(), &bad).unwrap();
        assert!(matches!(
            f.load::<Pos>(),
            Err(StateFileError::Corrupt { .. })
        ));
        // A torn write.
        std::fs::write(f.path(), &good[..good.len() - 4]).unwrap();
        let e = f.load::<Pos>().unwrap_err().to_string();
        assert!(e.contains("torn"), "{e}");
        // A newer layout, and another kind.
        std::fs::write(f.path(), &good).unwrap();
        let v2 = StateFile::new(dir.path(), "p", "binlog", 2);
        assert!(matches!(
            v2.load::<Pos>(),
            Err(StateFileError::Foreign { .. })
        ));
        let other = StateFile::new(dir.path(), "p", "mtimes", 1);
        assert!(matches!(
            other.load::<Pos>(),
            Err(StateFileError::Foreign { .. })
        ));
        // Garbage is moved aside and the caller starts without it.
        std::fs::write(f.path(), b"\x00\x01garbage").unwrap();
        assert_eq!(f.load_or_warn::<Pos>(), None);
        assert!(!f.path().exists());
        assert!(dir.path().join("p.state.bad").exists());
        f.save(&pos()).unwrap();
        assert_eq!(f.load_or_warn::<Pos>(), Some(pos()));
    }
}
