//! scenarios.md §4: realtime arbitration (S31–S40).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

fn mtime(n: &serde_json::Value) -> f64 {
    n["modified_time"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s31_atomic_write_is_clean() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.rt(
        &a,
        vec![with(row("/f.txt", now()), json!({"is_atomic_write": true}))],
    )
    .await;
    let n = fx.node("/f.txt").await.unwrap();
    assert!(!is_suspect(&n), "{n}");
    assert!(!agent_missing(&n), "{n}");
    assert!(!fx.suspects().await.contains(&"/f.txt".to_string()));
    // Absent flag counts as atomic.
    fx.rt(&a, vec![row("/g.txt", now())]).await;
    assert!(!is_suspect(&fx.node("/g.txt").await.unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s32_partial_write_suspect_close_clears() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    let partial = |size: u64| {
        with(
            row("/big.bin", t),
            json!({"size": size, "is_atomic_write": false}),
        )
    };
    fx.rt(&a, vec![partial(100)]).await;
    fx.rt(&a, vec![partial(200)]).await;
    let n = fx.node("/big.bin").await.unwrap();
    assert!(is_suspect(&n), "{n}");
    assert_eq!(n["size"], 200);
    assert!(fx.suspects().await.contains(&"/big.bin".to_string()));
    assert_eq!(fx.stats().await["suspect_file_count"], 1);
    fx.rt(
        &a,
        vec![with(
            row("/big.bin", t + 1.0),
            json!({"size": 300, "is_atomic_write": true}),
        )],
    )
    .await;
    let n = fx.node("/big.bin").await.unwrap();
    assert!(!is_suspect(&n), "{n}");
    assert_eq!(n["size"], 300);
    assert!(!fx.suspects().await.contains(&"/big.bin".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s33_partial_write_alone_expires() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let _hb = fx.keepalive(&a);
    fx.rt(
        &a,
        vec![with(
            row("/big.bin", now()),
            json!({"size": 100, "is_atomic_write": false}),
        )],
    )
    .await;
    assert!(is_suspect(&fx.node("/big.bin").await.unwrap()));
    sleep(3.0).await;
    assert!(
        is_suspect(&fx.node("/big.bin").await.unwrap()),
        "cleared before HOT=5 s"
    );
    sleep(3.5).await;
    let n = fx.node("/big.bin").await.unwrap();
    assert!(!is_suspect(&n), "{n}");
    assert!(!fx.suspects().await.contains(&"/big.bin".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s34_realtime_wins_over_newer_mtime() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    fx.rt(&a, vec![row("/r.txt", t)]).await;
    fx.rt(&a, vec![row("/r.txt", t - 1000.0)]).await;
    assert!(approx(
        mtime(&fx.node("/r.txt").await.unwrap()),
        t - 1000.0,
        1e-3
    ));
}

/// S35 setup: fresh v1, realtime `/z.txt` at m = now−10 then its realtime delete.
async fn s35_given() -> (Fx, String, f64) {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let m = now() - 10.0;
    fx.rt(&a, vec![row("/z.txt", m)]).await;
    assert!(fx.node("/z.txt").await.is_some());
    fx.rt_del(&a, &["/z.txt"]).await;
    assert!(fx.node("/z.txt").await.is_none());
    (fx, a, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s35_realtime_delete_tombstone_blocks_zombie() {
    let (fx, a, m) = s35_given().await;
    fx.snap(&a, vec![row("/z.txt", m)]).await;
    assert!(
        fx.node("/z.txt").await.is_none(),
        "snapshot zombie resurrected"
    );
    fx.audit(&a, vec![row("/z.txt", m)]).await;
    assert!(
        fx.node("/z.txt").await.is_none(),
        "audit zombie resurrected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s35b_tombstones_live_in_logical_domain() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    let calib: Vec<_> = (0..5)
        .map(|i| row(&format!("/c{i}.txt"), t - 100.0))
        .collect();
    fx.rt(&a, calib).await;
    let m = now() - 10.0;
    fx.rt(&a, vec![row("/z.txt", m)]).await;
    fx.rt_del(&a, &["/z.txt"]).await;
    fx.audit(&a, vec![row("/z.txt", m)]).await;
    let n = fx
        .node("/z.txt")
        .await
        .expect("row newer than the logical tombstone must reincarnate");
    assert!(approx(mtime(&n), m, 1e-3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s36_reincarnation() {
    let (fx, a, _m) = s35_given().await;
    fx.audit(&a, vec![row("/z.txt", now() + 100.0)]).await;
    let n = fx.node("/z.txt").await.expect("reincarnated");
    assert!(agent_missing(&n), "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s37_old_mtime_recreate_blocked_until_purge() {
    let (fx, a, _m) = s35_given().await;
    let old = now() - 5000.0;
    fx.rt(&a, vec![row("/z.txt", old)]).await;
    assert!(
        fx.node("/z.txt").await.is_none(),
        "cp -p re-create passed the tombstone"
    );
    sleep(0.7).await;
    fx.audit(&a, vec![row("/other.txt", now() - 3600.0)]).await;
    fx.audit_end(&a).await;
    fx.rt(&a, vec![row("/z.txt", old)]).await;
    assert!(
        fx.node("/z.txt").await.is_some(),
        "tombstone not purged by audit end after TTL 0.5 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s38_realtime_clears_blind_spot() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.audit(&a, vec![row("/bs.txt", now() - 3600.0)]).await;
    fx.audit_end(&a).await;
    assert!(fx.blind_additions().await.contains(&"/bs.txt".to_string()));
    assert!(agent_missing(&fx.node("/bs.txt").await.unwrap()));
    fx.rt(&a, vec![row("/bs.txt", now())]).await;
    assert!(!fx.blind_additions().await.contains(&"/bs.txt".to_string()));
    assert!(!agent_missing(&fx.node("/bs.txt").await.unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s39_follower_realtime_accepted() {
    let fx = Fx::f0().await;
    let _a = fx.ready_leader().await;
    let b = fx.open("b:v1").await;
    fx.rt(&b, vec![row("/fb.txt", now())]).await;
    let n = fx.node("/fb.txt").await.expect("follower realtime applied");
    assert_eq!(n["last_agent_id"], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s40_lineage() {
    let fx = Fx::f0().await;
    let r = fx
        .open_raw(
            Some("agent-key"),
            &json!({"task_id": "agent-x:v1", "client_info": {"source_uri": "/mnt/src"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let x = r.body["session_id"].as_str().unwrap().to_string();
    fx.ready(&x).await;
    fx.rt(&x, vec![row("/l.txt", now())]).await;
    let n = fx.node("/l.txt").await.unwrap();
    assert_eq!(n["last_agent_id"], "agent-x");
    assert_eq!(n["source_uri"], "/mnt/src");
    let s = fx.session(&x).await.unwrap();
    assert_eq!(s["source_uri"], "/mnt/src");
    assert_eq!(s["agent_id"], "agent-x");

    // No client_info ⇒ null source_uri; a task id without ':' is the agent id.
    let y = fx.open("plainagent").await;
    fx.rt(&y, vec![row("/l2.txt", now())]).await;
    let n = fx.node("/l2.txt").await.unwrap();
    assert_eq!(n["last_agent_id"], "plainagent");
    assert_eq!(n["source_uri"], serde_json::Value::Null);
}

/// R3: a realtime delete also removes the path from the suspect list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s32_realtime_delete_clears_suspect() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.rt(
        &a,
        vec![with(
            row("/p.bin", now()),
            json!({"is_atomic_write": false}),
        )],
    )
    .await;
    assert!(fx.suspects().await.contains(&"/p.bin".to_string()));
    fx.rt_del(&a, &["/p.bin"]).await;
    assert!(fx.suspects().await.is_empty());
    assert_eq!(fx.stats().await["suspect_file_count"], 0);
}
