//! The in-memory event bus of one source (`agent-runtime.md` §11), with the pitfalls fixed.
//!
//! * Positions are **sequence numbers** assigned at `put`, strictly increasing, so two events
//!   of the same millisecond are two positions (`pitfalls.md` item 1). The millisecond index
//!   still travels inside the event.
//! * Every subscriber (one per pipe, keyed by the **pipe id**: §14 item 1) has its own position.
//!   Buffered events are kept until every subscriber of the ring committed them.
//! * A full ring never blocks the producer and never fails: the oldest event is dropped, and
//!   every subscriber that had not consumed it gets the event's directory added to its
//!   [`RescanSet`]. The pipe turns that set into a targeted audit (`pitfalls.md` item 3), so an
//!   overflow costs a rescan of the affected directories, never silent loss or a dead bus.
//! * Split rule (§11.3): when the committing subscriber is the fastest of a shared ring and the
//!   slowest one holds back at least 95 % of the capacity, the fast one moves to a new ring
//!   (taking its unconsumed tail with it, so no position is lost). New subscribers join the
//!   newest ring. Every ring receives every event of the source.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use fustor_core::{Event, FsRow};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Events are shared between rings and fetches, never copied.
pub type BusEvent = Arc<Event<FsRow>>;

#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub event: BusEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("pipe {0:?} is not subscribed to this bus")]
    NotSubscribed(String),
}

/// Directories (reported paths) whose changes may have been missed, each recursive or not.
/// Bounded: past [`RescanSet::LIMIT`] entries it collapses to the whole tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescanSet {
    dirs: BTreeMap<String, bool>,
}

impl RescanSet {
    pub const LIMIT: usize = 256;

    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.dirs.len()
    }

    /// Adds `dir`; a recursive ancestor already in the set covers it, a recursive `dir` covers
    /// its descendants.
    pub fn add(&mut self, dir: &str, recursive: bool) {
        let dir = if dir.is_empty() { "/" } else { dir };
        if self.covered(dir, recursive) {
            return;
        }
        if recursive {
            self.dirs.retain(|d, _| !is_under(d, dir));
        }
        self.dirs.insert(dir.to_string(), recursive);
        if self.dirs.len() > Self::LIMIT {
            self.dirs.clear();
            self.dirs.insert("/".to_string(), true);
        }
    }

    /// The directory of every row of an event that was dropped.
    pub fn add_event(&mut self, event: &Event<FsRow>) {
        for row in &event.rows {
            if let Some(p) = &row.path {
                self.add(parent_of(p), false);
            }
        }
    }

    pub fn merge(&mut self, other: RescanSet) {
        for (d, r) in other.dirs {
            self.add(&d, r);
        }
    }

    pub fn take(&mut self) -> RescanSet {
        std::mem::take(self)
    }

    /// `(directory, recursive)` in path order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, bool)> {
        self.dirs.iter().map(|(d, r)| (d.as_str(), *r))
    }

    pub fn contains(&self, dir: &str) -> Option<bool> {
        self.dirs.get(dir).copied()
    }

    fn covered(&self, dir: &str, recursive: bool) -> bool {
        if let Some(&r) = self.dirs.get(dir)
            && (r || !recursive)
        {
            return true;
        }
        let mut cur = dir;
        while cur != "/" {
            cur = parent_of(cur);
            if self.dirs.get(cur) == Some(&true) {
                return true;
            }
        }
        false
    }
}

/// `/a/b` → `/a`, `/a` → `/`, `/` → `/`.
pub fn parent_of(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `p` is `dir` or below it.
fn is_under(p: &str, dir: &str) -> bool {
    dir == "/" || p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// What a subscriber gets from [`EventBus::fetch`].
#[derive(Debug, Default)]
pub struct Fetched {
    pub events: Vec<Entry>,
    /// Changes this subscriber lost since the previous fetch.
    pub lost: RescanSet,
}

impl Fetched {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.lost.is_empty()
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.events.last().map(|e| e.seq)
    }
}

/// Counters for status output and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    pub puts: u64,
    pub dropped: u64,
    pub splits: u64,
    pub rings: usize,
    pub buffered: usize,
}

#[derive(Debug)]
struct Sub {
    /// Highest committed sequence number (0: nothing yet; sequences start at 1).
    last: u64,
    lost: RescanSet,
}

#[derive(Debug, Default)]
struct Ring {
    buf: VecDeque<Entry>,
    subs: BTreeMap<String, Sub>,
}

impl Ring {
    fn trim(&mut self) {
        let Some(low) = self.subs.values().map(|s| s.last).min() else {
            self.buf.clear();
            return;
        };
        while self.buf.front().is_some_and(|e| e.seq <= low) {
            self.buf.pop_front();
        }
    }
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    /// The last ring is the newest: new subscribers join it.
    rings: Vec<Ring>,
    stats: BusStats,
}

impl Inner {
    fn ring_of(&self, sub: &str) -> Option<usize> {
        self.rings.iter().position(|r| r.subs.contains_key(sub))
    }
}

/// What a new session can do with the position Fusion says it holds ([`EventBus::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The subscriber continues after `from`: every event after it is still buffered or was
    /// dropped by an overflow (and its directory is in the subscriber's rescan set).
    Replay { from: u64, pending: usize },
    /// Fusion's position belongs to another bus (an agent restart) or lies before events
    /// this bus no longer holds: only a full snapshot restores the view.
    Snapshot,
}

/// One bus per source; shared by the pipes of that source.
#[derive(Debug)]
pub struct EventBus {
    capacity: usize,
    /// Names this bus's numbering: sequence numbers restart with every agent process, so a
    /// position Fusion kept is only meaningful with the epoch it was taken in.
    epoch: String,
    inner: Mutex<Inner>,
    notify: Notify,
}

impl EventBus {
    /// `capacity` = the source's `max_queue_size` (at least 1).
    pub fn new(capacity: usize) -> Self {
        EventBus {
            capacity: capacity.max(1),
            epoch: uuid::Uuid::new_v4().simple().to_string(),
            inner: Mutex::new(Inner {
                next_seq: 1,
                rings: vec![Ring::default()],
                stats: BusStats::default(),
            }),
            notify: Notify::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The subscriber's committed position (0 before its first commit or when unknown).
    pub fn position(&self, sub: &str) -> u64 {
        let g = self.inner.lock();
        g.ring_of(sub)
            .and_then(|i| g.rings[i].subs.get(sub))
            .map_or(0, |s| s.last)
    }

    /// Positions subscriber `sub` after `committed`, the last event Fusion says it applied
    /// (`epoch` of the bus it came from), when nothing after it is lost unaccounted:
    ///
    /// * at or past the subscriber's own commit: the events Fusion acknowledged are there;
    ///   the subscriber skips to `committed` (an answer lost in a network cut);
    /// * behind it (Fusion lost acknowledged events, e.g. without fsync): a replay only if
    ///   the ring still holds every event after `committed`.
    ///
    /// Events dropped by an overflow after the subscriber's commit are already in its rescan
    /// set, so they never force a snapshot.
    pub fn resume(&self, sub: &str, epoch: Option<&str>, committed: u64) -> Resume {
        if epoch != Some(self.epoch.as_str()) {
            return Resume::Snapshot;
        }
        let mut g = self.inner.lock();
        let next = g.next_seq;
        let Some(i) = g.ring_of(sub) else {
            return Resume::Snapshot;
        };
        let ring = &mut g.rings[i];
        let first = ring.buf.front().map_or(next, |e| e.seq);
        let Some(s) = ring.subs.get_mut(sub) else {
            return Resume::Snapshot;
        };
        if committed >= next {
            // A position this bus never handed out.
            return Resume::Snapshot;
        }
        if committed < s.last && first > committed + 1 {
            return Resume::Snapshot;
        }
        s.last = committed;
        let pending = ring.buf.iter().filter(|e| e.seq > committed).count();
        ring.trim();
        Resume::Replay {
            from: committed,
            pending,
        }
    }

    /// Appends an event to every ring that has subscribers; returns its sequence number.
    pub fn put(&self, event: Event<FsRow>) -> u64 {
        let event = Arc::new(event);
        let seq = {
            let mut g = self.inner.lock();
            let inner = &mut *g;
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.stats.puts += 1;
            for ring in &mut inner.rings {
                if ring.subs.is_empty() {
                    continue;
                }
                ring.buf.push_back(Entry {
                    seq,
                    event: event.clone(),
                });
                while ring.buf.len() > self.capacity {
                    let Some(old) = ring.buf.pop_front() else {
                        break;
                    };
                    inner.stats.dropped += 1;
                    for sub in ring.subs.values_mut() {
                        if sub.last < old.seq {
                            sub.lost.add_event(&old.event);
                        }
                    }
                }
            }
            seq
        };
        self.notify.notify_waiters();
        seq
    }

    /// Every subscriber must rescan `dir` (the source missed changes below it).
    pub fn mark_lost_all(&self, dir: &str, recursive: bool) {
        {
            let mut g = self.inner.lock();
            for ring in &mut g.rings {
                for sub in ring.subs.values_mut() {
                    sub.lost.add(dir, recursive);
                }
            }
        }
        self.notify.notify_waiters();
    }

    /// Joins the newest ring, positioned before everything it still buffers. Subscribing
    /// twice is a no-op.
    pub fn subscribe(&self, sub: &str) {
        let mut g = self.inner.lock();
        if g.ring_of(sub).is_some() {
            return;
        }
        let next = g.next_seq;
        let ring = g.rings.last_mut();
        if let Some(ring) = ring {
            let last = ring.buf.front().map_or(next - 1, |e| e.seq - 1);
            ring.subs.insert(
                sub.to_string(),
                Sub {
                    last,
                    lost: RescanSet::default(),
                },
            );
        }
    }

    pub fn unsubscribe(&self, sub: &str) {
        let mut g = self.inner.lock();
        let Some(i) = g.ring_of(sub) else {
            return;
        };
        g.rings[i].subs.remove(sub);
        g.rings[i].trim();
        if g.rings[i].subs.is_empty() && g.rings.len() > 1 {
            g.rings.remove(i);
        }
    }

    pub fn is_subscribed(&self, sub: &str) -> bool {
        self.inner.lock().ring_of(sub).is_some()
    }

    pub fn subscriber_count(&self) -> usize {
        self.inner.lock().rings.iter().map(|r| r.subs.len()).sum()
    }

    /// Up to `n` events after the subscriber's committed position, plus what it lost.
    pub fn try_fetch(&self, sub: &str, n: usize) -> Result<Fetched, BusError> {
        let mut g = self.inner.lock();
        let i = g
            .ring_of(sub)
            .ok_or_else(|| BusError::NotSubscribed(sub.to_string()))?;
        let ring = &mut g.rings[i];
        let Some(s) = ring.subs.get_mut(sub) else {
            return Err(BusError::NotSubscribed(sub.to_string()));
        };
        let last = s.last;
        let lost = s.lost.take();
        let start = ring.buf.partition_point(|e| e.seq <= last);
        let events = ring.buf.iter().skip(start).take(n).cloned().collect();
        Ok(Fetched { events, lost })
    }

    /// Like [`try_fetch`](Self::try_fetch), waiting up to `wait` for something to arrive.
    pub async fn fetch(&self, sub: &str, n: usize, wait: Duration) -> Result<Fetched, BusError> {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let f = self.try_fetch(sub, n)?;
        if !f.is_empty() {
            return Ok(f);
        }
        let _ = tokio::time::timeout(wait, notified).await;
        self.try_fetch(sub, n)
    }

    /// Marks everything up to `seq` as consumed; may split the ring (returns `true` then).
    pub fn commit(&self, sub: &str, seq: u64) -> Result<bool, BusError> {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let i = inner
            .ring_of(sub)
            .ok_or_else(|| BusError::NotSubscribed(sub.to_string()))?;
        let ring = &mut inner.rings[i];
        let mine = match ring.subs.get_mut(sub) {
            Some(s) => {
                s.last = s.last.max(seq);
                s.last
            }
            None => return Err(BusError::NotSubscribed(sub.to_string())),
        };
        ring.trim();
        if ring.subs.len() < 2 || ring.subs.values().any(|s| s.last > mine) {
            return Ok(false);
        }
        let slowest = ring.subs.values().map(|s| s.last).min().unwrap_or(mine);
        let backlog = ring.buf.iter().filter(|e| e.seq > slowest).count();
        let threshold = ((self.capacity as f64) * 0.95).floor().max(1.0) as usize;
        if slowest == mine || backlog < threshold {
            return Ok(false);
        }
        // Split: the fast subscriber leaves with its unconsumed tail.
        let Some(moved) = ring.subs.remove(sub) else {
            return Ok(false);
        };
        let tail: VecDeque<Entry> = ring.buf.iter().filter(|e| e.seq > mine).cloned().collect();
        ring.trim();
        let mut fresh = Ring {
            buf: tail,
            subs: BTreeMap::new(),
        };
        fresh.subs.insert(sub.to_string(), moved);
        inner.rings.push(fresh);
        inner.stats.splits += 1;
        tracing::info!(
            subscriber = sub,
            backlog,
            "event bus split: a fast pipe no longer waits for a slow one"
        );
        Ok(true)
    }

    pub fn stats(&self) -> BusStats {
        let g = self.inner.lock();
        BusStats {
            rings: g.rings.len(),
            buffered: g.rings.iter().map(|r| r.buf.len()).sum(),
            ..g.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fustor_core::{EventType, MessageSource};

    fn ev(path: &str, index: i64) -> Event<FsRow> {
        let mut e = Event::fs(
            EventType::Update,
            MessageSource::Realtime,
            vec![FsRow::upsert(path, 1.0, 1, false)],
        );
        e.index = index;
        e
    }

    fn paths(f: &Fetched) -> Vec<String> {
        f.events
            .iter()
            .map(|e| e.event.rows[0].path.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn sequence_numbers_strictly_increase() {
        let bus = EventBus::new(10);
        bus.subscribe("p");
        let seqs: Vec<u64> = (0..5).map(|_| bus.put(ev("/a", 7))).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }

    #[test]
    fn same_millisecond_write_and_close_are_both_delivered() {
        // pitfalls.md item 1: a write and its close in the same millisecond, with a commit
        // between them, must both reach the pipe.
        let bus = EventBus::new(10);
        bus.subscribe("p");
        let mut write = ev("/f", 1_700_000_000_123);
        write.rows[0].is_atomic_write = Some(false);
        bus.put(write);
        let f = bus.try_fetch("p", 100).unwrap();
        assert_eq!(f.events.len(), 1);
        bus.commit("p", f.last_seq().unwrap()).unwrap();
        let mut close = ev("/f", 1_700_000_000_123);
        close.rows[0].is_atomic_write = Some(true);
        bus.put(close);
        let f = bus.try_fetch("p", 100).unwrap();
        assert_eq!(f.events.len(), 1, "the close was lost");
        assert_eq!(f.events[0].event.rows[0].is_atomic_write, Some(true));
    }

    #[test]
    fn uncommitted_events_are_fetched_again() {
        let bus = EventBus::new(10);
        bus.subscribe("p");
        bus.put(ev("/a", 1));
        bus.put(ev("/b", 2));
        assert_eq!(paths(&bus.try_fetch("p", 1).unwrap()), vec!["/a"]);
        assert_eq!(paths(&bus.try_fetch("p", 5).unwrap()), vec!["/a", "/b"]);
        bus.commit("p", 1).unwrap();
        assert_eq!(paths(&bus.try_fetch("p", 5).unwrap()), vec!["/b"]);
    }

    #[test]
    fn buffer_keeps_events_until_the_slowest_commits() {
        let bus = EventBus::new(100);
        bus.subscribe("fast");
        bus.subscribe("slow");
        for i in 0..3 {
            bus.put(ev(&format!("/{i}"), i));
        }
        bus.commit("fast", 3).unwrap();
        assert_eq!(
            bus.stats().buffered,
            3,
            "low watermark is the slow subscriber"
        );
        bus.commit("slow", 2).unwrap();
        assert_eq!(bus.stats().buffered, 1);
        bus.commit("slow", 3).unwrap();
        assert_eq!(bus.stats().buffered, 0);
        assert!(bus.try_fetch("fast", 10).unwrap().is_empty());
    }

    #[test]
    fn overflow_becomes_a_rescan_marker_and_realtime_continues() {
        let bus = EventBus::new(3);
        bus.subscribe("p");
        for i in 0..5 {
            bus.put(ev(&format!("/d{}/f{i}", i % 2), i));
        }
        let st = bus.stats();
        assert_eq!(st.dropped, 2);
        assert_eq!(st.buffered, 3, "never grows past the capacity");
        let f = bus.try_fetch("p", 10).unwrap();
        assert_eq!(paths(&f), vec!["/d0/f2", "/d1/f3", "/d0/f4"]);
        let lost: Vec<(&str, bool)> = f.lost.entries().collect();
        assert_eq!(lost, vec![("/d0", false), ("/d1", false)]);
        // The marker is handed out once; the bus keeps working.
        bus.commit("p", f.last_seq().unwrap()).unwrap();
        bus.put(ev("/d0/again", 9));
        let f = bus.try_fetch("p", 10).unwrap();
        assert!(f.lost.is_empty());
        assert_eq!(paths(&f), vec!["/d0/again"]);
    }

    #[test]
    fn overflow_only_affects_subscribers_behind() {
        let bus = EventBus::new(2);
        bus.subscribe("a");
        bus.subscribe("b");
        bus.put(ev("/x/1", 1));
        bus.commit("a", 1).unwrap();
        bus.put(ev("/y/2", 2));
        bus.put(ev("/z/3", 3)); // drops seq 1, which only b had not consumed
        assert!(bus.try_fetch("a", 10).unwrap().lost.is_empty());
        assert_eq!(
            bus.try_fetch("b", 10).unwrap().lost.contains("/x"),
            Some(false)
        );
    }

    #[test]
    fn split_moves_the_fast_subscriber_without_losing_its_position() {
        let bus = EventBus::new(20); // threshold floor(0.95 × 20) = 19
        bus.subscribe("slow");
        bus.subscribe("fast");
        for i in 0..18 {
            bus.put(ev(&format!("/{i}"), i));
        }
        assert!(
            !bus.commit("fast", 18).unwrap(),
            "backlog 18 < 19: no split"
        );
        bus.put(ev("/18", 18));
        bus.put(ev("/19", 19));
        // fast has consumed up to 19 of 20; slow nothing: backlog 20 ≥ 19.
        assert!(bus.commit("fast", 19).unwrap());
        let st = bus.stats();
        assert_eq!((st.rings, st.splits), (2, 1));
        // The fast subscriber still gets seq 20, then new events; the slow one everything.
        assert_eq!(paths(&bus.try_fetch("fast", 10).unwrap()), vec!["/19"]);
        bus.put(ev("/20", 20));
        assert_eq!(
            paths(&bus.try_fetch("fast", 10).unwrap()),
            vec!["/19", "/20"]
        );
        let slow = bus.try_fetch("slow", 100).unwrap();
        assert_eq!(slow.events.len(), 20, "slow ring capacity, oldest dropped");
        assert!(!slow.lost.is_empty(), "the slow one lost /0 and knows it");
        // New subscribers join the newest ring.
        bus.commit("fast", 21).unwrap();
        bus.subscribe("late");
        bus.put(ev("/21", 21));
        assert_eq!(paths(&bus.try_fetch("late", 10).unwrap()), vec!["/21"]);
        assert_eq!(bus.stats().rings, 2);
    }

    #[test]
    fn no_split_when_the_committer_is_not_the_fastest() {
        let bus = EventBus::new(20);
        bus.subscribe("a");
        bus.subscribe("b");
        for i in 0..10 {
            bus.put(ev(&format!("/{i}"), i));
        }
        assert!(!bus.commit("a", 10).unwrap(), "backlog 10 < 19");
        for i in 10..20 {
            bus.put(ev(&format!("/{i}"), i));
        }
        // Backlog behind b is 19 now, but b is the slow one: only the fastest moves.
        assert!(!bus.commit("b", 1).unwrap());
        assert_eq!(bus.stats().rings, 1);
    }

    #[test]
    fn unsubscribe_releases_the_buffer() {
        let bus = EventBus::new(10);
        bus.subscribe("a");
        bus.subscribe("b");
        bus.put(ev("/1", 1));
        bus.commit("a", 1).unwrap();
        assert_eq!(bus.stats().buffered, 1);
        bus.unsubscribe("b");
        assert_eq!(bus.stats().buffered, 0);
        assert_eq!(bus.subscriber_count(), 1);
        assert!(matches!(
            bus.try_fetch("b", 1),
            Err(BusError::NotSubscribed(_))
        ));
    }

    #[test]
    fn resume_replays_what_fusion_lacks_and_skips_what_it_has() {
        let bus = EventBus::new(10);
        bus.subscribe("p");
        for i in 1..=5 {
            bus.put(ev(&format!("/{i}"), i));
        }
        bus.commit("p", 3).unwrap();
        let epoch = bus.epoch().to_string();
        // Fusion holds 1..=3: 4 and 5 are replayed.
        assert_eq!(
            bus.resume("p", Some(&epoch), 3),
            Resume::Replay {
                from: 3,
                pending: 2
            }
        );
        assert_eq!(paths(&bus.try_fetch("p", 10).unwrap()), vec!["/4", "/5"]);
        // Fusion applied 4 but its answer was lost: only 5 is sent again.
        assert_eq!(
            bus.resume("p", Some(&epoch), 4),
            Resume::Replay {
                from: 4,
                pending: 1
            }
        );
        assert_eq!(paths(&bus.try_fetch("p", 10).unwrap()), vec!["/5"]);
        // Another bus (the agent restarted), no position, or one never handed out: snapshot.
        assert_eq!(bus.resume("p", Some("other"), 4), Resume::Snapshot);
        assert_eq!(bus.resume("p", None, 0), Resume::Snapshot);
        assert_eq!(bus.resume("p", Some(&epoch), 99), Resume::Snapshot);
        assert_eq!(bus.resume("nobody", Some(&epoch), 4), Resume::Snapshot);
    }

    #[test]
    fn resume_behind_trimmed_events_needs_a_snapshot_but_overflow_does_not() {
        let bus = EventBus::new(3);
        bus.subscribe("p");
        let epoch = bus.epoch().to_string();
        for i in 1..=3 {
            bus.put(ev(&format!("/d/{i}"), i));
        }
        bus.commit("p", 3).unwrap();
        // Fusion lost 2 and 3 after acknowledging them; the bus no longer holds them.
        assert_eq!(bus.resume("p", Some(&epoch), 1), Resume::Snapshot);
        // Disconnected: 4..=8 arrive, 4 and 5 overflow. Fusion holds 3: the overflow is a
        // rescan of /x, the rest a replay.
        for i in 4..=8 {
            bus.put(ev(&format!("/x/{i}"), i));
        }
        assert_eq!(
            bus.resume("p", Some(&epoch), 3),
            Resume::Replay {
                from: 3,
                pending: 3
            }
        );
        let f = bus.try_fetch("p", 10).unwrap();
        assert_eq!(paths(&f), vec!["/x/6", "/x/7", "/x/8"]);
        assert_eq!(f.lost.contains("/x"), Some(false));
    }

    #[test]
    fn rescan_set_dedups_and_collapses() {
        let mut s = RescanSet::default();
        s.add("/a/b", false);
        s.add("/a/b", false);
        s.add("/a/b/c", false);
        s.add("/a", true);
        assert_eq!(s.entries().collect::<Vec<_>>(), vec![("/a", true)]);
        s.add("/a/x", false);
        s.add("/ab", false);
        assert_eq!(s.len(), 2);
        for i in 0..=RescanSet::LIMIT {
            s.add(&format!("/d{i}"), false);
        }
        assert_eq!(s.entries().collect::<Vec<_>>(), vec![("/", true)]);
        assert_eq!(parent_of("/a/b.txt"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/"), "/");
    }

    #[tokio::test]
    async fn fetch_waits_for_a_put() {
        let bus = Arc::new(EventBus::new(10));
        bus.subscribe("p");
        let b = bus.clone();
        let t = tokio::spawn(async move { b.fetch("p", 10, Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        bus.put(ev("/late", 1));
        let f = t.await.unwrap().unwrap();
        assert_eq!(paths(&f), vec!["/late"]);
        let started = std::time::Instant::now();
        let f = bus
            .fetch("p", 10, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(f.events.len(), 1, "uncommitted is returned at once");
        assert!(started.elapsed() < Duration::from_millis(90));
    }
}
