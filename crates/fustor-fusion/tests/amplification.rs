//! Issue 9 item 4: a small body must not become a large amount of memory. Ids are bounded,
//! events are counted as well as rows, and events without rows are not stamped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_ids_are_refused() {
    let fx = Fx::f0().await;
    let long = "t".repeat(100_000);
    let r = fx
        .open_raw(Some("agent-key"), &json!({"task_id": format!("{long}:v1")}))
        .await;
    assert_eq!(r.status, 422, "100 KB task_id: {}", r.text);
    let r = fx
        .open_raw(
            Some("agent-key"),
            &json!({"task_id": "a:v1", "client_info": {"source_uri": "u".repeat(5000)}}),
        )
        .await;
    assert_eq!(r.status, 422, "5 KB source_uri: {}", r.text);
    let ok = "t".repeat(200);
    let r = fx
        .open_raw(Some("agent-key"), &json!({"task_id": format!("{ok}:v1")}))
        .await;
    assert_eq!(r.status, 200, "200-byte task id: {}", r.text);
    let sid = r.body["session_id"].as_str().unwrap().to_string();
    let mut ev = Fx::batch(
        "update",
        "realtime",
        vec![row("/p.txt", now())],
        false,
        None,
    );
    ev["events"][0]["metadata"] = json!({"pipe_id": "p".repeat(10_000)});
    let r = fx.ingest(&sid, &ev).await;
    assert_eq!(r.status, 422, "10 KB pipe_id in event metadata: {}", r.text);
}

/// 20,001 events with `rows: []` (~1.8 MB): counted against `max_events_per_batch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_events_count() {
    let fx = Fx::f0().await;
    let sid = fx.open("a:v1").await;
    let empty = json!({"event_type": "update", "event_schema": "fs", "table": "files",
                       "fields": [], "rows": [], "message_source": "realtime"});
    let batch = |n: usize| json!({"events": vec![empty.clone(); n], "source_type": "message"});
    let r = fx.ingest(&sid, &batch(20_001)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    let r = fx.ingest(&sid, &batch(100)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let top = "limits: {max_events_per_batch: 5}";
    let fx = Fx::with_yaml(&f0_yaml("", top)).await;
    let sid = fx.open("a:v1").await;
    assert_eq!(fx.ingest(&sid, &batch(6)).await.status, 413);
    assert_eq!(fx.ingest(&sid, &batch(5)).await.status, 200);
}

/// The lineage comes from the session, once per batch: an agent cannot claim another's in an
/// event's metadata (and Fusion no longer copies it into every event).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_comes_from_the_session_not_the_event() {
    let fx = Fx::f0().await;
    let r = fx
        .open_raw(
            Some("agent-key"),
            &json!({"task_id": "agent-x:v1", "client_info": {"source_uri": "/mnt/src"}}),
        )
        .await;
    let sid = r.body["session_id"].as_str().unwrap().to_string();
    fx.ready(&sid).await;
    let mut b = Fx::batch(
        "update",
        "realtime",
        vec![row("/l.txt", now())],
        false,
        None,
    );
    b["events"][0]["metadata"] = json!({"agent_id": "spoofed", "source_uri": "/elsewhere"});
    assert_eq!(fx.ingest(&sid, &b).await.status, 200);
    fx.settle("v1").await;
    let n = fx.node("/l.txt").await.expect("applied");
    assert_eq!(n["last_agent_id"], "agent-x");
    assert_eq!(n["source_uri"], "/mnt/src");
}
