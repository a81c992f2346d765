//! Issue 9 item 3: request bodies an attacker controls. The key and the session are checked
//! before a body is read, bodies over a route's limit are refused from their `Content-Length`,
//! and the bytes of bodies held at once are bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::raw::{announce, response};
use common::*;
use serde_json::json;
use tokio::io::AsyncWriteExt;

const FAST: Duration = Duration::from_secs(3);
const MB50: usize = 50_000_000;

/// The answer to a head that announces a body it never sends: it must come at once, so the
/// server did not wait for (or buffer) the body.
async fn answer_without_body(base: &str, path: &str, key: Option<&str>, len: usize) -> u16 {
    let mut s = announce(base, path, key, len).await;
    let (status, body) = response(&mut s, FAST)
        .await
        .unwrap_or_else(|| panic!("{path}: no answer without the body (it waits for it)"));
    assert!(
        body.len() < 1000,
        "answers stay small whatever was announced"
    );
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bodies_are_answered_before_being_read() {
    let fx = Fx::f0().await;
    let sid = fx.open("a:v1").await;
    let ingest = format!("/api/v1/pipe/ingest/{sid}/events");
    let create = "/api/v1/pipe/session/";
    // No key, a wrong key, another pipe's key: 401/404 without reading 60 MB.
    assert_eq!(
        answer_without_body(&fx.recv, &ingest, None, 60_000_000).await,
        401
    );
    assert_eq!(
        answer_without_body(&fx.recv, &ingest, Some("wrong"), 60_000_000).await,
        401
    );
    assert_eq!(
        answer_without_body(&fx.recv, &ingest, Some("agent-key-2"), 60_000_000).await,
        404
    );
    assert_eq!(
        answer_without_body(
            &fx.recv,
            "/api/v1/pipe/ingest/nope/events",
            Some("agent-key"),
            60_000_000
        )
        .await,
        404
    );
    assert_eq!(answer_without_body(&fx.recv, create, None, MB50).await, 401);
    assert_eq!(answer_without_body(&fx.main, create, None, MB50).await, 401);
    // A valid key, but more than the route takes: 413 from the header alone.
    assert_eq!(
        answer_without_body(&fx.recv, create, Some("agent-key"), MB50).await,
        413,
        "50 MB session create"
    );
    assert_eq!(
        answer_without_body(&fx.recv, &ingest, Some("agent-key"), MB50).await,
        413,
        "50 MB event batch"
    );
    let hb = format!("/api/v1/pipe/session/{sid}/heartbeat");
    assert_eq!(
        answer_without_body(&fx.recv, &hb, Some("agent-key"), 2 << 20).await,
        413,
        "control routes take 1 MiB"
    );
    assert_eq!(
        answer_without_body(
            &fx.recv,
            "/api/v1/pipe/consistency/sentinel/feedback",
            Some("agent-key"),
            2 << 20
        )
        .await,
        413
    );
    // The session still works.
    assert_eq!(fx.hb_raw(&sid, true).await.status, 200);
}

/// A 50 MB padded batch actually sent is refused (4xx), not applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_50mb_batch_is_refused() {
    let fx = Fx::f0().await;
    let sid = fx.ready_leader().await;
    let mut batch = Fx::batch(
        "update",
        "realtime",
        vec![row("/pad.txt", now())],
        false,
        None,
    );
    batch["pad"] = json!("x".repeat(MB50));
    let body = json_body(&batch);
    let mut s = announce(
        &fx.recv,
        &format!("/api/v1/pipe/ingest/{sid}/events"),
        Some("agent-key"),
        body.len(),
    )
    .await;
    // The server may answer and close before everything is written.
    let _ = s.write_all(&body).await;
    let (status, _) = response(&mut s, Duration::from_secs(20))
        .await
        .expect("an answer");
    assert_eq!(status, 413);
    assert!(fx.node("/pad.txt").await.is_none());
}

/// A chunked body (no length) is counted as it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_control_limit() {
    let fx = Fx::f0().await;
    let sid = fx.open("a:v1").await;
    let path = format!("/api/v1/pipe/session/{sid}/heartbeat");
    let mut s = common::raw::connect(&fx.recv).await;
    let h = common::raw::head(
        "POST",
        &path,
        Some("agent-key"),
        &[("Transfer-Encoding", "chunked".into())],
    );
    s.write_all(h.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 256 << 10, "x".repeat(256 << 10));
    for _ in 0..8 {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let (status, _) = response(&mut s, FAST).await.expect("an answer");
    assert_eq!(status, 413);
}

/// `limits.max_inflight_body_bytes`: a body that does not fit beside the ones being received
/// waits for its share and is answered 503 if none frees up in time; `body_read_timeout_secs`
/// ends a body that does not arrive (408).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflight_budget_and_body_deadline() {
    let top = "limits: {max_inflight_body_bytes: 100000, body_read_timeout_secs: 1.5}";
    let fx = Fx::with_yaml(&f0_yaml("", top)).await;
    let sid = fx.open("a:v1").await;
    let path = format!("/api/v1/pipe/ingest/{sid}/events");
    let mut slow = announce(&fx.recv, &path, Some("agent-key"), 90_000).await;
    slow.write_all(b"{\"events\": [").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let mut second = announce(&fx.recv, &path, Some("agent-key"), 90_000).await;
    let (status, _) = response(&mut second, FAST).await.expect("an answer");
    assert_eq!(status, 503, "no budget left for a second 90 KB body");
    assert!(t.elapsed() < Duration::from_millis(1900));
    let (status, body) = response(&mut slow, FAST).await.expect("an answer");
    assert_eq!(status, 408, "{body}");
    // Budget released: a normal batch goes through.
    let r = fx
        .ingest(
            &sid,
            &Fx::batch(
                "update",
                "realtime",
                vec![row("/ok.txt", now())],
                false,
                None,
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}
