//! End-to-end agent benchmarks: the real `fustor-agent` binary against a real Fusion on
//! 127.0.0.1, real directories. Prints figures for docs/performance.md.
//!
//! ```text
//! cargo build --release -p fustor-fusion -p fustor-agent
//! cargo bench -p fustor-agent --bench agent_e2e
//! BENCH=latency,burst TRIALS=200 SECS=10 cargo bench -p fustor-agent --bench agent_e2e
//! ```
//!
//! Sections (`BENCH=` comma list, default all):
//! * `scan`: snapshot scan of a FILES-file tree (DIRS directories) on warm cache with
//!   `fustor_source_fs::Scanner::snapshot()`, side by side with
//!   `find DIR -printf '%p %s %T@\n' > /dev/null`.
//! * `startup`: `fustor-agent start` on that tree until Fusion's view holds every file.
//! * `latency`: close-write in a watched directory → the path answers 200 on `/tree`
//!   (TRIALS trials, p50/p99).
//! * `sustained`: RATE file creations/s for SECS s; time until the view holds all of them;
//!   agent and Fusion CPU.
//! * `burst`: one writer creating files as fast as it can for BURST_SECS s (new directory
//!   every 1,000 files); time to converge and files lost.
//!
//! Fusion is the `fustor-fusion` binary next to the agent binary (same profile directory)
//! when it exists; otherwise it runs in this process (its CPU is then the CPU of its threads).
//! WORKDIR (default: the temp dir) holds the watched directories of latency/sustained/burst.
//! The tree for `scan`/`startup` is kept in TREE (default `/tmp/fustor-bench-tree-FILES`) and
//! reused by later runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fustor_source_fs::{FsDriverParams, Scanner};
use fustor_testkit::{free_port, terminate};

const AGENT: &str = env!("CARGO_BIN_EXE_fustor-agent");

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------- /proc figures

fn clk_tck() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux we run on.
    100.0
}

/// utime + stime of a process (or of one thread: `/proc/self/task/<tid>/stat`), seconds.
fn cpu_of_stat(path: &Path) -> f64 {
    let Ok(s) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is index 0, utime is field 14 overall ⇒ index 11.
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (ut + st) / clk_tck()
}

/// `VmHWM` (peak RSS) and `VmRSS` of a process, MiB.
fn rss_mib(pid: &str) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (get("VmHWM:"), get("VmRSS:"))
}

// ------------------------------------------------------------------------------------ Fusion

enum FusionKind {
    Proc(Child),
    InProcess {
        rt: tokio::runtime::Runtime,
        server: Arc<fustor_fusion::daemon::FusionServer>,
    },
}

struct Fusion {
    kind: Option<FusionKind>,
    main: u16,
    recv: u16,
    _home: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

impl Fusion {
    fn start() -> Fusion {
        let home = tempfile::tempdir().unwrap();
        let (main, recv) = (free_port(), free_port());
        let cfg = home.path().join("fusion-config");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("default.yaml"),
            format!(
                "host: 127.0.0.1\nport: {main}\nsession_cleanup_interval: 1\n\
                 receivers:\n  http-main: {{driver: http, bind_host: 127.0.0.1, port: {recv}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}\n\
                 views:\n  v1: {{driver: fs, api_keys: [qk1], driver_params: {{max_tree_items: 0}}}}\n\
                 pipes:\n  v1: {{receiver: http-main, views: [v1], session_timeout_seconds: 30, audit_interval_sec: 0, sentinel_interval_sec: 0}}\n"
            ),
        )
        .unwrap();
        let bin = Path::new(AGENT).with_file_name("fustor-fusion");
        let kind = if bin.exists() {
            let child = Command::new(&bin)
                .arg("--home")
                .arg(home.path())
                .args(["start", "--no-console-log"])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            FusionKind::Proc(child)
        } else {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("fusion")
                .enable_all()
                .build()
                .unwrap();
            let server = rt
                .block_on(fustor_fusion::daemon::FusionServer::start(
                    &cfg,
                    &[],
                    fustor_fusion::daemon::Overrides::default(),
                ))
                .unwrap();
            FusionKind::InProcess { rt, server }
        };
        let f = Fusion {
            kind: Some(kind),
            main,
            recv,
            _home: home,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while f.get("/").0 != 200 {
            assert!(Instant::now() < deadline, "fusion did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        f
    }

    fn describe(&self) -> &'static str {
        match self.kind {
            Some(FusionKind::Proc(_)) => "fustor-fusion binary",
            _ => "in-process FusionServer (no fustor-fusion binary next to the agent)",
        }
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        match self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.main))
            .header("X-API-Key", "qk1")
            .send()
        {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.json().unwrap_or(serde_json::Value::Null))
            }
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// Status of `/tree?path=P&max_depth=0` only (no body parsing).
    fn present(&self, path: &str) -> bool {
        self.http
            .get(format!(
                "http://127.0.0.1:{}/api/v1/views/v1/tree?path={path}&max_depth=0&only_path=true",
                self.main
            ))
            .header("X-API-Key", "qk1")
            .send()
            .map(|r| r.status().as_u16() == 200)
            .unwrap_or(false)
    }

    /// `total_files` when the view is ready.
    fn files(&self) -> Option<u64> {
        let (s, b) = self.get("/api/v1/views/v1/stats");
        (s == 200).then(|| b["total_files"].as_u64()).flatten()
    }

    fn cpu(&self) -> f64 {
        match &self.kind {
            Some(FusionKind::Proc(c)) => cpu_of_stat(Path::new(&format!("/proc/{}/stat", c.id()))),
            _ => threads_cpu(&["fusion", "pipe-"]),
        }
    }

    fn rss(&self) -> (f64, f64) {
        match &self.kind {
            Some(FusionKind::Proc(c)) => rss_mib(&c.id().to_string()),
            _ => (f64::NAN, f64::NAN),
        }
    }
}

impl Drop for Fusion {
    fn drop(&mut self) {
        match self.kind.take() {
            Some(FusionKind::Proc(mut c)) => terminate(&mut c, Duration::from_secs(10)),
            Some(FusionKind::InProcess { rt, server }) => {
                rt.block_on(server.shutdown());
                drop(server);
                rt.shutdown_timeout(Duration::from_secs(2));
            }
            None => {}
        }
    }
}

/// CPU seconds of this process's threads whose name starts with one of `prefixes`.
fn threads_cpu(prefixes: &[&str]) -> f64 {
    let mut total = 0.0;
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for t in rd.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if prefixes.iter().any(|p| comm.trim().starts_with(p)) {
                total += cpu_of_stat(&t.path().join("stat"));
            }
        }
    }
    total
}

// ------------------------------------------------------------------------------------- Agent

struct Agent {
    child: Child,
    home: tempfile::TempDir,
}

impl Agent {
    /// `fustor-agent --home H start` watching `dir`; `source_extra` adds source keys.
    fn start(f: &Fusion, dir: &Path, source_extra: &str) -> Agent {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("agent-config")).unwrap();
        std::fs::write(
            home.path().join("agent-config/default.yaml"),
            format!(
                "agent_id: bench\nsources:\n  src: {{driver: fs, uri: {:?}{source_extra}}}\n\
                 senders:\n  fusion: {{driver: fusion, uri: \"http://127.0.0.1:{}\", credential: {{key: agent-key}}}}\n\
                 pipes:\n  v1: {{source: src, sender: fusion}}\n",
                dir.display().to_string(),
                f.recv
            ),
        )
        .unwrap();
        let child = Command::new(AGENT)
            .arg("--home")
            .arg(home.path())
            .args(["start", "--no-console-log"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Agent { child, home }
    }

    fn cpu(&self) -> f64 {
        cpu_of_stat(Path::new(&format!("/proc/{}/stat", self.child.id())))
    }

    fn rss(&self) -> (f64, f64) {
        rss_mib(&self.child.id().to_string())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("logs/agent.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

/// Watched directories of latency/sustained/burst live under WORKDIR (default: the system
/// temp dir), e.g. `/dev/shm` to take the disk out of the measurement.
fn work_dir() -> tempfile::TempDir {
    match std::env::var("WORKDIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

fn wait_ready(f: &Fusion, what: &str, limit: Duration) -> Duration {
    let t = Instant::now();
    while f.files().is_none() {
        assert!(t.elapsed() < limit, "{what}: view not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

/// Polls until the view holds `n` files; `None` when `limit` passed (returns the last count).
fn wait_files(f: &Fusion, n: u64, limit: Duration, poll: Duration) -> Result<Duration, u64> {
    let t = Instant::now();
    loop {
        let got = f.files().unwrap_or(0);
        if got == n {
            return Ok(t.elapsed());
        }
        if t.elapsed() > limit {
            return Err(got);
        }
        std::thread::sleep(poll);
    }
}

// -------------------------------------------------------------------------------------- tree

fn tree_dir(files: usize) -> PathBuf {
    std::env::var("TREE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(format!("/tmp/fustor-bench-tree-{files}")))
}

/// DIRS directories × FILES/DIRS empty files; reused when complete (marker `ROOT.complete`
/// next to the tree, so the tree holds exactly FILES files).
fn ensure_tree(root: &Path, files: usize, dirs: usize) {
    let mut marker = root.as_os_str().to_owned();
    marker.push(".complete");
    let marker = PathBuf::from(marker);
    if marker.exists() {
        return;
    }
    let t = Instant::now();
    let per = files / dirs.max(1);
    std::fs::create_dir_all(root).unwrap();
    let threads = 2;
    std::thread::scope(|s| {
        for w in 0..threads {
            s.spawn(move || {
                for d in (w..dirs).step_by(threads) {
                    let dir = root.join(format!("d{d:04}"));
                    std::fs::create_dir_all(&dir).unwrap();
                    for i in 0..per {
                        File::create(dir.join(format!("f{i:05}.dat"))).unwrap();
                    }
                }
            });
        }
    });
    File::create(&marker).unwrap();
    println!(
        "  (created {} in {:.1} s)",
        root.display(),
        t.elapsed().as_secs_f64()
    );
}

fn run_find(root: &Path) -> Duration {
    let t = Instant::now();
    let st = Command::new("find")
        .arg(root)
        .args(["-printf", "%p %s %T@\\n"])
        .stdout(File::create("/dev/null").unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    t.elapsed()
}

fn run_scanner(root: &Path, workers: usize) -> (Duration, u64) {
    let params = FsDriverParams {
        max_scan_workers: workers,
        ..FsDriverParams::default()
    };
    let scanner = Scanner::new(root, &params).unwrap();
    let t = Instant::now();
    let mut rows = 0u64;
    for ev in scanner.snapshot() {
        rows += ev.rows.len() as u64;
    }
    (t.elapsed(), rows)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------- sections

fn bench_scan(files: usize, dirs: usize, reps: usize) {
    let root = tree_dir(files);
    println!(
        "\n## scan: {files} files in {dirs} directories ({})",
        root.display()
    );
    ensure_tree(&root, files, dirs);
    // Warm the dentry/inode caches.
    run_find(&root);
    let _ = run_scanner(&root, fustor_source_fs::default_scan_workers());
    let n = (files + dirs + 1) as f64;
    let mut find_s: Vec<f64> = (0..reps).map(|_| run_find(&root).as_secs_f64()).collect();
    let find_med = median(&mut find_s);
    println!(
        "  find -printf '%p %s %T@\\n'   median {:.3} s  best {:.3} s  {:>10.0} entries/s",
        find_med,
        find_s[0],
        n / find_med
    );
    let base_rss = rss_mib("self").0;
    let mut worker_sets = vec![fustor_source_fs::default_scan_workers()];
    if let Ok(w) = std::env::var("WORKERS") {
        worker_sets = w.split(',').filter_map(|x| x.parse().ok()).collect();
    }
    for workers in worker_sets {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..reps {
            let (t, r) = run_scanner(&root, workers);
            times.push(t.as_secs_f64());
            rows = r;
        }
        let med = median(&mut times);
        println!(
            "  Scanner::snapshot() {workers} workers  median {:.3} s  best {:.3} s  {:>10.0} entries/s  ({rows} rows)  ratio vs find {:.2}x",
            med,
            times[0],
            rows as f64 / med,
            find_med / med
        );
    }
    let (hwm, _) = rss_mib("self");
    println!("  bench process peak RSS {hwm:.1} MiB (before the scans {base_rss:.1} MiB)");
}

fn bench_startup(files: usize, dirs: usize) {
    let root = tree_dir(files);
    println!("\n## startup: `fustor-agent start` → view holds all {files} files");
    ensure_tree(&root, files, dirs);
    let _ = run_find(&root); // warm cache
    let f = Fusion::start();
    println!("  fusion: {}", f.describe());
    let t = Instant::now();
    let a = Agent::start(&f, &root, "");
    let ready = wait_ready(&f, "startup", Duration::from_secs(600));
    let synced = wait_files(
        &f,
        files as u64,
        Duration::from_secs(600),
        Duration::from_millis(50),
    );
    let total = t.elapsed();
    match synced {
        Ok(_) => println!(
            "  start → view ready (snapshot end) {:.2} s; all files visible {:.2} s ({:.0} files/s)",
            ready.as_secs_f64(),
            total.as_secs_f64(),
            files as f64 / total.as_secs_f64()
        ),
        Err(got) => println!("  NOT synced after 600 s: {got} of {files}"),
    }
    let (ahwm, arss) = a.rss();
    let (fhwm, frss) = f.rss();
    println!(
        "  agent RSS peak {ahwm:.1} MiB (now {arss:.1}); fusion RSS peak {fhwm:.1} MiB (now {frss:.1}); CPU agent {:.1} s, fusion {:.1} s",
        a.cpu(),
        f.cpu()
    );
}

fn bench_latency(trials: usize) {
    println!("\n## latency: close-write → visible on /tree ({trials} trials)");
    let dir = work_dir();
    let f = Fusion::start();
    println!("  fusion: {}", f.describe());
    let _a = Agent::start(&f, dir.path(), "");
    wait_ready(&f, "latency", Duration::from_secs(30));
    std::fs::create_dir(dir.path().join("lat")).unwrap();
    while !f.present("/lat") {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lat = Vec::with_capacity(trials);
    for i in 0..trials {
        let p = dir.path().join(format!("lat/f{i}"));
        let q = format!("/lat/f{i}");
        let t = Instant::now();
        let mut file = File::create(&p).unwrap();
        file.write_all(b"0123456789").unwrap();
        drop(file);
        while !f.present(&q) {
            assert!(t.elapsed() < Duration::from_secs(10), "{q} never visible");
            std::thread::sleep(Duration::from_micros(100));
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(2));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (target p50 ≤ 3, p99 ≤ 15)",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat[lat.len() - 1]
    );
}

/// Creates files at `rate`/s (0: as fast as possible) for `secs`; a new directory every
/// `per_dir` files when `new_dirs`, else round-robin over 100 existing ones. Returns files
/// written.
fn writer(root: &Path, rate: u64, secs: f64, new_dirs: bool) -> u64 {
    let per_dir = 1000u64;
    if !new_dirs {
        for d in 0..100 {
            std::fs::create_dir_all(root.join(format!("d{d}"))).unwrap();
        }
    }
    let t = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut n = 0u64;
    let mut cur = PathBuf::new();
    while t.elapsed() < end {
        let target = if rate == 0 {
            n + 256
        } else {
            (t.elapsed().as_secs_f64() * rate as f64) as u64
        };
        while n < target {
            let p = if new_dirs {
                if n % per_dir == 0 {
                    cur = root.join(format!("b{}", n / per_dir));
                    std::fs::create_dir(&cur).unwrap();
                }
                cur.join(format!("f{n}"))
            } else {
                root.join(format!("d{}/f{n}", n % 100))
            };
            File::create(p).unwrap();
            n += 1;
        }
        if rate != 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    n
}

fn bench_stream(name: &str, rate: u64, secs: f64, converge_limit: f64, new_dirs: bool) {
    if rate == 0 {
        println!(
            "\n## {name}: one writer as fast as it can for {secs} s, new directory every 1,000 files"
        );
    } else {
        println!("\n## {name}: {rate} file creations/s for {secs} s");
    }
    let dir = work_dir();
    println!("  directory {}", dir.path().display());
    let f = Fusion::start();
    println!("  fusion: {}", f.describe());
    let a = Agent::start(&f, dir.path(), "");
    wait_ready(&f, name, Duration::from_secs(30));
    let (c0a, c0f) = (a.cpu(), f.cpu());
    let t = Instant::now();
    let written = writer(dir.path(), rate, secs, new_dirs);
    let wrote_for = t.elapsed().as_secs_f64();
    let converged = wait_files(
        &f,
        written,
        Duration::from_secs_f64(converge_limit.max(120.0)),
        Duration::from_millis(20),
    );
    let wall = t.elapsed().as_secs_f64();
    let (ca, cf) = (a.cpu() - c0a, f.cpu() - c0f);
    println!(
        "  written {written} files in {wrote_for:.1} s ({:.0}/s)",
        written as f64 / wrote_for
    );
    match converged {
        Ok(d) => println!(
            "  all {written} in the view {:.2} s after the writer stopped (limit {converge_limit} s: {}); lost 0",
            d.as_secs_f64(),
            if d.as_secs_f64() <= converge_limit {
                "met"
            } else {
                "MISSED"
            }
        ),
        Err(got) => println!(
            "  NOT converged: {got} of {written} after {:.0} s (lost {} so far)",
            converge_limit.max(120.0),
            written.saturating_sub(got)
        ),
    }
    let log = a.log();
    println!(
        "  CPU over {wall:.1} s: agent {ca:.1} s ({:.0} %), fusion {cf:.1} s ({:.0} %); agent RSS peak {:.1} MiB; overflow reports {}, rescans {}",
        100.0 * ca / wall,
        100.0 * cf / wall,
        a.rss().0,
        log.matches("events were lost").count(),
        log.matches("rescanning directories").count()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let which = std::env::var("BENCH")
        .unwrap_or_else(|_| "scan,startup,latency,sustained,burst".to_string());
    let files: usize = env_num("FILES", 1_000_000);
    let dirs: usize = env_num("DIRS", 1000);
    let reps: usize = env_num("REPS", 3);
    let trials: usize = env_num("TRIALS", 1000);
    let secs: f64 = env_num("SECS", 60.0);
    let rate: u64 = env_num("RATE", 20_000);
    let burst_secs: f64 = env_num("BURST_SECS", 30.0);
    println!(
        "# fustor-agent end-to-end benchmarks ({} CPUs, agent {})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        AGENT
    );
    for w in which.split(',').map(str::trim) {
        match w {
            "scan" => bench_scan(files, dirs, reps),
            "startup" => bench_startup(files, dirs),
            "latency" => bench_latency(trials),
            "sustained" => bench_stream("sustained", rate, secs, 5.0, false),
            "burst" => bench_stream("burst", 0, burst_secs, 10.0, true),
            "" => {}
            other => eprintln!("unknown section {other:?}"),
        }
    }
}
