//! The files of a subtree report found by walking the subtree's child lists (issue 14).
//!
//! A linear scan of the node array costs the whole tree whatever the subtree; a walk costs the
//! subtree only, but chases sibling links. Workers (one per core for a large subtree) share a
//! stack of directories still to read: each takes one, counts its files and pushes its
//! subdirectories. Visibility for a key bound to a user follows the rule of [`super::access`]
//! on the way down: a subdirectory is pushed only if the user can search it, and its files are
//! counted only if it is also readable, so nothing above the answered directory is read again.
//!
//! Each worker holds its own read guard and pauses for a waiting writer after every [`STEP`]
//! nodes; a directory is read in one step. When the tree's generation moved during a pause
//! (nodes created or removed), node ids on the stack may name other nodes now: a directory
//! pushed in an earlier generation is then read only if it is still a live directory below the
//! report's root, and the walk stops if the root's path no longer leads to the root.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fustor_core::view::Identity;
use parking_lot::Mutex;

use super::access::{R, X, allows};
use super::report::{Acc, PARALLEL_FROM, STEP};
use super::search::{Reader, Source};
use super::tree::{NIL, NodeId, ROOT, Tree};

/// Where a walk starts, decided under the guard that looked the path up.
pub(super) struct Start<'a> {
    pub root: NodeId,
    /// Normalised path of `root`, to check after a generation change.
    pub path: &'a str,
    /// Whether the user can reach `root` (always for keys without identity).
    pub searchable: bool,
    /// Whether the user can list `root`'s children.
    pub listed: bool,
    /// `None` for keys without identity or admin keys.
    pub who: Option<&'a Identity>,
    /// Files and directories below `root`.
    pub subtree: usize,
}

/// Whether the subtree of `root` (with `subtree` nodes below it) is cheaper walked than
/// scanned: when it holds less than half of the node slots.
pub(super) fn prefer_walk(t: &Tree, root: NodeId, subtree: usize) -> bool {
    root != ROOT && subtree.saturating_mul(2) < t.node_slots().len()
}

/// A directory to read: its id, whether its files are counted, and the tree generation in
/// which it was pushed.
type Pending = (NodeId, bool, u64);

/// Whether `d` is a live directory below (or equal to) `root`.
fn below(t: &Tree, mut d: NodeId, root: NodeId) -> bool {
    if !t.is_live(d) || !t.node(d).is_dir() {
        return false;
    }
    loop {
        if d == root {
            return true;
        }
        let p = t.node(d).parent;
        if d == ROOT || p == NIL {
            return false;
        }
        d = p;
    }
}

/// Counts every file of the subtree `start` describes that the user may see.
pub(super) fn walk<S: Source>(src: &S, start: &Start<'_>, now: f64, top: usize) -> Acc {
    if !start.searchable {
        return Acc::new();
    }
    let generation = src.open().state().tree.generation();
    let stack = Mutex::new(vec![(start.root, start.listed, generation)]);
    // Directories pushed and not yet fully read: the walk is over when it drops to 0.
    let pending = AtomicUsize::new(1);
    let stop = AtomicBool::new(false);
    let workers = if start.subtree < PARALLEL_FROM {
        1
    } else {
        crate::cores().clamp(1, 8)
    };
    let work = || {
        let mut acc = Acc::new();
        let mut r = src.open();
        let mut spent = 0usize;
        // The generation in which the root was last seen at its path.
        let mut root_seen = generation;
        let mut subdirs: Vec<Pending> = Vec::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let next = stack.lock().pop();
            let Some((d, listed, pushed)) = next else {
                if pending.load(Ordering::Acquire) == 0 {
                    break;
                }
                // Another worker is reading a directory whose subdirectories come next.
                r.unlocked(std::thread::yield_now);
                continue;
            };
            let t = &r.state().tree;
            let g = t.generation();
            if g != root_seen {
                if t.lookup(start.path) != Some(start.root) {
                    // The root went away: drop the rest of the walk.
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                root_seen = g;
            }
            if pushed != g && !below(t, d, start.root) {
                pending.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            for c in t.children(d) {
                let n = t.node(c);
                spent += 1;
                if n.is_dir() {
                    let o = || t.ownership(c);
                    let x = start.who.is_none_or(|w| allows(o(), w, X));
                    if x {
                        let rd = start.who.is_none_or(|w| allows(o(), w, R));
                        subdirs.push((c, rd, g));
                    }
                } else if listed && n.is_live_file() {
                    acc.count(c, n, now, top);
                }
            }
            if !subdirs.is_empty() {
                pending.fetch_add(subdirs.len(), Ordering::AcqRel);
                stack.lock().append(&mut subdirs);
            }
            pending.fetch_sub(1, Ordering::AcqRel);
            if spent >= STEP {
                r.pause();
                spent = 0;
            }
        }
        acc
    };
    super::report::run_workers(workers, work, top)
}
