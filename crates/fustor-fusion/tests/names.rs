//! Issue 9 item 2 over HTTP: names that are not valid UTF-8, as a PEP 383 agent sends them
//! (`"caf\udce9.txt"`), are two nodes; every answer writes them back with the same escapes and
//! every path parameter names them with percent-encoded bytes (`%E9`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn latin1_names_are_distinct_nodes_in_every_route() {
    let fx = Fx::f0().await;
    let a = fx.ready_leader().await;
    let m = now() - 3600.0;
    let body = format!(
        r#"{{"events":[{{"event_type":"update","event_schema":"fs","table":"files","fields":[],
        "message_source":"realtime","index":-1,"rows":[
          {{"path":"/d\udcff","file_name":"d\udcff","size":4096,"modified_time":{m},"is_directory":true}},
          {{"path":"/d\udcff/caf\udce9.txt","file_name":"caf\udce9.txt","size":1,"modified_time":{m},"is_directory":false}},
          {{"path":"/d\udcff/caf\udce8.txt","file_name":"caf\udce8.txt","size":2,"modified_time":{m},"is_directory":false}}]}}],
        "source_type":"message"}}"#
    );
    let r = fx.ingest_raw(&a, body.into_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    fx.settle("v1").await;

    let e9 = fx.q("tree?path=/d%FF/caf%E9.txt&max_depth=0").await;
    assert_eq!(e9.status, 200, "{}", e9.text);
    assert!(
        e9.text.contains(r#""path":"/d\udcff/caf\udce9.txt""#),
        "{}",
        e9.text
    );
    assert!(e9.text.contains(r#""size":1"#), "{}", e9.text);
    let e8 = fx.q("tree?path=/d%FF/caf%E8.txt&max_depth=0").await;
    assert_eq!(e8.status, 200, "{}", e8.text);
    assert!(e8.text.contains(r#""size":2"#), "{}", e8.text);
    // U+FFFD is another name, not a wildcard for the undecodable bytes.
    let fffd = fx.q("tree?path=/d%FF/caf%EF%BF%BD.txt&max_depth=0").await;
    assert_eq!(fffd.status, 404, "{}", fffd.text);

    let dir = fx.q("tree?path=/d%FF").await;
    assert!(
        dir.text.contains(r#""name":"caf\udce9.txt""#),
        "{}",
        dir.text
    );
    assert!(
        dir.text.contains(r#""name":"caf\udce8.txt""#),
        "{}",
        dir.text
    );
    // (`stats` names the oldest directory, `/d\udcff`: read as text, not as a `Value`.)
    let all = fx.q("stats").await;
    assert!(all.text.contains(r#""total_files":2"#), "{}", all.text);

    let meta = fx.q("metadata?path=/d%FF/caf%E8.txt").await;
    assert_eq!(meta.status, 200, "{}", meta.text);
    assert!(
        meta.text.contains(r#""path":"/d\udcff/caf\udce8.txt""#),
        "{}",
        meta.text
    );
    let stats = fx.q("stats?path=/d%FF").await;
    assert!(
        stats.text.contains(r#""path":"/d\udcff""#),
        "{}",
        stats.text
    );
    assert!(stats.text.contains(r#""file_count":2"#), "{}", stats.text);
    let found = fx.q("search?pattern=caf%E9*").await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(found.text.contains(r"caf\udce9.txt"), "{}", found.text);
    assert!(!found.text.contains(r"caf\udce8.txt"), "{}", found.text);

    // The view API's suspect update names the file the same way.
    let put = fx
        .send(
            Method::PUT,
            &format!("{}/api/v1/views/v1/suspect-list", fx.main),
            Some("qk1"),
            Some(
                format!(r#"{{"updates":[{{"path":"/d\udcff/caf\udce9.txt","mtime":{m}}}]}}"#)
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);

    // A delete of one removes only that one.
    let del = r#"{"events":[{"event_type":"delete","event_schema":"fs","table":"files","fields":[],
        "message_source":"realtime","index":-1,"rows":[{"path":"/d\udcff/caf\udce9.txt"}]}],
        "source_type":"message"}"#;
    let r = fx.ingest_raw(&a, del.as_bytes().to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    fx.settle("v1").await;
    assert_eq!(
        fx.q("tree?path=/d%FF/caf%E9.txt&max_depth=0").await.status,
        404
    );
    assert_eq!(
        fx.q("tree?path=/d%FF/caf%E8.txt&max_depth=0").await.status,
        200
    );
}
