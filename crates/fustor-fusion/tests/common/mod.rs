//! Black-box harness: starts a real Fusion in-process (listeners bound to 127.0.0.1:0) and
//! drives it over HTTP as the fake agent of `scenarios.md` §0 (fixture F0).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fustor_fusion::daemon::{FusionServer, Overrides};
use parking_lot::Mutex;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;

pub mod raw;

/// Fixture F0 with both listeners on port 0. `{V1_EXTRA}` adds keys to v1's `driver_params`,
/// `{TOP}` adds top-level keys (e.g. `limits:`).
const F0_TEMPLATE: &str = r#"
host: 127.0.0.1
port: 0
session_cleanup_interval: 1
{TOP}
receivers:
  http-main: {driver: http, bind_host: 127.0.0.1, port: 0, api_keys: [{key: agent-key, pipe_id: v1}, {key: agent-key-2, pipe_id: v2}]}
views:
  v1: {driver: fs, api_keys: [qk1], driver_params: {hot_file_threshold: 5.0, consistency: {tombstone_ttl_seconds: 0.5}{V1_EXTRA}}}
  v2: {driver: fs, api_keys: [qk2]}
pipes:
  v1: {receiver: http-main, views: [v1], session_timeout_seconds: 3, audit_interval_sec: 15, sentinel_interval_sec: 5}
  v2: {receiver: http-main, views: [v2]}
"#;

/// F0 YAML; `v1_extra` e.g. `", max_tree_items: 2"`, `top` e.g. `"limits: {max_body_bytes: 1000}"`.
pub fn f0_yaml(v1_extra: &str, top: &str) -> String {
    F0_TEMPLATE
        .replace("{V1_EXTRA}", v1_extra)
        .replace("{TOP}", top)
}

/// Fusion wall clock (same host).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub async fn sleep(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

/// `row(p, m)` of §0: a file row with size 1.
pub fn row(p: &str, m: f64) -> Value {
    json!({"path": p, "modified_time": m, "size": 1, "is_directory": false})
}

pub fn dir_row(p: &str, m: f64) -> Value {
    json!({"path": p, "modified_time": m, "size": 4096, "is_directory": true})
}

pub fn del_row(p: &str) -> Value {
    json!({"path": p})
}

/// `row` with extra keys merged in (`**x` of §0).
pub fn with(mut r: Value, extra: Value) -> Value {
    let o = r.as_object_mut().unwrap();
    for (k, v) in extra.as_object().unwrap() {
        o.insert(k.clone(), v.clone());
    }
    r
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn detail_str(&self) -> String {
        match &self.body["detail"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }
}

pub struct Fx {
    pub dir: TempDir,
    pub server: Arc<FusionServer>,
    pub main: String,
    pub recv: String,
    pub c: reqwest::Client,
    /// session id → (agent key, pipe id) of the fake agent that opened it.
    sessions: Mutex<HashMap<String, (String, String)>>,
}

pub fn key_pipe(key: &str) -> &'static str {
    match key {
        "agent-key-2" => "v2",
        _ => "v1",
    }
}

impl Fx {
    pub async fn f0() -> Fx {
        Fx::with_yaml(&f0_yaml("", "")).await
    }

    pub async fn with_yaml(yaml: &str) -> Fx {
        Fx::with_yaml_in(tempfile::tempdir().unwrap(), yaml).await
    }

    /// [`Fx::with_yaml`] on a home the test prepared (or kept from an earlier instance).
    pub async fn with_yaml_in(dir: TempDir, yaml: &str) -> Fx {
        let cfg = dir.path().join("fusion-config");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(cfg.join("default.yaml"), yaml).unwrap();
        let server = FusionServer::start(&cfg, &[], Overrides::default())
            .await
            .expect("fusion starts");
        let main = format!("http://{}", server.main_addr);
        let recv = format!(
            "http://{}",
            server
                .receiver_addr(0)
                .expect("receiver on configured port 0")
        );
        let c = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .unwrap();
        Fx {
            dir,
            server,
            main,
            recv,
            c,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("fusion-config")
    }

    pub fn write_config(&self, yaml: &str) {
        std::fs::write(self.config_dir().join("default.yaml"), yaml).unwrap();
    }

    // ---------------------------------------------------------------- raw HTTP

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut rb = self.c.request(method, url);
        if let Some(k) = key {
            rb = rb.header("X-API-Key", k);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let r = rb.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn json_req(
        &self,
        method: Method,
        url: &str,
        key: Option<&str>,
        body: &Value,
    ) -> Resp {
        self.send(method, url, key, Some(serde_json::to_vec(body).unwrap()))
            .await
    }

    /// GET on the main port.
    pub async fn get_main(&self, path: &str, key: Option<&str>) -> Resp {
        self.send(Method::GET, &format!("{}{path}", self.main), key, None)
            .await
    }

    /// GET `/api/v1/views/v1/<rest>` with `qk1`.
    pub async fn q(&self, rest: &str) -> Resp {
        self.qv("v1", "qk1", rest).await
    }

    pub async fn qv(&self, view: &str, key: &str, rest: &str) -> Resp {
        self.get_main(&format!("/api/v1/views/{view}/{rest}"), Some(key))
            .await
    }

    // ---------------------------------------------------------------- fake agent

    /// `open(t)` with the raw create response.
    pub async fn open_raw(&self, key: Option<&str>, body: &Value) -> Resp {
        let r = self
            .json_req(
                Method::POST,
                &format!("{}/api/v1/pipe/session/", self.recv),
                key,
                body,
            )
            .await;
        if r.status == 200
            && let (Some(k), Some(sid)) = (key, r.body["session_id"].as_str())
        {
            self.sessions
                .lock()
                .insert(sid.to_string(), (k.to_string(), key_pipe(k).to_string()));
        }
        r
    }

    /// `open(t)` with `agent-key`: returns (session id, full response).
    pub async fn open_full(&self, task: &str) -> (String, Value) {
        self.open_key_full("agent-key", task).await
    }

    pub async fn open_key_full(&self, key: &str, task: &str) -> (String, Value) {
        let r = self.open_raw(Some(key), &json!({"task_id": task})).await;
        assert_eq!(r.status, 200, "open({task}): {}", r.text);
        (r.body["session_id"].as_str().unwrap().to_string(), r.body)
    }

    pub async fn open(&self, task: &str) -> String {
        self.open_full(task).await.0
    }

    pub async fn open_key(&self, key: &str, task: &str) -> String {
        self.open_key_full(key, task).await.0
    }

    fn key_of(&self, sid: &str) -> String {
        self.sessions
            .lock()
            .get(sid)
            .map_or_else(|| "agent-key".to_string(), |(k, _)| k.clone())
    }

    fn pipe_of(&self, sid: &str) -> String {
        self.sessions
            .lock()
            .get(sid)
            .map_or_else(|| "v1".to_string(), |(_, p)| p.clone())
    }

    /// `hb(s, rt)` raw.
    pub async fn hb_raw(&self, sid: &str, rt: bool) -> Resp {
        let key = self.key_of(sid);
        self.json_req(
            Method::POST,
            &format!("{}/api/v1/pipe/session/{sid}/heartbeat", self.recv),
            Some(&key),
            &json!({"can_realtime": rt}),
        )
        .await
    }

    /// `hb(s, rt)` that must succeed; returns the body.
    pub async fn hb(&self, sid: &str, rt: bool) -> Value {
        let r = self.hb_raw(sid, rt).await;
        assert_eq!(r.status, 200, "heartbeat {sid}: {}", r.text);
        r.body
    }

    /// Heartbeats `sid` every second in the background (sessions time out after 3 s in F0)
    /// until the returned guard is dropped.
    pub fn keepalive(&self, sid: &str) -> KeepAlive {
        let c = self.c.clone();
        let url = format!("{}/api/v1/pipe/session/{sid}/heartbeat", self.recv);
        let key = self.key_of(sid);
        KeepAlive(tokio::spawn(async move {
            loop {
                let _ = c
                    .post(&url)
                    .header("X-API-Key", &key)
                    .json(&json!({"can_realtime": true}))
                    .send()
                    .await;
                sleep(1.0).await;
            }
        }))
    }

    pub async fn close(&self, sid: &str) -> Resp {
        let key = self.key_of(sid);
        self.send(
            Method::DELETE,
            &format!("{}/api/v1/pipe/session/{sid}", self.recv),
            Some(&key),
            None,
        )
        .await
    }

    pub fn batch(
        kind: &str,
        source: &str,
        rows: Vec<Value>,
        end: bool,
        meta: Option<Value>,
    ) -> Value {
        let source_type = match source {
            "realtime" => "message",
            other => other,
        };
        let mut b = json!({
            "events": [{"event_type": kind, "event_schema": "fs", "table": "files", "fields": [],
                        "rows": rows, "message_source": source, "index": -1}],
            "source_type": source_type,
            "is_end": end,
        });
        if let Some(m) = meta {
            b["metadata"] = m;
        }
        b
    }

    /// POST a raw batch to the session's ingest route (receiver port).
    pub async fn ingest_raw(&self, sid: &str, body: Vec<u8>) -> Resp {
        let key = self.key_of(sid);
        self.send(
            Method::POST,
            &format!("{}/api/v1/pipe/ingest/{sid}/events", self.recv),
            Some(&key),
            Some(body),
        )
        .await
    }

    pub async fn ingest(&self, sid: &str, batch: &Value) -> Resp {
        self.ingest_raw(sid, serde_json::to_vec(batch).unwrap())
            .await
    }

    /// `push(s, kind, source, rows, end, meta)`; asserts 200 and waits until the pipe applied it.
    pub async fn push(
        &self,
        sid: &str,
        kind: &str,
        source: &str,
        rows: Vec<Value>,
        end: bool,
        meta: Option<Value>,
    ) -> Value {
        let r = self
            .ingest(sid, &Fx::batch(kind, source, rows, end, meta))
            .await;
        assert_eq!(r.status, 200, "push {kind}/{source}: {}", r.text);
        self.settle(&self.pipe_of(sid)).await;
        r.body
    }

    pub async fn rt(&self, sid: &str, rows: Vec<Value>) {
        self.push(sid, "update", "realtime", rows, false, None)
            .await;
    }

    pub async fn rt_del(&self, sid: &str, paths: &[&str]) {
        let rows = paths.iter().map(|p| del_row(p)).collect();
        self.push(sid, "delete", "realtime", rows, false, None)
            .await;
    }

    pub async fn snap(&self, sid: &str, rows: Vec<Value>) {
        self.push(sid, "update", "snapshot", rows, false, None)
            .await;
    }

    pub async fn audit(&self, sid: &str, rows: Vec<Value>) {
        self.push(sid, "update", "audit", rows, false, None).await;
    }

    /// `ready(s)`: empty snapshot batch with `is_end`.
    pub async fn ready(&self, sid: &str) -> Resp {
        let r = self
            .ingest(
                sid,
                &json!({"events": [], "source_type": "snapshot", "is_end": true}),
            )
            .await;
        assert_eq!(r.status, 200, "ready: {}", r.text);
        r
    }

    /// `audit_end(s)`.
    pub async fn audit_end(&self, sid: &str) -> Resp {
        let r = self
            .ingest(
                sid,
                &json!({"events": [], "source_type": "audit", "is_end": true}),
            )
            .await;
        assert_eq!(r.status, 200, "audit_end: {}", r.text);
        r
    }

    /// POST a consistency route on the receiver port with `agent-key`.
    pub async fn consistency(&self, rest: &str, body: Option<&Value>) -> Resp {
        let url = format!("{}/api/v1/pipe/consistency/{rest}", self.recv);
        match body {
            Some(b) => {
                self.json_req(Method::POST, &url, Some("agent-key"), b)
                    .await
            }
            None => self.send(Method::POST, &url, Some("agent-key"), None).await,
        }
    }

    /// Waits until the pipe's queue is empty (`GET /api/v1/pipe/pipes/{id}`, `queue_size`).
    pub async fn settle(&self, pipe: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self
                .get_main(&format!("/api/v1/pipe/pipes/{pipe}"), None)
                .await;
            if r.status == 200 && r.body["queue_size"].as_u64() == Some(0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pipe {pipe} did not drain: {} {}",
                r.status,
                r.text
            );
            sleep(0.02).await;
        }
    }

    /// A fresh leader `a:v1` whose snapshot has ended: the view is ready.
    pub async fn ready_leader(&self) -> String {
        let a = self.open("a:v1").await;
        self.ready(a.as_str()).await;
        let s = self.q("stats").await;
        assert_eq!(s.status, 200, "view not ready after ready(a): {}", s.text);
        a
    }

    // ---------------------------------------------------------------- queries

    /// The node at `path` (non-recursive), `None` on 404.
    pub async fn node(&self, path: &str) -> Option<Value> {
        self.node_in("v1", "qk1", path).await
    }

    pub async fn node_in(&self, view: &str, key: &str, path: &str) -> Option<Value> {
        let r = self
            .qv(
                view,
                key,
                &format!("tree?path={}&recursive=false", enc(path)),
            )
            .await;
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("tree?path={path}: {s} {}", r.text),
        }
    }

    pub async fn stats(&self) -> Value {
        let r = self.q("stats").await;
        assert_eq!(r.status, 200, "stats: {}", r.text);
        r.body
    }

    pub async fn suspects(&self) -> Vec<String> {
        let r = self.q("suspect-list").await;
        assert_eq!(r.status, 200, "suspect-list: {}", r.text);
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn blind(&self) -> Value {
        let r = self.q("blind-spots").await;
        assert_eq!(r.status, 200, "blind-spots: {}", r.text);
        r.body
    }

    pub async fn blind_additions(&self) -> Vec<String> {
        self.blind().await["additions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["path"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn blind_deletions(&self) -> Vec<String> {
        self.blind().await["deletions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    }

    pub async fn sessions_of(&self, view: &str, key: &str) -> Vec<Value> {
        let r = self.qv(view, key, "sessions").await;
        assert_eq!(r.status, 200, "sessions: {}", r.text);
        r.body["active_sessions"].as_array().unwrap().clone()
    }

    pub async fn sessions(&self) -> Vec<Value> {
        self.sessions_of("v1", "qk1").await
    }

    pub async fn session(&self, sid: &str) -> Option<Value> {
        self.sessions()
            .await
            .into_iter()
            .find(|s| s["session_id"] == sid)
    }

    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
}

/// Stops a [`Fx::keepalive`] heartbeat loop when dropped.
pub struct KeepAlive(tokio::task::JoinHandle<()>);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Percent-encodes a query value (paths and glob patterns).
pub use fustor_testkit::encode_query as enc;

/// Polls `cond` every 100 ms until it holds or `secs` elapse; returns whether it held.
#[macro_export]
macro_rules! eventually {
    ($secs:expr, $cond:expr) => {{
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64($secs);
        loop {
            if $cond {
                break true;
            }
            if std::time::Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }};
}

/// Asserts two floats are within `tol`.
pub fn approx(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

pub fn is_suspect(n: &Value) -> bool {
    n["integrity_suspect"].as_bool().unwrap()
}

pub fn agent_missing(n: &Value) -> bool {
    n["agent_missing"].as_bool().unwrap()
}

pub fn json_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}
