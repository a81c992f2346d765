//! Read side (`query-api.md` §3): tree S21–S24, S27–S29, search S25, stats S26, blind-spots,
//! suspect list, subtree stats and the answer-size limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use fustor_view_fs::FsView;
use fustor_view_fs::fs::{QueryError, TreeOptions};
use serde_json::{Value, json};

/// Given for S21–S27: realtime `/data/archive/old.log` (now−3600, 10 B) and `/data/report.csv`
/// (now−3600, 20 B).
fn s21_view() -> FsView {
    let v = view_f0();
    rt(
        &v,
        t0(),
        vec![
            file_sz("/data/archive/old.log", T0 - 3600.0, 10),
            file_sz("/data/report.csv", T0 - 3600.0, 20),
        ],
    );
    v
}

fn opts(recursive: bool, max_depth: Option<u32>, only_path: bool) -> TreeOptions {
    TreeOptions {
        recursive,
        max_depth,
        only_path,
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(k: &[&str]) -> BTreeSet<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn child<'a>(node: &'a Value, name: &str) -> &'a Value {
    node["children"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no children array", node["path"]))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{} has no child {name}", node["path"]))
}

fn names(node: &Value) -> BTreeSet<String> {
    node["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn search(v: &FsView, pattern: &str) -> Vec<String> {
    let mut r: Vec<String> = v
        .read()
        .search(pattern, None)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    r.sort();
    r
}

const FILE_KEYS: [&str; 10] = [
    "name",
    "content_type",
    "path",
    "size",
    "modified_time",
    "created_time",
    "integrity_suspect",
    "last_agent_id",
    "source_uri",
    "agent_missing",
];

// ---------------------------------------------------------------------------------------------
// /tree

#[test]
fn s21_recursive_tree() {
    let v = s21_view();
    let root = tree(&v, "/", full()).unwrap();
    assert_eq!(root["name"], "");
    assert_eq!(root["path"], "/");
    assert_eq!(root["content_type"], "directory");
    assert_eq!(names(&root), set(&["data"]));
    let data = child(&root, "data");
    assert_eq!(data["path"], "/data");
    assert_eq!(names(data), set(&["archive", "report.csv"]));
    let archive = child(data, "archive");
    assert_eq!(archive["path"], "/data/archive");
    let old = child(archive, "old.log");
    assert_eq!(old["path"], "/data/archive/old.log");
    assert_eq!(old["content_type"], "file");
    assert_eq!(old["size"], 10);
    assert_eq!(old["modified_time"], T0 - 3600.0);
    assert_eq!(keys(old), set(&FILE_KEYS), "file node keys");
    let mut dir_keys = FILE_KEYS.to_vec();
    dir_keys.extend(["audit_skipped", "children"]);
    assert_eq!(keys(data), set(&dir_keys), "directory node keys");
    // The HTTP layer appends job_id / job_pending as flat keys.
    let bytes = v
        .read()
        .tree_json(
            "/",
            &full(),
            None,
            &[("job_id", Value::Null), ("job_pending", json!(false))],
        )
        .unwrap();
    let with_extra: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(with_extra["job_id"], Value::Null);
    assert_eq!(with_extra["job_pending"], false);
    assert_eq!(with_extra["path"], "/");
}

#[test]
fn s22_depth_and_recursion() {
    let v = s21_view();
    let d0 = tree(&v, "/data", opts(true, Some(0), false)).unwrap();
    assert!(d0.get("children").is_none(), "max_depth=0: no children key");
    assert_eq!(d0["path"], "/data");

    let d1 = tree(&v, "/data", opts(true, Some(1), false)).unwrap();
    assert_eq!(names(&d1), set(&["archive", "report.csv"]));
    assert!(
        child(&d1, "archive").get("children").is_none(),
        "nodes at depth N have no children key"
    );
    assert!(child(&d1, "report.csv").get("children").is_none());

    let nr = tree(&v, "/data", opts(false, None, false)).unwrap();
    assert_eq!(nr["children"], json!([]), "recursive=false: children []");

    let forced = tree(&v, "/data", opts(false, Some(1), false)).unwrap();
    assert_eq!(
        names(&forced),
        set(&["archive", "report.csv"]),
        "max_depth forces recursion"
    );

    let d2 = tree(&v, "/", opts(true, Some(2), false)).unwrap();
    let data = child(&d2, "data");
    let archive = child(data, "archive");
    assert!(archive.get("children").is_none());

    let f = tree(&v, "/data/report.csv", full()).unwrap();
    assert!(f.get("children").is_none(), "files never have children");
}

#[test]
fn s23_only_path() {
    let v = s21_view();
    let root = tree(&v, "/", opts(true, None, true)).unwrap();
    fn walk(n: &Value) {
        let k = keys(n);
        if n["content_type"] == "directory" {
            assert_eq!(k, set(&["name", "content_type", "path", "children"]), "{n}");
            for c in n["children"].as_array().unwrap() {
                walk(c);
            }
        } else {
            assert_eq!(k, set(&["name", "content_type", "path"]), "{n}");
        }
    }
    walk(&root);
    let data = child(&root, "data");
    assert_eq!(
        child(child(data, "archive"), "old.log")["path"],
        "/data/archive/old.log"
    );
}

#[test]
fn s24_not_found() {
    let v = s21_view();
    assert!(tree(&v, "/nope", full()).is_none());
    assert!(tree(&v, "data", full()).is_none(), "no leading / is added");
    assert!(node(&v, "/data/report.csv/x").is_none());
    assert_eq!(
        v.read().tree_json("/nope", &full(), None, &[]),
        Err(QueryError::NotFound)
    );
}

#[test]
fn s27_auto_created_parents() {
    let v = s21_view();
    for p in ["/data", "/data/archive"] {
        let n = must(&v, p);
        assert_eq!(n["modified_time"], 0.0, "{p}");
        assert_eq!(n["agent_missing"], true, "{p}");
        assert_eq!(n["integrity_suspect"], false, "{p}");
    }
    assert_eq!(field(&v, "/data/report.csv", "agent_missing"), false);
}

#[test]
fn s28_type_switch() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![file("/x", T0)]);
    rt(&v, t, vec![dir("/x", T0)]);
    assert_eq!(tree(&v, "/x", full()).unwrap()["content_type"], "directory");
    rt(&v, t, vec![file("/x", T0)]);
    let x = tree(&v, "/x", full()).unwrap();
    assert_eq!(x["content_type"], "file");
    assert!(x.get("children").is_none() && x.get("audit_skipped").is_none());
}

#[test]
fn s29_directory_delete_is_recursive() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![file("/d/a.txt", T0), file("/d/sub/b.txt", T0)]);
    rt_del(&v, t.plus(1.0), &["/d"]);
    for p in ["/d", "/d/sub", "/d/sub/b.txt", "/d/a.txt"] {
        assert!(tree(&v, p, full()).is_none(), "{p}");
    }
    assert_eq!(stats(&v, t).item_count, 1);
}

// ---------------------------------------------------------------------------------------------
// /search

#[test]
fn s25_search() {
    let v = s21_view();
    assert_eq!(search(&v, "*.log"), strs(&["/data/archive/old.log"]));
    assert_eq!(
        search(&v, "REPORT"),
        strs(&["/data/report.csv"]),
        "substring, any case"
    );
    assert!(
        search(&v, "archive").is_empty(),
        "directories are never returned"
    );
    assert!(search(&v, "*.LOG").is_empty(), "glob is case-sensitive");
    assert_eq!(
        search(&v, "/data/*/old.*"),
        strs(&["/data/archive/old.log"]),
        "full-path glob"
    );
    assert_eq!(
        search(&v, "/data*"),
        strs(&["/data/archive/old.log", "/data/report.csv"]),
        "* matches /"
    );
    assert_eq!(
        search(&v, "/data?report.csv"),
        strs(&["/data/report.csv"]),
        "? matches /"
    );
    assert_eq!(search(&v, "re[a-z]ort.csv"), strs(&["/data/report.csv"]));
    assert_eq!(
        search(&v, "[!x]ld.log"),
        strs(&["/data/archive/old.log"]),
        "[!...]"
    );
    assert!(search(&v, "[!o]ld.log").is_empty(), "[!...] excludes");
    assert_eq!(search(&v, "old.log"), strs(&["/data/archive/old.log"]));
    assert!(search(&v, "zzz").is_empty());
    // JSON: array of file nodes.
    let j: Value = serde_json::from_slice(&v.read().search_json("*.csv", None).unwrap()).unwrap();
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 1);
    assert_eq!(arr[0]["path"], "/data/report.csv");
    assert_eq!(arr[0]["name"], "report.csv");
    assert_eq!(arr[0]["size"], 20);
    assert_eq!(keys(&arr[0]), set(&FILE_KEYS));
}

/// `**` in the reference is two `*` (fnmatch): it matches across `/` anywhere.
#[test]
fn s25_search_double_star() {
    let v = s21_view();
    assert_eq!(search(&v, "**/*.log"), strs(&["/data/archive/old.log"]));
    assert_eq!(
        search(&v, "/data/**"),
        strs(&["/data/archive/old.log", "/data/report.csv"])
    );
    assert_eq!(search(&v, "/data/**.log"), strs(&["/data/archive/old.log"]));
    assert_eq!(search(&v, "**old.log"), strs(&["/data/archive/old.log"]));
    assert_eq!(
        search(&v, "**"),
        strs(&["/data/archive/old.log", "/data/report.csv"])
    );
}

/// fnmatch semantics: `/data/**/x` is `/data/` + anything + `/x`, so it needs both slashes and
/// does not match `/data/x` (gitignore-style "zero directories" is not part of the spec).
#[test]
fn s25_search_double_star_needs_both_slashes() {
    let v = view();
    rt(
        &v,
        t0(),
        vec![file("/data/old.log", T0), file("/data/a/old.log", T0)],
    );
    assert_eq!(search(&v, "/data/**/old.log"), strs(&["/data/a/old.log"]));
}

/// The spec's glob syntax is `*`, `?`, `[...]`, `[!...]` only; braces are literal characters.
#[test]
fn s25_search_braces_are_literal() {
    let v = view();
    rt(&v, t0(), vec![file("/x1.txt", T0), file("/{x,y}1.txt", T0)]);
    assert_eq!(search(&v, "{x,y}*"), strs(&["/{x,y}1.txt"]));
    assert_eq!(search(&v, "{x,y}1.txt"), strs(&["/{x,y}1.txt"]));
}

#[test]
fn search_limit() {
    let v = s21_view();
    assert!(matches!(
        v.read().search("*", Some(1)),
        Err(QueryError::LimitExceeded { limit: 1, .. })
    ));
    assert_eq!(v.read().search("*", Some(2)).unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// /stats

#[test]
fn s26_stats() {
    let v = s21_view();
    let t = t0();
    let s = stats(&v, t);
    assert_eq!(s.item_count, 5);
    assert_eq!(s.total_files, 2);
    assert_eq!(s.total_directories, 3);
    assert_eq!(s.total_size, 30);
    assert!(!s.has_blind_spot);
    assert_eq!(s.audit_cycle_count, 0);
    assert!(!s.is_auditing);
    assert_eq!(s.suspect_file_count, 0);
    assert_eq!(s.last_audit_finished_at, 0.0);
    assert_eq!(s.logical_now, T0 - 3600.0, "skew 3600 from both samples");
    assert_eq!(s.latency_ms, 0.0);
    // The two auto-created directories have mtime 0.
    assert_eq!(s.staleness_seconds, T0 - 3600.0);
    let oldest = s.oldest_item_path.unwrap();
    assert!(oldest == "/data" || oldest == "/data/archive", "{oldest}");
    // Serialised names are those of query-api §3.3.
    let j = serde_json::to_value(stats(&v, t)).unwrap();
    for k in [
        "item_count",
        "total_files",
        "total_directories",
        "total_size",
        "latency_ms",
        "staleness_seconds",
        "oldest_item_path",
        "has_blind_spot",
        "suspect_file_count",
        "logical_now",
        "last_audit_finished_at",
        "audit_cycle_count",
        "is_auditing",
    ] {
        assert!(j.get(k).is_some(), "stats JSON lacks {k}");
    }
}

/// `staleness_seconds`/`oldest_item_path`: the non-root directory with the smallest mtime.
#[test]
fn stats_staleness_tracks_oldest_directory() {
    let v = view();
    let t = t0();
    let s = stats(&v, t);
    assert_eq!(s.staleness_seconds, 0.0, "no directory");
    assert!(s.oldest_item_path.is_none());
    snap(
        &v,
        t,
        vec![dir("/a", T0 - 100.0), dir("/b", T0 - 50.0), file("/f", 1.0)],
    );
    let s = stats(&v, t);
    assert_eq!(s.oldest_item_path.as_deref(), Some("/a"));
    assert_eq!(s.staleness_seconds, 100.0);
    assert_eq!(s.total_size, 1, "directory sizes (4096) are not counted");
    snap(&v, t, vec![dir("/a", T0 - 10.0)]);
    let s = stats(&v, t);
    assert_eq!(s.oldest_item_path.as_deref(), Some("/b"));
    assert_eq!(s.staleness_seconds, 50.0);
    snap(&v, t, vec![dir("/c", T0 + 100.0)]);
    rt_del(&v, t, &["/b"]);
    let s = stats(&v, t);
    assert_eq!(s.oldest_item_path.as_deref(), Some("/a"));
    assert_eq!(s.staleness_seconds, 10.0);
    rt_del(&v, t, &["/a"]);
    let s = stats(&v, t);
    assert_eq!(s.oldest_item_path.as_deref(), Some("/c"));
    assert_eq!(s.staleness_seconds, 0.0, "max(0, ..)");
}

/// Forest-style subtree stats (query-api §5.1 per member).
#[test]
fn subtree_stats() {
    let v = s21_view();
    let st = v.read();
    let d = st.subtree_stats("/data").unwrap();
    assert_eq!((d.file_count, d.dir_count, d.total_size), (2, 2, 30));
    assert_eq!(d.latest_mtime, T0 - 3600.0);
    let f = st.subtree_stats("/data/report.csv").unwrap();
    assert_eq!((f.file_count, f.dir_count, f.total_size), (1, 0, 20));
    assert!(st.subtree_stats("/nope").is_none());
    drop(st);
    rt(&v, t0(), vec![file_sz("/data/new", T0, 5)]);
    assert_eq!(v.read().subtree_stats("/data").unwrap().latest_mtime, T0);
    rt_del(&v, t0(), &["/data/new"]);
    let d = v.read().subtree_stats("/data").unwrap();
    assert_eq!(
        d.latest_mtime,
        T0 - 3600.0,
        "latest recomputed after a delete"
    );
    assert_eq!(d.total_size, 30);
}

// ---------------------------------------------------------------------------------------------
// /blind-spots, /suspect-list, limits

#[test]
fn blind_spots_json_shape() {
    let v = view();
    let t = t0();
    snap(
        &v,
        t,
        vec![
            dir("/d", 100.0),
            file("/d/x", 50.0),
            file("/d/y", 50.0),
            file("/d/z", 50.0),
        ],
    );
    audit(
        &v,
        t.plus(1.0),
        vec![
            dir("/d", 100.0),
            file("/d/x", 50.0),
            file("/d/n", T0 - 3600.0),
            dir("/d/nd", 1.0),
        ],
    );
    v.audit_end(t.plus(2.0));
    let bs = v.read().blind_spots_value();
    assert_eq!(
        keys(&bs),
        set(&[
            "additions_count",
            "additions",
            "deletion_count",
            "deletions"
        ])
    );
    assert_eq!(bs["additions_count"], 1, "directory /d/nd not counted");
    let adds = bs["additions"].as_array().unwrap();
    assert_eq!(adds.len(), 1);
    assert_eq!(adds[0]["path"], "/d/n");
    assert_eq!(keys(&adds[0]), set(&FILE_KEYS));
    assert_eq!(bs["deletion_count"], 2);
    assert_eq!(bs["deletions"], json!(["/d/y", "/d/z"]));
    assert_eq!(additions(&v), strs(&["/d/n", "/d/nd"]));
}

#[test]
fn suspect_list_monotonic_expiry() {
    let v = view_f0();
    let t = t0();
    rt(&v, t, vec![partial("/b", T0, 1)]);
    rt(&v, t.plus(2.0), vec![partial("/a", T0 + 2.0, 1)]);
    let list = v.read().suspect_list();
    assert_eq!(
        list,
        vec![
            ("/a".to_string(), MONO0 + 2.0 + 5.0),
            ("/b".to_string(), MONO0 + 5.0)
        ]
    );
}

/// The engine's answer-size limit (`tree_json(.., Some(limit), ..)`).
#[test]
fn tree_limit_exceeded() {
    let v = s21_view();
    let st = v.read();
    assert!(matches!(
        st.tree_json("/", &full(), Some(2), &[]),
        Err(QueryError::LimitExceeded { limit: 2, .. })
    ));
    assert!(matches!(
        st.tree_json("/", &full(), Some(4), &[]),
        Err(QueryError::LimitExceeded { limit: 4, .. })
    ));
    assert!(st.tree_json("/", &full(), Some(5), &[]).is_ok());
    assert!(
        st.tree_json("/", &opts(true, Some(1), false), Some(2), &[])
            .is_ok()
    );
    assert!(st.tree_json("/data/archive", &full(), Some(2), &[]).is_ok());
    assert_eq!(
        st.tree_json("/nope", &full(), Some(2), &[]),
        Err(QueryError::NotFound)
    );
}
