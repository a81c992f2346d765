//! Helpers that tests and benches of several crates used to copy: a free port, a real
//! `fustor-fusion` process that is killed on drop, `/proc` figures of a pid, numeric knobs
//! from the environment. Dev-dependency only (`publish = false`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod tls;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1 (0 if none could be bound).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// `name` from the environment as a number, else `default` (bench sizes).
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` field given in kB (`VmRSS:`, `VmHWM:`), in MB; 0 when unreadable.
pub fn proc_status_mb(pid: u32, field: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Waits until something accepts connections on `127.0.0.1:port`; false after `within`.
pub fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `fustor-fusion start` in the foreground on its own `$FUSTOR_HOME`, killed on drop.
pub struct FusionProcess {
    pub child: Child,
    pub main_port: u16,
    pub recv_port: u16,
    home: tempfile::TempDir,
}

impl FusionProcess {
    /// Writes `config(main_port, receiver_port)` as `fusion-config/default.yaml` of a new home,
    /// starts `bin` on it (logs: `RUST_LOG=warn`, none on the console) and waits up to 10 s
    /// for the receiver port.
    pub fn start(bin: &Path, config: impl FnOnce(u16, u16) -> String) -> FusionProcess {
        let home = tempfile::tempdir().expect("tempdir");
        let (main_port, recv_port) = (free_port(), free_port());
        let dir = home.path().join("fusion-config");
        std::fs::create_dir_all(&dir).expect("config dir");
        std::fs::write(dir.join("default.yaml"), config(main_port, recv_port)).expect("config");
        let child = Command::new(bin)
            .arg("--home")
            .arg(home.path())
            .args(["start", "--no-console-log"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fusion");
        let f = FusionProcess {
            child,
            main_port,
            recv_port,
            home,
        };
        wait_for_port(recv_port, Duration::from_secs(10));
        f
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FusionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `FUSION_BIN` when set (probing another build under the same load), else `default`.
pub fn fusion_bin(default: &str) -> PathBuf {
    std::env::var_os("FUSION_BIN").map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The pid a daemon wrote into `file` (`<home>/fusion.pid`, `<home>/agent.pid`).
pub fn pid_in(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Whether a process with this pid exists (`kill -0`).
pub fn alive(pid: i32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// SIGTERM, up to `grace` for the process to exit, then SIGKILL: how a test stops a daemon it
/// spawned, giving it the chance to shut down cleanly first.
pub fn terminate(child: &mut Child, grace: Duration) {
    let _ = fustor_core::process::signal(child.id() as i32, rustix::process::Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// stdout then stderr of a finished command, as text (what a CLI test matches on).
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Percent-encodes a query value (paths and glob patterns); `/` stays readable.
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
