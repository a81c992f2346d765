//! Committed indexes (issue 11, resume): per pipe and agent task, the last realtime position
//! of the agent's bus that a persisted view applied. An agent that opens a new session gets it
//! back and replays what came after it instead of sending a full snapshot.
//!
//! The positions live with the view they describe: each batch record that carries one logs it
//! (so replay restores exactly the positions of the replayed content), and each view snapshot
//! writes the whole table beside it (`resume.fst`, tagged with the snapshot's log sequence).
//! A table that does not match its snapshot, or is damaged, is ignored with a warning: agents
//! then snapshot, which is slower but never wrong.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use fustor_core::wire::ResumePoint;
use fustor_view_fs::fs::persist::chunk::{Put, Rd};

use super::files::replace_atomically;

pub const RESUME_FILE: &str = "resume.fst";
const MAGIC: &[u8; 8] = b"FUSTRSUM";
const VERSION: u32 = 1;

/// `(pipe id, task id)` → position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeTable {
    points: HashMap<(String, String), ResumePoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResumeFileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("damaged committed-index file: {0}")]
    Corrupt(String),
    #[error("committed-index file version {0} is not supported (this Fusion reads {VERSION})")]
    Version(u32),
}

impl ResumeTable {
    pub fn get(&self, pipe: &str, task: &str) -> Option<&ResumePoint> {
        self.points.get(&(pipe.to_string(), task.to_string()))
    }

    /// Records `point`; a position of the same bus never goes backwards (batches of one
    /// session are applied in order, but a replayed batch may repeat an older position).
    pub fn note(&mut self, pipe: &str, task: &str, point: &ResumePoint) {
        let key = (pipe.to_string(), task.to_string());
        match self.points.get_mut(&key) {
            Some(p) if p.epoch == point.epoch => p.seq = p.seq.max(point.seq),
            Some(p) => *p = point.clone(),
            None => {
                self.points.insert(key, point.clone());
            }
        }
    }

    pub fn clear(&mut self) {
        self.points.clear();
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// `magic, version u32, snapshot seq u64, count, (pipe, task, epoch, seq)*, crc32`.
    pub fn encode(&self, snapshot_seq: u64) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.points.len() * 64);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&snapshot_seq.to_le_bytes());
        b.put_var(self.points.len() as u64);
        let mut keys: Vec<_> = self.points.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for ((pipe, task), p) in keys {
            b.put_bytes(pipe.as_bytes());
            b.put_bytes(task.as_bytes());
            b.put_bytes(p.epoch.as_bytes());
            b.put_var(p.seq);
        }
        let sum = crc32fast::hash(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    /// The table and the snapshot sequence it was written with.
    pub fn decode(bytes: &[u8]) -> Result<(ResumeTable, u64), ResumeFileError> {
        let bad = |m: &str| ResumeFileError::Corrupt(m.to_string());
        if bytes.len() < 24 {
            return Err(bad("truncated"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 4);
        let sum = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        if &body[..8] != MAGIC {
            return Err(bad("not a committed-index file"));
        }
        if crc32fast::hash(body) != sum {
            return Err(bad("checksum mismatch"));
        }
        let version = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
        if version != VERSION {
            return Err(ResumeFileError::Version(version));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[12..20]);
        let mut r = Rd::new(&body[20..]);
        let e = |x: fustor_core::view::SnapshotError| ResumeFileError::Corrupt(x.to_string());
        let n = r.var().map_err(e)?;
        let mut t = ResumeTable::default();
        for _ in 0..n {
            let pipe = r.str().map_err(e)?.to_string();
            let task = r.str().map_err(e)?.to_string();
            let epoch = r.str().map_err(e)?.to_string();
            let seq = r.var().map_err(e)?;
            t.points.insert((pipe, task), ResumePoint { epoch, seq });
        }
        if !r.is_empty() {
            return Err(bad("bytes after the entries"));
        }
        Ok((t, u64::from_le_bytes(seq)))
    }

    pub fn save(&self, dir: &Path, snapshot_seq: u64) -> std::io::Result<()> {
        let bytes = self.encode(snapshot_seq);
        replace_atomically(&dir.join(RESUME_FILE), |w| w.write_all(&bytes))
    }

    /// The table saved with snapshot `snapshot_seq`; an absent file is an empty table.
    pub fn load(dir: &Path, snapshot_seq: u64) -> Result<ResumeTable, ResumeFileError> {
        let bytes = match std::fs::read(dir.join(RESUME_FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ResumeTable::default());
            }
            Err(e) => return Err(e.into()),
        };
        let (t, seq) = Self::decode(&bytes)?;
        if seq != snapshot_seq {
            return Err(ResumeFileError::Corrupt(format!(
                "written with snapshot {seq}, the snapshot on disk is {snapshot_seq}"
            )));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(epoch: &str, seq: u64) -> ResumePoint {
        ResumePoint {
            epoch: epoch.into(),
            seq,
        }
    }

    #[test]
    fn positions_of_one_bus_never_go_back_and_a_new_bus_replaces_them() {
        let mut t = ResumeTable::default();
        t.note("p", "a:p", &p("e1", 10));
        t.note("p", "a:p", &p("e1", 7));
        assert_eq!(t.get("p", "a:p"), Some(&p("e1", 10)));
        t.note("p", "a:p", &p("e2", 3));
        assert_eq!(t.get("p", "a:p"), Some(&p("e2", 3)));
        assert_eq!(t.get("p", "b:p"), None);
    }

    #[test]
    fn file_round_trips_and_refuses_damage_and_a_foreign_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = ResumeTable::default();
        t.note("p", "a:p", &p("e1", 10));
        t.note("q", "b:q", &p("e9", 1));
        t.save(dir.path(), 42).unwrap();
        assert_eq!(ResumeTable::load(dir.path(), 42).unwrap(), t);
        assert!(ResumeTable::load(dir.path(), 43).is_err(), "other snapshot");
        let path = dir.path().join(RESUME_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            ResumeTable::load(dir.path(), 42),
            Err(ResumeFileError::Corrupt(_))
        ));
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(ResumeTable::load(dir.path(), 42).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(ResumeTable::load(dir.path(), 42).unwrap().is_empty());
    }
}
