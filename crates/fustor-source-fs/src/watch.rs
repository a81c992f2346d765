//! The hot-directory watch set (`agent-runtime.md` §10.7), without any kernel interaction.
//!
//! Directories compete for a limited number of inotify watches by activity time; the least
//! recently active one is evicted together with its subtree (a watched child of an unwatched
//! parent would still miss creations of siblings). Both indexes are ordered maps, so a touch is
//! O(log n) and a subtree is one contiguous range: `Path` orders component-wise, which is a
//! pre-order of the tree.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use crate::error::FsError;

/// Receives directory activity from scans (`touch` after each listed directory, §10.4).
pub trait WatchHook: Send + Sync {
    /// `dir` is absolute; `ts` is on the agent clock (an mtime already normalised by drift).
    fn touch(&self, dir: &Path, ts: f64);

    /// Watches in use and the limit, for health reports (the registry's watch budget).
    fn budget(&self) -> Option<(usize, usize)> {
        None
    }
}

#[derive(Debug, Clone, Copy)]
struct Ts(f64);

impl PartialEq for Ts {
    fn eq(&self, o: &Self) -> bool {
        self.0.total_cmp(&o.0) == Ordering::Equal
    }
}
impl Eq for Ts {}
impl PartialOrd for Ts {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ts {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// What `schedule` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Scheduled {
    /// New entry; the caller must add the kernel watch and remove those of `evicted`.
    Added { evicted: Vec<PathBuf> },
    /// Already present; its timestamp was raised.
    Raised,
    /// Already present with a newer timestamp.
    Unchanged,
    /// Set full and the candidate is not more recent than the oldest entry.
    Skipped,
}

#[derive(Debug, Clone)]
pub struct WatchSet {
    limit: usize,
    window_days: f64,
    by_path: BTreeMap<PathBuf, (Ts, u64)>,
    by_age: BTreeMap<(Ts, u64), PathBuf>,
    seq: u64,
}

impl WatchSet {
    pub fn new(limit: usize, window_days: f64) -> Self {
        WatchSet {
            limit,
            window_days,
            by_path: BTreeMap::new(),
            by_age: BTreeMap::new(),
            seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Lowering takes effect on the next `schedule` (which evicts or skips).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    pub fn window_days(&self) -> f64 {
        self.window_days
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.by_path.contains_key(path)
    }

    pub fn timestamp(&self, path: &Path) -> Option<f64> {
        self.by_path.get(path).map(|(t, _)| t.0)
    }

    pub fn oldest(&self) -> Option<(&Path, f64)> {
        self.by_age
            .first_key_value()
            .map(|((t, _), p)| (p.as_path(), t.0))
    }

    /// Records activity of `path` at `ts`; `now` (agent epoch) judges the monitoring window.
    ///
    /// Errors only with [`FsError::WatchWindowViolation`], leaving the set unchanged.
    pub fn schedule(&mut self, path: &Path, ts: f64, now: f64) -> Result<Scheduled, FsError> {
        if let Some((old, id)) = self.by_path.get(path).copied() {
            if ts <= old.0 {
                return Ok(Scheduled::Unchanged);
            }
            let p = self
                .by_age
                .remove(&(old, id))
                .unwrap_or_else(|| path.to_path_buf());
            self.by_age.insert((Ts(ts), id), p);
            self.by_path.insert(path.to_path_buf(), (Ts(ts), id));
            return Ok(Scheduled::Raised);
        }
        let mut evicted = Vec::new();
        while self.by_path.len() >= self.limit {
            let Some(((oldest_ts, _), oldest)) = self.by_age.first_key_value() else {
                // limit == 0
                return Ok(Scheduled::Skipped);
            };
            if ts <= oldest_ts.0 {
                self.restore(evicted);
                return Ok(Scheduled::Skipped);
            }
            let age_days = (now - oldest_ts.0) / 86_400.0;
            if age_days < self.window_days {
                let err = FsError::WatchWindowViolation {
                    path: oldest.clone(),
                    age_days,
                    window_days: self.window_days,
                };
                self.restore(evicted);
                return Err(err);
            }
            let oldest = oldest.clone();
            evicted.extend(self.take_subtree(&oldest));
        }
        self.seq += 1;
        self.by_path.insert(path.to_path_buf(), (Ts(ts), self.seq));
        self.by_age.insert((Ts(ts), self.seq), path.to_path_buf());
        Ok(Scheduled::Added {
            evicted: evicted.into_iter().map(|(p, _)| p).collect(),
        })
    }

    /// Undoes evictions of an aborted `schedule`, so that a refusal has no side effects.
    fn restore(&mut self, evicted: Vec<(PathBuf, (Ts, u64))>) {
        for (p, (t, id)) in evicted {
            self.by_age.insert((t, id), p.clone());
            self.by_path.insert(p, (t, id));
        }
    }

    pub fn remove(&mut self, path: &Path) -> bool {
        match self.by_path.remove(path) {
            Some(key) => {
                self.by_age.remove(&key);
                true
            }
            None => false,
        }
    }

    /// Removes `path` and every entry below it, returning the removed paths.
    pub fn remove_subtree(&mut self, path: &Path) -> Vec<PathBuf> {
        self.take_subtree(path)
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    fn take_subtree(&mut self, path: &Path) -> Vec<(PathBuf, (Ts, u64))> {
        let below: Vec<PathBuf> = self
            .by_path
            .range::<Path, _>((Bound::Included(path), Bound::Unbounded))
            .map(|(p, _)| p)
            .take_while(|p| p.starts_with(path))
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(below.len());
        for p in below {
            if let Some(key) = self.by_path.remove(&p) {
                self.by_age.remove(&key);
                out.push((p, key));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;
    const NOW: f64 = 1000.0 * DAY;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn raise_only_and_skip_when_older_than_oldest() {
        let mut w = WatchSet::new(2, 30.0);
        assert!(matches!(
            w.schedule(&p("/r/a"), NOW - 60.0 * DAY, NOW),
            Ok(Scheduled::Added { .. })
        ));
        assert_eq!(
            w.schedule(&p("/r/a"), NOW - 70.0 * DAY, NOW).unwrap(),
            Scheduled::Unchanged
        );
        assert_eq!(
            w.schedule(&p("/r/a"), NOW - 50.0 * DAY, NOW).unwrap(),
            Scheduled::Raised
        );
        assert_eq!(w.timestamp(&p("/r/a")), Some(NOW - 50.0 * DAY));
        w.schedule(&p("/r/b"), NOW - 40.0 * DAY, NOW).unwrap();
        assert_eq!(
            w.schedule(&p("/r/c"), NOW - 55.0 * DAY, NOW).unwrap(),
            Scheduled::Skipped
        );
        assert_eq!(
            w.schedule(&p("/r/c"), NOW - 50.0 * DAY, NOW).unwrap(),
            Scheduled::Skipped
        );
        assert_eq!(w.len(), 2);
        assert!(!w.contains(&p("/r/c")));
    }

    #[test]
    fn evicts_the_oldest_with_its_subtree() {
        let mut w = WatchSet::new(4, 30.0);
        w.schedule(&p("/r/a"), NOW - 90.0 * DAY, NOW).unwrap();
        w.schedule(&p("/r/a/x"), NOW - 40.0 * DAY, NOW).unwrap();
        w.schedule(&p("/r/a/x/y"), NOW - 45.0 * DAY, NOW).unwrap();
        w.schedule(&p("/r/ab"), NOW - 35.0 * DAY, NOW).unwrap();
        let got = w.schedule(&p("/r/new"), NOW, NOW).unwrap();
        let Scheduled::Added { mut evicted } = got else {
            panic!("{got:?}")
        };
        evicted.sort();
        assert_eq!(evicted, vec![p("/r/a"), p("/r/a/x"), p("/r/a/x/y")]);
        assert!(
            w.contains(&p("/r/ab")),
            "a sibling sharing a name prefix is not in the subtree"
        );
        assert!(w.contains(&p("/r/new")));
        assert_eq!(w.len(), 2);
        assert_eq!(w.oldest().map(|(p, _)| p.to_path_buf()), Some(p("/r/ab")));
    }

    #[test]
    fn window_violation_is_an_error_and_changes_nothing() {
        let mut w = WatchSet::new(1, 30.0);
        w.schedule(&p("/r/a"), NOW - 5.0 * DAY, NOW).unwrap();
        let err = w.schedule(&p("/r/b"), NOW, NOW).unwrap_err();
        match err {
            FsError::WatchWindowViolation {
                path,
                age_days,
                window_days,
            } => {
                assert_eq!(path, p("/r/a"));
                assert!((age_days - 5.0).abs() < 1e-9);
                assert_eq!(window_days, 30.0);
            }
            other => panic!("{other:?}"),
        }
        assert!(w.contains(&p("/r/a")));
        assert!(!w.contains(&p("/r/b")));
    }

    #[test]
    fn lowered_limit_evicts_on_next_schedule() {
        let mut w = WatchSet::new(10, 30.0);
        for (i, age) in [100.0, 90.0, 80.0].iter().enumerate() {
            w.schedule(&p(&format!("/r/{i}")), NOW - age * DAY, NOW)
                .unwrap();
        }
        w.set_limit(2);
        let Scheduled::Added { evicted } = w.schedule(&p("/r/new"), NOW, NOW).unwrap() else {
            panic!()
        };
        assert_eq!(evicted, vec![p("/r/0"), p("/r/1")]);
        assert_eq!(w.len(), 2);
        assert_eq!(
            WatchSet::new(0, 1.0).schedule(&p("/x"), NOW, NOW).unwrap(),
            Scheduled::Skipped
        );
    }
}
