//! scenarios.md §10: authorization (S91, S92) and the key rules of query-api.md §1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s91_scope_check_sessions_and_jobs() {
    let fx = Fx::f0().await;
    let _a = fx.ready_leader().await;
    let _b = fx.open("b:v1").await;
    fx.rt(&_a, vec![row("/data/f.txt", now())]).await;
    let job = fx.q("tree?path=/data&on_demand_scan=true").await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    for rest in [
        "sessions".to_string(),
        "jobs".to_string(),
        format!("jobs/{job}"),
    ] {
        let r = fx.qv("v1", "qk2", &rest).await;
        assert_eq!(r.status, 403, "{rest} with qk2: {}", r.text);
        assert_eq!(r.body["detail"], "API Key not authorized for this view");
        let r = fx.qv("v1", "qk1", &rest).await;
        assert_eq!(r.status, 200, "{rest} with qk1: {}", r.text);
        // The agent key resolves to its pipe id v1 = view id.
        let r = fx.qv("v1", "agent-key", &rest).await;
        assert_eq!(r.status, 200, "{rest} with agent-key: {}", r.text);
        let r = fx.get_main(&format!("/api/v1/views/v1/{rest}"), None).await;
        assert_eq!(r.status, 401, "{rest} without key: {}", r.text);
        assert_eq!(r.body["detail"], "X-API-Key header is missing");
        let r = fx.qv("v1", "bogus", &rest).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["detail"], "Invalid or inactive X-API-Key");
    }
    // An empty view's session list.
    let r = fx.qv("v2", "qk2", "sessions").await;
    assert_eq!(
        r.body,
        json!({"view_id": "v2", "active_sessions": [], "count": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s92_cross_view_queries_allowed() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.rt(&a, vec![row("/x.txt", now())]).await;
    for rest in [
        "tree",
        "stats",
        "search?pattern=x",
        "blind-spots",
        "suspect-list",
    ] {
        let r = fx.qv("v1", "qk2", rest).await;
        assert_eq!(r.status, 200, "{rest} with qk2: {}", r.text);
        let r = fx.get_main(&format!("/api/v1/views/v1/{rest}"), None).await;
        assert_eq!(r.status, 401, "{rest} without key: {}", r.text);
        let r = fx.qv("v1", "bogus", rest).await;
        assert_eq!(r.status, 401, "{rest} bad key: {}", r.text);
    }
    assert_eq!(
        fx.qv("v1", "qk2", "tree").await.body["children"][0]["name"],
        "x.txt"
    );
}

/// query-api §3.7: reset acts on the view of the *resolved key*, not the path's view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s91_reset_uses_resolved_key() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.rt(&a, vec![row("/x.txt", now())]).await;
    let url = format!("{}/api/v1/views/v1/reset", fx.main);
    let r = fx.send(Method::DELETE, &url, Some("qk2"), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(fx.node("/x.txt").await.is_some(), "qk2 reset v1");
    let r = fx.send(Method::DELETE, &url, None, None).await;
    assert_eq!(r.status, 401);
    let r = fx.send(Method::DELETE, &url, Some("qk1"), None).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert!(fx.node("/x.txt").await.is_none());
    assert_eq!(fx.stats().await["item_count"], 1);
    // Sessions and leadership untouched.
    assert_eq!(fx.sessions().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s91_unknown_routes_and_open_routes() {
    let fx = Fx::f0().await;
    let r = fx.get_main("/", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"message": "Welcome to Fusion Storage Engine Ingest API"})
    );
    let r = fx.get_main("/api/v1/pipe/pipes", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body["v1"].is_object(), "{}", r.text);
    let r = fx.get_main("/api/v1/pipe/pipes/nope", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["detail"], "Pipe not found");
    let r = fx.get_main("/api/v1/nothing-here", Some("qk1")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["detail"], "Not Found");
    let r = fx.qv("nosuchview", "qk1", "tree").await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["detail"], "View 'nosuchview' is not configured");
    let long = "v".repeat(300);
    let r = fx.qv(&long, "qk1", "stats").await;
    assert_eq!(r.status, 404, "{}", r.text);
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.len() < 130 && detail.ends_with("…' is not configured"),
        "{detail}"
    );
}
