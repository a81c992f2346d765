//! Issue 11, resume instead of rescan, end to end: a real `fustor-fusion` process (so that it
//! can be killed with SIGKILL) with a persisted view, real `fustor-agent` processes watching a
//! bindfs mount (an NFS client), and the TCP relay of S79 for network cuts.
//!
//! Every test checks the agent's own counters (`agent-status.json`: `snapshots_started`,
//! `resumes`) so that "converged" cannot come from a full snapshot in disguise, and polls the
//! view throughout so that a single 503 after the restart fails it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{AGENT_BIN, AgentCfg, AgentProc, BindMount, Proxy, free_port, write};
use serde_json::Value;

/// The `fustor-fusion` binary of this build (next to the agent's), built once if absent.
fn fusion_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    let bin = Path::new(AGENT_BIN).with_file_name("fustor-fusion");
    BUILD.call_once(|| {
        if !bin.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "fustor-fusion", "--bin", "fustor-fusion"])
                .status()
                .expect("cargo build fustor-fusion");
            assert!(status.success(), "building fustor-fusion failed");
        }
    });
    bin
}

/// bindfs is required: absent, the test is skipped outside CI and fails in CI.
fn bindfs_or_skip(test: &str) -> bool {
    if common::bindfs_available() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: bindfs is required in CI"
    );
    common::skip_without_bindfs(test);
    false
}

/// A Fusion daemon process on fixed ports (a restart binds the same ones), stderr per run.
struct FusionProc {
    home: PathBuf,
    main_port: u16,
    recv_port: u16,
    child: Option<Child>,
    runs: u32,
    http: reqwest::blocking::Client,
}

impl FusionProc {
    /// One persisted `fs` view `v1` fed by pipe `v1`; `audit` 0 disables audits, so that only
    /// realtime replay and targeted rescans can make the view converge.
    fn start(home: &Path, audit: f64) -> FusionProc {
        let cfg = home.join("fusion-config");
        std::fs::create_dir_all(&cfg).unwrap();
        let (main_port, recv_port) = (free_port(), free_port());
        std::fs::write(
            cfg.join("default.yaml"),
            format!(
                "host: 127.0.0.1\nport: {main_port}\nsession_cleanup_interval: 0.5\n\
                 receivers:\n  r: {{driver: http, bind_host: 127.0.0.1, port: {recv_port}, api_keys: [{{key: agent-key, pipe_id: v1}}]}}\n\
                 views:\n  v1: {{driver: fs, api_keys: [qk1], persist_snapshot_interval_seconds: 2}}\n\
                 pipes:\n  v1: {{receiver: r, views: [v1], session_timeout_seconds: 3, audit_interval_sec: {audit}, sentinel_interval_sec: 0}}\n"
            ),
        )
        .unwrap();
        let mut f = FusionProc {
            home: home.to_path_buf(),
            main_port,
            recv_port,
            child: None,
            runs: 0,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        };
        f.spawn();
        f
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let log =
            std::fs::File::create(self.home.join(format!("stderr-{}.log", self.runs))).unwrap();
        let child = Command::new(fusion_bin())
            .arg("--home")
            .arg(&self.home)
            .arg("start")
            .env_remove("FUSTOR_HOME")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            fustor_testkit::wait_for_port(self.main_port, Duration::from_secs(20)),
            "fusion did not open its port:\n{}",
            self.log()
        );
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.join(format!("stderr-{}.log", self.runs)))
            .unwrap_or_default()
    }

    fn recv_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.recv_port)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        match self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.main_port))
            .header("X-API-Key", "qk1")
            .send()
        {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    fn stats(&self) -> (u16, Value) {
        self.get("/api/v1/views/v1/stats")
    }

    /// Status of one node (`404`: absent) and its size.
    fn node(&self, path: &str) -> (u16, Option<u64>) {
        let (s, body) = self.get(&format!(
            "/api/v1/views/v1/tree?path={}&max_depth=0",
            common::encode(path)
        ));
        (s, body["size"].as_u64())
    }
}

impl Drop for FusionProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            fustor_testkit::terminate(&mut c, Duration::from_secs(5));
        }
    }
}

/// The counters of the agent's only pipe, from its `agent-status.json` (refreshed every 2 s).
fn counters(agent: &AgentProc) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(agent.home.join("agent-status.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let p = v["pipes"].as_array()?.first()?.clone();
    Some((p["snapshots_started"].as_u64()?, p["resumes"].as_u64()?))
}

fn wait<T>(what: &str, secs: f64, ctx: &dyn Fn() -> String, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}\n{}",
            ctx()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls the view's stats every 100 ms from now on and records every answer that is not 200.
struct Watch {
    stop: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
    bad: Arc<Mutex<Vec<(u16, String)>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(main_port: u16) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let bad: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
        let (s, p, b) = (stop.clone(), polls.clone(), bad.clone());
        let handle = std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let url =
                format!("http://127.0.0.1:{main_port}/api/v1/views/v1/tree?path=/&max_depth=1");
            while !s.load(Ordering::SeqCst) {
                let r = http.get(&url).header("X-API-Key", "qk1").send();
                p.fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok(r) if r.status().as_u16() == 200 => {}
                    Ok(r) => {
                        let st = r.status().as_u16();
                        b.lock().unwrap().push((st, r.text().unwrap_or_default()));
                    }
                    Err(e) => b.lock().unwrap().push((0, e.to_string())),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Watch {
            stop,
            polls,
            bad,
            handle: Some(handle),
        }
    }

    /// Stops polling; answers (polls, non-200 answers).
    fn finish(mut self) -> (u64, Vec<(u16, String)>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        (
            self.polls.load(Ordering::Relaxed),
            self.bad.lock().unwrap().clone(),
        )
    }
}

struct Setup {
    tmp: tempfile::TempDir,
    fusion: FusionProc,
    /// The agent's NFS client mount (dropped before the temp dir).
    mnt: PathBuf,
    _mount: BindMount,
}

fn setup(test: &str, audit: f64) -> Option<Setup> {
    if !bindfs_or_skip(test) {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("nfs-export");
    std::fs::create_dir_all(&backing).unwrap();
    let mnt = tmp.path().join("nfs-client");
    let mount = BindMount::mount(&backing, &mnt).expect("bindfs mount");
    let fusion = FusionProc::start(&tmp.path().join("fusion-home"), audit);
    Some(Setup {
        fusion,
        mnt,
        _mount: mount,
        tmp,
    })
}

fn agent_cfg(s: &Setup, recv_url: String) -> AgentCfg {
    AgentCfg {
        agent_id: "a".into(),
        uri: s.mnt.clone(),
        recv_url,
        key: "agent-key".into(),
        pipe: "v1".into(),
        driver_params: "{throttle_interval_sec: 0.1}".into(),
        source_extra: String::new(),
        pipe_extra: "    session_timeout_seconds: 3\n".into(),
        sender_params: "{}".into(),
    }
}

fn diag(s: &Setup, agent: &AgentProc) -> String {
    format!(
        "--- agent log ---\n{}\n--- fusion log (last run) ---\n{}",
        agent.log_tail(40),
        s.fusion
            .log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn wait_file_count(s: &Setup, agent: &AgentProc, n: u64, secs: f64) {
    wait(
        &format!("{n} files in the view"),
        secs,
        &|| format!("stats: {:?}\n{}", s.fusion.stats(), diag(s, agent)),
        || {
            let (st, body) = s.fusion.stats();
            (st == 200 && body["total_files"].as_u64() == Some(n)).then_some(())
        },
    );
}

/// (a) `kill -9` of Fusion under realtime load, then a restart: every file written before and
/// during the outage is in the view, the agent resumed instead of sending a second full
/// snapshot, and the view answered 200 from its first answer after the restart on.
#[test]
fn fusion_kill9_under_realtime_load_resumes_without_a_snapshot() {
    let Some(mut s) = setup("fusion_kill9_under_realtime_load", 0.0) else {
        return;
    };
    let dir = s.mnt.join("load");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..20 {
        write(&dir.join(format!("before-{i:03}")), b"x");
    }
    let mut agent = AgentProc::start(
        &s.tmp.path().join("agent-home"),
        &agent_cfg(&s, s.fusion.recv_url()),
        None,
    );
    wait_file_count(&s, &agent, 20, 30.0);
    // Realtime load: a file every 20 ms for 6 s, Fusion killed 2 s in, restarted 1 s later.
    let writer_dir = dir.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..300 {
            write(&writer_dir.join(format!("rt-{i:03}")), b"yy");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    s.fusion.kill9();
    std::thread::sleep(Duration::from_secs(1));
    s.fusion.spawn();
    // From the first answer of the new process on, every answer is 200.
    let ctx = || diag(&s, &agent);
    wait("the restarted view answers", 20.0, &ctx, || {
        (s.fusion.stats().0 != 0).then_some(())
    });
    let watch = Watch::start(s.fusion.main_port);
    writer.join().unwrap();
    wait_file_count(&s, &agent, 320, 30.0);
    let (polls, bad) = watch.finish();
    assert!(polls > 10, "the view was polled {polls} times only");
    assert!(
        bad.is_empty(),
        "non-200 answers after the restart: {bad:?}\n{}",
        ctx()
    );
    assert!(
        s.fusion.log().contains("persisted view loaded"),
        "{}",
        s.fusion.log()
    );
    let (snapshots, resumes) = wait("agent counters", 10.0, &ctx, || {
        counters(&agent).filter(|(_, r)| *r >= 1)
    });
    assert_eq!(snapshots, 1, "only the first session snapshots\n{}", ctx());
    assert!(resumes >= 1);
    assert!(agent.log().contains("session resumed"), "{}", ctx());
    agent.stop();
}

/// (b) A 60 s network cut between the agent and Fusion (longer than the session timeout)
/// while files are created, modified and deleted: the view converges by replay alone (audits
/// off), without a full snapshot.
#[test]
fn network_cut_of_60s_converges_without_a_snapshot() {
    let Some(s) = setup("network_cut_of_60s", 0.0) else {
        return;
    };
    let dir = s.mnt.join("d");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..30 {
        write(&dir.join(format!("f-{i:02}")), b"x");
    }
    let proxy = Proxy::start(s.fusion.recv_port);
    let mut agent = AgentProc::start(
        &s.tmp.path().join("agent-home"),
        &agent_cfg(&s, proxy.url()),
        None,
    );
    let ctx = || diag(&s, &agent);
    wait_file_count(&s, &agent, 30, 30.0);
    let watch = Watch::start(s.fusion.main_port);
    proxy.block();
    let cut = Instant::now();
    // The session expires (3 s); the view keeps its content.
    wait("the session expired", 10.0, &ctx, || {
        let (_, b) = s.fusion.get("/api/v1/views/v1/sessions");
        b["active_sessions"]
            .as_array()
            .is_some_and(|a| a.is_empty())
            .then_some(())
    });
    for i in 0..20 {
        write(&dir.join(format!("new-{i:02}")), b"new");
    }
    for i in 0..5 {
        write(&dir.join(format!("f-{i:02}")), b"modified, longer");
    }
    for i in 25..30 {
        std::fs::remove_file(dir.join(format!("f-{i:02}"))).unwrap();
    }
    std::thread::sleep(Duration::from_secs(60).saturating_sub(cut.elapsed()));
    proxy.unblock();
    wait_file_count(&s, &agent, 45, 40.0);
    for i in 0..20 {
        assert_eq!(s.fusion.node(&format!("/d/new-{i:02}")).0, 200, "{}", ctx());
    }
    for i in 0..5 {
        assert_eq!(
            s.fusion.node(&format!("/d/f-{i:02}")),
            (200, Some(16)),
            "modified during the cut\n{}",
            ctx()
        );
    }
    for i in 25..30 {
        assert_eq!(s.fusion.node(&format!("/d/f-{i:02}")).0, 404, "{}", ctx());
    }
    let (_, bad) = watch.finish();
    assert!(
        bad.is_empty(),
        "the view stopped answering: {bad:?}\n{}",
        ctx()
    );
    let (snapshots, resumes) = wait("agent counters", 10.0, &ctx, || {
        counters(&agent).filter(|(_, r)| *r >= 1)
    });
    assert_eq!(
        snapshots,
        1,
        "a reconnect after a cut does not snapshot\n{}",
        ctx()
    );
    assert!(resumes >= 1);
    agent.stop();
    drop(proxy);
}

/// (c) `kill -9` of the agent and a restart: the view keeps answering 200 with its content
/// throughout (no reset when the session expires), and converges (the new process has lost
/// its bus, so it snapshots; the audit removes what was deleted meanwhile).
#[test]
fn agent_kill9_view_keeps_serving_and_converges() {
    let Some(s) = setup("agent_kill9", 2.0) else {
        return;
    };
    let dir = s.mnt.join("d");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..30 {
        write(&dir.join(format!("f-{i:02}")), b"x");
    }
    let home = s.tmp.path().join("agent-home");
    let cfg = agent_cfg(&s, s.fusion.recv_url());
    let mut agent = AgentProc::start(&home, &cfg, None);
    wait_file_count(&s, &agent, 30, 30.0);
    let watch = Watch::start(s.fusion.main_port);
    agent.kill9();
    // Past the session timeout: the last session of the view ended.
    std::thread::sleep(Duration::from_secs(5));
    let (st, body) = s.fusion.stats();
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["total_files"].as_u64(),
        Some(30),
        "the view kept its content"
    );
    assert_eq!(body["reconciling"], Value::Bool(true), "{body}");
    for i in 0..10 {
        write(&dir.join(format!("new-{i:02}")), b"n");
    }
    std::fs::remove_file(dir.join("f-00")).unwrap();
    let _ = std::fs::remove_file(home.join("agent-status.json"));
    agent.spawn();
    let ctx = || diag(&s, &agent);
    wait_file_count(&s, &agent, 39, 40.0);
    assert_eq!(s.fusion.node("/d/f-00").0, 404);
    let (_, bad) = watch.finish();
    assert!(
        bad.is_empty(),
        "the view stopped answering: {bad:?}\n{}",
        ctx()
    );
    let (snapshots, _) = wait("agent counters", 10.0, &ctx, || counters(&agent));
    assert_eq!(snapshots, 1, "a restarted agent snapshots once\n{}", ctx());
    agent.stop();
}
