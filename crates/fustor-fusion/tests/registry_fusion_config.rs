//! Fusion's own configuration through the admin API (issue 15, item 5), on the real
//! `fustor-fusion` daemon and its real `fusion-config/` directory and SQLite file: a change is
//! validated like `check-config`, written to the files, applied by the real reload and put back
//! when the reload refuses it; versions and audit entries survive a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fustor_testkit::{free_port, terminate, wait_for_port};
use reqwest::Method;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");
const ADMIN: &str = "ops-admin-key";
const ADMIN2: &str = "dev-admin-key";

struct Daemon {
    child: Child,
    main: String,
    c: reqwest::Client,
}

struct R {
    status: u16,
    etag: Option<String>,
    body: Value,
}

fn start(home: &Path, main_port: u16, recv_port: u16) -> Daemon {
    let child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["start", "--no-console-log"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for_port(recv_port, Duration::from_secs(20)),
        "fusion listens"
    );
    assert!(wait_for_port(main_port, Duration::from_secs(5)));
    Daemon {
        child,
        main: format!("http://127.0.0.1:{main_port}"),
        c: reqwest::Client::new(),
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_dir(home: &Path) -> PathBuf {
    home.join("fusion-config")
}

fn default_yaml(main_port: u16, recv_port: u16) -> String {
    format!(
        "host: 127.0.0.1\nport: {main_port}\n\
         admin_keys: [{{name: ops, key: {ADMIN}}}, {{name: dev, key: {ADMIN2}}}]\n\
         receivers:\n  r: {{driver: http, bind_host: 127.0.0.1, port: {recv_port}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}\n\
         views:\n  v1: {{driver: fs, api_keys: [qk1]}}\npipes:\n  v1: {{receiver: r, views: [v1]}}\n"
    )
}

/// A second file: view v2 fed by pipe v2 through its own receiver on `port`.
fn views_yaml(port: u16) -> String {
    format!(
        "receivers:\n  r2:\n    driver: http\n    bind_host: 127.0.0.1\n    port: {port}\n    api_keys: [{{key: agent-key-2, pipe_id: v2}}]\n\
         views:\n  v2:\n    driver: fs\n    api_keys: [qk2]\n\
         pipes:\n  v2:\n    receiver: r2\n    views: [v2]\n"
    )
}

fn setup() -> (tempfile::TempDir, u16, u16) {
    let home = tempfile::tempdir().unwrap();
    let (main_port, recv_port) = (free_port(), free_port());
    std::fs::create_dir_all(config_dir(home.path())).unwrap();
    std::fs::write(
        config_dir(home.path()).join("default.yaml"),
        default_yaml(main_port, recv_port),
    )
    .unwrap();
    (home, main_port, recv_port)
}

impl Daemon {
    async fn req(
        &self,
        method: Method,
        path: &str,
        key: &str,
        if_match: Option<&str>,
        body: Option<&str>,
    ) -> R {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.main)
        };
        let mut b = self.c.request(method, url).header("X-API-Key", key);
        if let Some(m) = if_match {
            b = b.header("If-Match", m);
        }
        if let Some(t) = body {
            b = b
                .header("Content-Type", "application/yaml")
                .body(t.to_string());
        }
        let r = b.send().await.unwrap();
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        R {
            status,
            etag,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn get_set(&self) -> R {
        let r = self
            .req(
                Method::GET,
                "/api/v1/admin/fusion-config",
                ADMIN,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r
    }

    async fn put(&self, file: &str, key: &str, if_match: Option<&str>, yaml: &str) -> R {
        let path = format!("/api/v1/admin/fusion-config/{file}");
        self.req(Method::PUT, &path, key, if_match, Some(yaml))
            .await
    }

    async fn audit(&self, query: &str) -> Vec<Value> {
        let r = self
            .req(
                Method::GET,
                &format!("/api/v1/admin/audit?{query}"),
                ADMIN,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["entries"].as_array().unwrap().clone()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn on_disk(home: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(config_dir(home).join(file)).ok()
}

/// A session on `recv` with `key`, a snapshot of one file, its end: the view has data.
async fn feed(c: &reqwest::Client, recv: &str, key: &str, task: &str) {
    let r = c
        .post(format!("{recv}/api/v1/pipe/session/"))
        .header("X-API-Key", key)
        .json(&json!({"task_id": task}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let sid = r.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let row = json!({"path": "/new.txt", "modified_time": 1.7e9, "size": 1, "is_directory": false});
    let batch = json!({
        "events": [{"event_type": "update", "event_schema": "fs", "table": "files", "fields": [],
                    "rows": [row], "message_source": "snapshot", "index": -1}],
        "source_type": "snapshot", "is_end": true,
    });
    let r = c
        .post(format!("{recv}/api/v1/pipe/ingest/{sid}/events"))
        .header("X-API-Key", key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn stats_of(d: &Daemon, view: &str, key: &str) -> R {
    d.req(
        Method::GET,
        &format!("/api/v1/views/{view}/stats"),
        key,
        None,
        None,
    )
    .await
}

#[tokio::test]
async fn a_view_added_through_the_api_is_queryable_and_the_file_matches() {
    let (home, main_port, recv_port) = setup();
    let d = start(home.path(), main_port, recv_port);
    let set = d.get_set().await;
    let tag0 = set.etag.clone().unwrap();
    assert_eq!(
        tag0,
        format!("\"{}\"", set.body["digest"].as_str().unwrap())
    );
    assert_eq!(set.body["files"][0]["name"], "default.yaml");
    assert_eq!(
        set.body["files"][0]["yaml"],
        default_yaml(main_port, recv_port)
    );
    assert_eq!(stats_of(&d, "v2", "qk2").await.status, 401, "no v2 yet");

    let port2 = free_port();
    let text = views_yaml(port2);
    let r = d.put("views.yaml", ADMIN, Some(&tag0), &text).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tag1 = r.etag.clone().unwrap();
    assert_ne!(tag1, tag0);
    // Files and API agree: the file holds exactly the text sent.
    assert_eq!(
        on_disk(home.path(), "views.yaml").as_deref(),
        Some(text.as_str())
    );
    let names: Vec<&str> = r.body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default.yaml", "views.yaml"]);

    // The real reload started the new receiver and view: data flows and is queryable.
    assert!(wait_for_port(port2, Duration::from_secs(5)));
    feed(
        &d.c,
        &format!("http://127.0.0.1:{port2}"),
        "agent-key-2",
        "h:v2",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stats_of(&d, "v2", "qk2").await;
        if s.status == 200 && s.body["item_count"].as_u64() == Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "v2 not queryable: {} {}",
            s.status,
            s.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A new file is the owner's only; a replaced one keeps its mode (files hold keys).
    let path = config_dir(home.path()).join("views.yaml");
    assert_eq!(mode(&path), 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let r = d
        .put("views.yaml", ADMIN, Some(&tag1), &format!("# v2\n{text}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(mode(&path), 0o640);
    let tag2 = r.etag.unwrap();

    // DELETE with the newest ETag removes the file and the view with it.
    let r = d
        .req(
            Method::DELETE,
            "/api/v1/admin/fusion-config/views.yaml",
            ADMIN,
            Some(&tag2),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.etag.as_deref(),
        Some(tag0.as_str()),
        "back to the first set"
    );
    assert!(on_disk(home.path(), "views.yaml").is_none());
    assert_eq!(stats_of(&d, "v2", "qk2").await.status, 401);
    let r = d
        .req(
            Method::DELETE,
            "/api/v1/admin/fusion-config/views.yaml",
            ADMIN,
            r.etag.as_deref(),
            None,
        )
        .await;
    assert_eq!(r.status, 404);

    let entries = d.audit("target=fusion-config/views.yaml").await;
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("fusion_config.delete", "not_found"),
            ("fusion_config.delete", "ok"),
            ("fusion_config.put", "ok"),
            ("fusion_config.put", "ok"),
        ]
    );
    assert_eq!(entries[3]["who"], "ops");
    assert_eq!(
        entries[3]["before_digest"]
            .as_str()
            .map(|d| format!("\"{d}\"")),
        Some(tag0)
    );
    assert_eq!(
        entries[3]["after_digest"]
            .as_str()
            .map(|d| format!("\"{d}\"")),
        Some(tag1)
    );
}

#[tokio::test]
async fn a_broken_file_is_refused_with_key_and_line_and_nothing_changes() {
    let (home, main_port, recv_port) = setup();
    let d = start(home.path(), main_port, recv_port);
    let tag = d.get_set().await.etag.unwrap();
    // Line 9: a pipe naming a view that does not exist; line 5: an unknown key.
    let broken = views_yaml(free_port())
        .replace("    views: [v2]\n", "    views: [nope]\n")
        .replace("    driver: fs\n", "    driver: fs\n    colour: blue\n");
    let r = d.put("views.yaml", ADMIN, Some(&tag), &broken).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let problems = r.body["detail"]["problems"].as_array().unwrap();
    let find = |needle: &str| {
        problems
            .iter()
            .find(|p| {
                p["key"].as_str().unwrap().contains(needle)
                    || p["message"].as_str().unwrap().contains(needle)
            })
            .unwrap_or_else(|| panic!("no problem at {needle}: {problems:?}"))
    };
    let views = find("pipes.v2.views");
    assert_eq!(views["file"], "views.yaml");
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert_eq!(
        views["line"].as_u64(),
        Some(line_of("views: [nope]") as u64)
    );
    let colour = find("colour");
    assert_eq!(colour["line"].as_u64(), Some(line_of("colour") as u64));

    // A YAML syntax error is located too.
    let r = d
        .put("views.yaml", ADMIN, Some(&tag), "views:\n  v2: [\n")
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["detail"]["problems"][0]["line"].as_u64().is_some(),
        "{}",
        r.body
    );
    // Names that the loader would not read, or that leave the directory, are refused.
    for bad in ["x.yml", ".hidden.yaml", "..%2Fescape.yaml"] {
        let r = d.put(bad, ADMIN, Some(&tag), "views: {}\n").await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }

    assert!(on_disk(home.path(), "views.yaml").is_none());
    let after = d.get_set().await;
    assert_eq!(after.etag.as_deref(), Some(tag.as_str()));
    assert_eq!(after.body["files"].as_array().unwrap().len(), 1);
    let invalid = d.audit("action=fusion_config.put&actor=ops").await;
    assert_eq!(invalid.len(), 2);
    assert!(invalid.iter().all(|e| e["result"] == "invalid"));
}

#[tokio::test]
async fn a_change_the_reload_refuses_is_put_back_and_the_running_config_kept() {
    let (home, main_port, recv_port) = setup();
    let d = start(home.path(), main_port, recv_port);
    let tag = d.get_set().await.etag.unwrap();
    // Valid, but its receiver's port is taken: only the reload can find that out.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let r = d
        .put("views.yaml", ADMIN, Some(&tag), &views_yaml(port))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let reason = r.body["detail"]["reason"].as_str().unwrap();
    assert!(reason.contains(&port.to_string()), "{reason}");
    assert!(
        on_disk(home.path(), "views.yaml").is_none(),
        "file restored"
    );
    assert_eq!(d.get_set().await.etag.as_deref(), Some(tag.as_str()));

    // The running configuration is the previous one: v1 still receives, v2 does not exist.
    feed(
        &d.c,
        &format!("http://127.0.0.1:{recv_port}"),
        "agent-key",
        "h:v1",
    )
    .await;
    assert_eq!(stats_of(&d, "v2", "qk2").await.status, 401);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats_of(&d, "v1", "qk1").await.status != 200 {
        assert!(Instant::now() < deadline, "v1 stopped answering");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The same change on a free port then goes through.
    drop(taken);
    let r = d
        .put("views.yaml", ADMIN, Some(&tag), &views_yaml(free_port()))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let e = d.audit("action=fusion_config&limit=5").await;
    assert_eq!(e[0]["result"], "ok");
    assert!(
        e[1]["result"]
            .as_str()
            .unwrap()
            .starts_with("reload_refused"),
        "{e:?}"
    );
}

#[tokio::test]
async fn two_concurrent_writers_one_gets_412_and_a_missing_if_match_428() {
    let (home, main_port, recv_port) = setup();
    let d = start(home.path(), main_port, recv_port);
    let tag = d.get_set().await.etag.unwrap();
    let r = d.put("a.yaml", ADMIN, None, "views: {}\n").await;
    assert_eq!(r.status, 428, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some(tag.as_str()));

    let a_text = views_yaml(free_port());
    let (a, b) = tokio::join!(
        d.put("a.yaml", ADMIN, Some(&tag), &a_text),
        d.put(
            "b.yaml",
            ADMIN2,
            Some(&tag),
            "views:\n  v9: {driver: fs, api_keys: [qk9]}\n"
        ),
    );
    let mut codes = [a.status, b.status];
    codes.sort_unstable();
    assert_eq!(codes, [200, 412], "{} / {}", a.body, b.body);
    let (winner, loser) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(loser.etag, winner.etag, "412 names the newest set");
    let files = d.get_set().await.body["files"].as_array().unwrap().len();
    assert_eq!(files, 2, "only the winner's file was written");
}

#[tokio::test]
async fn query_and_agent_keys_get_403() {
    let (home, main_port, recv_port) = setup();
    let d = start(home.path(), main_port, recv_port);
    let tag = d.get_set().await.etag.unwrap();
    for key in ["qk1", "agent-key"] {
        for (m, path) in [
            (Method::GET, "/api/v1/admin/fusion-config"),
            (Method::GET, "/api/v1/admin/fusion-config/versions"),
            (Method::GET, "/api/v1/admin/fusion-config/versions/1"),
            (Method::PUT, "/api/v1/admin/fusion-config/x.yaml"),
            (Method::DELETE, "/api/v1/admin/fusion-config/default.yaml"),
        ] {
            let r = d.req(m, path, key, Some(&tag), Some("views: {}\n")).await;
            assert_eq!(r.status, 403, "{key} {path}: {}", r.body);
        }
    }
    let r = d
        .req(
            Method::GET,
            "/api/v1/admin/fusion-config",
            "nobody",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(on_disk(home.path(), "x.yaml").is_none());
    assert!(on_disk(home.path(), "default.yaml").is_some());
}

#[tokio::test]
async fn versions_file_edits_and_audit_survive_a_restart() {
    let (home, main_port, recv_port) = setup();
    let mut d = start(home.path(), main_port, recv_port);
    let tag = d.get_set().await.etag.unwrap();
    let text = views_yaml(free_port());
    let r = d.put("views.yaml", ADMIN2, Some(&tag), &text).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let api_tag = r.etag.unwrap();

    // An operator edits a file directly and sends SIGHUP: recorded as a version by "file",
    // and the ETag held from before the edit is stale.
    let edited = text.replace("api_keys: [qk2]", "api_keys: [qk2, qk3]");
    std::fs::write(config_dir(home.path()).join("views.yaml"), &edited).unwrap();
    send_sighup(d.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats_of(&d, "v2", "qk3").await.status == 401 {
        assert!(Instant::now() < deadline, "SIGHUP reload did not happen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = d.put("views.yaml", ADMIN, Some(&api_tag), &text).await;
    assert_eq!(r.status, 412, "{}", r.body);
    terminate(&mut d.child, Duration::from_secs(15));
    drop(d);

    let d = start(home.path(), main_port, recv_port);
    let v = d
        .req(
            Method::GET,
            "/api/v1/admin/fusion-config/versions",
            ADMIN,
            None,
            None,
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let list: Vec<(i64, &str)> = v.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["version"].as_i64().unwrap(),
                x["author"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(list, [(3, "file"), (2, "dev"), (1, "file")], "{}", v.body);
    assert_eq!(v.body["versions"][1]["change"], "put views.yaml");
    let two = d
        .req(
            Method::GET,
            "/api/v1/admin/fusion-config/versions/2",
            ADMIN,
            None,
            None,
        )
        .await;
    assert_eq!(two.status, 200);
    let file = two.body["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "views.yaml")
        .unwrap();
    assert_eq!(file["yaml"], text);
    assert_eq!(
        format!("\"{}\"", two.body["digest"].as_str().unwrap()),
        api_tag
    );
    let three = d.get_set().await;
    assert_eq!(three.body["version"], 3);
    assert_eq!(
        d.req(
            Method::GET,
            "/api/v1/admin/fusion-config/versions/9",
            ADMIN,
            None,
            None
        )
        .await
        .status,
        404
    );

    let log = d.audit("target=fusion-config").await;
    let who: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e["who"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        who,
        [
            ("ops", "precondition_failed"),
            ("file", "ok"),
            ("dev", "ok")
        ],
        "{log:?}"
    );
    // serde_json parses floats without float_roundtrip: stay a millisecond below.
    let since = log[1]["at"].as_f64().unwrap() - 0.001;
    let recent = d.audit(&format!("since={since}&actor=file")).await;
    assert_eq!(recent.len(), 1, "{recent:?}");
    let later = log[0]["at"].as_f64().unwrap() + 1.0;
    assert!(d.audit(&format!("since={later}")).await.is_empty());
    assert_eq!(recent[0]["action"], "fusion_config.file_edit");
    assert!(d.audit("actor=nobody").await.is_empty());

    // An edit on disk without SIGHUP: the next GET shows it and records it by "file".
    let extra = "views:\n  v7: {driver: fs, api_keys: [qk7]}\n";
    std::fs::write(config_dir(home.path()).join("extra.yaml"), extra).unwrap();
    let four = d.get_set().await;
    assert_eq!(four.body["version"], 4, "{}", four.body);
    assert!(
        four.body["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["yaml"] == extra)
    );
    let v = d
        .req(
            Method::GET,
            "/api/v1/admin/fusion-config/versions/4",
            ADMIN,
            None,
            None,
        )
        .await;
    assert_eq!(v.body["author"], "file");
    assert_eq!(v.body["change"], "edited on disk");
}

fn send_sighup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
