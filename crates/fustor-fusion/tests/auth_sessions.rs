//! Issue 9 item 6 (scenarios.md §10, S91): a session id is not a capability. A key acts only
//! on sessions of its own pipe, query keys never write, and session ids are not shown to
//! callers without a key of the pipe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s91_other_pipes_key_cannot_touch_a_session() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let ingest = format!("{}/api/v1/pipe/ingest/{a}/events", fx.recv);
    let batch = Fx::batch(
        "update",
        "realtime",
        vec![row("/evil.txt", now())],
        false,
        None,
    );
    let r = fx
        .json_req(Method::POST, &ingest, Some("agent-key-2"), &batch)
        .await;
    assert_eq!(r.status, 404, "ingest with pipe v2's key: {}", r.text);
    let hb = format!("{}/api/v1/pipe/session/{a}/heartbeat", fx.recv);
    let r = fx
        .json_req(Method::POST, &hb, Some("agent-key-2"), &json!({}))
        .await;
    assert_eq!(r.status, 419, "heartbeat with pipe v2's key: {}", r.text);
    let del = format!("{}/api/v1/pipe/session/{a}", fx.recv);
    let r = fx
        .send(Method::DELETE, &del, Some("agent-key-2"), None)
        .await;
    assert_eq!(r.status, 200, "wire §3.3: always 200");
    // ... but nothing happened.
    assert!(
        fx.session(&a).await.is_some(),
        "session closed by another pipe's key"
    );
    fx.settle("v1").await;
    assert!(fx.node("/evil.txt").await.is_none());
    assert_eq!(fx.hb_raw(&a, true).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s91_query_keys_never_write_on_the_main_port() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let legacy = format!("{}/api/v1/pipe/{a}/events", fx.main);
    let body = Fx::batch(
        "update",
        "realtime",
        vec![row("/INJECTED.txt", now())],
        false,
        None,
    );
    for key in ["qk1", "qk2"] {
        let r = fx.json_req(Method::POST, &legacy, Some(key), &body).await;
        assert_eq!(r.status, 403, "legacy events with {key}: {}", r.text);
    }
    // Pipe v2's agent key: like an unknown session.
    let r = fx
        .json_req(Method::POST, &legacy, Some("agent-key-2"), &body)
        .await;
    assert_eq!(r.body, json!({"success": false}), "{}", r.text);
    let del = format!("{}/api/v1/pipe/session/{a}", fx.main);
    let r = fx.send(Method::DELETE, &del, Some("qk2"), None).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = fx
        .send(Method::DELETE, &del, Some("agent-key-2"), None)
        .await;
    assert_eq!(
        r.body["message"],
        format!("Session {a} already terminated"),
        "{}",
        r.text
    );
    let hb = format!("{}/api/v1/pipe/session/{a}/heartbeat", fx.main);
    let r = fx
        .json_req(Method::POST, &hb, Some("qk1"), &json!({}))
        .await;
    assert_eq!(r.status, 403);
    let r = fx
        .json_req(Method::POST, &hb, Some("agent-key-2"), &json!({}))
        .await;
    assert_eq!(r.status, 419);
    let create = format!("{}/api/v1/pipe/session/", fx.main);
    let r = fx
        .json_req(
            Method::POST,
            &create,
            Some("qk1"),
            &json!({"task_id": "q:v1"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    fx.settle("v1").await;
    assert!(fx.node("/INJECTED.txt").await.is_none());
    assert!(fx.session(&a).await.is_some());
    // The owner's key still works on the main port.
    let r = fx
        .json_req(Method::POST, &legacy, Some("agent-key"), &body)
        .await;
    assert_eq!(r.body, json!({"success": true}), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s91_session_ids_hidden_from_strangers() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let b = fx.open_key("agent-key-2", "b:v2").await;
    let r = fx.get_main("/api/v1/pipe/pipes", None).await;
    assert_eq!(r.status, 200);
    assert!(!r.text.contains(&a) && !r.text.contains(&b), "{}", r.text);
    assert_eq!(r.body["v1"]["active_sessions"], 1);
    let r = fx.get_main("/api/v1/pipe/pipes", Some("qk2")).await;
    assert_eq!(r.body["v1"]["leader_session"], Value::Null);
    assert_eq!(r.body["v2"]["leader_session"], b.as_str());
    let r = fx.get_main("/api/v1/pipe/pipes", Some("bogus")).await;
    assert!(!r.text.contains(&a), "{}", r.text);
    let r = fx
        .get_main("/api/v1/pipe/pipes/v1", Some("agent-key"))
        .await;
    assert_eq!(r.body["leader_session"], a.as_str());
}

/// Audit start/end and sentinel feedback change the view (an audit end deletes what the audit
/// did not see): query keys may not call them, on either port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s91_query_keys_cannot_run_audits_or_feed_the_sentinel() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.rt(&a, vec![row("/keep.txt", now())]).await;
    for base in [&fx.recv, &fx.main] {
        for rest in ["audit/start", "audit/end"] {
            let url = format!("{base}/api/v1/pipe/consistency/{rest}");
            let r = fx.send(Method::POST, &url, Some("qk1"), None).await;
            assert_eq!(r.status, 403, "{rest} with a query key: {}", r.text);
        }
        let url = format!("{base}/api/v1/pipe/consistency/sentinel/feedback");
        let fb = json!({"type": "suspect_update", "updates": []});
        let r = fx.json_req(Method::POST, &url, Some("qk1"), &fb).await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
    assert_eq!(fx.stats().await["audit_cycle_count"], 0);
    assert!(fx.node("/keep.txt").await.is_some());
    let r = fx.consistency("audit/start", None).await;
    assert_eq!(r.body["status"], "audit_started", "agent key: {}", r.text);
}
