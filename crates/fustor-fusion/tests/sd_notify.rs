//! systemd readiness (`Type=notify`): the real `fustor-fusion start` with `NOTIFY_SOCKET` set to
//! a datagram socket of the test sends `READY=1` only once both its ports accept connections,
//! `STOPPING=1` on SIGTERM, and nothing at all when it fails to start (port taken), so
//! `systemctl start` reports that failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fustor_testkit::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");

fn config(main_port: u16, recv_port: u16) -> String {
    format!(
        "host: 127.0.0.1\nport: {main_port}\nreceivers:\n  r: {{driver: http, bind_host: 127.0.0.1, port: {recv_port}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}\nviews:\n  v1: {{driver: fs, api_keys: [qk1]}}\npipes:\n  v1: {{receiver: r, views: [v1]}}\n"
    )
}

fn spawn(home: &Path, socket: &Path) -> Child {
    Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["start", "--no-console-log"])
        .env("NOTIFY_SOCKET", socket)
        .env("RUST_LOG", "warn")
        .env_remove("FUSTOR_FUSION_PORT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn recv(sock: &UnixDatagram, within: Duration) -> Option<String> {
    sock.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn notify_socket(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join("notify.sock");
    (UnixDatagram::bind(&path).unwrap(), path)
}

#[test]
fn ready_only_once_listening_and_stopping_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (main_port, recv_port) = (free_port(), free_port());
    std::fs::create_dir_all(home.join("fusion-config")).unwrap();
    std::fs::write(
        home.join("fusion-config/default.yaml"),
        config(main_port, recv_port),
    )
    .unwrap();
    let (sock, path) = notify_socket(tmp.path());
    let mut child = spawn(&home, &path);

    let msg = recv(&sock, Duration::from_secs(60)).expect("no notification within 60 s");
    // Checked right after READY=1 arrives: both listeners must already accept.
    let main_up = TcpStream::connect(("127.0.0.1", main_port)).is_ok();
    let recv_up = TcpStream::connect(("127.0.0.1", recv_port)).is_ok();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(
        msg.lines().any(|l| l == format!("MAINPID={}", child.id())),
        "{msg:?}"
    );
    assert!(main_up && recv_up, "READY=1 before the ports accept");

    fustor_core::process::signal(child.id() as i32, rustix::process::Signal::TERM).unwrap();
    let msg = recv(&sock, Duration::from_secs(30)).expect("no STOPPING=1");
    assert_eq!(msg, "STOPPING=1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "fusion did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_failed_start_never_sends_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // The main port is taken: Fusion cannot listen and must say so by exiting, not READY=1.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let main_port = taken.local_addr().unwrap().port();
    std::fs::create_dir_all(home.join("fusion-config")).unwrap();
    std::fs::write(
        home.join("fusion-config/default.yaml"),
        config(main_port, free_port()),
    )
    .unwrap();
    let (sock, path) = notify_socket(tmp.path());
    let mut child = spawn(&home, &path);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fusion kept running with its port taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let got = recv(&sock, Duration::from_millis(200));
    assert_eq!(got, None, "a failed start notified the service manager");
}

#[test]
fn watchdog_pings_when_systemd_asks_for_them() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("fusion-config")).unwrap();
    std::fs::write(
        home.join("fusion-config/default.yaml"),
        config(free_port(), free_port()),
    )
    .unwrap();
    let (sock, path) = notify_socket(tmp.path());
    // WatchdogSec=0.4 → WATCHDOG_USEC; the daemon pings every half period (0.2 s).
    let mut cmd = Command::new(BIN);
    cmd.arg("--home")
        .arg(&home)
        .args(["start", "--no-console-log"])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .env("RUST_LOG", "warn")
        .env_remove("FUSTOR_FUSION_PORT")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let ready = recv(&sock, Duration::from_secs(60)).expect("no READY=1");
    assert!(ready.contains("READY=1"), "{ready:?}");
    let t0 = Instant::now();
    for _ in 0..3 {
        let msg = recv(&sock, Duration::from_secs(5)).expect("no watchdog ping");
        assert_eq!(msg, "WATCHDOG=1");
    }
    assert!(t0.elapsed() < Duration::from_secs(3), "pings too slow");
    let _ = child.kill();
    let _ = child.wait();
}
