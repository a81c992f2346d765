//! The parallel directory walker shared by every scan.
//!
//! A pool of threads shares one stack of directories (LIFO keeps the pending set small on deep
//! trees). A worker opens a directory once, `fstat`s the descriptor (the directory row and its
//! mtime come from the very inode that is listed), reads all entries with `getdents`, and leaves
//! the per-entry `fstatat` calls, relative to the same descriptor, to the visitor. Children are
//! opened with `O_NOFOLLOW | O_DIRECTORY`, so a symlinked directory is never entered and loops
//! are impossible; only the starting directory may be reached through a symlink (a root such as
//! `/data -> /mnt/nfs`).

use std::ffi::{CStr, CString, OsStr};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};
use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::stat::{Meta, join_rel};

pub(crate) type Flow = ControlFlow<()>;

/// One directory to visit.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub abs: PathBuf,
    pub rel: String,
    /// Dense ids: a child's id is always greater than its parent's, so a reverse-id pass is a
    /// bottom-up pass.
    pub id: usize,
    pub parent: Option<usize>,
}

/// An entry as listed by `getdents`.
pub(crate) struct RawEntry {
    pub name: CString,
    /// `Unknown` on file systems that do not fill `d_type` (some NFS servers); then the visitor
    /// has to `fstatat` to classify.
    pub kind: FileType,
}

impl RawEntry {
    pub fn bytes(&self) -> &[u8] {
        self.name.to_bytes()
    }
}

/// What a visitor gets for a directory that could be opened.
pub(crate) struct OpenDir {
    dir: Dir,
    pub meta: Meta,
    pub entries: Vec<RawEntry>,
    /// False when `getdents` failed midway: the listing is partial and must not be taken as
    /// evidence that unlisted entries are gone.
    pub complete: bool,
}

/// How an entry looks when classified for a scan.
pub(crate) enum Kind {
    /// A real directory: to be descended.
    Dir,
    /// A row-worthy entry with its metadata. Symlinks are followed for their metadata (§10.2),
    /// so a symlink to a directory is reported with `is_dir` but never descended.
    Entry(Meta),
    /// Vanished or unreadable: no row.
    Skip,
}

impl OpenDir {
    /// `fstatat` relative to the listed directory.
    pub fn stat_entry(&self, name: &CStr, follow: bool) -> Result<Stat, Errno> {
        let fd = self.dir.fd()?;
        let flags = if follow {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        };
        rustix::fs::statat(fd, name, flags)
    }

    /// Classifies an entry, statting only when the row needs metadata or `d_type` is unknown.
    /// `want_row` lets a caller skip the `stat` of a file whose name does not match the pattern.
    pub fn classify(&self, task: &Task, e: &RawEntry, want_row: bool) -> Kind {
        let kind = match e.kind {
            FileType::Directory => return Kind::Dir,
            FileType::Unknown => match self.stat_entry(&e.name, false) {
                Ok(st) => {
                    let k = FileType::from_raw_mode(st.st_mode);
                    if k == FileType::Directory {
                        return Kind::Dir;
                    }
                    if !want_row {
                        return Kind::Skip;
                    }
                    if k != FileType::Symlink {
                        return Kind::Entry(Meta::from_stat(&st));
                    }
                    k
                }
                Err(err) => return self.skip(task, e, err),
            },
            k => k,
        };
        if !want_row {
            return Kind::Skip;
        }
        match self.stat_entry(&e.name, kind == FileType::Symlink) {
            Ok(st) => Kind::Entry(Meta::from_stat(&st)),
            Err(err) => self.skip(task, e, err),
        }
    }

    fn skip(&self, task: &Task, e: &RawEntry, err: Errno) -> Kind {
        if crate::stat::is_vanished(err) {
            tracing::debug!(dir = ?task.abs, name = ?OsStr::from_bytes(e.bytes()), "entry vanished");
        } else {
            tracing::warn!(dir = ?task.abs, name = ?OsStr::from_bytes(e.bytes()), error = %err,
                "cannot stat entry; skipped");
        }
        Kind::Skip
    }
}

/// Per-scan behaviour plugged into the walker.
pub(crate) trait Visitor: Sync {
    /// Per-worker state, e.g. a row buffer, so workers never contend on a shared one.
    type Local;
    fn local(&self) -> Self::Local;
    fn visit(
        &self,
        local: &mut Self::Local,
        task: &Task,
        dir: &OpenDir,
        children: &mut Children,
    ) -> Flow;
    /// The directory could not be opened (after it was queued).
    fn open_failed(&self, _local: &mut Self::Local, _task: &Task, _err: Errno) -> Flow {
        ControlFlow::Continue(())
    }
    /// The worker is about to wait for work or exit: flush buffers so that output is not held
    /// back while other workers are still busy.
    fn idle(&self, _local: &mut Self::Local) -> Flow {
        ControlFlow::Continue(())
    }
}

/// Collects the subdirectories a visitor wants descended.
pub(crate) struct Children<'a> {
    next_id: &'a AtomicUsize,
    out: Vec<Task>,
}

impl Children<'_> {
    pub fn push(&mut self, parent: &Task, name: &[u8]) {
        self.out.push(Task {
            abs: parent.abs.join(OsStr::from_bytes(name)),
            rel: join_rel(&parent.rel, name),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            parent: Some(parent.id),
        });
    }
}

struct Queue {
    stack: Vec<Task>,
    active: usize,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    cv: Condvar,
    next_id: AtomicUsize,
}

/// Walks from `start` (id 0) with `workers` threads (the caller's thread is one of them) and
/// returns the number of ids handed out, i.e. an upper bound for `Task::id`.
pub(crate) fn walk<V: Visitor>(start: PathBuf, start_rel: String, workers: usize, v: &V) -> usize {
    let shared = Shared {
        queue: Mutex::new(Queue {
            stack: vec![Task {
                abs: start,
                rel: start_rel,
                id: 0,
                parent: None,
            }],
            active: 0,
            stop: false,
        }),
        cv: Condvar::new(),
        next_id: AtomicUsize::new(1),
    };
    let workers = workers.max(1);
    if workers == 1 {
        worker(&shared, v);
    } else {
        std::thread::scope(|s| {
            for i in 1..workers {
                let spawned = std::thread::Builder::new()
                    .name(format!("fs-walk-{i}"))
                    .spawn_scoped(s, || worker(&shared, v));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot spawn a scan worker; continuing with fewer");
                }
            }
            worker(&shared, v);
        });
    }
    shared.next_id.load(Ordering::Relaxed)
}

fn worker<V: Visitor>(sh: &Shared, v: &V) {
    let mut local = v.local();
    loop {
        let mut flushed = false;
        let task = loop {
            let mut q = sh.queue.lock();
            if q.stop {
                return;
            }
            if let Some(t) = q.stack.pop() {
                q.active += 1;
                break t;
            }
            if q.active == 0 {
                drop(q);
                sh.cv.notify_all();
                let _ = v.idle(&mut local);
                return;
            }
            if !flushed {
                drop(q);
                flushed = true;
                if v.idle(&mut local).is_break() {
                    stop(sh);
                }
                continue;
            }
            sh.cv.wait(&mut q);
        };
        let mut children = Children {
            next_id: &sh.next_id,
            out: Vec::new(),
        };
        let flow = match open_dir(&task) {
            Ok(dir) => v.visit(&mut local, &task, &dir, &mut children),
            Err(err) => {
                if crate::stat::is_vanished(err) {
                    tracing::debug!(dir = ?task.abs, "directory vanished before it was listed");
                } else {
                    tracing::warn!(dir = ?task.abs, error = %err, "cannot open directory; skipped");
                }
                v.open_failed(&mut local, &task, err)
            }
        };
        let mut q = sh.queue.lock();
        q.active -= 1;
        q.stack.append(&mut children.out);
        if flow.is_break() {
            q.stop = true;
        }
        drop(q);
        sh.cv.notify_all();
    }
}

fn stop(sh: &Shared) {
    sh.queue.lock().stop = true;
    sh.cv.notify_all();
}

fn open_dir(task: &Task) -> Result<OpenDir, Errno> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if task.parent.is_some() {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::openat(CWD, &task.abs, flags, Mode::empty())?;
    let meta = Meta::from_stat(&rustix::fs::fstat(&fd)?);
    let mut dir = Dir::new(fd)?;
    let mut entries = Vec::new();
    let mut complete = true;
    while let Some(next) = dir.read() {
        match next {
            Ok(e) => {
                let name = e.file_name();
                let b = name.to_bytes();
                if b == b"." || b == b".." {
                    continue;
                }
                entries.push(RawEntry {
                    name: name.to_owned(),
                    kind: e.file_type(),
                });
            }
            Err(err) => {
                tracing::warn!(dir = ?task.abs, error = %err, "directory listing failed midway");
                complete = false;
                break;
            }
        }
    }
    Ok(OpenDir {
        dir,
        meta,
        entries,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    struct Collect(Mutex<BTreeSet<String>>);

    impl Visitor for Collect {
        type Local = ();
        fn local(&self) {}
        fn visit(&self, _: &mut (), task: &Task, dir: &OpenDir, children: &mut Children) -> Flow {
            self.0.lock().insert(task.rel.clone());
            for e in &dir.entries {
                match dir.classify(task, e, true) {
                    Kind::Dir => children.push(task, e.bytes()),
                    Kind::Entry(_) => {
                        self.0.lock().insert(join_rel(&task.rel, e.bytes()));
                    }
                    Kind::Skip => {}
                }
            }
            ControlFlow::Continue(())
        }
    }

    #[test]
    fn walks_every_directory_once_with_any_worker_count() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..20 {
            let d = tmp.path().join(format!("d{i}/sub"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("f"), b"x").unwrap();
        }
        for workers in [1, 3] {
            let c = Collect(Mutex::new(BTreeSet::new()));
            let n = walk(tmp.path().to_path_buf(), "/".into(), workers, &c);
            assert_eq!(n, 41);
            let seen = c.0.into_inner();
            assert_eq!(seen.len(), 1 + 20 * 3);
            assert!(seen.contains("/d7/sub/f"));
        }
    }
}
