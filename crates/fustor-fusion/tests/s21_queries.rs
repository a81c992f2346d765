//! scenarios.md §3: tree / search / stats API (S21–S30).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};

/// Ready v1 with realtime `/data/archive/old.log` (now−3600, 10) and `/data/report.csv` (now−3600, 20).
async fn given() -> (Fx, String, f64) {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let m = now() - 3600.0;
    fx.rt(
        &a,
        vec![
            with(row("/data/archive/old.log", m), json!({"size": 10})),
            with(row("/data/report.csv", m), json!({"size": 20})),
        ],
    )
    .await;
    (fx, a, m)
}

fn child<'a>(n: &'a Value, name: &str) -> &'a Value {
    n["children"]
        .as_array()
        .unwrap_or_else(|| panic!("no children in {n}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no child {name} in {n}"))
}

fn names(n: &Value) -> BTreeSet<String> {
    n["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn keys(n: &Value) -> BTreeSet<String> {
    n.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s21_recursive_tree() {
    let (fx, _a, m) = given().await;
    let r = fx.q("tree").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let root = &r.body;
    assert_eq!(root["name"], "");
    assert_eq!(root["path"], "/");
    assert_eq!(root["content_type"], "directory");
    assert_eq!(root["job_id"], Value::Null);
    assert_eq!(root["job_pending"], false);
    let data = child(root, "data");
    assert_eq!(data["path"], "/data");
    assert_eq!(data["content_type"], "directory");
    assert!(data.get("audit_skipped").is_some(), "{data}");
    let archive = child(data, "archive");
    assert_eq!(archive["path"], "/data/archive");
    let old = child(archive, "old.log");
    assert_eq!(old["path"], "/data/archive/old.log");
    assert_eq!(old["content_type"], "file");
    assert_eq!(old["size"], 10);
    assert!(approx(old["modified_time"].as_f64().unwrap(), m, 1e-3));
    assert_eq!(old["last_agent_id"], "a");
    assert_eq!(old["agent_missing"], false);
    assert_eq!(old["integrity_suspect"], false);
    assert!(old.get("children").is_none(), "file with children: {old}");
    assert!(
        old.get("audit_skipped").is_none(),
        "file with audit_skipped: {old}"
    );
    assert_eq!(child(data, "report.csv")["size"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s22_depth_and_recursion() {
    let (fx, _a, _m) = given().await;
    let r = fx.q("tree?path=/data&max_depth=0").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["path"], "/data");
    assert!(r.body.get("children").is_none(), "{}", r.text);

    let r = fx.q("tree?path=/data&max_depth=1").await;
    assert_eq!(
        names(&r.body),
        ["archive", "report.csv"].map(String::from).into()
    );
    assert!(
        child(&r.body, "archive").get("children").is_none(),
        "{}",
        r.text
    );

    let r = fx.q("tree?path=/data&recursive=false").await;
    assert_eq!(r.body["children"], json!([]));
    // max_depth forces recursion on.
    let r = fx.q("tree?path=/data&recursive=false&max_depth=1").await;
    assert_eq!(names(&r.body).len(), 2, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s23_only_path() {
    let (fx, _a, _m) = given().await;
    let r = fx.q("tree?only_path=true").await;
    assert_eq!(r.status, 200);
    let allowed: BTreeSet<String> = ["name", "content_type", "path", "children"]
        .map(String::from)
        .into();
    let mut top = keys(&r.body);
    top.remove("job_id");
    top.remove("job_pending");
    assert!(top.is_subset(&allowed), "{top:?}");
    fn walk(n: &Value, allowed: &BTreeSet<String>, seen: &mut usize) {
        *seen += 1;
        for c in n["children"].as_array().into_iter().flatten() {
            assert!(keys(c).is_subset(allowed), "{c}");
            walk(c, allowed, seen);
        }
    }
    let mut seen = 0;
    walk(&r.body, &allowed, &mut seen);
    assert_eq!(seen, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s24_not_found() {
    let (fx, _a, _m) = given().await;
    let r = fx.q("tree?path=/nope").await;
    assert_eq!(r.status, 404);
    // The reference's detail stays (Python clients match on it); `message` is the only other
    // field and says in English which path of which view (a Rust addition, deviations.md).
    assert_eq!(r.body["detail"], json!("路径未找到或尚未同步"));
    assert_eq!(
        r.body,
        json!({
            "detail": "路径未找到或尚未同步",
            "message": "Path '/nope' not found in view 'v1' (or not yet synced)",
        })
    );
    // `stats?path=` of a missing path is the same 404, not 200 with `subtree: null`.
    let r = fx.q("stats?path=/nope").await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["detail"], json!("路径未找到或尚未同步"));
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'/nope'"),
        "{}",
        r.text
    );
    let r = fx.q("stats?path=/data").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["subtree"].is_object(), "{}", r.text);
    let r = fx.q("tree?path=data").await;
    assert_eq!(r.status, 404, "{}", r.text);
    // Normalisation: trailing slash, `.` and duplicate slashes (query-api §3.1).
    for p in [
        "/data/",
        "/data//archive",
        "/data/./archive",
        "/data/archive/../archive",
    ] {
        let r = fx.q(&format!("tree?path={}", enc(p))).await;
        assert_eq!(r.status, 200, "{p}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s25_search() {
    let (fx, _a, _m) = given().await;
    let paths = |r: &Resp| -> Vec<String> {
        r.body
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.text))
            .iter()
            .map(|n| n["path"].as_str().unwrap().to_string())
            .collect()
    };
    let r = fx.q(&format!("search?pattern={}", enc("*.log"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(paths(&r), vec!["/data/archive/old.log"]);
    assert_eq!(r.body[0]["content_type"], "file");
    let r = fx.q("search?pattern=REPORT").await;
    assert_eq!(paths(&r), vec!["/data/report.csv"]);
    let r = fx.q("search?pattern=archive").await;
    assert_eq!(r.body, json!([]));
    let r = fx.q(&format!("search?pattern={}", enc("/data/*"))).await;
    assert_eq!(paths(&r).len(), 2, "`*` also matches `/`: {}", r.text);
    let r = fx.q("search").await;
    assert_eq!(r.status, 422, "{}", r.text);
}

/// Issue 10: `limit=` answers the first files in path order and says how many matched and
/// whether some were left out; without it, the reference's plain array.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s25_search_limit_answers_the_first_paths_and_the_total() {
    let (fx, a, m) = given().await;
    let rows = (0..30)
        .rev()
        .map(|i| row(&format!("/up/run{i:02}/sample_{i:04}.h5"), m))
        .collect();
    fx.rt(&a, rows).await;
    let r = fx
        .q(&format!("search?pattern={}&limit=5", enc("*.h5")))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let paths: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..5)
        .map(|i| format!("/up/run{i:02}/sample_{i:04}.h5"))
        .collect();
    assert_eq!(paths, want);
    assert_eq!(r.headers["x-total-count"], "30");
    assert_eq!(r.headers["x-fustor-truncated"], "true");
    let r = fx
        .q(&format!("search?pattern={}&limit=50", enc("sample_001*")))
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 10, "{}", r.text);
    assert_eq!(r.headers["x-fustor-truncated"], "false");
    // An exact path is a lookup, and names one file.
    let r = fx.q("search?pattern=/up/run07/sample_0007.h5").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.text);
    assert!(r.headers.get("x-total-count").is_none());
    let r = fx.q("search?pattern=x&limit=many").await;
    assert_eq!(r.status, 422, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s26_stats() {
    let (fx, _a, _m) = given().await;
    let s = fx.stats().await;
    assert_eq!(s["item_count"], 5, "{s}");
    assert_eq!(s["total_files"], 2);
    assert_eq!(s["total_directories"], 3);
    assert_eq!(s["total_size"], 30);
    assert_eq!(s["has_blind_spot"], false);
    assert_eq!(s["audit_cycle_count"], 0);
    assert_eq!(s["is_auditing"], false);
    assert_eq!(s["suspect_file_count"], 0);
    for k in [
        "latency_ms",
        "staleness_seconds",
        "oldest_item_path",
        "logical_now",
        "last_audit_finished_at",
    ] {
        assert!(s.get(k).is_some(), "stats lacks {k}: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s27_auto_created_parents() {
    let (fx, _a, _m) = given().await;
    for p in ["/data", "/data/archive"] {
        let n = fx.node(p).await.unwrap();
        assert_eq!(n["modified_time"].as_f64(), Some(0.0), "{n}");
        assert_eq!(n["agent_missing"], true, "{n}");
        assert_eq!(n["integrity_suspect"], false, "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s28_type_switch() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.rt(&a, vec![row("/x", now())]).await;
    assert_eq!(fx.node("/x").await.unwrap()["content_type"], "file");
    fx.rt(&a, vec![dir_row("/x", now())]).await;
    assert_eq!(fx.node("/x").await.unwrap()["content_type"], "directory");
    fx.rt(&a, vec![row("/x/inner.txt", now())]).await;
    fx.rt(&a, vec![row("/x", now())]).await;
    let n = fx.node("/x").await.unwrap();
    assert_eq!(n["content_type"], "file");
    assert!(n.get("children").is_none());
    assert!(fx.node("/x/inner.txt").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s29_directory_delete_is_recursive() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.rt(&a, vec![row("/d/a.txt", now()), row("/d/sub/b.txt", now())])
        .await;
    assert!(fx.node("/d/sub/b.txt").await.is_some());
    fx.rt_del(&a, &["/d"]).await;
    for p in ["/d", "/d/sub", "/d/sub/b.txt", "/d/a.txt"] {
        assert!(fx.node(p).await.is_none(), "{p} survived");
    }
    assert_eq!(fx.stats().await["item_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s30_dry_run() {
    let (fx, _a, _m) = given().await;
    let r = fx.q("tree?dry_run=true").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"message": "dry-run", "view_id": "v1"}));
    // view_id is the resolved id of the key, not the path's view.
    let r = fx.q("tree?dry_run=true").await;
    assert_eq!(r.body["view_id"], "v1");
    let r = fx.qv("v1", "qk2", "tree?dry_run=true").await;
    assert_eq!(r.body["view_id"], "v2");
}

/// W§4.2 row aliases and defaults: `file_path`, `is_dir`; missing keys ⇒ size 0, mtime 0.0;
/// consistency.md rule N: a missing leading `/`, `.` and duplicate slashes are normalised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s28_row_aliases_defaults_and_normalisation() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let m = now();
    fx.rt(
        &a,
        vec![
            json!({"file_path": "/alias.txt", "modified_time": m, "size": 3}),
            json!({"path": "/aliasdir", "modified_time": m, "is_dir": true}),
            json!({"path": "/min.txt"}),
            row("rel/x.txt", m),
            row("//dup//y.txt/", m),
            row("/dot/./z.txt", m),
        ],
    )
    .await;
    assert_eq!(
        fx.node("/alias.txt").await.expect("file_path alias")["size"],
        3
    );
    assert_eq!(
        fx.node("/aliasdir").await.expect("is_dir alias")["content_type"],
        "directory"
    );
    let n = fx.node("/min.txt").await.expect("row with path only");
    assert_eq!(n["size"], 0);
    assert_eq!(n["modified_time"].as_f64(), Some(0.0));
    assert_eq!(n["content_type"], "file");
    for p in ["/rel/x.txt", "/dup/y.txt", "/dot/z.txt"] {
        assert!(fx.node(p).await.is_some(), "{p} not normalised");
    }
}

/// query-api §3.3: latency_ms, staleness_seconds, oldest_item_path, logical_now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s26_stats_latency_and_staleness() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    // Samples d=500 and d=50 tie ⇒ skew 50 (smallest) ⇒ watermark now−50.
    fx.rt(
        &a,
        vec![dir_row("/old", t - 500.0), dir_row("/new", t - 50.0)],
    )
    .await;
    let s = fx.stats().await;
    assert!(
        approx(s["logical_now"].as_f64().unwrap(), now() - 50.0, 2.0),
        "{s}"
    );
    assert_eq!(s["oldest_item_path"], "/old", "{s}");
    assert!(
        approx(s["staleness_seconds"].as_f64().unwrap(), 450.0, 2.0),
        "{s}"
    );
    assert!(s["latency_ms"].as_f64().unwrap() < 2000.0, "{s}");
    fx.snap(&a, vec![row("/x.txt", t - 1050.0)]).await;
    let s = fx.stats().await;
    assert!(
        approx(s["latency_ms"].as_f64().unwrap(), 1_000_000.0, 3000.0),
        "latency of the last row: {s}"
    );
}

/// Validation must not be over-eager: names that merely contain dots, unicode, spaces and URL
/// metacharacters are legal; a path of exactly 4096 bytes is accepted (only *over* 4096 is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s24_legal_unusual_paths_round_trip() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let m = now() - 3600.0;
    // 16 components of 255 bytes (NAME_MAX; the daemon also refuses longer components).
    let max = format!("/{}", "m".repeat(255)).repeat(16);
    assert_eq!(max.len(), 4096);
    let paths = [
        "/a/...txt",
        "/..hidden",
        "/x..y/z",
        "/.config/f",
        "/数据/文件.txt",
        "/emoji/😀.txt",
        "/sp ace/a b.txt",
        "/meta/%41?#&=+.txt",
        max.as_str(),
    ];
    let rows = paths.iter().map(|p| row(p, m)).collect();
    let r = fx
        .ingest(&a, &Fx::batch("update", "realtime", rows, false, None))
        .await;
    assert_eq!(r.status, 200, "legal paths refused: {}", r.text);
    fx.settle("v1").await;
    for p in paths {
        let n = fx.node(p).await;
        assert!(n.is_some(), "{} not found", &p[..p.len().min(40)]);
        assert_eq!(n.unwrap()["path"], p);
    }
    let r = fx.q(&format!("search?pattern={}", enc("文件"))).await;
    assert_eq!(r.body[0]["path"], "/数据/文件.txt", "{}", r.text);
}

/// query-api §3.2 glob details: `?`, `[...]`, `[!...]`, `*` across `/`; broken patterns never 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s25_search_glob_details() {
    let (fx, _a, _m) = given().await;
    let count = async |p: &str| -> usize {
        let r = fx.q(&format!("search?pattern={}", enc(p))).await;
        assert_eq!(r.status, 200, "{p}: {}", r.text);
        r.body.as_array().unwrap().len()
    };
    assert_eq!(count("old.lo?").await, 1);
    assert_eq!(count("[o]ld.log").await, 1);
    assert_eq!(count("[!o]ld.log").await, 0);
    assert_eq!(count("/data*log").await, 1);
    assert_eq!(count("/DATA*").await, 0, "full-path glob is case-sensitive");
    assert_eq!(
        count("Old.LOG").await,
        1,
        "basename substring is case-insensitive"
    );
    for broken in ["[", "[!", "]", "[a-", "\\", "**[", ""] {
        let r = fx.q(&format!("search?pattern={}", enc(broken))).await;
        assert!(
            r.status < 500,
            "pattern {broken:?}: {} {}",
            r.status,
            r.text
        );
    }
}

/// §7.3 / §2: the root always exists: deleting `/` is refused and `/` never becomes a file;
/// an empty path is skipped (rule N).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s29_root_is_never_deleted_or_switched() {
    let (fx, a, _m) = given().await;
    let r = fx
        .ingest(
            &a,
            &Fx::batch("delete", "realtime", vec![del_row("/")], false, None),
        )
        .await;
    assert!(r.status == 200 || r.status == 422, "{}", r.text);
    fx.settle("v1").await;
    let r = fx
        .ingest(
            &a,
            &Fx::batch("delete", "audit", vec![del_row("/")], false, None),
        )
        .await;
    assert!(r.status == 200 || r.status == 422, "{}", r.text);
    fx.settle("v1").await;
    let r = fx
        .ingest(
            &a,
            &Fx::batch("update", "realtime", vec![row("/", now())], false, None),
        )
        .await;
    assert!(r.status == 200 || r.status == 422, "{}", r.text);
    let r = fx
        .ingest(
            &a,
            &Fx::batch("update", "realtime", vec![row("", now())], false, None),
        )
        .await;
    assert!(r.status == 200 || r.status == 422, "{}", r.text);
    fx.settle("v1").await;
    let root = fx.q("tree").await;
    assert_eq!(root.status, 200, "{}", root.text);
    assert_eq!(root.body["content_type"], "directory", "{}", root.text);
    assert_eq!(root.body["path"], "/");
    assert_eq!(fx.stats().await["item_count"], 5, "root subtree lost");
    // Later rows still attach under the root.
    fx.rt(&a, vec![row("/later.txt", now())]).await;
    assert!(fx.node("/later.txt").await.is_some());
}

/// `dir_stats=true` (Rust only, for the console): each directory of a listing carries the
/// `subtree` aggregates that `metadata` gives, files do not; without it the answer is the
/// reference's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_dir_stats_adds_subtree_to_directories() {
    let (fx, _a, m) = given().await;
    let r = fx.q("tree?path=/&max_depth=1&dir_stats=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["subtree"],
        json!({"file_count": 2, "dir_count": 3, "total_size": 30, "latest_mtime": m, "suspect_file_count": 0}),
        "{}",
        r.text
    );
    let data = child(&r.body, "data");
    assert_eq!(data["subtree"]["file_count"], 2);
    assert_eq!(data["subtree"]["dir_count"], 2);
    assert_eq!(data["subtree"]["total_size"], 30);
    let r = fx.q("tree?path=/data&max_depth=1&dir_stats=true").await;
    assert!(
        child(&r.body, "report.csv").get("subtree").is_none(),
        "{}",
        r.text
    );
    let plain = fx.q("tree?path=/&max_depth=1").await;
    assert!(plain.body.get("subtree").is_none(), "{}", plain.text);
    assert!(child(&plain.body, "data").get("subtree").is_none());
}
