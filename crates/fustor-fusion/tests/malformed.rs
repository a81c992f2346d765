//! Malformed input on every agent-facing and query endpoint (pitfalls.md 4, W§4.1, query-api §7):
//! each request gets a 4xx, the process keeps answering and the view is unchanged.
//!
//! Intentional Rust differences tested here: rows with a `..` component, NUL bytes or paths over
//! 4096 bytes refuse the whole batch with 422; bodies over `limits.max_body_bytes` and batches
//! over `limits.max_rows_per_batch` get 413; the receiver checks the key on every agent route.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const TOP: &str = "limits: {max_body_bytes: 20000, max_rows_per_batch: 10}";

/// (what, body, expected status; `None` = any 4xx)
type BodyCase<'a> = (&'a str, Option<Vec<u8>>, Option<u16>);

struct Case {
    what: String,
    resp: Resp,
    want: Option<u16>,
}

fn check(cases: &[Case]) {
    let mut bad = Vec::new();
    for c in cases {
        let ok = match c.want {
            Some(w) => c.resp.status == w,
            None => (400..500).contains(&c.resp.status),
        };
        if !ok {
            bad.push(format!(
                "{}: got {} (want {}) {}",
                c.what,
                c.resp.status,
                c.want.map_or("4xx".to_string(), |w| w.to_string()),
                c.resp.text.chars().take(200).collect::<String>()
            ));
        }
    }
    assert!(bad.is_empty(), "unexpected answers:\n{}", bad.join("\n"));
}

fn ev_with_row(r: Value) -> Value {
    json!({"events": [{"event_type": "update", "event_schema": "fs", "table": "files",
                       "fields": [], "rows": [r], "message_source": "realtime", "index": -1}],
           "source_type": "message"})
}

/// A cold, settled view: the tree must not change over time by itself.
async fn given() -> (Fx, String, KeepAlive, Value) {
    let fx = Fx::with_yaml(&f0_yaml("", TOP)).await;
    let a = fx.ready_leader().await;
    let ka = fx.keepalive(&a);
    let m = now() - 3600.0;
    fx.rt(&a, vec![row("/keep/a.txt", m), row("/keep/b.txt", m)])
        .await;
    let before = fx.q("tree").await;
    assert_eq!(before.status, 200);
    (fx, a, ka, before.body)
}

async fn unchanged(fx: &Fx, a: &str, before: &Value) {
    fx.settle("v1").await;
    let root = fx.get_main("/", None).await;
    assert_eq!(root.status, 200, "process no longer answers");
    let after = fx.q("tree").await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(&after.body, before, "the view changed");
    let st = fx.stats().await;
    assert_eq!(st["item_count"], 4);
    assert_eq!(fx.sessions().await.len(), 1, "sessions changed");
    assert!(fx.blind().await["additions_count"] == 0);
    // Still fully functional for a well-formed batch.
    fx.rt(a, vec![row("/after.txt", now() - 3600.0)]).await;
    assert!(fx.node("/after.txt").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_session_and_heartbeat_requests() {
    let (fx, a, _ka, before) = given().await;
    let url = format!("{}/api/v1/pipe/session/", fx.recv);
    let raw = |b: &[u8]| Some(b.to_vec());
    let mut cases = Vec::new();
    let bodies: Vec<BodyCase> = vec![
        ("invalid json", raw(b"{\"task_id\": "), Some(422)),
        ("wrong type", raw(br#"{"task_id": 5}"#), Some(422)),
        ("null task_id", raw(br#"{"task_id": null}"#), Some(422)),
        ("missing task_id", raw(b"{}"), Some(422)),
        ("array body", raw(b"[]"), Some(422)),
        ("empty body", None, Some(422)),
        ("non-utf8", raw(b"{\"task_id\": \"\xff\xfe\"}"), Some(422)),
        (
            "timeout wrong type",
            raw(br#"{"task_id": "x", "session_timeout_seconds": "long"}"#),
            Some(422),
        ),
        (
            "huge body",
            Some(json_body(
                &json!({"task_id": "x", "client_info": {"pad": "a".repeat(30000)}}),
            )),
            Some(413),
        ),
    ];
    for (what, body, want) in bodies {
        let resp = fx.send(Method::POST, &url, Some("agent-key"), body).await;
        cases.push(Case {
            what: format!("session create: {what}"),
            resp,
            want,
        });
    }
    // Main-port create.
    let murl = format!("{}/api/v1/pipe/session/", fx.main);
    for (what, body) in [
        ("invalid json", b"{".to_vec()),
        ("wrong type", br#"{"task_id": []}"#.to_vec()),
        ("non-utf8", b"\xff\xfe\xfd".to_vec()),
    ] {
        let resp = fx
            .send(Method::POST, &murl, Some("agent-key"), Some(body))
            .await;
        cases.push(Case {
            what: format!("main session create: {what}"),
            resp,
            want: Some(422),
        });
    }
    // Heartbeats: unknown session ⇒ 419; oversized ⇒ 413.
    let resp = fx.hb_raw("nope", true).await;
    cases.push(Case {
        what: "heartbeat unknown session".into(),
        resp,
        want: Some(419),
    });
    let resp = fx
        .send(
            Method::POST,
            &format!("{}/api/v1/pipe/session/{a}/heartbeat", fx.recv),
            Some("agent-key"),
            Some(json_body(
                &json!({"can_realtime": true, "agent_status": {"pad": "a".repeat(30000)}}),
            )),
        )
        .await;
    cases.push(Case {
        what: "heartbeat huge body".into(),
        resp,
        want: Some(413),
    });
    // A header value that is not valid UTF-8 is no key at all.
    let r =
        fx.c.post(&url)
            .header(
                "X-API-Key",
                reqwest::header::HeaderValue::from_bytes(b"agent-key\xff").unwrap(),
            )
            .body(r#"{"task_id": "x"}"#)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    check(&cases);
    unchanged(&fx, &a, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ingest_batches() {
    let (fx, a, _ka, before) = given().await;
    let m = now() - 3600.0;
    let long = format!("/{}", "p".repeat(5000));
    let mut nested = String::from(r#"{"events": "#);
    nested.push_str(&"[".repeat(5000));
    nested.push_str(&"]".repeat(5000));
    nested.push('}');
    let b = |v: Value| Some(json_body(&v));
    let bodies: Vec<BodyCase> = vec![
        ("invalid json", Some(b"{\"events\": [".to_vec()), Some(422)),
        ("empty body", None, Some(422)),
        ("non-utf8 bytes", Some(b"{\"events\": [\xff\xfe]}".to_vec()), Some(422)),
        (
            "non-utf8 inside a path",
            Some(
                [
                    br#"{"events": [{"event_type": "update", "event_schema": "fs", "table": "files", "fields": [], "rows": [{"path": "/bad"#.as_slice(),
                    b"\xff\xfe".as_slice(),
                    br#".txt", "modified_time": 1.0}], "message_source": "realtime", "index": -1}]}"#.as_slice(),
                ]
                .concat(),
            ),
            Some(422),
        ),
        ("lone surrogate", Some(br#"{"events": [{"event_type": "update", "event_schema": "fs", "table": "files", "fields": [], "rows": [{"path": "/s\ud800.txt"}], "message_source": "realtime", "index": -1}]}"#.to_vec()), Some(422)),
        ("missing events", b(json!({"source_type": "message"})), Some(422)),
        ("events not a list", b(json!({"events": 5})), Some(422)),
        ("event not an object", b(json!({"events": [5]})), Some(422)),
        ("unknown event shape", b(json!({"events": [{"foo": 1}]})), Some(422)),
        ("rows not a list", b(json!({"events": [{"event_type": "update", "event_schema": "fs", "table": "files", "fields": [], "rows": "x", "message_source": "realtime", "index": -1}]})), Some(422)),
        ("row not an object", b(ev_with_row(json!(5))), Some(422)),
        ("size \"big\"", b(ev_with_row(with(row("/t1.txt", m), json!({"size": "big"})))), Some(422)),
        ("modified_time string", b(ev_with_row(with(row("/t2.txt", m), json!({"modified_time": "yesterday"})))), Some(422)),
        ("is_directory string", b(ev_with_row(with(row("/t3.txt", m), json!({"is_directory": "yes"})))), Some(422)),
        ("path number", b(ev_with_row(json!({"path": 5, "modified_time": m}))), Some(422)),
        ("parent_mtime string", b(ev_with_row(with(row("/t4.txt", m), json!({"parent_mtime": "x"})))), Some(422)),
        ("dotdot path", b(ev_with_row(row("/keep/../etc/passwd", m))), Some(422)),
        ("dotdot relative", b(ev_with_row(row("../x.txt", m))), Some(422)),
        ("dotdot parent_path", b(ev_with_row(with(row("/t5.txt", m), json!({"parent_path": "/a/../..", "parent_mtime": m})))), Some(422)),
        ("NUL byte", b(ev_with_row(row("/nul\u{0}.txt", m))), Some(422)),
        ("path over 4096 bytes", b(ev_with_row(row(&long, m))), Some(422)),
        ("event_type bogus", b(json!({"events": [{"event_type": "bogus", "event_schema": "fs", "table": "files", "fields": [], "rows": [row("/t6.txt", m)], "message_source": "realtime", "index": -1}]})), Some(422)),
        ("message_source bogus", b(json!({"events": [{"event_type": "update", "event_schema": "fs", "table": "files", "fields": [], "rows": [row("/t7.txt", m)], "message_source": "bogus", "index": -1}]})), Some(422)),
        ("is_end string", b(json!({"events": [], "source_type": "snapshot", "is_end": "yes"})), Some(422)),
        ("deep nesting", Some(nested.into_bytes()), Some(422)),
        ("huge body", b(ev_with_row(with(row("/t8.txt", m), json!({"pad": "a".repeat(30000)})))), Some(413)),
        (
            "too many rows",
            b(json!({"events": [{"event_type": "update", "event_schema": "fs", "table": "files", "fields": [],
                                  "rows": (0..11).map(|i| row(&format!("/r{i}.txt"), m)).collect::<Vec<_>>(),
                                  "message_source": "realtime", "index": -1}]})),
            Some(413),
        ),
    ];
    let mut cases = Vec::new();
    for (what, body, want) in bodies {
        let resp = fx
            .send(
                Method::POST,
                &format!("{}/api/v1/pipe/ingest/{a}/events", fx.recv),
                Some("agent-key"),
                body,
            )
            .await;
        cases.push(Case {
            what: format!("ingest: {what}"),
            resp,
            want,
        });
    }
    let resp = fx.ingest("nope", &ev_with_row(row("/t9.txt", m))).await;
    cases.push(Case {
        what: "ingest: unknown session".into(),
        resp,
        want: Some(404),
    });
    check(&cases);
    unchanged(&fx, &a, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_consistency_and_query_requests() {
    let (fx, a, _ka, before) = given().await;
    let mut cases = Vec::new();
    let fb = format!("{}/api/v1/pipe/consistency/sentinel/feedback", fx.recv);
    for (what, body, want) in [
        ("invalid json", b"{\"type\":".to_vec(), Some(422)),
        ("non-utf8", b"{\"type\": \"\xff\"}".to_vec(), Some(422)),
        (
            "updates not a list",
            json_body(&json!({"type": "suspect_update", "updates": 5})),
            Some(422),
        ),
        (
            "update wrong types",
            json_body(&json!({"type": "suspect_update", "updates": [{"path": 5, "mtime": "x"}]})),
            Some(422),
        ),
        (
            "huge",
            json_body(&json!({"type": "suspect_update", "updates": [], "pad": "a".repeat(30000)})),
            Some(413),
        ),
    ] {
        let resp = fx
            .send(Method::POST, &fb, Some("agent-key"), Some(body))
            .await;
        cases.push(Case {
            what: format!("sentinel feedback: {what}"),
            resp,
            want,
        });
    }
    let resp = fx
        .json_req(
            Method::POST,
            &fb,
            None,
            &json!({"type": "suspect_update", "updates": []}),
        )
        .await;
    cases.push(Case {
        what: "sentinel feedback without key".into(),
        resp,
        want: Some(401),
    });
    for rest in [
        "tree?max_depth=abc",
        "tree?recursive=maybe",
        "tree?only_path=2",
        "tree?on_demand_scan=perhaps",
        "search",
        "tree?path=%FF%FE",
        "jobs/zzzzzzzz",
        "tree?path=/nope",
    ] {
        let resp = fx.q(rest).await;
        let want = match rest {
            "jobs/zzzzzzzz" | "tree?path=/nope" => Some(404),
            r if r.contains("%FF") => None,
            _ => Some(422),
        };
        cases.push(Case {
            what: format!("query {rest}"),
            resp,
            want,
        });
    }
    let put = format!("{}/api/v1/views/v1/suspect-list", fx.main);
    for (what, body, want) in [
        ("invalid json", b"{".to_vec(), Some(422)),
        ("non-utf8", b"\xff".to_vec(), Some(422)),
        (
            "updates not a list",
            json_body(&json!({"updates": 5})),
            Some(422),
        ),
        (
            "update wrong types",
            json_body(&json!({"updates": [{"path": "/keep/a.txt", "mtime": "new"}]})),
            Some(422),
        ),
        (
            "huge",
            json_body(&json!({"updates": [], "pad": "a".repeat(30000)})),
            Some(413),
        ),
    ] {
        let resp = fx.send(Method::PUT, &put, Some("qk1"), Some(body)).await;
        cases.push(Case {
            what: format!("PUT suspect-list: {what}"),
            resp,
            want,
        });
    }
    // Legacy main-port route: invalid JSON is 422, malformed events are skipped one by one.
    let legacy = format!("{}/api/v1/pipe/{a}/events", fx.main);
    let resp = fx
        .send(
            Method::POST,
            &legacy,
            Some("agent-key"),
            Some(b"{".to_vec()),
        )
        .await;
    cases.push(Case {
        what: "legacy ingest invalid json".into(),
        resp,
        want: Some(422),
    });
    check(&cases);
    let r = fx
        .json_req(
            Method::POST,
            &legacy,
            Some("agent-key"),
            &json!({"events": [{"foo": 1}, ev_with_row(with(row("/leg.txt", 1.0), json!({"size": "big"})))["events"][0]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = fx
        .json_req(
            Method::POST,
            &format!("{}/api/v1/pipe/nope/events", fx.main),
            Some("agent-key"),
            &json!({"events": []}),
        )
        .await;
    assert_eq!(r.body, json!({"success": false}), "{}", r.text);
    unchanged(&fx, &a, &before).await;
}

/// Brief: non-UTF-8 bytes anywhere in a request ⇒ 4xx. A percent-encoded query value that is not
/// UTF-8 cannot name any path, so it is refused rather than decoded lossily.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_non_utf8_query_values() {
    let (fx, a, _ka, before) = given().await;
    let mut cases = Vec::new();
    for rest in ["tree?path=%FF%FE", "tree?path=/keep&max_depth=%FF"] {
        let resp = fx.q(rest).await;
        cases.push(Case {
            what: format!("query {rest}"),
            resp,
            want: None,
        });
    }
    // Issue 9: a path or pattern keeps undecodable bytes (a Latin-1 name) instead of a 422.
    let resp = fx.q("search?pattern=%FF").await;
    cases.push(Case {
        what: "query search?pattern=%FF".into(),
        resp,
        want: Some(200),
    });
    check(&cases);
    unchanged(&fx, &a, &before).await;
}
