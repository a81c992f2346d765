//! `search` (`query-api.md` §3.2) through the name index, in steps that let the writer in.
//!
//! Two costs made a search stall a view: it read every name, and it held the read lock for the
//! whole read, so the pipe's writer waited, and (the lock being fair) every later query waited
//! behind the writer. Now the index of [`super::nameindex`] narrows the names to read to the
//! blocks that may hold the pattern's literal pieces, and every step of about [`STEP`] units of
//! work ends with [`Reader::pause`], which hands the lock to a waiting writer.
//!
//! Between two steps the tree may change: a search is weakly consistent, like `find` on a live
//! file system. Every hit is checked against the full pattern with the path it has when it is
//! found, so a search never answers a file that does not match; a file created or removed while
//! the search runs may be missed or still be reported.

use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use super::pattern::{Need, Piece, SearchPattern};
use super::query::QueryError;
use super::state::FsState;
use super::tree::{NIL, NodeId, ROOT, Tree};

mod par;

/// Units of work (a name read, a block tested) per step: a few hundred microseconds.
const STEP: usize = 4096;

/// Limits of one search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchLimits {
    /// `max_tree_items`: more hits than this fail the search (the answer would be too big).
    pub max_items: Option<usize>,
    /// `limit=`: keep the first hits in path order and only count the others.
    pub first: Option<usize>,
}

/// One matching file. `id` is valid while the tree's generation is `generation`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub path: String,
    pub id: NodeId,
    pub generation: u64,
}

/// Matching files in path order, at most `limits.first` of them, and how many matched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchHits {
    pub hits: Vec<Hit>,
    pub total: usize,
}

impl SearchHits {
    pub fn truncated(&self) -> bool {
        self.total > self.hits.len()
    }
}

/// A read of the view that may let the writer in between steps.
pub(crate) trait Reader {
    fn state(&self) -> &FsState;
    /// Lets a waiting writer in.
    fn pause(&mut self);
    /// Runs `f` with the lock released (and lets a waiting writer in first).
    fn unlocked<T>(&mut self, f: impl FnOnce() -> T) -> T;
}

impl Reader for &FsState {
    fn state(&self) -> &FsState {
        self
    }
    fn pause(&mut self) {}
    fn unlocked<T>(&mut self, f: impl FnOnce() -> T) -> T {
        f()
    }
}

impl Reader for RwLockReadGuard<'_, FsState> {
    fn state(&self) -> &FsState {
        self
    }
    fn pause(&mut self) {
        RwLockReadGuard::bump(self);
    }
    fn unlocked<T>(&mut self, f: impl FnOnce() -> T) -> T {
        RwLockReadGuard::unlocked_fair(self, f)
    }
}

/// Opens one reader per worker of a parallel scan.
pub(crate) trait Source: Sync {
    type R<'a>: Reader
    where
        Self: 'a;
    fn open(&self) -> Self::R<'_>;
}

impl Source for FsState {
    type R<'a> = &'a FsState;
    fn open(&self) -> &FsState {
        self
    }
}

impl Source for RwLock<FsState> {
    type R<'a> = RwLockReadGuard<'a, FsState>;
    fn open(&self) -> RwLockReadGuard<'_, FsState> {
        self.read()
    }
}

/// A reader with a work budget.
struct Steps<R> {
    r: R,
    work: usize,
}

impl<R: Reader> Steps<R> {
    fn tree(&self) -> &Tree {
        &self.r.state().tree
    }

    /// Spends `n` units; pauses when the step is used up.
    fn spend(&mut self, n: usize) {
        self.work += n;
        if self.work >= STEP {
            self.work = 0;
            self.r.pause();
        }
    }
}

/// Keeps the hits the limits allow.
struct Collector {
    limits: SearchLimits,
    /// With `first`: the `first` smallest paths so far (a max-heap, so the largest is dropped).
    heap: BinaryHeap<Hit>,
    all: Vec<Hit>,
    total: usize,
}

impl Collector {
    fn new(limits: SearchLimits) -> Self {
        Collector {
            limits,
            heap: BinaryHeap::new(),
            all: Vec::new(),
            total: 0,
        }
    }

    /// More hits than `max_items`: the search can stop, it fails.
    fn over(&self) -> bool {
        self.limits.first.is_none() && self.limits.max_items.is_some_and(|m| self.total > m)
    }

    fn push(&mut self, hit: Hit) {
        self.total += 1;
        match self.limits.first {
            None => self.all.push(hit),
            Some(k) if self.heap.len() < k => self.heap.push(hit),
            Some(_) => {
                if self.heap.peek().is_some_and(|top| hit.path < top.path) {
                    self.heap.pop();
                    self.heap.push(hit);
                }
            }
        }
    }

    fn merge(&mut self, other: Collector) {
        let total = self.total + other.total;
        for h in other.heap.into_iter().chain(other.all) {
            self.push(h);
        }
        self.total = total;
    }

    fn finish(self) -> Result<SearchHits, QueryError> {
        if self.over() {
            let limit = self.limits.max_items.unwrap_or(0);
            return Err(QueryError::LimitExceeded {
                count: self.total,
                limit,
            });
        }
        let mut hits = if self.limits.first.is_some() {
            self.heap.into_sorted_vec()
        } else {
            par::sort_hits(self.all)
        };
        // A file changed while the search ran may have been reached twice.
        let before = hits.len();
        hits.dedup_by(|a, b| a.path == b.path);
        let total = self.total - (before - hits.len());
        Ok(SearchHits { hits, total })
    }
}

/// Runs `pattern` over the view behind `src`.
pub(crate) fn search<S: Source>(
    src: &S,
    pat: &SearchPattern,
    limits: SearchLimits,
) -> Result<SearchHits, QueryError> {
    let limits = SearchLimits {
        first: match (limits.first, limits.max_items) {
            (Some(f), Some(m)) => Some(f.min(m)),
            (f, _) => f,
        },
        ..limits
    };
    let plan = pat.plan();
    let mut out = Collector::new(limits);
    if let Some(path) = &plan.exact_path {
        let r = src.open();
        let t = &r.state().tree;
        if let Some(id) = t.lookup(path)
            && !t.node(id).is_dir()
            && pat.matches(path, t.name(id))
        {
            out.push(Hit {
                path: path.clone(),
                id,
                generation: t.generation(),
            });
        }
    }
    if plan.needs_scan() {
        scan_all(src, pat, &mut out);
        return out.finish();
    }
    // Read on every core, each worker with its own reader: before this one is opened.
    let best = match &plan.glob {
        Need::Pieces(pieces) => best_piece(src, pieces),
        Need::Never | Need::Scan => None,
    };
    let roots = {
        let r = src.open();
        best.map(|(piece, ids)| (piece, roots_of(&r.state().tree, ids)))
    };
    if let Some((_, roots)) = &roots {
        par::expand_all(src, &roots.ids, pat, &mut out);
    }
    let mut r = Steps {
        r: src.open(),
        work: 0,
    };
    if let Need::Pieces(pieces) = &plan.substring
        && let Some(piece) = pieces.first()
        && !out.over()
    {
        // A name holding the whole pattern holds every piece of it too: when the glob's roots
        // were found by such a piece, expanding them already tested those names (`*.h5`).
        let done = roots
            .as_ref()
            .is_some_and(|(p, _)| memchr::memmem::find(&piece.folded, &p.folded).is_some());
        if !done {
            by_name(&mut r, piece, roots.as_ref().map(|(_, r)| r), pat, &mut out);
        }
    }
    out.finish()
}

/// Nodes whose names hold a piece, none below another, and the sets of them.
struct Roots {
    ids: Vec<NodeId>,
    /// The directories among the nodes found: only they can hold another node.
    dirs: HashSet<NodeId>,
    /// The live files among the nodes found, ascending (as the index yields them).
    files: Vec<NodeId>,
}

impl Roots {
    /// Whether `id` or one of its directories is a root: then expanding the roots visited it.
    fn cover(&self, t: &Tree, id: NodeId) -> bool {
        self.files.binary_search(&id).is_ok() || covered(&self.dirs, t, id)
    }
}

fn covered(set: &HashSet<NodeId>, t: &Tree, id: NodeId) -> bool {
    if set.is_empty() {
        return false;
    }
    let mut cur = id;
    while cur != ROOT && t.is_live(cur) {
        if set.contains(&cur) {
            return true;
        }
        cur = t.node(cur).parent;
    }
    false
}

/// The cheapest piece and its nodes: every file the glob matches is one of them or lies below
/// one.
fn best_piece<'p, S: Source>(src: &S, pieces: &'p [Piece]) -> Option<(&'p Piece, Vec<NodeId>)> {
    let mut best: Option<(&Piece, u64, Vec<NodeId>)> = None;
    for p in pieces {
        let cap = best.as_ref().map_or(u64::MAX, |b| b.1);
        if let Some((weight, ids)) = par::nodes_with_all(src, p, false, cap) {
            best = Some((p, weight, ids));
        }
    }
    best.map(|(p, _, ids)| (p, ids))
}

/// The topmost of `ids`, and the sets [`Roots::cover`] tests.
fn roots_of(t: &Tree, ids: Vec<NodeId>) -> Roots {
    // A pattern such as `*.h5` finds a million files and a handful of directories: only the
    // directories go in a hash set, and a file's ancestors are walked only when there are some.
    let mut dirs = HashSet::new();
    let mut files = Vec::with_capacity(ids.len());
    for &id in &ids {
        if !t.is_live(id) {
            continue;
        }
        if t.node(id).is_dir() {
            dirs.insert(id);
        } else {
            files.push(id);
        }
    }
    // Keep the topmost: expanding a root visits every root below it.
    let ids = if dirs.is_empty() {
        files.clone()
    } else {
        ids.into_iter()
            .filter(|&id| t.is_live(id) && !covered(&dirs, t, t.node(id).parent))
            .collect()
    };
    Roots { ids, dirs, files }
}

/// Checks every file at or below `roots`.
fn expand<R: Reader>(r: &mut Steps<R>, roots: &[NodeId], pat: &SearchPattern, out: &mut Collector) {
    // (directory, its path or "" for the root, generation when the path was read)
    let mut stack: Vec<(NodeId, String, u64)> = Vec::new();
    // The directory of the last file root: (node, its path or "" for the root, generation).
    let mut file_dir: (NodeId, String, u64) = (NIL, String::new(), 0);
    for &root in roots {
        {
            let t = r.tree();
            if !t.is_live(root) {
                continue;
            }
            if t.node(root).is_dir() {
                let path = if root == ROOT {
                    String::new()
                } else {
                    t.path_of(root)
                };
                stack.push((root, path, t.generation()));
            } else {
                // Roots come in id order, and a directory's files mostly have neighbouring ids:
                // its path is built once for all of them.
                let parent = t.node(root).parent;
                if file_dir.0 != parent || file_dir.2 != t.generation() {
                    file_dir = (parent, t.path_of(parent), t.generation());
                    if parent == ROOT {
                        file_dir.1.clear();
                    }
                }
                let name = t.name_bytes(root);
                let mut buf = Vec::with_capacity(file_dir.1.len() + 1 + name.len());
                buf.extend_from_slice(file_dir.1.as_bytes());
                buf.push(b'/');
                buf.extend_from_slice(name);
                if pat.matches_bytes(&buf, name)
                    && let Ok(path) = String::from_utf8(buf)
                {
                    out.push(Hit {
                        path,
                        id: root,
                        generation: t.generation(),
                    });
                }
            }
        }
        r.spend(1);
        while let Some((d, path, seen)) = stack.pop() {
            if out.over() {
                return;
            }
            let mut work = 1;
            {
                let t = r.tree();
                let generation = t.generation();
                if seen != generation
                    && !(t.is_live(d)
                        && t.node(d).is_dir()
                        && (if d == ROOT {
                            String::new()
                        } else {
                            t.path_of(d)
                        }) == path)
                {
                    continue;
                }
                let mut buf = path.into_bytes();
                let base = buf.len();
                for c in t.children(d) {
                    work += 1;
                    buf.truncate(base);
                    buf.push(b'/');
                    let name = t.name_bytes(c);
                    buf.extend_from_slice(name);
                    // The arena holds whole `&str`s, so a path is always UTF-8.
                    let Ok(p) = std::str::from_utf8(&buf) else {
                        continue;
                    };
                    if t.node(c).is_dir() {
                        stack.push((c, p.to_owned(), generation));
                    } else if pat.matches_bytes(&buf, name) {
                        out.push(Hit {
                            path: p.to_owned(),
                            id: c,
                            generation,
                        });
                    }
                }
            }
            r.spend(work);
        }
    }
}

/// The substring part: files whose own name holds the whole pattern, unless expanding the glob
/// roots already checked them.
fn by_name<R: Reader>(
    r: &mut Steps<R>,
    piece: &Piece,
    roots: Option<&Roots>,
    pat: &SearchPattern,
    out: &mut Collector,
) {
    let all = 0..usize::MAX;
    let Some((_, ids)) = par::nodes_in(r, piece, true, u64::MAX, all, &AtomicU64::new(0)) else {
        return;
    };
    for chunk in ids.chunks(STEP / 16) {
        {
            let t = r.tree();
            for &id in chunk {
                if !t.is_live(id) || t.node(id).is_dir() || roots.is_some_and(|s| s.cover(t, id)) {
                    continue;
                }
                let path = t.path_of(id);
                if pat.matches(&path, t.name(id)) {
                    out.push(Hit {
                        path,
                        id,
                        generation: t.generation(),
                    });
                }
            }
        }
        if out.over() {
            return;
        }
        r.spend(STEP);
    }
}

/// Files copied out of the tree for matching without the lock: each directory's path once and
/// the names of its files, in one arena (about 20 bytes per file instead of a full path).
struct Chunk {
    generation: u64,
    arena: Vec<u8>,
    /// (start, end) of each directory's path in `arena` ("" for the root).
    dirs: Vec<(u32, u32)>,
    /// (node, index into `dirs`, name start, name end).
    items: Vec<(NodeId, u32, u32, u32)>,
}

/// Every file, for patterns the index cannot narrow. The calling thread copies the paths of one
/// step of directories under the read lock (cheap: a copy), then hands them, with the lock
/// released, to matcher threads running at a lower CPU priority (see [`background`]), which do
/// the expensive part. So the lock is held only for copies and never by a thread the scheduler
/// holds back, and a busy machine gives its cores to the writers and short queries first.
fn scan_all<S: Source>(src: &S, pat: &SearchPattern, out: &mut Collector) {
    let nodes = src.open().state().tree.len();
    let workers = if nodes < 100_000 {
        1
    } else {
        crate::cores().clamp(1, 8)
    };
    let limits = out.limits;
    let found = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(workers * 2);
    let rx = Mutex::new(rx);
    let matcher = || -> Collector {
        background();
        let mut mine = Collector::new(limits);
        loop {
            let next = rx.lock().recv();
            let Ok(chunk) = next else { break };
            if stop.load(Ordering::Relaxed) {
                continue;
            }
            let mut path: Vec<u8> = Vec::with_capacity(256);
            let mut cur_dir = u32::MAX;
            let mut base = 0;
            for &(id, dir, start, end) in &chunk.items {
                if dir != cur_dir {
                    cur_dir = dir;
                    path.clear();
                    if let Some(&(a, b)) = chunk.dirs.get(dir as usize)
                        && let Some(p) = chunk.arena.get(a as usize..b as usize)
                    {
                        path.extend_from_slice(p);
                    }
                    path.push(b'/');
                    base = path.len();
                }
                let Some(nm) = chunk.arena.get(start as usize..end as usize) else {
                    continue;
                };
                path.truncate(base);
                path.extend_from_slice(nm);
                if !pat.matches_bytes(&path, nm) {
                    continue;
                }
                let Ok(p) = std::str::from_utf8(&path) else {
                    continue;
                };
                mine.push(Hit {
                    path: p.to_owned(),
                    id,
                    generation: chunk.generation,
                });
                let n = found.fetch_add(1, Ordering::Relaxed) + 1;
                if limits.first.is_none() && limits.max_items.is_some_and(|m| n > m) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        mine
    };
    let parts: Vec<Collector> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(matcher)).collect();
        let mut r = src.open();
        let mut slot = 0;
        loop {
            let mut chunk = Chunk {
                generation: 0,
                arena: Vec::with_capacity(STEP * 24),
                dirs: Vec::new(),
                items: Vec::with_capacity(STEP),
            };
            let done = {
                let t = &r.state().tree;
                chunk.generation = t.generation();
                let slots = t.dir_slots();
                while slot < slots && chunk.items.len() < STEP {
                    if let Some(d) = t.dir_at(slot) {
                        copy_files(t, d, &mut chunk);
                    }
                    slot += 1;
                }
                slot >= slots
            };
            if stop.load(Ordering::Relaxed) {
                break;
            }
            // Sending may wait for a matcher: never with the lock held.
            let sent = r.unlocked(|| tx.send(chunk).is_ok());
            if done || !sent {
                break;
            }
        }
        drop(r);
        drop(tx);
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for p in parts {
        out.merge(p);
    }
}

/// Appends the path of `d` and the names of the files directly inside it to `chunk`.
fn copy_files(t: &Tree, d: NodeId, chunk: &mut Chunk) {
    let mut dir = None;
    for c in t.children(d) {
        if t.node(c).is_dir() {
            continue;
        }
        let dir = *dir.get_or_insert_with(|| {
            let start = chunk.arena.len();
            if d != ROOT {
                chunk.arena.extend_from_slice(t.path_of(d).as_bytes());
            }
            // Arenas stay far below 4 GiB (a step is a few thousand names).
            chunk.dirs.push((start as u32, chunk.arena.len() as u32));
            (chunk.dirs.len() - 1) as u32
        });
        let start = chunk.arena.len();
        chunk.arena.extend_from_slice(t.name_bytes(c));
        chunk
            .items
            .push((c, dir, start as u32, chunk.arena.len() as u32));
    }
}

/// Lowers the calling thread's CPU priority by 10 nice levels (Linux keeps the nice value per
/// thread). A scan of every name keeps all cores busy for up to a second on a large view; at
/// normal priority the scheduler shares the cores evenly with it, and the pipe writers and short
/// queries (realtime visibility first) wait a scheduling period each time they wake. Only fresh
/// threads are lowered, as an unprivileged process cannot raise a priority back. Best effort: a
/// failure leaves the priority as it was.
fn background() {
    if let Ok(nice) = rustix::process::getpriority_process(None) {
        let _ = rustix::process::setpriority_process(None, (nice + 10).min(19));
    }
}
