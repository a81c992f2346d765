//! Issue 11 (durable Fusion), end to end on the real binary and real HTTP: every batch
//! answered 200 survives `kill -9`, a restarted Fusion answers at once with the restored
//! content, and damaged files cost only the view they belong to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod cli_support;

use cli_support::{BIN, free_port};

struct Fusion {
    child: Child,
    home: PathBuf,
    main: String,
    recv: String,
}

impl Drop for Fusion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(home: &Path, mp: u16, rp: u16) {
    let dir = home.join("fusion-config");
    std::fs::create_dir_all(&dir).unwrap();
    // v1: log only (no periodic snapshot during the test); v2: snapshots every second, so its
    // restore is a snapshot plus a log tail; forest: a forest view on p1 next to v1.
    let y = format!(
        r#"
host: 127.0.0.1
port: {mp}
receivers:
  r: {{port: {rp}, bind_host: 127.0.0.1, api_keys: [{{key: k1, pipe_id: p1}}, {{key: k2, pipe_id: p2}}]}}
views:
  v1: {{driver: fs, api_keys: [q1]}}
  v2: {{driver: fs, api_keys: [q2], persist_snapshot_interval_seconds: 1}}
  forest: {{driver: forest-fs, api_keys: [q3]}}
pipes:
  p1: {{receiver: r, views: [v1, forest], session_timeout_seconds: 600}}
  p2: {{receiver: r, views: [v2], session_timeout_seconds: 600}}
"#
    );
    std::fs::write(dir.join("default.yaml"), y).unwrap();
}

/// Starts Fusion in the foreground on `home`; stderr goes to `home/stderr-<n>.log`.
fn start(home: &Path, mp: u16, rp: u16, n: u32) -> Fusion {
    let log = std::fs::File::create(home.join(format!("stderr-{n}.log"))).unwrap();
    let child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .arg("start")
        .env_remove("FUSTOR_HOME")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Fusion {
        child,
        home: home.to_path_buf(),
        main: format!("http://127.0.0.1:{mp}"),
        recv: format!("http://127.0.0.1:{rp}"),
    }
}

impl Fusion {
    /// What run `n` logged (its stderr only: the log file holds every run).
    fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.home.join(format!("stderr-{n}.log"))).unwrap_or_default()
    }

    /// The first answer of `GET /views/{view}/{q}` once the main port accepts connections, and
    /// how long after `since` it came.
    async fn first_answer(
        &self,
        c: &reqwest::Client,
        view: &str,
        key: &str,
        q: &str,
    ) -> (u16, Value, Duration) {
        let t = Instant::now();
        loop {
            if let Ok(r) = c
                .get(format!("{}/api/v1/views/{view}/{q}", self.main))
                .header("X-API-Key", key)
                .send()
                .await
            {
                let status = r.status().as_u16();
                return (status, r.json().await.unwrap_or(Value::Null), t.elapsed());
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "Fusion did not come up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn session(&self, c: &reqwest::Client, key: &str) -> String {
        let t = Instant::now();
        loop {
            if let Ok(r) = c
                .post(format!("{}/api/v1/pipe/session/", self.recv))
                .header("X-API-Key", key)
                .json(&json!({"task_id": format!("durable:{key}")}))
                .send()
                .await
            {
                let v: Value = r.json().await.unwrap();
                return v["session_id"].as_str().unwrap().to_string();
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "Fusion did not come up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A realtime batch of `n` files `/d{batch % 7}/f{batch}_{i}`.
fn body(batch: usize, n: usize) -> Vec<u8> {
    let mut rows = Vec::new();
    for i in 0..n {
        rows.push(json!({
            "path": path(batch, i),
            "file_name": format!("f{batch}_{i}"),
            "size": batch * 1000 + i,
            "modified_time": 1_700_000_000.0 + batch as f64,
            "created_time": 1_700_000_000.0,
            "is_directory": false,
            // Issue 14: owners survive the log and the snapshot (format 2).
            "uid": 1000 + batch % 3,
            "gid": 100,
            "mode": 0o640,
            "uname": format!("user{}", batch % 3),
        }));
    }
    serde_json::to_vec(&json!({
        "source_type": "message",
        "events": [{"event_type": "update", "event_schema": "fs", "table": "files", "fields": [],
                    "message_source": "realtime", "index": -1, "rows": rows}],
    }))
    .unwrap()
}

fn path(batch: usize, i: usize) -> String {
    format!("/d{}/f{batch}_{i}", batch % 7)
}

/// Pushes batches until `stop` is reached; answers how many were acknowledged (200).
async fn push(
    c: &reqwest::Client,
    f: &Fusion,
    key: &str,
    sid: &str,
    from: usize,
    to: usize,
) -> usize {
    let mut acked = from;
    for b in from..to {
        let r = c
            .post(format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv))
            .header("X-API-Key", key)
            .body(body(b, 50))
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => acked = b + 1,
            _ => break,
        }
    }
    acked
}

async fn total_files(c: &reqwest::Client, f: &Fusion, view: &str, key: &str) -> (u16, Value) {
    let (status, v, _) = f.first_answer(c, view, key, "stats").await;
    (status, v)
}

/// The node at `path` in a tree answer.
fn find<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if v["path"].as_str() == Some(path) {
        return Some(v);
    }
    v["children"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| find(c, path))
}

/// The owner keys of `path(batch, 0)` came back.
fn assert_owner(tree: &Value, batch: usize, what: &str) {
    let n = find(tree, &path(batch, 0)).unwrap_or(&Value::Null);
    assert_eq!(n["uid"], json!(1000 + batch % 3), "{what}: {n}");
    assert_eq!(n["mode"], json!(0o640), "{what}: {n}");
    assert_eq!(
        n["owner"],
        json!(format!("user{}", batch % 3)),
        "{what}: {n}"
    );
}

/// Every file of batches `0..acked` is in the tree answer of `view`.
fn assert_all_present(tree: &Value, acked: usize, what: &str) {
    let mut found = std::collections::HashSet::new();
    fn walk(v: &Value, out: &mut std::collections::HashSet<String>) {
        if let Some(p) = v["path"].as_str() {
            out.insert(p.to_string());
        }
        for c in v["children"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    walk(tree, &mut found);
    for b in 0..acked {
        for i in 0..50 {
            assert!(
                found.contains(&path(b, i)),
                "{what}: acknowledged {} missing",
                path(b, i)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_kill_9_and_the_restart_answers_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (mp, rp) = (free_port(), free_port());
    config(home, mp, rp);
    let c = reqwest::Client::new();
    let mut f = start(home, mp, rp, 1);
    let s1 = f.session(&c, "k1").await;
    let s2 = f.session(&c, "k2").await;
    // Both pipes push at once; v2 snapshots every second meanwhile.
    let (a1, a2) = tokio::join!(push(&c, &f, "k1", &s1, 0, 40), async {
        let n = push(&c, &f, "k2", &s2, 0, 20).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        push(&c, &f, "k2", &s2, n, n + 20).await
    });
    assert_eq!((a1, a2), (40, 40));
    // Right after the last 200: no clean shutdown, no final snapshot.
    let _ = f.child.kill();
    let _ = f.child.wait();
    let log1 = f.log(1);
    assert!(
        log1.contains("view snapshot written"),
        "v2 never snapshotted:\n{log1}"
    );
    drop(f);

    let f = start(home, mp, rp, 2);
    let (status, tree, after) = f
        .first_answer(&c, "v1", "q1", "tree?path=/&recursive=true")
        .await;
    assert_eq!(status, 200, "restored view must answer at once: {tree}");
    assert_all_present(&tree, a1, "v1");
    assert_owner(&tree, 1, "v1 (log)");
    let (status, tree) = {
        let (s, t, _) = f
            .first_answer(&c, "v2", "q2", "tree?path=/&recursive=true")
            .await;
        (s, t)
    };
    assert_eq!(status, 200);
    assert_all_present(&tree, a2, "v2");
    assert_owner(&tree, 2, "v2 (snapshot)");
    assert_owner(&tree, a2 - 1, "v2 (log after the snapshot)");
    let (status, stats) = total_files(&c, &f, "v1", "q1").await;
    assert_eq!(status, 200);
    assert_eq!(stats["total_files"].as_u64(), Some(40 * 50), "{stats}");
    assert!(stats["restored_at"].as_f64().is_some(), "{stats}");
    assert_eq!(stats["reconciling"], json!(true), "{stats}");
    // The forest's member tree of p1 came back too.
    let (status, fstats) = total_files(&c, &f, "forest", "q3").await;
    assert_eq!(status, 200);
    assert_eq!(fstats["members"][0]["view_id"], json!("p1"), "{fstats}");
    assert_eq!(
        fstats["members"][0]["file_count"].as_u64(),
        Some(40 * 50),
        "{fstats}"
    );
    assert_eq!(fstats["reconciling"], json!(true), "{fstats}");
    eprintln!("first 200 on /tree {after:?} after the restart began");

    // The leader's complete snapshot ends the reconciliation; the view served 200 throughout.
    let s1 = f.session(&c, "k1").await;
    let r = c
        .post(format!("{}/api/v1/pipe/ingest/{s1}/events", f.recv))
        .header("X-API-Key", "k1")
        .body(
            serde_json::to_vec(&json!({"source_type": "snapshot", "is_end": true, "events": []}))
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, stats) = total_files(&c, &f, "v1", "q1").await;
    assert_eq!(status, 200);
    assert_eq!(stats["reconciling"], json!(false), "{stats}");
}

/// Flips one byte in the middle of `path`.
fn damage(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_cost_only_their_view() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (mp, rp) = (free_port(), free_port());
    config(home, mp, rp);
    let c = reqwest::Client::new();
    let mut f = start(home, mp, rp, 1);
    let s1 = f.session(&c, "k1").await;
    let s2 = f.session(&c, "k2").await;
    assert_eq!(push(&c, &f, "k1", &s1, 0, 10).await, 10);
    assert_eq!(push(&c, &f, "k2", &s2, 0, 10).await, 10);
    // A clean stop writes final snapshots.
    let pid = f.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let _ = f.child.wait();
    drop(f);
    let data = home.join("fusion-data");
    assert!(data.join("v1/snapshot.fvs").exists());

    // Round 1: v1's snapshot damaged → v1 starts empty (503: no leader, nothing restored),
    // v2 intact.
    damage(&data.join("v1/snapshot.fvs"));
    let mut f = start(home, mp, rp, 2);
    let (status, body, _) = f
        .first_answer(&c, "v2", "q2", "tree?path=/&recursive=true")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_all_present(&body, 10, "v2");
    let (status, body, _) = f.first_answer(&c, "v1", "q1", "stats").await;
    assert_eq!(status, 503, "damaged view must not serve: {body}");
    let log = f.log(2);
    assert!(
        log.contains("persisted view refused") && log.contains("checksum"),
        "no clear error:\n{log}"
    );
    assert!(
        std::fs::read_dir(data.join("v1")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("corrupt-")),
        "damaged files are kept aside"
    );
    // v2 keeps taking batches (log only from here), then Fusion dies mid-way.
    let s2 = f.session(&c, "k2").await;
    assert_eq!(push(&c, &f, "k2", &s2, 10, 20).await, 20);
    let _ = f.child.kill();
    let _ = f.child.wait();
    drop(f);

    // Round 2: v2's log ends with half a record (torn tail) → cut and reported, everything
    // before it kept.
    let seg = segments(&data.join("v2")).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let mut file = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    file.write_all(&[0x40, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(file);
    let mut f = start(home, mp, rp, 3);
    let (status, body, _) = f
        .first_answer(&c, "v2", "q2", "tree?path=/&recursive=true")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_all_present(&body, 20, "v2 after a torn tail");
    let log = f.log(3);
    assert!(
        log.contains("torn tail of the log cut") && log.contains("bytes=7"),
        "torn tail not reported:\n{log}"
    );
    // The cut file is the intact prefix (until the next snapshot deletes it).
    if let Ok(m) = std::fs::metadata(&seg) {
        assert_eq!(m.len(), len, "torn bytes cut off");
    }
    // The replayed records are snapshotted soon after the start.
    let t = Instant::now();
    while !f.log(3).contains("view snapshot written") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no snapshot after replay"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = f.child.kill();
    let _ = f.child.wait();
    drop(f);

    // Round 3: v2's snapshot cut in half → refused with a clear error, v2 empty, v1 (empty
    // since round 1, but running) unaffected.
    let snap = data.join("v2/snapshot.fvs");
    let m = std::fs::metadata(&snap).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snap)
        .unwrap()
        .set_len(m.len() / 2)
        .unwrap();
    let f = start(home, mp, rp, 4);
    let (status, body, _) = f.first_answer(&c, "v2", "q2", "stats").await;
    assert_eq!(status, 503, "truncated snapshot must not serve: {body}");
    let log = f.log(4);
    assert!(
        log.contains("persisted view refused") && log.contains("truncated"),
        "no clear error:\n{log}"
    );
    // Fusion is up and takes new data for the emptied view.
    let s2 = f.session(&c, "k2").await;
    assert_eq!(push(&c, &f, "k2", &s2, 0, 1).await, 1);
}

/// A realtime batch over 20 shared paths whose sizes say who wrote them last.
fn shared_body(pipe: usize, batch: usize) -> Vec<u8> {
    let rows: Vec<Value> = (0..20)
        .map(|i| {
            json!({"path": format!("/s/f{i}"), "size": pipe * 100_000 + batch,
                   "modified_time": 1_700_000_000.0 + batch as f64, "is_directory": false})
        })
        .collect();
    serde_json::to_vec(&json!({
        "source_type": "message",
        "events": [{"event_type": "update", "event_schema": "fs", "table": "files", "fields": [],
                    "message_source": "realtime", "index": -1, "rows": rows}],
    }))
    .unwrap()
}

/// Two pipes feeding one fs view write the same paths at once: after `kill -9` the restored
/// view is exactly what it served before (replay applies in the order the batches were applied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pipes_into_one_view_restore_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (mp, rp) = (free_port(), free_port());
    let dir = home.join("fusion-config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("default.yaml"),
        format!(
            r#"
host: 127.0.0.1
port: {mp}
receivers:
  r: {{port: {rp}, bind_host: 127.0.0.1, api_keys: [{{key: ka, pipe_id: pa}}, {{key: kb, pipe_id: pb}}]}}
views:
  shared: {{driver: fs, api_keys: [qs]}}
pipes:
  pa: {{receiver: r, views: [shared], session_timeout_seconds: 600}}
  pb: {{receiver: r, views: [shared], session_timeout_seconds: 600}}
"#
        ),
    )
    .unwrap();
    let c = reqwest::Client::new();
    let mut f = start(home, mp, rp, 1);
    let sa = f.session(&c, "ka").await;
    let sb = f.session(&c, "kb").await;
    let push = |key: &'static str, sid: String, pipe: usize| {
        let (c, url) = (
            c.clone(),
            format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv),
        );
        async move {
            for b in 0..60 {
                let r = c
                    .post(&url)
                    .header("X-API-Key", key)
                    .body(shared_body(pipe, b))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    tokio::join!(push("ka", sa.clone(), 1), push("kb", sb.clone(), 2));
    // Snapshot ends (the leader's makes the view ready; a follower's is ignored).
    for (key, sid) in [("ka", &sa), ("kb", &sb)] {
        let end = json!({"source_type": "snapshot", "is_end": true, "events": []});
        c.post(format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv))
            .header("X-API-Key", key)
            .body(serde_json::to_vec(&end).unwrap())
            .send()
            .await
            .unwrap();
    }
    // Wait until both queues are applied, then take what the view serves.
    let t0 = Instant::now();
    let before = loop {
        assert!(t0.elapsed() < Duration::from_secs(30), "view never settled");
        let (s, t, _) = f
            .first_answer(&c, "shared", "qs", "tree?path=/&recursive=true")
            .await;
        let (_, stats, _) = f.first_answer(&c, "shared", "qs", "stats").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, t2, _) = f
            .first_answer(&c, "shared", "qs", "tree?path=/&recursive=true")
            .await;
        if s == 200 && t == t2 && stats["total_files"] == json!(20) {
            break t;
        }
    };
    let _ = f.child.kill();
    let _ = f.child.wait();
    drop(f);
    let f = start(home, mp, rp, 2);
    let (status, after, _) = f
        .first_answer(&c, "shared", "qs", "tree?path=/&recursive=true")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        after, before,
        "restored view differs from the one served before the crash"
    );
}

/// A reload ends every session (the views empty, as in the reference) and reopens the logs:
/// the emptied content does not come back after a crash, and what is pushed after the reload
/// does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_the_logs_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (mp, rp) = (free_port(), free_port());
    config(home, mp, rp);
    let c = reqwest::Client::new();
    let mut f = start(home, mp, rp, 1);
    let s1 = f.session(&c, "k1").await;
    assert_eq!(push(&c, &f, "k1", &s1, 0, 5).await, 5);
    let pid = f.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let t = Instant::now();
    while !f.log(1).contains("configuration reloaded") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no reload:\n{}",
            f.log(1)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s1 = f.session(&c, "k1").await;
    assert_eq!(push(&c, &f, "k1", &s1, 100, 103).await, 103);
    let _ = f.child.kill();
    let _ = f.child.wait();
    drop(f);
    let f = start(home, mp, rp, 2);
    let (status, stats, _) = f.first_answer(&c, "v1", "q1", "stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["total_files"].as_u64(), Some(3 * 50), "{stats}");
    let (_, tree, _) = f
        .first_answer(&c, "v1", "q1", "tree?path=/&recursive=true")
        .await;
    let text = tree.to_string();
    assert!(
        text.contains(&path(100, 0)) && !text.contains(&path(0, 0)),
        "{text}"
    );
}

/// Creates a session of task `durable:<key>` and answers the whole create answer.
async fn create_answer(c: &reqwest::Client, f: &Fusion, key: &str) -> Value {
    let t = Instant::now();
    loop {
        if let Ok(r) = c
            .post(format!("{}/api/v1/pipe/session/", f.recv))
            .header("X-API-Key", key)
            .json(&json!({"task_id": format!("durable:{key}")}))
            .send()
            .await
        {
            return r.json().await.unwrap();
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Fusion did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A realtime batch `b` (as [`body`]) that ends at position `seq` of agent bus `epoch`.
fn body_at(batch: usize, epoch: &str, seq: u64) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&body(batch, 5)).unwrap();
    v["metadata"] = json!({"resume": {"epoch": epoch, "seq": seq}});
    serde_json::to_vec(&v).unwrap()
}

/// Issue 11, resume: the position of the last realtime batch applied survives `kill -9`
/// (logged with its batch, and written beside each view snapshot) and comes back in the
/// session-create answer of the same task; a batch without a position leaves it unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_index_survives_kill9_and_comes_back_at_session_create() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (mp, rp) = (free_port(), free_port());
    config(home, mp, rp);
    let c = reqwest::Client::new();
    let mut f = start(home, mp, rp, 1);
    let first = create_answer(&c, &f, "k2").await;
    assert_eq!(first["committed_index"], json!({"seq": 0}), "{first}");
    let sid = first["session_id"].as_str().unwrap().to_string();
    let post = |b: Vec<u8>| {
        let c = c.clone();
        let url = format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv);
        async move {
            let r = c
                .post(url)
                .header("X-API-Key", "k2")
                .body(b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    post(body_at(1, "e1", 41)).await;
    post(body_at(2, "e1", 42)).await;
    // v2 snapshots every second: 42 is in a snapshot's table, 43 only in the log after it.
    let t = Instant::now();
    while !f.log(1).contains("view snapshot written view=v2") {
        assert!(t.elapsed() < Duration::from_secs(20), "{}", f.log(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    post(body_at(3, "e1", 43)).await;
    post(body(4, 5)).await;
    let _ = f.child.kill();
    let _ = f.child.wait();
    drop(f);
    let f = start(home, mp, rp, 2);
    let again = create_answer(&c, &f, "k2").await;
    assert_eq!(
        again["committed_index"],
        json!({"epoch": "e1", "seq": 43}),
        "{again}\n{}",
        f.log(2)
    );
    // Another task of the same pipe has no position; the other pipe's view knows none either.
    let other = create_answer(&c, &f, "k1").await;
    assert_eq!(other["committed_index"], json!({"seq": 0}), "{other}");
}
