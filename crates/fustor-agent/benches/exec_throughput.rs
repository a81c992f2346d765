//! Exec driver protocol throughput. Prints figures for docs/performance.md.
//!
//! ```text
//! cargo build --release -p fustor-fusion -p fustor-agent
//! ROWS=200000 REPS=3 cargo bench -p fustor-agent --bench exec_throughput
//! ```
//!
//! * `driver only`: the trivial Python driver (`benches/trivial_driver.py`) writing its ROWS
//!   snapshot rows to /dev/null: the driver's own cost, the ceiling of the rest.
//! * `snapshot decode`: an exec source in this process reading that snapshot (process pipes,
//!   line framing, typed decoding, events) — the agent side of the protocol.
//! * `snapshot → Fusion`: the real `fustor-agent` binary with that exec source and a real
//!   `fustor-fusion` on 127.0.0.1, from agent start until the view holds ROWS files.
//! * `changes → Fusion`: the same with ROWS one-row `change` messages (bus, realtime batches).
//!
//! Medians of REPS runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fustor_agent::exec::{ExecParams, ExecSource};
use fustor_core::config::{DriverParams, SourceConfig};
use fustor_testkit::{FusionProcess, env_usize, terminate};

const AGENT: &str = env!("CARGO_BIN_EXE_fustor-agent");

fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/trivial_driver.py")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn source_yaml(rows: usize, mode: &str) -> String {
    format!(
        "driver: exec\nuri: bench\nmax_queue_size: 10000\ndriver_params:\n  command: [python3, {:?}, \"{rows}\", {mode}]\n",
        driver().display().to_string()
    )
}

fn driver_only(rows: usize) -> f64 {
    let t = Instant::now();
    let mut child = Command::new("python3")
        .arg(driver())
        .arg(rows.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"{\"type\":\"hello\"}\n{\"type\":\"snapshot\",\"id\":1}\n{\"type\":\"shutdown\"}\n")
            .unwrap();
    }
    child.wait().unwrap();
    t.elapsed().as_secs_f64()
}

fn snapshot_decode(rows: usize) -> f64 {
    let cfg: SourceConfig = serde_norway::from_str(&source_yaml(rows, "snapshot")).unwrap();
    let params = ExecParams::from_params(&cfg.driver_params).unwrap();
    let src = ExecSource::start(&cfg, params).unwrap();
    let t = Instant::now();
    let n: usize = fustor_agent::source::Source::snapshot(src.as_ref())
        .map(|e| e.rows.len())
        .sum();
    let took = t.elapsed().as_secs_f64();
    assert_eq!(n, rows, "rows decoded");
    took
}

fn to_fusion(rows: usize, mode: &str) -> f64 {
    let bin = Path::new(AGENT).with_file_name("fustor-fusion");
    assert!(bin.exists(), "build fustor-fusion first (see the header)");
    let fusion = FusionProcess::start(&bin, |main, recv| {
        format!(
            "host: 127.0.0.1\nport: {main}\nsession_cleanup_interval: 1\n\
             receivers:\n  http-main: {{driver: http, bind_host: 127.0.0.1, port: {recv}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}\n\
             views:\n  v1: {{driver: fs, api_keys: [qk1], driver_params: {{max_tree_items: 0}}}}\n\
             pipes:\n  v1: {{receiver: http-main, views: [v1], session_timeout_seconds: 30, audit_interval_sec: 0, sentinel_interval_sec: 0}}\n"
        )
    });
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("agent-config")).unwrap();
    let src: String = source_yaml(rows, mode)
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    std::fs::write(
        home.path().join("agent-config/default.yaml"),
        format!(
            "agent_id: bench\nsources:\n  src:\n{src}senders:\n  fusion: {{driver: fusion, uri: \"http://127.0.0.1:{}\", credential: {{key: agent-key}}}}\n\
             pipes:\n  v1: {{source: src, sender: fusion}}\n",
            fusion.recv_port
        ),
    )
    .unwrap();
    let http = reqwest::blocking::Client::new();
    let t = Instant::now();
    let mut agent = Command::new(AGENT)
        .arg("--home")
        .arg(home.path())
        .args(["start", "--no-console-log"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!(
        "http://127.0.0.1:{}/api/v1/views/v1/stats",
        fusion.main_port
    );
    loop {
        let files = http
            .get(&url)
            .header("X-API-Key", "qk1")
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .and_then(|v| v["total_files"].as_u64())
            .unwrap_or(0);
        if files as usize >= rows {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "view stuck at {files}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = t.elapsed().as_secs_f64();
    terminate(&mut agent, Duration::from_secs(10));
    took
}

fn main() {
    let rows = env_usize("ROWS", 200_000);
    let reps = env_usize("REPS", 3).max(1);
    println!("exec protocol throughput, {rows} rows, median of {reps}");
    let report = |name: &str, f: &dyn Fn() -> f64| {
        let s = median((0..reps).map(|_| f()).collect());
        println!("  {name:<20} {s:>7.2} s  {:>10.0} rows/s", rows as f64 / s);
    };
    report("driver only", &|| driver_only(rows));
    report("snapshot decode", &|| snapshot_decode(rows));
    report("snapshot → Fusion", &|| to_fusion(rows, "snapshot"));
    report("changes → Fusion", &|| to_fusion(rows, "changes"));
}
