//! The write-ahead log of one persisted view, with group commit.
//!
//! Appends (by pipe consumers) only copy the record into a memory buffer under a short lock; a
//! flusher thread per log writes the buffer and fsyncs it, so every record that arrived during
//! one fsync shares the next one (group commit), and the consumer never waits for the disk.
//! Whoever must not answer before a record is durable waits on [`Wal::durable`].
//!
//! Segment files `wal-<first seq, 16 hex>.log`: `MAGIC`, then records
//! `len u32 LE, crc32 u32 LE (of seq and payload), seq u64 LE, payload`. Sequence numbers
//! increase by one across segments; a snapshot records the last one it contains, and segments
//! wholly before it are deleted.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::files::sync_dir;

pub const MAGIC: &[u8; 8] = b"FUSTWAL1";
const HEAD: usize = 16;
/// A record larger than this is damage, not data (bodies are bounded far below).
const MAX_RECORD: usize = 1 << 30;
/// Records that need no acknowledgement wait at most this long for the disk.
const LAZY_FLUSH: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log of view {view} failed: {source}")]
    Io {
        view: String,
        source: std::io::Error,
    },
    #[error("write-ahead log of view {0} is closed")]
    Closed(String),
}

struct Pending {
    bytes: Vec<u8>,
    next_seq: u64,
    /// A pending record's sender waits for an fsync (see [`Wal::append`]).
    sync_wanted: bool,
}

/// Longest time written records stay without an fsync: records nobody waits to be synced
/// (snapshot and audit rows, which an agent sends again when its session is lost) and every
/// record with `persist_fsync: false`.
const SYNC_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

struct Segment {
    file: File,
    path: PathBuf,
    first_seq: u64,
}

pub struct Wal {
    view: String,
    dir: PathBuf,
    fsync: bool,
    pending: Mutex<Pending>,
    segment: Mutex<Segment>,
    /// Segments before the current one, oldest first (deleted after a snapshot covers them).
    old: Mutex<Vec<PathBuf>>,
    wake: Condvar,
    wake_flag: Mutex<bool>,
    synced: watch::Sender<u64>,
    /// Last sequence number written to the OS (survives a crash of Fusion).
    written: watch::Sender<u64>,
    last_sync: Mutex<std::time::Instant>,
    failed: AtomicBool,
    closed: AtomicBool,
    /// Bytes appended since the last rotation (snapshot trigger).
    since_rotation: AtomicU64,
}

pub fn segment_name(first_seq: u64) -> String {
    format!("wal-{first_seq:016x}.log")
}

/// Segments in `dir`, ordered by first sequence number.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(hex) = name
            .strip_prefix("wal-")
            .and_then(|n| n.strip_suffix(".log"))
            && let Ok(seq) = u64::from_str_radix(hex, 16)
        {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn create_segment(dir: &Path, first_seq: u64) -> std::io::Result<Segment> {
    let path = dir.join(segment_name(first_seq));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    file.write_all(MAGIC)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(Segment {
        file,
        path,
        first_seq,
    })
}

impl Wal {
    /// Starts a new segment at `next_seq` (earlier segments are listed in `old`) and its
    /// flusher thread.
    pub fn open(
        view: &str,
        dir: &Path,
        next_seq: u64,
        old: Vec<PathBuf>,
        fsync: bool,
    ) -> std::io::Result<Arc<Wal>> {
        let segment = create_segment(dir, next_seq)?;
        let (synced, _) = watch::channel(next_seq.saturating_sub(1));
        let (written, _) = watch::channel(next_seq.saturating_sub(1));
        let wal = Arc::new(Wal {
            view: view.to_string(),
            dir: dir.to_path_buf(),
            fsync,
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(1 << 20),
                next_seq,
                sync_wanted: false,
            }),
            segment: Mutex::new(segment),
            old: Mutex::new(old),
            wake: Condvar::new(),
            wake_flag: Mutex::new(false),
            synced,
            written,
            last_sync: Mutex::new(std::time::Instant::now()),
            failed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            since_rotation: AtomicU64::new(0),
        });
        let w = wal.clone();
        std::thread::Builder::new()
            .name(format!("wal-{view}"))
            .spawn(move || w.flusher())?;
        Ok(wal)
    }

    /// Appends one record made of `parts`; answers its sequence number. `urgent` wakes the
    /// flusher at once (someone waits for it); otherwise the record goes with the next flush.
    /// `sync`: its sender will wait until it is fsynced ([`Wal::durable`]), so the flush that
    /// carries it syncs.
    pub fn append(&self, parts: &[&[u8]], urgent: bool, sync: bool) -> u64 {
        let len: usize = 8 + parts.iter().map(|p| p.len()).sum::<usize>();
        let seq = {
            let mut p = self.pending.lock();
            let seq = p.next_seq;
            p.next_seq += 1;
            p.sync_wanted |= sync;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&seq.to_le_bytes());
            for part in parts {
                crc.update(part);
            }
            p.bytes.extend_from_slice(&(len as u32).to_le_bytes());
            p.bytes.extend_from_slice(&crc.finalize().to_le_bytes());
            p.bytes.extend_from_slice(&seq.to_le_bytes());
            for part in parts {
                p.bytes.extend_from_slice(part);
            }
            seq
        };
        self.since_rotation
            .fetch_add(len as u64 + 8, Ordering::Relaxed);
        if urgent {
            // Someone waits only for the OS to have it: write it from this thread when the
            // segment is free, sparing the hand-off to the flusher and back. An fsync stays
            // the flusher's (it would stall the applier).
            if !(sync && self.fsync) && self.write_now() {
                return seq;
            }
            *self.wake_flag.lock() = true;
            self.wake.notify_one();
        }
        seq
    }

    /// Writes what is pending if no flush is under way; false when the flusher must do it.
    fn write_now(&self) -> bool {
        let Some(mut seg) = self.segment.try_lock() else {
            return false;
        };
        let taken = {
            let mut p = self.pending.lock();
            if p.sync_wanted && self.fsync {
                return false;
            }
            (!p.bytes.is_empty()).then(|| {
                let cap = p.bytes.capacity().min(1 << 22);
                (
                    std::mem::replace(&mut p.bytes, Vec::with_capacity(cap)),
                    p.next_seq - 1,
                )
            })
        };
        if let Some((bytes, last)) = taken {
            if let Err(e) = seg.file.write_all(&bytes) {
                self.fail(e);
                return true;
            }
            self.written.send_replace(last);
        }
        true
    }

    /// Waits until record `seq` is safe: fsynced when `sync` and the log syncs
    /// (`persist_fsync`), else written to the OS (it survives a crash of Fusion; the next
    /// periodic fsync, within [`SYNC_AT_LEAST_EVERY`], covers a crash of the machine).
    pub async fn durable(&self, seq: u64, sync: bool) -> Result<(), WalError> {
        let mut rx = if sync && self.fsync {
            self.synced.subscribe()
        } else {
            self.written.subscribe()
        };
        let failed = || self.failed.load(Ordering::Relaxed);
        if rx.wait_for(|s| *s >= seq || failed()).await.is_err() || failed() {
            return Err(WalError::Io {
                view: self.view.clone(),
                source: std::io::Error::other("the log could not be written"),
            });
        }
        Ok(())
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.pending.lock().next_seq
    }

    pub fn bytes_since_rotation(&self) -> u64 {
        self.since_rotation.load(Ordering::Relaxed)
    }

    fn flusher(self: Arc<Self>) {
        loop {
            {
                let mut flag = self.wake_flag.lock();
                if !*flag {
                    self.wake.wait_for(&mut flag, LAZY_FLUSH);
                }
                *flag = false;
            }
            let closed = self.closed.load(Ordering::Relaxed);
            if let Err(e) = self.flush_once() {
                self.fail(e);
            }
            if closed {
                return;
            }
        }
    }

    fn fail(&self, e: std::io::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::error!(view = %self.view, error = %e, "write-ahead log failed: batches are refused until Fusion restarts");
        }
        self.synced.send_modify(|_| {});
        self.written.send_modify(|_| {});
    }

    /// Writes and syncs what is pending; publishes the last durable sequence number.
    fn flush_once(&self) -> std::io::Result<()> {
        let mut seg = self.segment.lock();
        let taken = {
            let mut p = self.pending.lock();
            (!p.bytes.is_empty()).then(|| {
                let cap = p.bytes.capacity().min(1 << 22);
                (
                    std::mem::replace(&mut p.bytes, Vec::with_capacity(cap)),
                    p.next_seq - 1,
                    std::mem::take(&mut p.sync_wanted),
                )
            })
        };
        let mut sync_wanted = false;
        if let Some((bytes, last, wanted)) = taken {
            seg.file.write_all(&bytes)?;
            self.written.send_replace(last);
            sync_wanted = wanted;
        }
        let written = *self.written.borrow();
        let unsynced = written > *self.synced.borrow();
        let due = self.last_sync.lock().elapsed() >= SYNC_AT_LEAST_EVERY;
        if unsynced && ((self.fsync && sync_wanted) || due) {
            seg.file.sync_data()?;
            *self.last_sync.lock() = std::time::Instant::now();
            self.synced.send_replace(written);
        }
        Ok(())
    }

    /// Makes everything appended so far durable and starts a new segment. The caller holds the
    /// view's write gate (nothing is appended meanwhile). Answers the last sequence number in
    /// the closed segments.
    pub fn rotate(&self) -> std::io::Result<u64> {
        self.flush_once().inspect_err(|_| {
            self.failed.store(true, Ordering::Relaxed);
        })?;
        let mut seg = self.segment.lock();
        // Records nobody waited to be synced may be only written: the old segment is closed
        // durable either way.
        seg.file.sync_data()?;
        self.synced.send_replace(*self.written.borrow());
        let next = self.pending.lock().next_seq;
        let new = create_segment(&self.dir, next)?;
        let old = std::mem::replace(&mut *seg, new);
        self.old.lock().push(old.path);
        self.since_rotation.store(0, Ordering::Relaxed);
        Ok(next - 1)
    }

    /// Deletes the segments closed by the last [`Wal::rotate`] (a snapshot now covers them).
    pub fn drop_old_segments(&self) {
        let old = std::mem::take(&mut *self.old.lock());
        for p in old {
            if let Err(e) = std::fs::remove_file(&p) {
                tracing::warn!(view = %self.view, error = %e, "old log segment not deleted");
            }
        }
        let _ = sync_dir(&self.dir);
    }

    /// Flushes, syncs and stops the flusher; later appends are not written.
    pub fn close(&self) -> std::io::Result<()> {
        self.closed.store(true, Ordering::Relaxed);
        let r = self.flush_once();
        let seg = self.segment.lock();
        *self.wake_flag.lock() = true;
        self.wake.notify_one();
        r.and_then(|()| seg.file.sync_data())
    }

    pub fn first_seq(&self) -> u64 {
        self.segment.lock().first_seq
    }
}

/// What reading one segment found.
pub struct SegmentRead {
    /// Bytes of a damaged or incomplete record at the end, cut off.
    pub torn_bytes: u64,
}

/// Reads the records of one segment in order, calling `f(seq, payload)`. A record that is
/// incomplete or fails its checksum ends the segment: it and what follows are torn (the file
/// is truncated to the last good record when `cut` is set).
pub fn read_segment(
    path: &Path,
    cut: bool,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<SegmentRead, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let total = file.metadata().map_err(|e| e.to_string())?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 20, &mut file);
    let mut magic = [0u8; 8];
    if r.read_exact(&mut magic).is_err() || &magic != MAGIC {
        return Err("not a Fustor log segment (bad magic)".into());
    }
    let mut good = MAGIC.len() as u64;
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; HEAD];
        match read_full(&mut r, &mut head) {
            Ok(0) => break,
            Ok(n) if n < HEAD => break,
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let sum = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let seq = u64::from_le_bytes([
            head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
        ]);
        if !(8..=MAX_RECORD).contains(&len) || good + 8 + len as u64 > total {
            break;
        }
        payload.resize(len - 8, 0);
        if read_full(&mut r, &mut payload).map_err(|e| e.to_string())? < payload.len() {
            break;
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&seq.to_le_bytes());
        crc.update(&payload);
        if crc.finalize() != sum {
            break;
        }
        f(seq, &payload)?;
        good += 8 + len as u64;
    }
    let torn_bytes = total - good;
    drop(r);
    if torn_bytes > 0 && cut {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| e.to_string())?;
        file.set_len(good).map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
    }
    Ok(SegmentRead { torn_bytes })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A record whose sender does not ask for an fsync is answered once written, and is still
    /// fsynced within [`SYNC_AT_LEAST_EVERY`] even when nothing else is appended; one that asks
    /// for it is answered only once synced.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsynced_records_are_written_at_once_and_synced_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open("v", dir.path(), 1, Vec::new(), true).unwrap();
        let seq = wal.append(&[b"snapshot rows"], true, false);
        tokio::time::timeout(Duration::from_secs(2), wal.durable(seq, false))
            .await
            .unwrap()
            .unwrap();
        assert!(*wal.written.borrow() >= seq);
        let mut synced = wal.synced.subscribe();
        tokio::time::timeout(
            SYNC_AT_LEAST_EVERY + LAZY_FLUSH * 3,
            synced.wait_for(|s| *s >= seq),
        )
        .await
        .unwrap()
        .unwrap();
        let seq = wal.append(&[b"realtime rows"], true, true);
        tokio::time::timeout(Duration::from_secs(2), wal.durable(seq, true))
            .await
            .unwrap()
            .unwrap();
        assert!(*wal.synced.borrow() >= seq);
        wal.close().unwrap();
    }
}
