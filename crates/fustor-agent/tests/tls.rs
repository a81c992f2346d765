//! Agent ↔ Fusion over HTTPS (issue 13): a real agent process sends to an `https://` receiver
//! whose certificate comes from a CA made by the test, with a client certificate that Fusion
//! requires. An agent trusting another CA, or without a client certificate, logs what to fix
//! and keeps retrying; it never exits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{AgentCfg, AgentProc, free_port, write};
use fustor_fusion::daemon::{FusionServer, Overrides};
use fustor_testkit::tls::{CertFiles, TestCa};

struct TlsFusion {
    rt: tokio::runtime::Runtime,
    server: Arc<FusionServer>,
    main: u16,
    recv: u16,
}

impl TlsFusion {
    fn start(home: &Path, server: &CertFiles, client_ca: &Path) -> TlsFusion {
        let (main, recv) = (free_port(), free_port());
        let cfg = home.join("fusion-config");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("default.yaml"),
            format!(
                "host: 127.0.0.1\nport: {main}\nsession_cleanup_interval: 0.5\n\
                 tls: {{cert_file: {:?}, key_file: {:?}, client_ca_file: {:?}}}\n\
                 receivers:\n  r: {{bind_host: 127.0.0.1, port: {recv}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}\n\
                 views:\n  v1: {{driver: fs, api_keys: [qk1], persist: false}}\n\
                 pipes:\n  v1: {{receiver: r, views: [v1], session_timeout_seconds: 3}}\n",
                server.cert.display().to_string(),
                server.key.display().to_string(),
                client_ca.display().to_string(),
            ),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(FusionServer::start(&cfg, &[], Overrides::default()))
            .expect("fusion starts");
        TlsFusion {
            rt,
            server,
            main,
            recv,
        }
    }
}

impl Drop for TlsFusion {
    fn drop(&mut self) {
        self.rt.block_on(self.server.shutdown());
    }
}

fn agent_cfg(id: &str, data: &Path, recv: u16, sender_params: String) -> AgentCfg {
    AgentCfg {
        agent_id: id.to_string(),
        uri: data.to_path_buf(),
        recv_url: format!("https://127.0.0.1:{recv}"),
        key: "agent-key".to_string(),
        pipe: "v1".to_string(),
        driver_params: "{throttle_interval_sec: 0.5}".to_string(),
        sender_params,
        source_extra: String::new(),
        pipe_extra: String::new(),
    }
}

fn tls_params(ca: &Path, id: Option<&CertFiles>) -> String {
    match id {
        Some(id) => format!(
            "{{ca_file: {:?}, client_cert_file: {:?}, client_key_file: {:?}}}",
            ca.display().to_string(),
            id.cert.display().to_string(),
            id.key.display().to_string()
        ),
        None => format!("{{ca_file: {:?}}}", ca.display().to_string()),
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() >= deadline {
            panic!("timed out: {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn agent_sends_over_https_with_a_client_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = TestCa::new(dir, "server");
    let agents_ca = TestCa::new(dir, "agents");
    let fusion = TlsFusion::start(dir, &ca.server(dir, "fusion"), &agents_ca.ca_file);
    let data = dir.join("data");
    write(&data.join("hello.txt"), b"over tls");

    let id = agents_ca.client(dir, "agent-a");
    let cfg = agent_cfg("a", &data, fusion.recv, tls_params(&ca.ca_file, Some(&id)));
    let mut agent = AgentProc::start(&dir.join("agent-a"), &cfg, None);

    let query = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.ca_file).unwrap()).unwrap(),
        )
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!(
        "https://127.0.0.1:{}/api/v1/views/v1/tree?path=/hello.txt",
        fusion.main
    );
    wait_for("the file is visible over https", 30, || {
        query
            .get(&url)
            .header("X-API-Key", "qk1")
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    assert!(agent.alive());
    agent.stop();
}

#[test]
fn wrong_ca_and_missing_client_certificate_are_explained_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = TestCa::new(dir, "server");
    let agents_ca = TestCa::new(dir, "agents");
    let other = TestCa::new(dir, "other");
    let fusion = TlsFusion::start(dir, &ca.server(dir, "fusion"), &agents_ca.ca_file);
    let data = dir.join("data");
    write(&data.join("f.txt"), b"x");

    let id = agents_ca.client(dir, "agent-b");
    let wrong_ca = agent_cfg(
        "b",
        &data,
        fusion.recv,
        tls_params(&other.ca_file, Some(&id)),
    );
    let mut b = AgentProc::start(&dir.join("agent-b"), &wrong_ca, None);
    let no_cert = agent_cfg("c", &data, fusion.recv, tls_params(&ca.ca_file, None));
    let mut c = AgentProc::start(&dir.join("agent-c"), &no_cert, None);

    wait_for("agent b explains the CA", 20, || {
        b.log().contains("not signed by a CA this agent trusts")
    });
    wait_for("agent c explains the client certificate", 20, || {
        c.log().contains("client certificate")
    });
    // Both keep retrying: still alive after several backoff rounds, and nothing got in.
    std::thread::sleep(Duration::from_secs(3));
    assert!(b.alive(), "agent with the wrong CA exited");
    assert!(c.alive(), "agent without a client certificate exited");
    assert!(
        fusion.server.fusion.sessions.readiness("v1") != fustor_fusion::sessions::Readiness::Ready
    );
    b.stop();
    c.stop();
}
