//! The registry's admin API (issue 15): admin keys apart from query and agent keys, the agent
//! inventory fed by sessions and heartbeats, the audit log, and a damaged database file that
//! leaves the views served. Real Fusion on 127.0.0.1, real SQLite file under its home.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fx, f0_yaml, row};
use reqwest::Method;
use serde_json::json;

fn admin_yaml(bob_digest: &str) -> String {
    f0_yaml(
        "",
        &format!(
            "admin_keys: [{{name: alice, key: alice-admin-key}}, {{name: bob, key: \"{bob_digest}\"}}]"
        ),
    )
}

fn sha256_hex(s: &str) -> String {
    use fustor_fusion::registry::keys;
    keys::hex(&keys::sha256(s.as_bytes()))
}

#[tokio::test]
async fn admin_routes_take_admin_keys_only() {
    let fx = Fx::with_yaml(&admin_yaml(&format!(
        "sha256:{}",
        sha256_hex("bob-admin-key")
    )))
    .await;
    let path = "/api/v1/admin/agents";
    assert_eq!(fx.get_main(path, None).await.status, 401);
    assert_eq!(fx.get_main(path, Some("nope")).await.status, 401);
    for key in ["qk1", "qk2", "agent-key", "agent-key-2"] {
        let r = fx.get_main(path, Some(key)).await;
        assert_eq!(r.status, 403, "{key}: {}", r.text);
    }
    // The digest itself is not the key.
    let digest = format!("sha256:{}", sha256_hex("bob-admin-key"));
    assert_eq!(fx.get_main(path, Some(&digest)).await.status, 401);
    for key in ["alice-admin-key", "bob-admin-key"] {
        let r = fx.get_main(path, Some(key)).await;
        assert_eq!(r.status, 200, "{key}: {}", r.text);
        assert_eq!(r.body["agents"], json!([]));
    }
    assert_eq!(
        fx.get_main("/api/v1/admin/audit", Some("qk1")).await.status,
        403
    );
    // Admin keys are not query keys either.
    assert_eq!(
        fx.get_main("/api/v1/views/v1/stats", Some("alice-admin-key"))
            .await
            .status,
        401
    );
    let r = fx
        .send(
            Method::DELETE,
            &format!("{}/api/v1/admin/agents/x", fx.main),
            Some("agent-key"),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn sessions_register_agents_with_health_and_forgetting_is_audited() {
    let fx = Fx::with_yaml(&admin_yaml("plain-bob")).await;
    let body = json!({
        "task_id": "host-a:pipe-1",
        "client_info": {"source_uri": "/data/a", "hostname": "nfs-a", "agent_version": "9.9.9"},
        "source_type": "fs",
    });
    let r = fx.open_raw(Some("agent-key"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid = r.body["session_id"].as_str().unwrap().to_string();
    // A Python agent: the standard status fields only.
    let b = fx.open("py-agent:p").await;
    let status = json!({"can_realtime": true, "agent_status": {
        "agent_id": "host-a", "pipe_id": "pipe-1", "state": "RUNNING|MESSAGE_SYNC",
        "role": "leader", "events_pushed": 10, "is_realtime_ready": true,
        "last_error": "disk on fire", "watches_used": 12, "watch_limit": 100,
        "initial_snapshot_done": true}});
    let hb_url = format!("{}/api/v1/pipe/session/{sid}/heartbeat", fx.recv);
    let r = fx
        .json_req(Method::POST, &hb_url, Some("agent-key"), &status)
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut later = status.clone();
    later["agent_status"]["events_pushed"] = json!(70);
    let r = fx
        .json_req(Method::POST, &hb_url, Some("agent-key"), &later)
        .await;
    assert_eq!(r.status, 200);
    fx.hb(&b, false).await;

    let r = fx
        .get_main("/api/v1/admin/agents/host-a", Some("alice-admin-key"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = &r.body;
    assert_eq!(a["host"], "nfs-a");
    assert_eq!(a["version"], "9.9.9");
    assert_eq!(a["client_ip"], "127.0.0.1");
    assert_eq!(a["connected"], true);
    let p = &a["pipes"]["pipe-1"];
    assert_eq!(p["fusion_pipe"], "v1");
    assert_eq!(p["source_uri"], "/data/a");
    assert_eq!(p["source_type"], "fs");
    let h = &p["health"];
    assert_eq!(h["role"], "leader");
    assert_eq!(h["last_error"], "disk on fire");
    assert_eq!(h["watches_used"], 12);
    assert_eq!(h["events_pushed"], 70);
    let eps = h["events_per_sec"].as_f64().unwrap();
    assert!(
        eps > 10.0 && eps < 60.0 / 0.25,
        "events/s from the delta: {eps}"
    );
    assert!(h["queue_depth"].is_u64());
    let list = fx.get_main("/api/v1/admin/agents", Some("plain-bob")).await;
    let ids: Vec<&str> = list.body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["host-a", "py-agent"]);
    let py = &list.body["agents"][1];
    assert_eq!(py["version"], serde_json::Value::Null);
    assert!(py["pipes"]["p"]["health"]["last_heartbeat"].is_f64());

    // Closed: kept, no longer connected.
    assert_eq!(fx.close(&sid).await.status, 200);
    let r = fx
        .get_main("/api/v1/admin/agents/host-a", Some("alice-admin-key"))
        .await;
    assert_eq!(r.body["connected"], false);

    let url = format!("{}/api/v1/admin/agents/host-a", fx.main);
    let r = fx.send(Method::DELETE, &url, Some("plain-bob"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["who"], "bob");
    assert_eq!(r.body["action"], "agent.forget");
    assert!(
        r.body["before_digest"]
            .as_str()
            .is_some_and(|d| d.len() == 64)
    );
    let r = fx.send(Method::DELETE, &url, Some("plain-bob"), None).await;
    assert_eq!(r.status, 404);
    let r = fx
        .get_main("/api/v1/admin/agents/host-a", Some("alice-admin-key"))
        .await;
    assert_eq!(r.status, 404);
    let log = fx
        .get_main(
            "/api/v1/admin/audit?since=0&limit=10",
            Some("alice-admin-key"),
        )
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    let results: Vec<&str> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["not_found", "ok"], "newest first");
    let one = fx
        .get_main("/api/v1/admin/audit?limit=1", Some("alice-admin-key"))
        .await;
    assert_eq!(one.body["entries"].as_array().map(Vec::len), Some(1));
    let future = fx
        .get_main(
            "/api/v1/admin/audit?since=99999999999",
            Some("alice-admin-key"),
        )
        .await;
    assert_eq!(future.body["entries"], json!([]));
    assert_eq!(
        fx.get_main("/api/v1/admin/audit?limit=x", Some("alice-admin-key"))
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn a_damaged_database_is_named_and_views_are_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fusion-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("registry.sqlite"),
        b"this is not a database, just garbage bytes of a damaged file......".repeat(100),
    )
    .unwrap();
    let fx = Fx::with_yaml_in(dir, &admin_yaml("plain-bob")).await;
    let sid = fx.open("a:v1").await;
    fx.snap(&sid, vec![row("/x.txt", 1.0)]).await;
    fx.ready(&sid).await;
    fx.settle("v1").await;
    assert!(fx.node("/x.txt").await.is_some(), "the view is served");
    for path in ["/api/v1/admin/agents", "/api/v1/admin/audit"] {
        let r = fx.get_main(path, Some("alice-admin-key")).await;
        assert_eq!(r.status, 503, "{}", r.text);
        let d = r.detail_str();
        assert!(
            d.contains("registry.sqlite") && d.contains("not a database"),
            "{d}"
        );
    }
    // Still an admin route: a query key is refused before the database is looked at.
    assert_eq!(
        fx.get_main("/api/v1/admin/agents", Some("qk1"))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn a_locked_database_is_named_and_views_are_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fusion-data");
    std::fs::create_dir_all(&data).unwrap();
    // Another process's open write transaction on the file (here: this test's connection).
    let holder = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    holder
        .execute_batch("CREATE TABLE other(a); BEGIN EXCLUSIVE; INSERT INTO other VALUES (1);")
        .unwrap();
    let fx = Fx::with_yaml_in(dir, &admin_yaml("plain-bob")).await;
    let sid = fx.open("a:v1").await;
    fx.snap(&sid, vec![row("/y.txt", 1.0)]).await;
    fx.ready(&sid).await;
    fx.settle("v1").await;
    assert!(fx.node("/y.txt").await.is_some(), "the view is served");
    let r = fx
        .get_main("/api/v1/admin/agents", Some("alice-admin-key"))
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    let d = r.detail_str();
    assert!(d.contains("registry.sqlite") && d.contains("locked"), "{d}");
    drop(holder);
}
