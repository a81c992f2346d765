//! The registry across restarts of the real `fustor-fusion` daemon on one home: a clean stop
//! (SIGTERM) writes the heartbeats' health not yet flushed, a registration survives `kill -9`,
//! and the audit log is kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fustor_testkit::{free_port, terminate, wait_for_port};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");
const ADMIN: &str = "registry-admin-key";

struct Daemon {
    child: Child,
    main: String,
    recv: String,
    c: reqwest::Client,
}

fn start(home: &Path, main_port: u16, recv_port: u16) -> Daemon {
    let child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["start", "--no-console-log"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for_port(recv_port, Duration::from_secs(20)),
        "fusion listens"
    );
    assert!(wait_for_port(main_port, Duration::from_secs(5)));
    Daemon {
        child,
        main: format!("http://127.0.0.1:{main_port}"),
        recv: format!("http://127.0.0.1:{recv_port}"),
        c: reqwest::Client::new(),
    }
}

impl Daemon {
    async fn post(&self, url: String, body: Value) -> Value {
        let r = self
            .c
            .post(url)
            .header("X-API-Key", "agent-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    }

    async fn open(&self, task: &str) -> String {
        let body =
            json!({"task_id": task, "client_info": {"source_uri": "/d", "agent_version": "1.2.3"}});
        let r = self
            .post(format!("{}/api/v1/pipe/session/", self.recv), body)
            .await;
        r["session_id"].as_str().unwrap().to_string()
    }

    async fn admin(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let r = self
            .c
            .request(method, format!("{}{path}", self.main))
            .header("X-API-Key", ADMIN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Daemon {
    /// PUT of a configuration document; (status, ETag, body).
    async fn put_config(
        &self,
        target: &str,
        if_match: Option<&str>,
        yaml: &str,
    ) -> (u16, Option<String>, Value) {
        let mut b = self
            .c
            .put(format!("{}/api/v1/admin/agent-configs/{target}", self.main))
            .header("X-API-Key", ADMIN)
            .body(yaml.to_string());
        if let Some(m) = if_match {
            b = b.header("If-Match", m);
        }
        let r = b.send().await.unwrap();
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        (status, etag, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(home: &Path, main_port: u16, recv_port: u16) {
    let cfg = home.join("fusion-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("default.yaml"),
        format!(
            "host: 127.0.0.1\nport: {main_port}\nadmin_keys: [{{name: ops, key: {ADMIN}}}]\n\
             receivers:\n  r: {{driver: http, bind_host: 127.0.0.1, port: {recv_port}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}\n\
             views:\n  v1: {{driver: fs, api_keys: [qk1]}}\npipes:\n  v1: {{receiver: r, views: [v1]}}\n"
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn restarts_keep_inventory_health_and_audit_log() {
    let home = tempfile::tempdir().unwrap();
    let (main_port, recv_port) = (free_port(), free_port());
    write_config(home.path(), main_port, recv_port);

    // 1: a registers and heartbeats; the clean stop writes what the 5 s flush has not yet.
    let mut d = start(home.path(), main_port, recv_port);
    let sid = d.open("host-a:p1").await;
    let status = json!({"agent_status": {"role": "leader", "events_pushed": 5,
        "last_error": "permission denied: /d/x", "watches_used": 7, "watch_limit": 100}});
    d.post(
        format!("{}/api/v1/pipe/session/{sid}/heartbeat", d.recv),
        status,
    )
    .await;
    let (code, _) = d
        .admin(reqwest::Method::DELETE, "/api/v1/admin/agents/ghost")
        .await;
    assert_eq!(code, 404);
    terminate(&mut d.child, Duration::from_secs(15));
    drop(d);

    // 2: everything is back; then b registers and the daemon is killed.
    let mut d = start(home.path(), main_port, recv_port);
    let (code, a) = d
        .admin(reqwest::Method::GET, "/api/v1/admin/agents/host-a")
        .await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["version"], "1.2.3");
    assert_eq!(a["connected"], false);
    let h = &a["pipes"]["p1"]["health"];
    assert_eq!(h["last_error"], "permission denied: /d/x", "{h}");
    assert_eq!(h["events_pushed"], 5);
    assert_eq!(h["watches_used"], 7);
    let (_, log) = d.admin(reqwest::Method::GET, "/api/v1/admin/audit").await;
    assert_eq!(log["entries"][0]["target"], "agent/ghost", "{log}");
    assert_eq!(log["entries"][0]["who"], "ops");
    d.open("host-b:p1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.child.kill().unwrap();
    let _ = d.child.wait();
    drop(d);

    // 3: a registration is written at once, so it survives kill -9.
    let d = start(home.path(), main_port, recv_port);
    let (_, list) = d.admin(reqwest::Method::GET, "/api/v1/admin/agents").await;
    let ids: Vec<&str> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["agent_id"].as_str())
        .collect();
    assert_eq!(ids, ["host-a", "host-b"], "{list}");
    assert!(home.path().join("fusion-data/registry.sqlite").is_file());
}

#[tokio::test]
async fn configuration_versions_survive_restarts() {
    let home = tempfile::tempdir().unwrap();
    let (main_port, recv_port) = (free_port(), free_port());
    write_config(home.path(), main_port, recv_port);
    let doc = |dir: &str| {
        format!(
            "sources:\n  s: {{driver: fs, uri: {dir}}}\nsenders:\n  f: {{driver: fusion, uri: http://127.0.0.1:1}}\npipes:\n  p: {{source: s, sender: f}}\n"
        )
    };
    let mut d = start(home.path(), main_port, recv_port);
    let (code, tag1, _) = d.put_config("group:lab", None, &doc("/a")).await;
    assert_eq!(code, 201);
    let (code, tag2, _) = d.put_config("group:lab", tag1.as_deref(), &doc("/b")).await;
    assert_eq!(code, 200);
    // Killed: a write is committed before it is answered.
    d.child.kill().unwrap();
    let _ = d.child.wait();
    drop(d);

    let d = start(home.path(), main_port, recv_port);
    let (code, v) = d
        .admin(
            reqwest::Method::GET,
            "/api/v1/admin/agent-configs/group:lab/versions",
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let nums: Vec<i64> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["version"].as_i64())
        .collect();
    assert_eq!(nums, [2, 1]);
    assert_eq!(v["versions"][0]["author"], "ops");
    let (code, cur) = d
        .admin(
            reqwest::Method::GET,
            "/api/v1/admin/agent-configs/group:lab",
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(cur["yaml"], doc("/b"));
    // The ETag held before the restart still guards the document after it.
    let (code, _, _) = d.put_config("group:lab", tag1.as_deref(), &doc("/c")).await;
    assert_eq!(code, 412);
    let (code, _, body) = d.put_config("group:lab", tag2.as_deref(), &doc("/c")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["version"], 3);
}
