//! Design-scale forest benchmark over HTTP (issue 10). Prints figures; see docs/performance.md.
//!
//! `cargo bench -p fustor-fusion --bench forest_scale_http` starts the real `fustor-fusion`
//! binary with one `forest-fs` view of `N` member pipes, pushes `F` files per member as snapshot
//! batches (every member a copy of one share: `/d<dir>/sample_<n>.h5`, 1,000 files per
//! directory), then measures for `SECS` seconds per phase while every member receives `R`
//! realtime rows/s:
//!
//! 1. queries alone: `stats?best=`, `tree` depth 1 of a 1,000-entry directory (all members and
//!    `best=`), exact-path search, realtime visibility (create → visible in `stats?path=`);
//! 2. the same visibility probe while selective searches (`sample_00000123*`) run back to back;
//! 3. the same while unselective searches (`*7?`: no literal the index can use, so every name
//!    is read; `limit=100`) run back to back.
//!
//! Env: `N` (default 4), `F` (default 2,000,000), `R` (default 1,000), `SECS` (default 10),
//! `FUSION_BIN` (another build to measure). The design scale of the forest design document is
//! `N=20 F=10000000` on a 16-core machine; the defaults fit the 2-core CI machine.

// A benchmark aborts on setup failure: `expect` is the clearest report it can give.
#![allow(clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fustor_testkit::{FusionProcess, env_usize, fusion_bin, proc_status_mb, wait_for_port};
use serde_json::{Value, json};

const BATCH: usize = 1000;
const PER_DIR: usize = 1000;

struct Fusion {
    proc: FusionProcess,
    main: String,
    recv: String,
}

fn start_fusion(members: usize) -> Fusion {
    let bin = fusion_bin(env!("CARGO_BIN_EXE_fustor-fusion"));
    let proc = FusionProcess::start(&bin, |mp, rp| {
        let mut y = format!(
            "host: 127.0.0.1\nport: {mp}\nreceivers:\n  r: {{port: {rp}, bind_host: 127.0.0.1, api_keys: ["
        );
        for i in 0..members {
            y.push_str(&format!("{{key: k{i}, pipe_id: m{i:02}}},"));
        }
        y.push_str("]}\nviews:\n  forest: {driver: forest-fs, api_keys: [q], driver_params: {max_tree_items: 0}}\npipes:\n");
        for i in 0..members {
            y.push_str(&format!(
                "  m{i:02}: {{receiver: r, views: [forest], session_timeout_seconds: 3600}}\n"
            ));
        }
        y
    });
    wait_for_port(proc.main_port, Duration::from_secs(10));
    Fusion {
        main: format!("http://127.0.0.1:{}", proc.main_port),
        recv: format!("http://127.0.0.1:{}", proc.recv_port),
        proc,
    }
}

fn rss_mb(f: &Fusion) -> f64 {
    proc_status_mb(f.proc.pid(), "VmRSS:")
}

fn row(s: &mut Vec<u8>, path: &str, size: usize) {
    let name = path.rsplit('/').next().unwrap_or("");
    let _ = write!(
        s,
        "{{\"path\":\"{path}\",\"file_name\":\"{name}\",\"size\":{size},\"modified_time\":1700000000.5,\"created_time\":1700000000.5,\"is_directory\":false}}"
    );
}

/// A batch body of `paths` as one event of `source` (`snapshot` or `message`).
fn body(paths: &[String], source: &str, is_end: bool) -> Vec<u8> {
    let ms = if source == "snapshot" {
        "snapshot"
    } else {
        "realtime"
    };
    let mut s = Vec::with_capacity(paths.len() * 170 + 256);
    let _ = write!(
        s,
        "{{\"source_type\":\"{source}\",\"is_end\":{is_end},\"events\":[{{\"event_type\":\"update\",\"event_schema\":\"fs\",\"table\":\"files\",\"fields\":[],\"message_source\":\"{ms}\",\"index\":-1,\"rows\":["
    );
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        row(&mut s, p, 1000 + i);
    }
    s.extend_from_slice(b"]}]}");
    s
}

fn share_path(n: usize) -> String {
    format!("/d{:05}/sample_{n:08}.h5", n / PER_DIR)
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

async fn post(c: &reqwest::Client, url: &str, key: &str, body: Vec<u8>) {
    match c.post(url).header("X-API-Key", key).body(body).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => panic!("ingest failed: {}", r.status()),
        Err(e) => panic!("ingest failed: {e}"),
    }
}

async fn load_member(c: reqwest::Client, url: String, key: String, files: usize) {
    let batches = files.div_ceil(BATCH);
    for b in 0..batches {
        let paths: Vec<String> = (b * BATCH..((b + 1) * BATCH).min(files))
            .map(share_path)
            .collect();
        post(&c, &url, &key, body(&paths, "snapshot", b + 1 == batches)).await;
    }
}

/// `R` realtime rows/s to one member, in ten batches a second, until `stop`.
async fn realtime_load(
    c: reqwest::Client,
    url: String,
    key: String,
    member: usize,
    rate: usize,
    stop: Arc<AtomicBool>,
) {
    let per_tick = (rate / 10).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let paths: Vec<String> = (0..per_tick)
            .map(|i| format!("/rt/m{member}/r{:05}/f{:08}.dat", (n + i) / PER_DIR, n + i))
            .collect();
        n += per_tick;
        post(&c, &url, &key, body(&paths, "message", false)).await;
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, v: &mut [f64]) {
    println!(
        "{name:<34} p50={:>8.2} ms  p90={:>8.2} ms  p99={:>8.2} ms  (n={})",
        pct(v, 0.5),
        pct(v, 0.9),
        pct(v, 0.99),
        v.len()
    );
}

/// Times `GET url` back to back until `stop`.
async fn query_loop(c: reqwest::Client, url: String, stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = c.get(&url).header("X-API-Key", "q").send().await;
        if let Ok(r) = r
            && r.status().is_success()
            && r.bytes().await.is_ok()
        {
            out.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    out
}

/// Creates one new file on member 0 every 20 ms and times until `stats?path=` shows it.
async fn visibility_probe(
    c: reqwest::Client,
    f_main: String,
    url: String,
    stop: Arc<AtomicBool>,
    seq: Arc<AtomicU64>,
) -> Vec<f64> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let path = format!("/probe/p{:05}/f{n:08}.dat", n / 1000);
        let t = Instant::now();
        post(
            &c,
            &url,
            "k0",
            body(std::slice::from_ref(&path), "message", false),
        )
        .await;
        let q = format!("{f_main}/api/v1/views/forest/stats?path={path}");
        loop {
            let v: Option<Value> = match c.get(&q).header("X-API-Key", "q").send().await {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
            let seen = v
                .as_ref()
                .and_then(|v| v["members"].as_array())
                .and_then(|m| m.first())
                .is_some_and(|m0| m0["file_count"] == 1);
            if seen {
                out.push(t.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                out.push(30_000.0);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

async fn run() {
    let (members, files, rate, secs) = (
        env_usize("N", 4),
        env_usize("F", 2_000_000),
        env_usize("R", 1000),
        env_usize("SECS", 10),
    );
    println!(
        "# forest_scale_http: N={members} members x F={files} files, R={rate} rows/s/member, {secs} s per phase"
    );
    let f = start_fusion(members);
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let mut urls = Vec::new();
    for i in 0..members {
        let sid = session(&c, &f, &format!("k{i}")).await;
        urls.push(format!("{}/api/v1/pipe/ingest/{sid}/events", f.recv));
    }
    let base = rss_mb(&f);
    let t = Instant::now();
    let loads: Vec<_> = (0..members)
        .map(|i| {
            tokio::spawn(load_member(
                c.clone(),
                urls[i].clone(),
                format!("k{i}"),
                files,
            ))
        })
        .collect();
    for l in loads {
        let _ = l.await;
    }
    let secs_load = t.elapsed().as_secs_f64();
    let total = members * files;
    let rss = rss_mb(&f);
    println!(
        "load: {total} files in {secs_load:.1} s = {:.0} files/s; fusion RSS {rss:.0} MB = {:.1} B/file",
        total as f64 / secs_load,
        (rss - base) * 1048576.0 / total as f64
    );

    let stop_rt = Arc::new(AtomicBool::new(false));
    let rt: Vec<_> = (0..members)
        .map(|i| {
            tokio::spawn(realtime_load(
                c.clone(),
                urls[i].clone(),
                format!("k{i}"),
                i,
                rate,
                stop_rt.clone(),
            ))
        })
        .collect();
    let seq = Arc::new(AtomicU64::new(0));
    let dir = format!("/d{:05}", files / PER_DIR / 2);
    let v = |q: &str| format!("{}/api/v1/views/forest/{q}", f.main);

    // Phase 1: queries one after another, and the visibility probe.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(visibility_probe(
        c.clone(),
        f.main.clone(),
        urls[0].clone(),
        stop.clone(),
        seq.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(secs as u64);
    let (mut stats, mut tree_all, mut tree_best, mut exact) = (vec![], vec![], vec![], vec![]);
    let exact_path = share_path(files / 2 + 1);
    while Instant::now() < deadline {
        for (url, acc) in [
            (v(&format!("stats?path={dir}&best=file_count")), &mut stats),
            (v(&format!("tree?path={dir}&max_depth=1")), &mut tree_all),
            (
                v(&format!("tree?path={dir}&max_depth=1&best=file_count")),
                &mut tree_best,
            ),
            (v(&format!("search?pattern={exact_path}")), &mut exact),
        ] {
            let t = Instant::now();
            if let Ok(r) = c.get(&url).header("X-API-Key", "q").send().await
                && r.status().is_success()
                && r.bytes().await.is_ok()
            {
                acc.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut vis_quiet = probe.await.unwrap_or_default();
    report("stats?best= (1 dir)", &mut stats);
    report("tree depth 1, all members", &mut tree_all);
    report("tree depth 1, best=", &mut tree_best);
    println!(
        "tree all/best ratio (p50)          {:.2}",
        pct(&mut tree_all, 0.5) / pct(&mut tree_best, 0.5)
    );
    report("search exact path", &mut exact);
    report("realtime visibility (no search)", &mut vis_quiet);

    // Phases 2 and 3: one kind of search back to back while the probe runs.
    for (name, q) in [
        ("search sample_00000123*", "search?pattern=sample_00000123*"),
        (
            "search *7? limit=100 (scan)",
            "search?pattern=*7%3F&limit=100",
        ),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let probe = tokio::spawn(visibility_probe(
            c.clone(),
            f.main.clone(),
            urls[0].clone(),
            stop.clone(),
            seq.clone(),
        ));
        let searches = tokio::spawn(query_loop(c.clone(), v(q), stop.clone()));
        tokio::time::sleep(Duration::from_secs(secs as u64)).await;
        stop.store(true, Ordering::Relaxed);
        let mut vis = probe.await.unwrap_or_default();
        let mut lat = searches.await.unwrap_or_default();
        report(name, &mut lat);
        report("  realtime visibility meanwhile", &mut vis);
    }
    stop_rt.store(true, Ordering::Relaxed);
    for r in rt {
        let _ = r.await;
    }
    println!("fusion RSS at end {:.0} MB", rss_mb(&f));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}
