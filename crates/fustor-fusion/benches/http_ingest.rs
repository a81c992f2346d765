//! End-to-end ingest and query benchmark over HTTP on loopback. Prints figures; see
//! docs/performance.md.
//!
//! `cargo bench -p fustor-fusion --bench http_ingest` — env: `ROWS` (per pipe, default
//! 1,000,000), `PIPES` (comma list of concurrency levels, default `1,2,4`), `RSS_FILES` (files for
//! the memory run, default 0 = skip; 10000000 for the figure), `FUSION_BIN` (another
//! fustor-fusion binary to measure), `PERSIST` (comma list of `off`, `on` (log fsynced before
//! each answer), `write` (log written to the OS before each answer, `persist_fsync: false`);
//! default `off,on,write`: each concurrency level is measured in each mode in the same run), `RESTART_FILES` (files for the restart-time run of a persisted view, default 0 = skip).
//!
//! Fusion runs as its own process (the real binary), so client and server do not share an
//! allocator, and its RSS is read from /proc.

// A benchmark aborts on setup failure: `expect` is the clearest report it can give.
#![allow(clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fustor_testkit::{env_usize, free_port, proc_status_mb, wait_for_port};
use serde_json::{Value, json};

const BATCH: usize = 1000;

struct Fusion {
    child: Child,
    main: String,
    recv: String,
    _home: Option<tempfile::TempDir>,
}

impl Drop for Fusion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_fusion(pipes: usize, persist: &str) -> Fusion {
    let home = tempfile::tempdir().expect("tempdir");
    let (mp, rp) = (free_port(), free_port());
    let mut f = start_fusion_in(home.path(), mp, rp, pipes, persist);
    f._home = Some(home);
    f
}

fn start_fusion_in(home: &Path, mp: u16, rp: u16, pipes: usize, persist: &str) -> Fusion {
    let persist = match persist {
        "off" => "persist: false",
        "write" => "persist: true, persist_fsync: false",
        _ => "persist: true",
    };
    let dir = home.join("fusion-config");
    std::fs::create_dir_all(&dir).expect("config dir");
    let mut y = format!(
        "host: 127.0.0.1\nport: {mp}\nreceivers:\n  r: {{port: {rp}, bind_host: 127.0.0.1, api_keys: ["
    );
    for i in 0..pipes {
        y.push_str(&format!("{{key: k{i}, pipe_id: p{i}}},"));
    }
    y.push_str("]}\nviews:\n");
    for i in 0..pipes {
        y.push_str(&format!(
            "  p{i}: {{driver: fs, api_keys: [q{i}], {persist}, driver_params: {{max_tree_items: 0}}}}\n"
        ));
    }
    y.push_str("pipes:\n");
    for i in 0..pipes {
        y.push_str(&format!(
            "  p{i}: {{receiver: r, views: [p{i}], session_timeout_seconds: 600}}\n"
        ));
    }
    std::fs::write(dir.join("default.yaml"), y).expect("config");
    // `FUSION_BIN` probes another build (e.g. the previous release) under the same load.
    let bin = std::env::var("FUSION_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_fustor-fusion").to_string());
    let child = Command::new(bin)
        .arg("--home")
        .arg(home)
        .args(["start", "--no-console-log"])
        // `FUSION_LOG` adds targets, e.g. `fustor_view_fs=debug` for the restore's phases.
        .env(
            "RUST_LOG",
            match std::env::var("FUSION_LOG") {
                Ok(extra) => format!("warn,fustor_fusion::persist=info,{extra}"),
                Err(_) => "warn,fustor_fusion::persist=info".into(),
            },
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fusion");
    let f = Fusion {
        child,
        main: format!("http://127.0.0.1:{mp}"),
        recv: format!("http://127.0.0.1:{rp}"),
        _home: None,
    };
    wait_for_port(rp, Duration::from_secs(5));
    f
}

fn rss_mb(pid: u32) -> f64 {
    proc_status_mb(pid, "VmRSS:")
}

/// User + system CPU seconds the process has used (`/proc/<pid>/stat`, fields 14 and 15):
/// less sensitive to the machine's load than wall time.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// One snapshot batch body of `BATCH` rows (10 events x 100), paths unique per (pipe, batch).
fn body(pipe: usize, batch: usize, is_end: bool) -> Vec<u8> {
    let mut s = Vec::with_capacity(BATCH * 160);
    let _ = write!(
        s,
        "{{\"source_type\":\"snapshot\",\"is_end\":{is_end},\"events\":["
    );
    for e in 0..BATCH / 100 {
        if e > 0 {
            s.push(b',');
        }
        let _ = write!(
            s,
            "{{\"event_type\":\"update\",\"event_schema\":\"fs\",\"table\":\"files\",\"fields\":[],\"message_source\":\"snapshot\",\"index\":-1,\"rows\":["
        );
        for r in 0..100 {
            if r > 0 {
                s.push(b',');
            }
            let n = e * 100 + r;
            let _ = write!(
                s,
                "{{\"path\":\"/proj{pipe}/run{:04}/sample_{batch:06}_{n:04}.h5\",\"file_name\":\"sample_{batch:06}_{n:04}.h5\",\"size\":{},\"modified_time\":1700000000.5,\"created_time\":1700000000.5,\"is_directory\":false}}",
                batch % 1000,
                n * 7 + 1
            );
        }
        s.extend_from_slice(b"]}");
    }
    s.extend_from_slice(b"]}");
    s
}

async fn session(c: &reqwest::Client, f: &Fusion, key: &str) -> String {
    let r: Value = c
        .post(format!("{}/api/v1/pipe/session/", f.recv))
        .header("X-API-Key", key)
        .json(&json!({"task_id": format!("bench:{key}")}))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("session json");
    r["session_id"].as_str().unwrap_or_default().to_string()
}

async fn push_all(
    c: reqwest::Client,
    url: String,
    key: String,
    pipe: usize,
    batches: usize,
) -> usize {
    let mut rows = 0;
    for b in 0..batches {
        let resp = c
            .post(&url)
            .header("X-API-Key", &key)
            .body(body(pipe, b, b + 1 == batches))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => rows += BATCH,
            Ok(r) => panic!("ingest failed: {}", r.status()),
            Err(e) => panic!("ingest failed: {e}"),
        }
    }
    rows
}

async fn ingest_run(pipes: usize, rows_per_pipe: usize, persist: &str) {
    let f = start_fusion(pipes, persist);
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()
        .expect("client");
    let mut sids = Vec::new();
    for i in 0..pipes {
        sids.push(session(&c, &f, &format!("k{i}")).await);
    }
    let batches = rows_per_pipe / BATCH;
    let t = Instant::now();
    let handles: Vec<_> = (0..pipes)
        .map(|i| {
            let url = format!("{}/api/v1/pipe/ingest/{}/events", f.recv, sids[i]);
            tokio::spawn(push_all(c.clone(), url, format!("k{i}"), i, batches))
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap_or(0);
    }
    // The last batch carries is_end: its response returns after the queue drained.
    let secs = t.elapsed().as_secs_f64();
    println!(
        "http_ingest pipes={pipes} persist={persist} rows={total} secs={secs:.2} rows_per_sec={:.0} fusion_rss_mb={:.0}",
        total as f64 / secs,
        rss_mb(f.child.id())
    );
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn query_under_load(rows: usize) {
    let f = start_fusion(1, "on");
    let c = reqwest::Client::new();
    let sid = session(&c, &f, "k0").await;
    // Make the view ready and non-trivial first.
    push_all(
        c.clone(),
        format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv),
        "k0".into(),
        0,
        10,
    )
    .await;
    let loading = Arc::new(AtomicBool::new(true));
    let url = format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv);
    let (c2, l2) = (c.clone(), loading.clone());
    let loader = tokio::spawn(async move {
        let n = push_all(c2, url, "k0".into(), 1, rows / BATCH).await;
        l2.store(false, Ordering::Relaxed);
        n
    });
    let (mut stats, mut tree) = (Vec::new(), Vec::new());
    while loading.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = c
            .get(format!("{}/api/v1/views/p0/stats", f.main))
            .header("X-API-Key", "q0")
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            stats.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        let r = c
            .get(format!(
                "{}/api/v1/views/p0/tree?path=/proj1&max_depth=1",
                f.main
            ))
            .header("X-API-Key", "q0")
            .send()
            .await;
        if let Ok(r) = r
            && r.status().is_success()
        {
            let _ = r.bytes().await;
            tree.push(t.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let loaded = loader.await.unwrap_or(0);
    if stats.is_empty() || tree.is_empty() {
        println!("query_under_load: no samples");
        return;
    }
    println!(
        "query_under_load ingest_rows={loaded} stats_ms p50={:.2} p99={:.2} (n={}) tree_depth1_ms p50={:.2} p99={:.2} (n={})",
        pct(&mut stats, 0.5),
        pct(&mut stats, 0.99),
        stats.len(),
        pct(&mut tree, 0.5),
        pct(&mut tree, 0.99),
        tree.len()
    );
}

async fn rss_run(files: usize) {
    let f = start_fusion(1, "off");
    let c = reqwest::Client::new();
    let sid = session(&c, &f, "k0").await;
    let base = rss_mb(f.child.id());
    let t = Instant::now();
    let n = push_all(
        c,
        format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv),
        "k0".into(),
        0,
        files / BATCH,
    )
    .await;
    let secs = t.elapsed().as_secs_f64();
    let rss = rss_mb(f.child.id());
    println!(
        "fusion_rss files={n} load_secs={secs:.1} rows_per_sec={:.0} rss_mb={rss:.0} bytes_per_file={:.1}",
        n as f64 / secs,
        (rss - base) * 1048576.0 / n as f64
    );
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Start of the process → first 200 on `/tree` of the view.
async fn first_tree(c: &reqwest::Client, f: &Fusion, t: Instant) -> f64 {
    loop {
        if let Ok(r) = c
            .get(format!(
                "{}/api/v1/views/p0/tree?path=/&max_depth=1",
                f.main
            ))
            .header("X-API-Key", "q0")
            .send()
            .await
            && r.status().is_success()
        {
            let _ = r.bytes().await;
            return t.elapsed().as_secs_f64();
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "no 200 after restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Restart time of a persisted view of `files` files: after `kill -9` (log replay, no
/// snapshot since the load) and after a clean stop (final snapshot), plus the bytes on disk.
async fn restart_run(files: usize) {
    let home = tempfile::tempdir().expect("tempdir");
    let (mp, rp) = (free_port(), free_port());
    let mut f = start_fusion_in(home.path(), mp, rp, 1, "on");
    let c = reqwest::Client::new();
    let sid = session(&c, &f, "k0").await;
    let t = Instant::now();
    let n = push_all(
        c.clone(),
        format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv),
        "k0".into(),
        0,
        files / BATCH,
    )
    .await;
    let load = t.elapsed().as_secs_f64();
    let data = home.path().join("fusion-data");
    let log_bytes = dir_bytes(&data);
    let _ = f.child.kill();
    let _ = f.child.wait();
    drop(f);
    // 1. After kill -9: everything comes from the log.
    let t = Instant::now();
    let f = start_fusion_in(home.path(), mp, rp, 1, "on");
    let replay = first_tree(&c, &f, t).await;
    let replay_cpu = cpu_secs(f.child.id());
    // 2. Clean stop (final snapshot), then start from the snapshot alone.
    let pid = f.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let mut f = f;
    let _ = f.child.wait();
    drop(f);
    let snap_bytes = dir_bytes(&data);
    let t = Instant::now();
    let f = start_fusion_in(home.path(), mp, rp, 1, "on");
    let from_snapshot = first_tree(&c, &f, t).await;
    let from_snapshot_cpu = cpu_secs(f.child.id());
    let rss = rss_mb(f.child.id());
    // Longest pause of the writers while a snapshot was streamed (from Fusion's own log).
    let log = std::fs::read_to_string(home.path().join("logs/fusion.log")).unwrap_or_default();
    // Restore phases (`FUSION_LOG=fustor_view_fs=debug` adds the per-phase lines).
    for l in log
        .lines()
        .filter(|l| l.contains("restore:") || l.contains("persisted view loaded"))
    {
        println!("  fusion: {l}");
    }
    let pause_ms = log
        .lines()
        .filter(|l| l.contains("view snapshot written"))
        .filter_map(|l| l.split("pause_ms=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    println!(
        "restart files={n} snapshot_pause_ms={pause_ms} load_secs={load:.1} log_bytes_per_file={:.1} restart_from_log_secs={replay:.2} restart_from_log_cpu_secs={replay_cpu:.2} snapshot_bytes_per_file={:.1} restart_from_snapshot_secs={from_snapshot:.2} restart_from_snapshot_cpu_secs={from_snapshot_cpu:.2} rss_mb={rss:.0}",
        log_bytes as f64 / n as f64,
        snap_bytes as f64 / n as f64,
    );
}

fn main() {
    let rows = env_usize("ROWS", 1_000_000);
    let levels: Vec<usize> = std::env::var("PIPES")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rss_files = env_usize("RSS_FILES", 0);
    let restart_files = env_usize("RESTART_FILES", 0);
    let modes: Vec<String> = std::env::var("PERSIST")
        .unwrap_or_else(|_| "off,on,write".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _ = Path::new(".");
    rt.block_on(async {
        for p in levels {
            for persist in &modes {
                ingest_run(p, rows / p, persist).await;
            }
        }
        query_under_load(rows).await;
        if rss_files > 0 {
            rss_run(rss_files).await;
        }
        if restart_files > 0 {
            restart_run(restart_files).await;
        }
    });
}
