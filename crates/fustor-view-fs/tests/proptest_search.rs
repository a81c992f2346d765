//! The name index against a brute-force scan (issue 10): after random sequences of upserts,
//! deletes, renames, bulk churn (which rebuilds index blocks) and resets, `search` through the
//! index answers exactly the files a scan of every name finds, for patterns of every shape the
//! planner distinguishes (exact path, literal pieces in names and in directories, case-folded
//! substrings, patterns too short to index, invalid globs).

mod common;

use common::*;
use fustor_view_fs::FsView;
use fustor_view_fs::fs::{SearchLimits, SearchPattern};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Upsert(String),
    Delete(String),
    Rename(String, String),
    /// Creates `n` files in one directory, then deletes all but every seventh.
    Churn(String, usize),
    Reset,
}

const NAMES: &[&str] = &[
    "abc",
    "ABC",
    "äbΣ",
    "xyς",
    "a.log",
    "sample_001",
    "Sample_0012",
    "d",
    "[x]",
    "a*b",
    "K\u{212A}elvin",
    "rép",
];

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAMES), 1..4)
        .prop_map(|c| format!("/{}", c.join("/")))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => path().prop_map(Op::Upsert),
        3 => path().prop_map(Op::Delete),
        2 => (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => (path(), 40usize..150).prop_map(|(d, n)| Op::Churn(d, n)),
        1 => Just(Op::Reset),
    ]
}

const PATTERNS: &[&str] = &[
    "*",
    "abc",
    "ABC",
    "*.log",
    "sample_00*",
    "*/abc/*",
    "/abc",
    "/d/abc",
    "/abc/d",
    "äbσ",
    "ÄBΣ",
    "xyσ",
    "[!a]bc",
    "a?c",
    "*_001",
    "amp",
    "*b/a*",
    "[x]",
    "a[b",
    "*ς*",
    "/d/*",
    "bc",
    "*abc*",
    "f00*",
    "/churn*/f0*",
    "kelvin",
    "RÉP",
    "*/[a-z]bc",
    "",
];

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(PATTERNS).prop_map(str::to_string),
        1 => (path(), prop::sample::select(vec!["", "*", "?"]))
            .prop_map(|(p, w)| format!("{w}{}", &p[1..])),
        1 => path(),
    ]
}

fn apply(v: &FsView, op: &Op) {
    let t = t0();
    match op {
        Op::Upsert(p) => {
            rt(v, t, vec![file(p, 1.0)]);
        }
        Op::Delete(p) => {
            rt_del(v, t, &[p]);
        }
        Op::Rename(a, b) => {
            rt_del(v, t, &[a]);
            rt(v, t, vec![file(b, 1.0)]);
        }
        Op::Churn(d, n) => {
            let d = format!("/churn{}", d.replace('/', "_"));
            let rows: Vec<_> = (0..*n)
                .map(|i| file(&format!("{d}/f{i:04}"), 1.0))
                .collect();
            rt(v, t, rows);
            let gone: Vec<String> = (0..*n)
                .filter(|i| i % 7 != 0)
                .map(|i| format!("{d}/f{i:04}"))
                .collect();
            let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
            rt_del(v, t, &gone);
        }
        Op::Reset => v.reset(),
    }
}

fn brute(v: &FsView, pattern: &str) -> Vec<String> {
    let pat = SearchPattern::new(pattern);
    let mut out = Vec::new();
    v.read().for_each_file(|_, p, name| {
        if pat.matches(p, name) {
            out.push(p.to_string());
        }
    });
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn index_search_equals_a_scan(ops in prop::collection::vec(op(), 1..40),
                                  patterns in prop::collection::vec(pattern(), 1..8),
                                  first in 0usize..4) {
        let v = view();
        for op in &ops {
            apply(&v, op);
        }
        for pattern in &patterns {
            let want = brute(&v, pattern);
            let got = v.search(pattern, SearchLimits::default()).unwrap();
            let paths: Vec<String> = got.hits.iter().map(|h| h.path.clone()).collect();
            prop_assert_eq!(&paths, &want, "pattern {:?}", pattern);
            prop_assert_eq!(got.total, want.len());
            // `limit=`: the first paths in order, and the exact count.
            let page = v.search(pattern, SearchLimits { max_items: None, first: Some(first) }).unwrap();
            let paths: Vec<String> = page.hits.iter().map(|h| h.path.clone()).collect();
            prop_assert_eq!(&paths[..], &want[..first.min(want.len())]);
            prop_assert_eq!(page.total, want.len());
            prop_assert_eq!(page.truncated(), want.len() > first);
        }
    }
}

/// Churn of one directory fills and empties index blocks: a name deleted long ago must not keep
/// a block alive, and a name in a rebuilt block must still be found.
#[test]
fn rebuilt_blocks_find_live_names_only() {
    let v = view();
    let t = t0();
    let rows: Vec<_> = (0..640)
        .map(|i| file(&format!("/d/tmp_{i:05}.part"), 1.0))
        .collect();
    rt(&v, t, rows);
    rt(&v, t, vec![file("/d/keeper_unique.dat", 1.0)]);
    let gone: Vec<String> = (0..640).map(|i| format!("/d/tmp_{i:05}.part")).collect();
    let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
    rt_del(&v, t, &gone);
    let hits = v.search("*.part", SearchLimits::default()).unwrap();
    assert_eq!(hits.total, 0);
    let hits = v.search("keeper_uni*", SearchLimits::default()).unwrap();
    assert_eq!(hits.hits.len(), 1);
    assert_eq!(hits.hits[0].path, "/d/keeper_unique.dat");
}

/// Views of 100,000+ nodes scan with several matcher threads; the answer is the scan's.
#[test]
fn parallel_scan_equals_a_scan() {
    let v = view();
    let t = t0();
    for d in 0..120 {
        let rows: Vec<_> = (0..1000)
            .map(|i| {
                file(
                    &format!("/d{d:03}/f{i:04}.{}", ["h5", "dat", "txt"][i % 3]),
                    1.0,
                )
            })
            .collect();
        rt(&v, t, rows);
    }
    for pattern in ["*7?", "*7?.h5", "*5", "f", "*"] {
        let want = brute(&v, pattern);
        let got = v.search(pattern, SearchLimits::default()).unwrap();
        let paths: Vec<String> = got.hits.iter().map(|h| h.path.clone()).collect();
        assert_eq!(paths, want, "pattern {pattern}");
    }
    let over = v.search(
        "*5",
        SearchLimits {
            max_items: Some(10),
            first: None,
        },
    );
    assert!(over.is_err(), "more hits than max_items fail the search");
}

/// A common piece (`.h5` in a third of 200,000 names) is read from the index on several threads
/// and the answer (over 65,536 hits) sorted in halves: the answer and its order are the scan's,
/// with directories named like the piece (roots with roots below them, paths that sort between
/// a directory's files), and a name that holds the whole pattern (`*.h5`) but does not match
/// the glob.
#[test]
fn parallel_index_read_and_sort_equal_a_scan() {
    let v = view();
    let t = t0();
    for d in 0..200 {
        let rows: Vec<_> = (0..1000)
            .map(|i| {
                file(
                    &format!("/d{d:03}/f{i:04}.{}", ["h5", "dat", "H5x"][i % 3]),
                    1.0,
                )
            })
            .collect();
        rt(&v, t, rows);
    }
    rt(
        &v,
        t,
        vec![
            file("/d007/run.h5/a.dat", 1.0),
            file("/d007/run.h5/deep.h5/b.h5", 1.0),
            file("/d007/run.h5.old/c.h5", 1.0),
            file("/d007/run/d.h5", 1.0),
            file("/d011/a*.h5x", 1.0),
            file("/d011/A*.H5", 1.0),
        ],
    );
    for pattern in ["*.h5", "*.H5", "*.h5*", "*/run.h5/*", "h5x"] {
        let want = brute(&v, pattern);
        let got = v.search(pattern, SearchLimits::default()).unwrap();
        let paths: Vec<String> = got.hits.iter().map(|h| h.path.clone()).collect();
        assert_eq!(paths.len(), want.len(), "pattern {pattern}");
        assert_eq!(paths, want, "pattern {pattern}");
        assert_eq!(v.read().search(pattern, None).unwrap().len(), want.len());
        let page = v
            .search(
                pattern,
                SearchLimits {
                    max_items: None,
                    first: Some(1000),
                },
            )
            .unwrap();
        let paths: Vec<String> = page.hits.iter().map(|h| h.path.clone()).collect();
        assert_eq!(
            &paths[..],
            &want[..1000.min(want.len())],
            "pattern {pattern}"
        );
        assert_eq!(page.total, want.len());
    }
    assert!(brute(&v, "*.h5").len() > 65_536);
    assert!(brute(&v, "*.h5").contains(&"/d011/a*.h5x".to_string()));
}
