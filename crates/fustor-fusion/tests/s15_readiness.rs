//! scenarios.md §2: readiness (S15–S20).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn retry_after(r: &Resp) -> Option<String> {
    r.headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string())
}

fn assert_no_leader(r: &Resp) {
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(retry_after(r).as_deref(), Some("10"));
    assert!(
        r.detail_str().contains("No active leader session"),
        "{}",
        r.text
    );
}

fn assert_snapshotting(r: &Resp) {
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(retry_after(r).as_deref(), Some("5"));
    assert!(
        r.detail_str().contains("Initial snapshot sync phase"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s15_no_leader_503() {
    let fx = Fx::f0().await;
    assert_no_leader(&fx.q("stats").await);
    assert_no_leader(&fx.q("tree").await);
    assert_no_leader(&fx.q("search?pattern=x").await);
    let r = fx.q("stats").await;
    assert_eq!(
        r.body["detail"],
        "View 'v1': No active leader session. Ensure at least one agent is running."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s16_snapshot_running_503() {
    let fx = Fx::f0().await;
    let _a = fx.open("a:v1").await;
    assert_snapshotting(&fx.q("stats").await);
    assert_snapshotting(&fx.q("tree").await);
    assert_snapshotting(&fx.q("search?pattern=x").await);
    assert_eq!(fx.q("blind-spots").await.status, 200);
    assert_eq!(fx.q("suspect-list").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s17_follower_snapshot_end_ignored() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    let b = fx.open("b:v1").await;
    fx.ready(&b).await;
    assert_snapshotting(&fx.q("stats").await);
    fx.ready(&a).await;
    assert_eq!(fx.q("stats").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_failover_relocks_readiness() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let b = fx.open("b:v1").await;
    assert_eq!(fx.q("stats").await.status, 200);
    fx.close(&a).await;
    assert_snapshotting(&fx.q("stats").await);
    assert_snapshotting(&fx.q("tree").await);
    fx.ready(&b).await;
    assert_eq!(fx.q("stats").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s19_last_session_gone_empty_live_view() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.rt(&a, vec![row("/d/f1.txt", now()), row("/f2.txt", now())])
        .await;
    fx.audit(&a, vec![row("/blind.txt", now() - 3600.0)]).await;
    fx.audit_end(&a).await;
    assert_eq!(fx.stats().await["item_count"], 5);
    fx.close(&a).await;
    let r = fx.q("tree?path=/").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["path"], "/");
    assert_eq!(r.body["children"], serde_json::json!([]));
    assert_eq!(fx.stats().await["item_count"], 1);
    let bs = fx.blind().await;
    assert_eq!(bs["additions_count"], 0);
    assert_eq!(bs["deletion_count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s19_variant_promoted_follower_keeps_view_locked() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let b = fx.open("b:v1").await;
    fx.close(&a).await;
    assert_snapshotting(&fx.q("stats").await);
    // b (now authoritative) never ended a snapshot: closing it keeps the view locked.
    fx.close(&b).await;
    assert_snapshotting(&fx.q("stats").await);
    assert_snapshotting(&fx.q("tree").await);
}

/// Intentional Rust difference: `max_tree_items` limits the size of one `/tree` or `/search`
/// answer, not the whole view. The 400 body keeps the reference shape and `current_count` is the
/// view's node count (so S20 still reads 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s20_metadata_limit() {
    let fx = Fx::with_yaml(&f0_yaml(", max_tree_items: 2", "")).await;
    let a = fx.ready_leader().await;
    let t = now();
    fx.rt(
        &a,
        vec![row("/a.txt", t), row("/b.txt", t), row("/c.txt", t)],
    )
    .await;
    let r = fx.q("tree").await;
    assert_eq!(r.status, 400, "{}", r.text);
    let d = &r.body["detail"];
    assert_eq!(d["error"], "Metadata retrieval limit exceeded");
    assert_eq!(d["view"], "v1");
    assert_eq!(d["current_count"], 4);
    assert_eq!(d["limit"], 2);
    assert!(d["suggestion"].is_string());
    assert_eq!(fx.q("search?pattern=*").await.status, 400);
    assert_eq!(fx.q("stats").await.status, 200);
    // Rust: a one-node answer is within the limit.
    assert_eq!(fx.q("tree?path=/a.txt").await.status, 200);

    let fx0 = Fx::with_yaml(&f0_yaml(", max_tree_items: 0", "")).await;
    let a0 = fx0.ready_leader().await;
    fx0.rt(
        &a0,
        vec![row("/a.txt", t), row("/b.txt", t), row("/c.txt", t)],
    )
    .await;
    assert_eq!(fx0.q("tree").await.status, 200);
    assert_eq!(fx0.q("search?pattern=*").await.status, 200);
}

/// query-api §2: routes exist for every configured view, enabled or not; a disabled view has
/// no runtime state ⇒ 503 "No active leader session" (not 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s15_disabled_view_routes_exist() {
    let yaml = f0_yaml("", "").replace(
        "  v2: {driver: fs, api_keys: [qk2]}\n",
        "  v2: {driver: fs, api_keys: [qk2]}\n  v3: {driver: fs, disabled: true, api_keys: [qk3]}\n",
    );
    let fx = Fx::with_yaml(&yaml).await;
    let r = fx.qv("v3", "qk3", "stats").await;
    assert_no_leader(&r);
    assert_eq!(fx.qv("v9", "qk3", "stats").await.status, 404);
}

/// W§4.3: a leader's snapshot end waits for the queue to drain before marking the view ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s17_snapshot_end_waits_for_drain() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    let m = now() - 3600.0;
    let rows = (0..20000)
        .map(|i| row(&format!("/s/f{i}.txt"), m))
        .collect();
    let r = fx
        .ingest(&a, &Fx::batch("update", "snapshot", rows, false, None))
        .await;
    assert_eq!(r.status, 200);
    fx.ready(&a).await;
    let st = fx.stats().await;
    assert_eq!(
        st["total_files"], 20000,
        "ready before the snapshot was applied: {st}"
    );
}
