//! `GET /report` (issue 14): who uses the space, how big and how old the files are.
//!
//! Site-wide per-owner and per-group totals come from the usage the tree keeps per interned
//! `(uid, gid, mode)` triple ([`super::owners`]): a pass over the triples, not the files. Every
//! other report (a subtree, histograms, largest and oldest files, a key bound to an identity)
//! reads the files themselves. A subtree holding most of the tree is scanned linearly over the
//! node array (memory order, no pointer chasing), split into steps of [`STEP`] nodes taken by
//! one worker per core; which files belong to it (and, with an identity, which ones the user
//! may see) is decided once per directory slot before the scan. A smaller subtree is walked
//! through its child lists instead ([`super::report_walk`]), so its cost follows its size, not
//! the tree's. Either way each step runs under the read lock and is followed by a pause that
//! hands the lock to a waiting writer, so ingest never waits for a whole report. A report is
//! therefore weakly consistent, like `search`: files created or removed while it runs may be
//! counted or not.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};

use fustor_core::view::{Identity, ReportBy, ReportQuery};
use serde::Serialize;

use super::access::Visibility;
use super::owners::{OwnerId, Usage};
use super::query::QueryError;
use super::report_walk;
use super::search::{Reader, Source};
use super::tree::{NIL, Node, NodeId, ROOT, Tree};

/// Nodes per step: about a millisecond of work.
pub(super) const STEP: usize = 1 << 16;
/// Views (or subtrees) smaller than this are scanned by the calling thread alone.
pub(super) const PARALLEL_FROM: usize = 200_000;
/// `top` is capped: the lists are for a console page, not an export.
pub const MAX_TOP: usize = 1000;

const DAY: f64 = 86_400.0;
/// Upper bounds (exclusive) of the age buckets, in seconds; the last bucket is "older".
const AGES: [(f64, &str); 4] = [
    (DAY, "< 1 day"),
    (7.0 * DAY, "< 1 week"),
    (30.0 * DAY, "< 1 month"),
    (365.0 * DAY, "< 1 year"),
];

/// Files and bytes of one owner or group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    /// `null` for files whose agent reported no owner.
    pub id: Option<u32>,
    pub name: Option<String>,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeBucket {
    /// Smallest size in the bucket.
    pub min: u64,
    /// First size past the bucket (`null` for the last one).
    pub max: Option<u64>,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeBucket {
    pub label: &'static str,
    /// Files younger than this many seconds (by mtime) fall here; `null` for "older".
    pub max_age_seconds: Option<f64>,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub modified_time: f64,
    pub uid: Option<u32>,
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub path: String,
    pub files: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<Holder>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Holder>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_histogram: Option<Vec<SizeBucket>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub largest: Option<Vec<FileEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_histogram: Option<Vec<AgeBucket>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<Vec<FileEntry>>,
    /// Answered from the totals kept up to date at every change (no scan).
    pub incremental: bool,
    /// Ages are counted from this wall time.
    pub now: f64,
}

/// Total-order key of an mtime.
fn time_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// What one worker counted.
pub(super) struct Acc {
    total: Usage,
    by_owner: Vec<Usage>,
    sizes: [Usage; 65],
    ages: [Usage; 5],
    largest: BinaryHeap<Reverse<(u64, NodeId)>>,
    oldest: BinaryHeap<(u64, NodeId)>,
}

impl Acc {
    pub(super) fn new() -> Self {
        Acc {
            total: Usage::default(),
            by_owner: Vec::new(),
            sizes: [Usage::default(); 65],
            ages: [Usage::default(); 5],
            largest: BinaryHeap::new(),
            oldest: BinaryHeap::new(),
        }
    }

    fn owner(&mut self, o: OwnerId) -> &mut Usage {
        let i = o as usize;
        if i >= self.by_owner.len() {
            self.by_owner.resize(i + 1, Usage::default());
        }
        &mut self.by_owner[i]
    }

    /// Counts the live file `n` (node `id`).
    #[inline]
    pub(super) fn count(&mut self, id: NodeId, n: &Node, now: f64, top: usize) {
        let size = n.size;
        self.total.add(size);
        self.owner(n.owner()).add(size);
        self.sizes[size_bucket(size)].add(size);
        self.ages[age_bucket(now, n.mtime)].add(size);
        if top > 0 {
            push_capped(&mut self.largest, Reverse((size, id)), top);
            push_capped(&mut self.oldest, (time_key(n.mtime), id), top);
        }
    }

    pub(super) fn merge(&mut self, o: Acc, top: usize) {
        self.total.files += o.total.files;
        self.total.bytes = self.total.bytes.wrapping_add(o.total.bytes);
        for (i, u) in o.by_owner.into_iter().enumerate() {
            let m = self.owner(i as OwnerId);
            m.files += u.files;
            m.bytes = m.bytes.wrapping_add(u.bytes);
        }
        for (a, b) in self.sizes.iter_mut().zip(o.sizes) {
            a.files += b.files;
            a.bytes = a.bytes.wrapping_add(b.bytes);
        }
        for (a, b) in self.ages.iter_mut().zip(o.ages) {
            a.files += b.files;
            a.bytes = a.bytes.wrapping_add(b.bytes);
        }
        for x in o.largest {
            push_capped(&mut self.largest, x, top);
        }
        for x in o.oldest {
            push_capped(&mut self.oldest, x, top);
        }
    }
}

fn push_capped<T: Ord>(h: &mut BinaryHeap<T>, x: T, cap: usize) {
    if cap == 0 {
        return;
    }
    if h.len() < cap {
        h.push(x);
    } else if h.peek().is_some_and(|top| x < *top) {
        h.pop();
        h.push(x);
    }
}

fn size_bucket(size: u64) -> usize {
    (64 - size.leading_zeros()) as usize
}

fn age_bucket(now: f64, mtime: f64) -> usize {
    let age = now - mtime;
    AGES.iter().position(|&(lim, _)| age < lim).unwrap_or(4)
}

/// How the files of a report are found.
enum Counted<'a> {
    /// A linear scan of the node array, counting files whose parent slot is set.
    Slots(Vec<bool>),
    /// A walk of the subtree's child lists.
    Walk(report_walk::Start<'a>),
}

/// Which directory slots hold files of the report: below `root`, and listed for `who`.
fn counted_dirs(t: &Tree, root: NodeId, who: Option<&Identity>) -> Vec<bool> {
    const UNKNOWN: u8 = 0;
    const IN: u8 = 1;
    const OUT: u8 = 2;
    let n = t.dir_slots();
    let mut state = vec![UNKNOWN; n];
    let mut chain = Vec::new();
    for slot in 0..n {
        let Some(mut d) = t.dir_at(slot) else {
            state[slot] = OUT;
            continue;
        };
        chain.clear();
        let verdict = loop {
            let s = t.dir_slot(d);
            if let Some(&v) = state.get(s)
                && v != UNKNOWN
            {
                break v;
            }
            if d == root {
                state[s] = IN;
                break IN;
            }
            chain.push(s);
            let p = t.node(d).parent;
            if d == ROOT || p == NIL {
                break OUT;
            }
            d = p;
        };
        for &s in &chain {
            state[s] = verdict;
        }
    }
    let vis = who.map(|w| Visibility::new(t, w));
    state
        .iter()
        .enumerate()
        .map(|(slot, &v)| v == IN && vis.as_ref().is_none_or(|vis| vis.lists_slot(t, slot)))
        .collect()
}

fn scan_step(t: &Tree, from: usize, counted: &[bool], now: f64, top: usize, acc: &mut Acc) {
    let nodes = t.node_slots();
    let end = (from + STEP).min(nodes.len());
    // Files of one directory sit mostly side by side: remember the last parent's verdict.
    let mut last = (NIL, false);
    for (i, n) in nodes.iter().enumerate().take(end).skip(from) {
        if !n.is_live_file() {
            continue;
        }
        if n.parent != last.0 {
            let Some(parent) = nodes.get(n.parent as usize) else {
                continue;
            };
            let slot = t.dir_slot_of(parent);
            last = (n.parent, counted.get(slot).copied().unwrap_or(false));
        }
        if last.1 {
            acc.count(i as NodeId, n, now, top);
        }
    }
}

/// Scans every file counted by `counted` with one worker per core.
fn scan<S: Source>(src: &S, counted: &[bool], now: f64, top: usize) -> Acc {
    let slots = src.open().state().tree.node_slots().len();
    let workers = if slots < PARALLEL_FROM {
        1
    } else {
        crate::cores().clamp(1, 8)
    };
    let next = AtomicUsize::new(0);
    let work = || {
        let mut acc = Acc::new();
        let mut r = src.open();
        loop {
            let from = next.fetch_add(STEP, Ordering::Relaxed);
            if from >= r.state().tree.node_slots().len() {
                break;
            }
            scan_step(&r.state().tree, from, counted, now, top, &mut acc);
            r.pause();
        }
        acc
    };
    run_workers(workers, work, top)
}

/// Runs `work` on `workers` threads (on this one when 1) and merges what they counted.
pub(super) fn run_workers(workers: usize, work: impl Fn() -> Acc + Sync, top: usize) -> Acc {
    if workers == 1 {
        return work();
    }
    let parts: Vec<Acc> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(&work)).collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut all = Acc::new();
    for p in parts {
        all.merge(p, top);
    }
    all
}

/// Folds per-triple usage into per-uid (or per-gid) holders, largest first, `top` of them.
fn holders(
    t: &Tree,
    usage: impl Iterator<Item = (OwnerId, Usage)>,
    group: bool,
    top: usize,
) -> Vec<Holder> {
    let mut by: std::collections::HashMap<Option<u32>, Usage> = Default::default();
    for (o, u) in usage {
        if u.files == 0 {
            continue;
        }
        let key = t.owners().get(o).map(|o| if group { o.gid } else { o.uid });
        let m = by.entry(key).or_default();
        m.files += u.files;
        m.bytes = m.bytes.wrapping_add(u.bytes);
    }
    let mut v: Vec<Holder> = by
        .into_iter()
        .map(|(id, u)| Holder {
            id,
            name: id
                .and_then(|id| {
                    if group {
                        t.owners().gname(id)
                    } else {
                        t.owners().uname(id)
                    }
                })
                .map(str::to_string),
            files: u.files,
            bytes: u.bytes,
        })
        .collect();
    v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.id.cmp(&b.id)));
    v.truncate(top.max(1));
    v
}

fn entry(t: &Tree, id: NodeId, under: &str) -> Option<FileEntry> {
    let n = t.node_slots().get(id as usize)?;
    if !n.is_live_file() {
        return None;
    }
    let e = file_entry(t, id)?;
    let inside = under == "/"
        || e.path
            .strip_prefix(under)
            .is_some_and(|rest| rest.starts_with('/'));
    inside.then_some(e)
}

fn file_entry(t: &Tree, id: NodeId) -> Option<FileEntry> {
    let n = t.node_slots().get(id as usize)?;
    if !n.is_live_file() {
        return None;
    }
    let o = t.ownership(id);
    Some(FileEntry {
        path: t.path_of(id),
        size: n.size,
        modified_time: n.mtime,
        uid: o.map(|o| o.uid),
        owner: o.and_then(|o| t.owners().uname(o.uid)).map(str::to_string),
    })
}

/// The report of `q` over the view behind `src`; `path` is normalised.
pub(crate) fn report<S: Source>(
    src: &S,
    path: &str,
    q: &ReportQuery<'_>,
) -> Result<Report, QueryError> {
    let top = q.top.min(MAX_TOP);
    let want = |b: ReportBy| q.by.is_none_or(|x| x == b);
    let now = q.now.epoch;
    let counted = {
        let r = src.open();
        let t = &r.state().tree;
        let id = t.lookup(path).ok_or(QueryError::NotFound)?;
        if let Some(who) = q.identity
            && !who.admin
        {
            let vis = Visibility::new(t, who);
            if !vis.shows(t, id) {
                return Err(QueryError::NotFound);
            }
        }
        let site_wide =
            id == ROOT && q.identity.is_none() && !want(ReportBy::Size) && !want(ReportBy::Age);
        if site_wide {
            let usage = || t.owners().ids_with_usage();
            let total = t.dir_data(ROOT).map_or((0, 0), |d| (d.files, d.bytes));
            return Ok(Report {
                path: path.to_string(),
                files: total.0,
                bytes: total.1,
                owners: want(ReportBy::Owner).then(|| holders(t, usage(), false, top)),
                groups: want(ReportBy::Group).then(|| holders(t, usage(), true, top)),
                size_histogram: None,
                largest: None,
                age_histogram: None,
                oldest: None,
                incremental: true,
                now,
            });
        }
        if !t.node(id).is_dir() {
            let n = t.node(id);
            let r = Report {
                path: path.to_string(),
                files: 1,
                bytes: n.size,
                owners: None,
                groups: None,
                size_histogram: None,
                largest: None,
                age_histogram: None,
                oldest: None,
                incremental: false,
                now,
            };
            return Ok(finish(t, r, id, top, want));
        }
        let who = q.identity.filter(|w| !w.admin);
        let subtree = t.dir_data(id).map_or(0, |d| d.files + d.dirs) as usize;
        if report_walk::prefer_walk(t, id, subtree) {
            let vis = who.map(|w| Visibility::new(t, w));
            let start = report_walk::Start {
                root: id,
                path,
                searchable: vis.as_ref().is_none_or(|v| v.searchable(t, id)),
                listed: vis.as_ref().is_none_or(|v| v.lists(t, id)),
                who,
                subtree,
            };
            Counted::Walk(start)
        } else {
            Counted::Slots(counted_dirs(t, id, q.identity))
        }
    };
    let acc = match counted {
        Counted::Slots(c) => scan(src, &c, now, top),
        Counted::Walk(start) => report_walk::walk(src, &start, now, top),
    };
    let r = src.open();
    let t = &r.state().tree;
    let mut largest: Vec<_> = acc.largest.into_vec();
    largest.sort();
    let mut oldest: Vec<_> = acc.oldest.into_vec();
    oldest.sort();
    let mut report = Report {
        path: path.to_string(),
        files: acc.total.files,
        bytes: acc.total.bytes,
        owners: None,
        groups: None,
        size_histogram: None,
        largest: None,
        age_histogram: None,
        oldest: None,
        incremental: false,
        now,
    };
    let usage = acc
        .by_owner
        .iter()
        .enumerate()
        .map(|(i, u)| (i as OwnerId, *u));
    if want(ReportBy::Owner) {
        report.owners = Some(holders(t, usage.clone(), false, top));
    }
    if want(ReportBy::Group) {
        report.groups = Some(holders(t, usage, true, top));
    }
    if want(ReportBy::Size) {
        report.size_histogram = Some(size_histogram(&acc.sizes));
        report.largest = Some(
            largest
                .into_iter()
                .filter_map(|Reverse((_, id))| entry(t, id, path))
                .collect(),
        );
        if let Some(l) = report.largest.as_mut() {
            l.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
        }
    }
    if want(ReportBy::Age) {
        report.age_histogram = Some(age_histogram(&acc.ages));
        report.oldest = Some(
            oldest
                .into_iter()
                .filter_map(|(_, id)| entry(t, id, path))
                .collect(),
        );
    }
    Ok(report)
}

/// The report of one file.
fn finish(
    t: &Tree,
    mut r: Report,
    id: NodeId,
    top: usize,
    want: impl Fn(ReportBy) -> bool,
) -> Report {
    let n = t.node(id);
    let o = n.owner();
    let one = [(
        o,
        Usage {
            files: 1,
            bytes: n.size,
        },
    )];
    if want(ReportBy::Owner) {
        r.owners = Some(holders(t, one.into_iter(), false, top));
    }
    if want(ReportBy::Group) {
        r.groups = Some(holders(t, one.into_iter(), true, top));
    }
    let e = if top > 0 { file_entry(t, id) } else { None };
    if want(ReportBy::Size) {
        let mut sizes = [Usage::default(); 65];
        sizes[size_bucket(n.size)].add(n.size);
        r.size_histogram = Some(size_histogram(&sizes));
        r.largest = Some(e.clone().into_iter().collect());
    }
    if want(ReportBy::Age) {
        let mut ages = [Usage::default(); 5];
        ages[age_bucket(r.now, n.mtime)].add(n.size);
        r.age_histogram = Some(age_histogram(&ages));
        r.oldest = Some(e.into_iter().collect());
    }
    r
}

fn size_histogram(sizes: &[Usage; 65]) -> Vec<SizeBucket> {
    sizes
        .iter()
        .enumerate()
        .filter(|(_, u)| u.files > 0)
        .map(|(k, u)| SizeBucket {
            min: if k == 0 { 0 } else { 1u64 << (k - 1) },
            max: if k == 64 { None } else { Some(1u64 << k) },
            files: u.files,
            bytes: u.bytes,
        })
        .collect()
}

fn age_histogram(ages: &[Usage; 5]) -> Vec<AgeBucket> {
    ages.iter()
        .enumerate()
        .map(|(i, u)| AgeBucket {
            label: AGES.get(i).map_or("older", |a| a.1),
            max_age_seconds: AGES.get(i).map(|a| a.0),
            files: u.files,
            bytes: u.bytes,
        })
        .collect()
}
