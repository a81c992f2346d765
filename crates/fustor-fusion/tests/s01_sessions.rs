//! scenarios.md §1: sessions, roles and protocol (S01–S14), fake agent on F0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s01_first_session_leads() {
    let fx = Fx::f0().await;
    let (a, body) = fx.open_full("a:v1").await;
    assert_eq!(body["role"], "leader");
    assert_eq!(body["session_timeout_seconds"], 3);
    assert_eq!(body["audit_interval_sec"].as_f64(), Some(15.0));
    assert_eq!(body["sentinel_interval_sec"].as_f64(), Some(5.0));
    assert_eq!(body["message"], "Session created successfully");
    let list = fx.sessions().await;
    assert_eq!(list.len(), 1, "{list:?}");
    let s = &list[0];
    assert_eq!(s["session_id"], a.as_str());
    assert_eq!(s["role"], "leader");
    assert_eq!(s["agent_id"], "a");
    assert_eq!(s["task_id"], "a:v1");
    assert_eq!(s["can_snapshot"], true);
    assert_eq!(s["can_audit"], true);
    assert_eq!(s["can_send"], true);
    assert_eq!(s["session_timeout_seconds"].as_f64(), Some(3.0));
    // Intentional Rust difference: sessions created on the receiver port report client_ip.
    assert_eq!(s["client_ip"], "127.0.0.1");
    let r = fx.q("sessions").await;
    assert_eq!(r.body["view_id"], "v1");
    assert_eq!(r.body["count"], 1);
}

/// query-api §4.1 / W§3.1: `session_timeout_seconds` is an integer in the sessions list, as in
/// the create response (`30`, not `30.0`); typed clients deserialising an int reject `3.0`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s01_session_list_timeout_is_integer() {
    let fx = Fx::f0().await;
    let _a = fx.open("a:v1").await;
    let s = &fx.sessions().await[0];
    assert!(
        s["session_timeout_seconds"].is_u64(),
        "session_timeout_seconds = {}",
        s["session_timeout_seconds"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s02_second_session_follows() {
    let fx = Fx::f0().await;
    let _a = fx.open("a:v1").await;
    let (b, body) = fx.open_full("b:v1").await;
    assert_eq!(body["role"], "follower");
    let s = fx.session(&b).await.expect("b listed");
    assert_eq!(s["role"], "follower");
    assert_eq!(s["agent_id"], "b");
    assert_eq!(s["can_snapshot"], false);
    assert_eq!(s["can_audit"], false);
    assert_eq!(s["can_send"], true);
    assert_eq!(fx.sessions().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s03_can_realtime_is_reported() {
    let fx = Fx::f0().await;
    let _a = fx.open("a:v1").await;
    let b = fx.open("b:v1").await;
    let hb = fx.hb(&b, true).await;
    assert_eq!(hb["status"], "ok");
    assert!(hb["commands"].is_array(), "{hb}");
    assert_eq!(fx.session(&b).await.unwrap()["can_realtime"], true);
    fx.hb(&b, false).await;
    assert_eq!(fx.session(&b).await.unwrap()["can_realtime"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s04_leader_close_promotes_follower_and_s05_no_preemption() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    let b = fx.open("b:v1").await;
    let r = fx.close(&a).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "terminated");
    assert_eq!(r.body["session_id"], a.as_str());
    let promoted = eventually!(1.0, {
        let l = fx.sessions().await;
        l.len() == 1 && l[0]["session_id"] == b.as_str() && l[0]["role"] == "leader"
    });
    assert!(promoted, "b not promoted: {:?}", fx.sessions().await);
    assert_eq!(fx.hb(&b, false).await["role"], "leader");
    assert_eq!(fx.session(&b).await.unwrap()["can_snapshot"], true);

    // S05: the former leader reconnects and does not preempt b.
    let (a2, body) = fx.open_full("a:v1").await;
    assert_eq!(body["role"], "follower");
    assert_eq!(fx.session(&a2).await.unwrap()["role"], "follower");
    assert_eq!(fx.session(&b).await.unwrap()["role"], "leader");
    for _ in 0..6 {
        assert_eq!(fx.hb(&a2, true).await["role"], "follower");
    }
    assert_eq!(fx.hb(&b, true).await["role"], "leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s06_expiry_without_heartbeats() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    sleep(2.0).await;
    assert_eq!(
        fx.sessions().await.len(),
        1,
        "expired before its 3 s timeout"
    );
    sleep(3.0).await;
    assert!(fx.sessions().await.is_empty(), "{:?}", fx.sessions().await);
    let r = fx.hb_raw(&a, true).await;
    assert_eq!(r.status, 419, "{}", r.text);
    let d = r.detail_str();
    assert!(d.contains("expired") || d.contains("obsoleted"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s07_heartbeats_keep_session_alive_pushes_do_not() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    let p = fx.open("p:v1").await;
    let mut last = fx.session(&a).await.unwrap()["last_activity"]
        .as_f64()
        .unwrap();
    // 6 s = twice the timeout: a heartbeats every second, p only pushes events.
    for i in 0..6 {
        sleep(1.0).await;
        fx.hb(&a, true).await;
        // Status not checked here: ingest on an expired session is covered separately.
        let _ = fx
            .ingest(
                &p,
                &Fx::batch(
                    "update",
                    "realtime",
                    vec![row(&format!("/push{i}.txt"), now())],
                    false,
                    None,
                ),
            )
            .await;
        let s = fx.session(&a).await.expect("heartbeating session expired");
        let la = s["last_activity"].as_f64().unwrap();
        assert!(la > last, "last_activity did not increase: {la} <= {last}");
        last = la;
    }
    assert!(fx.session(&a).await.is_some());
    assert!(
        fx.session(&p).await.is_none(),
        "a session with pushes but no heartbeats must expire (W§3.5)"
    );
    assert_eq!(fx.hb_raw(&p, true).await.status, 419);
}

/// W§4.3 note: a session that expired while its pipe still runs keeps being accepted for
/// ingestion; the agent learns of the expiry through 419 on its next heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s07_expired_session_ingest_still_accepted() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    fx.ready(&a).await;
    let gone = eventually!(5.0, fx.session(&a).await.is_none());
    assert!(gone);
    let r = fx
        .ingest(
            &a,
            &Fx::batch(
                "update",
                "realtime",
                vec![row("/late.txt", now())],
                false,
                None,
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fx.hb_raw(&a, true).await.status, 419);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s08_obsolete_heartbeat_after_close() {
    let fx = Fx::f0().await;
    let t = fx.open("t:v1").await;
    assert_eq!(fx.close(&t).await.status, 200);
    let r = fx.hb_raw(&t, false).await;
    assert_eq!(r.status, 419, "{}", r.text);
    let d = r.detail_str();
    assert!(d.contains("obsoleted") || d.contains("not found"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s09_timeout_hint_wins() {
    let fx = Fx::f0().await;
    let r = fx
        .open_raw(
            Some("agent-key"),
            &json!({"task_id": "h:v1", "session_timeout_seconds": 7}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["session_timeout_seconds"], 7);
    let h = r.body["session_id"].as_str().unwrap().to_string();
    let (plain, body) = fx.open_full("n:v1").await;
    assert_eq!(body["session_timeout_seconds"], 3);
    assert_eq!(
        fx.session(&h).await.unwrap()["session_timeout_seconds"].as_f64(),
        Some(7.0)
    );
    sleep(5.0).await;
    assert!(
        fx.session(&plain).await.is_none(),
        "3 s session survived 5 s"
    );
    assert!(
        fx.session(&h).await.is_some(),
        "7 s session expired after 5 s"
    );
    let gone = eventually!(4.5, fx.session(&h).await.is_none());
    assert!(gone, "7 s session still listed after 9.5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_auth_on_session_creation() {
    let fx = Fx::f0().await;
    let body = json!({"task_id": "a:v1"});
    assert_eq!(fx.open_raw(None, &body).await.status, 401);
    assert_eq!(fx.open_raw(Some("qk1"), &body).await.status, 401);
    assert_eq!(fx.open_raw(Some("nope"), &body).await.status, 401);
    assert_eq!(fx.open_raw(Some("agent-key"), &body).await.status, 200);
}

/// Intentional Rust difference: the receiver port also checks the key on heartbeat, ingest and
/// close (401 without it); the reference checks it on session creation only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_receiver_key_required_on_agent_routes() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    let hb = fx
        .json_req(
            Method::POST,
            &format!("{}/api/v1/pipe/session/{a}/heartbeat", fx.recv),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(hb.status, 401, "{}", hb.text);
    let ing = fx
        .json_req(
            Method::POST,
            &format!("{}/api/v1/pipe/ingest/{a}/events", fx.recv),
            None,
            &json!({"events": []}),
        )
        .await;
    assert_eq!(ing.status, 401, "{}", ing.text);
    let del = fx
        .send(
            Method::DELETE,
            &format!("{}/api/v1/pipe/session/{a}", fx.recv),
            None,
            None,
        )
        .await;
    assert_eq!(del.status, 401, "{}", del.text);
    assert!(
        fx.session(&a).await.is_some(),
        "unauthenticated close took effect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11_key_discovery() {
    let fx = Fx::f0().await;
    let r = fx.get_main("/api/v1/pipe/session/", Some("qk1")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"view_id": "v1", "status": "authorized"}));
    let r = fx
        .get_main("/api/v1/pipe/session/", Some("agent-key"))
        .await;
    assert_eq!(r.body["view_id"], "v1");
    let r = fx
        .get_main("/api/v1/pipe/session/", Some("agent-key-2"))
        .await;
    assert_eq!(r.body["view_id"], "v2");
    let r = fx.get_main("/api/v1/pipe/session/", Some("qk2")).await;
    assert_eq!(r.body["view_id"], "v2");
    let r = fx.get_main("/api/v1/pipe/session/", Some("unknown")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["detail"], "Invalid or inactive X-API-Key");
    let r = fx.get_main("/api/v1/pipe/session/", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["detail"], "X-API-Key header is missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s12_unknown_session_ingest_and_close() {
    let fx = Fx::f0().await;
    let r = fx
        .ingest(
            "nope",
            &Fx::batch("update", "realtime", vec![row("/x", now())], false, None),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["detail"], "Session nope not found or expired");
    let r = fx.close("nope").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "terminated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s13_malformed_batch_isolation() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let bad = json!({"events": [{"foo": 1}], "source_type": "message"});
    let r = fx.ingest(&a, &bad).await;
    assert_eq!(r.status, 422, "{}", r.text);
    // A batch mixing a valid and a malformed event is refused as a whole.
    let mut mixed = Fx::batch(
        "update",
        "realtime",
        vec![row("/half.txt", now())],
        false,
        None,
    );
    mixed["events"]
        .as_array_mut()
        .unwrap()
        .push(json!({"foo": 1}));
    assert_eq!(fx.ingest(&a, &mixed).await.status, 422);
    fx.rt(&a, vec![row("/ok.txt", now())]).await;
    assert!(fx.node("/ok.txt").await.is_some());
    assert!(
        fx.node("/half.txt").await.is_none(),
        "refused batch partly applied"
    );
    let r = fx
        .ingest(&a, &json!({"events": [], "source_type": "message"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["count"], 0);
    assert_eq!(r.body["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s14_duplicate_task_ids_allowed() {
    let fx = Fx::f0().await;
    let (s1, b1) = fx.open_full("a:v1").await;
    let (s2, b2) = fx.open_full("a:v1").await;
    assert_ne!(s1, s2);
    assert_eq!(b1["role"], "leader");
    assert_eq!(b2["role"], "follower");
    assert_eq!(fx.sessions().await.len(), 2);
}

/// W§3.1–§3.3 main-port variants of the session routes (same semantics, other shapes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s01_main_port_session_routes() {
    let fx = Fx::f0().await;
    let url = format!("{}/api/v1/pipe/session/", fx.main);
    let r = fx
        .json_req(
            Method::POST,
            &url,
            Some("agent-key"),
            &json!({"task_id": "m:v1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"], "leader");
    assert_eq!(r.body["is_leader"], true);
    assert_eq!(r.body["session_timeout_seconds"], 3);
    assert_eq!(r.body["audit_interval_sec"].as_f64(), Some(15.0));
    assert_eq!(r.body["sentinel_interval_sec"].as_f64(), Some(5.0));
    let m = r.body["session_id"].as_str().unwrap().to_string();
    let s = fx.session(&m).await.expect("main-port session listed");
    assert_eq!(s["client_ip"], "127.0.0.1");
    assert_eq!(s["agent_id"], "m");

    let r = fx
        .json_req(Method::POST, &url, None, &json!({"task_id": "m:v1"}))
        .await;
    assert_eq!(r.status, 401);
    let r = fx
        .json_req(Method::POST, &url, Some("agent-key"), &json!({}))
        .await;
    assert_eq!(r.status, 422, "missing task_id: {}", r.text);

    let hb = format!("{}/api/v1/pipe/session/{m}/heartbeat", fx.main);
    let r = fx
        .json_req(
            Method::POST,
            &hb,
            Some("agent-key"),
            &json!({"can_realtime": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(
        r.body["message"],
        format!("Session {m} heartbeat updated successfully")
    );
    assert_eq!(r.body["role"], "leader");
    assert_eq!(r.body["is_leader"], true);
    assert_eq!(r.body["commands"], json!([]));
    assert_eq!(fx.session(&m).await.unwrap()["can_realtime"], true);
    let r = fx.json_req(Method::POST, &hb, None, &json!({})).await;
    assert_eq!(r.status, 401);

    let del = format!("{}/api/v1/pipe/session/{m}", fx.main);
    assert_eq!(fx.send(Method::DELETE, &del, None, None).await.status, 401);
    let r = fx.send(Method::DELETE, &del, Some("agent-key"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"status": "ok", "message": format!("Session {m} terminated successfully")})
    );
    let r = fx.send(Method::DELETE, &del, Some("agent-key"), None).await;
    assert_eq!(
        r.body,
        json!({"status": "ok", "message": format!("Session {m} already terminated")})
    );
    let r = fx
        .json_req(Method::POST, &hb, Some("agent-key"), &json!({}))
        .await;
    assert_eq!(r.status, 419);
    assert_eq!(r.body["detail"], format!("Session {m} not found"));
}

/// W§3.2: an invalid or absent heartbeat body means `can_realtime=false` (not an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s03_heartbeat_without_valid_body() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    fx.hb(&a, true).await;
    let url = format!("{}/api/v1/pipe/session/{a}/heartbeat", fx.recv);
    let r = fx
        .send(
            Method::POST,
            &url,
            Some("agent-key"),
            Some(b"not json".to_vec()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"], "leader");
    assert_eq!(fx.session(&a).await.unwrap()["can_realtime"], false);
    fx.hb(&a, true).await;
    let r = fx.send(Method::POST, &url, Some("agent-key"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fx.session(&a).await.unwrap()["can_realtime"], false);
}

/// W§4.3: `config_report` batches cache metadata and ignore their events; `insert` = `update`;
/// an event with no rows is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s13_batch_kinds_config_report_and_insert() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let mut b = Fx::batch(
        "update",
        "realtime",
        vec![row("/cfg.txt", now())],
        false,
        None,
    );
    b["source_type"] = json!("config_report");
    b["metadata"] = json!({"filename": "default.yaml", "config_yaml": "pipes: {}"});
    let r = fx.ingest(&a, &b).await;
    assert_eq!(r.status, 200, "{}", r.text);
    fx.settle("v1").await;
    assert!(
        fx.node("/cfg.txt").await.is_none(),
        "config_report events were applied"
    );
    fx.push(
        &a,
        "insert",
        "realtime",
        vec![row("/ins.txt", now())],
        false,
        None,
    )
    .await;
    assert!(fx.node("/ins.txt").await.is_some());
    let r = fx.push(&a, "update", "realtime", vec![], false, None).await;
    assert_eq!(r["count"], 1);
    assert_eq!(fx.stats().await["item_count"], 2);
}

/// L4/L5 via expiry: a silent leader expires and the heartbeating follower is promoted;
/// readiness re-locks until the new leader's snapshot ends (§11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s06_expired_leader_promotes_follower() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    fx.ready(&a).await;
    let b = fx.open("b:v1").await;
    let _kb = fx.keepalive(&b);
    assert_eq!(fx.q("stats").await.status, 200);
    let promoted = eventually!(5.5, {
        let l = fx.sessions().await;
        l.len() == 1 && l[0]["session_id"] == b.as_str() && l[0]["role"] == "leader"
    });
    assert!(promoted, "{:?}", fx.sessions().await);
    assert_eq!(fx.hb(&b, true).await["role"], "leader");
    let r = fx.q("stats").await;
    assert_eq!(r.status, 503, "{}", r.text);
    fx.ready(&b).await;
    assert_eq!(fx.q("stats").await.status, 200);
}

/// W§3.1: a zero hint means "no hint" (pipe default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s09_zero_hint_uses_pipe_default() {
    let fx = Fx::f0().await;
    let r = fx
        .open_raw(
            Some("agent-key"),
            &json!({"task_id": "z:v1", "session_timeout_seconds": 0, "source_type": "fs"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["session_timeout_seconds"], 3);
    // v2 has no session_timeout_seconds: default 30.
    let (_, body) = fx.open_key_full("agent-key-2", "z:v2").await;
    assert_eq!(body["session_timeout_seconds"], 30);
    assert_eq!(body["audit_interval_sec"].as_f64(), Some(43200.0));
    assert_eq!(body["sentinel_interval_sec"].as_f64(), Some(120.0));
}

/// W§10: pipe info routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s01_pipe_info_reports_sessions_and_leader() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let _b = fx.open("b:v1").await;
    fx.rt(&a, vec![row("/x.txt", now())]).await;
    let r = fx.get_main("/api/v1/pipe/pipes/v1", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = &r.body;
    assert_eq!(p["id"], "v1");
    assert_eq!(p["view_id"], "v1");
    assert_eq!(p["active_sessions"], 2, "{p}");
    // Issue 9 item 6: a session id is shown only to a key of the pipe (or of its views).
    assert_eq!(p["leader_session"], serde_json::Value::Null, "{p}");
    for key in ["agent-key", "qk1"] {
        let r = fx.get_main("/api/v1/pipe/pipes/v1", Some(key)).await;
        assert_eq!(r.body["leader_session"], a.as_str(), "{key}: {}", r.text);
    }
    assert_eq!(p["queue_size"], 0);
    assert!(p["view_handlers"].is_array(), "{p}");
    for k in [
        "events_received",
        "events_processed",
        "sessions_created",
        "sessions_closed",
        "errors",
    ] {
        assert!(p["statistics"][k].is_u64(), "statistics.{k}: {p}");
    }
    assert_eq!(p["statistics"]["sessions_created"], 2);
    let r = fx.get_main("/api/v1/pipe/stats", Some("agent-key")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body["events_received"].as_u64().unwrap() >= 1,
        "{}",
        r.text
    );
    assert!(
        r.body["events_processed"].as_u64().unwrap() >= 1,
        "{}",
        r.text
    );
    assert_eq!(fx.get_main("/api/v1/pipe/stats", None).await.status, 401);
}

/// L2 under concurrency: many simultaneous opens elect exactly one leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s14_concurrent_opens_elect_one_leader() {
    let fx = std::sync::Arc::new(Fx::f0().await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let fx = fx.clone();
        tasks.push(tokio::spawn(async move {
            fx.open_raw(Some("agent-key"), &json!({"task_id": format!("c{i}:v1")}))
                .await
        }));
    }
    let mut leaders = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200);
        if r.body["role"] == "leader" {
            leaders += 1;
        }
    }
    assert_eq!(leaders, 1);
    let list = fx.sessions().await;
    assert_eq!(list.len(), 16);
    assert_eq!(list.iter().filter(|s| s["role"] == "leader").count(), 1);
}

/// W§3.1/§4.1: unknown fields are ignored (the reference's models are not strict); agents send
/// `source_type`, `event_id`, `timestamp`, `metadata`, and rows may carry extra keys or nulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s13_wire_tolerance_unknown_fields_and_nulls() {
    let fx = Fx::f0().await;
    let r = fx
        .open_raw(
            Some("agent-key"),
            &json!({"task_id": "a:v1", "source_type": "fs", "future_field": {"x": 1},
                    "client_info": {"source_uri": null, "hostname": "h"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = r.body["session_id"].as_str().unwrap().to_string();
    fx.ready(&a).await;
    let batch = json!({
        "session_id": "ignored",
        "events": [{"event_id": null, "timestamp": 1706000000.123, "event_type": "update",
                    "fields": ["path", "size"], "index": 1706000000123_i64, "event_schema": "fs",
                    "table": "files", "message_source": "realtime", "metadata": {},
                    "rows": [
                        {"path": "/extra.txt", "modified_time": 1706000000, "size": 5,
                         "is_directory": false, "inode": 42, "owner": "root", "file_name": "extra.txt",
                         "created_time": 1706000000.5},
                        {"path": "/nulls.txt", "size": null, "modified_time": null,
                         "is_directory": null, "created_time": null, "is_atomic_write": null}
                    ]}],
        "source_type": "message", "is_end": false, "metadata": null, "extra": true
    });
    let r = fx.ingest(&a, &batch).await;
    assert_eq!(r.status, 200, "{}", r.text);
    fx.settle("v1").await;
    let n = fx
        .node("/extra.txt")
        .await
        .expect("row with extra keys applied");
    assert_eq!(n["size"], 5);
    assert_eq!(n["modified_time"].as_f64(), Some(1706000000.0));
    let n = fx.node("/nulls.txt").await.expect("row with nulls applied");
    assert_eq!(n["size"], 0);
    assert_eq!(n["content_type"], "file");
    // Events of another schema are not routed to fs views.
    let mut other = Fx::batch(
        "update",
        "realtime",
        vec![row("/db.txt", now())],
        false,
        None,
    );
    other["events"][0]["event_schema"] = json!("db");
    assert_eq!(fx.ingest(&a, &other).await.status, 200);
    fx.settle("v1").await;
    assert!(fx.node("/db.txt").await.is_none());
}

/// W§4.3: explicit close clears the session→pipe map: later ingest is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s12_ingest_after_close_is_404_and_reopen_leads() {
    let fx = Fx::f0().await;
    let a = fx.open("a:v1").await;
    fx.close(&a).await;
    let r = fx
        .ingest(
            &a,
            &Fx::batch("update", "realtime", vec![row("/x", now())], false, None),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(
        r.body["detail"],
        format!("Session {a} not found or expired")
    );
    let (_, body) = fx.open_full("a:v1").await;
    assert_eq!(body["role"], "leader");
}
