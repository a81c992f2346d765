//! scenarios.md §6: suspects, sentinel, clock (S59–S68).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn s(p: &str) -> String {
    p.to_string()
}

fn mtime(n: &Value) -> f64 {
    n["modified_time"].as_f64().unwrap()
}

async fn tasks(fx: &Fx) -> Resp {
    fx.send(
        Method::GET,
        &format!("{}/api/v1/pipe/consistency/sentinel/tasks", fx.recv),
        Some("agent-key"),
        None,
    )
    .await
}

async fn feedback(fx: &Fx, updates: Value) -> Resp {
    fx.consistency(
        "sentinel/feedback",
        Some(&json!({"type": "suspect_update", "updates": updates})),
    )
    .await
}

async fn logical_now(fx: &Fx) -> f64 {
    fx.stats().await["logical_now"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s59_future_mtime_is_suspect() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    fx.audit(&a, vec![row("/fut.txt", now() + 60.0)]).await;
    assert!(is_suspect(&fx.node("/fut.txt").await.unwrap()));
    assert!(fx.suspects().await.contains(&s("/fut.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s60_sentinel_tasks() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let r = tasks(&fx).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({}));
    fx.audit(&a, vec![row("/y1.txt", now()), row("/y2.txt", now())])
        .await;
    let r = tasks(&fx).await;
    assert_eq!(r.body["type"], "suspect_check", "{}", r.text);
    assert_eq!(r.body["view_id"], "v1");
    let mut paths: Vec<String> = r.body["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    paths.sort();
    assert_eq!(paths, vec![s("/y1.txt"), s("/y2.txt")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s61_sentinel_stable_and_cold_clears_immediately() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    let calib = (0..5).map(|i| row(&format!("/c{i}.txt"), t)).collect();
    fx.rt(&a, calib).await;
    let m = t - 3600.0;
    fx.rt(
        &a,
        vec![with(row("/old.bin", m), json!({"is_atomic_write": false}))],
    )
    .await;
    assert!(is_suspect(&fx.node("/old.bin").await.unwrap()));
    let r = feedback(&fx, json!([{"path": "/old.bin", "mtime": m, "size": 1}])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"status": "processed", "drivers_updated": 1}));
    assert!(!is_suspect(&fx.node("/old.bin").await.unwrap()));
    assert!(!fx.suspects().await.contains(&s("/old.bin")));
    // Unknown feedback type.
    let r = fx
        .consistency(
            "sentinel/feedback",
            Some(&json!({"type": "other", "updates": []})),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"status": "ignored", "reason": "unknown_type"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s62_sentinel_stable_and_hot_waits_for_ttl() {
    let fx = Fx::f0().await;
    let m = now();
    let a = fx.open("a:v1").await;
    fx.snap(&a, vec![row("/h.txt", m)]).await;
    fx.ready(&a).await;
    let _hb = fx.keepalive(&a);
    assert!(is_suspect(&fx.node("/h.txt").await.unwrap()));
    let r = feedback(&fx, json!([{"path": "/h.txt", "mtime": m, "size": 1}])).await;
    assert_eq!(r.status, 200);
    assert!(
        is_suspect(&fx.node("/h.txt").await.unwrap()),
        "hot file cleared early"
    );
    sleep(2.5).await;
    assert!(
        is_suspect(&fx.node("/h.txt").await.unwrap()),
        "cleared before TTL"
    );
    let cleared = eventually!(4.0, !is_suspect(&fx.node("/h.txt").await.unwrap()));
    assert!(cleared, "not cleared after TTL ≈ 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s63_sentinel_mismatch_renews() {
    let fx = Fx::f0().await;
    let m = now();
    let a = fx.open("a:v1").await;
    fx.snap(&a, vec![row("/w.txt", m), row("/cold.txt", m - 3600.0)])
        .await;
    fx.ready(&a).await;
    assert!(is_suspect(&fx.node("/w.txt").await.unwrap()));
    let r = feedback(
        &fx,
        json!([{"path": "/w.txt", "mtime": m + 5.0, "size": 1}]),
    )
    .await;
    assert_eq!(r.status, 200);
    let n = fx.node("/w.txt").await.unwrap();
    assert!(approx(mtime(&n), m + 5.0, 1e-3), "{n}");
    assert!(is_suspect(&n));
    // A non-suspect path is never touched.
    let r = feedback(
        &fx,
        json!([{"path": "/cold.txt", "mtime": 123.0, "size": 9}]),
    )
    .await;
    assert_eq!(r.status, 200);
    let n = fx.node("/cold.txt").await.unwrap();
    assert!(approx(mtime(&n), m - 3600.0, 1e-3), "{n}");
    assert_eq!(n["size"], 1);
    assert!(!is_suspect(&n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s64_suspect_list_put() {
    let fx = Fx::f0().await;
    let m = now();
    let a = fx.open("a:v1").await;
    fx.snap(&a, vec![row("/w.txt", m), row("/w2.txt", m)]).await;
    fx.ready(&a).await;
    let r = fx
        .json_req(
            Method::PUT,
            &format!("{}/api/v1/views/v1/suspect-list", fx.main),
            Some("qk1"),
            &json!({"updates": [{"path": "/w.txt", "mtime": m + 5.0}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"view_id": "v1", "updated_count": 1, "status": "ok"})
    );
    let n = fx.node("/w.txt").await.unwrap();
    assert!(approx(mtime(&n), m + 5.0, 1e-3), "{n}");
    assert!(is_suspect(&n));
    // `current_mtime` alias.
    let r = fx
        .json_req(
            Method::PUT,
            &format!("{}/api/v1/views/v1/suspect-list", fx.main),
            Some("qk1"),
            &json!({"updates": [{"path": "/w2.txt", "current_mtime": m + 7.0}]}),
        )
        .await;
    assert_eq!(r.body["updated_count"], 1, "{}", r.text);
    assert!(approx(
        mtime(&fx.node("/w2.txt").await.unwrap()),
        m + 7.0,
        1e-3
    ));
}

/// S65 given: fresh v1 with 5 realtime rows at now−100 and 2 at now+7200.
async fn s65(fx: &Fx) -> String {
    let a = fx.ready_leader().await;
    let t = now();
    let mut rows: Vec<Value> = (0..5)
        .map(|i| row(&format!("/k{i}.txt"), t - 100.0))
        .collect();
    rows.push(row("/f1.txt", t + 7200.0));
    rows.push(row("/f2.txt", t + 7200.0));
    fx.rt(&a, rows).await;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s65_clock_mode_ignores_minority_and_s66_compensation_does_not_move_it() {
    let fx = Fx::f0().await;
    let a = s65(&fx).await;
    let ln = logical_now(&fx).await;
    assert!(
        approx(ln, now() - 100.0, 2.0),
        "logical_now {ln} vs {}",
        now() - 100.0
    );
    let rows = (0..20)
        .map(|i| row(&format!("/old{i}.txt"), now() - 50000.0))
        .collect();
    fx.audit(&a, rows).await;
    let ln = logical_now(&fx).await;
    assert!(
        approx(ln, now() - 100.0, 2.0),
        "S66: audit rows moved the clock: {ln}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s67_clock_tie_break() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    let mut rows: Vec<Value> = (0..3)
        .map(|i| row(&format!("/p{i}.txt"), t - 50.0))
        .collect();
    rows.extend((0..3).map(|i| row(&format!("/q{i}.txt"), t - 200.0)));
    fx.rt(&a, rows).await;
    let ln = logical_now(&fx).await;
    assert!(
        approx(ln, now() - 50.0, 2.0),
        "logical_now {ln} vs {}",
        now() - 50.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s68_suspect_age_uses_watermark() {
    let fx = Fx::f0().await;
    let a = s65(&fx).await;
    let t = now();
    fx.audit(&a, vec![row("/a.txt", t - 103.0), row("/b.txt", t - 110.0)])
        .await;
    assert!(
        is_suspect(&fx.node("/a.txt").await.unwrap()),
        "age ≈ 3 < HOT"
    );
    assert!(
        !is_suspect(&fx.node("/b.txt").await.unwrap()),
        "age ≈ 10 ≥ HOT"
    );
}

/// consistency.md §1: HOT defaults to 30 s (v2 has no hot_file_threshold).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s59_default_hot_threshold_30s() {
    let fx = Fx::f0().await;
    let b = fx.open_key("agent-key-2", "b:v2").await;
    fx.ready(&b).await;
    let t = now();
    fx.push(
        &b,
        "update",
        "audit",
        vec![row("/y20.txt", t - 20.0), row("/y40.txt", t - 40.0)],
        false,
        None,
    )
    .await;
    assert!(is_suspect(
        &fx.node_in("v2", "qk2", "/y20.txt").await.unwrap()
    ));
    assert!(!is_suspect(
        &fx.node_in("v2", "qk2", "/y40.txt").await.unwrap()
    ));
}

/// §6.5 step 2: feedback in the agent's clock domain (mtime + skew = node mtime) is stable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s61_sentinel_skewed_mtime_counts_as_stable() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let t = now();
    let calib = (0..5)
        .map(|i| row(&format!("/c{i}.txt"), t - 100.0))
        .collect();
    fx.rt(&a, calib).await;
    let m = t - 3600.0;
    fx.rt(
        &a,
        vec![with(row("/sk.bin", m), json!({"is_atomic_write": false}))],
    )
    .await;
    assert!(is_suspect(&fx.node("/sk.bin").await.unwrap()));
    let r = feedback(
        &fx,
        json!([{"path": "/sk.bin", "mtime": m - 100.0, "size": 1}]),
    )
    .await;
    assert_eq!(r.status, 200);
    let n = fx.node("/sk.bin").await.unwrap();
    assert!(!is_suspect(&n), "{n}");
    assert!(approx(mtime(&n), m, 1e-3), "{n}");
}

/// §6.5: a vanished file (mtime 0.0) is "not stable": node mtime 0.0, suspect renewed; size
/// mismatch alone is not stable either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s63_sentinel_missing_file_and_size_mismatch_renew() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let m = now() - 3600.0;
    fx.rt(
        &a,
        vec![
            with(row("/gone.bin", m), json!({"is_atomic_write": false})),
            with(row("/grow.bin", m), json!({"is_atomic_write": false})),
        ],
    )
    .await;
    let r = feedback(
        &fx,
        json!([{"path": "/gone.bin", "mtime": 0.0, "status": "missing"},
               {"path": "/grow.bin", "mtime": m, "size": 50, "status": "exists"}]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let n = fx
        .node("/gone.bin")
        .await
        .expect("node disappears only via audit/realtime");
    assert_eq!(n["modified_time"].as_f64(), Some(0.0), "{n}");
    assert!(is_suspect(&n));
    let n = fx.node("/grow.bin").await.unwrap();
    assert!(is_suspect(&n), "size mismatch treated as stable: {n}");
    assert_eq!(n["size"], 50);
}

/// §6.6: at expiry, a suspect whose node mtime moved since it was recorded is renewed, not cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s62_suspect_expiry_renews_when_mtime_moved() {
    let fx = Fx::f0().await;
    let t = now();
    let a = fx.open("a:v1").await;
    let _ka = fx.keepalive(&a);
    fx.snap(&a, vec![row("/h.txt", t)]).await;
    fx.ready(&a).await;
    sleep(1.0).await;
    fx.audit(&a, vec![row("/h.txt", t + 0.5)]).await;
    assert!(is_suspect(&fx.node("/h.txt").await.unwrap()));
    sleep(6.5).await;
    assert!(
        is_suspect(&fx.node("/h.txt").await.unwrap()),
        "cleared at first expiry although the mtime moved"
    );
    let cleared = eventually!(5.0, !is_suspect(&fx.node("/h.txt").await.unwrap()));
    assert!(cleared, "renewed suspect never expired");
}
