//! scenarios.md §12: fan-out (S97), consistency.md §11 intended behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

const FANOUT: &str = r#"
host: 127.0.0.1
port: 0
session_cleanup_interval: 1
receivers:
  http-main: {driver: http, bind_host: 127.0.0.1, port: 0, api_keys: [{key: agent-key, pipe_id: v1}]}
views:
  v1: {driver: fs, api_keys: [qk1], driver_params: {hot_file_threshold: 5.0, consistency: {tombstone_ttl_seconds: 0.5}}}
  v2: {driver: fs, api_keys: [qk2]}
pipes:
  v1: {receiver: http-main, views: [v1, v2], session_timeout_seconds: 3}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s97_one_pipe_two_views() {
    let fx = Fx::with_yaml(FANOUT).await;
    let a = fx.open("a:v1").await;
    for v in ["v1", "v2"] {
        let r = fx.qv(v, "qk1", "stats").await;
        assert_eq!(r.status, 503, "{v} before snapshot end: {}", r.text);
    }
    fx.snap(&a, vec![row("/snap.txt", now() - 3600.0)]).await;
    fx.ready(&a).await;
    for v in ["v1", "v2"] {
        let r = fx.qv(v, "qk1", "stats").await;
        assert_eq!(r.status, 200, "{v} after snapshot end: {}", r.text);
    }
    fx.rt(&a, vec![row("/fan.txt", now())]).await;
    for v in ["v1", "v2"] {
        assert!(
            fx.node_in(v, "qk1", "/fan.txt").await.is_some(),
            "{v} lacks /fan.txt"
        );
        assert!(
            fx.node_in(v, "qk1", "/snap.txt").await.is_some(),
            "{v} lacks /snap.txt"
        );
    }
    // Failover re-locks both views until the new leader's snapshot ends.
    let b = fx.open("b:v1").await;
    fx.close(&a).await;
    for v in ["v1", "v2"] {
        let r = fx.qv(v, "qk1", "stats").await;
        assert_eq!(r.status, 503, "{v} after failover: {}", r.text);
    }
    fx.ready(&b).await;
    for v in ["v1", "v2"] {
        assert_eq!(fx.qv(v, "qk1", "stats").await.status, 200, "{v}");
    }
}
