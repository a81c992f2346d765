//! Forest view end to end (issue 4, scenarios.md §11): three real `fustor-agent` processes, each
//! watching its own "NFS server", three pipes into one `forest-fs` view configured exactly as
//! the forest design document writes it (duplicate `views:` key and `fusion_pipe_id` included).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use fustor_fusion::daemon::{FusionServer, Overrides};
use fustor_testkit::free_port;
use serde_json::Value;

const Q: &str = "query-key-shared";

/// The agent binary next to this test's target directory, built once if absent.
fn agent_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = dir.join("fustor-agent");
    BUILD.call_once(|| {
        if !bin.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "fustor-agent", "--bin", "fustor-agent"])
                .status()
                .expect("cargo build fustor-agent");
            assert!(status.success());
        }
    });
    bin
}

struct AgentProc(Child);

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(home: &Path, id: &str, src: &Path, key: &str, pipe: &str, rport: u16) -> AgentProc {
    let cfg = home.join("agent-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("default.yaml"),
        format!(
            "agent_id: \"{id}\"\nsources:\n  src:\n    driver: fs\n    uri: \"{}\"\nsenders:\n  fusion-1:\n    driver: fusion\n    uri: \"http://127.0.0.1:{rport}\"\n    credential:\n      key: \"{key}\"\npipes:\n  {pipe}:\n    source: src\n    sender: fusion-1\n",
            src.display()
        ),
    )
    .unwrap();
    let child = Command::new(agent_bin())
        .env("FUSTOR_HOME", home)
        .args(["start"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agent");
    AgentProc(child)
}

fn write_files(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("sample_{i:03}.h5")), vec![b'x'; 100 + i]).unwrap();
    }
}

async fn get(c: &reqwest::Client, url: &str) -> Value {
    c.get(url)
        .header("X-API-Key", Q)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

fn member<'a>(stats: &'a Value, pipe: &str) -> Option<&'a Value> {
    stats["members"]
        .as_array()?
        .iter()
        .find(|m| m["view_id"] == pipe)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s93_s94_s96_three_agents_best_copy_and_failover() {
    let tmp = tempfile::tempdir().unwrap();
    let rport = free_port();
    // The design document's example, verbatim but for the port and a short session timeout.
    let seed = include_str!("data/forest_design_example.yaml");
    assert!(
        seed.contains("fusion_pipe_id"),
        "the seed's example was not found"
    );
    let yaml = format!(
        "host: 127.0.0.1\nport: 0\nsession_cleanup_interval: 1\n{}",
        seed.replace("port: 18881", &format!("port: {rport}"))
            .replace("bind_host: \"0.0.0.0\"", "bind_host: \"127.0.0.1\"")
            .replace(
                "    views: [shared-storage]  # 指向森林",
                "    views: [shared-storage]\n    session_timeout_seconds: 3"
            )
    );
    let fcfg = tmp.path().join("fusion/fusion-config");
    std::fs::create_dir_all(&fcfg).unwrap();
    std::fs::write(fcfg.join("default.yaml"), yaml).unwrap();
    let server = FusionServer::start(&fcfg, &[], Overrides::default())
        .await
        .unwrap();
    let main = format!("http://{}/api/v1/views/shared-storage", server.main_addr);

    // A dataset uploaded half to server A, fully to server B; server C holds other data.
    let (a, b, c) = (
        tmp.path().join("nfs-a"),
        tmp.path().join("nfs-b"),
        tmp.path().join("nfs-c"),
    );
    write_files(&a.join("ds/run42"), 50);
    write_files(&b.join("ds/run42"), 100);
    write_files(&c.join("other"), 10);
    let agent_a = start_agent(
        &tmp.path().join("ha"),
        "agent-nfs-a",
        &a,
        "agent-nfs-a-key",
        "pipe-nfs-a",
        rport,
    );
    let _agent_b = start_agent(
        &tmp.path().join("hb"),
        "agent-nfs-b",
        &b,
        "agent-nfs-b-key",
        "pipe-nfs-b",
        rport,
    );
    let _agent_c = start_agent(
        &tmp.path().join("hc"),
        "agent-nfs-c",
        &c,
        "agent-nfs-c-key",
        "pipe-nfs-c",
        rport,
    );
    let http = reqwest::Client::new();

    // S96: every pipe's first session leads its own tree.
    wait_for("three leader sessions", 30, async || {
        let s = get(&http, &format!("{main}/sessions")).await;
        let list = s["active_sessions"].as_array().cloned().unwrap_or_default();
        list.len() == 3 && list.iter().all(|x| x["role"] == "leader")
    })
    .await;

    // S93: per-member stats, best = the complete copy.
    let url = format!("{main}/stats?path=/ds/run42&best=file_count");
    wait_for("all three trees synced", 30, async || {
        let s = get(&http, &url).await;
        member(&s, "pipe-nfs-a").and_then(|m| m["file_count"].as_u64()) == Some(50)
            && member(&s, "pipe-nfs-b").and_then(|m| m["file_count"].as_u64()) == Some(100)
            && member(&s, "pipe-nfs-c").is_some()
    })
    .await;
    let s = get(&http, &url).await;
    assert_eq!(s["best"]["view_id"], "pipe-nfs-b");
    assert_eq!(s["best"]["reason"], "file_count");
    assert_eq!(s["best"]["value"], 100);
    assert!(
        member(&s, "pipe-nfs-c")
            .unwrap()
            .get("file_count")
            .is_none(),
        "C lacks the path"
    );
    let by_size = get(
        &http,
        &format!("{main}/stats?path=/ds/run42&best=total_size"),
    )
    .await;
    assert_eq!(by_size["best"]["view_id"], "pipe-nfs-b");

    // S94: the best member's tree in one request, with lineage.
    let t = get(
        &http,
        &format!("{main}/tree?path=/ds/run42&best=file_count"),
    )
    .await;
    assert_eq!(t["best_view_selected"], "pipe-nfs-b");
    let members = t["members"].as_object().unwrap();
    assert_eq!(members.len(), 1);
    let data = &members["pipe-nfs-b"]["data"];
    assert_eq!(data["children"].as_array().unwrap().len(), 100);
    assert_eq!(data["children"][0]["last_agent_id"], "agent-nfs-b");

    // Every member's listing in one answer (sent as parts, members listed in parallel).
    let t = get(&http, &format!("{main}/tree?path=/ds/run42&max_depth=1")).await;
    let members = t["members"].as_object().unwrap();
    assert_eq!(members.len(), 3, "{t}");
    assert_eq!(
        members["pipe-nfs-a"]["data"]["children"]
            .as_array()
            .map(Vec::len),
        Some(50)
    );
    assert_eq!(
        members["pipe-nfs-b"]["data"]["children"]
            .as_array()
            .map(Vec::len),
        Some(100)
    );
    assert_eq!(members["pipe-nfs-c"]["data"], Value::Null);

    // Which servers hold sample_042? A and B. What is missing where? 50 files only on B.
    let found = get(&http, &format!("{main}/search?pattern=**/sample_042.h5")).await;
    assert_eq!(
        found["members"]["pipe-nfs-a"]["count"], 1,
        "search: {found}"
    );
    assert_eq!(found["members"]["pipe-nfs-b"]["count"], 1);
    assert_eq!(found["members"]["pipe-nfs-c"]["count"], 0);
    let diff = get(&http, &format!("{main}/diff?path=/ds/run42")).await;
    let only_b = diff["only_in"]["pipe-nfs-b"].as_array().map_or(0, Vec::len);
    assert_eq!(only_b, 50, "diff: {diff}");
    assert_eq!(diff["absent"], serde_json::json!(["pipe-nfs-c"]));

    // Killing A's agent leaves B and C serving; A's tree empties once its session expires.
    drop(agent_a);
    wait_for("A's session to expire", 20, async || {
        let s = get(&http, &format!("{main}/sessions")).await;
        s["count"] == 2
    })
    .await;
    let s = get(&http, &url).await;
    assert_eq!(s["best"]["view_id"], "pipe-nfs-b");
    assert_eq!(member(&s, "pipe-nfs-b").unwrap()["file_count"], 100);
    let c_stats = get(&http, &format!("{main}/stats?path=/other")).await;
    assert_eq!(member(&c_stats, "pipe-nfs-c").unwrap()["file_count"], 10);
    server.shutdown().await;
}
