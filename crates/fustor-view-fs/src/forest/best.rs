//! Choosing the "best" member for a path (`query-api.md` §5.1, §9 item 5).
//!
//! The reference always ranks by `file_count`; the design also names `total_size` and
//! `latest_mtime`. All three are honoured (a strict superset: `best=file_count` and an empty
//! `best` behave exactly like the reference).

use serde_json::{Value, json};

use crate::fs::SubtreeStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BestStrategy {
    /// Most files under the path (the reference's only strategy).
    #[default]
    FileCount,
    /// Most bytes under the path.
    TotalSize,
    /// Most recent mtime of the path or anything below it.
    LatestMtime,
}

/// A parsed `best` parameter: the strategy to use and, for an unknown name, a warning for the
/// answer (the request still succeeds with `file_count`, as the reference ignores the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestChoice {
    pub strategy: BestStrategy,
    pub warning: Option<String>,
}

impl BestStrategy {
    pub fn name(self) -> &'static str {
        match self {
            BestStrategy::FileCount => "file_count",
            BestStrategy::TotalSize => "total_size",
            BestStrategy::LatestMtime => "latest_mtime",
        }
    }

    /// Parses `best`; absent or empty means `file_count`. Names are matched exactly (after
    /// trimming) so that a typo is reported rather than silently read as something else.
    pub fn parse(best: Option<&str>) -> BestChoice {
        let raw = best.map(str::trim).unwrap_or("");
        let strategy = match raw {
            "" | "file_count" => Some(BestStrategy::FileCount),
            "total_size" => Some(BestStrategy::TotalSize),
            "latest_mtime" => Some(BestStrategy::LatestMtime),
            _ => None,
        };
        match strategy {
            Some(strategy) => BestChoice {
                strategy,
                warning: None,
            },
            None => BestChoice {
                strategy: BestStrategy::FileCount,
                warning: Some(format!(
                    "unknown best strategy '{raw}'; used file_count (known: file_count, total_size, latest_mtime)"
                )),
            },
        }
    }

    /// The ranking value of a member. A member without the path ranks as 0 (the reference
    /// counts an absent `file_count` as 0).
    fn score(self, st: Option<&SubtreeStats>) -> Score {
        match (self, st) {
            (_, None) => Score::Int(0),
            (BestStrategy::FileCount, Some(s)) => Score::Int(s.file_count),
            (BestStrategy::TotalSize, Some(s)) => Score::Int(s.total_size),
            (BestStrategy::LatestMtime, Some(s)) => Score::Float(s.latest_mtime),
        }
    }

    /// The winner among `ok` members given in pipe-id order: the largest score, the first one
    /// on ties. `None` when no member answered.
    pub fn select<'a>(
        self,
        members: impl IntoIterator<Item = (&'a str, Option<&'a SubtreeStats>)>,
    ) -> Option<Winner<'a>> {
        let mut best: Option<Winner<'a>> = None;
        for (pipe, st) in members {
            let score = self.score(st);
            if best.as_ref().is_none_or(|b| score.beats(&b.score)) {
                best = Some(Winner { pipe, score });
            }
        }
        best
    }
}

/// A ranking value, kept in its JSON type (counts as integers, mtimes as floats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Score {
    Int(u64),
    Float(f64),
}

impl Score {
    /// Strictly greater (ties keep the earlier member). A NaN never wins.
    fn beats(&self, other: &Score) -> bool {
        match (*self, *other) {
            (Score::Int(a), Score::Int(b)) => a > b,
            (a, b) => a.as_f64() > b.as_f64(),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Score::Int(v) => v as f64,
            Score::Float(v) => v,
        }
    }

    pub fn to_json(self) -> Value {
        match self {
            Score::Int(v) => json!(v),
            Score::Float(v) => json!(v),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Winner<'a> {
    pub pipe: &'a str,
    pub score: Score,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(files: u64, size: u64, mtime: f64) -> SubtreeStats {
        SubtreeStats {
            file_count: files,
            dir_count: 1,
            total_size: size,
            latest_mtime: mtime,
            suspect_file_count: 0,
        }
    }

    #[test]
    fn parse_known_empty_and_unknown() {
        assert_eq!(BestStrategy::parse(None).strategy, BestStrategy::FileCount);
        assert_eq!(
            BestStrategy::parse(Some("")).strategy,
            BestStrategy::FileCount
        );
        assert_eq!(
            BestStrategy::parse(Some("total_size")).strategy,
            BestStrategy::TotalSize
        );
        assert_eq!(
            BestStrategy::parse(Some(" latest_mtime ")).strategy,
            BestStrategy::LatestMtime
        );
        let c = BestStrategy::parse(Some("newest"));
        assert_eq!(c.strategy, BestStrategy::FileCount);
        assert!(c.warning.is_some_and(|w| w.contains("'newest'")));
    }

    #[test]
    fn select_each_strategy_ties_and_absent() {
        let a = st(3, 10, 5.0);
        let b = st(3, 20, 4.0);
        let c = st(1, 5, 9.5);
        let m = || {
            vec![
                ("a", Some(&a)),
                ("b", Some(&b)),
                ("c", Some(&c)),
                ("d", None),
            ]
        };
        let w = BestStrategy::FileCount
            .select(m())
            .map(|w| (w.pipe, w.score));
        assert_eq!(w, Some(("a", Score::Int(3))), "tie on 3 ⇒ first");
        let w = BestStrategy::TotalSize
            .select(m())
            .map(|w| (w.pipe, w.score));
        assert_eq!(w, Some(("b", Score::Int(20))));
        let w = BestStrategy::LatestMtime
            .select(m())
            .map(|w| (w.pipe, w.score));
        assert_eq!(w, Some(("c", Score::Float(9.5))));
        // Only absent members: the first one wins with 0, as in the reference.
        let w = BestStrategy::FileCount.select(vec![("x", None), ("y", None)]);
        assert_eq!(w.map(|w| w.pipe), Some("x"));
        assert!(BestStrategy::FileCount.select(Vec::new()).is_none());
        assert_eq!(Score::Float(1.5).to_json(), json!(1.5));
    }
}
