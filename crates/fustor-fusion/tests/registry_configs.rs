//! Central agent configuration documents (issue 15, item 3): versions with ETags, `If-Match`
//! required and checked atomically, validation at write time with key and line, admin keys
//! only. Real Fusion on 127.0.0.1, real SQLite file under its home.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fx, f0_yaml};
use reqwest::Method;
use reqwest::header::{ETAG, IF_MATCH};
use serde_json::{Value, json};

const ADMIN: &str = "alice-admin-key";

fn yaml(pipe_dir: &str) -> String {
    format!(
        "agent_id: nfs-client-01\n\
         sources:\n  share:\n    driver: fs\n    uri: {pipe_dir}\n\
         senders:\n  fusion:\n    driver: fusion\n    uri: http://127.0.0.1:8102\n    credential: {{key: agent-key}}\n\
         pipes:\n  research:\n    source: share\n    sender: fusion\n"
    )
}

async fn fx() -> Fx {
    Fx::with_yaml(&f0_yaml(
        "",
        "admin_keys: [{name: alice, key: alice-admin-key}, {name: bob, key: bob-admin-key}]",
    ))
    .await
}

struct R {
    status: u16,
    etag: Option<String>,
    body: Value,
}

async fn req(
    fx: &Fx,
    method: Method,
    path: &str,
    key: Option<&str>,
    if_match: Option<&str>,
    body: Option<String>,
) -> R {
    let mut b = fx.c.request(method, format!("{}{path}", fx.main));
    if let Some(k) = key {
        b = b.header("X-API-Key", k);
    }
    if let Some(m) = if_match {
        b = b.header(IF_MATCH, m);
    }
    if let Some(body) = body {
        b = b.header("Content-Type", "application/yaml").body(body);
    }
    let r = b.send().await.unwrap();
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get(ETAG)
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.unwrap();
    R {
        status,
        etag,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn put(fx: &Fx, target: &str, key: &str, if_match: Option<&str>, body: String) -> R {
    let path = format!("/api/v1/admin/agent-configs/{target}");
    req(fx, Method::PUT, &path, Some(key), if_match, Some(body)).await
}

#[tokio::test]
async fn only_admin_keys_read_and_write_configurations() {
    let fx = fx().await;
    let path = "/api/v1/admin/agent-configs/nfs-client-01";
    for key in ["qk1", "agent-key"] {
        let r = req(&fx, Method::PUT, path, Some(key), None, Some(yaml("/a"))).await;
        assert_eq!(r.status, 403, "{key}: {}", r.body);
        let r = req(&fx, Method::GET, path, Some(key), None, None).await;
        assert_eq!(r.status, 403, "{key}");
        let v = format!("{path}/versions");
        assert_eq!(
            req(&fx, Method::GET, &v, Some(key), None, None)
                .await
                .status,
            403
        );
        let g = "/api/v1/admin/agents/nfs-client-01/group";
        let r = req(&fx, Method::PUT, g, Some(key), None, Some("{}".into())).await;
        assert_eq!(r.status, 403);
    }
    let r = req(&fx, Method::PUT, path, None, None, Some(yaml("/a"))).await;
    assert_eq!(r.status, 401);
    // Nothing was written by the refused keys.
    assert_eq!(
        req(&fx, Method::GET, path, Some(ADMIN), None, None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn two_concurrent_writers_one_gets_412_and_versions_are_listed() {
    let fx = fx().await;
    let target = "group:nfs-clients";
    let r = put(&fx, target, ADMIN, None, yaml("/mnt/v1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tag1 = r.etag.clone().unwrap();
    assert_eq!(tag1, format!("\"{}\"", r.body["digest"].as_str().unwrap()));
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["author"], "alice");

    // An existing document written without If-Match: 428, nothing stored.
    let r = put(&fx, target, ADMIN, None, yaml("/mnt/blind")).await;
    assert_eq!(r.status, 428, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some(tag1.as_str()));

    // Both read version 1, both write: the database decides, exactly one wins.
    let (a, b) = tokio::join!(
        put(&fx, target, ADMIN, Some(&tag1), yaml("/mnt/alice")),
        put(&fx, target, "bob-admin-key", Some(&tag1), yaml("/mnt/bob")),
    );
    let mut codes = [a.status, b.status];
    codes.sort_unstable();
    assert_eq!(codes, [200, 412], "{} / {}", a.body, b.body);
    let (winner, loser) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(winner.body["version"], 2);
    assert_eq!(loser.etag, winner.etag, "412 names the newest version");
    // The loser re-reads and retries with the fresh ETag.
    let cur = req(
        &fx,
        Method::GET,
        &format!("/api/v1/admin/agent-configs/{target}"),
        Some(ADMIN),
        None,
        None,
    )
    .await;
    assert_eq!(cur.status, 200);
    assert_eq!(cur.etag, winner.etag);
    assert_eq!(cur.body["yaml"], winner.body["yaml"]);
    let r = put(
        &fx,
        target,
        "bob-admin-key",
        cur.etag.as_deref(),
        yaml("/mnt/v3"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["version"], 3);
    // If-Match on a target without a document is stale too.
    let r = put(&fx, "other-agent", ADMIN, Some(&tag1), yaml("/x")).await;
    assert_eq!(r.status, 412);

    let v = req(
        &fx,
        Method::GET,
        &format!("/api/v1/admin/agent-configs/{target}/versions"),
        Some(ADMIN),
        None,
        None,
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let versions = v.body["versions"].as_array().unwrap();
    let nums: Vec<i64> = versions
        .iter()
        .map(|x| x["version"].as_i64().unwrap())
        .collect();
    assert_eq!(nums, [3, 2, 1]);
    assert_eq!(versions[0]["author"], "bob");
    assert_eq!(
        format!("\"{}\"", versions[2]["digest"].as_str().unwrap()),
        tag1
    );
    assert!(versions.iter().all(|x| x["at"].as_f64().unwrap() > 1.7e9));

    // Every write attempt is in the audit log with before/after digests.
    let log = fx
        .get_main("/api/v1/admin/audit?limit=20", Some(ADMIN))
        .await;
    let entries: Vec<&Value> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == "agent-config/group:nfs-clients")
        .collect();
    let results: Vec<&str> = entries
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        [
            "ok",
            "precondition_failed",
            "ok",
            "precondition_required",
            "ok"
        ],
        "newest first"
    );
    let first = entries[4];
    assert_eq!(first["before_digest"], Value::Null);
    assert_eq!(
        format!("\"{}\"", first["after_digest"].as_str().unwrap()),
        tag1
    );
    assert_eq!(entries[2]["before_digest"], first["after_digest"]);
}

#[tokio::test]
async fn broken_configurations_are_refused_with_key_and_line() {
    let fx = fx().await;
    let bad_ref = yaml("/a").replace("sender: fusion", "sender: fusoin");
    let r = put(&fx, "nfs-client-01", ADMIN, None, bad_ref).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let p = &r.body["detail"]["problems"];
    assert_eq!(p.as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p[0]["file"], "registry.yaml");
    assert_eq!(p[0]["key"], "pipes.research.sender");
    assert_eq!(p[0]["line"], 14);
    assert!(p[0]["message"].as_str().unwrap().contains("fusoin"), "{p}");

    // A schema error (wrong type) and an unknown key, as `fustor-agent validate` refuses them.
    let typo = yaml("/a").replace(
        "pipes:\n  research:\n",
        "pipes:\n  research:\n    disabeld: true\n",
    );
    let r = put(&fx, "nfs-client-01", ADMIN, None, typo).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let p = &r.body["detail"]["problems"][0];
    assert_eq!(p["key"], "pipes.research", "{p}");
    assert!(p["message"].as_str().unwrap().contains("disabeld"), "{p}");
    assert_eq!(p["line"], 13, "the unknown key's own line");

    let r = put(
        &fx,
        "nfs-client-01",
        ADMIN,
        None,
        "sources: [\n  oops".into(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let p = &r.body["detail"]["problems"][0];
    assert!(
        p["message"].as_str().unwrap().contains("YAML syntax error"),
        "{p}"
    );
    assert!(p["line"].as_u64().is_some(), "{p}");

    // Nothing stored; the refusals are audited.
    let path = "/api/v1/admin/agent-configs/nfs-client-01";
    assert_eq!(
        req(&fx, Method::GET, path, Some(ADMIN), None, None)
            .await
            .status,
        404
    );
    let log = fx.get_main("/api/v1/admin/audit", Some(ADMIN)).await;
    let invalid = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["result"] == "invalid")
        .count();
    assert_eq!(invalid, 3);
    // A bad target name.
    let r = put(&fx, "group:", ADMIN, None, yaml("/a")).await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn agents_are_assigned_to_groups_with_audit() {
    let fx = fx().await;
    let g = "/api/v1/admin/agents/nfs-client-01/group";
    let r = req(
        &fx,
        Method::PUT,
        g,
        Some(ADMIN),
        None,
        Some(json!({"group": "nfs"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 422, "JSON content type required: {}", r.body);
    let r = fx
        .json_req(
            Method::PUT,
            &format!("{}{g}", fx.main),
            Some(ADMIN),
            &json!({"group": "nfs"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["previous"], Value::Null);
    let r = fx
        .json_req(
            Method::PUT,
            &format!("{}{g}", fx.main),
            Some(ADMIN),
            &json!({"group": "lab"}),
        )
        .await;
    assert_eq!(r.body["previous"], "nfs");
    let r = fx
        .json_req(
            Method::PUT,
            &format!("{}{g}", fx.main),
            Some(ADMIN),
            &json!({"group": "a b"}),
        )
        .await;
    assert_eq!(r.status, 422);
    let log = fx
        .get_main("/api/v1/admin/audit?limit=1", Some(ADMIN))
        .await;
    assert_eq!(log.body["entries"][0]["action"], "agent.group");
    assert_eq!(log.body["entries"][0]["target"], "agent/nfs-client-01");
}
