//! The `fusion` sender against a scripted HTTP server on 127.0.0.1: request shapes, the
//! `X-API-Key` header, keep-alive, and the mapping of statuses onto `SendError`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fustor_core::wire::{CreateSessionRequest, HeartbeatRequest, SentinelFeedback};
use fustor_core::{Event, EventBatch, EventType, FsRow, MessageSource};
use fustor_transport_http::{FusionSender, SendError, Sender};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    api_key: Option<String>,
    content_encoding: Option<String>,
    body: String,
    conn: usize,
}

#[derive(Default)]
struct Script {
    replies: VecDeque<(u16, String)>,
    seen: Vec<Seen>,
}

/// Answers requests in order with the scripted `(status, body)` replies.
fn server(replies: Vec<(u16, Value)>) -> (String, Arc<Mutex<Script>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(Mutex::new(Script {
        replies: replies
            .into_iter()
            .map(|(s, b)| (s, b.to_string()))
            .collect(),
        seen: Vec::new(),
    }));
    let sc = script.clone();
    std::thread::spawn(move || {
        for (conn, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let sc = sc.clone();
            std::thread::spawn(move || serve(stream, conn, sc));
        }
    });
    (format!("http://{addr}"), script)
}

fn serve(stream: TcpStream, conn: usize, script: Arc<Mutex<Script>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let (mut len, mut api_key, mut enc) = (0usize, None, None);
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            let v = v.trim().to_string();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.parse().unwrap(),
                "x-api-key" => api_key = Some(v),
                "content-encoding" => enc = Some(v),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let (status, reply) = {
            let mut s = script.lock().unwrap();
            s.seen.push(Seen {
                method,
                path,
                api_key,
                content_encoding: enc,
                body: String::from_utf8(body).unwrap(),
                conn,
            });
            s.replies
                .pop_front()
                .unwrap_or((500, r#"{"detail":"unscripted"}"#.to_string()))
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn sender(base: &str) -> FusionSender {
    FusionSender::new(base, Some("agent-key"), Duration::from_secs(5)).unwrap()
}

fn batch() -> EventBatch {
    EventBatch {
        session_id: None,
        events: vec![Event::fs(
            EventType::Update,
            MessageSource::Realtime,
            vec![FsRow::upsert("/a.txt", 1.5, 3, false)],
        )],
        source_type: "message".into(),
        is_end: false,
        metadata: None,
    }
}

#[tokio::test]
async fn session_lifecycle_requests_have_the_reference_shape() {
    let (base, script) = server(vec![
        (
            200,
            json!({"session_id":"s-1","role":"leader","session_timeout_seconds":3,
                   "audit_interval_sec":15.0,"sentinel_interval_sec":5.0,"message":"ok"}),
        ),
        (
            200,
            json!({"status":"ok","role":"follower","message":null,"can_realtime":null,
                   "commands":[{"type":"scan","path":"/d","job_id":"1a2b3c4d"}]}),
        ),
        (200, json!({"status":"ok","count":1})),
        (200, json!({"status":"audit_ended","drivers_handled":1})),
        (
            200,
            json!({"type":"suspect_check","paths":["/a.txt"],"view_id":"v1"}),
        ),
        (200, json!({"status":"processed","drivers_updated":1})),
        (200, json!({"status":"terminated","session_id":"s-1"})),
    ]);
    let s = sender(&format!("{base}/"));
    let created = s
        .create_session(&CreateSessionRequest {
            task_id: "a:p".into(),
            client_info: Some(json!({"source_uri": "/data"}).as_object().unwrap().clone()),
            session_timeout_seconds: None,
            source_type: Some("fs".into()),
        })
        .await
        .unwrap();
    assert_eq!(created.session_id, "s-1");
    assert_eq!(created.audit_interval_sec, Some(15.0));
    let hb = s
        .heartbeat(
            "s-1",
            &HeartbeatRequest {
                can_realtime: true,
                agent_status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(hb.role.as_deref(), Some("follower"));
    assert_eq!(hb.commands.len(), 1);
    s.send_batch("s-1", &batch()).await.unwrap();
    s.audit_end().await.unwrap();
    let tasks = s.sentinel_tasks().await.unwrap();
    assert_eq!(tasks.paths, vec!["/a.txt".to_string()]);
    s.sentinel_feedback(&SentinelFeedback {
        kind: "suspect_update".into(),
        updates: vec![],
    })
    .await
    .unwrap();
    s.close_session("s-1").await.unwrap();

    let seen = script.lock().unwrap().seen.clone();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("POST", "/api/v1/pipe/session/"),
            ("POST", "/api/v1/pipe/session/s-1/heartbeat"),
            ("POST", "/api/v1/pipe/ingest/s-1/events"),
            ("POST", "/api/v1/pipe/consistency/audit/end"),
            ("GET", "/api/v1/pipe/consistency/sentinel/tasks"),
            ("POST", "/api/v1/pipe/consistency/sentinel/feedback"),
            ("DELETE", "/api/v1/pipe/session/s-1"),
        ]
    );
    assert!(
        seen.iter()
            .all(|r| r.api_key.as_deref() == Some("agent-key"))
    );
    assert!(seen.iter().all(|r| r.content_encoding.is_none()));
    // Keep-alive: one connection carries every request.
    assert!(seen.iter().all(|r| r.conn == seen[0].conn), "{seen:?}");
    let create: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        create,
        json!({"task_id":"a:p","client_info":{"source_uri":"/data"},"source_type":"fs"})
    );
    let ingest: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(ingest["source_type"], "message");
    assert_eq!(ingest["events"][0]["rows"][0]["path"], "/a.txt");
    assert_eq!(ingest["events"][0]["event_type"], "update");
}

#[tokio::test]
async fn statuses_map_onto_error_kinds() {
    let (base, _script) = server(vec![
        (419, json!({"detail":"Session obsoleted"})),
        (200, json!({"status":"error","message":"boom"})),
        (401, json!({"detail":"Invalid API key"})),
        (413, json!({"detail":"too large"})),
        (500, json!({"detail":"Failed to process events"})),
        (200, json!({"unexpected": true})),
        (404, json!({"detail":"Session s-9 not found or expired"})),
        (404, json!({"detail":"Not Found"})),
    ]);
    let s = sender(&base);
    let hb = HeartbeatRequest::default();
    let e = s.heartbeat("x", &hb).await.unwrap_err();
    assert_eq!(e, SendError::SessionObsolete("Session obsoleted".into()));
    let e = s.heartbeat("x", &hb).await.unwrap_err();
    assert_eq!(e, SendError::SessionObsolete("boom".into()));
    let e = s
        .create_session(&CreateSessionRequest {
            task_id: "a:p".into(),
            client_info: None,
            session_timeout_seconds: None,
            source_type: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(&e, SendError::Unauthorized { detail, .. } if detail == "Invalid API key"));
    assert!(e.to_string().contains("api_keys"), "{e}");
    let e = s.send_batch("x", &batch()).await.unwrap_err();
    assert!(matches!(e, SendError::TooLarge { .. }), "{e:?}");
    let e = s.send_batch("x", &batch()).await.unwrap_err();
    assert!(matches!(e, SendError::Status { status: 500, .. }), "{e:?}");
    let e = s.heartbeat("x", &hb).await.unwrap_err();
    assert!(matches!(e, SendError::Decode { .. }), "{e:?}");
    // Ingest into a session Fusion no longer knows: obsolete; a plain 404 is not.
    let e = s.send_batch("s-9", &batch()).await.unwrap_err();
    assert!(e.is_obsolete(), "{e:?}");
    let e = s.send_batch("s-9", &batch()).await.unwrap_err();
    assert!(matches!(e, SendError::Status { status: 404, .. }), "{e:?}");
}

#[tokio::test]
async fn refused_connection_is_a_connection_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = sender(&format!("http://127.0.0.1:{port}"));
    let e = s.audit_end().await.unwrap_err();
    assert!(e.is_connection(), "{e:?}");
}

/// Undecodable name bytes go out as `\udcXX` only to a Fusion whose session answer says it takes
/// them (ours); to one that does not (the Python Fusion 0.8.x answers 500 to listings holding
/// lone surrogates) they go out as `?`, as the Python agent sends them.
#[tokio::test]
async fn undecodable_names_follow_what_the_receiver_takes() {
    let session = |lossless: bool| {
        let mut v = json!({"session_id":"s-1","role":"leader","session_timeout_seconds":30});
        if lossless {
            v["lossless_names"] = json!(true);
        }
        v
    };
    let ok = json!({"status":"ok"});
    let (base, script) = server(vec![
        (200, session(false)),
        (200, ok.clone()),
        (200, session(true)),
        (200, ok.clone()),
        (200, session(false)),
        (200, ok),
    ]);
    let s = sender(&base);
    let name = fustor_core::lossless::escape(b"/caf\xe9.txt").into_owned();
    let batch = EventBatch {
        events: vec![Event::fs(
            EventType::Update,
            MessageSource::Realtime,
            vec![FsRow::delete(name)],
        )],
        ..batch()
    };
    let req = CreateSessionRequest {
        task_id: "a:p".into(),
        client_info: None,
        session_timeout_seconds: None,
        source_type: None,
    };
    for _ in 0..3 {
        s.create_session(&req).await.unwrap();
        s.send_batch("s-1", &batch).await.unwrap();
    }
    let seen = script.lock().unwrap().seen.clone();
    let bodies: Vec<&str> = seen
        .iter()
        .filter(|r| r.path.ends_with("/events"))
        .map(|r| r.body.as_str())
        .collect();
    assert_eq!(bodies.len(), 3);
    assert!(bodies[0].contains(r#""/caf?.txt""#), "{}", bodies[0]);
    assert!(bodies[1].contains(r#""/caf\udce9.txt""#), "{}", bodies[1]);
    assert!(bodies[2].contains(r#""/caf?.txt""#), "{}", bodies[2]);
}
