//! One persisted view: its directory, log, snapshots, restore and status.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fustor_core::Now;
use fustor_core::view::{SnapshotError, ViewDriver};
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use super::files::{finish_replace, quarantine, sync_dir, tmp_path};
use super::record;
use super::resume::{RESUME_FILE, ResumeTable};
use super::wal::{Wal, list_segments, read_segment};
use fustor_core::wire::{CommittedIndex, ResumePoint};

pub const SNAPSHOT_FILE: &str = "snapshot.fvs";
const SNAP_MAGIC: &[u8; 8] = b"FUSTSNAP";
const SNAP_VERSION: u32 = 1;

/// Per-view persistence settings (resolved from the view's configuration).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub snapshot_interval: Duration,
    pub fsync: bool,
}

/// What a restart restored, for `stats` and the readiness gate.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RestoreStatus {
    /// Wall time of the restore, while the view still holds restored content.
    pub restored_at: Option<f64>,
    /// Restored content not yet confirmed by a complete snapshot or audit.
    pub reconciling: bool,
}

/// What a restore found, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct RestoreReport {
    pub snapshot_seq: Option<u64>,
    pub replayed: u64,
    pub torn_bytes: u64,
    pub error: Option<String>,
    pub elapsed: Duration,
}

pub struct ViewStore {
    pub view_id: String,
    driver: Arc<dyn ViewDriver>,
    cfg: StoreConfig,
    /// Appliers hold it shared from logging a record to the end of applying it; a snapshot
    /// holds it exclusively, so it sees a state at a record boundary.
    gate: RwLock<()>,
    /// For a view with one tree (fs), appliers also hold this from logging to the end of
    /// applying, so that two pipes feeding the view apply in the order they logged (their
    /// writes to the tree are serialized anyway). A forest's pipes write different trees and
    /// keep applying in parallel.
    order: Mutex<()>,
    exclusive: bool,
    wal: RwLock<Option<Arc<Wal>>>,
    snapshotting: Mutex<()>,
    status: Mutex<RestoreStatus>,
    /// Committed indexes of the agents feeding this view ([`super::resume`]).
    resume: Mutex<ResumeTable>,
    last_snapshot: Mutex<Instant>,
    /// Size of the snapshot on disk: the log may grow to a share of it before the next one.
    snapshot_bytes: AtomicU64,
    /// Records logged since the last snapshot.
    dirty: AtomicBool,
    /// Duration of the last snapshot's pause of writers, in microseconds.
    pub last_pause_us: AtomicU64,
}

/// Guards held by an applier for one record. Stores are always entered in the order of their
/// view ids ([`begin_all`]), so appliers of several views never wait on each other in a cycle.
pub struct Logging<'a> {
    pub wal: Arc<Wal>,
    _order: Option<MutexGuard<'a, ()>>,
    _gate: RwLockReadGuard<'a, ()>,
}

/// Enters the stores of the persisted views among `views` in view-id order; answers each with
/// the view it belongs to.
pub fn begin_all<'a, V>(
    stores: &'a super::Stores,
    views: &'a [V],
    id: impl Fn(&V) -> &str,
    dirties: bool,
) -> Vec<(&'a Arc<ViewStore>, &'a V, Logging<'a>)> {
    let mut found: Vec<(&Arc<ViewStore>, &V)> = views
        .iter()
        .filter_map(|v| stores.get(id(v)).map(|s| (s, v)))
        .collect();
    found.sort_by(|a, b| a.0.view_id.cmp(&b.0.view_id));
    found.dedup_by(|a, b| a.0.view_id == b.0.view_id);
    found
        .into_iter()
        .filter_map(|(s, v)| s.begin_record(dirties).map(|l| (s, v, l)))
        .collect()
}

impl ViewStore {
    pub fn new(view_id: &str, driver: Arc<dyn ViewDriver>, cfg: StoreConfig) -> Self {
        let exclusive = driver.driver_name() == fustor_core::config::ViewDriverKind::Fs.name();
        ViewStore {
            view_id: view_id.to_string(),
            driver,
            cfg,
            exclusive,
            gate: RwLock::new(()),
            order: Mutex::new(()),
            wal: RwLock::new(None),
            snapshotting: Mutex::new(()),
            status: Mutex::new(RestoreStatus::default()),
            resume: Mutex::new(ResumeTable::default()),
            last_snapshot: Mutex::new(Instant::now()),
            snapshot_bytes: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            last_pause_us: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    /// Starts logging one record: `None` while the store is not open.
    pub fn begin(&self) -> Option<Logging<'_>> {
        self.begin_record(true)
    }

    /// [`ViewStore::begin`] for a record that alone does not call for a new snapshot (the
    /// suspect expiry that runs twice a second on every view: replaying it is cheap, and an
    /// idle view must not rewrite its snapshot every interval).
    pub fn begin_record(&self, dirties: bool) -> Option<Logging<'_>> {
        let gate = self.gate.read();
        let wal = self.wal.read().clone()?;
        let order = self.exclusive.then(|| self.order.lock());
        if dirties {
            self.dirty.store(true, Ordering::Relaxed);
        }
        Some(Logging {
            wal,
            _order: order,
            _gate: gate,
        })
    }

    pub fn status(&self) -> RestoreStatus {
        *self.status.lock()
    }

    /// A complete snapshot or audit ended: the view no longer needs reconciling.
    pub fn reconciled(&self) {
        let mut s = self.status.lock();
        if s.reconciling {
            s.reconciling = false;
            tracing::info!(view = %self.view_id, "restored view reconciled");
        }
    }

    /// The view was emptied (reset): what it serves is no longer restored content, and no
    /// agent can continue from a position it had reached.
    pub fn emptied(&self) {
        *self.status.lock() = RestoreStatus::default();
        self.resume.lock().clear();
    }

    /// The last session of the view ended and the view keeps its content (instead of the
    /// reference's live reset, V2): it serves it like restored content until reconciled.
    pub fn kept(&self) {
        let mut s = self.status.lock();
        s.restored_at.get_or_insert(Now::system().epoch);
        s.reconciling = true;
    }

    /// The committed index of `task` on `pipe`: `None` when the store is not open (the view is
    /// not persisted, nothing to resume from), an empty index when nothing is recorded.
    pub fn committed(&self, pipe: &str, task: &str) -> Option<CommittedIndex> {
        self.wal.read().as_ref()?;
        Some(match self.resume.lock().get(pipe, task) {
            Some(p) => CommittedIndex {
                epoch: Some(p.epoch.clone()),
                seq: p.seq,
            },
            None => CommittedIndex::default(),
        })
    }

    /// A batch ending at `point` was logged and applied.
    pub fn note_committed(&self, pipe: &str, task: &str, point: &ResumePoint) {
        self.resume.lock().note(pipe, task, point);
    }

    /// Loads the snapshot and replays the log into the (empty) view, then opens a new log
    /// segment. Damage is reported and never fatal: the view starts empty (or with the intact
    /// prefix of its log) and the damaged files are moved aside.
    pub fn open(&self, now: Now) -> std::io::Result<RestoreReport> {
        let t = Instant::now();
        std::fs::create_dir_all(&self.cfg.dir)?;
        let mut report = RestoreReport::default();
        let snap = self.cfg.dir.join(SNAPSHOT_FILE);
        self.snapshot_bytes.store(
            std::fs::metadata(&snap).map_or(0, |m| m.len()),
            Ordering::Relaxed,
        );
        let _ = std::fs::remove_file(tmp_path(&snap));
        let segments = list_segments(&self.cfg.dir)?;
        let mut content = false;
        let mut last_seq = 0u64;
        match self.load_snapshot(&snap, now) {
            Ok(Some(seq)) => {
                report.snapshot_seq = Some(seq);
                last_seq = seq;
                content = true;
                match ResumeTable::load(&self.cfg.dir, seq) {
                    Ok(t) => *self.resume.lock() = t,
                    Err(e) => tracing::warn!(view = %self.view_id, error = %e,
                        "committed indexes ignored: agents feeding this view send a full snapshot"),
                }
            }
            Ok(None) => {}
            Err(e) => {
                let mut bad = vec![snap.clone(), self.cfg.dir.join(RESUME_FILE)];
                bad.extend(segments.iter().map(|(_, p)| p.clone()));
                let moved = quarantine(&self.cfg.dir, &bad);
                tracing::error!(
                    view = %self.view_id,
                    error = %e,
                    moved_to = ?moved.as_ref().map(|p| p.display().to_string()),
                    "persisted view refused: it starts empty"
                );
                report.error = Some(e.to_string());
                return self.finish_open(report, 1, Vec::new(), false, t);
            }
        }
        let offset = now.mono - now.epoch;
        let mut kept = Vec::new();
        let mut stop: Option<String> = None;
        let count = segments.len();
        for (i, (_, path)) in segments.iter().enumerate() {
            if stop.is_some() {
                break;
            }
            let last_segment = i + 1 == count;
            let driver = self.driver.clone();
            let resume = &self.resume;
            let read = read_segment(path, last_segment, |seq, payload| {
                if seq <= last_seq {
                    return Ok(());
                }
                if seq != last_seq + 1 {
                    return Err(format!(
                        "log record {seq} follows {last_seq}: records are missing"
                    ));
                }
                let r = record::replay(&driver, payload, offset)?;
                if r.emptied {
                    resume.lock().clear();
                }
                if let Some((pipe, task, p)) = r.committed {
                    resume.lock().note(&pipe, &task, &p);
                }
                last_seq = seq;
                report.replayed += 1;
                content = true;
                Ok(())
            });
            match read {
                Ok(r) if r.torn_bytes > 0 => {
                    report.torn_bytes += r.torn_bytes;
                    if last_segment {
                        tracing::warn!(view = %self.view_id, bytes = r.torn_bytes, "torn tail of the log cut (a write in progress at the crash)");
                    } else {
                        stop = Some(format!(
                            "a damaged record in the middle of the log ({} bytes unread)",
                            r.torn_bytes
                        ));
                    }
                    kept.push(path.clone());
                }
                Ok(_) => kept.push(path.clone()),
                Err(e) => stop = Some(e),
            }
        }
        if let Some(e) = stop {
            let rest: Vec<PathBuf> = segments
                .iter()
                .map(|(_, p)| p.clone())
                .filter(|p| !kept.contains(p))
                .collect();
            let moved = quarantine(&self.cfg.dir, &rest);
            tracing::error!(
                view = %self.view_id,
                error = %e,
                last_applied = last_seq,
                moved_to = ?moved.as_ref().map(|p| p.display().to_string()),
                "log replay stopped: the view holds the state up to the last intact record"
            );
            report.error = Some(e);
        }
        self.finish_open(report, last_seq + 1, kept, content, t)
    }

    fn finish_open(
        &self,
        mut report: RestoreReport,
        next_seq: u64,
        old: Vec<PathBuf>,
        content: bool,
        t: Instant,
    ) -> std::io::Result<RestoreReport> {
        let wal = Wal::open(&self.view_id, &self.cfg.dir, next_seq, old, self.cfg.fsync)?;
        *self.wal.write() = Some(wal);
        if content && self.driver.node_count() > 1 {
            *self.status.lock() = RestoreStatus {
                restored_at: Some(Now::system().epoch),
                reconciling: true,
            };
        }
        // Replayed records are not in a snapshot yet: take one at the first check, so the next
        // start does not replay them again.
        self.dirty.store(report.replayed > 0, Ordering::Relaxed);
        if report.replayed > 0
            && let Some(past) = Instant::now().checked_sub(self.cfg.snapshot_interval)
        {
            *self.last_snapshot.lock() = past;
        }
        report.elapsed = t.elapsed();
        tracing::info!(
            view = %self.view_id,
            snapshot_seq = ?report.snapshot_seq,
            replayed = report.replayed,
            nodes = self.driver.node_count(),
            ms = report.elapsed.as_millis() as u64,
            "persisted view loaded"
        );
        Ok(report)
    }

    fn load_snapshot(&self, path: &Path, now: Now) -> Result<Option<u64>, SnapshotError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut head = [0u8; 24];
        r.read_exact(&mut head)
            .map_err(|_| SnapshotError::corrupt("snapshot header truncated"))?;
        let sum = u32::from_le_bytes([head[20], head[21], head[22], head[23]]);
        if &head[..8] != SNAP_MAGIC || crc32fast::hash(&head[..20]) != sum {
            return Err(SnapshotError::corrupt("bad snapshot header"));
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != SNAP_VERSION {
            return Err(SnapshotError::Version {
                found: version,
                supported: SNAP_VERSION,
            });
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&head[12..20]);
        let persistence = self
            .driver
            .persistence()
            .ok_or_else(|| SnapshotError::corrupt("the view's driver cannot restore"))?;
        persistence.read_snapshot(&mut r, now)?;
        let mut extra = [0u8; 1];
        if r.read(&mut extra)? != 0 {
            self.driver.reset();
            return Err(SnapshotError::corrupt(
                "bytes after the end of the snapshot",
            ));
        }
        Ok(Some(u64::from_le_bytes(seq)))
    }

    /// Writes a snapshot if anything was logged since the last one (or `force`). Writers of
    /// the view wait while the state is streamed; readers do not.
    pub fn snapshot(&self, force: bool) -> std::io::Result<bool> {
        let _one = self.snapshotting.lock();
        let Some(wal) = self.wal.read().clone() else {
            return Ok(false);
        };
        if !force && !self.dirty.load(Ordering::Relaxed) {
            *self.last_snapshot.lock() = Instant::now();
            return Ok(false);
        }
        let Some(persistence) = self.driver.persistence() else {
            return Ok(false);
        };
        let path = self.cfg.dir.join(SNAPSHOT_FILE);
        let tmp = tmp_path(&path);
        let t = Instant::now();
        let (file, seq, resume) = {
            let _gate = self.gate.write();
            let seq = wal.rotate()?;
            self.dirty.store(false, Ordering::Relaxed);
            let mut w = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
            let mut head = Vec::with_capacity(24);
            head.extend_from_slice(SNAP_MAGIC);
            head.extend_from_slice(&SNAP_VERSION.to_le_bytes());
            head.extend_from_slice(&seq.to_le_bytes());
            head.extend_from_slice(&crc32fast::hash(&head).to_le_bytes());
            w.write_all(&head)?;
            persistence.write_snapshot(&mut w, Now::system())?;
            let resume = self.resume.lock().clone();
            (w.into_inner().map_err(|e| e.into_error())?, seq, resume)
        };
        let pause = t.elapsed();
        self.last_pause_us
            .store(pause.as_micros() as u64, Ordering::Relaxed);
        // The table first: a crash between the two leaves it tagged with a snapshot that is
        // not on disk, so it is ignored (agents snapshot), never applied to the wrong content.
        resume.save(&self.cfg.dir, seq)?;
        finish_replace(file, &tmp, &path)?;
        self.snapshot_bytes.store(
            std::fs::metadata(&path).map_or(0, |m| m.len()),
            Ordering::Relaxed,
        );
        wal.drop_old_segments();
        *self.last_snapshot.lock() = Instant::now();
        tracing::info!(
            view = %self.view_id,
            seq,
            pause_ms = pause.as_millis() as u64,
            total_ms = t.elapsed().as_millis() as u64,
            "view snapshot written"
        );
        Ok(true)
    }

    /// Whether the periodic check should snapshot now.
    pub fn due(&self) -> bool {
        let Some(wal) = self.wal.read().clone() else {
            return false;
        };
        self.dirty.load(Ordering::Relaxed)
            && (self.last_snapshot.lock().elapsed() >= self.cfg.snapshot_interval
                || wal.bytes_since_rotation()
                    >= super::log_limit(self.snapshot_bytes.load(Ordering::Relaxed)))
    }

    /// Stops logging (after an optional final snapshot). Later writes to the view are not
    /// persisted: shutdown ends sessions afterwards, and those resets must not be recorded.
    pub fn close(&self, snapshot: bool) {
        if snapshot && let Err(e) = self.snapshot(false) {
            tracing::error!(view = %self.view_id, error = %e, "final snapshot failed; the log is kept");
        }
        let _gate = self.gate.write();
        if let Some(wal) = self.wal.write().take()
            && let Err(e) = wal.close()
        {
            tracing::error!(view = %self.view_id, error = %e, "closing the log failed");
        }
        let _ = sync_dir(&self.cfg.dir);
    }
}
