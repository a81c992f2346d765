//! The OpenAPI document stays in sync with the routes: every query route the main app registers
//! is documented, every documented route is registered, and the server serves the document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use fustor_fusion::daemon::{FusionServer, Overrides};
use serde_json::Value;

/// Every router source: all of `src/http/`, so a new route file cannot slip past the check.
fn sources() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    assert!(files.len() > 5, "{}", dir.display());
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}
const DOC: &str = include_str!("../api/openapi.json");

/// Agent-facing routes (wire protocol) and static assets are not part of the query API.
fn excluded(method: &str, path: &str) -> bool {
    (method == "post" && path == "/api/v1/pipe/session/")
        || path.starts_with("/ui")
        || path.starts_with("/api/v1/pipe/consistency/")
        || path.starts_with("/api/v1/pipe/ingest/")
        || path == "/api/v1/pipe/{}/events"
        || path == "/api/v1/pipe/session/{}"
        || path == "/api/v1/pipe/session/{}/heartbeat"
}

/// `/a/{view}/b` → `/a/{}/b`, so parameter names may differ.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// `(method, path)` of every `.route("path", method(..).method(..))` in the router sources.
fn registered() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for src in sources() {
        for chunk in src.split(".route(").skip(1) {
            let Some(start) = chunk.find('"') else {
                continue;
            };
            let rest = &chunk[start + 1..];
            let Some(end) = rest.find('"') else { continue };
            let path = shape(&rest[..end]);
            let body = &rest[end..];
            let stop = [".route(", ".merge(", ";"]
                .iter()
                .filter_map(|s| body.find(s))
                .min()
                .unwrap_or(body.len());
            let body = &body[..stop];
            for m in ["get", "post", "put", "delete"] {
                let called = body.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0
                        || !body.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && body.as_bytes()[i - 1] != b'_'
                });
                if called && !excluded(m, &path) {
                    out.insert((m.to_string(), path.clone()));
                }
            }
        }
    }
    out
}

fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            out.insert((m.clone(), shape(path)));
        }
    }
    out
}

#[test]
fn every_query_route_is_documented_and_every_documented_route_exists() {
    let reg = registered();
    let doc = documented();
    assert!(
        reg.contains(&("get".to_string(), "/api/v1/views/{}/tree".to_string())),
        "parser found {reg:?}"
    );
    let undocumented: Vec<_> = reg.difference(&doc).collect();
    let phantom: Vec<_> = doc.difference(&reg).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from api/openapi.json: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "documented but not registered: {phantom:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_is_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fusion-config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("default.yaml"), "host: 127.0.0.1\nport: 0\n").unwrap();
    let server = FusionServer::start(&dir, &[], Overrides::default())
        .await
        .unwrap();
    let body: Value = reqwest::get(format!("http://{}/api/v1/openapi.json", server.main_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, serde_json::from_str::<Value>(DOC).unwrap());
    assert_eq!(body["openapi"], "3.0.3");
    server.shutdown().await;
}
