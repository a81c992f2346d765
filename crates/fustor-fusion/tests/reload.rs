//! S90 analogue with a fake agent (configuration.md §6.2, pitfalls.md 5): a reload discards all
//! view state and ends every session; receivers still in use keep their bound address; a
//! receiver whose pipes were all removed stops answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

use fustor_testkit::free_port;

/// F0 plus a second receiver `http-b` on `port_b` feeding pipe/view v3 (key agent-key-3),
/// optionally without pipe v3, optionally with pipe v4 (key agent-key-4) on http-main.
fn yaml(port_b: u16, with_v3: bool, with_v4: bool) -> String {
    let k4 = if with_v4 {
        ", {key: agent-key-4, pipe_id: v4}"
    } else {
        ""
    };
    let mut y = format!(
        r#"
host: 127.0.0.1
port: 0
session_cleanup_interval: 1
receivers:
  http-main: {{driver: http, bind_host: 127.0.0.1, port: 0, api_keys: [{{key: agent-key, pipe_id: v1}}, {{key: agent-key-2, pipe_id: v2}}{k4}]}}
  http-b: {{driver: http, bind_host: 127.0.0.1, port: {port_b}, api_keys: [{{key: agent-key-3, pipe_id: v3}}]}}
views:
  v1: {{driver: fs, api_keys: [qk1], driver_params: {{hot_file_threshold: 5.0, consistency: {{tombstone_ttl_seconds: 0.5}}}}}}
  v2: {{driver: fs, api_keys: [qk2]}}
  v3: {{driver: fs, api_keys: [qk3]}}
  v4: {{driver: fs, api_keys: [qk4]}}
pipes:
  v1: {{receiver: http-main, views: [v1], session_timeout_seconds: 30}}
  v2: {{receiver: http-main, views: [v2]}}
"#
    );
    if with_v3 {
        y.push_str("  v3: {receiver: http-b, views: [v3], session_timeout_seconds: 30}\n");
    }
    if with_v4 {
        y.push_str("  v4: {receiver: http-main, views: [v4], session_timeout_seconds: 30}\n");
    }
    y
}

async fn hb_at(fx: &Fx, base: &str, key: &str, sid: &str) -> Resp {
    fx.json_req(
        Method::POST,
        &format!("{base}/api/v1/pipe/session/{sid}/heartbeat"),
        Some(key),
        &json!({"can_realtime": true}),
    )
    .await
}

async fn open_at(fx: &Fx, base: &str, key: &str, task: &str) -> Resp {
    fx.json_req(
        Method::POST,
        &format!("{base}/api/v1/pipe/session/"),
        Some(key),
        &json!({"task_id": task}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s90_reload_ends_sessions_and_view_is_503_until_new_snapshot() {
    let fx = Fx::with_yaml(&yaml(free_port(), true, false)).await;
    let a = fx.ready_leader().await;
    fx.snap(&a, vec![row("/r.txt", now() - 3600.0)]).await;
    fx.rt(&a, vec![row("/rt.txt", now() - 3600.0)]).await;
    assert_eq!(fx.stats().await["item_count"], 3);

    fx.server.reload().await.expect("reload");
    let r = fx.hb_raw(&a, true).await;
    assert_eq!(r.status, 419, "old session survived the reload: {}", r.text);
    assert!(fx.sessions().await.is_empty());
    // configuration.md §6.2: "after a Fusion reload every view starts empty; readiness returns
    // 503 until a leader is elected again and finishes its snapshot".
    let r = fx.q("stats").await;
    assert_eq!(r.status, 503, "view ready right after reload: {}", r.text);
    assert!(
        r.detail_str().contains("No active leader session"),
        "{}",
        r.text
    );
    assert_eq!(fx.q("tree").await.status, 503);

    // A new leader: 503 until its snapshot ends; the view was rebuilt from the snapshot only.
    let (a2, body) = fx.open_full("a:v1").await;
    assert_eq!(body["role"], "leader");
    let r = fx.q("tree").await;
    assert_eq!(r.status, 503);
    assert!(
        r.detail_str().contains("Initial snapshot sync phase"),
        "{}",
        r.text
    );
    fx.snap(&a2, vec![row("/r.txt", now() - 3600.0)]).await;
    fx.ready(&a2).await;
    assert_eq!(
        fx.stats().await["item_count"],
        2,
        "view state survived the reload"
    );
    assert!(fx.node("/r.txt").await.is_some());
    assert!(fx.node("/rt.txt").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s90_reload_keeps_bound_receivers_and_stops_unused() {
    let port_b = free_port();
    let fx = Fx::with_yaml(&yaml(port_b, true, false)).await;
    let recv_b = format!(
        "http://{}",
        fx.server.receiver_addr(port_b).expect("receiver http-b")
    );
    let main_addr = fx.server.main_addr;
    let recv0 = fx.server.receiver_addr(0).unwrap();
    let a = fx.open("a:v1").await;
    let c = open_at(&fx, &recv_b, "agent-key-3", "c:v3").await;
    assert_eq!(c.status, 200, "{}", c.text);
    let c = c.body["session_id"].as_str().unwrap().to_string();

    // Same configuration: listeners kept (a re-bind of port 0 would change the address).
    fx.server.reload().await.expect("reload");
    assert_eq!(fx.server.main_addr, main_addr);
    assert_eq!(fx.server.receiver_addr(0), Some(recv0), "receiver re-bound");
    assert_eq!(
        fx.server.receiver_addr(port_b).map(|a| a.port()),
        Some(port_b)
    );
    assert_eq!(fx.hb_raw(&a, true).await.status, 419);
    let r = hb_at(&fx, &recv_b, "agent-key-3", &c).await;
    assert_eq!(r.status, 419, "{}", r.text);
    let a2 = fx.open("a:v1").await;
    assert_eq!(
        open_at(&fx, &recv_b, "agent-key-3", "c:v3").await.status,
        200
    );

    // Remove pipe v3 and add v4 on the kept receiver: http-b stops answering.
    fx.write_config(&yaml(port_b, false, true));
    fx.server.reload().await.expect("reload 2");
    assert_eq!(fx.server.receiver_addr(0), Some(recv0), "receiver re-bound");
    assert_eq!(fx.server.receiver_addr(port_b), None);
    let stopped = eventually!(5.0, {
        let c = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        c.get(format!("{recv_b}/")).send().await.is_err()
    });
    assert!(stopped, "receiver of removed pipes still answers");
    assert_eq!(fx.hb_raw(&a2, true).await.status, 419);
    let r = open_at(&fx, &fx.recv, "agent-key-4", "d:v4").await;
    assert_eq!(r.status, 200, "added pipe's key not registered: {}", r.text);
    let r = open_at(&fx, &fx.recv, "agent-key", "a:v1").await;
    assert_eq!(r.status, 200);
    assert_eq!(fx.get_main("/", None).await.status, 200);
}

/// configuration.md §6.2 step 2: an unchanged pipe is restarted too ⇒ its sessions end, and the
/// port numbers of running listeners never change (pitfalls.md 5: no re-bind, no exit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s90_repeated_reloads_keep_answering() {
    let fx = Fx::f0().await;
    let recv0 = fx.server.receiver_addr(0).unwrap();
    for i in 0..3 {
        let a = fx.open(&format!("a{i}:v1")).await;
        fx.server.reload().await.expect("reload");
        assert_eq!(fx.server.receiver_addr(0), Some(recv0));
        assert_eq!(fx.hb_raw(&a, false).await.status, 419);
        assert_eq!(fx.get_main("/", None).await.status, 200);
    }
    let a = fx.ready_leader().await;
    fx.rt(&a, vec![row("/x.txt", now())]).await;
    assert!(fx.node("/x.txt").await.is_some());
}

/// Graceful shutdown ends every session and closes the listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s90_shutdown_closes_listeners() {
    let fx = Fx::f0().await;
    let _a = fx.ready_leader().await;
    fx.server.shutdown().await;
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(c.get(format!("{}/", fx.main)).send().await.is_err());
    assert!(c.get(format!("{}/", fx.recv)).send().await.is_err());
    assert_eq!(fx.server.fusion.sessions.count(), 0);
}
