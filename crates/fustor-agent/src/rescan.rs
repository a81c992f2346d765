//! Targeted rescans: what the pipe does with a [`RescanSet`] (lost realtime events).
//!
//! For each directory the listing is sent as an audit: its row (not skipped), every file row
//! with `parent_path`/`parent_mtime`, and, when not recursive, every subdirectory row marked
//! `audit_skipped` so that Fusion's missing-item detection (consistency.md §8 A3) only judges
//! the children of the directories that were really listed. A directory that cannot be listed
//! completely is reported as skipped, never as a partial listing. A directory that vanished is
//! replaced by its nearest existing ancestor (listing that one reveals the deletion).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fustor_core::{Event, EventType, FsRow, MessageSource};
use fustor_source_fs::{BATCH_ROWS, Drift, FilePattern, epoch_now, row_for};

use crate::bus::{RescanSet, parent_of};

/// Walks the directories of `set` under `root` and hands out audit events of at most
/// [`BATCH_ROWS`] rows. `emit` returns false to stop early. Blocking.
pub fn targeted_audit(
    root: &Path,
    pattern: &FilePattern,
    drift: Drift,
    set: &RescanSet,
    emit: &mut dyn FnMut(Event<FsRow>) -> bool,
) {
    let index = drift.index_now();
    let timestamp = epoch_now();
    let mut out = Out {
        rows: Vec::with_capacity(BATCH_ROWS),
        index,
        timestamp,
        emit,
        stopped: false,
    };
    let targets = resolve_targets(root, set);
    let listed = |rel: &str| {
        targets
            .iter()
            .any(|(_, r, rec)| r == rel || (*rec && under(rel, r)))
    };
    for (abs, _, recursive) in &targets {
        let mut stack = vec![abs.clone()];
        while let Some(d) = stack.pop() {
            if out.stopped {
                return;
            }
            list_dir(root, &d, pattern, *recursive, &listed, &mut stack, &mut out);
        }
    }
    out.flush();
}

/// Resolves vanished directories to their nearest existing ancestor and drops targets that
/// another one covers.
fn resolve_targets(root: &Path, set: &RescanSet) -> Vec<(PathBuf, String, bool)> {
    let mut targets: Vec<(PathBuf, String, bool)> = Vec::new();
    for (dir, recursive) in set.entries() {
        let Some((abs, rel)) = nearest_existing(root, dir) else {
            continue;
        };
        let recursive = recursive && rel == dir;
        match targets.iter_mut().find(|(_, r, _)| *r == rel) {
            Some(t) => t.2 |= recursive,
            None => targets.push((abs, rel, recursive)),
        }
    }
    let covering: Vec<String> = targets
        .iter()
        .filter(|t| t.2)
        .map(|t| t.1.clone())
        .collect();
    targets.retain(|(_, rel, _)| !covering.iter().any(|c| c != rel && under(rel, c)));
    targets
}

fn under(p: &str, dir: &str) -> bool {
    dir == "/" || p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// `(absolute, reported)` of `dir` or of its nearest ancestor that is a directory.
fn nearest_existing(root: &Path, dir: &str) -> Option<(PathBuf, String)> {
    let mut rel = dir.to_string();
    loop {
        if rel.split('/').any(|c| c == "..") {
            return None;
        }
        let abs = fustor_source_fs::abs_of(root, &rel);
        if abs.is_dir() {
            let abs = if rel == "/" { root.to_path_buf() } else { abs };
            return Some((abs, rel));
        }
        if rel == "/" {
            return None;
        }
        rel = parent_of(&rel).to_string();
    }
}

struct Out<'a> {
    rows: Vec<FsRow>,
    index: i64,
    timestamp: f64,
    emit: &'a mut dyn FnMut(Event<FsRow>) -> bool,
    stopped: bool,
}

impl Out<'_> {
    fn push(&mut self, row: FsRow) {
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.rows.is_empty() || self.stopped {
            return;
        }
        let mut e = Event::fs(
            EventType::Update,
            MessageSource::Audit,
            std::mem::take(&mut self.rows),
        );
        e.index = self.index;
        e.timestamp = Some(self.timestamp);
        if !(self.emit)(e) {
            self.stopped = true;
        }
    }
}

fn row(root: &Path, abs: &Path) -> Option<FsRow> {
    match row_for(root, abs) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(path = ?abs, error = %e, "rescan: cannot stat; skipped");
            None
        }
    }
}

fn list_dir(
    root: &Path,
    dir: &Path,
    pattern: &FilePattern,
    recursive: bool,
    listed: &dyn Fn(&str) -> bool,
    stack: &mut Vec<PathBuf>,
    out: &mut Out<'_>,
) {
    let Some(mut dir_row) = row(root, dir) else {
        return;
    };
    let entries: Result<Vec<std::fs::DirEntry>, std::io::Error> =
        std::fs::read_dir(dir).and_then(|it| it.collect());
    let entries = match entries {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(dir = ?dir, error = %e, "rescan: cannot list; reported as skipped");
            dir_row.audit_skipped = Some(true);
            out.push(dir_row);
            return;
        }
    };
    let parent_rel = dir_row.path.clone();
    let parent_mtime = dir_row.modified_time;
    out.push(dir_row);
    for entry in entries {
        let abs = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            if recursive {
                stack.push(abs);
            } else if let Some(mut r) = row(root, &abs) {
                // A subdirectory listed by its own target must not be marked skipped.
                if !r.path.as_deref().is_some_and(listed) {
                    r.audit_skipped = Some(true);
                    out.push(r);
                }
            }
            continue;
        }
        if !pattern.matches(entry.file_name().as_bytes()) {
            continue;
        }
        if let Some(mut r) = row(root, &abs) {
            r.parent_path = parent_rel.clone();
            r.parent_mtime = parent_mtime;
            out.push(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(root: &Path, set: &RescanSet) -> BTreeMap<String, FsRow> {
        let mut rows = BTreeMap::new();
        targeted_audit(
            root,
            &FilePattern::default(),
            Drift::default(),
            set,
            &mut |e| {
                assert_eq!(e.message_source, MessageSource::Audit);
                assert!(e.rows.len() <= BATCH_ROWS);
                for r in e.rows {
                    rows.insert(r.path.clone().unwrap(), r);
                }
                true
            },
        );
        rows
    }

    #[test]
    fn lists_one_level_and_protects_subdirectories() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/sub")).unwrap();
        std::fs::write(root.join("a/f1"), b"x").unwrap();
        std::fs::write(root.join("a/sub/deep"), b"x").unwrap();
        let mut set = RescanSet::default();
        set.add("/a", false);
        let rows = run(root, &set);
        assert_eq!(
            rows.keys().cloned().collect::<Vec<_>>(),
            vec!["/a", "/a/f1", "/a/sub"]
        );
        assert_eq!(rows["/a"].audit_skipped, None);
        assert_eq!(rows["/a/sub"].audit_skipped, Some(true));
        assert_eq!(rows["/a/f1"].parent_path.as_deref(), Some("/a"));
        assert_eq!(rows["/a/f1"].parent_mtime, rows["/a"].modified_time);
    }

    #[test]
    fn recursive_and_vanished_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/sub")).unwrap();
        std::fs::write(root.join("a/sub/deep"), b"x").unwrap();
        let mut set = RescanSet::default();
        set.add("/a", true);
        set.add("/gone/child", false);
        let rows = run(root, &set);
        assert!(rows.contains_key("/a/sub/deep"));
        assert_eq!(rows["/a/sub"].audit_skipped, None);
        // /gone/child vanished with /gone: the root is listed instead (reveals the delete).
        assert!(rows.contains_key("/"));
        assert_eq!(rows["/a"].audit_skipped, None, "{:?}", rows["/a"]);
    }

    #[test]
    fn many_rows_are_batched() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..250 {
            std::fs::write(tmp.path().join(format!("f{i}")), b"").unwrap();
        }
        let mut set = RescanSet::default();
        set.add("/", false);
        let mut sizes = Vec::new();
        targeted_audit(
            tmp.path(),
            &FilePattern::default(),
            Drift::default(),
            &set,
            &mut |e| {
                sizes.push(e.rows.len());
                true
            },
        );
        assert_eq!(sizes, vec![100, 100, 51]);
    }
}
