//! Realtime mapping against a real inotify instance.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use fustor_core::{EventType, FsRow, MessageSource};
use fustor_source_fs::{FsDriverParams, FsError, Realtime, RealtimeConfig, RealtimeItem, Scanner};

const WAIT: Duration = Duration::from_secs(5);

fn start(root: &Path, tweak: impl FnOnce(&mut RealtimeConfig)) -> Realtime {
    let params = FsDriverParams {
        max_scan_workers: 2,
        ..Default::default()
    };
    let scanner = Scanner::new(root, &params).unwrap();
    let pre = scanner.prescan();
    let mut cfg = RealtimeConfig::new(root, &params, pre.drift);
    tweak(&mut cfg);
    Realtime::start(cfg, Some(&pre)).unwrap()
}

/// `(type, row)` of realtime events, in order.
type Seen = Vec<(EventType, FsRow)>;

/// Collects until `done` holds for what was seen, or the timeout.
fn collect_until(rt: &Realtime, done: impl Fn(&Seen) -> bool) -> Seen {
    let deadline = Instant::now() + WAIT;
    let mut seen = Seen::new();
    while !done(&seen) && Instant::now() < deadline {
        if let Some(item) = rt.recv_timeout(Duration::from_millis(50)) {
            match item {
                RealtimeItem::Event(e) => {
                    assert_eq!(e.message_source, MessageSource::Realtime);
                    assert_eq!((e.event_schema.as_str(), e.table.as_str()), ("fs", "files"));
                    assert_eq!(e.rows.len(), 1);
                    assert!(e.index > 0);
                    seen.push((e.event_type, e.rows[0].clone()));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    seen
}

/// Whatever else arrives within a short quiet period.
fn drain(rt: &Realtime, quiet: Duration) -> Seen {
    let mut seen = Seen::new();
    while let Some(item) = rt.recv_timeout(quiet) {
        if let RealtimeItem::Event(e) = item {
            seen.push((e.event_type, e.rows[0].clone()));
        }
    }
    seen
}

fn has(seen: &Seen, ty: EventType, path: &str) -> bool {
    seen.iter()
        .any(|(t, r)| *t == ty && r.path.as_deref() == Some(path))
}

fn pos(seen: &Seen, ty: EventType, path: &str) -> usize {
    seen.iter()
        .position(|(t, r)| *t == ty && r.path.as_deref() == Some(path))
        .unwrap_or_else(|| panic!("no {ty:?} of {path} in {seen:#?}"))
}

#[test]
fn closed_write_is_an_atomic_upsert() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("d")).unwrap();
    let rt = start(tmp.path(), |_| {});
    fs::write(tmp.path().join("d/f.txt"), b"hello").unwrap();
    let seen = collect_until(&rt, |s| {
        s.iter().any(|(_, r)| r.is_atomic_write == Some(true))
    });
    let (ty, row) = seen.last().unwrap();
    assert_eq!(*ty, EventType::Update);
    assert_eq!(row.path.as_deref(), Some("/d/f.txt"));
    assert_eq!(row.file_name.as_deref(), Some("f.txt"));
    assert_eq!(row.size, Some(5));
    assert_eq!(row.is_atomic_write, Some(true));
}

#[test]
fn partial_writes_are_throttled_until_close() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = start(tmp.path(), |_| {});
    let mut f = fs::File::create(tmp.path().join("big")).unwrap();
    f.write_all(b"part1").unwrap();
    let seen = collect_until(&rt, |s| !s.is_empty());
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].1.is_atomic_write, Some(false));
    assert_eq!(seen[0].1.path.as_deref(), Some("/big"));
    f.write_all(b"part2").unwrap();
    f.sync_all().unwrap();
    assert!(
        drain(&rt, Duration::from_millis(300)).is_empty(),
        "second partial write not throttled"
    );
    drop(f);
    let seen = collect_until(&rt, |s| !s.is_empty());
    assert_eq!(seen[0].1.is_atomic_write, Some(true));
    assert_eq!(seen[0].1.size, Some(10));
}

#[test]
fn files_in_a_fresh_directory_tree_are_not_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = start(tmp.path(), |_| {});
    fs::create_dir_all(tmp.path().join("a/b/c")).unwrap();
    fs::write(tmp.path().join("a/b/f"), b"x").unwrap();
    fs::write(tmp.path().join("a/b/c/g"), b"y").unwrap();
    let seen = collect_until(&rt, |s| {
        has(s, EventType::Update, "/a/b/f") && has(s, EventType::Update, "/a/b/c/g")
    });
    for p in ["/a", "/a/b", "/a/b/c", "/a/b/f", "/a/b/c/g"] {
        assert!(has(&seen, EventType::Update, p), "{p} missing in {seen:#?}");
    }
    // The new directories are watched: later changes arrive as events.
    assert!(rt.is_watched(&tmp.path().join("a/b/c")));
    let _ = drain(&rt, Duration::from_millis(200));
    fs::write(tmp.path().join("a/b/c/later"), b"z").unwrap();
    let seen = collect_until(&rt, |s| has(s, EventType::Update, "/a/b/c/later"));
    assert!(has(&seen, EventType::Update, "/a/b/c/later"));
}

#[test]
fn renaming_a_file_is_delete_then_upsert() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("d")).unwrap();
    fs::write(tmp.path().join("x.tmp"), b"data").unwrap();
    let rt = start(tmp.path(), |_| {});
    fs::rename(tmp.path().join("x.tmp"), tmp.path().join("d/x")).unwrap();
    let seen = collect_until(&rt, |s| has(s, EventType::Update, "/d/x"));
    assert!(pos(&seen, EventType::Delete, "/x.tmp") < pos(&seen, EventType::Update, "/d/x"));
    let del = &seen[pos(&seen, EventType::Delete, "/x.tmp")].1;
    assert_eq!(del, &FsRow::delete("/x.tmp"));
    let up = &seen[pos(&seen, EventType::Update, "/d/x")].1;
    assert_eq!(up.size, Some(4));
    assert_eq!(up.is_atomic_write, None);
}

#[test]
fn renaming_a_directory_moves_its_subtree() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    fs::create_dir_all(r.join("d1/sub")).unwrap();
    fs::write(r.join("d1/f1"), b"1").unwrap();
    fs::write(r.join("d1/sub/f2"), b"2").unwrap();
    let rt = start(r, |_| {});
    fs::rename(r.join("d1"), r.join("d2")).unwrap();
    let seen = collect_until(&rt, |s| has(s, EventType::Update, "/d2/sub/f2"));
    let first_delete = pos(&seen, EventType::Delete, "/d1");
    assert_eq!(first_delete, 0, "{seen:#?}");
    for (old, new) in [
        ("/d1/f1", "/d2/f1"),
        ("/d1/sub", "/d2/sub"),
        ("/d1/sub/f2", "/d2/sub/f2"),
    ] {
        assert!(pos(&seen, EventType::Delete, old) < pos(&seen, EventType::Update, new));
    }
    assert!(has(&seen, EventType::Update, "/d2"));
    // Watches follow the new paths.
    assert!(rt.is_watched(&r.join("d2/sub")));
    assert!(!rt.is_watched(&r.join("d1/sub")));
    let _ = drain(&rt, Duration::from_millis(200));
    fs::write(r.join("d2/sub/new"), b"n").unwrap();
    let seen = collect_until(&rt, |s| has(s, EventType::Update, "/d2/sub/new"));
    assert!(has(&seen, EventType::Update, "/d2/sub/new"), "{seen:#?}");
}

#[test]
fn deleting_is_a_delete_row() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("gone"), b"x").unwrap();
    fs::create_dir(tmp.path().join("dir")).unwrap();
    let rt = start(tmp.path(), |_| {});
    fs::remove_file(tmp.path().join("gone")).unwrap();
    fs::remove_dir(tmp.path().join("dir")).unwrap();
    let seen = collect_until(&rt, |s| s.len() >= 2);
    assert_eq!(
        seen,
        vec![
            (EventType::Delete, FsRow::delete("/gone")),
            (EventType::Delete, FsRow::delete("/dir"))
        ]
    );
    assert!(!rt.is_watched(&tmp.path().join("dir")));
}

#[test]
fn a_file_moved_in_from_outside_is_reported() {
    let outside = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("in"), b"abc").unwrap();
    fs::create_dir(outside.path().join("indir")).unwrap();
    fs::write(outside.path().join("indir/inner"), b"i").unwrap();
    let rt = start(tmp.path(), |_| {});
    fs::rename(outside.path().join("in"), tmp.path().join("in")).unwrap();
    fs::rename(outside.path().join("indir"), tmp.path().join("indir")).unwrap();
    let seen = collect_until(&rt, |s| has(s, EventType::Update, "/indir/inner"));
    let (_, row) = &seen[pos(&seen, EventType::Update, "/in")];
    assert_eq!(row.size, Some(3));
    assert!(has(&seen, EventType::Update, "/indir"));
    assert!(has(&seen, EventType::Update, "/indir/inner"), "{seen:#?}");
    // And a directory moved out is a delete whose watches are dropped.
    let _ = drain(&rt, Duration::from_millis(200));
    fs::rename(tmp.path().join("indir"), outside.path().join("back")).unwrap();
    let seen = collect_until(&rt, |s| !s.is_empty());
    assert_eq!(seen[0], (EventType::Delete, FsRow::delete("/indir")));
    fs::write(outside.path().join("back/after"), b"x").unwrap();
    assert!(drain(&rt, Duration::from_millis(300)).is_empty());
}

#[test]
fn a_young_watch_is_never_evicted() {
    let tmp = tempfile::tempdir().unwrap();
    // One watch (the root, active just now): a new directory would have to evict it.
    let rt = start(tmp.path(), |c| c.watch_limit = 1);
    assert_eq!(rt.watch_count(), 1);
    fs::create_dir(tmp.path().join("new")).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut fatal = None;
    while fatal.is_none() && Instant::now() < deadline {
        if let Some(RealtimeItem::Error(e)) = rt.recv_timeout(Duration::from_millis(50)) {
            fatal = Some(e);
        }
    }
    assert!(
        matches!(fatal, Some(FsError::WatchWindowViolation { .. })),
        "{fatal:?}"
    );
    let deadline = Instant::now() + WAIT;
    while rt.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!rt.is_running());
}

#[test]
fn kernel_queue_overflow_requests_a_rescan() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = start(tmp.path(), |c| c.channel_capacity = 1);
    // The reader blocks on the one-slot channel while the kernel queue overflows. Alternating
    // writes to two files are not coalesced by the kernel and, being throttled, are cheap to
    // drain once the consumer reads again. The reader may already hold one read buffer's worth
    // (up to 8192 events) when it blocks, hence twice the queue size.
    let limit: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384);
    if limit > 1_000_000 {
        return;
    }
    let open = |n: &str| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(tmp.path().join(n))
    };
    let (mut a, mut b) = (open("a").unwrap(), open("b").unwrap());
    for _ in 0..(limit + 10_000) {
        a.write_all(b"x").unwrap();
        b.write_all(b"y").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rescan = None;
    while rescan.is_none() && Instant::now() < deadline {
        match rt.recv_timeout(Duration::from_secs(2)) {
            Some(RealtimeItem::Rescan { dir, path }) => rescan = Some((dir, path)),
            Some(_) => {}
            None => break,
        }
    }
    let (dir, path) = rescan.expect("no rescan after an overflow");
    assert_eq!(dir, tmp.path());
    assert_eq!(path, "/");
}

#[test]
fn a_recreated_root_is_watched_again_and_rescanned() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    let rt = start(&root, |_| {});
    fs::remove_dir(&root).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut waited = false;
    let mut rescan = None;
    while rescan.is_none() && Instant::now() < deadline {
        match rt.recv_timeout(Duration::from_millis(50)) {
            Some(RealtimeItem::Rescan { path, .. }) => rescan = Some(path),
            Some(RealtimeItem::Error(e)) => panic!("{e}"),
            _ if !waited => {
                waited = true;
                fs::create_dir(&root).unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(rescan.as_deref(), Some("/"));
    assert!(rt.is_watched(&root));
    fs::write(root.join("f"), b"x").unwrap();
    let seen = collect_until(&rt, |s| has(s, EventType::Update, "/f"));
    assert!(has(&seen, EventType::Update, "/f"));
}
