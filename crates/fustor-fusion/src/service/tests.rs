//! The service without HTTP: sessions and the ordering of view writes against batches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use fustor_core::wire::CreateSessionRequest;
use fustor_core::{Event, FsRow};
use serde_json::json;

use super::OpenedSession;
use crate::limits::Limits;
use crate::pipe::Control;
use crate::state::{Fusion, Generation, IngestRoute, PipeEntry, ViewEntry};

const YAML: &str = r#"
receivers:
  r: {driver: http, bind_host: 127.0.0.1, port: 0, api_keys: [{key: k1, pipe_id: p1}]}
views:
  v1: {driver: fs, api_keys: [q1]}
pipes:
  p1: {receiver: r, views: [v1]}
"#;

fn fusion() -> (Arc<Fusion>, Arc<PipeEntry>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("default.yaml"), YAML).unwrap();
    let loaded = fustor_core::config::load_fusion_dir(dir.path());
    let limits = Limits::default();
    let (generation, errors) = Generation::build(loaded.config, &["p1".to_string()], &limits);
    assert!(errors.is_empty(), "{errors:?}");
    let f = Fusion::new(generation, limits, 0);
    let pipe = f.current().pipes.get("p1").cloned().unwrap();
    (f, pipe)
}

/// A leader session on p1, its route, view v1 and v1's node count while empty.
async fn leading(
    f: &Fusion,
    pipe: &PipeEntry,
) -> (OpenedSession, IngestRoute, Arc<ViewEntry>, usize) {
    let s = f.open_session(pipe, &request("agent-a:t"), None).await;
    let route = f.route(&s.session_id).unwrap();
    let view = f.current().views_for("v1").remove(0);
    let empty = view.driver.node_count();
    (s, route, view, empty)
}

fn request(task: &str) -> CreateSessionRequest {
    serde_json::from_value(json!({"task_id": task})).unwrap()
}

fn rows(n: usize, base: usize) -> Vec<Event<FsRow>> {
    let rows: Vec<_> = (0..n)
        .map(|i| json!({"path": format!("/d/f{}", base + i), "modified_time": 1.0, "size": 1, "is_directory": false}))
        .collect();
    let ev = json!({"event_type": "insert", "event_schema": "fs", "table": "files", "fields": [],
                    "rows": rows, "message_source": "snapshot", "index": -1});
    vec![serde_json::from_value(ev).unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_session_leads_and_close_ends_it_once() {
    let (f, pipe) = fusion();
    let a = f.open_session(&pipe, &request("agent-a:t"), None).await;
    let b = f.open_session(&pipe, &request("agent-b:t"), None).await;
    assert!(a.leader && !b.leader);
    assert_eq!(a.timeout_secs, pipe.cfg.session_timeout_seconds as i64);
    assert_eq!(f.route(&a.session_id).unwrap().agent_id.as_ref(), "agent-a");
    assert!(f.close_session(&a.session_id).await);
    assert!(!f.close_session(&a.session_id).await);
    assert!(
        f.sessions.is_leader(&b.session_id),
        "L5: the follower is promoted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_write_lands_after_the_batches_queued_before_it() {
    let (f, pipe) = fusion();
    let (s, route, view, empty) = leading(&f, &pipe).await;
    let generation = f.current();
    let views = vec![view];
    for i in 0..20 {
        pipe.pipe
            .enqueue(
                rows(500, i * 500),
                &s.session_id,
                route.agent_id.clone(),
                None,
                false,
            )
            .await
            .unwrap();
    }
    assert_eq!(f.write_views(&generation, &views, Control::Reset).await, 1);
    assert_eq!(
        views[0].driver.node_count(),
        empty,
        "the reset ran after every batch"
    );
    pipe.pipe
        .enqueue(
            rows(10, 0),
            &s.session_id,
            route.agent_id.clone(),
            None,
            false,
        )
        .await
        .unwrap();
    f.write_pipe(&pipe, Control::Barrier).await;
    assert!(views[0].driver.node_count() >= empty + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_end_of_the_leader_makes_the_view_ready() {
    let (f, pipe) = fusion();
    let a = f.open_session(&pipe, &request("agent-a:t"), None).await;
    let b = f.open_session(&pipe, &request("agent-b:t"), None).await;
    f.snapshot_end(&pipe, &b.session_id).await;
    assert_ne!(
        f.sessions.readiness("v1"),
        crate::sessions::Readiness::Ready
    );
    f.snapshot_end(&pipe, &a.session_id).await;
    assert_eq!(
        f.sessions.readiness("v1"),
        crate::sessions::Readiness::Ready
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_request_reaches_the_next_heartbeat_as_a_typed_command() {
    let (f, pipe) = fusion();
    assert_eq!(f.request_scan("v1", "/d", true), None, "no session, no job");
    let s = f.open_session(&pipe, &request("agent-a:t"), None).await;
    let job = f.request_scan("v1", "/d", false).unwrap();
    let beat = f
        .heartbeat(&s.session_id, Default::default(), false)
        .unwrap();
    assert!(beat.role.is_leader());
    let [cmd] = beat.commands.as_slice() else {
        panic!("one command expected: {:?}", beat.commands);
    };
    assert_eq!(
        fustor_core::wire::Command::parse(cmd),
        fustor_core::wire::Command::Scan {
            path: "/d".into(),
            recursive: false,
            job_id: Some(job)
        }
    );
    assert!(f.heartbeat("nope", Default::default(), false).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_end_batch_is_answered_after_the_rows_before_it() {
    let (f, pipe) = fusion();
    let (s, route, view, empty) = leading(&f, &pipe).await;
    assert_eq!(f.audit_start("p1").await, 1);
    let batch = |n: usize, end: bool| -> fustor_core::EventBatch {
        serde_json::from_value(json!({
            "events": serde_json::to_value(rows(n, 0)).unwrap(),
            "source_type": "audit", "is_end": end,
        }))
        .unwrap()
    };
    let got = f.ingest(&s.session_id, &route, batch(300, true)).await;
    assert_eq!(got.unwrap(), super::Ingested::Accepted { count: 1 });
    assert!(view.driver.node_count() >= empty + 300);
    let fb: fustor_core::wire::SentinelFeedback =
        serde_json::from_value(json!({"type": "other", "updates": []})).unwrap();
    assert_eq!(f.sentinel_feedback("p1", fb).await, None);
}

/// Expiry of a session on a healthy pipe does not wait for a backed-up pipe: p1's consumer hangs
/// in `session_closed` while p2's session ends. Sequential expiry failed this whenever one of
/// p1's sessions came first (4 of 5 orders).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// Holding the gate across awaits is the point: it stalls p1's consumer thread, not this task.
#[allow(clippy::await_holding_lock)]
async fn a_backed_up_pipe_does_not_delay_expiry_on_another() {
    use crate::drivers::null::{SESSION_CLOSE_GATE, build, build_gated};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("default.yaml"),
        r#"
receivers:
  r: {port: 0, api_keys: [{key: k1, pipe_id: p1}, {key: k2, pipe_id: p2}]}
views:
  stuck: {driver: null-gated}
  free: {driver: "null"}
pipes:
  p1: {receiver: r, views: [stuck]}
  p2: {receiver: r, views: [free]}
"#,
    )
    .unwrap();
    let loaded = fustor_core::config::load_fusion_dir(dir.path());
    let mut registry = crate::drivers::view_registry();
    registry
        .register("null", build)
        .register("null-gated", build_gated);
    let limits = Limits::default();
    let pipes = ["p1".to_string(), "p2".to_string()];
    let (generation, errors) =
        Generation::build_with(loaded.config, &pipes, &limits, &registry, None);
    assert!(errors.is_empty(), "{errors:?}");
    let f = Fusion::new(generation, limits, 0);
    let p1 = f.current().pipes.get("p1").cloned().unwrap();
    let p2 = f.current().pipes.get("p2").cloned().unwrap();
    let mut short = request("agent-a:t");
    short.session_timeout_seconds = Some(1);
    let mut stuck = Vec::new();
    for _ in 0..4 {
        stuck.push(f.open_session(&p1, &short, None).await.session_id);
    }
    let free = f.open_session(&p2, &short, None).await.session_id;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let gate = SESSION_CLOSE_GATE.lock();
    let expiring = tokio::spawn({
        let f = f.clone();
        async move { f.expire_sessions().await }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let ended = |id: &str| f.route(id).is_some_and(|r| r.ended_at.is_some());
    while !ended(&free) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let free_ended = ended(&free);
    let stuck_ended = stuck.iter().filter(|id| ended(id)).count();
    drop(gate);
    expiring.await.unwrap();
    assert!(free_ended, "p2's session waited for p1's queue");
    assert_eq!(stuck_ended, 0, "p1's consumer was not held");
    assert!(stuck.iter().all(|id| ended(id)));
}
