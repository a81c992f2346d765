//! Per-key state of the polled bucket and the changes between two listings.
//!
//! The reference driver's polling only notices keys whose last-modified time moved past a
//! watermark, so a deleted object stays in the view forever. Keeping every key's
//! `(size, mtime, etag)` and comparing complete listings finds creates, overwrites (same
//! second, new etag) and deletes alike.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use fustor_core::{Event, EventType, FsRow, MessageSource};
use object_store::ObjectMeta;
use object_store::path::Path as KeyPath;

/// Rows per event, as the fs driver's batches.
pub const ROWS_PER_EVENT: usize = 100;

/// What identifies one version of an object; the etag is kept as a hash (8 bytes instead of
/// a 34-byte string per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyState {
    pub size: u64,
    pub mtime_ms: i64,
    pub etag: u64,
}

/// Keys as view paths (`/a/b.txt`), in byte order (the order S3 lists them in).
pub type Listing = BTreeMap<String, KeyState>;

/// The view path of a key under `prefix`: the prefix and its `/` are cut off.
pub fn view_path(prefix: Option<&KeyPath>, key: &KeyPath) -> Option<String> {
    let key = key.as_ref();
    let rel = match prefix {
        Some(p) => key.strip_prefix(p.as_ref())?.strip_prefix('/')?,
        None => key,
    };
    (!rel.is_empty()).then(|| format!("/{rel}"))
}

pub fn key_state(meta: &ObjectMeta) -> KeyState {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.e_tag.hash(&mut h);
    KeyState {
        size: meta.size,
        mtime_ms: meta.last_modified.timestamp_millis(),
        etag: h.finish(),
    }
}

/// The fs row of an object: a file whose mtime is its last-modified time.
pub fn row(path: &str, st: &KeyState) -> FsRow {
    FsRow::upsert(path, st.mtime_ms as f64 / 1000.0, st.size, false)
}

/// Events with the agent clock's index and timestamp, as every driver's.
pub fn event(event_type: EventType, source: MessageSource, rows: Vec<FsRow>) -> Event<FsRow> {
    let now = fustor_source_fs::epoch_now();
    let mut e = Event::fs(event_type, source, rows);
    e.index = (now * 1000.0) as i64;
    e.timestamp = Some(now);
    e
}

/// The realtime events turning `old` into `new`: inserts, updates, then deletes. A prefix
/// whose last key went away is deleted too (topmost such directory only), since a directory
/// exists in S3 only through its keys.
pub fn diff(old: &Listing, new: &Listing) -> Vec<Event<FsRow>> {
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for (path, st) in new {
        match old.get(path) {
            None => inserts.push(row(path, st)),
            Some(prev) if prev != st => updates.push(row(path, st)),
            Some(_) => {}
        }
    }
    let mut deletes: Vec<String> = Vec::new();
    let mut dirs: BTreeMap<String, ()> = BTreeMap::new();
    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        deletes.push(path.clone());
        if let Some(d) = topmost_empty_dir(path, new) {
            dirs.insert(d, ());
        }
    }
    // A directory that is inside another deleted one goes with it.
    let mut dir_rows: Vec<String> = Vec::new();
    for d in dirs.into_keys() {
        if dir_rows
            .last()
            .is_none_or(|p| !(d.starts_with(p.as_str()) && d[p.len()..].starts_with('/')))
        {
            dir_rows.push(d);
        }
    }
    deletes.extend(dir_rows);
    let mut out = Vec::new();
    for (ty, rows) in [
        (EventType::Insert, inserts),
        (EventType::Update, updates),
        (
            EventType::Delete,
            deletes.into_iter().map(FsRow::delete).collect(),
        ),
    ] {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<FsRow> = rows.by_ref().take(ROWS_PER_EVENT).collect();
            out.push(event(ty, MessageSource::Realtime, chunk));
        }
    }
    out
}

/// The highest ancestor of `path` (not `/`) with no key left under it in `listing`.
fn topmost_empty_dir(path: &str, listing: &Listing) -> Option<String> {
    let mut found = None;
    let mut dir = path;
    while let Some(i) = dir.rfind('/') {
        dir = &dir[..i];
        if dir.is_empty() {
            break;
        }
        if has_under(dir, listing) {
            break;
        }
        found = Some(dir.to_string());
    }
    found
}

fn has_under(dir: &str, listing: &Listing) -> bool {
    let lo = format!("{dir}/");
    listing
        .range(lo.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&lo))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn st(size: u64, mtime_ms: i64, etag: u64) -> KeyState {
        KeyState {
            size,
            mtime_ms,
            etag,
        }
    }

    fn rows_of(evs: &[Event<FsRow>], ty: EventType) -> Vec<String> {
        evs.iter()
            .filter(|e| e.event_type == ty)
            .flat_map(|e| e.rows.iter().map(|r| r.path.clone().unwrap()))
            .collect()
    }

    #[test]
    fn creates_overwrites_and_deletes_with_emptied_prefixes() {
        let mut old = Listing::new();
        old.insert("/a/b/c.txt".into(), st(1, 1000, 1));
        old.insert("/a/keep.txt".into(), st(1, 1000, 2));
        old.insert("/x/y/z.txt".into(), st(1, 1000, 3));
        old.insert("/same.txt".into(), st(5, 1000, 4));
        let mut new = old.clone();
        new.remove("/a/b/c.txt");
        new.remove("/x/y/z.txt");
        // Same size and second, new content: only the etag tells.
        new.insert("/same.txt".into(), st(5, 1000, 5));
        new.insert("/n/new.txt".into(), st(9, 2000, 6));
        let evs = diff(&old, &new);
        assert_eq!(rows_of(&evs, EventType::Insert), ["/n/new.txt"]);
        assert_eq!(rows_of(&evs, EventType::Update), ["/same.txt"]);
        assert_eq!(
            rows_of(&evs, EventType::Delete),
            ["/a/b/c.txt", "/x/y/z.txt", "/a/b", "/x"]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn events_hold_at_most_a_batch_of_rows() {
        let old = Listing::new();
        let new: Listing = (0..250)
            .map(|i| (format!("/k{i:04}"), st(1, 1, 1)))
            .collect();
        let evs = diff(&old, &new);
        let sizes: Vec<usize> = evs.iter().map(|e| e.rows.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[test]
    fn keys_map_to_paths_under_the_prefix() {
        let p = KeyPath::from("data/set");
        assert_eq!(
            view_path(Some(&p), &KeyPath::from("data/set/a/b.txt")).as_deref(),
            Some("/a/b.txt")
        );
        assert_eq!(view_path(Some(&p), &KeyPath::from("data/settle")), None);
        assert_eq!(
            view_path(None, &KeyPath::from("a.txt")).as_deref(),
            Some("/a.txt")
        );
    }
}
