//! Snapshot, on-demand and audit scans against real directories.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fustor_core::{Event, EventType, FsRow, MessageSource};
use fustor_source_fs::{FsDriverParams, MtimeCache, Scanner, WatchHook};

fn params(pattern: &str, workers: usize) -> FsDriverParams {
    FsDriverParams {
        file_pattern: pattern.to_string(),
        max_scan_workers: workers,
        ..Default::default()
    }
}

/// root/{top.txt, a/{1.txt, b/{2.log}}, c/{3.txt}, empty/}
fn tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    fs::create_dir_all(r.join("a/b")).unwrap();
    fs::create_dir_all(r.join("c")).unwrap();
    fs::create_dir_all(r.join("empty")).unwrap();
    fs::write(r.join("top.txt"), b"top").unwrap();
    fs::write(r.join("a/1.txt"), b"one").unwrap();
    fs::write(r.join("a/b/2.log"), b"two!").unwrap();
    fs::write(r.join("c/3.txt"), b"3").unwrap();
    tmp
}

fn rows_by_path(events: &[Event<FsRow>]) -> BTreeMap<String, FsRow> {
    let mut out = BTreeMap::new();
    for e in events {
        for r in &e.rows {
            let p = r.path.clone().unwrap();
            assert!(
                out.insert(p.clone(), r.clone()).is_none(),
                "duplicate row {p}"
            );
        }
    }
    out
}

#[test]
fn snapshot_reports_every_dir_and_file() {
    let tmp = tree();
    for workers in [1, 4] {
        let s = Scanner::new(tmp.path(), &params("*", workers)).unwrap();
        let stream = s.snapshot();
        let index = stream.index();
        let events: Vec<_> = stream.collect();
        assert!(
            events
                .iter()
                .all(|e| e.message_source == MessageSource::Snapshot
                    && e.event_type == EventType::Update
                    && e.index == index
                    && e.event_schema == "fs"
                    && e.table == "files")
        );
        let rows = rows_by_path(&events);
        let paths: Vec<&str> = rows.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/",
                "/a",
                "/a/1.txt",
                "/a/b",
                "/a/b/2.log",
                "/c",
                "/c/3.txt",
                "/empty",
                "/top.txt"
            ]
        );
        let root = &rows["/"];
        assert_eq!(root.file_name.as_deref(), Some(""));
        assert_eq!(root.is_directory, Some(true));
        let f = &rows["/a/b/2.log"];
        assert_eq!(f.file_name.as_deref(), Some("2.log"));
        assert_eq!(f.size, Some(4));
        assert_eq!(f.is_directory, Some(false));
        assert!(f.parent_path.is_none() && f.audit_skipped.is_none());
    }
}

/// Issue 9: undecodable bytes are kept (they used to become U+FFFD, merging names).
#[test]
fn undecodable_names_are_reported_losslessly() {
    use fustor_core::lossless::{escape, unescape};
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(OsStr::from_bytes(b"d\xfe"));
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(OsStr::from_bytes(b"f\xff.txt")), b"x").unwrap();
    fs::write(dir.join(OsStr::from_bytes(b"f\xfe.txt")), b"yy").unwrap();
    let s = Scanner::new(tmp.path(), &params("*.txt", 2)).unwrap();
    let rows = rows_by_path(&s.snapshot().collect::<Vec<_>>());
    let paths: Vec<Vec<u8>> = rows.keys().map(|p| unescape(p).into_owned()).collect();
    assert_eq!(
        paths,
        [
            &b"/"[..],
            b"/d\xfe",
            b"/d\xfe/f\xfe.txt",
            b"/d\xfe/f\xff.txt"
        ]
    );
    let ff = &rows[escape(b"/d\xfe/f\xff.txt").as_ref()];
    assert_eq!(ff.file_name.as_deref(), Some(escape(b"f\xff.txt").as_ref()));
    assert_eq!(ff.size, Some(1));
    assert_eq!(rows[escape(b"/d\xfe/f\xfe.txt").as_ref()].size, Some(2));
    // An on-demand scan reopens the directory by its raw bytes.
    let sub = rows_by_path(&s.scan_path(&escape(b"/d\xfe"), true).collect::<Vec<_>>());
    assert_eq!(sub.len(), 3, "{:?}", sub.keys());
}

#[test]
fn pattern_filters_files_but_never_directories() {
    let tmp = tree();
    let s = Scanner::new(tmp.path(), &params("*.txt", 2)).unwrap();
    let rows = rows_by_path(&s.snapshot().collect::<Vec<_>>());
    assert!(rows.contains_key("/a/b"));
    assert!(rows.contains_key("/empty"));
    assert!(rows.contains_key("/c/3.txt"));
    assert!(!rows.contains_key("/a/b/2.log"));
    assert_eq!(rows.len(), 8);
}

#[test]
fn events_hold_exactly_100_rows_except_the_last() {
    let tmp = tempfile::tempdir().unwrap();
    for d in 0..3 {
        let dir = tmp.path().join(format!("d{d}"));
        fs::create_dir(&dir).unwrap();
        for i in 0..83 {
            fs::write(dir.join(format!("f{i}")), b"").unwrap();
        }
    }
    // 1 root + 3 dirs + 249 files = 253 rows.
    let s = Scanner::new(tmp.path(), &params("*", 3)).unwrap();
    let sizes: Vec<usize> = s.snapshot().map(|e| e.rows.len()).collect();
    assert_eq!(sizes, [100, 100, 53]);
}

#[test]
fn missing_root_yields_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Scanner::new(tmp.path().join("nope"), &params("*", 2)).unwrap();
    assert_eq!(s.snapshot().count(), 0);
    assert_eq!(s.audit(Arc::new(MtimeCache::new())).count(), 0);
    assert_eq!(s.scan_path("/", true).count(), 0);
}

#[test]
fn symlinked_directories_are_not_followed() {
    let tmp = tree();
    let r = tmp.path();
    symlink(r, r.join("a/loop")).unwrap();
    symlink(".", r.join("a/b/self")).unwrap();
    symlink("missing-target", r.join("c/dangling")).unwrap();
    let s = Scanner::new(r, &params("*", 2)).unwrap();
    let rows = rows_by_path(&s.snapshot().collect::<Vec<_>>());
    // The links are rows (with their targets' metadata, §10.2); nothing below them is.
    assert_eq!(rows["/a/loop"].is_directory, Some(true));
    assert!(rows.contains_key("/a/b/self"));
    assert!(!rows.contains_key("/c/dangling"));
    assert!(
        !rows
            .keys()
            .any(|p| p.starts_with("/a/loop/") || p.starts_with("/a/b/self/"))
    );
    assert_eq!(rows.len(), 11);
}

#[test]
fn unreadable_subdirectory_is_skipped() {
    let tmp = tree();
    let locked = tmp.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::write(locked.join("secret"), b"s").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let s = Scanner::new(tmp.path(), &params("*", 2)).unwrap();
    let rows = rows_by_path(&s.snapshot().collect::<Vec<_>>());
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    // The rest of the tree is intact either way.
    assert!(rows.contains_key("/a/b/2.log"));
    assert!(rows.contains_key("/locked"));
    if !rustix::process::geteuid().is_root() {
        assert!(!rows.contains_key("/locked/secret"));
    }
}

#[test]
fn scan_path_resolves_under_the_root() {
    let tmp = tree();
    let r = tmp.path();
    let s = Scanner::new(r, &params("*", 4)).unwrap();
    let one = |p: &str, rec: bool| -> Vec<String> {
        let evs: Vec<_> = s.scan_path(p, rec).collect();
        assert!(
            evs.iter()
                .all(|e| e.message_source == MessageSource::OnDemandJob)
        );
        rows_by_path(&evs).into_keys().collect()
    };
    assert_eq!(one("/a/1.txt", true), ["/a/1.txt"]);
    assert_eq!(one("/a", false), ["/a"]);
    assert_eq!(one("/a", true), ["/a", "/a/1.txt", "/a/b", "/a/b/2.log"]);
    assert_eq!(one("a/b/", true), ["/a/b", "/a/b/2.log"]);
    let agent_path = r.join("c").to_string_lossy().into_owned();
    assert_eq!(one(&agent_path, true), ["/c", "/c/3.txt"]);
    assert!(one("/nope", true).is_empty());
    assert!(one("/a/../../etc", true).is_empty());
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("x"), b"x").unwrap();
    symlink(outside.path(), r.join("escape")).unwrap();
    assert!(one("/escape", true).is_empty());
    assert_eq!(one("/", false), ["/"]);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(PathBuf, f64)>>);

impl WatchHook for Recorder {
    fn touch(&self, dir: &Path, ts: f64) {
        self.0.lock().unwrap().push((dir.to_path_buf(), ts));
    }
}

#[test]
fn snapshot_touches_each_directory_with_normalised_mtime() {
    let tmp = tree();
    let mut s = Scanner::new(tmp.path(), &params("*", 2)).unwrap();
    let rec = Arc::new(Recorder::default());
    s.set_watch_hook(rec.clone());
    s.set_drift(fustor_source_fs::Drift::new(100.0));
    let _ = s.snapshot().count();
    let touched: BTreeMap<PathBuf, f64> = rec.0.lock().unwrap().iter().cloned().collect();
    assert_eq!(touched.len(), 5);
    let c = tmp.path().join("c");
    let want = fs::metadata(c.join("3.txt"))
        .unwrap()
        .modified()
        .unwrap()
        .max(fs::metadata(&c).unwrap().modified().unwrap())
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 100.0;
    assert!((touched[&c] - want).abs() < 1e-5);
}

fn audit(s: &Scanner, cache: &mut Arc<MtimeCache>) -> (BTreeMap<String, FsRow>, usize) {
    let mut updates = Vec::new();
    let mut events = Vec::new();
    for item in s.audit(cache.clone()) {
        if let Some(e) = item.event {
            assert_eq!(e.message_source, MessageSource::Audit);
            assert!(e.rows.len() <= 100);
            events.push(e);
        }
        if let Some(u) = item.cache_update {
            updates.push(u);
        }
    }
    let n = updates.len();
    Arc::make_mut(cache).extend(updates);
    (rows_by_path(&events), n)
}

#[test]
fn audit_skips_unchanged_directories() {
    let tmp = tree();
    let r = tmp.path();
    let s = Scanner::new(r, &params("*", 3)).unwrap();
    let mut cache = Arc::new(MtimeCache::new());

    let (first, updates) = audit(&s, &mut cache);
    assert_eq!(updates, 5);
    assert_eq!(first.len(), 9);
    assert!(first.values().all(|row| row.audit_skipped.is_none()));
    let f = &first["/a/b/2.log"];
    assert_eq!(f.parent_path.as_deref(), Some("/a/b"));
    let b_mtime = first["/a/b"].modified_time.unwrap();
    assert_eq!(f.parent_mtime, Some(b_mtime));
    assert_eq!(first["/top.txt"].parent_path.as_deref(), Some("/"));
    assert!(cache.contains_key(&r.join("a/b")));

    let (second, updates) = audit(&s, &mut cache);
    assert_eq!(updates, 0);
    let dirs: BTreeSet<&str> = second.keys().map(String::as_str).collect();
    assert_eq!(dirs, BTreeSet::from(["/", "/a", "/a/b", "/c", "/empty"]));
    assert!(second.values().all(|row| row.audit_skipped == Some(true)));

    fs::write(r.join("a/b/new.txt"), b"n").unwrap();
    let (third, updates) = audit(&s, &mut cache);
    assert_eq!(updates, 1);
    assert_eq!(third["/a/b"].audit_skipped, None);
    assert!(third.contains_key("/a/b/new.txt"));
    assert!(third.contains_key("/a/b/2.log"));
    assert_eq!(third["/a"].audit_skipped, Some(true));
    assert!(!third.contains_key("/a/1.txt"));
}

#[test]
fn audit_batches_large_directories() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..150 {
        fs::write(tmp.path().join(format!("f{i}")), b"").unwrap();
    }
    let s = Scanner::new(tmp.path(), &params("*", 1)).unwrap();
    let items: Vec<_> = s.audit(Arc::new(MtimeCache::new())).collect();
    let shape: Vec<(usize, bool)> = items
        .iter()
        .map(|i| {
            (
                i.event.as_ref().map_or(0, |e| e.rows.len()),
                i.cache_update.is_some(),
            )
        })
        .collect();
    assert_eq!(shape, [(1, false), (100, true), (50, true)]);
    let index = items[0].event.as_ref().unwrap().index;
    assert!(
        items
            .iter()
            .all(|i| i.event.as_ref().is_none_or(|e| e.index == index))
    );
}
