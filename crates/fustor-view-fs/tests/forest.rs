//! Forest view answers (`query-api.md` §5, `scenarios.md` §11) at the engine level.

use fustor_core::view::{ViewContext, ViewDriver};
use fustor_core::{Event, EventType, FsRow, MessageSource, Now};
use fustor_view_fs::fs::TreeOptions;
use fustor_view_fs::{ForestView, FsViewConfig};
use serde_json::{Value, json};

const T0: f64 = 1_700_000_000.0;

fn now() -> Now {
    Now::at(T0, 1000.0)
}

fn forest() -> ForestView {
    ForestView::new("forest", FsViewConfig::default())
}

fn push(f: &ForestView, pipe: &str, rows: Vec<FsRow>) {
    let mut ev = Event::fs(EventType::Update, MessageSource::Realtime, rows);
    ev.metadata
        .insert("agent_id".into(), json!(format!("agent-{pipe}")));
    ev.metadata
        .insert("source_uri".into(), json!(format!("/mnt/{pipe}")));
    let ctx = ViewContext {
        pipe_id: pipe,
        session_id: "s",
        agent_id: "",
        source_uri: None,
    };
    f.apply(&[ev], &ctx, now());
}

fn file(p: &str, mtime: f64, size: u64) -> FsRow {
    FsRow::upsert(p, mtime, size, false)
}

fn files(paths: &[&str]) -> Vec<FsRow> {
    paths.iter().map(|p| file(p, T0 - 100.0, 1)).collect()
}

/// S93's content: pa holds /x/1..3, pb holds /x/1.
fn s93() -> ForestView {
    let f = forest();
    push(&f, "pa", files(&["/x/1", "/x/2", "/x/3"]));
    push(&f, "pb", files(&["/x/1"]));
    f
}

/// `tree` as a value, checked against the bytes of `tree_json` (the same answer).
fn tree(
    f: &ForestView,
    path: &str,
    opts: &TreeOptions,
    best: Option<&str>,
    limit: Option<usize>,
) -> Value {
    let v = f.tree(path, opts, best, limit);
    let bytes = f.tree_json(path, opts, best, limit);
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(parsed, v, "tree_json = tree for {path} best={best:?}");
    v
}

fn opts() -> TreeOptions {
    TreeOptions::default()
}

#[test]
fn s93_per_pipe_trees_and_best() {
    let f = s93();
    let v = f.stats("/x", None);
    assert_eq!(v["path"], "/x");
    let m = &v["members"];
    assert_eq!(m[0]["view_id"], "pa");
    assert_eq!(m[0]["status"], "ok");
    assert_eq!(m[0]["file_count"], 3);
    assert_eq!(m[0]["dir_count"], 1);
    assert_eq!(m[0]["total_size"], 3);
    assert_eq!(m[1]["view_id"], "pb");
    assert_eq!(m[1]["file_count"], 1);
    assert_eq!(
        v["best"],
        json!({"view_id": "pa", "reason": "file_count", "value": 3})
    );
    assert!(v.get("warning").is_none());
    assert!(m[0].get("capacity_exceeded").is_none(), "only when true");
}

#[test]
fn s94_tree_with_and_without_best() {
    let f = s93();
    let v = tree(&f, "/x", &opts(), Some("file_count"), None);
    assert_eq!(v["best_view_selected"], "pa");
    let members = v["members"].as_object().map(|m| m.len());
    assert_eq!(members, Some(1));
    assert_eq!(v["members"]["pa"]["status"], "ok");
    let data = &v["members"]["pa"]["data"];
    assert_eq!(data["path"], "/x");
    assert_eq!(data["content_type"], "directory");
    assert_eq!(data["children"].as_array().map(Vec::len), Some(3));
    // Lineage from the event metadata is part of every node.
    assert_eq!(data["children"][0]["last_agent_id"], "agent-pa");
    assert_eq!(data["children"][0]["source_uri"], "/mnt/pa");

    let v = tree(&f, "/x", &opts(), None, None);
    assert!(v.get("best_view_selected").is_none());
    assert_eq!(v["members"]["pa"]["status"], "ok");
    assert_eq!(v["members"]["pb"]["data"]["children"][0]["path"], "/x/1");
    assert_eq!(
        v["members"]["pb"]["data"]["children"][0]["last_agent_id"],
        "agent-pb"
    );
    // An empty `best` is "no best", as in the reference.
    let v = tree(&f, "/x", &opts(), Some(""), None);
    assert_eq!(v["members"].as_object().map(|m| m.len()), Some(2));
}

#[test]
fn s95_empty_forest() {
    let f = forest();
    assert_eq!(
        f.stats("/", None),
        json!({"path": "/", "members": [], "best": null})
    );
    assert_eq!(
        tree(&f, "/", &opts(), Some("file_count"), None),
        json!({"path": "/", "members": {}, "error": "No valid views found for strategy"})
    );
    assert_eq!(
        tree(&f, "/", &opts(), None, None),
        json!({"path": "/", "members": {}})
    );
}

#[test]
fn stats_absent_path_member_has_only_id_and_status() {
    let f = s93();
    push(&f, "pc", files(&["/other"]));
    let v = f.stats("/x/2", None);
    assert_eq!(
        v["members"][0],
        json!({"view_id": "pa", "status": "ok", "file_count": 1, "dir_count": 0,
               "total_size": 1, "latest_mtime": T0 - 100.0})
    );
    assert_eq!(v["members"][1], json!({"view_id": "pb", "status": "ok"}));
    assert_eq!(v["best"]["view_id"], "pa");
    // Nobody holds the path: the first ok member wins with 0 (absent counts as 0).
    let v = f.stats("/nowhere", None);
    assert_eq!(v["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        v["best"],
        json!({"view_id": "pa", "reason": "file_count", "value": 0})
    );
    // A relative path never names a node.
    let v = f.stats("x", None);
    assert_eq!(v["members"][0], json!({"view_id": "pa", "status": "ok"}));
    // Non-normal query paths are normalised.
    assert_eq!(f.stats("/x//./", None)["members"][0]["file_count"], 3);
}

#[test]
fn best_strategies_and_ties() {
    let f = forest();
    // pa: 2 files, 10 bytes, older; pb: 2 files, 30 bytes, newest; pc: 1 file, 5 bytes.
    push(
        &f,
        "pa",
        vec![file("/d/a", 100.0, 5), file("/d/b", 200.0, 5)],
    );
    push(
        &f,
        "pb",
        vec![file("/d/a", 150.0, 10), file("/d/c", 900.0, 20)],
    );
    push(&f, "pc", vec![file("/d/z", 500.0, 5)]);
    let best = |s: Option<&str>| f.stats("/d", s)["best"].clone();
    assert_eq!(
        best(None),
        json!({"view_id": "pa", "reason": "file_count", "value": 2})
    );
    assert_eq!(best(Some("file_count"))["view_id"], "pa", "tie ⇒ first");
    assert_eq!(
        best(Some("total_size")),
        json!({"view_id": "pb", "reason": "total_size", "value": 30})
    );
    // The directory's own mtime counts: /d was created with the files (mtime 0 here).
    assert_eq!(
        best(Some("latest_mtime")),
        json!({"view_id": "pb", "reason": "latest_mtime", "value": 900.0})
    );
    push(&f, "pc", vec![file("/d/y", 1.0, 5)]);
    assert_eq!(
        f.stats("/d", Some("file_count"))["best"]["view_id"],
        "pa",
        "pa, pb, pc all hold 2 files ⇒ pa"
    );
    // Tree follows the same strategy.
    let v = tree(&f, "/d", &opts(), Some("latest_mtime"), None);
    assert_eq!(v["best_view_selected"], "pb");
    // Unknown strategy: file_count and a warning, in both answers.
    let v = f.stats("/d", Some("biggest"));
    assert_eq!(v["best"]["reason"], "file_count");
    assert!(v["warning"].as_str().is_some_and(|w| w.contains("biggest")));
    let v = tree(&f, "/d", &opts(), Some("biggest"), None);
    assert_eq!(v["best_view_selected"], "pa");
    assert!(v["warning"].is_string());
}

#[test]
fn ties_go_to_the_first_member_in_pipe_id_order() {
    let f = forest();
    // Created in the order pz, pm, pb; pz and pm tie on every strategy, pb is lower.
    push(&f, "pz", vec![file("/d/1", 50.0, 7), file("/d/2", 60.0, 7)]);
    push(&f, "pm", vec![file("/d/3", 60.0, 7), file("/d/4", 10.0, 7)]);
    push(&f, "pb", vec![file("/d/5", 1.0, 1)]);
    for s in ["file_count", "total_size", "latest_mtime"] {
        let v = f.stats("/d", Some(s));
        assert_eq!(v["best"]["view_id"], "pm", "{s}");
        assert_eq!(v["members"][0]["view_id"], "pb", "members in pipe-id order");
        assert_eq!(
            tree(&f, "/d", &opts(), Some(s), None)["best_view_selected"],
            "pm"
        );
    }
    // Strictly larger later member wins.
    push(&f, "pz", vec![file("/d/6", 70.0, 1)]);
    assert_eq!(f.stats("/d", None)["best"]["view_id"], "pz");
}

#[test]
fn tree_supports_max_depth_and_only_path() {
    let f = forest();
    push(&f, "pa", files(&["/x/y/z/1"]));
    let o = TreeOptions {
        recursive: true,
        max_depth: Some(1),
        only_path: true,
    };
    let v = tree(&f, "/x", &o, None, None);
    let data = &v["members"]["pa"]["data"];
    assert_eq!(data["children"][0]["path"], "/x/y");
    assert!(
        data["children"][0].get("children").is_none(),
        "depth 1 stops at /x/y"
    );
    assert!(data.get("size").is_none(), "only_path drops metadata");
    // Names that need escaping survive the byte splicing of `tree_json` (checked by `tree`).
    push(&f, "p\"q", files(&["/a\"b\\c"]));
    let v = tree(&f, "/a\"b\\c", &opts(), None, None);
    assert_eq!(v["members"]["p\"q"]["data"]["name"], "a\"b\\c");
    // Absent path: ok with null data.
    let v = tree(&f, "/nope", &opts(), None, None);
    assert_eq!(v["members"]["pa"], json!({"status": "ok", "data": null}));
}

#[test]
fn per_member_limit_reports_error_for_that_member_only() {
    let f = forest();
    push(&f, "pa", files(&["/x/1", "/x/2", "/x/3", "/x/4"]));
    push(&f, "pb", files(&["/x/1"]));
    let v = tree(&f, "/x", &opts(), None, Some(3));
    assert_eq!(v["members"]["pa"]["status"], "error");
    let err = v["members"]["pa"]["error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("Metadata retrieval limit exceeded"),
        "{err}"
    );
    assert_eq!(v["members"]["pb"]["status"], "ok");
    assert_eq!(v["members"]["pb"]["data"]["path"], "/x");
    // The winner itself over the limit: still selected, entry is the error.
    let v = tree(&f, "/x", &opts(), Some("file_count"), Some(3));
    assert_eq!(v["best_view_selected"], "pa");
    assert_eq!(v["members"]["pa"]["status"], "error");
    // A shallower answer fits.
    let o = TreeOptions {
        max_depth: Some(0),
        ..opts()
    };
    assert_eq!(
        tree(&f, "/x", &o, None, Some(3))["members"]["pa"]["status"],
        "ok"
    );
}

#[test]
fn capacity_exceeded_flag_on_full_member() {
    let cfg = FsViewConfig {
        max_nodes: 3,
        ..FsViewConfig::default()
    };
    let f = ForestView::new("forest", cfg);
    push(&f, "pa", files(&["/a", "/b", "/c"]));
    push(&f, "pb", files(&["/a"]));
    let v = f.stats("/", None);
    assert_eq!(v["members"][0]["capacity_exceeded"], true);
    assert_eq!(v["members"][0]["file_count"], 2);
    assert!(v["members"][1].get("capacity_exceeded").is_none());
    let v = f.stats("/c", None);
    assert_eq!(
        v["members"][0],
        json!({"view_id": "pa", "status": "ok", "capacity_exceeded": true})
    );
}

#[test]
fn search_reports_members_counts_and_truncation() {
    let f = forest();
    push(
        &f,
        "pa",
        files(&["/d/a.h5", "/d/b.h5", "/d/c.txt", "/e/d.h5"]),
    );
    push(&f, "pb", files(&["/d/c.txt"]));
    let v = f.search("*.h5", Some(2));
    assert_eq!(v["pattern"], "*.h5");
    let pa = &v["members"]["pa"];
    assert_eq!(pa["status"], "ok");
    assert_eq!(pa["count"], 3);
    assert_eq!(pa["paths"].as_array().map(Vec::len), Some(2));
    assert_eq!(pa["truncated"], true);
    assert_eq!(
        v["members"]["pb"],
        json!({"status": "ok", "count": 0, "paths": [], "truncated": false})
    );
    let v = f.search("c.txt", None);
    for p in ["pa", "pb"] {
        assert_eq!(v["members"][p]["paths"], json!(["/d/c.txt"]));
        assert_eq!(v["members"][p]["truncated"], false);
    }
    assert_eq!(
        forest().search("*", None),
        json!({"pattern": "*", "members": {}})
    );
}

#[test]
fn diff_only_in_and_mismatched() {
    let f = forest();
    push(
        &f,
        "pa",
        vec![
            file("/d/same", 10.0, 1),
            file("/d/size", 10.0, 1),
            file("/d/sub/mtime", 10.0, 1),
            file("/d/sub/only_a", 10.0, 1),
            file("/d/eps", 10.0, 1),
            file("/outside", 10.0, 1),
        ],
    );
    push(
        &f,
        "pb",
        vec![
            file("/d/same", 10.0, 1),
            file("/d/size", 10.0, 2),
            file("/d/sub/mtime", 11.0, 1),
            file("/d/only_b", 10.0, 1),
            file("/d/eps", 10.0 + 5e-7, 1),
        ],
    );
    let v = f.diff("/d", None);
    assert_eq!(v["members"], json!(["pa", "pb"]));
    assert_eq!(v["compared_files"], 6);
    assert_eq!(
        v["only_in"],
        json!({"pa": ["/d/sub/only_a"], "pb": ["/d/only_b"]})
    );
    assert_eq!(v["only_in_count"], 2);
    assert_eq!(v["mismatched_count"], 2);
    assert_eq!(v["difference_count"], 4);
    assert_eq!(v["truncated"], false);
    let mm = v["mismatched"].as_array().cloned().unwrap_or_default();
    let paths: Vec<&str> = mm.iter().filter_map(|m| m["path"].as_str()).collect();
    assert_eq!(
        paths,
        vec!["/d/size", "/d/sub/mtime"],
        "files first, then sub-directories"
    );
    assert_eq!(
        mm[0]["members"],
        json!({"pa": {"size": 1, "modified_time": 10.0}, "pb": {"size": 2, "modified_time": 10.0}})
    );
}

#[test]
fn diff_truncates_but_keeps_exact_counts() {
    let f = forest();
    let a: Vec<String> = (0..10).map(|i| format!("/d/a{i}")).collect();
    push(
        &f,
        "pa",
        files(&a.iter().map(String::as_str).collect::<Vec<_>>()),
    );
    push(&f, "pb", files(&["/d/a0"]));
    push(&f, "pc", files(&["/d/a0", "/d/a1"]));
    let v = f.diff("/d", Some(3));
    assert_eq!(v["truncated"], true);
    assert_eq!(v["difference_count"], 9);
    assert_eq!(v["only_in_count"], 9);
    assert_eq!(v["only_in"]["pa"], json!(["/d/a1", "/d/a2", "/d/a3"]));
    assert_eq!(
        v["only_in"]["pc"],
        json!(["/d/a1"]),
        "present in pa and pc, not pb"
    );
    assert_eq!(v["only_in"]["pb"], json!([]));
    let v = f.diff("/d", Some(9));
    assert_eq!(v["truncated"], false);
}

#[test]
fn diff_of_a_file_path_and_of_mixed_kinds() {
    let f = forest();
    push(&f, "pa", vec![file("/f", 1.0, 1), file("/k", 1.0, 1)]);
    push(&f, "pb", vec![file("/f", 1.0, 2), file("/k/inner", 1.0, 1)]);
    let v = f.diff("/f", None);
    assert_eq!(v["mismatched"][0]["path"], "/f");
    assert_eq!(v["compared_files"], 1);
    // /k is a file in pa and a directory in pb: both sides are "only in".
    let v = f.diff("/", None);
    assert_eq!(v["only_in"], json!({"pa": ["/k"], "pb": ["/k/inner"]}));
    assert_eq!(forest().diff("/", None)["compared_files"], 0);
    let empty: Value = f.diff("/absent", None);
    assert_eq!(empty["difference_count"], 0);
}

fn deletes(paths: &[String]) -> Event<FsRow> {
    Event::fs(
        EventType::Delete,
        MessageSource::Realtime,
        paths.iter().map(|p| FsRow::delete(p.as_str())).collect(),
    )
}

/// Issue 10: `diff` takes the member locks in steps, so the members' writers run while it
/// walks. Directories deleted and re-created under it (their node ids freed and reused) must
/// neither break the walk nor be compared through stale ids; once the writer stops, the copies
/// compare equal.
#[test]
fn diff_survives_writers_between_its_steps() {
    let f = std::sync::Arc::new(forest());
    let paths: Vec<String> = (0..40)
        .flat_map(|d| (0..300).map(move |i| format!("/r/d{d:02}/f{i:03}")))
        .collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    push(&f, "pa", files(&refs));
    push(&f, "pb", files(&refs));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (f, stop, paths) = (f.clone(), stop.clone(), paths.clone());
        std::thread::spawn(move || {
            let ctx = ViewContext {
                pipe_id: "pb",
                session_id: "s",
                agent_id: "",
                source_uri: None,
            };
            let mut d = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let dir = format!("/r/d{:02}", d % 40);
                f.apply(&[deletes(std::slice::from_ref(&dir))], &ctx, now());
                let again: Vec<&str> = paths
                    .iter()
                    .filter(|p| p.starts_with(&format!("{dir}/")))
                    .map(String::as_str)
                    .collect();
                f.apply(
                    &[Event::fs(
                        EventType::Update,
                        MessageSource::Realtime,
                        files(&again),
                    )],
                    &ctx,
                    now(),
                );
                d += 1;
            }
        })
    };
    for _ in 0..20 {
        let v = f.diff("/r", Some(10));
        let compared = v["compared_files"].as_u64().unwrap_or(0);
        assert!(
            compared >= 11_700,
            "a deleted directory hides at most its 300 files: {v}"
        );
        assert!(compared <= 12_000, "{v}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let v = f.diff("/r", Some(10));
    assert_eq!(v["difference_count"], 0, "{v}");
    assert_eq!(v["compared_files"], 12_000);
}

/// Issue 14: a forest's report is each member's report, and the member with the most bytes.
#[test]
fn report_per_member_and_best() {
    use fustor_core::view::ReportQuery;
    let f = forest();
    let owned = |p: &str, size: u64, uid: u32| {
        let mut r = FsRow::upsert(p, T0 - 10.0, size, false);
        r.uid = Some(uid);
        r.gid = Some(1);
        r.mode = Some(0o644);
        r
    };
    push(&f, "a", vec![owned("/d/x", 10, 1), owned("/d/y", 5, 2)]);
    push(&f, "b", vec![owned("/d/x", 100, 1)]);
    let q = ReportQuery {
        path: "/d",
        by: None,
        top: 5,
        best: None,
        now: now(),
        identity: None,
    };
    let r = f.report(&q);
    assert_eq!(r["best"], "b", "{r}");
    assert_eq!(r["members"]["a"]["files"], 2, "{r}");
    assert_eq!(r["members"]["a"]["owners"][0]["id"], 1, "{r}");
    assert_eq!(r["members"]["b"]["bytes"], 100, "{r}");
    let q = ReportQuery { path: "/nope", ..q };
    assert_eq!(f.report(&q)["members"]["a"]["status"], "not_found");
}
