//! The parts of a `search` that run on every core: reading the name index for a common piece,
//! checking the nodes found, and sorting a large answer.
//!
//! A piece as common as `.h5` (a tenth of all names) passes the Bloom filter of most 16-name
//! blocks, so finding its nodes reads most names, and `*.h5` at 10M files returns a million
//! hits that must come out in path order. On one thread the two took most of 1.4 s (the issue-2
//! scan, which already used every core, had taken 0.3 s). The index groups are split into
//! contiguous ranges, one per core, each read through its own reader in steps (each hands the
//! lock to a waiting writer, as before), and the ranges are joined in order, so ids stay
//! ascending; the nodes found are checked in parts the same way; the hits are sorted by ranked
//! directory on two threads and merged.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use super::super::nameindex::folded_contains;
use super::super::pattern::Piece;
use super::super::pattern::SearchPattern;
use super::super::state::HashMap;
use super::super::tree::NodeId;
use super::{Collector, Hit, Reader, STEP, Source, Steps, expand};

/// Below this many index groups (16 blocks of 16 names each) one thread reads them all: a
/// thread costs more than it saves.
const PARALLEL_GROUPS: usize = 64;

/// Below this many roots one thread expands them.
const PARALLEL_ROOTS: usize = 16_384;

/// Below this many hits one thread sorts them.
const PARALLEL_SORT: usize = 65_536;

/// The nodes (files only if `files_only`) whose folded name contains `piece`, with the number of
/// files at or below them, read on every core; `None` once that number passes `cap` (another
/// piece is cheaper).
pub(super) fn nodes_with_all<S: Source>(
    src: &S,
    piece: &Piece,
    files_only: bool,
    cap: u64,
) -> Option<(u64, Vec<NodeId>)> {
    let groups = src.open().state().tree.name_groups();
    let workers = if groups < PARALLEL_GROUPS {
        1
    } else {
        crate::cores().clamp(1, 8)
    };
    let total = AtomicU64::new(0);
    let scan = |range: Range<usize>| {
        let mut r = Steps {
            r: src.open(),
            work: 0,
        };
        nodes_in(&mut r, piece, files_only, cap, range, &total)
    };
    if workers == 1 {
        return scan(0..usize::MAX);
    }
    let per = groups.div_ceil(workers);
    let parts: Vec<Option<(u64, Vec<NodeId>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                // The last range is open: nodes created meanwhile are read too.
                let end = if w + 1 == workers {
                    usize::MAX
                } else {
                    (w + 1) * per
                };
                let range = w * per..end;
                s.spawn(move || scan(range))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut weight = 0;
    let mut ids = Vec::with_capacity(parts.iter().flatten().map(|p| p.1.len()).sum());
    for part in parts {
        let (w, part) = part?;
        weight += w;
        ids.extend(part);
    }
    Some((weight, ids))
}

/// Every file at or below `roots` that matches, checked on every core: the roots are split
/// into contiguous parts, each expanded through its own reader into its own collector. For
/// `*.h5` the roots are a million files, and checking each, building its path and allocating
/// it (fresh pages: the kernel zeroes them) was the largest part left of the search.
pub(super) fn expand_all<S: Source>(
    src: &S,
    roots: &[NodeId],
    pat: &SearchPattern,
    out: &mut Collector,
) {
    let workers = if roots.len() < PARALLEL_ROOTS {
        1
    } else {
        crate::cores().clamp(1, 8)
    };
    if workers == 1 {
        let mut r = Steps {
            r: src.open(),
            work: 0,
        };
        expand(&mut r, roots, pat, out);
        return;
    }
    let limits = out.limits;
    let run = |part: &[NodeId]| {
        let mut r = Steps {
            r: src.open(),
            work: 0,
        };
        let mut mine = Collector::new(limits);
        expand(&mut r, part, pat, &mut mine);
        mine
    };
    let parts: Vec<Collector> = std::thread::scope(|s| {
        let handles: Vec<_> = roots
            .chunks(roots.len().div_ceil(workers))
            .map(|part| s.spawn(move || run(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for part in parts {
        out.merge(part);
    }
}

/// [`nodes_with_all`] over the index groups in `range`, on the calling thread; `total` is the
/// weight found by every worker so far, for `cap`.
pub(super) fn nodes_in<R: Reader>(
    r: &mut Steps<R>,
    piece: &Piece,
    files_only: bool,
    cap: u64,
    range: Range<usize>,
    total: &AtomicU64,
) -> Option<(u64, Vec<NodeId>)> {
    let (mut weight, mut ids) = (0u64, Vec::new());
    let mut g = range.start;
    loop {
        let mut work = 0;
        {
            let t = r.tree();
            let end = range.end.min(t.name_groups());
            let mut added = 0;
            while g < end && work < STEP {
                work += 16;
                t.name_candidates(g, &piece.mask, |id| {
                    work += 1;
                    let n = t.node(id);
                    if (files_only && n.is_dir())
                        || !folded_contains(t.name_bytes(id), &piece.folded)
                    {
                        return;
                    }
                    added += t.dir_data(id).map_or(1, |d| d.files.max(1));
                    ids.push(id);
                });
                g += 1;
            }
            weight += added;
            if total.fetch_add(added, Ordering::Relaxed) + added >= cap {
                return None;
            }
            if g >= end {
                return Some((weight, ids));
            }
        }
        r.spend(work);
    }
}

/// `hits` in path order.
pub(super) fn sort_hits(hits: Vec<Hit>) -> Vec<Hit> {
    match grouped_order(&hits) {
        Some(order) => {
            let mut slots: Vec<Option<Hit>> = hits.into_iter().map(Some).collect();
            order
                .into_iter()
                .filter_map(|i| slots.get_mut(i as usize).and_then(Option::take))
                .collect()
        }
        None => sort_paths(hits),
    }
}

/// The order of `hits` by path without comparing whole paths, when no hit's directory lies
/// below another hit's directory (`*.h5` over a tree whose files sit in leaf directories).
///
/// Comparing a million full paths (long common prefixes, each in its own allocation) made the
/// sort most of a `*.h5` search. Here each distinct directory is ranked once, by its path and a
/// `/` (so `/a/b.x` comes before `/a/b/`, as the full paths sort); when no ranked directory is a
/// prefix of another, a path's place is its directory's rank, then its name, and the sort keys
/// are integers: the rank and the name's first 8 bytes, the rest of the name read only on a tie.
/// `None` when a directory lies below another: then names of the upper one sort between the
/// lower one's paths, and [`sort_paths`] compares whole paths.
fn grouped_order(hits: &[Hit]) -> Option<Vec<u32>> {
    if hits.len() < 2 || u32::try_from(hits.len()).is_err() {
        return None;
    }
    let mut dirs: Vec<&[u8]> = Vec::new();
    let mut index: HashMap<&[u8], u32> = HashMap::default();
    let mut dir_of: Vec<u32> = Vec::with_capacity(hits.len());
    // Hits of one directory mostly come one after the other: hash the path once for them.
    let mut last: Option<(&[u8], u32)> = None;
    for h in hits {
        let p = h.path.as_bytes();
        let dir = &p[..memchr::memrchr(b'/', p)?];
        let k = match last {
            Some((d, k)) if d == dir => k,
            _ => *index.entry(dir).or_insert_with(|| {
                dirs.push(dir);
                (dirs.len() - 1) as u32
            }),
        };
        last = Some((dir, k));
        dir_of.push(k);
    }
    let mut by_path: Vec<u32> = (0..dirs.len() as u32).collect();
    by_path.sort_unstable_by(|&a, &b| slash_cmp(dirs[a as usize], dirs[b as usize]));
    // Sorted, a directory's descendants follow it: checking neighbours finds every pair.
    for w in by_path.windows(2) {
        let (a, b) = (dirs[w[0] as usize], dirs[w[1] as usize]);
        if b.starts_with(a) && b.get(a.len()) == Some(&b'/') {
            return None;
        }
    }
    let mut rank = vec![0u32; dirs.len()];
    for (r, &d) in by_path.iter().enumerate() {
        rank[d as usize] = r as u32;
    }
    let name = |i: u32| {
        let p = hits[i as usize].path.as_bytes();
        let cut = dirs[dir_of[i as usize] as usize].len() + 1;
        p.get(cut..).unwrap_or_default()
    };
    let mut keys: Vec<(u32, u64, u32)> = (0..hits.len() as u32)
        .map(|i| (rank[dir_of[i as usize] as usize], prefix8(name(i)), i))
        .collect();
    let order = |a: &(u32, u64, u32), b: &(u32, u64, u32)| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| name(a.2).cmp(name(b.2)))
            // The same path twice (a file changed while the search ran): as `Hit`'s order.
            .then_with(|| hits[a.2 as usize].cmp(&hits[b.2 as usize]))
    };
    if keys.len() >= PARALLEL_SORT && crate::cores() >= 2 {
        let mut upper = keys.split_off(keys.len() / 2);
        std::thread::scope(|s| {
            s.spawn(|| upper.sort_unstable_by(order));
            keys.sort_unstable_by(order);
        });
        keys = merge(keys, upper, |a, b| order(a, b).is_le());
    } else {
        keys.sort_unstable_by(order);
    }
    Some(keys.into_iter().map(|k| k.2).collect())
}

/// `a` + "/" against `b` + "/".
fn slash_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let n = a.len().min(b.len());
    match a[..n].cmp(&b[..n]) {
        Equal => {}
        o => return o,
    }
    match (a.get(n), b.get(n)) {
        (None, Some(&c)) => b'/'.cmp(&c).then(Less),
        (Some(&c), None) => c.cmp(&b'/').then(Greater),
        _ => Equal,
    }
}

/// The first 8 bytes of `name`, big-endian, zero-padded: orders as the bytes do (a file name
/// holds no NUL byte).
fn prefix8(name: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = name.len().min(8);
    b[..n].copy_from_slice(&name[..n]);
    u64::from_be_bytes(b)
}

/// Two sorted runs into one (`le`: whether the first goes before or with the second).
fn merge<T>(a: Vec<T>, b: Vec<T>, le: impl Fn(&T, &T) -> bool) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => le(x, y),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    out
}

/// Whole paths compared: in two halves on two threads for a large answer, then merged.
fn sort_paths(mut hits: Vec<Hit>) -> Vec<Hit> {
    if hits.len() < PARALLEL_SORT || crate::cores() < 2 {
        hits.sort_unstable();
        return hits;
    }
    let mut upper = hits.split_off(hits.len() / 2);
    let mut lower = hits;
    std::thread::scope(|s| {
        s.spawn(|| upper.sort_unstable());
        lower.sort_unstable();
    });
    merge(lower, upper, |x, y| x <= y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str, id: u32) -> Hit {
        Hit {
            path: path.to_string(),
            id,
            generation: 0,
        }
    }

    #[test]
    fn ranked_directories_order_as_whole_paths() {
        let paths = [
            "/a/b/zz",
            "/a/b.x/y",
            "/a/b/a",
            "/a/b0/c",
            "/a/b/sample_000002",
            "/a/b/sample_000001",
            "/a/b/sample_0000010",
            "/a.x/q",
            "/a/b/é",
            "/a/b/Z",
        ];
        let hits: Vec<Hit> = (0..400u32)
            .map(|i| hit(&format!("{}{}", paths[i as usize % paths.len()], i / 11), i))
            .collect();
        assert!(grouped_order(&hits).is_some());
        let mut want = hits.clone();
        want.sort_unstable();
        assert_eq!(sort_hits(hits), want);
    }

    #[test]
    fn a_directory_below_another_falls_back_to_whole_paths() {
        for upper in ["/a/c", "/a/a", "/x", "/b", "/"] {
            let file = format!("{}/{}", upper.trim_end_matches('/'), "f");
            let hits = vec![
                hit("/a/b/y", 1),
                hit(&file, 2),
                hit("/a/b/x", 3),
                hit("/a/b.c/z", 4),
            ];
            if upper == "/a/c" || upper == "/a/a" || upper == "/x" || upper == "/b" {
                // "/a/c", "/a/b" and "/a/b.c" are siblings: ranked
                assert!(grouped_order(&hits).is_some(), "{upper}");
            } else {
                assert!(grouped_order(&hits).is_none(), "{upper}");
            }
            let mut want = hits.clone();
            want.sort_unstable();
            assert_eq!(sort_hits(hits), want, "{upper}");
        }
        let nested = vec![hit("/a/b/c/d", 1), hit("/a/b/z", 2), hit("/a/b/a", 3)];
        assert!(grouped_order(&nested).is_none());
        let mut want = nested.clone();
        want.sort_unstable();
        assert_eq!(sort_hits(nested), want);
    }

    #[test]
    fn the_merged_halves_are_in_order() {
        // Sibling directories only (ranked), then files at the root too (whole paths).
        for root_files in [false, true] {
            let hits: Vec<Hit> = (0..PARALLEL_SORT as u32 * 2 + 7)
                .map(|i| {
                    let d = i.wrapping_mul(2_654_435_761) % 977;
                    if root_files && i % 1000 == 0 {
                        hit(&format!("/d{d}.{i}"), i)
                    } else {
                        hit(&format!("/d{d}/f{}", i % 13), i)
                    }
                })
                .collect();
            assert_eq!(grouped_order(&hits).is_some(), !root_files);
            let mut want = hits.clone();
            want.sort_unstable();
            assert!(sort_hits(hits) == want, "root files: {root_files}");
        }
    }
}
