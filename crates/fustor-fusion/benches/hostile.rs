//! Hostile-client probe (issue 9 items 3 and 5): peak memory of a real Fusion process under
//! large unauthenticated bodies and valid maximal batches, and query latency while a receiver
//! port is flooded with slow and idle connections. Prints figures; see docs/performance.md.
//!
//! `cargo bench -p fustor-fusion --bench hostile` — env: `FUSION_BIN` (another fustor-fusion
//! binary to probe, e.g. an older build), `BODIES` (concurrent 60 MB bodies, default 60),
//! `SLOW` (slowloris connections, default 1000), `IDLE` (idle connections, default 2000),
//! `WAIT_SECS` (how long the slow/idle phase lasts, default 40).

// A probe aborts on setup failure: `expect` is the clearest report it can give.
#![allow(clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fustor_testkit::{FusionProcess, env_usize, fusion_bin, proc_status_mb};

const BODY: usize = 60_000_000;

/// The real binary with one pipe `p0` (agent key `k0`, query key `q0`).
fn start_fusion() -> FusionProcess {
    FusionProcess::start(
        &fusion_bin(env!("CARGO_BIN_EXE_fustor-fusion")),
        |main, recv| {
            format!(
                "host: 127.0.0.1\nport: {main}\nreceivers:\n  r: {{port: {recv}, bind_host: 127.0.0.1, api_keys: [{{key: k0, pipe_id: p0}}]}}\n\
             views:\n  p0: {{driver: fs, api_keys: [q0]}}\npipes:\n  p0: {{receiver: r, views: [p0], session_timeout_seconds: 600}}\n"
            )
        },
    )
}

fn status_mb(pid: u32, field: &str) -> f64 {
    proc_status_mb(pid, field)
}

/// Sends a request whose body is `len` bytes (streamed in 1 MB writes) and returns the status
/// line's code, 0 if the connection failed before an answer.
fn post(port: u16, path: &str, key: Option<&str>, len: usize, frame: (&[u8], &[u8])) -> u16 {
    let (prefix, suffix) = frame;
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let key = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{key}Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return read_status(&mut s);
    }
    let _ = s.write_all(prefix);
    let chunk = vec![b' '; 1 << 20];
    let mut left = len.saturating_sub(prefix.len() + suffix.len());
    while left > 0 {
        let n = left.min(chunk.len());
        if s.write_all(&chunk[..n]).is_err() {
            return read_status(&mut s);
        }
        left -= n;
    }
    let _ = s.write_all(suffix);
    read_status(&mut s)
}

fn read_status(s: &mut TcpStream) -> u16 {
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn get_ms(port: u16, path: &str, key: &str) -> Option<f64> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(5),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let code = read_status(&mut s);
    (code != 0).then(|| t.elapsed().as_secs_f64() * 1000.0)
}

/// Runs `n` concurrent `post`s; returns a histogram of status codes.
fn flood(
    port: u16,
    path: &str,
    key: Option<&'static str>,
    n: usize,
    len: usize,
    frame: (&'static [u8], &'static [u8]),
) -> String {
    let path = path.to_string();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || post(port, &path, key, len, frame))
        })
        .collect();
    let mut codes = std::collections::BTreeMap::new();
    for h in handles {
        *codes.entry(h.join().unwrap_or(0)).or_insert(0) += 1;
    }
    format!("{codes:?}")
}

fn open_session(port: u16) -> String {
    let body = br#"{"task_id": "probe:p0"}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST /api/v1/pipe/session/ HTTP/1.1\r\nHost: x\r\nX-API-Key: k0\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split("\"session_id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("session id")
        .to_string()
}

/// One attack against a fresh Fusion; prints the peak RSS above idle.
fn memory_case(
    name: &str,
    n: usize,
    len: usize,
    key: Option<&'static str>,
    frame: (&'static [u8], &'static [u8]),
    ingest: bool,
) {
    let f = start_fusion();
    let pid = f.pid();
    std::thread::sleep(Duration::from_secs(1));
    let sid = open_session(f.recv_port);
    let idle = status_mb(pid, "VmRSS:");
    let path = if ingest {
        format!("/api/v1/pipe/ingest/{sid}/events")
    } else {
        "/api/v1/pipe/session/".to_string()
    };
    let t = Instant::now();
    let codes = flood(f.recv_port, &path, key, n, len, frame);
    println!(
        "hostile {name} bodies={n}x{}MB codes={codes} secs={:.1} idle_mb={idle:.0} peak_above_idle_mb={:.0} rss_after_mb={:.0}",
        len / 1_000_000,
        t.elapsed().as_secs_f64(),
        status_mb(pid, "VmHWM:") - idle,
        status_mb(pid, "VmRSS:")
    );
}

fn memory_phase() {
    let bodies = env_usize("BODIES", 60);
    memory_case(
        "wrong_key_ingest",
        bodies,
        BODY,
        Some("wrong-key"),
        (b"", b""),
        true,
    );
    memory_case("no_key_session_create", 20, BODY, None, (b"", b""), false);
    memory_case(
        "valid_key_session_create",
        20,
        BODY,
        Some("k0"),
        (b"{\"task_id\": \"a:p0\", \"pad\": \"", b"\"}"),
        false,
    );
    // Valid key: 20 valid batches of the largest size the route takes (16 MiB), padded.
    let frame: (&[u8], &[u8]) = (
        b"{\"events\": [], \"source_type\": \"message\", \"pad\": \"",
        b"\"}",
    );
    memory_case(
        "valid_key_max_batches",
        20,
        16 << 20,
        Some("k0"),
        frame,
        true,
    );
}

fn connection_phase() {
    let (slow, idle_n, wait) = (
        env_usize("SLOW", 1000),
        env_usize("IDLE", 2000),
        env_usize("WAIT_SECS", 40),
    );
    let f = start_fusion();
    std::thread::sleep(Duration::from_secs(1));
    let base: Vec<f64> = (0..20)
        .filter_map(|_| get_ms(f.main_port, "/api/v1/views/p0/stats", "q0"))
        .collect();
    let mut socks = Vec::new();
    for i in 0..slow + idle_n {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", f.recv_port)) {
            if i < slow {
                let _ = s.write_all(b"POST /api/v1/pipe/session/ HTTP/1.1\r\nHost: x\r\n");
            }
            socks.push(s);
        }
    }
    let opened = socks.len();
    let start = Instant::now();
    let mut lat = Vec::new();
    while start.elapsed() < Duration::from_secs(wait as u64) {
        for (i, s) in socks.iter_mut().enumerate().take(slow) {
            let _ = s.write_all(b"X");
            let _ = i;
        }
        lat.push(get_ms(f.main_port, "/api/v1/views/p0/stats", "q0").unwrap_or(f64::INFINITY));
        std::thread::sleep(Duration::from_secs(1));
    }
    // Count the connections the server has closed.
    let mut closed = 0;
    for s in &mut socks {
        let _ = s.set_nonblocking(true);
        let mut b = [0u8; 1024];
        match s.read(&mut b) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => closed += 1,
            _ => {}
        }
    }
    lat.sort_by(f64::total_cmp);
    let max = lat.last().copied().unwrap_or(0.0);
    let p50 = lat.get(lat.len() / 2).copied().unwrap_or(0.0);
    let b50 = {
        let mut b = base.clone();
        b.sort_by(f64::total_cmp);
        b.get(b.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "hostile connections slow={slow} idle={idle_n} opened={opened} closed_after_{wait}s={closed} stats_ms_idle_p50={b50:.2} stats_ms_under_attack p50={p50:.2} max={max:.2}"
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    memory_phase();
    connection_phase();
}
