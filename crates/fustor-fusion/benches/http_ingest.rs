//! End-to-end ingest and query benchmark over HTTP on loopback. Prints figures; see
//! docs/performance.md.
//!
//! `cargo bench -p fustor-fusion --bench http_ingest` — env: `ROWS` (per pipe, default
//! 1,000,000), `PIPES` (comma list of concurrency levels, default `1,2,4`), `RSS_FILES` (files for
//! the memory run, default 0 = skip; 10000000 for the figure), `FUSION_BIN` (another
//! fustor-fusion binary to measure).
//!
//! Fusion runs as its own process (the real binary), so client and server do not share an
//! allocator, and its RSS is read from /proc.

// A benchmark aborts on setup failure: `expect` is the clearest report it can give.
#![allow(clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fustor_testkit::{FusionProcess, env_usize, fusion_bin, proc_status_mb};
use serde_json::{Value, json};

const BATCH: usize = 1000;

/// The real binary with `pipes` pipes `p<i>` (agent key `k<i>`, view `p<i>`, query key `q<i>`).
struct Fusion {
    proc: FusionProcess,
    main: String,
    recv: String,
}

fn start_fusion(pipes: usize) -> Fusion {
    let yaml = |mp: u16, rp: u16| {
        let mut y = format!(
            "host: 127.0.0.1\nport: {mp}\nreceivers:\n  r: {{port: {rp}, bind_host: 127.0.0.1, api_keys: ["
        );
        for i in 0..pipes {
            y.push_str(&format!("{{key: k{i}, pipe_id: p{i}}},"));
        }
        y.push_str("]}\nviews:\n");
        for i in 0..pipes {
            y.push_str(&format!(
                "  p{i}: {{driver: fs, api_keys: [q{i}], driver_params: {{max_tree_items: 0}}}}\n"
            ));
        }
        y.push_str("pipes:\n");
        for i in 0..pipes {
            y.push_str(&format!(
                "  p{i}: {{receiver: r, views: [p{i}], session_timeout_seconds: 600}}\n"
            ));
        }
        y
    };
    // `FUSION_BIN` probes another build (e.g. the previous release) under the same load.
    let proc = FusionProcess::start(&fusion_bin(env!("CARGO_BIN_EXE_fustor-fusion")), yaml);
    Fusion {
        main: format!("http://127.0.0.1:{}", proc.main_port),
        recv: format!("http://127.0.0.1:{}", proc.recv_port),
        proc,
    }
}

fn rss_mb(pid: u32) -> f64 {
    proc_status_mb(pid, "VmRSS:")
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

async fn ingest_run(pipes: usize, rows_per_pipe: usize) {
    let f = start_fusion(pipes);
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
        "http_ingest pipes={pipes} rows={total} secs={secs:.2} rows_per_sec={:.0} fusion_rss_mb={:.0}",
        total as f64 / secs,
        rss_mb(f.proc.pid())
    );
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn query_under_load(rows: usize) {
    let f = start_fusion(1);
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
    let f = start_fusion(1);
    let c = reqwest::Client::new();
    let sid = session(&c, &f, "k0").await;
    let base = rss_mb(f.proc.pid());
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
    let rss = rss_mb(f.proc.pid());
    println!(
        "fusion_rss files={n} load_secs={secs:.1} rows_per_sec={:.0} rss_mb={rss:.0} bytes_per_file={:.1}",
        n as f64 / secs,
        (rss - base) * 1048576.0 / n as f64
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _ = Path::new(".");
    rt.block_on(async {
        for p in levels {
            ingest_run(p, rows / p).await;
        }
        query_under_load(rows).await;
        if rss_files > 0 {
            rss_run(rss_files).await;
        }
    });
}
