//! systemd readiness for the agent: `READY=1` once its pipes run (over an abstract
//! `NOTIFY_SOCKET`, `@name`, as user managers and containers use), `STOPPING=1` on SIGTERM, and
//! nothing when the start fails (no pipe to run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fustor-agent");

fn spawn(home: &Path, socket: &str) -> Child {
    Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["start", "--no-console-log"])
        .env("NOTIFY_SOCKET", socket)
        .env_remove("FUSTOR_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A socket on a fresh abstract name; the name as `NOTIFY_SOCKET` spells it.
fn notify_socket() -> (UnixDatagram, String) {
    let name = format!("fustor-test-notify-{}-{}", std::process::id(), fastrand());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    (UnixDatagram::bind_addr(&addr).unwrap(), format!("@{name}"))
}

fn fastrand() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn recv(sock: &UnixDatagram, within: Duration) -> Option<String> {
    sock.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the agent did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ready_once_pipes_run_and_stopping_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    std::fs::create_dir_all(home.join("agent-config")).unwrap();
    std::fs::create_dir_all(home.join("data")).unwrap();
    std::fs::write(
        home.join("agent-config/default.yaml"),
        format!(
            "agent_id: notify-test\nsources:\n  src: {{driver: fs, uri: {:?}}}\nsenders:\n  echo: {{driver: echo, uri: \"http://127.0.0.1:9\"}}\npipes:\n  p1: {{source: src, sender: echo}}\n",
            home.join("data").display().to_string()
        ),
    )
    .unwrap();
    let (sock, name) = notify_socket();
    let mut child = spawn(home, &name);
    let msg = recv(&sock, Duration::from_secs(60)).expect("no READY=1 within 60 s");
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(msg.contains("STATUS=1 pipe(s) running"), "{msg:?}");
    // READY=1 comes after the pid file: the agent is fully up.
    assert!(home.join("agent.pid").exists());
    fustor_core::process::signal(child.id() as i32, rustix::process::Signal::TERM).unwrap();
    assert_eq!(
        recv(&sock, Duration::from_secs(30)).as_deref(),
        Some("STOPPING=1")
    );
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}

#[test]
fn a_failed_start_never_sends_ready() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("agent-config")).unwrap();
    // No pipe configured: `start` refuses (exit 1) unless --allow-empty.
    let (sock, name) = notify_socket();
    let mut child = spawn(tmp.path(), &name);
    assert!(!wait_exit(&mut child, Duration::from_secs(60)).success());
    assert_eq!(recv(&sock, Duration::from_millis(200)), None);
}
