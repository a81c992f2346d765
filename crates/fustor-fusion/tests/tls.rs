//! HTTPS on every Fusion port (issue 13): a real `fustor-fusion` process serving a certificate
//! from a CA made by the test; clients that trust that CA get answers, clients that trust
//! another CA are refused; agent routes require a client certificate when `client_ca_file` is
//! set while query routes stay open; SIGHUP makes new connections use a renewed certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fustor_testkit::FusionProcess;
use fustor_testkit::tls::{CertFiles, TestCa};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");

fn config(main: u16, recv: u16, server: &CertFiles, client_ca: &Path) -> String {
    format!(
        "host: 127.0.0.1\nport: {main}\n\
         tls: {{cert_file: {:?}, key_file: {:?}, client_ca_file: {:?}}}\n\
         receivers:\n  r: {{bind_host: 127.0.0.1, port: {recv}, api_keys: [{{key: agent-key, pipe_id: p}}]}}\n\
         views:\n  v1: {{driver: fs, api_keys: [qk1], persist: false}}\n\
         pipes:\n  p: {{receiver: r, views: [v1]}}\n",
        server.cert.display().to_string(),
        server.key.display().to_string(),
        client_ca.display().to_string(),
    )
}

/// A client that trusts only `ca`, presenting `identity` if given.
fn client(ca: &Path, identity: Option<&CertFiles>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10));
    if let Some(id) = identity {
        let mut pem = std::fs::read(&id.cert).unwrap();
        pem.extend(std::fs::read(&id.key).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

async fn get_discover(c: &reqwest::Client, port: u16) -> Result<(u16, Value), String> {
    let r = c
        .get(format!("https://127.0.0.1:{port}/api/v1/pipe/session/"))
        .header("X-API-Key", "qk1")
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

async fn open_session(c: &reqwest::Client, port: u16) -> Result<(u16, Value), String> {
    let r = c
        .post(format!("https://127.0.0.1:{port}/api/v1/pipe/session/"))
        .header("X-API-Key", "agent-key")
        .json(&json!({"task_id": "agent-1:p"}))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

struct Setup {
    dir: tempfile::TempDir,
    ca: TestCa,
    client_ca: TestCa,
    fusion: FusionProcess,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "server");
    let client_ca = TestCa::new(dir.path(), "agents");
    let server = ca.server(dir.path(), "fusion");
    let fusion = FusionProcess::start(Path::new(BIN), |main, recv| {
        config(main, recv, &server, &client_ca.ca_file)
    });
    assert!(
        fustor_testkit::wait_for_port(fusion.main_port, Duration::from_secs(10)),
        "fusion did not start"
    );
    Setup {
        dir,
        ca,
        client_ca,
        fusion,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_query_port_and_wrong_ca() {
    let s = setup();
    let port = s.fusion.main_port;
    // A client trusting the CA: the query route answers over https, no client cert needed.
    let (status, body) = get_discover(&client(&s.ca.ca_file, None), port)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["view_id"], "v1");
    // A client trusting another CA refuses the server's certificate.
    let other = TestCa::new(s.dir.path(), "other");
    let err = get_discover(&client(&other.ca_file, None), port)
        .await
        .unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/pipe/session/"))
        .header("X-API-Key", "qk1")
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

/// curl, the operator's tool, against the query port: `--cacert` works, no CA fails.
#[test]
fn https_with_curl() {
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "curl is required in CI"
        );
        eprintln!("skipped: curl is not installed");
        return;
    }
    let s = setup();
    let url = format!(
        "https://127.0.0.1:{}/api/v1/pipe/session/",
        s.fusion.main_port
    );
    let ok = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&s.ca.ca_file)
        .args(["-H", "X-API-Key: qk1", &url])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("\"view_id\":\"v1\""), "{out}");
    let refused = Command::new("curl")
        .args(["-sS", "--fail", "-H", "X-API-Key: qk1", &url])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "curl without the CA succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_on_agent_routes() {
    let s = setup();
    let (main, recv) = (s.fusion.main_port, s.fusion.recv_port);
    // No client certificate: the agent route answers 403 saying what is missing, on both
    // the receiver port and the main port.
    let bare = client(&s.ca.ca_file, None);
    for port in [recv, main] {
        let (status, body) = open_session(&bare, port).await.unwrap();
        assert_eq!(status, 403, "{port}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("client certificate"),
            "{body}"
        );
    }
    // A certificate from the agents' CA: the session opens.
    let agent = s.client_ca.client(s.dir.path(), "agent-1");
    let (status, body) = open_session(&client(&s.ca.ca_file, Some(&agent)), recv)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["session_id"].is_string(), "{body}");
    // A certificate from another CA fails the handshake.
    let rogue_ca = TestCa::new(s.dir.path(), "rogue");
    let rogue = rogue_ca.client(s.dir.path(), "rogue-agent");
    let r = open_session(&client(&s.ca.ca_file, Some(&rogue)), recv).await;
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_renewed_certificate() {
    let s = setup();
    let port = s.fusion.main_port;
    // The operator renews the certificate from a new CA, in place, and sends SIGHUP.
    let new_ca = TestCa::new(s.dir.path(), "renewed");
    let fresh = new_ca.server(s.dir.path(), "fresh");
    assert!(
        get_discover(&client(&new_ca.ca_file, None), port)
            .await
            .is_err(),
        "the new CA is not in use yet"
    );
    let old = s.dir.path().join("fusion");
    std::fs::copy(&fresh.cert, old.with_extension("pem")).unwrap();
    std::fs::copy(&fresh.key, old.with_extension("key")).unwrap();
    fustor_core::process::signal(s.fusion.pid() as i32, rustix::process::Signal::HUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match get_discover(&client(&new_ca.ca_file, None), port).await {
            Ok((200, _)) => break,
            other if Instant::now() > deadline => {
                panic!("renewed certificate not served: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // New connections no longer present the old certificate.
    let old_client = client(&s.ca.ca_file, None);
    assert!(get_discover(&old_client, port).await.is_err());
}
