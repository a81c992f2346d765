//! Issue 9 item 5: slow and idle connections are closed by timeouts, each port has its own
//! connection limit, and the query port keeps answering while a receiver port is flooded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::raw::{closed_within, connect, head, response};
use common::*;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_and_idle_keepalives_are_closed() {
    let fx = Fx::with_yaml(&f0_yaml("", "limits: {header_read_timeout_secs: 1}")).await;
    // Slowloris: one header byte every 200 ms, never finishing the head.
    let mut slow = connect(&fx.recv).await;
    slow.write_all(b"POST /api/v1/pipe/session/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..40 {
            if slow.write_all(b"X").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    let t = Instant::now();
    let cut = trickle.await || closed_within(&mut slow, Duration::from_secs(1)).await;
    assert!(cut, "a header trickle kept its connection for 8 s");
    assert!(t.elapsed() < Duration::from_secs(5));
    // Idle keep-alive after one request.
    let mut idle = connect(&fx.main).await;
    idle.write_all(head("GET", "/", None, &[]).as_bytes())
        .await
        .unwrap();
    let (status, _) = response(&mut idle, Duration::from_secs(2)).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        closed_within(&mut idle, Duration::from_secs(4)).await,
        "an idle keep-alive connection stayed open"
    );
    // A connection that never sends anything.
    let mut silent = connect(&fx.recv).await;
    assert!(closed_within(&mut silent, Duration::from_secs(4)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_per_port_keeps_the_query_port_answering() {
    let top = "limits: {max_connections_per_port: 8, header_read_timeout_secs: 30}";
    let fx = Fx::with_yaml(&f0_yaml("", top)).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect(&fx.recv).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The 9th on the flooded port is closed at once.
    let mut extra = connect(&fx.recv).await;
    assert!(
        closed_within(&mut extra, Duration::from_secs(2)).await,
        "connection over the per-port limit kept open"
    );
    // The main port has its own budget.
    for _ in 0..5 {
        let t = Instant::now();
        let r = fx.get_main("/api/v1/pipe/pipes", None).await;
        assert_eq!(r.status, 200);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    // Freed slots are reused.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sid, _) = fx.open_full("a:v1").await;
    assert!(!sid.is_empty());
}

/// Graceful shutdown still ends idle connections and the accept loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections() {
    let fx = Fx::f0().await;
    let mut idle = connect(&fx.recv).await;
    let t = Instant::now();
    fx.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    assert!(closed_within(&mut idle, Duration::from_secs(2)).await);
}

/// A request head is bounded (64 KiB): a 200 KB header is refused instead of being buffered
/// on every connection that sends one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_head_is_refused() {
    let fx = Fx::f0().await;
    let mut s = connect(&fx.main).await;
    let h = head("GET", "/", None, &[("X-Pad", "a".repeat(200_000))]);
    let _ = s.write_all(h.as_bytes()).await;
    let answer = response(&mut s, Duration::from_secs(3)).await;
    assert!(
        answer.as_ref().is_none_or(|(status, _)| *status == 431),
        "a 200 KB head was accepted: {answer:?}"
    );
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
    assert_eq!(fx.get_main("/", None).await.status, 200);
}
